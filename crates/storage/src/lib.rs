//! trove's local persistence: the first implementation of the engine's port
//! (`trove_engine::persist`). A write-ahead log and checkpoints in a data
//! directory ([`Store`]), and snapshots in a directory of their own
//! ([`Snapshots`]). The files hold this crate's own record types, versioned,
//! not the engine's.

mod checkpoint;
mod files;
mod frame;
mod journal;
mod record;
mod snapshot;
mod store;
#[cfg(test)]
mod testing;

pub use journal::Fsync;
pub use snapshot::{SnapshotInfo, Snapshots, restore_dir, snapshot_dir};
pub use store::{DataDir, Recovery, Store};
