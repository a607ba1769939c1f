//! Command-line and environment configuration (clap). Every flag also reads a
//! `TROVE_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::storage::Fsync;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The default seeds directory.
pub const DEFAULT_SEEDS: &str = "./seeds";

/// The default life of a search snapshot after its last use, in seconds.
pub const DEFAULT_SNAPSHOT_TTL_SECS: u64 = 600;
/// The default number of search snapshots that may be pinned at once.
pub const DEFAULT_MAX_SNAPSHOTS: usize = 1024;

/// trove: a document store and full-text search service that speaks gRPC.
#[derive(Debug, Parser)]
#[command(name = "trove", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, which a bare `trove` runs.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve(Box<Config>),
    /// Load a JSONL file (one JSON object per line) or a directory of seed-style text
    /// files into a collection of a running server, through ImportDocuments.
    Import(ImportArgs),
}

/// What `trove import` loads, and where.
#[derive(Clone, Debug, Args)]
pub struct ImportArgs {
    /// The collection to load into; it must exist.
    #[arg(long)]
    pub collection: String,
    /// The server: `HOST:PORT` (as `--listen` takes it) or a URI (`http://…`).
    #[arg(long, env = "TROVE_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// Return before the documents are searchable (they become so within a second).
    #[arg(long)]
    pub async_visibility: bool,
    /// No progress bar (a summary is still printed).
    #[arg(long)]
    pub quiet: bool,
    /// Exit with status 0 even when some lines failed (they are still listed).
    #[arg(long)]
    pub allow_failures: bool,
    /// The API key to send (`authorization: Bearer KEY`); needs the `write` scope.
    #[arg(long, env = "TROVE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Connect with TLS, trusting the CA in this PEM file (the one that signed the
    /// server's certificate, as `--tls-cert` gives it).
    #[arg(long, env = "TROVE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// A client certificate (PEM) for a server that asks for one (`--tls-client-ca`).
    #[arg(long, env = "TROVE_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "TROVE_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// The name the server's certificate must hold, when it is not the host of
    /// `--addr` (e.g. `localhost` while connecting to 127.0.0.1).
    #[arg(long, env = "TROVE_TLS_DOMAIN")]
    pub tls_domain: Option<String>,
    /// A `.jsonl` file, or a directory of `*.txt` articles that start with `date YYYY-MM-DD`.
    pub path: PathBuf,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Run {
    Serve(Box<Config>),
    Import(ImportArgs),
}

/// The server `trove import` talks to by default.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// The server's configuration.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// The address to listen on.
    #[arg(long, env = "TROVE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// A directory of seed articles to load into the `news` collection at start-up.
    #[arg(long, env = "TROVE_SEEDS", default_value = DEFAULT_SEEDS)]
    pub seeds: PathBuf,
    /// Do not load seeds.
    #[arg(long, env = "TROVE_NO_SEEDS")]
    pub no_seeds: bool,
    /// Seconds a search page token keeps its snapshot after its last use.
    #[arg(long, env = "TROVE_SNAPSHOT_TTL", default_value_t = DEFAULT_SNAPSHOT_TTL_SECS)]
    pub snapshot_ttl: u64,
    /// The most search snapshots page tokens may pin at once; past it the least
    /// recently used is released.
    #[arg(long, env = "TROVE_MAX_SNAPSHOTS", default_value_t = DEFAULT_MAX_SNAPSHOTS)]
    pub max_snapshots: usize,
    /// Keep the data durably in this directory (a write-ahead log and checkpoints).
    /// Without it, trove is a pure in-memory store that writes nothing.
    #[arg(long, env = "TROVE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: `always` fsyncs every write before acknowledging it
    /// (concurrent writes share one fsync); `interval=100ms` fsyncs in the
    /// background, so a crash or power loss may lose the last interval's writes.
    #[arg(long, env = "TROVE_FSYNC", default_value = "always", value_parser = parse_fsync)]
    pub fsync: Fsync,
    /// Where SnapshotService writes and reads snapshots. Default: `DATA/snapshots`
    /// with --data-dir, else `./snapshots`.
    #[arg(long, env = "TROVE_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Start from this snapshot: its collections are loaded at start-up if the
    /// server has none yet (so a restart of a durable server does not load it twice).
    #[arg(long, env = "TROVE_FROM_SNAPSHOT")]
    pub from_snapshot: Option<PathBuf>,
    /// With --data-dir: write a checkpoint (and drop the log before it) once the
    /// log has grown by this many bytes.
    #[arg(long, env = "TROVE_CHECKPOINT_BYTES", default_value_t = DEFAULT_CHECKPOINT_BYTES)]
    pub checkpoint_bytes: u64,
    /// A TOML file of API keys (`[[keys]]` with `key`, `scope` = read | write |
    /// admin, optional `collections` and `rate_per_s`). Requests must then send
    /// `authorization: Bearer <key>`; SIGHUP reloads the file.
    #[arg(long, env = "TROVE_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "TROVE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "TROVE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: accept only clients with a certificate signed by this CA (PEM).
    #[arg(long, env = "TROVE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9090).
    #[arg(long, env = "TROVE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The most requests in progress at once, over all connections; beyond it a
    /// request is answered RESOURCE_EXHAUSTED at once (health is never refused).
    #[arg(long, env = "TROVE_MAX_CONCURRENT_REQUESTS", default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// The most concurrent streams (requests) one HTTP/2 connection may open.
    #[arg(long, env = "TROVE_MAX_CONCURRENT_STREAMS", default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS)]
    pub max_concurrent_streams: u32,
    /// Close connections older than this (e.g. `10m`), after their requests finish,
    /// so that clients reconnect and spread over the servers behind a balancer.
    #[arg(long, env = "TROVE_MAX_CONNECTION_AGE", value_parser = parse_age)]
    pub max_connection_age: Option<std::time::Duration>,
    /// Refuse writes (RESOURCE_EXHAUSTED) before the process's resident memory
    /// would exceed this (e.g. `4GiB`); reads and deletes go on.
    #[arg(long, env = "TROVE_MAX_MEMORY", value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Keep up to this many bytes (estimated) of decoded documents for reads
    /// and search hits that come again (e.g. `256MiB`; `0` keeps none).
    #[arg(long, env = "TROVE_DOCUMENT_CACHE", default_value = "64MiB", value_parser = parse_size_or_zero)]
    pub document_cache: u64,
    /// How long a request's message may take to arrive (from its headers),
    /// and a streamed request's next message after the one before; past it
    /// the request is DEADLINE_EXCEEDED. No request holds a place among
    /// --max-concurrent-requests until its message has arrived.
    #[arg(long, env = "TROVE_RECEIVE_TIMEOUT", default_value = "10s", value_parser = parse_age)]
    pub receive_timeout: std::time::Duration,
    /// How long a client may take to read a response; past it the response
    /// is ended (its stream reset) and its memory freed. A response holds its
    /// place among --max-concurrent-requests until it has been read.
    #[arg(long, env = "TROVE_SEND_TIMEOUT", default_value = "30s", value_parser = parse_age)]
    pub send_timeout: std::time::Duration,
    /// The most collections the server holds; CreateCollection and
    /// RestoreSnapshot beyond it are RESOURCE_EXHAUSTED.
    #[arg(long, env = "TROVE_MAX_COLLECTIONS", default_value_t = crate::engine::DEFAULT_MAX_COLLECTIONS)]
    pub max_collections: usize,
    /// When responses are compressed (gzip or zstd, as the client accepts):
    /// `auto` when the request itself was compressed, `always` whenever the
    /// client accepts it, `never`.
    #[arg(long, env = "TROVE_COMPRESS_RESPONSES", value_enum, default_value_t = CompressResponses::Auto)]
    pub compress_responses: CompressResponses,
    /// Allow listening on a non-loopback address without API keys.
    #[arg(long, env = "TROVE_INSECURE")]
    pub insecure: bool,
}

