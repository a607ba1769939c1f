//! API keys: authentication before validation, scopes, collection limits, rate
//! limits, open health and reflection, SIGHUP reloads, and the refusal to serve
//! a non-loopback address without keys.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use trove::api::pb::collection_service_client::CollectionServiceClient;
use trove::api::pb::snapshot_service_client::SnapshotServiceClient;
use trove::api::pb::{self, Collection};
use trove::config::Config;

use crate::harness::{Server, doc, query, test_fields};
use crate::process::Process;

const KEYS: &str = r#"
[[keys]]
key = "admin-secret"
scope = "admin"

[[keys]]
key = "news-writer"
scope = "write"
collections = ["news"]

[[keys]]
key = "reader-secret"
scope = "read"

[[keys]]
key = "slow-reader"
scope = "read"
rate_per_s = 1

[[keys]]
key = "news-admin"
scope = "admin"
collections = ["news"]
"#;

/// `message` with `authorization: Bearer key`.
fn with_key<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

fn create(name: &str) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        collection: Some(Collection {
            name: name.into(),
            fields: test_fields(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn create_doc(collection: &str, id: &str) -> pb::CreateDocumentRequest {
    pb::CreateDocumentRequest {
        collection: collection.into(),
        document: Some(doc(id, json!({"title": "Keys and scopes"}))),
        async_visibility: false,
        request_id: String::new(),
    }
}

async fn server_with_keys(dir: &Path) -> Server {
    let path = dir.join("keys.toml");
    std::fs::write(&path, KEYS).unwrap();
    let mut config = Config::for_tests();
    config.api_keys = Some(path);
    config.snapshot_dir = Some(dir.join("snapshots"));
    Server::start_with(config).await
}

#[tokio::test]
async fn requests_need_a_known_key_and_health_and_reflection_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with_keys(dir.path()).await;

    // No key, a malformed header, an unknown key: UNAUTHENTICATED, even for a
    // request that would be invalid (the key is checked first).
    let err = server
        .collections
        .create_collection(create("news"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("Bearer"), "{err:?}");
    let err = server
        .collections
        .create_collection(create("not a valid name!"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let mut request = Request::new(create("news"));
    request
        .metadata_mut()
        .insert("authorization", "admin-secret".parse().unwrap());
    let err = server
        .collections
        .create_collection(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = server
        .collections
        .create_collection(with_key("admin-secreT", create("news")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert_eq!(err.message(), "unknown API key");

    // Health and reflection without a key.
    let health = server
        .health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1);
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            server.channel.clone(),
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let listed = responses.message().await.unwrap().unwrap();
    assert!(format!("{listed:?}").contains("trove.v1.SearchService"));

    // The admin key works.
    server
        .collections
        .create_collection(with_key("admin-secret", create("news")))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn scopes_and_collection_limits_are_checked_before_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with_keys(dir.path()).await;
    for name in ["news", "private"] {
        server
            .collections
            .create_collection(with_key("admin-secret", create(name)))
            .await
            .unwrap();
    }

    // read: search and get, but no writes and no collections.
    let err = server
        .documents
        .create_document(with_key("reader-secret", create_doc("news", "a")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("scope write"), "{err:?}");
    let err = server
        .collections
        .create_collection(with_key("reader-secret", create("bad name!")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // write limited to `news`: writes there, not elsewhere; no collection admin.
    server
        .documents
        .create_document(with_key("news-writer", create_doc("news", "a")))
        .await
        .unwrap();
    let err = server
        .documents
        .create_document(with_key("news-writer", create_doc("private", "a")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("`private`"), "{err:?}");
    // The collection limit comes before the document is validated.
    let mut invalid = create_doc("private", "");
    invalid.document = Some(doc("bad id with spaces", json!({"title": 3})));
    let err = server
        .documents
        .create_document(with_key("news-writer", invalid))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = server
        .search
        .search(with_key("news-writer", query("private", "keys")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = server
        .collections
        .delete_collection(with_key(
            "news-writer",
            pb::DeleteCollectionRequest {
                name: "news".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let import = |collection: &str| {
        with_key(
            "news-writer",
            tokio_stream::iter(vec![pb::ImportDocumentsRequest {
                collection: collection.into(),
                document: Some(doc("imported", json!({"title": "Imported"}))),
                async_visibility: false,
            }]),
        )
    };
    let err = server
        .documents
        .import_documents(import("private"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let imported = server
        .documents
        .import_documents(import("news"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.failed_count, 0);
    // It lists only its collections.
    let listed = server
        .collections
        .list_collections(with_key(
            "news-writer",
            pb::ListCollectionsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["news"]);
    let listed = server
        .collections
        .list_collections(with_key(
            "reader-secret",
            pb::ListCollectionsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.collections.len(), 2);

    // Reads with a read key; the write above is there.
    let found = server
        .search
        .search(with_key("reader-secret", query("news", "keys")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_size, 1);

    // Snapshots need admin; the read key cannot list them.
    let mut snapshots = SnapshotServiceClient::new(server.channel.clone());
    let err = snapshots
        .list_snapshots(with_key("reader-secret", pb::ListSnapshotsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    snapshots
        .list_snapshots(with_key("admin-secret", pb::ListSnapshotsRequest {}))
        .await
        .unwrap();

    // The server keeps serving.
    server
        .documents
        .create_document(with_key("admin-secret", create_doc("private", "b")))
        .await
        .unwrap();
    server.stop().await;
}

/// A collection-limited admin key lists only the snapshots that hold one of
/// its collections, and in them only its collections.
#[tokio::test]
async fn a_limited_admin_key_lists_only_its_collections_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with_keys(dir.path()).await;
    for name in ["news", "private"] {
        server
            .collections
            .create_collection(with_key("admin-secret", create(name)))
            .await
            .unwrap();
        server
            .documents
            .create_document(with_key("admin-secret", create_doc(name, "a")))
            .await
            .unwrap();
    }
    let mut snapshots = SnapshotServiceClient::new(server.channel.clone());
    for (name, collections) in [
        ("private-only", vec!["private".to_string()]),
        ("news-only", vec!["news".to_string()]),
        ("everything", vec![]),
    ] {
        snapshots
            .create_snapshot(with_key(
                "admin-secret",
                pb::CreateSnapshotRequest {
                    name: name.into(),
                    collections,
                },
            ))
            .await
            .unwrap();
    }
    let listed = |key: &'static str| {
        let mut snapshots = snapshots.clone();
        async move {
            let found = snapshots
                .list_snapshots(with_key(key, pb::ListSnapshotsRequest {}))
                .await
                .unwrap()
                .into_inner();
            found
                .snapshots
                .into_iter()
                .map(|s| {
                    let names: Vec<String> = s.collections.into_iter().map(|c| c.name).collect();
                    format!("{}:{}", s.name, names.join(","))
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("admin-secret").await,
        [
            "everything:news,private",
            "news-only:news",
            "private-only:private"
        ]
    );
    assert_eq!(
        listed("news-admin").await,
        ["everything:news", "news-only:news"]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_key_beyond_its_rate_gets_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with_keys(dir.path()).await;
    server
        .collections
        .create_collection(with_key("admin-secret", create("news")))
        .await
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..5 {
        let result = server
            .search
            .search(with_key("slow-reader", query("news", "keys")))
            .await;
        codes.push(result.err().map(|s| s.code()));
    }
    assert_eq!(codes[0], None, "{codes:?}");
    assert!(codes.contains(&Some(Code::ResourceExhausted)), "{codes:?}");
    // The refusal says when to retry: a key of 1 request per second, 1 s.
    let refused = server
        .search
        .search(with_key("slow-reader", query("news", "keys")))
        .await
        .unwrap_err();
    let retry = tonic_types::StatusExt::get_details_retry_info(&refused).expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(1)));
    // Other keys are not limited by it.
    for _ in 0..5 {
        server
            .search
            .search(with_key("reader-secret", query("news", "keys")))
            .await
            .unwrap();
    }
    server.stop().await;
}

/// The collection client of `process` sending `key`.
async fn collections_of(process: &mut Process) -> CollectionServiceClient<Channel> {
    process.connect().await.collections
}

async fn list_code(client: &mut CollectionServiceClient<Channel>, key: &str) -> Option<Code> {
    client
        .list_collections(with_key(key, pb::ListCollectionsRequest::default()))
        .await
        .err()
        .map(|s| s.code())
}

#[tokio::test]
async fn sighup_reloads_the_key_file_and_a_bad_file_keeps_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "[[keys]]\nkey = \"first\"\nscope = \"read\"\n").unwrap();
    let mut process = Process::start(
        &dir.path().join("data"),
        &["--api-keys", keys.to_str().unwrap()],
    )
    .await;
    let mut client = collections_of(&mut process).await;
    assert_eq!(list_code(&mut client, "first").await, None);
    assert_eq!(
        list_code(&mut client, "second").await,
        Some(Code::Unauthenticated)
    );

    std::fs::write(&keys, "[[keys]]\nkey = \"second\"\nscope = \"read\"\n").unwrap();
    process.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while list_code(&mut client, "second").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "not reloaded:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        list_code(&mut client, "first").await,
        Some(Code::Unauthenticated)
    );

    // A file that does not parse: the keys in use stay, and the log says why.
    std::fs::write(&keys, "[[keys]]\nkey = \"third\"\nscope = \"owner\"\n").unwrap();
    process.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !process.log_text().contains("API keys not reloaded") {
        assert!(Instant::now() < deadline, "{}", process.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(list_code(&mut client, "second").await, None);
    assert_eq!(
        list_code(&mut client, "third").await,
        Some(Code::Unauthenticated)
    );

    // An empty file and a file cut short are errors too: the keys in use stay.
    for (i, text) in ["", "[[keys]]\nkey = \"fourth\"\nsco"]
        .into_iter()
        .enumerate()
    {
        std::fs::write(&keys, text).unwrap();
        process.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(30);
        while process.log_text().matches("API keys not reloaded").count() < i + 2 {
            assert!(Instant::now() < deadline, "{}", process.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(list_code(&mut client, "second").await, None, "{text:?}");
    }
}

#[test]
fn a_non_loopback_address_without_keys_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_trove"))
        .args(["--listen", "0.0.0.0:0", "--no-seeds"])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("without API keys") && text.contains("--insecure"),
        "{text}"
    );

    // With --insecure it serves (it is stopped once it logs so).
    let log = dir.path().join("insecure.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_trove"))
        .args(["--listen", "0.0.0.0:0", "--no-seeds", "--insecure"])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("insecure.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(dir.path().join("insecure.err")).unwrap_or_default();
        if text.contains("serving") {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "exited: {text}");
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
