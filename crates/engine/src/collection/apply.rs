//! Applying a write to a collection: the live map, the index, the remembered
//! outcome. The same code applies a write this server just appended to its
//! log and a record a replay reads back, so a log rebuilds exactly the state
//! its writes made.

use std::sync::Arc;

use tantivy::TantivyDocument;

use super::Collection;
use super::write_state::WriteState;
use crate::document::{self, Dictionary, StoredDoc};
use crate::error::{EngineError, Result};
use crate::names::DocId;
use crate::persist::LogOp;
use crate::requests::{Outcome, RequestTag};

impl Collection {
    /// Applies `op`, which a log has given a position. `prepared` is the
    /// document's index form when the write made it already; `waited`,
    /// whether the write waits to be searchable.
    pub(super) fn apply(
        &self,
        state: &mut WriteState,
        op: LogOp,
        prepared: Option<TantivyDocument>,
        waited: bool,
    ) -> Result<()> {
        match op {
            LogOp::Put {
                id, doc, request, ..
            } => {
                let tantivy_doc = match prepared {
                    Some(prepared) => prepared,
                    None => document::prepare(&self.schema, &id, &mut doc.fields()?)?,
                };
                let current = self.docs.read().get(&id).cloned();
                if current.is_some() {
                    state.delete(&id, self.id_term(&id))?;
                }
                state.add(&id, tantivy_doc, waited)?;
                self.put(state, &id, doc.clone(), current.as_deref());
                self.remember(request, &id, doc);
            }
            LogOp::Delete { id, request, .. } => {
                state.delete(&id, self.id_term(&id))?;
                if let Some(current) = self.docs.write().remove(&id) {
                    state.doc_bytes -= current.memory_bytes();
                }
                state.seq += 1;
                if let Some(tag) = request {
                    self.requests.insert(tag, Outcome::Deleted);
                }
            }
            LogOp::Dictionary { dictionary, .. } => self.set_dictionary(dictionary)?,
            other => {
                return Err(EngineError::Internal(format!(
                    "a collection was asked to apply {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// Applies a record a replay reads back (no checks, nothing logged).
    pub(crate) fn apply_replayed(&self, op: LogOp) -> Result<()> {
        let mut state = self.write.lock();
        self.apply(&mut state, op, None, false)
    }

    /// Sets the dictionary new documents are compressed with. A log may
    /// repeat what the checkpoint before it holds.
    fn set_dictionary(&self, dictionary: Arc<Dictionary>) -> Result<()> {
        match self.dictionary() {
            Some(current) if current.id() == dictionary.id() => Ok(()),
            Some(current) => Err(EngineError::DataDamaged(format!(
                "collection {} has dictionary {} and the log names {}",
                self.name,
                current.id(),
                dictionary.id()
            ))),
            None => {
                let _ = self.dictionary.set(Some(dictionary));
                Ok(())
            }
        }
    }

    fn remember(&self, request: Option<RequestTag>, id: &DocId, stored: Arc<StoredDoc>) {
        if let Some(tag) = request {
            let outcome = Outcome::Written {
                collection: self.uid,
                id: id.clone(),
                stored,
            };
            self.requests.insert(tag, outcome);
        }
    }

    fn put(
        &self,
        state: &mut WriteState,
        id: &DocId,
        stored: Arc<StoredDoc>,
        old: Option<&StoredDoc>,
    ) {
        state.doc_bytes += stored.memory_bytes();
        if let Some(old) = old {
            state.doc_bytes -= old.memory_bytes();
        }
        self.docs.write().insert(id.clone(), stored);
        state.seq += 1;
    }

    /// Commits and publishes a view of everything applied (the end of a
    /// replay or restore).
    pub(crate) fn publish(&self) -> Result<()> {
        let seq = self.commit_inner()?;
        self.visible.send_replace(seq);
        Ok(())
    }
}
