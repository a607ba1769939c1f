//! The benchmark: trove through gRPC against raw tantivy and SQLite FTS5 in
//! process, and against a bare tonic server, on one corpus and one query set, in
//! one run. Prints one table of absolute figures and ratios.
//!
//! Longer than most files: the phases of one run share its corpus, clients and
//! table, and read best in the order they run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value};
use tonic::transport::Channel;
use trove::api::fields_to_struct;
use trove::api::pb;
use trove::api::pb::document_service_client::DocumentServiceClient;
use trove::api::pb::search_service_client::SearchServiceClient;
use trove::engine::{DICTIONARY_BYTES, Dictionary, StoredDoc, TRAIN_AFTER_DOCUMENTS};

use crate::corpus::Corpus;
use crate::h2load;
use crate::peers::{Fts5, Tantivy};
use crate::queries::{BenchQuery, query_set};
use crate::server::{Server, create_news, own_cpu_seconds};
use crate::stats::Latencies;

/// The longest wait for the server to go idle between phases.
const SETTLE: Duration = Duration::from_secs(60);

/// Options of the benchmark run.
#[derive(clap::Args)]
pub struct Args {
    /// Documents in the corpus.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Seconds each load phase runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Queries in the fixed mixed set.
    #[arg(long, default_value_t = 240)]
    queries: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A real-text corpus built by `tools/bench/real/build_corpus.py --out DIR`:
    /// its documents (at most `--docs`) and queries instead of the generated ones.
    #[arg(long, value_name = "DIR")]
    real: Option<std::path::PathBuf>,
    /// The Python interpreter of the Python client phase (grpcio, grpcio-tools and
    /// grpcio-health-checking); without them the phase is left out and says so.
    #[arg(long, default_value = ".venv/bin/python")]
    python: std::path::PathBuf,
}

type Doc = (String, Map<String, Value>);

/// `serve-fixed` arguments for reading the first document as trove stores it:
/// zstd-compressed JSON, with a dictionary trained on the collection's first
/// documents once it has enough of them (as [`trove::engine::Collection`] does).
fn stored_like_trove(docs: &[Doc], dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let dictionary = if docs.len() >= TRAIN_AFTER_DOCUMENTS {
        let samples = docs[..TRAIN_AFTER_DOCUMENTS]
            .iter()
            .map(|(_, fields)| serde_json::to_vec(fields))
            .collect::<Result<Vec<_>, _>>()?;
        Some(Arc::new(Dictionary::train(
            &samples,
            DICTIONARY_BYTES,
            1 << 15,
        )?))
    } else {
        None
    };
    let stored = StoredDoc::new(&docs[0].1, 1, 0, 0, dictionary.as_ref())?;
    let body = dir.join("stored-body.zst");
    std::fs::write(&body, stored.body())?;
    let mut args = vec!["--read-body".into(), body.to_string_lossy().into()];
    if let Some(dictionary) = dictionary {
        let path = dir.join("dictionary.zst");
        std::fs::write(&path, dictionary.bytes())?;
        args.extend(["--read-dictionary".into(), path.to_string_lossy().into()]);
    }
    Ok(args)
}

/// Options of `trove-bench visibility`.
#[derive(clap::Args)]
pub struct VisibilityArgs {
    /// Documents imported before the writes.
    #[arg(long, default_value_t = 20_000)]
    docs: usize,
    /// Seconds each round of writes under the search load runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Rounds, each reported on its own line, then all together.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Clients searching during the writes (0: writes alone).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Import this real-text corpus (as for the benchmark's `--real`) and search
    /// with its queries instead of the generated ones; `--docs` then caps it.
    #[arg(long)]
    real: Option<std::path::PathBuf>,
}

/// Results of one load phase.
struct Load {
    count: usize,
    latencies: Latencies,
    seconds: f64,
}

