//! What the log and checkpoints hold, encoded with postcard inside checksummed
//! frames ([`super::frame`]). These types are this crate's own, not the
//! engine's: postcard writes fields in order, so a field added to an engine
//! type must not change these bytes unnoticed (`tests/format_samples.rs`
//! decodes a committed data directory). Variants are only ever appended.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use trove_engine::persist::{CollectionDef, LogOp, Replay};
use trove_engine::requests::RequestTag;
use trove_engine::{
    CollectionName, Dictionary, DocId, EngineError, FieldSpec, FieldType, Result, StoredDoc,
};

/// One logged write, numbered in log order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub op: Op,
}

/// A write. Collections are named by `uid`, unique per incarnation: a collection
/// deleted and created again under the same name gets a new one, so a replayed
/// write never lands in the wrong incarnation.
#[derive(Debug, Serialize, Deserialize)]
pub enum Op {
    CreateCollection {
        record: CollectionRecord,
        request: Option<TagRecord>,
    },
    DeleteCollection {
        name: String,
        uid: u64,
        request: Option<TagRecord>,
    },
    Put {
        uid: u64,
        doc: DocRecord,
        request: Option<TagRecord>,
    },
    Delete {
        uid: u64,
        id: String,
        request: Option<TagRecord>,
    },
    /// The collection's documents from here on are compressed with this zstd
    /// dictionary. (Last, so that logs written before it still decode.)
    Dictionary {
        uid: u64,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A collection restored from a snapshot: its dictionary and documents
    /// follow, then [`Op::Restored`] naming it. Recovery adds it only once it reads that
    /// record, so a crash during a restore leaves no partial collection.
    /// (Appended after the older variants, so that older logs still decode.)
    Restoring { record: CollectionRecord },
    /// The restore of these collections is complete: one record for all the
    /// collections of one RestoreSnapshot, which therefore all come back or none.
    Restored { uids: Vec<u64> },
}

/// A collection's definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CollectionRecord {
    pub name: String,
    pub uid: u64,
    pub create_time: i64,
    pub fields: Vec<FieldRecord>,
    pub synonyms: Vec<String>,
}

/// A document as stored: metadata and zstd-compressed JSON fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct DocRecord {
    pub id: String,
    pub version: u64,
    pub create_time: i64,
    pub update_time: i64,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// A remembered request id and what its write did, in a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestRecord {
    pub tag: TagRecord,
    pub outcome: OutcomeRecord,
}

/// What a remembered write did (see [`trove_engine::requests::Outcome`]).
#[derive(Debug, Serialize, Deserialize)]
pub enum OutcomeRecord {
    /// The document as the write left it, no longer its collection's current
    /// version (or its collection is gone).
    Written(DocRecord),
    Deleted,
    CollectionCreated(u64),
    CollectionDeleted,
    /// The document as the write left it is the version the checkpoint holds
    /// of document `id` in collection `uid`: it is read back from there,
    /// checked by `digest` (CRC-32 of its stored body). (Appended after the
    /// older variants, so that they still decode.)
    Current {
        uid: u64,
        id: String,
        version: u64,
        digest: u32,
    },
}

/// How [`FieldRecord::analyzer`] holds a KEYWORD field's normalizer: the
/// analyzer `keyword`, this, then the normalizer's name (`keyword+lowercase`).
/// Older data has no such analyzer, and an older build refuses the field
/// rather than index it without its normalizer.
const NORMALIZED_KEYWORD: &str = "keyword+";

/// A declared field as logs and checkpoints hold it. The on-disk types are
/// their own, not the engine's `FieldSpec`: postcard writes fields in order,
/// so an option added to the engine's type must not change these bytes
/// unnoticed (`tests/format_samples.rs` decodes a committed data directory).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FieldRecord {
    pub name: String,
    pub ty: Option<FieldTypeRecord>,
    pub analyzer: String,
    pub filterable: bool,
    pub sortable: bool,
    pub facetable: bool,
    pub boost: f32,
}

/// A field type on disk; variants are numbered by position.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum FieldTypeRecord {
    Text,
    Keyword,
    Integer,
    Float,
    Boolean,
    Timestamp,
}

/// A request id, what it asked for and when, on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagRecord {
    pub id: String,
    pub fingerprint: String,
    pub at: i64,
}

impl From<&FieldSpec> for FieldRecord {
    fn from(spec: &FieldSpec) -> Self {
        let FieldSpec {
            name,
            ty,
            analyzer,
            filterable,
            sortable,
            facetable,
            boost,
            normalizer,
        } = spec;
        FieldRecord {
            name: name.clone(),
            ty: ty.map(|ty| match ty {
                FieldType::Text => FieldTypeRecord::Text,
                FieldType::Keyword => FieldTypeRecord::Keyword,
                FieldType::Integer => FieldTypeRecord::Integer,
                FieldType::Float => FieldTypeRecord::Float,
                FieldType::Boolean => FieldTypeRecord::Boolean,
                FieldType::Timestamp => FieldTypeRecord::Timestamp,
            }),
            analyzer: if normalizer.is_empty() {
                analyzer.clone()
            } else {
                format!("{NORMALIZED_KEYWORD}{normalizer}")
            },
            filterable: *filterable,
            sortable: *sortable,
            facetable: *facetable,
            boost: *boost,
        }
    }
}