/// The default bound on requests in progress.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
/// The default bound on streams per connection.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;

/// Parses a size (`512MiB`, `4GB`, `1073741824`).
fn parse_size(text: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    if size.as_u64() == 0 {
        return Err(format!("{text:?}: the size must be above 0"));
    }
    Ok(size.as_u64())
}

/// Parses a size of 0 or more (`0`, `64MiB`).
fn parse_size_or_zero(text: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok(size.as_u64())
}

/// Parses a duration above 0 (`30s`, `10m`).
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let age = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if age.is_zero() {
        return Err(format!("{text:?}: the duration must be above 0"));
    }
    Ok(age)
}

/// The default log growth between checkpoints.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 32 << 20;

impl Config {
    /// The snapshot directory in effect (see `--snapshot-dir`).
    pub fn snapshot_root(&self) -> PathBuf {
        match (&self.snapshot_dir, &self.data_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(data)) => data.join("snapshots"),
            (None, None) => PathBuf::from("snapshots"),
        }
    }
}

/// When the server compresses its responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressResponses {
    /// When the request was compressed: a client that compresses what it sends
    /// has asked for compression; one that only accepts it (grpcio, grpc-go and
    /// grpc-java advertise gzip on every channel) is served uncompressed, which
    /// costs less CPU than it saves on a fast network.
    Auto,
    /// Whenever the client accepts an encoding the server has.
    Always,
    Never,
}

