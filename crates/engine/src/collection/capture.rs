//! The capture of one consistent state of a collection, for a checkpoint or
//! snapshot.

use std::path::PathBuf;

use tantivy::directory::error::OpenReadError;
use tantivy::directory::{Directory, OwnedBytes};

use super::Collection;
use crate::error::{EngineError, Result};
use crate::persist::Captured;

impl Collection {
    /// The documents and index files of one state, for a checkpoint or snapshot:
    /// commits what is pending and reads the files of that commit under the write
    /// lock. Index files are shared in-memory buffers: no copy is made.
    pub(crate) fn capture(&self) -> Result<Captured> {
        let mut state = self.write.lock();
        if state.seq > state.committed_seq {
            state.commit()?;
            state.committed_seq = state.seq;
        }
        let docs = self.docs.read().clone();
        // A background merge may replace segments (and delete their files) while
        // the files are read: read again until the metadata stayed the same.
        for _ in 0..100 {
            let metas = self.index.load_metas()?;
            let directory = &self.directory;
            let mut files = Vec::new();
            let mut complete = true;
            for path in metas.list_segment_files() {
                match directory.open_read(&path) {
                    Ok(slice) => files.push((path, read_all(&slice)?)),
                    Err(OpenReadError::FileDoesNotExist(_)) => {}
                    Err(err) => {
                        return Err(EngineError::Internal(format!("reading the index: {err}")));
                    }
                }
            }
            let again = self.index.load_metas()?;
            let same = |a: &tantivy::IndexMeta, b: &tantivy::IndexMeta| {
                a.opstamp == b.opstamp
                    && a.segments
                        .iter()
                        .map(|s| (s.id(), s.delete_opstamp()))
                        .eq(b.segments.iter().map(|s| (s.id(), s.delete_opstamp())))
            };
            if !same(&metas, &again) {
                complete = false;
            }
            if complete {
                let meta_json = serde_json::to_vec_pretty(&metas)
                    .map_err(|e| EngineError::Internal(format!("encoding index metadata: {e}")))?;
                files.push((PathBuf::from("meta.json"), OwnedBytes::new(meta_json)));
                if let Ok(managed) = directory.atomic_read(std::path::Path::new(".managed.json")) {
                    files.push((PathBuf::from(".managed.json"), OwnedBytes::new(managed)));
                }
                drop(state);
                return Ok(Captured {
                    definition: self.definition(),
                    docs,
                    index_files: files,
                    dictionary: self.dictionary().cloned(),
                });
            }
        }
        Err(EngineError::Internal(
            "the index kept changing while a checkpoint read it".into(),
        ))
    }
}

fn read_all(slice: &tantivy::directory::FileSlice) -> Result<OwnedBytes> {
    slice
        .read_bytes()
        .map_err(|e| EngineError::Internal(format!("reading the index: {e}")))
}
