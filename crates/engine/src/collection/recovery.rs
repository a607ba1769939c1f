//! A collection rebuilt from persistence: records replayed from a log (no
//! checks, nothing logged), and the capture of one consistent state for a
//! checkpoint or snapshot.

use std::path::PathBuf;
use std::sync::Arc;

use tantivy::directory::error::OpenReadError;
use tantivy::directory::{Directory, OwnedBytes};

use super::super::document::{self, Dictionary};
use super::super::durable::{Captured, DocRecord};
use super::super::error::{EngineError, Result};
use super::super::names::DocId;
use super::super::requests::{Outcome, RequestTag};
use super::Collection;

impl Collection {
    /// Sets the dictionary as a log record has it (recovery). A log may repeat
    /// what the checkpoint before it holds.
    pub(crate) fn replay_dictionary(&self, bytes: Vec<u8>) -> Result<()> {
        let dictionary = Dictionary::from_bytes(bytes)?;
        match self.dictionary() {
            Some(current) if current.id() == dictionary.id() => Ok(()),
            Some(current) => Err(EngineError::DataDamaged(format!(
                "collection {} has dictionary {} and the log names {}",
                self.name,
                current.id(),
                dictionary.id()
            ))),
            None => {
                let _ = self.dictionary.set(Some(Arc::new(dictionary)));
                Ok(())
            }
        }
    }

    /// Sets a document as a log record has it (recovery: no checks, no log).
    pub(crate) fn replay_put(&self, doc: DocRecord, request: Option<RequestTag>) -> Result<()> {
        let (id, stored) = doc.into_stored(self.dictionary())?;
        let mut fields = stored.fields()?;
        let tantivy_doc = document::prepare(&self.schema, &id, &mut fields)?;
        let mut state = self.write.lock();
        let current = self.docs.read().get(&id).cloned();
        state.delete(&id, self.id_term(&id))?;
        state.add(&id, tantivy_doc, false)?;
        let stored = self.put(&mut state, &id, stored, current.as_deref());
        self.remember(request, &id, stored);
        Ok(())
    }

    /// Removes a document as a log record says (recovery).
    pub(crate) fn replay_delete(&self, id: &str, request: Option<RequestTag>) -> Result<()> {
        let id = DocId::parse(id, "id")?;
        let mut state = self.write.lock();
        state.delete(&id, self.id_term(&id))?;
        if let Some(current) = self.docs.write().remove(&id) {
            state.doc_bytes -= current.memory_bytes();
        }
        state.seq += 1;
        if let Some(tag) = request {
            self.requests.insert(tag, Outcome::Deleted);
        }
        Ok(())
    }

    /// Commits and publishes a view of everything applied (recovery).
    pub(crate) fn publish(&self) -> Result<()> {
        let seq = self.commit_inner()?;
        self.visible.send_replace(seq);
        Ok(())
    }

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
                    record: self.record(),
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
