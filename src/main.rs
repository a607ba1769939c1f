//! The `trove` binary: parse the configuration, start tracing, bind, serve until
//! SIGINT or SIGTERM; or run `trove import` as a client.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use trove::config::{Cli, Run};

/// mimalloc: searches and writes allocate many small short-lived objects, which
/// glibc's allocator served at a measurable share of a search load's CPU
/// (docs/decisions.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod process;

fn main() -> anyhow::Result<()> {
    // Before any thread starts, so that all inherit it (trove-engine's scheduling.rs).
    trove::engine::shorten_time_slice();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let config = match Cli::parse().into_run() {
        Run::Serve(config) => *config,
        Run::Import(args) => {
            let quiet = args.quiet;
            trove::import::run(&args, !quiet).await?;
            return Ok(());
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TROVE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    process::no_transparent_huge_pages();
    process::release_memory_when_idle();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    trove::server::run(config, listener, shutdown_signal()).await
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