impl From<&FieldRecord> for FieldSpec {
    fn from(record: &FieldRecord) -> Self {
        let (analyzer, normalizer) = match record.analyzer.strip_prefix(NORMALIZED_KEYWORD) {
            Some(normalizer) => ("keyword".to_owned(), normalizer.to_owned()),
            None => (record.analyzer.clone(), String::new()),
        };
        FieldSpec {
            name: record.name.clone(),
            ty: record.ty.map(|ty| match ty {
                FieldTypeRecord::Text => FieldType::Text,
                FieldTypeRecord::Keyword => FieldType::Keyword,
                FieldTypeRecord::Integer => FieldType::Integer,
                FieldTypeRecord::Float => FieldType::Float,
                FieldTypeRecord::Boolean => FieldType::Boolean,
                FieldTypeRecord::Timestamp => FieldType::Timestamp,
            }),
            analyzer,
            filterable: record.filterable,
            sortable: record.sortable,
            facetable: record.facetable,
            boost: record.boost,
            normalizer,
        }
    }
}

impl From<&RequestTag> for TagRecord {
    fn from(tag: &RequestTag) -> Self {
        TagRecord {
            id: tag.id.clone(),
            fingerprint: tag.fingerprint.clone(),
            at: tag.at,
        }
    }
}

impl From<TagRecord> for RequestTag {
    fn from(record: TagRecord) -> Self {
        RequestTag {
            id: record.id,
            fingerprint: current_fingerprint(record.fingerprint),
            at: record.at,
        }
    }
}

/// Fingerprints written before the engine named its own operations began
/// with the RPC's name (`CreateDocument news/a1`): read back in today's form
/// (`create document news/a1`), so that a retry across an upgrade still
/// finds its first outcome.
fn current_fingerprint(fingerprint: String) -> String {
    const RENAMED: [(&str, &str); 5] = [
        ("CreateDocument ", "create document "),
        ("UpdateDocument ", "update document "),
        ("DeleteDocument ", "delete document "),
        ("CreateCollection ", "create collection "),
        ("DeleteCollection ", "delete collection "),
    ];
    for (old, new) in RENAMED {
        if let Some(target) = fingerprint.strip_prefix(old) {
            return format!("{new}{target}");
        }
    }
    fingerprint
}

/// The on-disk form of an optional request tag.
fn tag_record(tag: &Option<RequestTag>) -> Option<TagRecord> {
    tag.as_ref().map(TagRecord::from)
}

impl From<&CollectionDef> for CollectionRecord {
    fn from(definition: &CollectionDef) -> Self {
        CollectionRecord {
            name: definition.name.to_string(),
            uid: definition.uid,
            create_time: definition.create_time,
            fields: definition.fields.iter().map(FieldRecord::from).collect(),
            synonyms: definition.synonyms.clone(),
        }
    }
}

impl CollectionRecord {
    /// The definition this record holds; a name the engine refuses is damage.
    pub fn definition(&self) -> Result<CollectionDef> {
        Ok(CollectionDef {
            name: collection_name(&self.name)?,
            uid: self.uid,
            create_time: self.create_time,
            fields: self.fields.iter().map(FieldSpec::from).collect(),
            synonyms: self.synonyms.clone(),
        })
    }
}

fn collection_name(name: &str) -> Result<CollectionName> {
    CollectionName::parse(name, "collection.name")
        .map_err(|e| EngineError::DataDamaged(format!("a stored collection name: {e}")))
}

fn doc_id(id: &str) -> Result<DocId> {
    DocId::parse(id, "id")
        .map_err(|e| EngineError::DataDamaged(format!("a stored document id: {e}")))
}

impl DocRecord {
    pub fn of(id: &DocId, stored: &StoredDoc) -> Self {
        DocRecord {
            id: id.as_str().to_owned(),
            version: stored.version,
            create_time: stored.create_time,
            update_time: stored.update_time,
            body: stored.body().to_vec(),
        }
    }

    /// The id and stored document. `dictionaries` finds the dictionary a body
    /// names; a body compressed with one it does not know is damage.
    pub fn into_stored(
        self,
        dictionaries: impl Fn(u32) -> Option<Arc<Dictionary>>,
    ) -> Result<(DocId, StoredDoc)> {
        let id = doc_id(&self.id)?;
        let stored = StoredDoc::from_parts(
            self.version,
            self.create_time,
            self.update_time,
            self.body,
            dictionaries,
        )?;
        Ok((id, stored))
    }
}

