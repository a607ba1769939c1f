//! The port with a log that arbitrates, as a database shared by several
//! servers would: it keeps each document's version and each request id, and
//! refuses an append whose condition does not hold there. The engine must
//! apply exactly what the log accepts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use super::{Appended, Condition, Entry, LogOp, WriteLog};
use crate::collection::{Patch, Update};
use crate::error::{EngineError, Result};
use crate::names::{CollectionName, DocId};
use crate::{Collection, Engine, Fields};

/// Versions by (collection uid, document id); collection names; request ids.
#[derive(Default)]
struct Arbiter {
    docs: HashMap<(u64, String), u64>,
    collections: HashMap<String, u64>,
    requests: HashMap<String, u64>,
    appended: Vec<LogOp>,
}

#[derive(Default)]
struct ArbiterLog(Mutex<Arbiter>);

impl WriteLog for ArbiterLog {
    fn append(&self, entry: Entry<'_>) -> Result<Appended> {
        let mut log = self.0.lock();
        if let Some(&position) = entry.op.request().and_then(|t| log.requests.get(&t.id)) {
            return Ok(Appended::Repeated { position });
        }
        let actual = match entry.op {
            LogOp::Put { uid, id, .. } | LogOp::Delete { uid, id, .. } => {
                log.docs.get(&(*uid, id.to_string())).copied().unwrap_or(0)
            }
            LogOp::CreateCollection { definition, .. } => log
                .collections
                .get(definition.name.as_str())
                .map_or(0, |_| 1),
            LogOp::DeleteCollection { name, .. } => {
                log.collections.get(name.as_str()).map_or(0, |_| 1)
            }
            _ => 0,
        };
        let holds = match entry.condition {
            Condition::Any => true,
            Condition::Absent => actual == 0,
            Condition::Present => actual != 0,
            Condition::Version(version) => actual == version,
        };
        if !holds {
            return Ok(Appended::Conflict { actual });
        }
        match entry.op {
            LogOp::Put { uid, id, doc, .. } => {
                log.docs.insert((*uid, id.to_string()), doc.version);
            }
            LogOp::Delete { uid, id, .. } => {
                log.docs.remove(&(*uid, id.to_string()));
            }
            LogOp::CreateCollection { definition, .. } => {
                log.collections
                    .insert(definition.name.to_string(), definition.uid);
            }
            LogOp::DeleteCollection { name, .. } => {
                log.collections.remove(name.as_str());
            }
            _ => {}
        }
        log.appended.push(entry.op.clone());
        let position = log.appended.len() as u64;
        if let Some(tag) = entry.op.request() {
            log.requests.insert(tag.id.clone(), position);
        }
        Ok(Appended::At(position))
    }

    fn sync(&self, _position: u64) -> Result<()> {
        Ok(())
    }

    fn last_position(&self) -> u64 {
        self.0.lock().appended.len() as u64
    }
}

fn fields(title: &str) -> Fields {
    json!({ "title": title }).as_object().unwrap().clone()
}

fn id(text: &str) -> DocId {
    DocId::parse(text, "id").unwrap()
}

fn replace(doc: &str, title: &str, expected_version: u64) -> Update {
    Update {
        id: id(doc),
        fields: fields(title),
        patch: Patch::Replace,
        allow_missing: true,
        expected_version,
    }
}

/// An engine writing to `log`, with one collection.
async fn engine_on(log: Arc<ArbiterLog>) -> (Engine, Arc<Collection>) {
    let engine = Engine::recovering(Duration::from_secs(60), 16);
    engine.replay().unwrap().finish(log).unwrap();
    let name = CollectionName::parse("c", "name").unwrap();
    let collection = engine
        .create_collection(name, crate::fuzz::schema(), "")
        .await
        .unwrap();
    (engine, collection)
}

/// Another server wrote `doc` at `version`, which this one has not seen.
fn written_elsewhere(log: &ArbiterLog, collection: &Collection, doc: &str, version: u64) {
    let mut log = log.0.lock();
    log.docs.insert((collection.uid(), doc.to_owned()), version);
}

