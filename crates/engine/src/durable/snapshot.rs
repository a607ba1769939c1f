//! Snapshots: the checkpoint format written on request to a named directory
//! under the server's snapshot directory, and loaded back into a running server.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checkpoint::{self, Captured};
use super::record::{DocRecord, Op};
use crate::Engine;
use crate::collection::Collection;
use crate::error::{EngineError, Result};
use crate::names::CollectionName;

/// The longest snapshot name.
const MAX_NAME_LEN: usize = 128;

/// A snapshot's name and what it holds: collection names and document counts.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    pub name: String,
    pub collections: Vec<(String, u64)>,
}

/// The directory of snapshot `name` under `root`, after checking the name.
pub fn snapshot_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(EngineError::invalid(
            "name",
            format!(
                "snapshot name {name:?}: use 1 to {MAX_NAME_LEN} characters of [A-Za-z0-9_.-], not starting with '.'"
            ),
        ));
    }
    Ok(root.join(name))
}

/// A snapshot name reserved while it is written; released when dropped.
struct Reserved<'a> {
    names: &'a parking_lot::Mutex<std::collections::HashSet<PathBuf>>,
    target: PathBuf,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.names.lock().remove(&self.target);
    }
}

impl Engine {
    /// Writes snapshot `name` of `collections` (all when empty) under `root`.
    /// Blocking; writes go on meanwhile.
    pub fn create_snapshot(
        &self,
        root: &Path,
        name: &str,
        collections: &[CollectionName],
    ) -> Result<SnapshotInfo> {
        self.check_ready()?;
        let target = snapshot_dir(root, name)?;
        let exists = || EngineError::AlreadyExists(format!("snapshot {name:?} already exists"));
        if !self.snapshots_in_progress.lock().insert(target.clone()) {
            return Err(EngineError::AlreadyExists(format!(
                "snapshot {name:?} is being written by another request"
            )));
        }
        let _reserved = Reserved {
            names: &self.snapshots_in_progress,
            target: target.clone(),
        };
        if target.exists() {
            return Err(exists());
        }
        let chosen: Vec<Arc<Collection>> = if collections.is_empty() {
            self.collections.read().values().cloned().collect()
        } else {
            collections
                .iter()
                .map(|name| self.collection(name))
                .collect::<Result<_>>()?
        };
        let captured = chosen
            .iter()
            .map(|c| c.capture())
            .collect::<Result<Vec<Captured>>>()?;
        fs::create_dir_all(root)
            .map_err(|e| EngineError::storage(&format!("creating {}", root.display()), &e))?;
        checkpoint::write(&target, None, 0, &captured, &mut std::iter::empty()).map_err(|err| {
            match err {
                EngineError::AlreadyExists(_) => exists(),
                other => other,
            }
        })?;
        tracing::info!(snapshot = %target.display(), collections = captured.len(), "snapshot written");
        Ok(SnapshotInfo {
            name: name.to_owned(),
            collections: captured
                .iter()
                .map(|c| (c.record.name.clone(), c.docs.len() as u64))
                .collect(),
        })
    }

