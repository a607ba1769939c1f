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

/// Errors end the process with one line on stderr and status 1: they are the
/// user's to act on (a flag, an address, a file), and a backtrace (with
/// `RUST_BACKTRACE` set, as on many developer machines) would bury the reason.
fn main() -> std::process::ExitCode {
    // Before any thread starts, so that all inherit it (trove-engine's scheduling.rs).
    trove::engine::shorten_time_slice();
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(process::collect_when_parked)
        .thread_keep_alive(process::BLOCKING_THREAD_KEEP_ALIVE)
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run()));
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("trove: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = match Cli::parse().into_run() {
        Run::Serve(config) => *config,
        Run::Import(args) => {
            let quiet = args.quiet;
            let summary = trove::import::run(&args, !quiet).await?;
            if !summary.failures.is_empty() && !args.allow_failures {
                anyhow::bail!(
                    "{} of {} documents failed (listed above; --allow-failures exits 0 all the same)",
                    summary.failures.len(),
                    summary.failures.len() as u64 + summary.imported
                );
            }
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