/// Parses `always` or `interval=DURATION` (`100ms`, `1s`).
pub fn parse_fsync(text: &str) -> Result<Fsync, String> {
    if text == "always" {
        return Ok(Fsync::Always);
    }
    let Some(every) = text.strip_prefix("interval=") else {
        return Err(format!(
            "{text:?}: expected `always` or `interval=DURATION` (e.g. interval=100ms)"
        ));
    };
    let every = humantime::parse_duration(every).map_err(|e| format!("{every:?}: {e}"))?;
    if every.is_zero() || every > std::time::Duration::from_secs(60) {
        return Err(format!(
            "{text:?}: the interval must be above 0 and at most 60s"
        ));
    }
    Ok(Fsync::Interval(every))
}

impl Cli {
    /// What to run: `serve` (also bare `trove`) or `import`.
    pub fn into_run(self) -> Run {
        match self.command {
            Some(Command::Serve(config)) => Run::Serve(config),
            Some(Command::Import(args)) => Run::Import(args),
            None => Run::Serve(Box::new(self.serve)),
        }
    }
}

impl Config {
    /// A configuration for tests: an ephemeral loopback port and no seeds.
    pub fn for_tests() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seeds: PathBuf::from(DEFAULT_SEEDS),
            no_seeds: true,
            snapshot_ttl: DEFAULT_SNAPSHOT_TTL_SECS,
            max_snapshots: DEFAULT_MAX_SNAPSHOTS,
            data_dir: None,
            fsync: Fsync::Always,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            snapshot_dir: None,
            from_snapshot: None,
            api_keys: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            metrics_listen: None,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_connection_age: None,
            max_memory: None,
            document_cache: crate::engine::DEFAULT_DOCUMENT_CACHE_BYTES,
            max_collections: crate::engine::DEFAULT_MAX_COLLECTIONS,
            receive_timeout: std::time::Duration::from_secs(10),
            send_timeout: std::time::Duration::from_secs(30),
            compress_responses: CompressResponses::Auto,
            insecure: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Config {
        match Cli::parse_from(args).into_run() {
            Run::Serve(config) => *config,
            Run::Import(_) => panic!("{args:?} is not serve"),
        }
    }

    #[test]
    fn bare_and_serve_parse_alike() {
        let bare = serve(&["trove", "--listen", "127.0.0.1:7", "--no-seeds"]);
        let served = serve(&["trove", "serve", "--listen", "127.0.0.1:7", "--no-seeds"]);
        assert_eq!(bare.listen, served.listen);
        assert!(bare.no_seeds && served.no_seeds);
        assert_eq!(serve(&["trove"]).listen.to_string(), DEFAULT_LISTEN);
        assert!(Cli::try_parse_from(["trove", "--listen", "nope"]).is_err());
        match Cli::parse_from(["trove", "import", "--collection", "news", "docs.jsonl"]).into_run()
        {
            Run::Import(args) => {
                assert_eq!(args.collection, "news");
                assert_eq!(args.addr, DEFAULT_ADDR);
            }
            Run::Serve(_) => panic!("import parsed as serve"),
        }
        assert!(
            Cli::try_parse_from(["trove", "import", "docs.jsonl"]).is_err(),
            "--collection is required"
        );
    }

    #[test]
    fn fsync_settings() {
        assert_eq!(serve(&["trove"]).fsync, Fsync::Always);
        assert_eq!(
            serve(&["trove", "--fsync", "interval=100ms"]).fsync,
            Fsync::Interval(std::time::Duration::from_millis(100))
        );
        for bad in [
            "sometimes",
            "interval=",
            "interval=0s",
            "interval=2h",
            "interval=fast",
        ] {
            assert!(
                Cli::try_parse_from(["trove", "--fsync", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(serve(&["trove"]).data_dir.is_none());
    }
}
