//! The `trove` binary as a child process, and clients of it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use trove::api::pb::collection_service_client::CollectionServiceClient;
use trove::api::pb::{self, Field, FieldType};

/// A running `trove` process.
pub struct Server {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

/// The `trove` binary built next to this one.
fn trove_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("trove");
    if !path.exists() {
        bail!(
            "{} not found: build every binary first (cargo build --release)",
            path.display()
        );
    }
    Ok(path)
}

impl Server {
    /// Starts `trove --no-seeds ARGS…` on a free port, logging to `log`.
    pub fn spawn(args: &[String], log: &Path) -> anyhow::Result<Server> {
        let mut after = vec!["--no-seeds".to_string()];
        after.extend_from_slice(args);
        Self::spawn_program(&trove_binary()?, &[], &after, log)
    }

    /// Starts this benchmark binary itself with `args` and `--listen ADDR`.
    pub fn spawn_bench_child(args: &[String], log: &Path) -> anyhow::Result<Server> {
        Self::spawn_program(&std::env::current_exe()?, args, &[], log)
    }

    /// Starts `program BEFORE… --listen ADDR AFTER…` on a free port, logging to `log`.
    fn spawn_program(
        program: &Path,
        before: &[String],
        after: &[String],
        log: &Path,
    ) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let out = std::fs::File::create(log)?;
        let child = Command::new(program)
            .args(before)
            .args(["--listen", &addr])
            .args(after)
            .env("NO_COLOR", "1")
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()?;
        Ok(Server {
            child,
            addr,
            log: log.to_owned(),
        })
    }

    /// Waits until the server accepts connections.
    pub async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited with {status}: see {}",
                    self.log.display()
                );
            }
            let endpoint = Channel::from_shared(format!("http://{}", self.addr))?;
            if endpoint.connect().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not listen: see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Resident memory in bytes (Linux).
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")?;
        Ok(kb * 1024)
    }

    /// CPU time the process has used so far, user and system, in seconds (Linux).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Waits until the process is idle: background work left by an earlier phase
    /// (tantivy merging the segments of many small commits) would otherwise take CPU
    /// from the next phase's measurement. Idle means under 3% of a core over a second;
    /// gives up after `limit`. Returns the time waited.
    pub async fn settle(&self, limit: Duration) -> anyhow::Result<Duration> {
        const WINDOW: Duration = Duration::from_secs(1);
        let started = Instant::now();
        let mut before = self.cpu_seconds()?;
        while started.elapsed() < limit {
            tokio::time::sleep(WINDOW).await;
            let now = self.cpu_seconds()?;
            if now - before < 0.03 * WINDOW.as_secs_f64() {
                break;
            }
            before = now;
        }
        Ok(started.elapsed())
    }

    /// Connects and waits until health says SERVING.
    pub async fn wait_serving(&mut self) -> anyhow::Result<Channel> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("trove exited with {status}: see {}", self.log.display());
            }
            let endpoint = Channel::from_shared(format!("http://{}", self.addr))?;
            if let Ok(channel) = endpoint.connect().await {
                let mut health = HealthClient::new(channel.clone());
                let status = health
                    .check(HealthCheckRequest::default())
                    .await
                    .map(|r| r.into_inner().status);
                if status.ok() == Some(ServingStatus::Serving as i32) {
                    return Ok(channel);
                }
            }
            if Instant::now() > deadline {
                bail!("trove did not become ready: see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait()?;
        if !status.success() {
            bail!("trove stopped with {status}: see {}", self.log.display());
        }
        Ok(())
    }

    /// The seconds the server logged for its recovery.
    pub fn logged_recovery(&self) -> anyhow::Result<(f64, u64)> {
        let log = std::fs::read_to_string(&self.log)?;
        let line = log
            .lines()
            .find(|l| l.contains(" recovered "))
            .context("no recovery line in the log")?;
        let value = |key: &str| -> Option<&str> {
            line.split_whitespace().find_map(|w| w.strip_prefix(key))
        };
        let seconds = value("seconds=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        let replayed = value("replayed=").and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((seconds, replayed))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the benchmark collection: title and body `english`, date, tags and source.
/// The memory collection `name` accounts for itself (documents and index).
pub async fn collection_memory(channel: &Channel, name: &str) -> anyhow::Result<u64> {
    let collection = CollectionServiceClient::new(channel.clone())
        .get_collection(pb::GetCollectionRequest { name: name.into() })
        .await?
        .into_inner();
    Ok(collection.memory_bytes.max(0) as u64)
}

pub async fn create_news(channel: &Channel, name: &str) -> anyhow::Result<()> {
    let field = |name: &str, ty: FieldType, analyzer: &str, filter: bool| Field {
        name: name.into(),
        r#type: ty as i32,
        analyzer: analyzer.into(),
        filterable: filter,
        sortable: filter && ty == FieldType::Timestamp,
        facetable: filter,
        ..Default::default()
    };
    CollectionServiceClient::new(channel.clone())
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: name.into(),
                fields: vec![
                    field("title", FieldType::Text, "english", false),
                    field("body", FieldType::Text, "english", false),
                    field("date", FieldType::Timestamp, "", true),
                    field("tags", FieldType::Keyword, "", true),
                    field("source", FieldType::Keyword, "", true),
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?;
    Ok(())
}

/// CPU time this process has used so far, user and system, in seconds (Linux).
pub fn own_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds("/proc/self/stat")
}

/// `utime + stime` of a `/proc/PID/stat` file, in seconds.
fn cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = stat.rsplit_once(')').context("no ')' in stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    let ticks =
        |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    anyhow::ensure!(per_second > 0, "no clock tick rate");
    Ok(total as f64 / per_second as f64)
}
