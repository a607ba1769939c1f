//! The threads searches run on: one per core, at a lower scheduling priority
//! than the rest of the server.
//!
//! Under a search load a write that waits for visibility waits for a tantivy
//! commit; with searches on the same threads as everything else, the commit got
//! a small share of two cores and a visible write's p99 grew past 200 ms. Searches
//! beyond one per core queue here, and their threads are niced, so a commit runs
//! almost as if the searches were not there. Written by hand: a handful of lines
//! over a channel, where a thread-pool crate would not set the priority either.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::error::{EngineError, Result};

/// The nice value of search threads (0 is normal, 19 the lowest priority).
const SEARCH_NICE: libc::c_int = 5;

type Job = Box<dyn FnOnce() + Send>;

pub struct SearchPool {
    jobs: Sender<Job>,
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
        SearchPool { jobs }
    }

    /// Runs `f` on a search thread. A panic in `f` is an internal error, not a
    /// lost thread.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(EngineError::Internal("a search panicked".into())));
            let _ = done.send(outcome);
        });
        self.jobs
            .send(job)
            .map_err(|_| EngineError::Internal("the search threads are gone".into()))?;
        result
            .await
            .map_err(|_| EngineError::Internal("a search thread dropped its job".into()))?
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    // SAFETY: setpriority on the calling thread (Linux: `who` 0 is this thread)
    // only changes its scheduling weight.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, SEARCH_NICE);
    }
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
