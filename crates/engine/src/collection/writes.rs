//! The write path: checks against the live state, the record the write
//! makes, its append to the log with the state it was decided against, then
//! the record applied as a replay applies it (see `apply.rs`), and waiting
//! until the write is durable and (unless asked not to) searchable.

use std::sync::Arc;

use super::Collection;
use super::core::{blocking, outcome_document};
use super::write_state::WriteState;
use crate::document::{self, Document, Fields, StoredDoc};
use crate::error::{EngineError, Result};
use crate::names::DocId;
use crate::persist::{Condition, LogOp};
use crate::requests::RequestTag;
use crate::timestamp::now_micros;

/// How an update treats the fields it is given.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// Replace every field.
    Replace,
    /// Set or remove exactly these keys.
    Keys(Vec<String>),
    /// JSON merge-patch at the top level: given keys replace, null removes.
    Merge,
}

/// An update of one document.
#[derive(Clone, Debug)]
pub struct Update {
    pub id: DocId,
    pub fields: Fields,
    pub patch: Patch,
    /// Create the document if it does not exist.
    pub allow_missing: bool,
    /// 0 means don't check.
    pub expected_version: u64,
}

/// What one item of an import did.
pub type ImportResult = Result<Document>;

impl Collection {
    /// Creates a document; `None` generates an id. Returns once visible to search
    /// unless `wait` is false.
    ///
    /// A non-empty `request_id` makes a retry return the first outcome (see
    /// [`crate::requests`]); so for update and delete.
    pub async fn create(
        self: &Arc<Self>,
        id: Option<DocId>,
        fields: Fields,
        wait: bool,
        request_id: &str,
    ) -> Result<Document> {
        let target = id.as_ref().map_or("", |id| id.as_str());
        let tag = RequestTag::new(
            request_id,
            format!("create document {}/{target}", self.name),
        )?;
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
        let fingerprint = format!("update document {}/{}", self.name, update.id);
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
        let tag = RequestTag::new(request_id, format!("delete document {}/{id}", self.name))?;
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

    /// Waits until the write at log position `log_seq` is durable.
    pub(super) async fn durable(&self, log_seq: u64) -> Result<()> {
        let log = self.log()?.clone();
        blocking(move || log.sync(log_seq)).await
    }

    /// Appends `op`, a write decided against the state `condition`
    /// describes, and notes its position. When the log holds another state of
    /// the target, nothing is applied and `conflict` says why, given the
    /// target's version in the log (0: absent).
    pub(super) fn append(
        &self,
        state: &mut WriteState,
        op: &LogOp,
        condition: Condition,
        conflict: impl FnOnce(u64) -> EngineError,
    ) -> Result<()> {
        let log = self.log()?;
        match crate::engine::append(log.as_ref(), op, condition)? {
            Ok(position) => {
                state.log_seq = position;
                Ok(())
            }
            Err(actual) => Err(conflict(actual)),
        }
    }

    /// The error for a write to `id` that the log refused, holding the
    /// document at version `actual` (0: absent): `expected` is the version the
    /// request asked for (0: none); `allow_missing` whether it may create.
    fn refused(&self, id: &DocId, expected: u64, actual: u64, allow_missing: bool) -> EngineError {
        if expected != 0 {
            return EngineError::VersionMismatch {
                id: id.to_string(),
                expected,
                actual,
            };
        }
        if actual == 0 && !allow_missing {
            return self.not_found(id);
        }
        let now = match actual {
            0 => "it is now absent".to_owned(),
            actual => format!("it is now at version {actual}"),
        };
        EngineError::Conflict(format!(
            "document {id} in collection {} changed while this write was decided ({now}); \
             nothing was written, retry",
            self.name
        ))
    }

    /// The first outcome of a retried write, if `tag` names one.
    pub(super) fn remembered(
        &self,
        tag: &Option<RequestTag>,
    ) -> Result<Option<crate::requests::Outcome>> {
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
        let op = LogOp::Put {
            uid: self.uid,
            id: id.clone(),
            doc: Arc::new(stored),
            request,
        };
        let exists = || EngineError::DocumentExists {
            collection: self.name.to_string(),
            id: id.to_string(),
        };
        self.append(state, &op, Condition::Absent, |_| exists())?;
        self.apply(state, op, Some(tantivy_doc), waited)?;
        Ok(Document {
            id,
            fields: Arc::new(fields),
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
        // The new version is made from the current one: it applies only if
        // the log holds that one too.
        let (version, create_time, condition) = match &current {
            Some(stored) => (
                stored.version + 1,
                stored.create_time,
                Condition::Version(stored.version),
            ),
            None => (1, now, Condition::Absent),
        };
        let dictionary = self.dictionary_for_write(state)?;
        let stored = StoredDoc::new(&new_fields, version, create_time, now, dictionary.as_ref())?;
        let op = LogOp::Put {
            uid: self.uid,
            id: id.clone(),
            doc: Arc::new(stored),
            request,
        };
        self.append(state, &op, condition, |actual| {
            self.refused(&id, expected_version, actual, allow_missing)
        })?;
        self.apply(state, op, Some(tantivy_doc), waited)?;
        Ok(Document {
            id,
            fields: Arc::new(new_fields),
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
        let condition = match expected_version {
            0 => Condition::Present,
            expected => Condition::Version(expected),
        };
        let op = LogOp::Delete {
            uid: self.uid,
            id: id.clone(),
            request,
        };
        self.append(state, &op, condition, |actual| {
            self.refused(id, expected_version, actual, false)
        })?;
        self.apply(state, op, None, false)
    }
}
