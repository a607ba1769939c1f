//! `trove-bench`: reproducible measurements of trove through its gRPC API,
//! against the `trove` binary built next to it.
//!
//! ```text
//! cargo build --release
//! target/release/trove-bench --docs 100000          # trove vs tantivy, FTS5, bare tonic
//! target/release/trove-bench generate --docs 100000 > news.jsonl
//! target/release/trove-bench durability --docs 100000
//! target/release/trove-bench load                    # overload: shedding, health, recovery
//! target/release/trove-bench visibility --docs 20000  # write visibility alone, in rounds
//! ```

mod bench;
mod corpus;
mod durability;
mod fixed;
mod h2load;
mod load;
mod peers;
mod queries;
mod real;
mod server;
mod stats;

use std::io::Write;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trove-bench",
    about = "Measure trove through its gRPC API",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of the benchmark, which a bare `trove-bench` runs.
    #[command(flatten)]
    bench: bench::Args,
}

#[derive(Subcommand)]
enum Command {
    /// Write a deterministic news-like corpus as JSONL (`id` plus fields) to stdout.
    Generate {
        #[arg(long, default_value_t = 100_000)]
        docs: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write throughput in memory vs durable, and recovery time.
    Durability(durability::Args),
    /// Write visibility alone (the benchmark's phase 5) over several rounds.
    Visibility(bench::VisibilityArgs),
    /// Overload: searches at several times the saturation rate; health, shedding
    /// and recovery.
    Load(load::Args),
    /// (internal) The bare tonic server the benchmark compares GetDocument with.
    #[command(hide = true)]
    ServeFixed {
        /// A file holding the encoded `trove.v1.Document` to answer.
        #[arg(long)]
        document: std::path::PathBuf,
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// A stored document's compressed body, decompressed before each answer.
        #[arg(long)]
        read_body: Option<std::path::PathBuf>,
        /// The dictionary `--read-body` was compressed with, as
        /// `Dictionary::bytes` gives it.
        #[arg(long, requires = "read_body")]
        read_dictionary: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => bench::run(cli.bench).await?,
        Some(Command::Generate { docs, seed }) => {
            let mut corpus = corpus::Corpus::new(seed);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for _ in 0..docs {
                let (id, mut fields) = corpus.next_doc();
                fields.insert("id".into(), id.into());
                serde_json::to_writer(&mut out, &fields)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Some(Command::Durability(args)) => durability::run(args).await?,
        Some(Command::Load(args)) => load::run(args).await?,
        Some(Command::Visibility(args)) => bench::visibility(args).await?,
        Some(Command::ServeFixed {
            document,
            listen,
            read_body,
            read_dictionary,
        }) => {
            let bytes = std::fs::read(document)?;
            let document: trove::api::pb::Document = prost::Message::decode(&bytes[..])?;
            let read = match read_body {
                None => None,
                Some(body) => Some(fixed::stored_doc(&body, read_dictionary.as_deref())?),
            };
            fixed::serve(listen, document, read).await?;
        }
    }
    Ok(())
}
