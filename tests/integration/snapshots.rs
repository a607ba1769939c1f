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
