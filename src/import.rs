//! `trove import`: streams a JSONL file or a directory of seed-style articles into
//! a collection through ImportDocuments, with a progress bar.
//!
//! A JSONL line is one JSON object: its `id` (a string) becomes the document id and
//! the other keys its fields. A line without `id` (or with `""` or `null`) gets
//! `<file stem>:<line number>`, so that running the same file again replaces the
//! same documents (idempotent); the wire's empty id, a new random one on every
//! run, is never sent.
//! Lines that are not JSON objects are reported by line number and not sent.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::api::fields_to_struct;
use crate::api::pb::document_service_client::DocumentServiceClient;
use crate::api::pb::{Document, ImportDocumentsRequest, ImportDocumentsResponse};
use crate::config::ImportArgs;
use crate::engine::Fields;
use crate::seeds;

/// Documents read ahead of the stream.
const READ_AHEAD: usize = 1024;

/// What an import did, with failures by line (or file) instead of stream index.
#[derive(Debug)]
pub struct Summary {
    pub imported: u64,
    /// `(where, message)`: a line number or file name, and why.
    pub failures: Vec<(String, String)>,
    pub bytes: u64,
    pub seconds: f64,
}

/// One document read from the input, with where it came from.
struct Item {
    origin: String,
    id: String,
    fields: Fields,
    bytes: u64,
}

/// The URI of `--addr`: `HOST:PORT` (as `--listen` takes it) means plain
/// HTTP/2 on that address; a URI with a scheme is taken as it is.
fn endpoint_uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// Runs an import and prints a summary; the progress bar goes to stderr when asked.
pub async fn run(args: &ImportArgs, progress: bool) -> anyhow::Result<Summary> {
    let channel = Channel::from_shared(endpoint_uri(&args.addr))
        .context("invalid --addr")?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", args.addr))?;
    let summary = import(
        channel,
        &args.collection,
        &args.path,
        args.async_visibility,
        progress,
    )
    .await?;
    println!(
        "imported {} documents ({} failed) in {:.1} s: {:.0} documents/s, {:.1} MB/s",
        summary.imported,
        summary.failures.len(),
        summary.seconds,
        summary.imported as f64 / summary.seconds.max(1e-9),
        summary.bytes as f64 / 1e6 / summary.seconds.max(1e-9),
    );
    for (origin, message) in summary.failures.iter().take(20) {
        println!("  {origin}: {message}");
    }
    if summary.failures.len() > 20 {
        println!("  … and {} more", summary.failures.len() - 20);
    }
    Ok(summary)
}

