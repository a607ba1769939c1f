//! Command-line and environment configuration (clap). Every flag also reads a
//! `TROVE_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Serve(Config),
}

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
}

impl Cli {
    /// The server configuration, whether given with `serve` or bare.
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(config)) => config,
            None => self.serve,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_serve_parse_alike() {
        let bare =
            Cli::parse_from(["trove", "--listen", "127.0.0.1:7", "--no-seeds"]).into_config();
        let serve = Cli::parse_from(["trove", "serve", "--listen", "127.0.0.1:7", "--no-seeds"])
            .into_config();
        assert_eq!(bare.listen, serve.listen);
        assert!(bare.no_seeds && serve.no_seeds);
        let default = Cli::parse_from(["trove"]).into_config();
        assert_eq!(default.listen.to_string(), DEFAULT_LISTEN);
        assert!(Cli::try_parse_from(["trove", "--listen", "nope"]).is_err());
    }
}
