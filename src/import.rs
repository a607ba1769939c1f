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
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

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

/// The URI of `--addr`: `HOST:PORT` (as `--listen` takes it) means HTTP/2 on
/// that address, with TLS when `tls`; a URI with a scheme is taken as it is.
fn endpoint_uri(addr: &str, tls: bool) -> String {
    match (addr.contains("://"), tls) {
        (true, _) => addr.to_owned(),
        (false, true) => format!("https://{addr}"),
        (false, false) => format!("http://{addr}"),
    }
}

/// The channel `args` describe: plain, TLS (`--ca-cert`), or mutual TLS
/// (`--client-cert`, `--client-key`).
async fn connect(args: &ImportArgs) -> anyhow::Result<Channel> {
    let uri = endpoint_uri(&args.addr, args.ca_cert.is_some());
    let mut endpoint = Endpoint::from_shared(uri.clone()).context("invalid --addr")?;
    match (&args.ca_cert, uri.starts_with("https://")) {
        (Some(ca), _) => {
            let read = |path: &PathBuf, what: &str| {
                std::fs::read(path)
                    .with_context(|| format!("cannot read {what} {}", path.display()))
            };
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca, "--ca-cert")?));
            if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "--client-cert")?,
                    read(key, "--client-key")?,
                ));
            }
            if let Some(domain) = &args.tls_domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(tls).context("TLS settings")?;
        }
        (None, true) => bail!(
            "{uri} needs --ca-cert: the PEM file of the CA that signed the server's certificate"
        ),
        (None, false) if args.client_cert.is_some() || args.tls_domain.is_some() => {
            bail!("--client-cert and --tls-domain need TLS: pass --ca-cert too")
        }
        (None, false) => {}
    }
    endpoint.connect().await.map_err(|err| {
        let cause = error_chain(&err);
        let hint = if cause.contains("Connection refused") {
            "nothing listens there: is the server running, on that port?"
        } else if cause.contains("certificate") || cause.contains("InvalidCertificate") {
            "the server's certificate is not trusted: check --ca-cert, and --tls-domain if the \
             certificate names another host"
        } else if args.ca_cert.is_some() {
            "a TLS handshake failed: does the server use TLS (--tls-cert), and does it want a \
             client certificate (--client-cert, --client-key)?"
        } else {
            "if the server uses TLS, pass --ca-cert"
        };
        anyhow::anyhow!("cannot connect to {}: {cause} ({hint})", args.addr)
    })
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// What a failed import call means for the person running it.
fn explain(status: &tonic::Status, collection: &str) -> String {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => {
            " (the server wants an API key it knows: pass --api-key or set TROVE_API_KEY)"
        }
        tonic::Code::PermissionDenied => " (the API key needs the write scope on this collection)",
        tonic::Code::NotFound => {
            " (create the collection first: CollectionService/CreateCollection)"
        }
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
            if status.message().contains("error") =>
        {
            // A plain connection to a TLS port, or one without the client
            // certificate the server asks for, breaks at the first call.
            " (the connection broke: if the server uses TLS, pass --ca-cert; if it wants a \
             client certificate, --client-cert and --client-key)"
        }
        _ => "",
    };
    format!(
        "import into {collection:?} failed: {:?}: {}{hint}",
        status.code(),
        status.message()
    )
}

/// Adds `authorization: Bearer KEY` to every call when a key is given.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Runs an import and prints a summary; the progress bar goes to stderr when asked.
pub async fn run(args: &ImportArgs, progress: bool) -> anyhow::Result<Summary> {
    let channel = connect(args).await?;
    let key =
        match &args.api_key {
            None => None,
            Some(key) => Some(format!("Bearer {key}").parse().map_err(|_| {
                anyhow::anyhow!("--api-key holds characters a header cannot carry")
            })?),
        };
    let summary = import_as(
        channel,
        key,
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
    import_as(channel, None, collection, path, async_visibility, progress).await
}

/// Streams `path` into `collection` over `channel`, sending `key` (an
/// `authorization` value) when given.
async fn import_as(
    channel: Channel,
    key: Option<MetadataValue<Ascii>>,
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
        let mut client = DocumentServiceClient::with_interceptor(channel, Bearer(key))
            .max_decoding_message_size(256 << 20);
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
        .map_err(|status| anyhow::anyhow!(explain(&status, collection)))?
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
    fn an_address_without_a_scheme_is_http_or_https_with_a_ca() {
        assert_eq!(
            endpoint_uri("127.0.0.1:50061", false),
            "http://127.0.0.1:50061"
        );
        assert_eq!(endpoint_uri("localhost:1", false), "http://localhost:1");
        assert_eq!(endpoint_uri("localhost:1", true), "https://localhost:1");
        assert_eq!(
            endpoint_uri("https://example:443", false),
            "https://example:443"
        );
        assert_eq!(
            endpoint_uri("http://[::1]:50051", true),
            "http://[::1]:50051"
        );
    }
}
