//! SnapshotService: save and reload collections, in memory and durable.

use serde_json::json;
use tonic::Code;
use trove::api::pb;
use trove::api::pb::document_service_client::DocumentServiceClient;
use trove::api::pb::snapshot_service_client::SnapshotServiceClient;
use trove::config::Config;

use crate::harness::{Server, bad_request_field, doc, query, to_json};
use crate::process::Process;

fn create(name: &str, collections: &[&str]) -> pb::CreateSnapshotRequest {
    pb::CreateSnapshotRequest {
        name: name.into(),
        collections: collections.iter().map(|c| c.to_string()).collect(),
    }
}

fn restore(name: &str, collections: &[&str]) -> pb::RestoreSnapshotRequest {
    pb::RestoreSnapshotRequest {
        name: name.into(),
        collections: collections.iter().map(|c| c.to_string()).collect(),
    }
}

fn counts(snapshot: &pb::Snapshot) -> Vec<(String, i64)> {
    let mut counts: Vec<_> = snapshot
        .collections
        .iter()
        .map(|c| (c.name.clone(), c.document_count))
        .collect();
    counts.sort();
    counts
}

#[tokio::test]
async fn snapshot_and_restore_in_memory() {
    let root = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests();
    config.snapshot_dir = Some(root.path().to_owned());
    let mut s = Server::start_with(config.clone()).await;
    let mut snapshots = SnapshotServiceClient::new(s.channel.clone());
    s.create_test_collection("c").await;
    s.create_test_collection("other").await;
    for i in 0..50 {
        s.put(
            "c",
            &format!("d{i}"),
            json!({"title": format!("saved {i}"), "n": i}),
        )
        .await;
    }
    let updated = s
        .documents
        .update_document(pb::UpdateDocumentRequest {
            collection: "c".into(),
            document: Some(crate::harness::doc("d0", json!({"title": "saved again"}))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, 2);

    // Writes go on while the snapshot is written.
    let mut writer = s.documents.clone();
    let writes = tokio::spawn(async move {
        for i in 0..50 {
            writer
                .create_document(pb::CreateDocumentRequest {
                    collection: "other".into(),
                    document: Some(crate::harness::doc(&format!("o{i}"), json!({"title": "x"}))),
                    async_visibility: false,
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
    });
    let all = snapshots
        .create_snapshot(create("all", &[]))
        .await
        .unwrap()
        .into_inner();
    writes.await.unwrap();
    let in_other = counts(&all)[1].1;
    assert!((0..=50).contains(&in_other), "{all:?}");
    assert_eq!(counts(&all)[0], ("c".to_owned(), 50));
    let only_c = snapshots
        .create_snapshot(create("only-c", &["c"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts(&only_c), [("c".to_owned(), 50)]);

    for (request, code, field) in [
        (create("all", &[]), Code::AlreadyExists, None),
        (
            create("../escape", &[]),
            Code::InvalidArgument,
            Some("name"),
        ),
        (create("", &[]), Code::InvalidArgument, Some("name")),
        (create(".hidden", &[]), Code::InvalidArgument, Some("name")),
        (create("x", &["missing"]), Code::NotFound, None),
        (
            create("x", &["Bad Name"]),
            Code::InvalidArgument,
            Some("collections[0]"),
        ),
    ] {
        let err = snapshots
            .create_snapshot(request.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{request:?}: {err:?}");
        if let Some(field) = field {
            assert_eq!(bad_request_field(&err), field);
        }
    }
    let listed = snapshots
        .list_snapshots(pb::ListSnapshotsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.snapshots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["all", "only-c"]);

    // Restore into the running server: refused while the collection exists.
    let exists = snapshots
        .restore_snapshot(restore("only-c", &[]))
        .await
        .unwrap_err();
    assert_eq!(exists.code(), Code::AlreadyExists);
    s.collections
        .delete_collection(pb::DeleteCollectionRequest {
            name: "c".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let restored = snapshots
        .restore_snapshot(restore("all", &["c"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts(&restored), [("c".to_owned(), 50)]);
    let found = s.find(query("c", "saved")).await;
    assert_eq!(found.total_size, 50, "searchable at once");
    let d0 = s
        .documents
        .get_document(pb::GetDocumentRequest {
            collection: "c".into(),
            id: "d0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d0.version, 2, "versions are kept");
    for (request, code) in [
        (restore("nope", &[]), Code::NotFound),
        (restore("all", &["missing"]), Code::NotFound),
        (restore("../all", &[]), Code::InvalidArgument),
    ] {
        let err = snapshots
            .restore_snapshot(request.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{request:?}: {err:?}");
    }
    s.stop().await;

    // A new in-memory server starts from the snapshot.
    let mut config = Config::for_tests();
    config.from_snapshot = Some(root.path().join("all"));
    let mut s = Server::start_with(config).await;
    assert_eq!(s.find(query("c", "saved")).await.total_size, 50);
    assert_eq!(s.find(query("other", "")).await.total_size as i64, in_other);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_durable_server_survives_kill_9() {
    let root = tempfile::tempdir().unwrap();
    let snapshot_dir = root.path().join("snapshots");
    let mut config = Config::for_tests();
    config.snapshot_dir = Some(snapshot_dir.clone());
    let mut s = Server::start_with(config).await;
    s.create_test_collection("c").await;
    for i in 0..20 {
        s.put("c", &format!("d{i}"), json!({"title": "kept"})).await;
    }
    // Enough more for the collection to train its compression dictionary: the
    // restore logs it before the documents compressed with it.
    let imports: Vec<_> = (0..1200)
        .map(|i| pb::ImportDocumentsRequest {
            collection: "c".into(),
            document: Some(doc(
                &format!("late{i}"),
                json!({"title": format!("late {i}")}),
            )),
            async_visibility: false,
        })
        .collect();
    let imported = DocumentServiceClient::new(s.channel.clone())
        .import_documents(tokio_stream::iter(imports))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.failed_count, 0);
    SnapshotServiceClient::new(s.channel.clone())
        .create_snapshot(create("s", &[]))
        .await
        .unwrap();
    s.stop().await;

    let data = root.path().join("data");
    let dir_arg = snapshot_dir.to_str().unwrap().to_owned();
    let args = ["--snapshot-dir", dir_arg.as_str()];
    let mut process = Process::start(&data, &args).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    SnapshotServiceClient::new(channel)
        .restore_snapshot(restore("s", &[]))
        .await
        .unwrap();
    process.kill9();
    let mut process = Process::start(&data, &args).await;
    let mut clients = process.wait_serving().await;
    let found = clients
        .search
        .search(query("c", "kept"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_size, 20);
    let late = clients
        .documents
        .get_document(pb::GetDocumentRequest {
            collection: "c".into(),
            id: "late1199".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(to_json(&late.fields.unwrap())["title"], "late 1199");
}

/// Concurrent snapshots never share a temporary directory: each one answered
/// OK holds exactly its own collection, and of several with the same name one
/// is written and the others are ALREADY_EXISTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_snapshots_hold_their_own_collections() {
    let root = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests();
    config.snapshot_dir = Some(root.path().to_owned());
    let mut s = Server::start_with(config).await;
    for (name, count) in [("a", 3), ("b", 5)] {
        s.create_test_collection(name).await;
        for i in 0..count {
            s.put(name, &format!("{name}{i}"), json!({"title": name}))
                .await;
        }
    }
    let snapshots = SnapshotServiceClient::new(s.channel.clone());
    // `s7.x` and `s7.y` once shared `s7.tmp`.
    let tasks: Vec<_> = (0..20)
        .flat_map(|i| [(format!("s{i}.x"), "a"), (format!("s{i}.y"), "b")])
        .map(|(name, collection)| {
            let mut snapshots = snapshots.clone();
            tokio::spawn(async move {
                snapshots
                    .create_snapshot(create(&name, &[collection]))
                    .await
                    .map(|r| r.into_inner())
            })
        })
        .collect();
    for task in tasks {
        let written = task.await.unwrap().unwrap();
        let want = if written.name.ends_with(".x") {
            ("a", 3)
        } else {
            ("b", 5)
        };
        assert_eq!(counts(&written), [(want.0.to_string(), want.1)]);
    }
    let listed = snapshots
        .clone()
        .list_snapshots(pb::ListSnapshotsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.snapshots.len(), 40);
    for snapshot in &listed.snapshots {
        let want = if snapshot.name.ends_with(".x") {
            ("a", 3)
        } else {
            ("b", 5)
        };
        assert_eq!(
            counts(snapshot),
            [(want.0.to_string(), want.1)],
            "{}",
            snapshot.name
        );
    }
    // Restored, each holds its collection's documents.
    for name in ["a", "b"] {
        s.collections
            .delete_collection(pb::DeleteCollectionRequest {
                name: name.into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let mut restorer = snapshots.clone();
    restorer
        .restore_snapshot(restore("s13.x", &[]))
        .await
        .unwrap();
    restorer
        .restore_snapshot(restore("s6.y", &[]))
        .await
        .unwrap();
    assert_eq!(crate::harness::ids(&s.find(query("a", "a")).await).len(), 3);
    assert_eq!(s.find(query("b", "b")).await.total_size, 5);
    assert_eq!(s.find(query("a", "b")).await.total_size, 0);

    // The same name, eight times at once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let mut snapshots = snapshots.clone();
            tokio::spawn(async move { snapshots.create_snapshot(create("same", &[])).await })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => written += 1,
            Err(err) => assert_eq!(err.code(), Code::AlreadyExists, "{err:?}"),
        }
    }
    assert_eq!(written, 1);
    // Nothing temporary is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    s.stop().await;
}

/// A restore is all or nothing across a crash: `kill -9` at any moment of a
/// RestoreSnapshot of two collections leaves, after a restart, both with
/// every document or neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_restore_leaves_all_or_nothing() {
    const BIG: usize = 20_000;
    let root = tempfile::tempdir().unwrap();
    let snapshot_dir = root.path().join("snapshots");
    let mut config = Config::for_tests();
    config.snapshot_dir = Some(snapshot_dir.clone());
    let mut s = Server::start_with(config).await;
    s.create_test_collection("big").await;
    s.create_test_collection("small").await;
    s.put("small", "only", json!({"title": "small"})).await;
    let imports: Vec<_> = (0..BIG)
        .map(|i| pb::ImportDocumentsRequest {
            collection: "big".into(),
            document: Some(doc(&format!("d{i}"), json!({"title": format!("big {i}")}))),
            async_visibility: false,
        })
        .collect();
    DocumentServiceClient::new(s.channel.clone())
        .import_documents(tokio_stream::iter(imports))
        .await
        .unwrap();
    SnapshotServiceClient::new(s.channel.clone())
        .create_snapshot(create("both", &[]))
        .await
        .unwrap();
    s.stop().await;

    let dir_arg = snapshot_dir.to_str().unwrap().to_owned();
    let args = ["--snapshot-dir", dir_arg.as_str()];
    let mut outcomes = Vec::new();
    for (cycle, delay_ms) in [0u64, 10, 20, 30, 45, 60, 90, 150, 300]
        .into_iter()
        .enumerate()
    {
        let data = root.path().join(format!("data{cycle}"));
        let mut process = Process::start(&data, &args).await;
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut snapshots = SnapshotServiceClient::new(channel);
        let restoring =
            tokio::spawn(async move { snapshots.restore_snapshot(restore("both", &[])).await });
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        process.kill9();
        let acknowledged = matches!(restoring.await, Ok(Ok(_)));
        let mut process = Process::start(&data, &args).await;
        let clients = process.wait_serving().await;
        let count = |name: &'static str| {
            let mut search = clients.search.clone();
            async move {
                match search.search(query(name, "")).await {
                    Ok(found) => Some(found.into_inner().total_size),
                    Err(err) => {
                        assert_eq!(err.code(), Code::NotFound, "{err:?}");
                        None
                    }
                }
            }
        };
        let (big, small) = (count("big").await, count("small").await);
        match (big, small) {
            (Some(b), Some(1)) if b == BIG as i64 => outcomes.push("restored"),
            (None, None) => {
                assert!(
                    !acknowledged,
                    "cycle {cycle}: an acknowledged restore was lost"
                );
                outcomes.push("absent")
            }
            other => panic!("cycle {cycle} ({delay_ms} ms): a partial restore {other:?}"),
        }
        // After a crash that left nothing, the retry restores both (it once
        // said ALREADY_EXISTS for a partial collection).
        if big.is_none() {
            let channel =
                tonic::transport::Channel::from_shared(format!("http://{}", process.addr))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
            let again = SnapshotServiceClient::new(channel)
                .restore_snapshot(restore("both", &[]))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                counts(&again),
                [("big".to_string(), BIG as i64), ("small".to_string(), 1)]
            );
        }
        process.kill9();
    }
    eprintln!("outcomes by delay: {outcomes:?}");
}
