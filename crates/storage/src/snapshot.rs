//! Snapshots: the checkpoint format written on request to a named directory
//! under the server's snapshot directory, and loaded back into a running
//! engine (whose log, whatever it is, records the restore).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use trove_engine::{CollectionName, Engine, EngineError, Result};

use super::checkpoint;

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

/// The snapshots under one directory.
pub struct Snapshots {
    root: PathBuf,
    /// The snapshots being written now, by directory: a second write of the
    /// same name is ALREADY_EXISTS at once. A std-like lock held only to
    /// insert or remove.
    in_progress: Mutex<HashSet<PathBuf>>,
}

/// A snapshot name reserved while it is written; released when dropped.
struct Reserved<'a> {
    names: &'a Mutex<HashSet<PathBuf>>,
    target: PathBuf,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.names.lock().remove(&self.target);
    }
}

impl Snapshots {
    pub fn new(root: PathBuf) -> Self {
        Snapshots {
            root,
            in_progress: Mutex::default(),
        }
    }

    /// Writes snapshot `name` of `collections` (all when empty) of `engine`.
    /// Blocking; writes go on meanwhile.
    pub fn create(
        &self,
        engine: &Engine,
        name: &str,
        collections: &[CollectionName],
    ) -> Result<SnapshotInfo> {
        let root = &self.root;
        let target = snapshot_dir(root, name)?;
        let exists = || EngineError::AlreadyExists(format!("snapshot {name:?} already exists"));
        if !self.in_progress.lock().insert(target.clone()) {
            return Err(EngineError::AlreadyExists(format!(
                "snapshot {name:?} is being written by another request"
            )));
        }
        let _reserved = Reserved {
            names: &self.in_progress,
            target: target.clone(),
        };
        if target.exists() {
            return Err(exists());
        }
        let captured = engine.capture(collections)?;
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
                .map(|c| (c.definition.name.to_string(), c.docs.len() as u64))
                .collect(),
        })
    }

    /// The snapshots, by name.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        let root = &self.root;
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

    /// Loads `collections` (all when empty) of snapshot `name` into `engine`.
    /// Blocking.
    pub fn restore(
        &self,
        engine: &Engine,
        name: &str,
        collections: &[CollectionName],
    ) -> Result<SnapshotInfo> {
        restore_dir(engine, &snapshot_dir(&self.root, name)?, collections)
    }
}

/// Loads `collections` (all when empty) of the snapshot in `dir` into
/// `engine`, all or none; the engine logs them, so they survive a restart of
/// a durable server. Blocking.
pub fn restore_dir(
    engine: &Engine,
    dir: &Path,
    collections: &[CollectionName],
) -> Result<SnapshotInfo> {
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
    let names = manifest
        .collections
        .iter()
        .filter(|r| wanted(&r.name))
        .map(|r| CollectionName::parse(&r.name, "collections"))
        .collect::<Result<Vec<_>>>()?;
    engine.check_restorable(&names)?;
    let (_, loaded) = checkpoint::read(dir, wanted)?;
    let restored = engine.restore(loaded)?;
    Ok(SnapshotInfo {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        collections: restored
            .into_iter()
            .map(|(name, count)| (name.to_string(), count))
            .collect(),
    })
}
