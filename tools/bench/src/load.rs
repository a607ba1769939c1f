//! `trove-bench load`: drives the server far past saturation and checks that it
//! stays healthy: health keeps answering, admitted requests keep a bounded p99,
//! the rest are shed with RESOURCE_EXHAUSTED at once, and throughput recovers
//! when the load stops.
//!
//! 1. Saturation: closed-loop searches at concurrency 16 give the rate the server
//!    sustains.
//! 2. Overload: an open loop issues searches at `--factor` times that rate, each
//!    on its own task without waiting for earlier ones, for `--seconds`; a
//!    health check runs every 50 ms meanwhile.
//! 3. Recovery: closed-loop searches at concurrency 16 again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use trove::api::pb;
use trove::api::pb::document_service_client::DocumentServiceClient;
use trove::api::pb::search_service_client::SearchServiceClient;

use crate::corpus::Corpus;
use crate::queries::query_set;
use trove::api::fields_to_struct;

use crate::server::{Server, create_news};
use crate::stats::Latencies;

#[derive(clap::Args)]
pub struct Args {
    /// Documents loaded before the load.
    #[arg(long, default_value_t = 20_000)]
    docs: usize,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The offered load, as a multiple of the saturation rate.
    #[arg(long, default_value_t = 4.0)]
    factor: f64,
    /// The server's `--max-concurrent-requests`.
    #[arg(long, default_value_t = 64)]
    max_concurrent_requests: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Closed-loop searches at `concurrency` for `seconds`: requests per second.
async fn closed_loop(
    channels: &[Channel],
    requests: &Arc<Vec<pb::SearchRequest>>,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<f64> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let mut client = SearchServiceClient::new(channels[worker % channels.len()].clone());
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            let mut i = worker;
            while Instant::now() < until {
                match client.search(requests[i % requests.len()].clone()).await {
                    Ok(_) => done += 1,
                    Err(status) if status.code() == Code::ResourceExhausted => {}
                    Err(status) => return Err(anyhow::anyhow!("search failed: {status}")),
                }
                i += concurrency;
            }
            anyhow::Ok(done)
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let mut server = Server::spawn(
        &[
            "--max-concurrent-requests".into(),
            args.max_concurrent_requests.to_string(),
        ],
        &work.path().join("trove.log"),
    )?;
    let channel = server.wait_serving().await?;
    create_news(&channel, "news").await?;
    let mut corpus = Corpus::new(args.seed);
    let docs: Vec<_> = (0..args.docs).map(|_| corpus.next_doc()).collect();
    let bodies: Vec<&str> = docs
        .iter()
        .take(1000)
        .filter_map(|(_, f)| f.get("body").and_then(|b| b.as_str()))
        .collect();
    let queries = query_set(args.seed, 240, corpus.vocabulary(), &bodies);
    let imports = docs.iter().map(|(id, fields)| pb::ImportDocumentsRequest {
        collection: "news".into(),
        document: Some(pb::Document {
            id: id.clone(),
            fields: Some(fields_to_struct(fields.clone())),
            ..Default::default()
        }),
        async_visibility: false,
    });
    let imports: Vec<_> = imports.collect();
    DocumentServiceClient::new(channel.clone())
        .import_documents(tokio_stream::iter(imports))
        .await?;
    let requests: Arc<Vec<pb::SearchRequest>> = Arc::new(
        queries
            .iter()
            .map(|q| crate::bench::search_request(q, false))
            .collect(),
    );
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            Channel::from_shared(format!("http://{}", server.addr))?
                .connect()
                .await?,
        );
    }

    // 1. Saturation.
    let saturation = closed_loop(&channels, &requests, 16, args.seconds).await?;
    eprintln!("saturation: {saturation:.0} searches/s");

    // 2. Overload: open loop at factor × saturation, health checked alongside.
    let offered = saturation * args.factor;
    let interval = Duration::from_secs_f64(1.0 / offered);
    let health = {
        let mut client = HealthClient::new(channels[0].clone());
        let until = Instant::now() + Duration::from_secs_f64(args.seconds);
        tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0usize;
            while Instant::now() < until {
                let t = Instant::now();
                let request = tonic::Request::new(HealthCheckRequest::default());
                match tokio::time::timeout(Duration::from_secs(2), client.check(request)).await {
                    Ok(Ok(response)) if response.get_ref().status == 1 => {
                        latencies.push(t.elapsed())
                    }
                    _ => failures += 1,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (latencies, failures)
        })
    };
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    let mut next = started;
    let mut i = 0usize;
    while Instant::now() < until {
        let mut client = SearchServiceClient::new(channels[i % channels.len()].clone());
        let request = requests[i % requests.len()].clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let result = client.search(request).await;
            (t.elapsed(), result.map(|_| ()).map_err(|s| s.code()))
        }));
        i += 1;
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let sent = tasks.len();
    let mut admitted = Latencies::default();
    let mut shed = Latencies::default();
    let mut other = 0usize;
    for task in tasks {
        match task.await? {
            (took, Ok(())) => admitted.push(took),
            (took, Err(Code::ResourceExhausted)) => shed.push(took),
            (_, Err(_)) => other += 1,
        }
    }
    let overload_seconds = started.elapsed().as_secs_f64();
    let (health_latencies, health_failures) = health.await?;

    // 3. Recovery.
    let recovered = closed_loop(&channels, &requests, 16, args.seconds).await?;
    server.stop()?;

    println!(
        "trove-bench load: {} documents, --max-concurrent-requests {}, {:.0} s per phase\n",
        args.docs, args.max_concurrent_requests, args.seconds
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!("| saturation (closed loop, 16 clients), searches/s | {saturation:.0} |");
    println!(
        "| offered (open loop, {:.1}x saturation), searches/s | {:.0} ({sent} sent) |",
        args.factor,
        sent as f64 / overload_seconds
    );
    println!(
        "| admitted, searches/s | {:.0} ({} requests) |",
        admitted.len() as f64 / overload_seconds,
        admitted.len()
    );
    println!(
        "| admitted p50 / p99 ms | {:.2} / {:.2} |",
        admitted.percentile_ms(50.0),
        admitted.percentile_ms(99.0)
    );
    println!(
        "| shed with RESOURCE_EXHAUSTED | {} ({:.0}%), answered in p50 / p99 {:.2} / {:.2} ms |",
        shed.len(),
        100.0 * shed.len() as f64 / sent.max(1) as f64,
        shed.percentile_ms(50.0),
        shed.percentile_ms(99.0)
    );
    println!("| other errors | {other} |");
    println!(
        "| health checks during overload: answered / failed, p99 ms | {} / {health_failures}, {:.2} |",
        health_latencies.len(),
        health_latencies.percentile_ms(99.0)
    );
    println!(
        "| after the load (closed loop, 16 clients), searches/s | {recovered:.0} ({:.2}x saturation) |",
        recovered / saturation
    );
    anyhow::ensure!(other == 0, "{other} requests failed with other errors");
    Ok(())
}