impl From<&LogOp> for Op {
    fn from(op: &LogOp) -> Self {
        match op {
            LogOp::CreateCollection {
                definition,
                request,
            } => Op::CreateCollection {
                record: definition.into(),
                request: tag_record(request),
            },
            LogOp::DeleteCollection { name, uid, request } => Op::DeleteCollection {
                name: name.to_string(),
                uid: *uid,
                request: tag_record(request),
            },
            LogOp::Put {
                uid,
                id,
                doc,
                request,
            } => Op::Put {
                uid: *uid,
                doc: DocRecord::of(id, doc),
                request: tag_record(request),
            },
            LogOp::Delete { uid, id, request } => Op::Delete {
                uid: *uid,
                id: id.to_string(),
                request: tag_record(request),
            },
            LogOp::Dictionary { uid, dictionary } => Op::Dictionary {
                uid: *uid,
                bytes: dictionary.bytes().to_vec(),
            },
            LogOp::Restoring { definition } => Op::Restoring {
                record: definition.into(),
            },
            LogOp::Restored { uids } => Op::Restored { uids: uids.clone() },
        }
    }
}

impl Op {
    /// The write this record holds, for `replay`: a document's body is
    /// decoded with the dictionary its collection has at that point. `None`
    /// for a write to a collection the replay does not hold (deleted later in
    /// the log, or a restore that never finished).
    pub fn into_log_op(self, replay: &Replay<'_>) -> Result<Option<LogOp>> {
        let tag = |request: Option<TagRecord>| request.map(RequestTag::from);
        match &self {
            Op::Put { uid, .. } | Op::Delete { uid, .. } | Op::Dictionary { uid, .. }
                if !replay.holds(*uid) =>
            {
                return Ok(None);
            }
            _ => {}
        }
        Ok(Some(match self {
            Op::CreateCollection { record, request } => LogOp::CreateCollection {
                definition: record.definition()?,
                request: tag(request),
            },
            Op::DeleteCollection { name, uid, request } => LogOp::DeleteCollection {
                name: collection_name(&name)?,
                uid,
                request: tag(request),
            },
            Op::Put { uid, doc, request } => {
                let (id, doc) = doc.into_stored(|id| replay.dictionary(uid, id))?;
                LogOp::Put {
                    uid,
                    id,
                    doc: Arc::new(doc),
                    request: tag(request),
                }
            }
            Op::Delete { uid, id, request } => LogOp::Delete {
                uid,
                id: doc_id(&id)?,
                request: tag(request),
            },
            Op::Dictionary { uid, bytes } => LogOp::Dictionary {
                uid,
                dictionary: Arc::new(Dictionary::from_bytes(bytes)?),
            },
            Op::Restoring { record } => LogOp::Restoring {
                definition: record.definition()?,
            },
            Op::Restored { uids } => LogOp::Restored { uids },
        }))
    }
}

/// Encodes `value` and appends its frame to `out`.
pub fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let payload = postcard::to_stdvec(value)
        .map_err(|e| EngineError::Internal(format!("encoding a record: {e}")))?;
    if payload.len() > super::frame::MAX_PAYLOAD {
        return Err(EngineError::invalid(
            "document",
            format!("record of {} bytes is too large to store", payload.len()),
        ));
    }
    super::frame::encode(&payload, out);
    Ok(())
}

/// Decodes a frame's payload.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> std::result::Result<T, String> {
    postcard::from_bytes(payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_of_older_records_read_back_in_the_current_form() {
        let tag = |fingerprint: &str| {
            RequestTag::from(TagRecord {
                id: "r".into(),
                fingerprint: fingerprint.into(),
                at: 1,
            })
            .fingerprint
        };
        assert_eq!(tag("CreateDocument news/a1"), "create document news/a1");
        assert_eq!(tag("DeleteCollection news"), "delete collection news");
        assert_eq!(tag("update document news/a1"), "update document news/a1");
    }

    #[test]
    fn a_keyword_normalizer_is_held_in_the_analyzer_and_read_back() {
        let spec = |normalizer: &str| FieldSpec {
            name: "brand".into(),
            ty: Some(FieldType::Keyword),
            analyzer: "keyword".into(),
            facetable: true,
            normalizer: normalizer.into(),
            ..Default::default()
        };
        let record = FieldRecord::from(&spec("lowercase"));
        assert_eq!(record.analyzer, "keyword+lowercase");
        let bytes = postcard::to_stdvec(&record).unwrap();
        let back: FieldRecord = decode(&bytes).unwrap();
        assert_eq!(FieldSpec::from(&back), spec("lowercase"));
        // Without a normalizer the bytes are those older builds wrote.
        let plain = FieldRecord::from(&spec(""));
        assert_eq!(plain.analyzer, "keyword");
        assert_eq!(FieldSpec::from(&plain), spec(""));
    }
}
