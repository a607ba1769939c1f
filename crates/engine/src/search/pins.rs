//! Pinned views: the views of a collection that search page tokens walk
//! through (not to be confused with snapshots, the on-disk copies).
//!
//! The first page of a search that has more pages pins the view it read; later
//! pages read the same view, so paging neither skips nor repeats documents while
//! writes go on, and shows documents as they were (a document deleted meanwhile
//! still appears). A pin lasts `ttl` after its last use. At most `capacity` views
//! are pinned: past that, the least recently used pin is dropped and its tokens
//! answer PAGE_TOKEN_EXPIRED. A pinned view holds what the index and the document
//! map had at its commit and have since replaced: the memory is bounded by the
//! capacity times the churn between a view and the newest one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::collection::View;
use crate::error::{EngineError, Result};

/// How long a pin lasts after its last use, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// How many views may be pinned at once, by default.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The pinned views of every collection.
pub struct Pins {
    ttl: Duration,
    capacity: usize,
    /// A parking_lot (std-like) mutex: held for map operations only, never across an `.await`.
    pinned: Mutex<HashMap<u64, (Arc<View>, Instant)>>,
}

impl Pins {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Pins {
            ttl,
            capacity: capacity.max(1),
            pinned: Mutex::new(HashMap::new()),
        }
    }

    /// Pins `view` (again) for `ttl` from now.
    pub fn pin(&self, view: &Arc<View>) {
        let now = Instant::now();
        let mut pinned = self.pinned.lock();
        if !pinned.contains_key(&view.id) && pinned.len() >= self.capacity {
            pinned.retain(|_, (_, expires)| *expires > now);
            if pinned.len() >= self.capacity {
                if let Some(oldest) = pinned
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(id, _)| *id)
                {
                    pinned.remove(&oldest);
                }
            }
        }
        pinned.insert(view.id, (view.clone(), now + self.ttl));
    }

    /// The pinned view `id`, extending its pin; PAGE_TOKEN_EXPIRED if it is gone.
    pub fn get(&self, id: u64) -> Result<Arc<View>> {
        let now = Instant::now();
        let mut pinned = self.pinned.lock();
        match pinned.get_mut(&id) {
            Some((view, expires)) if *expires > now => {
                *expires = now + self.ttl;
                Ok(view.clone())
            }
            Some(_) => {
                pinned.remove(&id);
                Err(self.expired())
            }
            None => Err(self.expired()),
        }
    }

    /// How many views are pinned now.
    pub fn len(&self) -> usize {
        self.pinned.lock().len()
    }
}

impl Pins {
    fn expired(&self) -> EngineError {
        EngineError::PageTokenExpired(format!(
            "the snapshot this page token walks was released (a snapshot stays pinned {} after \
             its last page, and at most {} are pinned at once); start again from the first page",
            lifetime(self.ttl),
            self.capacity
        ))
    }
}

/// `ttl` as a person would say it: `10 minutes`, `90 seconds`.
fn lifetime(ttl: Duration) -> String {
    let seconds = ttl.as_secs();
    match seconds {
        1 => "1 second".into(),
        60 => "1 minute".into(),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

impl Default for Pins {
    fn default() -> Self {
        Pins::new(DEFAULT_TTL, DEFAULT_CAPACITY)
    }
}
