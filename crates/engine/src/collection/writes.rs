//! The write path: checks, the log record before the change, the change to
//! the live map and the index, the remembered outcome, then waiting until the
//! write is durable and (unless asked not to) searchable.

use std::sync::Arc;

use super::super::document::{self, Document, Fields, StoredDoc};
use super::super::durable::{DocRecord, Op, tag_record};
use super::super::error::{EngineError, Result};
use super::super::names::DocId;
use super::super::requests::{Outcome, RequestTag};
use super::super::timestamp::now_micros;
use super::{Collection, ImportResult, Patch, Update, WriteState, blocking, outcome_document};

impl Collection {
    /// Creates a document; `None` generates an id. Returns once visible to search
    /// unless `wait` is false.
    ///
    /// A non-empty `request_id` makes a retry return the first outcome (see
    /// [`super::requests`]); so for update and delete.
    pub async fn create(
        self: &Arc<Self>,
        id: Option<DocId>,
        fields: Fields,
        wait: bool,
        request_id: &str,
    ) -> Result<Document> {
        let target = id.as_ref().map_or("", |id| id.as_str());
        let tag = RequestTag::new(request_id, format!("CreateDocument {}/{target}", self.name))?;
        let this = self.clone();
        let (doc, seq, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            if let Some(outcome) = this.remembered(&tag)? {
                return Ok((outcome_document(outcome)?, state.seq, state.log_seq));
            }
            let doc = this.apply_create(&mut state, id, fields, tag, wait)?;
            Ok((doc, state.seq, state.log_seq))
        })
        .await?;
        self.finish(seq, log_seq, wait).await?;
        Ok(doc)
    }

    /// Replaces or patches a document (see [`Update`]).
    pub async fn update(
        self: &Arc<Self>,
        update: Update,
        wait: bool,
        request_id: &str,
    ) -> Result<Document> {
        let fingerprint = format!("UpdateDocument {}/{}", self.name, update.id);
        let tag = RequestTag::new(request_id, fingerprint)?;
        let this = self.clone();
        let (doc, seq, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            if let Some(outcome) = this.remembered(&tag)? {
                return Ok((outcome_document(outcome)?, state.seq, state.log_seq));
            }
            let doc = this.apply_update(&mut state, update, tag, wait)?;
            Ok((doc, state.seq, state.log_seq))
        })
        .await?;
        self.finish(seq, log_seq, wait).await?;
        Ok(doc)
    }

    /// Deletes a document; `expected_version` 0 means don't check.
    pub async fn delete(
        self: &Arc<Self>,
        id: DocId,
        expected_version: u64,
        wait: bool,
        request_id: &str,
    ) -> Result<()> {
        let tag = RequestTag::new(request_id, format!("DeleteDocument {}/{id}", self.name))?;
        let this = self.clone();
        let (seq, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            if this.remembered(&tag)?.is_none() {
                this.apply_delete(&mut state, &id, expected_version, tag)?;
            }
            Ok((state.seq, state.log_seq))
        })
        .await?;
        self.finish(seq, log_seq, wait).await
    }

    /// Applies a batch of imports under one lock: each item creates or replaces
    /// its document. One failure does not stop the others. Returns once the batch
    /// is durable, but does not wait for visibility: call [`Collection::refresh`]
    /// after the last batch.
    pub async fn import(
        self: &Arc<Self>,
        items: Vec<(Option<DocId>, Fields)>,
    ) -> Result<Vec<ImportResult>> {
        let this = self.clone();
        let (results, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            let results = items
                .into_iter()
                .map(|(id, fields)| match id {
                    None => this.apply_create(&mut state, None, fields, None, false),
                    Some(id) => this.apply_update(
                        &mut state,
                        Update {
                            id,
                            fields,
                            patch: Patch::Replace,
                            allow_missing: true,
                            expected_version: 0,
                        },
                        None,
                        false,
                    ),
                })
                .collect();
            Ok((results, state.log_seq))
        })
        .await?;
        self.durable(log_seq).await?;
        Ok(results)
    }

    pub(super) async fn finish(self: &Arc<Self>, seq: u64, log_seq: u64, wait: bool) -> Result<()> {
        self.durable(log_seq).await?;
        if wait {
            self.wait_visible(seq).await
        } else {
            Ok(())
        }
    }

    /// Waits until log record `log_seq` is on disk.
    pub(super) async fn durable(&self, log_seq: u64) -> Result<()> {
        match self.journal.get() {
            Some(journal) if log_seq > 0 => {
                let journal = journal.clone();
                blocking(move || journal.sync(log_seq)).await
            }
            _ => Ok(()),
        }
    }

    /// Appends the write `op` makes to the log, before it is applied.
    pub(super) fn log(&self, state: &mut WriteState, op: impl FnOnce() -> Op) -> Result<()> {
        if let Some(journal) = self.journal.get() {
            state.log_seq = journal.append(op())?;
        }
        Ok(())
    }

    /// The first outcome of a retried write, if `tag` names one.
    pub(super) fn remembered(&self, tag: &Option<RequestTag>) -> Result<Option<Outcome>> {
        match tag {
            Some(tag) => self.requests.get(tag),
            None => Ok(None),
        }
    }

    pub(super) fn apply_create(
        &self,
        state: &mut WriteState,
        id: Option<DocId>,
        mut fields: Fields,
        request: Option<RequestTag>,
        waited: bool,
    ) -> Result<Document> {
        let id = match id {
            Some(id) => {
                if self.docs.read().contains_key(&id) {
                    return Err(EngineError::DocumentExists {
                        collection: self.name.to_string(),
                        id: id.to_string(),
                    });
                }
                id
            }
            None => DocId::generate(),
        };
        let tantivy_doc = document::prepare(&self.schema, &id, &mut fields)?;
        let now = now_micros();
        let dictionary = self.dictionary_for_write(state)?;
        let stored = StoredDoc::new(&fields, 1, now, now, dictionary.as_ref())?;
        self.log(state, || Op::Put {
            uid: self.uid,
            doc: DocRecord::of(&id, &stored),
            request: tag_record(&request),
        })?;
        state.add(&id, tantivy_doc, waited)?;
        let stored = self.put(state, &id, stored, None);
        self.remember(request, &id, stored);
        Ok(Document {
            id,
            fields,
            version: 1,
            create_time: now,
            update_time: now,
        })
    }

    pub(super) fn apply_update(
        &self,
        state: &mut WriteState,
        update: Update,
        request: Option<RequestTag>,
        waited: bool,
    ) -> Result<Document> {
        let Update {
            id,
            fields,
            patch,
            allow_missing,
            expected_version,
        } = update;
        let current = self.docs.read().get(&id).cloned();
        match (&current, expected_version) {
            (None, 0) if allow_missing => {}
            (None, 0) => return Err(self.not_found(&id)),
            (None, expected) => {
                return Err(EngineError::VersionMismatch {
                    id: id.to_string(),
                    expected,
                    actual: 0,
                });
            }
            (Some(stored), expected) if expected != 0 && stored.version != expected => {
                return Err(EngineError::VersionMismatch {
                    id: id.to_string(),
                    expected,
                    actual: stored.version,
                });
            }
            (Some(_), _) => {}
        }
        let mut new_fields = match (&patch, &current) {
            (Patch::Replace, _) => Fields::new(),
            (_, Some(stored)) => stored.fields()?,
            (_, None) => Fields::new(),
        };
        match patch {
            Patch::Replace => new_fields = fields,
            Patch::Keys(keys) => {
                let mut fields = fields;
                for key in keys {
                    match fields.remove(&key) {
                        Some(value) => new_fields.insert(key, value),
                        None => new_fields.remove(&key),
                    };
                }
            }
            Patch::Merge => {
                for (key, value) in fields {
                    if value.is_null() {
                        new_fields.remove(&key);
                    } else {
                        new_fields.insert(key, value);
                    }
                }
            }
        }
        let tantivy_doc = document::prepare(&self.schema, &id, &mut new_fields)?;
        let now = now_micros();
        let (version, create_time) = match &current {
            Some(stored) => (stored.version + 1, stored.create_time),
            None => (1, now),
        };
        let dictionary = self.dictionary_for_write(state)?;
        let stored = StoredDoc::new(&new_fields, version, create_time, now, dictionary.as_ref())?;
        self.log(state, || Op::Put {
            uid: self.uid,
            doc: DocRecord::of(&id, &stored),
            request: tag_record(&request),
        })?;
        if current.is_some() {
            state.delete(&id, self.id_term(&id))?;
        }
        state.add(&id, tantivy_doc, waited)?;
        let stored = self.put(state, &id, stored, current.as_deref());
        self.remember(request, &id, stored);
        Ok(Document {
            id,
            fields: new_fields,
            version,
            create_time,
            update_time: now,
        })
    }

    pub(super) fn apply_delete(
        &self,
        state: &mut WriteState,
        id: &DocId,
        expected_version: u64,
        request: Option<RequestTag>,
    ) -> Result<()> {
        let current = self.docs.read().get(id).cloned();
        let Some(current) = current else {
            return Err(self.not_found(id));
        };
        if expected_version != 0 && current.version != expected_version {
            return Err(EngineError::VersionMismatch {
                id: id.to_string(),
                expected: expected_version,
                actual: current.version,
            });
        }
        self.log(state, || Op::Delete {
            uid: self.uid,
            id: id.to_string(),
            request: tag_record(&request),
        })?;
        state.delete(id, self.id_term(id))?;
        self.docs.write().remove(id);
        state.doc_bytes -= current.memory_bytes();
        state.seq += 1;
        if let Some(tag) = request {
            self.requests.insert(tag, Outcome::Deleted);
        }
        Ok(())
    }

    pub(super) fn remember(&self, request: Option<RequestTag>, id: &DocId, stored: Arc<StoredDoc>) {
        if let Some(tag) = request {
            let outcome = Outcome::Written {
                collection: self.uid,
                id: id.clone(),
                stored,
            };
            self.requests.insert(tag, outcome);
        }
    }

    pub(super) fn put(
        &self,
        state: &mut WriteState,
        id: &DocId,
        stored: StoredDoc,
        old: Option<&StoredDoc>,
    ) -> Arc<StoredDoc> {
        state.doc_bytes += stored.memory_bytes();
        if let Some(old) = old {
            state.doc_bytes -= old.memory_bytes();
        }
        let stored = Arc::new(stored);
        self.docs.write().insert(id.clone(), stored.clone());
        state.seq += 1;
        stored
    }
}
