//! Durable mode under kill -9: writers of documents, imports and collections
//! against the real binary, killed at random moments; after each restart every
//! acknowledged write is there and nothing unacknowledged half-applied.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tonic::Code;
use trove::api::pb::{self, FieldType};

use crate::harness::{doc, field, to_json};
use crate::process::{Clients, Process, Rng};

/// What a key (a document or a collection) holds.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Absent,
    Present { version: u64, marker: String },
}

/// The acknowledged state of a key, and the write in flight whose outcome is
/// unknown (the server died before answering).
#[derive(Clone, Debug)]
struct Slot {
    acked: State,
    pending: Option<State>,
}

type Model = Arc<Mutex<HashMap<String, Slot>>>;

pub(crate) const DOCS: &str = "docs";
const WRITERS: u64 = 4;
const IDS_PER_WRITER: u64 = 12;

fn next_version(state: &State) -> u64 {
    match state {
        State::Absent => 1,
        State::Present { version, .. } => version + 1,
    }
}

/// Codes a write may get when the server dies under it: its outcome is unknown.
fn outcome_unknown(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
    )
}

pub(crate) async fn create_docs_collection(clients: &mut Clients) {
    clients
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: DOCS.into(),
                fields: vec![field("title", FieldType::Text, |_| {})],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

/// Upserts and deletes documents `w<k>-<i>` until the server dies.
async fn doc_writer(
    mut clients: Clients,
    k: u64,
    seed: u64,
    model: Model,
    serial: Arc<Mutex<u64>>,
) {
    let mut rng = Rng::new(seed);
    loop {
        let id = format!("w{k}-{}", rng.below(IDS_PER_WRITER));
        let acked = model.lock().unwrap()[&id].acked.clone();
        let delete = matches!(acked, State::Present { .. }) && rng.below(10) < 3;
        let predicted = if delete {
            State::Absent
        } else {
            let marker = {
                let mut serial = serial.lock().unwrap();
                *serial += 1;
                format!("m{}", *serial)
            };
            State::Present {
                version: next_version(&acked),
                marker,
            }
        };
        model.lock().unwrap().get_mut(&id).unwrap().pending = Some(predicted.clone());
        let result = match &predicted {
            State::Absent => clients
                .documents
                .delete_document(pb::DeleteDocumentRequest {
                    collection: DOCS.into(),
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            State::Present { version, marker } => clients
                .documents
                .update_document(pb::UpdateDocumentRequest {
                    document: Some(doc(&id, json!({ "title": marker }))),
                    collection: DOCS.into(),
                    allow_missing: true,
                    ..Default::default()
                })
                .await
                .map(|r| assert_eq!(r.into_inner().version, *version, "{id}")),
        };
        match result {
            Ok(()) => {
                *model.lock().unwrap().get_mut(&id).unwrap() = Slot {
                    acked: predicted,
                    pending: None,
                }
            }
            Err(status) if outcome_unknown(&status) => return,
            Err(status) => panic!("{id}: {status:?}"),
        }
    }
}

/// Imports batches of three documents `imp-<i>` until the server dies.
async fn import_writer(mut clients: Clients, seed: u64, model: Model, serial: Arc<Mutex<u64>>) {
    let mut rng = Rng::new(seed);
    loop {
        let mut batch = Vec::new();
        {
            let mut model = model.lock().unwrap();
            while batch.len() < 3 {
                let id = format!("imp-{}", rng.below(IDS_PER_WRITER));
                if batch.iter().any(|(b, _)| *b == id) {
                    continue;
                }
                let mut serial = serial.lock().unwrap();
                *serial += 1;
                let slot = model.get_mut(&id).unwrap();
                let predicted = State::Present {
                    version: next_version(&slot.acked),
                    marker: format!("m{}", *serial),
                };
                slot.pending = Some(predicted.clone());
                batch.push((id, predicted));
            }
        }
        let requests: Vec<pb::ImportDocumentsRequest> = batch
            .iter()
            .map(|(id, state)| {
                let State::Present { marker, .. } = state else {
                    unreachable!()
                };
                pb::ImportDocumentsRequest {
                    collection: DOCS.into(),
                    document: Some(doc(id, json!({ "title": marker }))),
                    async_visibility: false,
                }
            })
            .collect();
        match clients
            .documents
            .import_documents(tokio_stream::iter(requests))
            .await
        {
            Ok(response) => {
                assert_eq!(response.into_inner().failed_count, 0);
                let mut model = model.lock().unwrap();
                for (id, state) in batch {
                    *model.get_mut(&id).unwrap() = Slot {
                        acked: state,
                        pending: None,
                    };
                }
            }
            Err(status) if outcome_unknown(&status) => return,
            Err(status) => panic!("import: {status:?}"),
        }
    }
}

/// Creates and deletes collections `tmp<i>` until the server dies.
async fn collection_writer(mut clients: Clients, seed: u64, model: Model) {
    let mut rng = Rng::new(seed);
    loop {
        let name = format!("tmp{}", rng.below(4));
        let key = format!("collection/{name}");
        let acked = model.lock().unwrap()[&key].acked.clone();
        let predicted = match acked {
            State::Absent => State::Present {
                version: 0,
                marker: String::new(),
            },
            State::Present { .. } => State::Absent,
        };
        model.lock().unwrap().get_mut(&key).unwrap().pending = Some(predicted.clone());
        let result = match predicted {
            State::Absent => clients
                .collections
                .delete_collection(pb::DeleteCollectionRequest {
                    name: name.clone(),
                    request_id: String::new(),
                })
                .await
                .map(|_| ()),
            State::Present { .. } => clients
                .collections
                .create_collection(pb::CreateCollectionRequest {
                    collection: Some(pb::Collection {
                        name: name.clone(),
                        fields: vec![field("title", FieldType::Text, |_| {})],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                *model.lock().unwrap().get_mut(&key).unwrap() = Slot {
                    acked: predicted,
                    pending: None,
                }
            }
            Err(status) if outcome_unknown(&status) => return,
            Err(status) => panic!("{name}: {status:?}"),
        }
    }
}

/// What the restarted server holds for `key`.
async fn observe(clients: &mut Clients, key: &str) -> State {
    if let Some(name) = key.strip_prefix("collection/") {
        return match clients
            .collections
            .get_collection(pb::GetCollectionRequest { name: name.into() })
            .await
        {
            Ok(_) => State::Present {
                version: 0,
                marker: String::new(),
            },
            Err(status) if status.code() == Code::NotFound => State::Absent,
            Err(status) => panic!("{key}: {status:?}"),
        };
    }
    match clients
        .documents
        .get_document(pb::GetDocumentRequest {
            collection: DOCS.into(),
            id: key.into(),
        })
        .await
    {
        Ok(found) => {
            let found = found.into_inner();
            let marker = to_json(found.fields.as_ref().unwrap())["title"]
                .as_str()
                .unwrap()
                .to_owned();
            State::Present {
                version: found.version,
                marker,
            }
        }
        Err(status) if status.code() == Code::NotFound => State::Absent,
        Err(status) => panic!("{key}: {status:?}"),
    }
}

/// Checks every key against the model after a restart, and that search agrees
/// with the documents; then takes what the server holds as the new model.
async fn verify(clients: &mut Clients, model: &Model, cycle: u32) {
    let keys: Vec<String> = model.lock().unwrap().keys().cloned().collect();
    for key in keys {
        let observed = observe(clients, &key).await;
        let slot = model.lock().unwrap()[&key].clone();
        assert!(
            observed == slot.acked || Some(&observed) == slot.pending.as_ref(),
            "cycle {cycle}, {key}: found {observed:?}; acknowledged {:?}, in flight {:?}",
            slot.acked,
            slot.pending
        );
        if let State::Present { marker, .. } = &observed
            && !key.starts_with("collection/")
        {
            let found = clients
                .search
                .search(pb::SearchRequest {
                    collection: DOCS.into(),
                    query: format!("title:{marker}"),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let ids: Vec<_> = found.hits.iter().map(|h| h.id.as_str()).collect();
            assert_eq!(ids, [key.as_str()], "cycle {cycle}: search for {marker}");
        }
        *model.lock().unwrap().get_mut(&key).unwrap() = Slot {
            acked: observed,
            pending: None,
        };
    }
    // Nothing the writers never sent: every stored id is one of theirs.
    let listed = clients
        .documents
        .list_documents(pb::ListDocumentsRequest {
            collection: DOCS.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let model = model.lock().unwrap();
    for document in listed.documents {
        assert!(
            matches!(
                model.get(&document.id),
                Some(Slot {
                    acked: State::Present { .. },
                    ..
                })
            ),
            "cycle {cycle}: unexpected document {}",
            document.id
        );
    }
}

/// Concurrent writers, `kill -9` at a random moment, restart, check: every
/// acknowledged write is there (or the write in flight after it), nothing never
/// sent appears, acknowledged deletes stay deleted. Checkpoints are made small
/// so that kills also land during checkpoints.
async fn crash_cycles(fsync: &str, cycles: u32) {
    let seed: u64 = std::env::var("TROVE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed {seed} (TROVE_CRASH_SEED), fsync {fsync}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--fsync", fsync, "--checkpoint-bytes", "20000"];

    let model: Model = Arc::default();
    {
        let mut model = model.lock().unwrap();
        let absent = Slot {
            acked: State::Absent,
            pending: None,
        };
        for k in 0..WRITERS {
            for i in 0..IDS_PER_WRITER {
                model.insert(format!("w{k}-{i}"), absent.clone());
            }
        }
        for i in 0..IDS_PER_WRITER {
            model.insert(format!("imp-{i}"), absent.clone());
        }
        for i in 0..4 {
            model.insert(format!("collection/tmp{i}"), absent.clone());
        }
    }
    let serial = Arc::new(Mutex::new(0u64));

    let mut process = Process::start(&data, &args).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    for cycle in 0..cycles {
        let mut tasks = Vec::new();
        for k in 0..WRITERS {
            tasks.push(tokio::spawn(doc_writer(
                clients.clone(),
                k,
                rng.next(),
                model.clone(),
                serial.clone(),
            )));
        }
        tasks.push(tokio::spawn(import_writer(
            clients.clone(),
            rng.next(),
            model.clone(),
            serial.clone(),
        )));
        tasks.push(tokio::spawn(collection_writer(
            clients.clone(),
            rng.next(),
            model.clone(),
        )));
        tokio::time::sleep(Duration::from_millis(50 + rng.below(1500))).await;
        process.kill9();
        for task in tasks {
            task.await.unwrap();
        }
        process = Process::start(&data, &args).await;
        clients = process.wait_serving().await;
        verify(&mut clients, &model, cycle).await;
    }
    let log = process.log_text();
    assert!(process.terminate().success(), "{log}");
    let writes = *serial.lock().unwrap();
    println!("{cycles} cycles, {writes} document writes");
    assert!(
        writes > u64::from(cycles) * 10,
        "the writers barely wrote: {writes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write() {
    let cycles = std::env::var("TROVE_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    crash_cycles("always", cycles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_interval_fsync_loses_no_acknowledged_write() {
    // A process crash leaves written pages to the kernel: with `interval`, only
    // a power loss can lose the last interval.
    crash_cycles("interval=50ms", 5).await;
}
