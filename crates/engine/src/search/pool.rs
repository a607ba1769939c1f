//! The threads searches run on: one per core, at a lower scheduling priority
//! than the rest of the server.
//!
//! Under a search load a write that waits for visibility waits for a tantivy
//! commit; with searches on the same threads as everything else, the commit got
//! a small share of two cores and a visible write's p99 grew many times over. Searches
//! beyond one per core queue here, and their threads are niced, so a commit runs
//! almost as if the searches were not there. Written by hand: a handful of lines
//! over a channel, where a thread-pool crate would not set the priority either.
//!
//! A search that finds no other search queued or running runs at once on the
//! thread that asked for it: handing it over and back cost two thread
//! wake-ups, a large share of a quick search (see docs/decisions.md). Only one
//! search at a time runs so, so at most one of the runtime's threads is busy
//! with a search; a machine with a single core always hands searches over.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use crate::error::{EngineError, Result};

/// The nice value of search threads (0 is normal, 19 the lowest priority).
const SEARCH_NICE: libc::c_int = 5;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The cancellation flag of the job running on this search thread.
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Whether the caller of the job running on this thread has gone away (its
/// deadline passed, or the client cancelled): the job should stop. Collectors
/// check it between segments.
pub fn cancelled() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    })
}

/// Sets its flag when dropped before `done`: the waiting future was dropped.
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    done: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.done {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

pub struct SearchPool {
    jobs: Sender<Job>,
    /// Searches queued or running, here or on the caller's thread.
    busy: Arc<AtomicUsize>,
    /// Whether an idle pool's search may run on the caller's thread.
    inline: bool,
}

/// Counts a search out of [`SearchPool::busy`] when dropped.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f` with `flag` as [`cancelled`]'s flag; a panic is an internal error.
fn run_job<T>(flag: Arc<AtomicBool>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let previous = CURRENT.with(|current| current.borrow_mut().replace(flag));
    let outcome = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(EngineError::Internal("a search panicked".into())));
    CURRENT.with(|current| *current.borrow_mut() = previous);
    outcome
}

impl SearchPool {
    /// `threads` search threads; they end when the pool is dropped.
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("trove-search-{i}"))
                .spawn(move || work(&queue))
                .expect("spawning a search thread");
        }
        SearchPool {
            jobs,
            busy: Arc::default(),
            inline: threads >= 2,
        }
    }

    /// Runs `f` on a search thread. A panic in `f` is an internal error, not a
    /// lost thread. If the returned future is dropped (the request's deadline
    /// passed or its client went away), a job still queued does not run and a
    /// running one sees [`cancelled`].
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.inline
            && self
                .busy
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let _busy = Busy(self.busy.clone());
            return run_job(Arc::default(), f);
        }
        self.busy.fetch_add(1, Ordering::AcqRel);
        let busy = Busy(self.busy.clone());
        let (done, result) = tokio::sync::oneshot::channel();
        let mut guard = CancelOnDrop {
            flag: Arc::new(AtomicBool::new(false)),
            done: false,
        };
        let flag = guard.flag.clone();
        let job: Job = Box::new(move || {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            let outcome = run_job(flag, f);
            // Counted out before the caller can see the outcome (and search again).
            drop(busy);
            let _ = done.send(outcome);
        });
        self.jobs
            .send(job)
            .map_err(|_| EngineError::Internal("the search threads are gone".into()))?;
        let outcome = result
            .await
            .map_err(|_| EngineError::Internal("a search thread dropped its job".into()))?;
        guard.done = true;
        outcome
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    // SAFETY: setpriority on the calling thread (Linux: `who` 0 is this thread)
    // only changes its scheduling weight.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, SEARCH_NICE);
    }
    // The server's other threads ask for short time slices (`scheduling.rs`); a
    // search runs for milliseconds and takes the default.
    crate::scheduling::default_time_slice();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_dropped_request_skips_its_queued_job_and_stops_a_running_one() {
        let pool = SearchPool::new(1);
        // A running job that waits until it is cancelled, then until released.
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let saw_cancel = Arc::new(AtomicBool::new(false));
        let saw = saw_cancel.clone();
        let running = pool.run(move || {
            let _ = started_tx.send(());
            while !cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            saw.store(true, Ordering::Relaxed);
            let _ = release_rx.recv();
            Ok(())
        });
        // A job queued behind it.
        let queued_ran = Arc::new(AtomicBool::new(false));
        let ran = queued_ran.clone();
        let queued = pool.run(move || {
            ran.store(true, Ordering::Relaxed);
            Ok(())
        });
        // Both callers give up once the first job runs (as at a deadline).
        let both = async { tokio::join!(running, queued) };
        tokio::select! {
            _ = both => panic!("the jobs finished"),
            started = started_rx => started.unwrap(),
        }
        release_tx.send(()).unwrap();
        // The thread is free again; the queued job never ran.
        pool.run(|| Ok(())).await.unwrap();
        assert!(saw_cancel.load(Ordering::Relaxed));
        assert!(!queued_ran.load(Ordering::Relaxed));
        assert!(!cancelled(), "no flag outside a job");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_pool_runs_a_search_on_the_callers_thread_and_a_busy_one_hands_it_over() {
        let pool = Arc::new(SearchPool::new(2));
        let caller = std::thread::current().id();
        let ran_on = pool.run(|| Ok(std::thread::current().id())).await.unwrap();
        assert_eq!(ran_on, caller);

        // While a search is in progress, the next one goes to a search thread.
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
            }
        });
        started_rx.await.unwrap();
        let name = pool
            .run(|| Ok(std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("trove-search-")));
        release_tx.send(()).unwrap();
        first.await.unwrap().unwrap();
        // Idle again: back on the caller's thread; a panic is still an error.
        assert_eq!(
            pool.run(|| Ok(std::thread::current().id())).await.unwrap(),
            caller
        );
        let panicked: Result<()> = pool.run(|| panic!("boom")).await;
        assert!(panicked.is_err());
    }
}
