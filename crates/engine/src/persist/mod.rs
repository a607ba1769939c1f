//! What the engine needs from persistence and what it hands over: the port to
//! a write log ([`WriteLog`]), the records that cross it ([`LogOp`]), the
//! state a checkpoint or snapshot captures and loads back ([`Captured`],
//! [`Loaded`]), and the replay that rebuilds an engine from them ([`Replay`]).
//! The engine knows no file, format or database: `trove-storage` keeps a log
//! and checkpoints in a data directory; another implementation may keep them
//! elsewhere.

mod capture;
mod log;
mod record;
mod replay;

pub use capture::{Captured, CheckpointState, Loaded};
pub use log::{Appended, Condition, Entry, MemoryLog, WriteLog};
pub use record::{CollectionDef, LogOp};
pub use replay::{Replay, Replayed};

#[cfg(test)]
mod tests;
