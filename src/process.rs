//! Process set-up of the `trove` binary: how its memory is kept (no
//! transparent huge pages; free memory returned while idle, by a purge thread
//! and by each runtime thread as it parks).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Turns transparent huge pages off for this process. mimalloc asks for them, and a
/// 2 MiB page of which a little is in use counts whole in the resident set; searches
/// were not measurably slower without them (docs/decisions.md, the round on memory).
pub fn no_transparent_huge_pages() {
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
/// (docs/decisions.md, the round on memory). mimalloc returns the memory it has freed
/// only when it is next called from a busy thread, so an idle server kept whatever
/// indexing and merging had freed, even after the collection that used it was
/// deleted. While the server is idle this forces that return twice a second; under
/// load it does nothing, since memory handed back then would only be faulted in again.
pub fn release_memory_when_idle() {
    let purger = std::thread::Builder::new()
        .name("trove-purge".into())
        .spawn(|| {
            // mimalloc's collect does nothing on a thread that has never allocated.
            drop(std::hint::black_box(Box::new(0u64)));
            let mut before = process_cpu();
            let mut was_idle = false;
            loop {
                std::thread::sleep(IDLE_CHECK);
                let now = process_cpu();
                let idle = now.saturating_sub(before) < IDLE_CHECK.mul_f64(IDLE_SHARE);
                before = now;
                if idle && !was_idle {
                    IDLE_PERIODS.fetch_add(1, Ordering::Relaxed);
                    // What an import stemmed is not needed again until the next one.
                    trove_engine::forget_stems();
                }
                was_idle = idle;
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

/// How long a blocking thread waits for more work before it ends (tokio's default
/// is 10 s). Writes and imports run on these threads, and a thread's free pages
/// return to the OS only when it ends or allocates again (docs/decisions.md).
pub const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Counts the times the server has gone idle; a runtime thread that has not
/// collected since the last of them collects when it next parks.
static IDLE_PERIODS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COLLECTED_IN: Cell<u64> = const { Cell::new(0) };
}

/// For the runtime's `on_thread_park`: once per idle period, the parking thread
/// hands its own free pages back (docs/decisions.md, runtime threads collecting
/// once idle).
/// The purge thread's collect cannot: mimalloc frees a page that became empty on
/// a thread only from that thread, and a parked runtime thread makes no call
/// into mimalloc that would.
pub fn collect_when_parked() {
    let period = IDLE_PERIODS.load(Ordering::Relaxed);
    if COLLECTED_IN.get() != period {
        COLLECTED_IN.set(period);
        // SAFETY: as in `release_memory_when_idle`; this thread holds no
        // allocator state across the call.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}
