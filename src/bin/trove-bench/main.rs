//! `trove-bench`: reproducible measurements of trove through its gRPC API,
//! against the `trove` binary built next to it.
//!
//! ```text
//! cargo build --release
//! target/release/trove-bench generate --docs 100000 > news.jsonl
//! target/release/trove-bench durability --docs 100000
//! ```

mod corpus;
mod durability;
mod server;
mod stats;

use std::io::Write;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "trove-bench", about = "Measure trove through its gRPC API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate { docs, seed } => {
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
        Command::Durability(args) => durability::run(args).await?,
    }
    Ok(())
}
