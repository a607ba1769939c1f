//! The real-text corpus (built by `tools/bench/real/build_corpus.py` from
//! documentation Debian ships), the gRPC floor, and the phase with a Python
//! grpcio client.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use trove::api::pb::search_service_client::SearchServiceClient;

use crate::queries::BenchQuery;
use crate::stats::Latencies;

/// A document: its id and fields.
pub type Doc = (String, Map<String, Value>);

/// The documents of `dir/corpus.jsonl` (at most `limit`) and the queries of
/// `dir/queries.txt`: words, or a quoted two-word phrase.
pub fn load(dir: &Path, limit: usize) -> anyhow::Result<(Vec<Doc>, Vec<BenchQuery>)> {
    let corpus = dir.join("corpus.jsonl");
    let text = std::fs::read_to_string(&corpus).with_context(|| {
        format!(
            "cannot read {}: build it with tools/bench/real/build_corpus.py --out {}",
            corpus.display(),
            dir.display()
        )
    })?;
    let mut docs = Vec::new();
    for line in text.lines().take(limit) {
        let mut fields: Map<String, Value> = serde_json::from_str(line)?;
        let id = match fields.remove("id") {
            Some(Value::String(id)) => id,
            _ => anyhow::bail!("{}: a line without an id", corpus.display()),
        };
        docs.push((id, fields));
    }
    let queries = std::fs::read_to_string(dir.join("queries.txt"))?
        .lines()
        .filter(|q| !q.trim().is_empty())
        .map(|q| {
            let phrase = q.starts_with('"') && q.ends_with('"') && q.len() > 1;
            BenchQuery {
                words: q
                    .trim_matches('"')
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                phrase,
                dates: None,
                facets: false,
            }
        })
        .collect();
    Ok((docs, queries))
}

/// How long each turn of [`alternating`] lasts.
pub const TURN: Duration = Duration::from_millis(250);

/// Searches for `queries` one at a time on `channel`, and empty unary calls (a
/// health check: what any call costs on that channel, the gRPC floor), in turns
/// of [`TURN`] each for `seconds` in all. In turns, both see the same spells of a
/// shared machine; within a turn, what a search leaves to do after its answer
/// (the client's flow control, freeing the response) falls on the next search,
/// as it would in a run of searches, not on an empty call.
pub async fn alternating(
    channel: &Channel,
    queries: &[BenchQuery],
    seconds: f64,
) -> anyhow::Result<(Latencies, Latencies)> {
    let mut search = SearchServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let mut health = HealthClient::new(channel.clone());
    let (mut searches, mut floor) = (Latencies::default(), Latencies::default());
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut i = 0;
    while Instant::now() < until {
        let turn = Instant::now() + TURN;
        while Instant::now() < turn {
            let request = crate::bench::search_request(&queries[i % queries.len()], false);
            let started = Instant::now();
            search.search(request).await?;
            searches.push(started.elapsed());
            i += 1;
        }
        let turn = Instant::now() + TURN;
        while Instant::now() < turn {
            let started = Instant::now();
            health.check(HealthCheckRequest::default()).await?;
            floor.push(started.elapsed());
        }
    }
    Ok((searches, floor))
}

/// What the Python client measured, in milliseconds.
#[derive(Debug, serde::Deserialize)]
pub struct PythonRun {
    pub search_p50: f64,
    pub search_p99: f64,
    pub searches: u64,
    pub floor_p50: f64,
    pub floor_p99: f64,
}

/// The protos, from the checkout the benchmark was built in.
fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("real/python_client.py")
}

/// Whether `python` has what the Python phase needs.
pub fn python_ready(python: &Path) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import grpc, grpc_tools, grpc_health"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the Python client against `addr` with `queries`: for twice `seconds`,
/// searches and empty calls in turns of [`TURN`].
pub fn python_run(
    python: &Path,
    addr: &str,
    queries: &[String],
    seconds: f64,
    work: &Path,
) -> anyhow::Result<PythonRun> {
    let file = work.join("python-queries.txt");
    std::fs::write(&file, queries.join("\n"))?;
    let output = std::process::Command::new(python)
        .arg(script())
        .args(["--addr", addr, "--seconds", &seconds.to_string()])
        .args(["--turn", &TURN.as_secs_f64().to_string()])
        .arg("--proto")
        .arg(proto_dir())
        .arg("--queries")
        .arg(&file)
        .output()
        .context("running the Python client")?;
    if !output.status.success() {
        anyhow::bail!(
            "the Python client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}