impl Load {
    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }

    /// `cpu_seconds` spread over the phase's calls, in milliseconds per call.
    fn cpu_ms_per_call(&self, cpu_seconds: f64) -> f64 {
        cpu_seconds * 1000.0 / self.count.max(1) as f64
    }
}

/// CPU seconds a server process and this benchmark process used during a phase.
struct Cpu {
    server: f64,
    client: f64,
}

/// Runs `phase`, measuring the CPU time `server` (if any) and this process use.
async fn with_cpu<T>(
    server: Option<&Server>,
    phase: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Cpu)> {
    let server_cpu = || server.map_or(Ok(0.0), Server::cpu_seconds);
    let (server_before, client_before) = (server_cpu()?, own_cpu_seconds()?);
    let out = phase.await?;
    let cpu = Cpu {
        server: server_cpu()? - server_before,
        client: own_cpu_seconds()? - client_before,
    };
    Ok((out, cpu))
}

/// [`h2load::get_document`] against `server`, with the server's CPU time.
async fn h2load_phase(
    server: &Server,
    request: &std::path::Path,
    calls: usize,
    response_len: usize,
) -> anyhow::Result<(h2load::H2Load, Cpu)> {
    let (addr, request) = (server.addr.clone(), request.to_owned());
    with_cpu(Some(server), async move {
        tokio::task::spawn_blocking(move || {
            h2load::get_document(&addr, &request, calls, response_len)
        })
        .await?
    })
    .await
}

