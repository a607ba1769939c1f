//! The real `trove` binary as a child process, for tests that kill it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use trove::api::pb::collection_service_client::CollectionServiceClient;
use trove::api::pb::document_service_client::DocumentServiceClient;
use trove::api::pb::search_service_client::SearchServiceClient;

/// A `trove` process on a data directory.
pub struct Process {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

/// Clients of one connection.
#[derive(Clone)]
pub struct Clients {
    pub collections: CollectionServiceClient<Channel>,
    pub documents: DocumentServiceClient<Channel>,
    pub search: SearchServiceClient<Channel>,
    pub health: HealthClient<Channel>,
}

impl Process {
    /// Starts `trove --data-dir DATA --no-seeds ARGS…` and waits until it serves.
    pub async fn start(data: &Path, args: &[&str]) -> Process {
        let mut process = Self::spawn(data, args);
        process.wait_serving().await;
        process
    }

    /// Starts the process with `env` set and waits until it serves.
    pub async fn start_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut process = Self::spawn_with_env(data, args, env);
        process.wait_serving().await;
        process
    }

    /// Starts the process without waiting.
    pub fn spawn(data: &Path, args: &[&str]) -> Process {
        Self::spawn_with_env(data, args, &[])
    }

    /// Starts the process with `env` set, without waiting.
    pub fn spawn_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let log = data.with_extension(format!("{port}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_trove"))
            .args(["--listen", &addr, "--no-seeds", "--data-dir"])
            .arg(data)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("TROVE_LOG")
            .envs(env.iter().copied())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Process { child, addr, log }
    }

    /// Connects, retrying while the process starts.
    pub async fn connect(&mut self) -> Clients {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("trove exited with {status}:\n{}", self.log_text());
            }
            let endpoint = Channel::from_shared(format!("http://{}", self.addr)).unwrap();
            if let Ok(channel) = endpoint.connect().await {
                return Clients {
                    collections: CollectionServiceClient::new(channel.clone()),
                    documents: DocumentServiceClient::new(channel.clone()),
                    search: SearchServiceClient::new(channel.clone()),
                    health: HealthClient::new(channel),
                };
            }
            assert!(
                Instant::now() < deadline,
                "trove did not listen:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The health status of the whole server.
    pub async fn health(&mut self) -> i32 {
        let mut clients = self.connect().await;
        clients
            .health
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner()
            .status
    }

    /// Waits until health says SERVING.
    pub async fn wait_serving(&mut self) -> Clients {
        let mut clients = self.connect().await;
        let mut watch = clients
            .health
            .watch(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        while let Some(status) = watch.message().await.unwrap() {
            if status.status == ServingStatus::Serving as i32 {
                return clients;
            }
        }
        panic!("health stream ended:\n{}", self.log_text());
    }

    /// The OS threads the process runs now, from `/proc/PID/status`.
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a Threads line")
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`).
    pub fn signal(&mut self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    /// Waits for the process to exit by itself (a refused start).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "trove kept running:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic random source (xorshift), seeded per test run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