#[tokio::test]
async fn writes_the_log_refuses_are_not_applied() {
    let log = Arc::new(ArbiterLog::default());
    let (engine, c) = engine_on(log.clone()).await;
    c.create(Some(id("a")), fields("one"), true, "")
        .await
        .unwrap();
    let appended = log.last_position();

    // The request's own version check passes here and fails in the log.
    written_elsewhere(&log, &c, "a", 5);
    let err = c
        .update(replace("a", "two", 1), true, "")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::VersionMismatch {
                expected: 1,
                actual: 5,
                ..
            }
        ),
        "{err:?}"
    );
    // Without a version of its own: the write was decided against version 1.
    let err = c
        .update(replace("a", "two", 0), true, "")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("now at version 5"), "{err}");
    let err = c.delete(id("a"), 1, true, "").await.unwrap_err();
    assert!(
        matches!(err, EngineError::VersionMismatch { .. }),
        "{err:?}"
    );
    // Nothing was applied: the document is as this server last wrote it.
    let a = c.get(&id("a")).unwrap();
    assert_eq!((a.version, a.fields["title"].as_str()), (1, Some("one")));
    assert_eq!(log.last_position(), appended);

    // A document created elsewhere: a create is ALREADY_EXISTS, an upsert a
    // conflict, and neither is applied.
    written_elsewhere(&log, &c, "b", 1);
    let err = c
        .create(Some(id("b")), fields("x"), true, "")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::DocumentExists { .. }), "{err:?}");
    let err = c.update(replace("b", "x", 0), true, "").await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err:?}");
    let imported = c.import(vec![(Some(id("b")), fields("x"))]).await.unwrap();
    assert!(matches!(imported[0], Err(EngineError::Conflict(_))));
    assert!(c.get(&id("b")).is_err());
    assert_eq!(log.last_position(), appended);

    // A write the log accepts is applied: searchable and readable.
    c.create(Some(id("d")), fields("three"), true, "")
        .await
        .unwrap();
    assert_eq!(log.last_position(), appended + 1);
    assert_eq!(c.get(&id("d")).unwrap().version, 1);
    assert_eq!(c.view().searcher.num_docs(), 2);
    drop(engine);
}

#[tokio::test]
async fn a_request_id_the_log_holds_is_not_written_twice() {
    let log = Arc::new(ArbiterLog::default());
    let (_engine, c) = engine_on(log.clone()).await;
    c.create(Some(id("a")), fields("one"), true, "req-1")
        .await
        .unwrap();
    // A retry this server remembers gets the first outcome, without the log.
    let again = c
        .create(Some(id("a")), fields("one"), true, "req-1")
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(log.last_position(), 2, "the collection and one put");

    // A request id the log holds from another server: UNAVAILABLE, retry.
    log.0.lock().requests.insert("req-2".into(), 1);
    let err = c
        .create(Some(id("e")), fields("x"), true, "req-2")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::StorageUnavailable(_)), "{err:?}");
    assert!(c.get(&id("e")).is_err());
}

#[tokio::test]
async fn a_collection_name_the_log_holds_is_refused() {
    let log = Arc::new(ArbiterLog::default());
    let (engine, _c) = engine_on(log.clone()).await;
    log.0.lock().collections.insert("taken".into(), 9);
    let name = CollectionName::parse("taken", "name").unwrap();
    let err = engine
        .create_collection(name.clone(), crate::fuzz::schema(), "")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::CollectionExists(_)), "{err:?}");
    assert!(engine.collection(&name).is_err());
}

/// A second engine that replays the records of the first one's log holds
/// the same collections, documents and remembered request ids.
#[tokio::test]
async fn an_engine_replaying_another_ones_log_holds_the_same_state() {
    let log = Arc::new(ArbiterLog::default());
    let (first, c) = engine_on(log.clone()).await;
    c.create(Some(id("a")), fields("one"), true, "")
        .await
        .unwrap();
    c.update(replace("a", "two", 1), true, "req-u")
        .await
        .unwrap();
    c.create(Some(id("b")), fields("gone"), true, "")
        .await
        .unwrap();
    c.delete(id("b"), 0, true, "").await.unwrap();
    let name = CollectionName::parse("dropped", "name").unwrap();
    first
        .create_collection(name.clone(), crate::fuzz::schema(), "")
        .await
        .unwrap();
    first.delete_collection(&name, "").await.unwrap();

    let second = Engine::recovering(Duration::from_secs(60), 16);
    let mut replay = second.replay().unwrap();
    let records = log.0.lock().appended.clone();
    for op in records {
        replay.apply(op).unwrap();
    }
    replay
        .finish(Arc::new(super::MemoryLog::default()))
        .unwrap();
    assert_eq!(second.collection_count(), 1);
    let c2 = second.collection(c.name()).unwrap();
    let a = c2.get(&id("a")).unwrap();
    assert_eq!((a.version, a.fields["title"].as_str()), (2, Some("two")));
    assert!(c2.get(&id("b")).is_err());
    assert_eq!(c2.view().searcher.num_docs(), 1);
    // The retry of a write the first engine made returns its outcome here.
    let retried = c2
        .update(replace("a", "two", 1), true, "req-u")
        .await
        .unwrap();
    assert_eq!(retried.version, 2);
}
