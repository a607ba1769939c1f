//! Write throughput in memory and durable, and recovery time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use trove::api::fields_to_struct;
use trove::api::pb;
use trove::api::pb::document_service_client::DocumentServiceClient;

use crate::corpus::Corpus;
use crate::server::{Server, create_news};
use crate::stats::Latencies;

/// Options of `trove-bench durability`.
#[derive(clap::Args)]
pub struct Args {
    /// Documents imported before measuring recovery.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Concurrent single-document writers.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Seconds of writes per mode.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds over the three modes (interleaved, so drift hits them alike);
    /// each figure is the mean over the rounds.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn request(id: String, fields: serde_json::Map<String, serde_json::Value>) -> pb::Document {
    pb::Document {
        id,
        fields: Some(fields_to_struct(fields)),
        ..Default::default()
    }
}

/// `writers` clients each creating documents one at a time for `seconds`.
async fn write_load(
    channel: &Channel,
    docs: Arc<Vec<pb::Document>>,
    writers: usize,
    seconds: f64,
    async_visibility: bool,
) -> anyhow::Result<(usize, Latencies, f64)> {
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (docs, mut client) = (docs.clone(), DocumentServiceClient::new(channel.clone()));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut i = w;
            while Instant::now() < until && i < docs.len() {
                let t = Instant::now();
                client
                    .create_document(pb::CreateDocumentRequest {
                        collection: "news".into(),
                        document: Some(docs[i].clone()),
                        async_visibility,
                        request_id: String::new(),
                    })
                    .await?;
                latencies.push(t.elapsed());
                i += writers;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((all.len(), all, elapsed))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    println!(
        "trove-bench durability: {} writers x {} s of single-document writes (each returns when searchable), then recovery of {} documents",
        args.writers, args.seconds, args.docs
    );
    let mut corpus = Corpus::new(args.seed);
    let pool: Vec<pb::Document> = (0..60_000)
        .map(|_| {
            let (id, fields) = corpus.next_doc();
            request(id, fields)
        })
        .collect();
    let pool = Arc::new(pool);

    let modes: [(&str, Vec<&str>); 3] = [
        ("in-memory", vec![]),
        ("--fsync always", vec!["--fsync", "always"]),
        ("--fsync interval=100ms", vec!["--fsync", "interval=100ms"]),
    ];
    for async_visibility in [false, true] {
        let what = if async_visibility {
            "returning once durable, before visible (async_visibility)"
        } else {
            "returning once searchable"
        };
        // (writes/s, p50, p99) per mode, summed over rounds.
        let mut sums = [(0.0, 0.0, 0.0); 3];
        for round in 0..args.rounds {
            for (m, (label, flags)) in modes.iter().enumerate() {
                let mut cli: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
                if !flags.is_empty() {
                    let dir = work
                        .path()
                        .join(format!("writes-{async_visibility}-{round}-{m}"));
                    cli.push("--data-dir".into());
                    cli.push(dir.to_string_lossy().into());
                }
                let mut server = Server::spawn(&cli, &work.path().join("write.log"))?;
                let channel = server.wait_serving().await?;
                create_news(&channel, "news").await?;
                let (count, latencies, elapsed) = write_load(
                    &channel,
                    pool.clone(),
                    args.writers,
                    args.seconds,
                    async_visibility,
                )
                .await?;
                server.stop()?;
                let rate = count as f64 / elapsed;
                eprintln!("{what}, round {round}, {label}: {rate:.0} writes/s");
                sums[m].0 += rate;
                sums[m].1 += latencies.percentile_ms(50.0);
                sums[m].2 += latencies.percentile_ms(99.0);
            }
        }
        let rounds = args.rounds as f64;
        println!();
        println!("Single-document writes, {what}:");
        println!();
        println!("| mode | writes/s | p50 ms | p99 ms | vs in-memory |");
        println!("|---|---|---|---|---|");
        for (m, (label, _)) in modes.iter().enumerate() {
            let (rate, p50, p99) = (sums[m].0 / rounds, sums[m].1 / rounds, sums[m].2 / rounds);
            println!(
                "| {label} | {rate:.0} | {p50:.2} | {p99:.2} | {:.2}x |",
                rate / (sums[0].0 / rounds)
            );
        }
    }

    // Recovery: import, then kill -9 (the log since the last checkpoint is
    // replayed) and restart; then stop cleanly (a checkpoint) and restart.
    let data = work.path().join("recovery");
    let cli = vec!["--data-dir".to_string(), data.to_string_lossy().into()];
    let mut server = Server::spawn(&cli, &work.path().join("import.log"))?;
    let channel = server.wait_serving().await?;
    create_news(&channel, "news").await?;
    let mut corpus = Corpus::new(args.seed ^ 1);
    let started = Instant::now();
    let bytes = import(&channel, &mut corpus, args.docs).await?;
    let import_seconds = started.elapsed().as_secs_f64();
    server.kill9()?;
    println!();
    println!(
        "Imported {} documents ({:.0} MB of JSON, {:.0} bytes each) in {import_seconds:.1} s with --fsync always, then:",
        args.docs,
        bytes as f64 / 1e6,
        bytes as f64 / args.docs as f64
    );
    println!();
    println!("| restart after | time to SERVING s | recovery logged s | log records replayed |");
    println!("|---|---|---|---|");
    let log = work.path().join("recover.log");
    let restart = |label: &'static str| {
        let cli = cli.clone();
        let log = log.clone();
        async move {
            let started = Instant::now();
            let mut server = Server::spawn(&cli, &log)?;
            server.wait_serving().await?;
            let ready = started.elapsed().as_secs_f64();
            let (logged, replayed) = server.logged_recovery()?;
            println!("| {label} | {ready:.2} | {logged:.2} | {replayed} |");
            anyhow::Ok(server)
        }
    };
    let mut server = restart("kill -9 right after the import").await?;
    server.stop()?;
    let mut server = restart("SIGTERM (a checkpoint at shutdown)").await?;
    server.stop()?;

    // The most log a server with the default --checkpoint-bytes can have to
    // replay: a full 32 MiB on top of the checkpoint, then kill -9.
    let mut no_checkpoints = cli.clone();
    no_checkpoints.extend(["--checkpoint-bytes".into(), u64::MAX.to_string()]);
    let mut server = Server::spawn(&no_checkpoints, &work.path().join("fill.log"))?;
    let channel = server.wait_serving().await?;
    let wal = data.join("wal");
    let mut extra = 0;
    while dir_bytes(&wal)? < trove::config::DEFAULT_CHECKPOINT_BYTES {
        import(&channel, &mut corpus, 500).await?;
        extra += 500;
    }
    server.kill9()?;
    let label = "kill -9 with a full 32 MiB log after the checkpoint (the default's worst case)";
    restart(label).await?.stop()?;
    println!();
    println!("(the last row replays {extra} documents written after the checkpoint)");
    Ok(())
}

/// Imports `n` documents of `corpus`; returns their JSON bytes.
async fn import(channel: &Channel, corpus: &mut Corpus, n: usize) -> anyhow::Result<usize> {
    let mut bytes = 0;
    let mut left = n;
    while left > 0 {
        let batch_len = left.min(2000);
        let batch: Vec<pb::ImportDocumentsRequest> = (0..batch_len)
            .map(|_| {
                let (id, fields) = corpus.next_doc();
                bytes += serde_json::to_string(&fields).map_or(0, |s| s.len());
                pb::ImportDocumentsRequest {
                    collection: "news".into(),
                    document: Some(request(id, fields)),
                    async_visibility: true,
                }
            })
            .collect();
        let response = DocumentServiceClient::new(channel.clone())
            .import_documents(tokio_stream::iter(batch))
            .await?
            .into_inner();
        anyhow::ensure!(
            response.failed_count == 0,
            "import failures: {:?}",
            response.failures
        );
        left -= batch_len;
    }
    Ok(bytes)
}

/// The bytes of the files in `dir`.
fn dir_bytes(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}