/// `concurrency` threads each calling `call(i)` with i = 0, 1, … until `seconds` pass.
fn drive_threads(
    concurrency: usize,
    seconds: f64,
    call: impl Fn(usize, usize) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Load> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let results: Vec<anyhow::Result<Latencies>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency)
            .map(|worker| {
                let call = &call;
                scope.spawn(move || {
                    let mut latencies = Latencies::default();
                    let mut i = worker;
                    while Instant::now() < until {
                        let t = Instant::now();
                        call(worker, i)?;
                        latencies.push(t.elapsed());
                        i += concurrency;
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    });
    let mut all = Latencies::default();
    for r in results {
        all.extend(r?);
    }
    Ok(Load {
        count: all.len(),
        latencies: all,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `concurrency` tasks each awaiting `call(i)` until `seconds` pass.
async fn drive_tasks<F, Fut>(concurrency: usize, seconds: f64, call: F) -> anyhow::Result<Load>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut i = worker;
            while Instant::now() < until {
                let t = Instant::now();
                call(i).await?;
                latencies.push(t.elapsed());
                i += concurrency;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(Load {
        count: all.len(),
        latencies: all,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub(crate) fn search_request(query: &BenchQuery, highlight: bool) -> pb::SearchRequest {
    let text = if query.phrase {
        format!("\"{}\"", query.words.join(" "))
    } else {
        query.words.join(" ")
    };
    let filter = query
        .dates
        .as_ref()
        .map(|(from, to)| format!("date >= \"{from}\" AND date < \"{to}\""))
        .unwrap_or_default();
    let facets = if query.facets {
        ["tags", "source"]
            .iter()
            .map(|f| pb::FacetRequest {
                field: (*f).into(),
                size: 10,
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    pb::SearchRequest {
        collection: "news".into(),
        query: text,
        filter,
        facets,
        page_size: 10,
        highlight: highlight.then(pb::HighlightOptions::default),
        ..Default::default()
    }
}

/// Channels for `concurrency` clients: one connection per 4 clients.
async fn channels(addr: &str, concurrency: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::new();
    for _ in 0..concurrency.div_ceil(4) {
        out.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    Ok(out)
}

async fn trove_search(
    addr: &str,
    queries: Arc<Vec<BenchQuery>>,
    concurrency: usize,
    seconds: f64,
    highlight: bool,
) -> anyhow::Result<Load> {
    let channels = Arc::new(channels(addr, concurrency).await?);
    drive_tasks(concurrency, seconds, move |i| {
        let mut client = SearchServiceClient::new(channels[i % channels.len()].clone())
            .max_decoding_message_size(64 << 20);
        let request = search_request(&queries[i % queries.len()], highlight);
        async move {
            client.search(request).await?;
            Ok(())
        }
    })
    .await
}

/// The documents and queries of the real-text corpus in `real` (at most `docs`
/// documents), or `docs` generated documents and `queries` queries drawn from them.
fn corpus_and_queries(
    real: Option<&std::path::Path>,
    docs: usize,
    seed: u64,
    queries: usize,
) -> anyhow::Result<(Vec<Doc>, Arc<Vec<BenchQuery>>)> {
    Ok(match real {
        Some(dir) => {
            let (docs, queries) = crate::real::load(dir, docs)?;
            (docs, Arc::new(queries))
        }
        None => {
            let mut corpus = Corpus::new(seed);
            let docs: Vec<Doc> = (0..docs).map(|_| corpus.next_doc()).collect();
            let queries = queries_for(&corpus, &docs, seed, queries);
            (docs, queries)
        }
    })
}

/// The fixed mixed query set over `corpus`'s vocabulary, with phrases from the
/// first 1,000 of its `docs`.
fn queries_for(corpus: &Corpus, docs: &[Doc], seed: u64, count: usize) -> Arc<Vec<BenchQuery>> {
    let bodies: Vec<&str> = docs
        .iter()
        .take(1000)
        .filter_map(|(_, f)| f.get("body").and_then(Value::as_str))
        .collect();
    Arc::new(query_set(seed, count, corpus.vocabulary(), &bodies))
}

/// Imports `docs` into `news` in one ImportDocuments stream.
async fn import(channel: &Channel, docs: &[Doc]) -> anyhow::Result<()> {
    let stream_docs = Arc::new(docs.to_vec());
    let requests = (0..stream_docs.len()).map(move |i| pb::ImportDocumentsRequest {
        collection: "news".into(),
        document: Some(pb::Document {
            id: stream_docs[i].0.clone(),
            fields: Some(fields_to_struct(stream_docs[i].1.clone())),
            ..Default::default()
        }),
        async_visibility: false,
    });
    let imported = DocumentServiceClient::new(channel.clone())
        .import_documents(tokio_stream::iter(requests))
        .await?
        .into_inner();
    anyhow::ensure!(
        imported.failed_count == 0,
        "import failures: {:?}",
        imported.failures
    );
    Ok(())
}

/// Single-document writes, each returning when searchable, one at a time for
/// `seconds` while `clients` clients search (none: no search load); ids start at
/// `visibility-{first}`. Returns the writes' latencies and the search load's figures.
async fn visibility_under_load(
    addr: &str,
    channel: &Channel,
    queries: Arc<Vec<BenchQuery>>,
    seconds: f64,
    seed: u64,
    first: usize,
    clients: usize,
) -> anyhow::Result<(Latencies, Option<Load>)> {
    let load = (clients > 0).then(|| {
        tokio::spawn({
            let (addr, queries) = (addr.to_owned(), queries.clone());
            async move { trove_search(&addr, queries, clients, seconds, false).await }
        })
    });
    let mut writer = DocumentServiceClient::new(channel.clone());
    let mut visibility = Latencies::default();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut extra = Corpus::new(seed ^ 0x5eed ^ first as u64);
    let mut n = first;
    while Instant::now() < until {
        let (_, fields) = extra.next_doc();
        let t = Instant::now();
        writer
            .create_document(pb::CreateDocumentRequest {
                collection: "news".into(),
                document: Some(pb::Document {
                    id: format!("visibility-{n}"),
                    fields: Some(fields_to_struct(fields)),
                    ..Default::default()
                }),
                async_visibility: false,
                request_id: String::new(),
            })
            .await?;
        visibility.push(t.elapsed());
        n += 1;
    }
    let load = match load {
        Some(load) => Some(load.await??),
        None => None,
    };
    Ok((visibility, load))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let (docs, queries) =
        corpus_and_queries(args.real.as_deref(), args.docs, args.seed, args.queries)?;
    let corpus_name = match &args.real {
        Some(dir) => format!("real text from {}", dir.display()),
        None => "generated".to_owned(),
    };
    let jsonl_bytes: usize = docs
        .iter()
        .map(|(id, fields)| {
            let mut line = fields.clone();
            line.insert("id".into(), id.clone().into());
            serde_json::to_string(&line).map_or(0, |s| s.len() + 1)
        })
        .sum();
    let mb = jsonl_bytes as f64 / 1e6;
    eprintln!(
        "corpus: {corpus_name}, {} documents, {mb:.1} MB of JSONL",
        docs.len()
    );

    // 1. Ingest.
    let mut trove = Server::spawn(&[], &work.path().join("trove.log"))?;
    let channel = trove.wait_serving().await?;
    create_news(&channel, "news").await?;
    let rss_empty = trove.resident_bytes()?;
    let started = Instant::now();
    import(&channel, &docs).await?;
    let trove_ingest = started.elapsed().as_secs_f64();
    let imported = Instant::now();
    eprintln!("trove ingest: {trove_ingest:.1} s");

    let started = Instant::now();
    let tantivy = {
        let docs = docs.clone();
        tokio::task::spawn_blocking(move || Tantivy::ingest(&docs)).await??
    };
    let tantivy_ingest = started.elapsed().as_secs_f64();
    eprintln!("tantivy ingest: {tantivy_ingest:.1} s");

    let started = Instant::now();
    let fts5 = {
        let (docs, dir) = (docs.clone(), work.path().to_owned());
        tokio::task::spawn_blocking(move || Fts5::ingest(&dir, &docs)).await??
    };
    let fts5_ingest = started.elapsed().as_secs_f64();
    eprintln!("FTS5 ingest: {fts5_ingest:.1} s");

    // 4. Memory of the trove process with the corpus loaded.
    let waited = trove.settle(SETTLE).await?;
    eprintln!(
        "trove idle after the import: waited {:.1} s",
        waited.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = trove.resident_bytes()?;
    let rss_at = imported.elapsed().as_secs_f64();
    // Again later after the import (30 s; less in short runs), once the
    // server has returned what it no longer uses.
    let later = Duration::from_secs_f64((args.seconds * 6.0).min(30.0));
    tokio::time::sleep(later.saturating_sub(imported.elapsed())).await;
    let rss_later = trove.resident_bytes()?;
    let collection_bytes = crate::server::collection_memory(&channel, "news").await?;
    let later = imported.elapsed().as_secs_f64();

    // 2. Search.
    let tantivy = Arc::new(tantivy);
    let fts5 = Arc::new(fts5);
    let mut search = Vec::new();
    for concurrency in [1, 16] {
        let (t, t_cpu) = with_cpu(
            Some(&trove),
            trove_search(
                &trove.addr,
                queries.clone(),
                concurrency,
                args.seconds,
                false,
            ),
        )
        .await?;
        eprintln!("trove search c{concurrency}: {:.0} q/s", t.rate());
        let q = queries.clone();
        let engine = tantivy.clone();
        let seconds = args.seconds;
        let (x, x_cpu) = with_cpu(None, async {
            tokio::task::spawn_blocking(move || {
                drive_threads(concurrency, seconds, |_, i| {
                    engine.search(&q[i % q.len()]).map(|_| ())
                })
            })
            .await?
        })
        .await?;
        eprintln!("tantivy search c{concurrency}: {:.0} q/s", x.rate());
        let q = queries.clone();
        let db = fts5.clone();
        let f = tokio::task::spawn_blocking(move || {
            let connections: Vec<_> = (0..concurrency)
                .map(|_| db.connect().map(std::sync::Mutex::new))
                .collect::<anyhow::Result<_>>()?;
            drive_threads(concurrency, seconds, |worker, i| {
                let conn = connections[worker]
                    .lock()
                    .expect("one thread per connection");
                Fts5::search(&conn, &q[i % q.len()]).map(|_| ())
            })
        })
        .await??;
        eprintln!("FTS5 search c{concurrency}: {:.0} q/s", f.rate());
        search.push((concurrency, t, x, f, t_cpu, x_cpu));
    }
    let highlighted = trove_search(&trove.addr, queries.clone(), 16, args.seconds, true).await?;

    // Searches one at a time, each followed by an empty unary call (the gRPC
    // floor), from the Rust client and from a Python one: its default channel.
    // On a runtime worker, as a service's handlers call (the main thread is not
    // one: every answer would wake it from another thread).
    let (alone, floor) = {
        let (channel, queries, seconds) = (channel.clone(), queries.clone(), 2.0 * args.seconds);
        tokio::spawn(async move { crate::real::alternating(&channel, &queries, seconds).await })
            .await??
    };
    eprintln!(
        "Rust client: search p50 {:.3} ms, floor p50 {:.3} ms",
        alone.percentile_ms(50.0),
        floor.percentile_ms(50.0)
    );
    let python = if crate::real::python_ready(&args.python) {
        let texts: Vec<String> = queries
            .iter()
            .map(|q| search_request(q, false).query)
            .collect();
        let (python, addr, seconds, dir) = (
            args.python.clone(),
            trove.addr.clone(),
            args.seconds,
            work.path().to_owned(),
        );
        let run = tokio::task::spawn_blocking(move || {
            crate::real::python_run(&python, &addr, &texts, seconds, &dir)
        })
        .await??;
        eprintln!("Python client: search p50 {:.3} ms", run.search_p50);
        Some(run)
    } else {
        eprintln!(
            "Python client phase left out: {} lacks grpcio, grpcio-tools or grpcio-health-checking",
            args.python.display()
        );
        None
    };

    // 5. Write visibility under the search load.
    let (visibility, under_load) = visibility_under_load(
        &trove.addr,
        &channel,
        queries.clone(),
        args.seconds,
        args.seed,
        0,
        16,
    )
    .await?;
    let under_load = under_load.context("the search load ran")?;

    // 3. Point reads: trove vs a bare tonic server answering the same document.
    let sample = DocumentServiceClient::new(channel.clone())
        .get_document(pb::GetDocumentRequest {
            collection: "news".into(),
            id: docs[0].0.clone(),
        })
        .await?
        .into_inner();
    let ids: Arc<Vec<String>> = Arc::new(docs.iter().map(|(id, _)| id.clone()).collect());
    let get_load = |addr: String, ids: Arc<Vec<String>>| async move {
        let channels = Arc::new(channels(&addr, 16).await?);
        drive_tasks(16, args.seconds, move |i| {
            let mut client = DocumentServiceClient::new(channels[i % channels.len()].clone());
            let id = ids[(i * 7919) % ids.len()].clone();
            async move {
                client
                    .get_document(pb::GetDocumentRequest {
                        collection: "news".into(),
                        id,
                    })
                    .await?;
                Ok(())
            }
        })
        .await
    };
    // The single-document commits above leave many small segments that tantivy
    // merges in the background; reads are measured on an idle server, as the bare
    // server is.
    let waited = trove.settle(SETTLE).await?;
    eprintln!(
        "trove idle after the writes: waited {:.1} s",
        waited.as_secs_f64()
    );
    let (trove_get, trove_get_cpu) =
        with_cpu(Some(&trove), get_load(trove.addr.clone(), ids.clone())).await?;
    // The same reads from h2load, of the one document the bare server answers
    // (as many calls for each server: about the tonic phase's worth).
    let h2load_request = work.path().join("get.bin");
    let h2load_calls = ((trove_get.rate() * args.seconds * 1.5) as usize).max(2000);
    let response_len = prost::Message::encoded_len(&sample);
    let trove_h2load = if h2load::available() {
        std::fs::write(
            &h2load_request,
            h2load::grpc_frame(&prost::Message::encode_to_vec(&pb::GetDocumentRequest {
                collection: "news".into(),
                id: docs[0].0.clone(),
            })),
        )?;
        Some(h2load_phase(&trove, &h2load_request, h2load_calls, response_len).await?)
    } else {
        None
    };
    trove.kill9()?;
    let fixed_path = work.path().join("fixed.pb");
    std::fs::write(&fixed_path, prost::Message::encode_to_vec(&sample))?;
    let fixed_args: Vec<String> = vec![
        "serve-fixed".into(),
        "--document".into(),
        fixed_path.to_string_lossy().into(),
    ];
    let mut bare = Server::spawn_bench_child(&fixed_args, &work.path().join("bare.log"))?;
    bare.wait_listening().await?;
    let (bare_get, bare_get_cpu) =
        with_cpu(Some(&bare), get_load(bare.addr.clone(), ids.clone())).await?;
    let bare_h2load = if trove_h2load.is_some() {
        Some(h2load_phase(&bare, &h2load_request, h2load_calls, response_len).await?)
    } else {
        None
    };
    drop(bare);
    // The same server decompressing the document as trove stores it before
    // each answer: the ceiling for a server that keeps its documents compressed.
    let mut read_args = fixed_args;
    read_args.extend(stored_like_trove(&docs, work.path())?);
    let mut bare_read = Server::spawn_bench_child(&read_args, &work.path().join("bare-read.log"))?;
    bare_read.wait_listening().await?;
    let (read_get, read_get_cpu) =
        with_cpu(Some(&bare_read), get_load(bare_read.addr.clone(), ids)).await?;
    drop(bare_read);

    // The table.
    let ratio = |a: f64, b: f64| format!("{:.2}x", a / b);
    println!(
        "trove-bench: {corpus_name}, {} documents ({mb:.1} MB of JSONL), {} queries, {} s per load phase, one run",
        docs.len(),
        queries.len(),
        args.seconds
    );
    println!();
    println!(
        "| measure | trove (gRPC) | tantivy (in-process) | SQLite FTS5 (in-process) | trove / tantivy | trove / FTS5 | target |"
    );
    println!("|---|---|---|---|---|---|---|");
    let per_s = |seconds: f64| docs.len() as f64 / seconds;
    println!(
        "| ingest, documents/s | {:.0} | {:.0} | {:.0} | {} | {} | ≥ 0.7x tantivy |",
        per_s(trove_ingest),
        per_s(tantivy_ingest),
        per_s(fts5_ingest),
        ratio(tantivy_ingest, trove_ingest),
        ratio(fts5_ingest, trove_ingest)
    );
    println!(
        "| ingest, MB/s | {:.1} | {:.1} | {:.1} | | | |",
        mb / trove_ingest,
        mb / tantivy_ingest,
        mb / fts5_ingest
    );
    for (concurrency, t, x, f, t_cpu, x_cpu) in &search {
        let target = if *concurrency == 16 {
            "≥ 0.8x tantivy, ≥ 5x FTS5"
        } else {
            ""
        };
        println!(
            "| search c{concurrency}, queries/s | {:.0} | {:.0} | {:.0} | {} | {} | {target} |",
            t.rate(),
            x.rate(),
            f.rate(),
            ratio(t.rate(), x.rate()),
            ratio(t.rate(), f.rate())
        );
        println!(
            "| search c{concurrency}, p50 / p99 ms | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | | | |",
            t.latencies.percentile_ms(50.0),
            t.latencies.percentile_ms(99.0),
            x.latencies.percentile_ms(50.0),
            x.latencies.percentile_ms(99.0),
            f.latencies.percentile_ms(50.0),
            f.latencies.percentile_ms(99.0)
        );
        println!(
            "| search c{concurrency}, CPU ms per query: server + benchmark client | {:.2} + {:.2} | {:.2} | | {} (server) | | |",
            t.cpu_ms_per_call(t_cpu.server),
            t.cpu_ms_per_call(t_cpu.client),
            x.cpu_ms_per_call(x_cpu.client),
            ratio(
                x.cpu_ms_per_call(x_cpu.client),
                t.cpu_ms_per_call(t_cpu.server)
            ),
        );
    }
    println!(
        "| search c16 with highlighting, queries/s | {:.0} | | | | | (reported apart) |",
        highlighted.rate()
    );
    println!();
    // Latency one call at a time, less the floor of the client's channel,
    // against tantivy's in-process latency.
    let (_, _, x1, ..) = &search[0];
    println!(
        "| search c1, top 10 with documents | client p50 / p99 ms | gRPC floor p50 / p99 ms | less the floor, p50 / p99 ms | tantivy p50 / p99 ms | (trove − floor) / tantivy, p50 / p99 | target |"
    );
    println!("|---|---|---|---|---|---|---|");
    let row = |client: &str, p50: f64, p99: f64, f50: f64, f99: f64| {
        let (x50, x99) = (
            x1.latencies.percentile_ms(50.0),
            x1.latencies.percentile_ms(99.0),
        );
        println!(
            "| {client} | {p50:.3} / {p99:.3} | {f50:.3} / {f99:.3} | {:.3} / {:.3} | {x50:.3} / {x99:.3} | {:.2}x / {:.2}x | ≤ 2x |",
            p50 - f50,
            p99 - f99,
            (p50 - f50) / x50,
            (p99 - f99) / x99
        );
    };
    row(
        &format!("Rust (tonic, {} searches)", alone.len()),
        alone.percentile_ms(50.0),
        alone.percentile_ms(99.0),
        floor.percentile_ms(50.0),
        floor.percentile_ms(99.0),
    );
    match &python {
        Some(run) => row(
            &format!("Python (grpcio, {} searches)", run.searches),
            run.search_p50,
            run.search_p99,
            run.floor_p50,
            run.floor_p99,
        ),
        None => println!("| Python (grpcio) | left out: no grpcio | | | | | ≤ 2x |"),
    }
    println!();
    println!(
        "| measure | trove | bare tonic | bare tonic + decompression | trove / bare | bare + decompression / bare | target |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| GetDocument c16, requests/s ({} byte document) | {:.0} | {:.0} | {:.0} | {} | {} | ≥ 0.8x |",
        prost::Message::encoded_len(&sample),
        trove_get.rate(),
        bare_get.rate(),
        read_get.rate(),
        ratio(trove_get.rate(), bare_get.rate()),
        ratio(read_get.rate(), bare_get.rate())
    );
    let micros = |load: &Load, cpu: f64| load.cpu_ms_per_call(cpu) * 1000.0;
    println!(
        "| GetDocument c16, CPU µs per request: server + benchmark client | {:.0} + {:.0} | {:.0} + {:.0} | {:.0} + {:.0} | {} (server) | {} (server) | |",
        micros(&trove_get, trove_get_cpu.server),
        micros(&trove_get, trove_get_cpu.client),
        micros(&bare_get, bare_get_cpu.server),
        micros(&bare_get, bare_get_cpu.client),
        micros(&read_get, read_get_cpu.server),
        micros(&read_get, read_get_cpu.client),
        ratio(
            bare_get.cpu_ms_per_call(bare_get_cpu.server),
            trove_get.cpu_ms_per_call(trove_get_cpu.server)
        ),
        ratio(
            bare_get.cpu_ms_per_call(bare_get_cpu.server),
            read_get.cpu_ms_per_call(read_get_cpu.server)
        ),
    );
    match (&trove_h2load, &bare_h2load) {
        (Some((trove_run, trove_cpu)), Some((bare_run, bare_cpu))) => {
            let per_call =
                |run: &h2load::H2Load, cpu: &Cpu| cpu.server * 1e6 / run.requests.max(1) as f64;
            println!(
                "| GetDocument c16 from h2load (one document, {} calls), requests/s (server CPU µs per request) | {:.0} ({:.0}) | {:.0} ({:.0}) | | {} | | ≥ 0.8x |",
                trove_run.requests,
                trove_run.rate(),
                per_call(trove_run, trove_cpu),
                bare_run.rate(),
                per_call(bare_run, bare_cpu),
                ratio(trove_run.rate(), bare_run.rate()),
            );
        }
        _ => println!(
            "| GetDocument c16 from h2load | left out: no h2load (Debian `nghttp2-client`) | | | | | ≥ 0.8x |"
        ),
    }
    println!();
    println!("| measure | trove | target |");
    println!("|---|---|---|");
    println!(
        "| resident memory / JSONL bytes | {:.2} ({:.0} MB / {mb:.0} MB) | |",
        rss as f64 / jsonl_bytes as f64,
        rss as f64 / 1e6
    );
    let growth = |rss: u64| rss.saturating_sub(rss_empty) as f64;
    println!(
        "| resident memory growth over the import / JSONL bytes, at {:.0} s / {later:.0} s after it | {:.2} / {:.2} ({:.0} / {:.0} MB over {:.0} MB empty) | ≤ 1.2 |",
        rss_at,
        growth(rss) / jsonl_bytes as f64,
        growth(rss_later) / jsonl_bytes as f64,
        growth(rss) / 1e6,
        growth(rss_later) / 1e6,
        rss_empty as f64 / 1e6
    );
    println!(
        "| of which the collection's own figure (GetCollection: documents and index) / JSONL bytes | {:.2} ({:.0} MB) | |",
        collection_bytes as f64 / jsonl_bytes as f64,
        collection_bytes as f64 / 1e6
    );
    println!(
        "| single-write visibility under c16 search, p50 / p99 ms ({} writes; search at {:.0} q/s) | {:.2} / {:.2} | p99 ≤ 25 |",
        visibility.len(),
        under_load.rate(),
        visibility.percentile_ms(50.0),
        visibility.percentile_ms(99.0)
    );
    Ok(())
}

/// Write visibility alone: the benchmark's phase 5, in several rounds, on a server
/// loaded with `docs` documents (no peers).
pub async fn visibility(args: VisibilityArgs) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let (docs, queries) = corpus_and_queries(args.real.as_deref(), args.docs, args.seed, 240)?;
    let mut trove = Server::spawn(&[], &work.path().join("trove.log"))?;
    let channel = trove.wait_serving().await?;
    create_news(&channel, "news").await?;
    import(&channel, &docs).await?;
    trove.settle(SETTLE).await?;
    let mut all = Latencies::default();
    for round in 0..args.rounds {
        let (latencies, load) = visibility_under_load(
            &trove.addr,
            &channel,
            queries.clone(),
            args.seconds,
            args.seed,
            round * 1_000_000,
            args.clients,
        )
        .await?;
        println!(
            "round {round}: {} writes, p50 / p99 / max {:.2} / {:.2} / {:.2} ms; search at {:.0} q/s ({} clients)",
            latencies.len(),
            latencies.percentile_ms(50.0),
            latencies.percentile_ms(99.0),
            latencies.percentile_ms(100.0),
            load.map_or(0.0, |l| l.rate()),
            args.clients
        );
        all.extend(latencies);
        trove.settle(SETTLE).await?;
    }
    println!(
        "all: {} writes, p50 / p99 {:.2} / {:.2} ms",
        all.len(),
        all.percentile_ms(50.0),
        all.percentile_ms(99.0)
    );
    Ok(())
}
