//! Safe retries (AIP-155): the outcome of each write that carried a
//! `request_id`, kept for [`WINDOW`], so that a retry returns the first outcome
//! instead of writing twice. In the durable mode the ids travel in the log and
//! the checkpoints, so the window survives a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::document::StoredDoc;
use crate::error::{EngineError, Result};
use crate::names::DocId;
use crate::timestamp::now_micros;

/// How long a request id is remembered: one hour.
pub const WINDOW_MICROS: i64 = 3600 * 1_000_000;
/// The most request ids remembered; past it the oldest are forgotten early.
pub const MAX_REMEMBERED: usize = 1_000_000;
/// The longest request id accepted, in bytes.
pub const MAX_REQUEST_ID_BYTES: usize = 256;

/// A write's request id, what it asked for, and when.
#[derive(Clone, Debug)]
pub struct RequestTag {
    pub id: String,
    /// The method and its target: a retry must ask for the same.
    pub fingerprint: String,
    /// Microseconds since the epoch.
    pub at: i64,
}

impl RequestTag {
    /// The tag of a write with `request_id` (empty: none), checked.
    pub fn new(request_id: &str, fingerprint: String) -> Result<Option<RequestTag>> {
        if request_id.is_empty() {
            return Ok(None);
        }
        if request_id.len() > MAX_REQUEST_ID_BYTES {
            return Err(EngineError::invalid(
                "request_id",
                format!("request_id is longer than {MAX_REQUEST_ID_BYTES} bytes"),
            ));
        }
        Ok(Some(RequestTag {
            id: request_id.to_owned(),
            fingerprint,
            at: now_micros(),
        }))
    }
}

/// What a remembered write did.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Created or updated: the document as the write left it, in collection
    /// incarnation `collection`.
    Written {
        collection: u64,
        id: DocId,
        stored: Arc<StoredDoc>,
    },
    Deleted,
    /// A collection created, by incarnation.
    CollectionCreated {
        uid: u64,
    },
    CollectionDeleted,
}

struct Entry {
    tag: RequestTag,
    outcome: Outcome,
}

/// The remembered writes of an engine.
#[derive(Default)]
pub struct Requests {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    /// Ids in the order they were remembered, for expiry.
    order: VecDeque<(i64, String)>,
}

impl Requests {
    /// The first outcome of the write `tag` names, if it is remembered; an error if
    /// the id was used for a different write.
    pub fn get(&self, tag: &RequestTag) -> Result<Option<Outcome>> {
        let mut inner = self.inner.lock();
        inner.expire(now_micros());
        match inner.by_id.get(&tag.id) {
            None => Ok(None),
            Some(entry) if entry.tag.fingerprint == tag.fingerprint => {
                Ok(Some(entry.outcome.clone()))
            }
            Some(entry) => Err(EngineError::invalid(
                "request_id",
                format!(
                    "request_id {:?} was used for a different write ({})",
                    tag.id, entry.tag.fingerprint
                ),
            )),
        }
    }

    /// Remembers the outcome of `tag`'s write (unless it is already out of the window).
    pub fn insert(&self, tag: RequestTag, outcome: Outcome) {
        let mut inner = self.inner.lock();
        let now = now_micros();
        if now - tag.at > WINDOW_MICROS {
            return;
        }
        inner.order.push_back((tag.at, tag.id.clone()));
        inner.by_id.insert(tag.id.clone(), Entry { tag, outcome });
        inner.expire(now);
    }

    /// Everything remembered now (and not yet expired), for a checkpoint.
    pub fn entries(&self) -> Vec<(RequestTag, Outcome)> {
        let mut inner = self.inner.lock();
        inner.expire(now_micros());
        inner
            .by_id
            .values()
            .map(|e| (e.tag.clone(), e.outcome.clone()))
            .collect()
    }
}

impl Requests {
    /// Forgets the outcomes older than the window, so that they free their
    /// memory on time rather than at the next write with a request id.
    pub fn expire(&self) {
        self.inner.lock().expire(now_micros());
    }
}

impl Inner {
    fn expire(&mut self, now: i64) {
        while let Some((at, id)) = self.order.front() {
            let old = now - *at > WINDOW_MICROS;
            if !old && self.by_id.len() <= MAX_REMEMBERED {
                break;
            }
            // Only the entry this queue slot was made for: an id remembered again
            // later has a newer slot.
            if self.by_id.get(id).is_some_and(|e| e.tag.at == *at) {
                self.by_id.remove(id);
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: &str, fingerprint: &str, at: i64) -> RequestTag {
        RequestTag {
            id: id.into(),
            fingerprint: fingerprint.into(),
            at,
        }
    }

    #[test]
    fn remembers_within_the_window_and_refuses_reuse() {
        let requests = Requests::default();
        let now = now_micros();
        requests.insert(tag("a", "delete c/x", now), Outcome::Deleted);
        assert!(matches!(
            requests.get(&tag("a", "delete c/x", now)),
            Ok(Some(Outcome::Deleted))
        ));
        assert!(requests.get(&tag("a", "delete c/y", now)).is_err());
        assert!(
            requests
                .get(&tag("b", "delete c/x", now))
                .unwrap()
                .is_none()
        );
        // Older than the window: forgotten (and not even stored).
        requests.insert(
            tag("old", "delete c/x", now - WINDOW_MICROS - 1),
            Outcome::Deleted,
        );
        assert!(
            requests
                .get(&tag("old", "delete c/x", now))
                .unwrap()
                .is_none()
        );
        assert_eq!(requests.entries().len(), 1);
    }
}
