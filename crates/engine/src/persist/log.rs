//! The port to a write log: where the engine appends each write before it
//! applies it, and waits until the write is durable.
//!
//! A log may be the arbiter of a write. The engine checks a write against its
//! own state first (a quick refusal), then appends it with the condition it
//! checked: the document, or the collection name, is absent, present, or at a
//! version. A log shared by several servers (a database) answers a conflict
//! when the condition no longer holds there, and a repeat when it already
//! holds the request id; the engine applies a write only once the log has
//! given it a position, and applies it as it applies a record it replays.
//! The local log and the in-memory log have one writer, this engine, which
//! checks and appends under the lock that orders the writes to each target:
//! they give every append a position.

use std::sync::atomic::{AtomicU64, Ordering};

use super::record::LogOp;
use crate::error::Result;

/// What must hold of a write's target (the document of a put or delete, the
/// name of a created or deleted collection) for the write to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Nothing is checked (an import, a dictionary, a restore).
    Any,
    /// The target does not exist.
    Absent,
    /// The target exists.
    Present,
    /// The document exists at this version.
    Version(u64),
}

/// One append: the write and the condition the engine checked. The write's
/// request id, if it has one, is [`LogOp::request`].
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub op: &'a LogOp,
    pub condition: Condition,
}

/// What a log answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The write is in the log at this position (increasing, from 1).
    At(u64),
    /// The condition does not hold: the target's version in the log (0 when
    /// it is absent). Nothing was appended.
    Conflict { actual: u64 },
    /// The log holds a write with the same request id, at this position.
    /// Nothing was appended.
    Repeated { position: u64 },
}

/// A write log. Appends to one target come in the order the engine applies
/// them; positions grow with every append.
pub trait WriteLog: Send + Sync {
    /// Appends `entry` if its condition holds.
    fn append(&self, entry: Entry<'_>) -> Result<Appended>;

    /// Blocks until every write up to `position` is durable.
    fn sync(&self, position: u64) -> Result<()>;

    /// The position of the last append (0 before the first).
    fn last_position(&self) -> u64;
}

/// The log of an engine that keeps nothing on disk: it numbers the writes,
/// which are as durable as the process once applied.
#[derive(Debug, Default)]
pub struct MemoryLog {
    last: AtomicU64,
}

impl WriteLog for MemoryLog {
    fn append(&self, _entry: Entry<'_>) -> Result<Appended> {
        Ok(Appended::At(self.last.fetch_add(1, Ordering::Relaxed) + 1))
    }

    fn sync(&self, _position: u64) -> Result<()> {
        Ok(())
    }

    fn last_position(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}
