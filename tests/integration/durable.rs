//! Durable mode through the real binary: torn and corrupt log tails, SIGTERM,
//! an unknown format, a directory in use, a full disk, request ids and
//! dictionaries across restarts, recovery behind health. (kill -9: crash.rs.)

use serde_json::json;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use trove::api::pb;

use crate::crash::{DOCS, create_docs_collection};
use crate::harness::{doc, to_json};
use crate::process::{Clients, Process, Rng};
/// Creates `docs` and documents `d0` … `d<n-1>`.
async fn write_docs(clients: &mut Clients, from: usize, to: usize) {
    for i in from..to {
        clients
            .documents
            .create_document(pb::CreateDocumentRequest {
                collection: DOCS.into(),
                document: Some(doc(
                    &format!("d{i}"),
                    json!({ "title": format!("number {i}") }),
                )),
                async_visibility: false,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
}

async fn present_ids(clients: &mut Clients) -> Vec<String> {
    let mut ids: Vec<String> = clients
        .documents
        .list_documents(pb::ListDocumentsRequest {
            collection: DOCS.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .documents
        .into_iter()
        .map(|d| d.id)
        .collect();
    ids.sort_by_key(|id| id[1..].parse::<usize>().unwrap_or(usize::MAX));
    ids
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("d{i}")).collect()
}

fn only_segment(data: &std::path::Path) -> std::path::PathBuf {
    let segments: Vec<_> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_log_tail_is_cut_and_damage_in_the_middle_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    write_docs(&mut clients, 0, 10).await;
    process.kill9();
    let segment = only_segment(&data);

    // A crash in the middle of the last append: cut back to d8.
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    assert_eq!(present_ids(&mut clients).await, ids(0..9));
    let log = process.log_text();
    assert!(
        log.contains("torn") && log.contains(&*segment.to_string_lossy()),
        "{log}"
    );
    // Appends after the cut are good records.
    write_docs(&mut clients, 9, 12).await;
    process.kill9();

    // Garbage after the last record (an append that never completed).
    let mut garbage = Rng::new(7);
    let tail: Vec<u8> = (0..300).map(|_| garbage.next() as u8).collect();
    let mut bytes = std::fs::read(&segment).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&tail);
    std::fs::write(&segment, &bytes).unwrap();
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    assert_eq!(present_ids(&mut clients).await, ids(0..12));
    process.kill9();
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len as u64);

    // A flipped byte in the middle, with good records after it: refuse to start,
    // naming the file and the offset.
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let mut process = Process::spawn(&data, &[]);
    let status = process.wait_exit();
    let log = process.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&*segment.to_string_lossy()) && log.contains("damaged at offset"),
        "{log}"
    );
    // Nothing was cut: the damaged file is left for inspection.
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_nothing_and_leaves_no_log_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    write_docs(&mut clients, 0, 20).await;
    // Asynchronous writes are durable when acknowledged too.
    for i in 20..30 {
        clients
            .documents
            .create_document(pb::CreateDocumentRequest {
                collection: DOCS.into(),
                document: Some(doc(&format!("d{i}"), json!({ "title": "later" }))),
                async_visibility: true,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    clients
        .documents
        .delete_document(pb::DeleteDocumentRequest {
            collection: DOCS.into(),
            id: "d0".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(process.terminate().success());
    assert!(process.log_text().contains("checkpoint written"));

    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    assert_eq!(present_ids(&mut clients).await, ids(1..30));
    let log = process.log_text();
    assert!(log.contains("replayed=0"), "{log}");
    let found = clients
        .search
        .search(pb::SearchRequest {
            collection: DOCS.into(),
            query: "later".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_size, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_format_or_a_foreign_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("FORMAT"), "trove data directory format 99\n").unwrap();
    let mut process = Process::spawn(&data, &[]);
    assert!(!process.wait_exit().success());
    let log = process.log_text();
    assert!(
        log.contains("format 99") && log.contains("format 1"),
        "{log}"
    );

    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let mut process = Process::spawn(&foreign, &[]);
    assert!(!process.wait_exit().success());
    let log = process.log_text();
    assert!(log.contains("not a trove data directory"), "{log}");
}

/// A second server on a data directory in use is refused at start-up, naming
/// the process that holds it; the first keeps serving, and every write it
/// acknowledged is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Process::start(&data, &[]).await;
    let mut clients = first.connect().await;
    create_docs_collection(&mut clients).await;
    write_docs(&mut clients, 0, 5).await;

    let mut second = Process::spawn(&data, &[]);
    assert!(!second.wait_exit().success());
    let log = second.log_text();
    let pid = std::fs::read_to_string(data.join("LOCK")).unwrap();
    assert!(
        log.contains("in use by another trove server")
            && log.contains(&format!("pid {}", pid.trim())),
        "{log}"
    );

    write_docs(&mut clients, 5, 10).await;
    first.kill9();
    let mut again = Process::start(&data, &[]).await;
    let mut clients = again.connect().await;
    assert_eq!(present_ids(&mut clients).await, ids(0..10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_not_serving_until_recovery_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    write_docs(&mut clients, 0, 3).await;
    assert!(process.terminate().success());

    // Recovery reads the checkpoint's manifest first: make it a FIFO, so that
    // recovery waits until the test writes the real manifest into it.
    let checkpoint = std::fs::read_dir(data.join("checkpoints"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let manifest = checkpoint.join("MANIFEST");
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let path = std::ffi::CString::new(manifest.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);

    let mut process = Process::spawn(&data, &[]);
    let mut clients = process.connect().await;
    assert_eq!(process.health().await, ServingStatus::NotServing as i32);
    let refused = clients
        .search
        .search(pb::SearchRequest {
            collection: DOCS.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let refused = clients
        .collections
        .list_collections(pb::ListCollectionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);

    let writer = std::thread::spawn(move || std::fs::write(&manifest, bytes).unwrap());
    let mut clients = process.wait_serving().await;
    writer.join().unwrap();
    assert_eq!(present_ids(&mut clients).await, ids(0..3));
}

/// A size-limited tmpfs mounted for one test, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` when not root (mounting needs it); CI runs as root.
    fn mount(size: &str) -> Option<SmallFs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("not root: skipping the disk-full test");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        if !output.status.success() && stderr.contains("permission denied") {
            // Root without the right to mount (a restricted container).
            println!("SKIPPED: cannot mount a tmpfs here: {stderr}");
            return None;
        }
        assert!(output.status.success(), "mounting a tmpfs failed: {stderr}");
        Some(SmallFs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A body that compresses poorly, so that each write takes real space.
fn noise(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    let Some(fs) = SmallFs::mount("3m") else {
        return;
    };
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let data = fs.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;

    let mut rng = Rng::new(11);
    let mut acked = Vec::new();
    let put = |clients: &mut Clients, id: String, body: String| {
        let mut documents = clients.documents.clone();
        async move {
            documents
                .create_document(pb::CreateDocumentRequest {
                    collection: DOCS.into(),
                    document: Some(doc(&id, json!({ "title": id, "body": body }))),
                    async_visibility: false,
                    request_id: String::new(),
                })
                .await
        }
    };
    let refused = loop {
        let id = format!("d{}", acked.len());
        match put(&mut clients, id.clone(), noise(&mut rng, 40_000)).await {
            Ok(_) => acked.push(id),
            Err(status) => break status,
        }
        assert!(acked.len() < 200, "the disk never filled");
    };
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(acked.len() > 5, "only {} writes fit", acked.len());

    // Reads go on; the refused write left nothing behind; writes stay refused
    // (not failed for good) while the disk is full.
    assert_eq!(present_ids(&mut clients).await, acked);
    let found = clients
        .search
        .search(pb::SearchRequest {
            collection: DOCS.into(),
            query: "title:d1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_size, 1);
    let again = put(&mut clients, "big".into(), noise(&mut rng, 40_000))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::ResourceExhausted);

    // Space comes back: writes resume.
    std::fs::remove_file(&filler).unwrap();
    put(&mut clients, "after".into(), noise(&mut rng, 1000))
        .await
        .unwrap();
    acked.push("after".into());
    process.kill9();

    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    let mut present = present_ids(&mut clients).await;
    present.sort();
    acked.sort();
    assert_eq!(present, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_remembered_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    let create = |request_id: &str| pb::CreateDocumentRequest {
        collection: DOCS.into(),
        document: Some(doc("", json!({ "title": "once" }))),
        async_visibility: false,
        request_id: request_id.into(),
    };
    let first = clients
        .documents
        .create_document(create("from-the-log"))
        .await
        .unwrap()
        .into_inner();
    let make_collection = pb::CreateCollectionRequest {
        collection: Some(pb::Collection {
            name: "made-once".into(),
            ..Default::default()
        }),
        request_id: "make-collection".into(),
    };
    clients
        .collections
        .create_collection(make_collection.clone())
        .await
        .unwrap();
    process.kill9();

    // Replayed from the log.
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    let retry = clients
        .documents
        .create_document(create("from-the-log"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.id, first.id);
    clients
        .collections
        .create_collection(make_collection.clone())
        .await
        .expect("a retried create returns the collection, not ALREADY_EXISTS");
    let second = clients
        .documents
        .create_document(create("from-a-checkpoint"))
        .await
        .unwrap()
        .into_inner();
    assert!(process.terminate().success());

    // Read from the checkpoint written at shutdown.
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    for (request_id, id) in [
        ("from-the-log", &first.id),
        ("from-a-checkpoint", &second.id),
    ] {
        let retry = clients
            .documents
            .create_document(create(request_id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&retry.id, id, "{request_id}");
    }
    assert_eq!(present_ids(&mut clients).await.len(), 2);
    clients
        .collections
        .create_collection(make_collection)
        .await
        .expect("remembered through the checkpoint");
}

/// A document as GetDocument returns it: its title and version.
async fn title_of(clients: &mut Clients, id: &str) -> (String, u64) {
    let got = clients
        .documents
        .get_document(pb::GetDocumentRequest {
            collection: DOCS.into(),
            id: id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let fields = to_json(&got.fields.unwrap());
    (fields["title"].as_str().unwrap().to_owned(), got.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_compressed_with_the_trained_dictionary_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    // Past 1,000 documents the collection trains a dictionary; the rest, and
    // a remembered write, are compressed with it.
    let title = |i: usize| format!("number {i} of the dictionary test, with words to share");
    let requests: Vec<_> = (0..1500)
        .map(|i| pb::ImportDocumentsRequest {
            collection: DOCS.into(),
            document: Some(doc(&format!("d{i}"), json!({ "title": title(i) }))),
            async_visibility: false,
        })
        .collect();
    let summary = clients
        .documents
        .import_documents(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.failed_count, 0, "{summary:?}");
    assert!(
        process
            .log_text()
            .contains("trained a compression dictionary")
    );
    let remembered = |title: &str| pb::CreateDocumentRequest {
        collection: DOCS.into(),
        document: Some(doc("r", json!({ "title": title }))),
        async_visibility: false,
        request_id: "after-the-dictionary".into(),
    };
    clients
        .documents
        .create_document(remembered("remembered"))
        .await
        .unwrap();
    process.kill9();

    // From the log: the dictionary record comes before the documents using it.
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    for i in [0, 999, 1000, 1499] {
        assert_eq!(
            title_of(&mut clients, &format!("d{i}")).await,
            (title(i), 1)
        );
    }
    assert_eq!(title_of(&mut clients, "r").await.0, "remembered");
    assert!(process.terminate().success());

    // From the checkpoint written at shutdown, which holds the dictionary.
    let checkpoints: Vec<_> = std::fs::read_dir(data.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let dictionaries: Vec<_> = checkpoints
        .iter()
        .flat_map(|c| std::fs::read_dir(c).unwrap())
        .map(|e| e.unwrap().path().join("dictionary"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(dictionaries.len(), 1, "{checkpoints:?}");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    assert!(process.log_text().contains("replayed=0"));
    for i in [0, 999, 1000, 1499] {
        assert_eq!(
            title_of(&mut clients, &format!("d{i}")).await,
            (title(i), 1)
        );
    }
    // The remembered outcome reads back, and a retry returns it unchanged.
    let retry = clients
        .documents
        .create_document(remembered("a different body"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(to_json(&retry.fields.unwrap())["title"], "remembered");
    let found = clients
        .search
        .search(pb::SearchRequest {
            collection: DOCS.into(),
            query: "\"number 1499\"".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_size, 1);
    assert_eq!(found.hits[0].document.as_ref().unwrap().id, "d1499");
}

/// Remembered request outcomes larger than one record (70 updates of 1 MiB
/// documents with request ids) no longer stop every checkpoint: the log is
/// dropped once the checkpoint is written, the shutdown checkpoint succeeds,
/// and after a restart each retry still returns its own first outcome, the
/// old versions as well as the current ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_remembered_outcomes_do_not_stop_checkpoints() {
    const UPDATES: usize = 70;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--checkpoint-bytes", "8388608"];
    let mut process = Process::start(&data, &args).await;
    let mut clients = process.wait_serving().await;
    create_docs_collection(&mut clients).await;
    let mut rng = Rng::new(19);
    let mut blobs = Vec::new();
    for i in 0..UPDATES {
        let blob = noise(&mut rng, 1 << 20);
        let id = format!("d{}", i % 2);
        clients
            .documents
            .update_document(pb::UpdateDocumentRequest {
                collection: DOCS.into(),
                document: Some(doc(
                    &id,
                    json!({"title": format!("update {i}"), "blob": blob}),
                )),
                allow_missing: true,
                request_id: format!("update-{i}"),
                ..Default::default()
            })
            .await
            .unwrap();
        blobs.push(blob.len());
    }
    assert!(process.terminate().success());
    let log = process.log_text();
    assert!(!log.contains("checkpoint failed"), "{log}");
    let wal_bytes: u64 = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(wal_bytes < 1 << 20, "the log kept {wal_bytes} bytes");
    let leftovers: Vec<_> = std::fs::read_dir(data.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mut process = Process::start(&data, &args).await;
    let mut clients = process.wait_serving().await;
    for i in [0, 1, 2, 35, UPDATES - 2, UPDATES - 1] {
        let id = format!("d{}", i % 2);
        let retry = clients
            .documents
            .update_document(pb::UpdateDocumentRequest {
                collection: DOCS.into(),
                document: Some(doc(&id, json!({"title": "a different retry body"}))),
                allow_missing: true,
                request_id: format!("update-{i}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let fields = to_json(&retry.fields.unwrap());
        assert_eq!(fields["title"], format!("update {i}"));
        assert_eq!(retry.version, (i / 2 + 1) as u64);
    }
    assert_eq!(title_of(&mut clients, "d1").await.1, (UPDATES / 2) as u64);
}

/// What `brand = "sony"` finds as a post filter, and the brand facet it leaves
/// whole, through `clients`.
async fn sony_and_brands(clients: &mut Clients) -> (Vec<String>, Vec<(String, i64)>) {
    let found = clients
        .search
        .search(pb::SearchRequest {
            collection: "shop".into(),
            post_filter: "brand = \"sony\"".into(),
            facets: vec![pb::FacetRequest {
                field: "brand".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<String> = found.hits.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    let brands = found.facets[0]
        .buckets
        .iter()
        .map(|b| (b.value.clone(), b.count))
        .collect();
    (ids, brands)
}

/// A KEYWORD field's normalizer is part of its collection's definition: it
/// comes back from the log and from a checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyword_normalizer_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &[]).await;
    let mut clients = process.wait_serving().await;
    clients
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "shop".into(),
                fields: vec![pb::Field {
                    name: "brand".into(),
                    r#type: pb::FieldType::Keyword as i32,
                    filterable: true,
                    facetable: true,
                    normalizer: "lowercase".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    for (id, brand) in [
        ("p1", "Sony"),
        ("p2", "SONY"),
        ("p3", "Sony"),
        ("p4", "Bose"),
    ] {
        clients
            .documents
            .create_document(pb::CreateDocumentRequest {
                collection: "shop".into(),
                document: Some(doc(id, json!({ "brand": brand }))),
                async_visibility: false,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let want = (
        vec!["p1".to_string(), "p2".into(), "p3".into()],
        vec![("Sony".to_string(), 3), ("Bose".into(), 1)],
    );
    assert_eq!(sony_and_brands(&mut clients).await, want);
    process.kill9();

    // Replayed from the log, then read from the checkpoint written at shutdown.
    for _ in 0..2 {
        let mut process = Process::start(&data, &[]).await;
        let mut clients = process.wait_serving().await;
        assert_eq!(sony_and_brands(&mut clients).await, want);
        let shop = clients
            .collections
            .get_collection(pb::GetCollectionRequest {
                name: "shop".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(shop.fields[0].normalizer, "lowercase");
        assert!(process.terminate().success());
    }
}
