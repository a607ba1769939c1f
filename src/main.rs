//! The `trove` binary: parse the configuration, start tracing, bind, serve until
//! SIGINT or SIGTERM; or run `trove import` as a client.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use trove::config::{Cli, Run};

/// mimalloc: searches and writes allocate many small short-lived objects; glibc's
/// allocator spent about a tenth of the CPU of a search load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for them, and a
/// 2 MiB page of which a little is in use counts whole in the resident set: 130–180 MB
/// of the server's memory after importing 100,000 documents were huge pages, and
/// without them it held about 60 MB less (BENCHMARKS.md, the round on memory).
/// Searches were not measurably slower without them.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE sets a flag of this process; no memory is touched.
        if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
            let err = std::io::Error::last_os_error();
            tracing::warn!(%err, "cannot turn transparent huge pages off");
        }
    }
}

/// How often the process's CPU use is sampled to tell whether it is idle.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// Below this share of one core over an `IDLE_CHECK`, the server counts as idle.
const IDLE_SHARE: f64 = 0.1;

/// Keeps the resident set near what is in use once the server goes idle
/// (BENCHMARKS.md, the round on memory). mimalloc returns the memory it has freed only
/// when it is next called from a busy thread, so an idle server kept whatever indexing
/// and merging had freed: after a collection of 300 MB was deleted, an empty server held
/// 476 MB. While the server is idle this forces that return twice a second; under load
/// it does nothing, since memory handed back then would only be faulted in again.
fn release_memory_when_idle() {
    let purger = std::thread::Builder::new()
        .name("trove-purge".into())
        .spawn(|| {
            // mimalloc's collect does nothing on a thread that has never allocated.
            drop(std::hint::black_box(Box::new(0u64)));
            let mut before = process_cpu();
            loop {
                std::thread::sleep(IDLE_CHECK);
                let now = process_cpu();
                let idle = now.saturating_sub(before) < IDLE_CHECK.mul_f64(IDLE_SHARE);
                before = now;
                if idle {
                    // SAFETY: mi_collect frees only what no one holds; forced, it
                    // also returns every thread's free arena memory, however recent.
                    // With nothing to return it costs a scan of the arenas' bitmaps.
                    unsafe { libmimalloc_sys::mi_collect(true) };
                }
            }
        });
    if let Err(err) = purger {
        tracing::warn!(%err, "cannot start the thread that returns free memory");
    }
}

/// CPU time (user and system) this process has used.
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into the pointer it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded, so it filled `usage`.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() -> anyhow::Result<()> {
    // Before any thread starts, so that all inherit it (engine/scheduling.rs).
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
    no_transparent_huge_pages();
    release_memory_when_idle();
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