    /// The snapshots under `root`, by name.
    pub fn list_snapshots(&self, root: &Path) -> Result<Vec<SnapshotInfo>> {
        let mut found = Vec::new();
        let entries = match fs::read_dir(root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(err) => {
                return Err(EngineError::storage(
                    &format!("listing {}", root.display()),
                    &err,
                ));
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if snapshot_dir(root, &name).is_err() || name.ends_with(".tmp") {
                continue;
            }
            let Ok(manifest) = checkpoint::read_manifest(&entry.path()) else {
                continue;
            };
            found.push(SnapshotInfo {
                name,
                collections: manifest
                    .collections
                    .iter()
                    .map(|c| c.name.clone())
                    .zip(manifest.document_counts.iter().copied())
                    .collect(),
            });
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// Loads `collections` (all when empty) of the snapshot in `dir`. In the
    /// durable mode each collection and its documents are logged, so they
    /// survive a restart. Blocking.
    pub fn restore_snapshot(
        &self,
        dir: &Path,
        collections: &[CollectionName],
    ) -> Result<SnapshotInfo> {
        self.check_ready()?;
        let manifest = checkpoint::read_manifest(dir).map_err(|err| match err {
            EngineError::StorageUnavailable(_) if !dir.join("MANIFEST").exists() => {
                EngineError::NotFound(format!("snapshot {} not found", dir.display()))
            }
            other => other,
        })?;
        for name in collections {
            if !manifest.collections.iter().any(|c| c.name == name.as_str()) {
                return Err(EngineError::CollectionNotFound(name.to_string()));
            }
        }
        let wanted =
            |name: &str| collections.is_empty() || collections.iter().any(|c| c.as_str() == name);
        {
            let registry = self.collections.read();
            let mut adding = 0;
            for record in manifest.collections.iter().filter(|r| wanted(&r.name)) {
                let name = CollectionName::parse(&record.name, "collections")?;
                if registry.contains_key(&name) {
                    return Err(EngineError::CollectionExists(record.name.clone()));
                }
                adding += 1;
            }
            self.check_room(registry.len(), adding)?;
        }
        let (_, loaded) = checkpoint::read(dir, wanted)?;
        // No checkpoint starts while the restore is logged and registered: it
        // would hold the log's records without the collections, or the other
        // way round.
        let _checkpoints = self.durable.as_ref().map(|d| d.hold_checkpoints());
        let mut restored = Vec::new();
        for mut loaded in loaded {
            // A new incarnation: restoring the same snapshot twice makes two.
            loaded.record.uid = uuid::Uuid::new_v4().as_u64_pair().0;
            let collection = Collection::restore(loaded, self.requests.clone())?;
            collection.publish()?;
            if let Some(journal) = self.journal() {
                log_restore(journal, &collection)?;
                collection.attach(journal.clone());
            }
            restored.push(collection);
        }
        // All or none: the names are checked again, and one record ends the
        // restore of every collection. Until it, recovery drops the records.
        let mut registry = self.collections.write();
        if let Some(taken) = restored.iter().find(|c| registry.contains_key(c.name())) {
            return Err(EngineError::CollectionExists(taken.name().to_string()));
        }
        self.check_room(registry.len(), restored.len())?;
        // Registered before the record is on disk, as a create is: a write to
        // a restored collection is acknowledged only once the log is synced past
        // its own record, and so past this one.
        let last_seq = match self.journal() {
            Some(journal) => {
                let uids = restored.iter().map(|c| c.uid()).collect();
                journal.append(Op::Restored { uids })?
            }
            None => 0,
        };
        let restored: Vec<(String, u64)> = restored
            .into_iter()
            .map(|collection| {
                let info = (
                    collection.name().to_string(),
                    collection.stats().document_count,
                );
                registry.insert(collection.name().clone(), collection);
                info
            })
            .collect();
        drop(registry);
        if let Some(journal) = self.journal() {
            journal.sync(last_seq)?;
        }
        Ok(SnapshotInfo {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            collections: restored,
        })
    }
}

/// Logs a restored collection as [`Op::Restoring`], its dictionary (before the
/// documents compressed with it) and a put per document. Recovery adds the
/// collection only once it reads the [`Op::Restored`] that the caller appends
/// after these: a restore cut short by a failure or a crash leaves nothing.
fn log_restore(journal: &super::Journal, collection: &Collection) -> Result<u64> {
    let mut last = journal.append(Op::Restoring {
        record: collection.record(),
    })?;
    let docs = collection.live_docs();
    let dictionary = collection.dictionary().map(|d| Op::Dictionary {
        uid: collection.uid(),
        bytes: d.bytes().to_vec(),
    });
    let puts = docs.iter().map(|(id, stored)| Op::Put {
        uid: collection.uid(),
        doc: DocRecord::of(id, stored),
        request: None,
    });
    for op in dictionary.into_iter().chain(puts) {
        last = journal.append(op)?;
    }
    Ok(last)
}