/// Streams `path` into `collection` over `channel`.
pub async fn import(
    channel: Channel,
    collection: &str,
    path: &Path,
    async_visibility: bool,
    progress: bool,
) -> anyhow::Result<Summary> {
    let (total_bytes, source) = source(path)?;
    let bar = if progress {
        ProgressBar::new(total_bytes)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} · {msg}",
        )
        .context("progress template")?,
    );
    let started = Instant::now();
    let (items_tx, mut items_rx) = mpsc::channel::<Result<Item, (String, String)>>(READ_AHEAD);
    let reader = tokio::task::spawn_blocking(move || source.read(&items_tx));

    // Requests go out as they are read; what each stream position came from is kept
    // to report failures by line.
    let (requests_tx, requests_rx) = mpsc::channel::<ImportDocumentsRequest>(READ_AHEAD);
    let mut call = {
        let mut client = DocumentServiceClient::new(channel).max_decoding_message_size(256 << 20);
        tokio::spawn(async move {
            client
                .import_documents(ReceiverStream::new(requests_rx))
                .await
        })
    };
    let mut origins = Vec::new();
    let mut failures = Vec::new();
    let mut bytes = 0u64;
    let mut ended = None;
    while let Some(item) = items_rx.recv().await {
        match item {
            Ok(item) => {
                bytes += item.bytes;
                bar.set_position(bytes);
                origins.push(item.origin);
                let request = ImportDocumentsRequest {
                    collection: if origins.len() == 1 {
                        collection.to_owned()
                    } else {
                        String::new()
                    },
                    document: Some(Document {
                        id: item.id,
                        fields: Some(fields_to_struct(item.fields)),
                        ..Default::default()
                    }),
                    async_visibility,
                };
                // The server may end the call before reading everything (a
                // missing collection, say); the stream is then no longer read, and
                // a send would wait forever.
                tokio::select! {
                    outcome = &mut call => {
                        ended = Some(outcome);
                        break;
                    }
                    sent = requests_tx.send(request) => {
                        if sent.is_err() {
                            break; // the call ended; its status says why
                        }
                    }
                }
                if origins.len() % 1000 == 0 {
                    let rate = origins.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!("{} documents, {rate:.0}/s", origins.len()));
                }
            }
            Err(failure) => failures.push(failure),
        }
    }
    drop(requests_tx);
    let outcome = match ended {
        Some(outcome) => outcome,
        None => call.await,
    };
    // Stops the reader if the call ended early.
    drop(items_rx);
    let response: ImportDocumentsResponse = outcome
        .context("import task")?
        .map_err(|status| {
            anyhow::anyhow!("import failed: {:?}: {}", status.code(), status.message())
        })?
        .into_inner();
    reader.await.context("reader task")??;
    bar.finish_and_clear();
    for failure in response.failures {
        let origin = origins
            .get(failure.index as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{}", failure.index));
        failures.push((origin, failure.message));
    }
    failures.sort_by_key(|(origin, _)| natural(origin));
    Ok(Summary {
        imported: response.imported_count as u64,
        failures,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Sorts `line 9` before `line 10`.
fn natural(origin: &str) -> (String, u64) {
    match origin.rsplit_once(' ') {
        Some((word, n)) => (word.to_owned(), n.parse().unwrap_or(0)),
        None => (origin.to_owned(), 0),
    }
}

enum Source {
    Jsonl(PathBuf),
    Articles(Vec<PathBuf>),
}

fn source(path: &Path) -> anyhow::Result<(u64, Source)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        return Ok((meta.len(), Source::Jsonl(path.to_owned())));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no *.txt articles", path.display());
    }
    let total = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    Ok((total, Source::Articles(files)))
}

type Sink = mpsc::Sender<Result<Item, (String, String)>>;

impl Source {
    /// Reads every document into `sink` (blocking).
    fn read(self, sink: &Sink) -> anyhow::Result<()> {
        match self {
            Source::Jsonl(path) => read_jsonl(&path, sink),
            Source::Articles(files) => {
                for file in files {
                    let origin = file.display().to_string();
                    let stem = file
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default()
                        .to_owned();
                    let item = std::fs::read_to_string(&file)
                        .map_err(|e| e.to_string())
                        .and_then(|text| {
                            let bytes = text.len() as u64;
                            seeds::parse_article(&text).map(|a| (a, bytes))
                        })
                        .map(|(article, bytes)| Item {
                            origin: origin.clone(),
                            id: stem,
                            fields: seeds::article_fields(article),
                            bytes,
                        })
                        .map_err(|message| (origin, message));
                    if sink.blocking_send(item).is_err() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

fn read_jsonl(path: &Path, sink: &Sink) -> anyhow::Result<()> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("line")
        .to_owned();
    let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let origin = format!("line {number}");
        let line = line.with_context(|| format!("reading {} at line {number}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let bytes = line.len() as u64 + 1;
        let item = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(mut fields)) => match fields.remove("id") {
                None | Some(serde_json::Value::Null) => Ok(format!("{stem}:{number}")),
                Some(serde_json::Value::String(id)) if id.is_empty() => {
                    Ok(format!("{stem}:{number}"))
                }
                Some(serde_json::Value::String(id)) => Ok(id),
                Some(other) => Err(format!("\"id\" must be a string, not {other}")),
            }
            .map(|id| Item {
                origin: origin.clone(),
                id,
                fields,
                bytes,
            }),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(err) => Err(format!("not JSON: {err}")),
        }
        .map_err(|message| (origin, message));
        if sink.blocking_send(item).is_err() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_scheme_is_plain_http() {
        assert_eq!(endpoint_uri("127.0.0.1:50061"), "http://127.0.0.1:50061");
        assert_eq!(endpoint_uri("localhost:1"), "http://localhost:1");
        assert_eq!(endpoint_uri("https://example:443"), "https://example:443");
        assert_eq!(endpoint_uri("http://[::1]:50051"), "http://[::1]:50051");
    }
}
