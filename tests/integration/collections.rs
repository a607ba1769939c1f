//! CollectionService and health.

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use trove::api::pb::{self, Collection, FieldType};

use crate::harness::{Server, bad_request_field, field, test_fields};

fn create(name: &str, fields: Vec<pb::Field>) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        collection: Some(Collection {
            name: name.into(),
            fields,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn create_get_list_delete() {
    let mut s = Server::start().await;
    let created = s.create_test_collection("books").await;
    assert_eq!(created.name, "books");
    assert_eq!(created.fields.len(), test_fields().len());
    assert_eq!(created.fields[0].boost, 2.0);
    assert_eq!(created.fields[1].boost, 1.0, "boost 0 means 1.0");
    assert_eq!(created.fields[0].analyzer, "standard");
    assert_eq!(created.document_count, 0);
    assert!(created.create_time.is_some());

    s.put("books", "a", serde_json::json!({"title": "hello"}))
        .await;
    let got = s
        .collections
        .get_collection(pb::GetCollectionRequest {
            name: "books".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.document_count, 1);
    assert!(got.memory_bytes > 0);

    for name in ["c1", "c2", "c3"] {
        s.create_test_collection(name).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = s
            .collections
            .list_collections(pb::ListCollectionsRequest {
                page_size: 3,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.collections.len() <= 3);
        names.extend(page.collections.into_iter().map(|c| c.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(names, ["books", "c1", "c2", "c3"]);

    s.collections
        .delete_collection(pb::DeleteCollectionRequest {
            name: "books".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let err = s
        .collections
        .get_collection(pb::GetCollectionRequest {
            name: "books".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = s
        .collections
        .delete_collection(pb::DeleteCollectionRequest {
            name: "books".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn create_errors() {
    let mut s = Server::start().await;
    s.create_test_collection("dup").await;
    let err = s
        .collections
        .create_collection(create("dup", test_fields()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    let cases: Vec<(pb::CreateCollectionRequest, &str)> = vec![
        (create("Bad", vec![]), "collection.name"),
        (create("", vec![]), "collection.name"),
        (create(&"a".repeat(64), vec![]), "collection.name"),
        (
            create("ok", vec![field("t", FieldType::Unspecified, |_| {})]),
            "collection.fields[0].type",
        ),
        (
            create(
                "ok",
                vec![
                    field("t", FieldType::Text, |_| {}),
                    field("t", FieldType::Keyword, |_| {}),
                ],
            ),
            "collection.fields[1].name",
        ),
        (
            create("ok", vec![field("1t", FieldType::Text, |_| {})]),
            "collection.fields[0].name",
        ),
        (
            create("ok", vec![field("_id", FieldType::Text, |_| {})]),
            "collection.fields[0].name",
        ),
        (
            create(
                "ok",
                vec![field("t", FieldType::Text, |f| f.sortable = true)],
            ),
            "collection.fields[0].sortable",
        ),
        (
            create(
                "ok",
                vec![field("t", FieldType::Text, |f| {
                    f.analyzer = "klingon".into()
                })],
            ),
            "collection.fields[0].analyzer",
        ),
        (
            create("ok", vec![field("t", FieldType::Text, |f| f.boost = -1.0)]),
            "collection.fields[0].boost",
        ),
        (
            create(
                "ok",
                vec![field("t", FieldType::Text, |f| {
                    f.normalizer = "lowercase".into()
                })],
            ),
            "collection.fields[0].normalizer",
        ),
        (
            create(
                "ok",
                vec![field("k", FieldType::Keyword, |f| {
                    f.normalizer = "uppercase".into()
                })],
            ),
            "collection.fields[0].normalizer",
        ),
        (
            create(
                "ok",
                vec![{
                    let mut f = field("t", FieldType::Text, |_| {});
                    f.r#type = 99;
                    f
                }],
            ),
            "collection.fields[0].type",
        ),
        (
            pb::CreateCollectionRequest {
                collection: None,
                request_id: String::new(),
            },
            "collection",
        ),
    ];
    for (request, want) in cases {
        let err = s
            .collections
            .create_collection(request.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}");
        assert_eq!(bad_request_field(&err), want, "{request:?}");
    }
    let err = s
        .collections
        .list_collections(pb::ListCollectionsRequest {
            page_size: -1,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_request_field(&err), "page_size");
    let err = s
        .collections
        .get_collection(pb::GetCollectionRequest {
            name: "NOPE".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    s.stop().await;
}

#[tokio::test]
async fn health_reports_every_service_serving_after_start_up() {
    let mut s = Server::start_seeded().await;
    for service in [
        "",
        "trove.v1.CollectionService",
        "trove.v1.DocumentService",
        "trove.v1.SearchService",
    ] {
        let status = s.health_of(service).await;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = s
        .health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn health_is_not_serving_until_seeds_are_loaded() {
    // A seed file that is a FIFO: loading blocks reading it until the test writes.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("000_article.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let _unblock = Unblock(fifo.clone());
    let mut config = trove::config::Config::for_tests();
    config.no_seeds = false;
    config.seeds = dir.path().to_owned();
    let mut s = Server::launch(config).await;
    let services = [
        "",
        "trove.v1.CollectionService",
        "trove.v1.DocumentService",
        "trove.v1.SearchService",
    ];
    for service in services {
        let status = s.health_of(service).await;
        assert_eq!(
            status,
            ServingStatus::NotServing as i32,
            "{service:?} while loading"
        );
    }
    tokio::task::spawn_blocking(move || {
        std::fs::write(fifo, "date 2021-08-07 Seeds arrive late. Then more.")
    })
    .await
    .unwrap()
    .unwrap();
    s.wait_serving().await;
    for service in services {
        let status = s.health_of(service).await;
        assert_eq!(
            status,
            ServingStatus::Serving as i32,
            "{service:?} after loading"
        );
    }
    let found = s.find(crate::harness::query("news", "arrive")).await;
    assert_eq!(crate::harness::ids(&found), ["000_article"]);
    s.stop().await;
}

/// On drop (also when an assertion fails), opens the FIFO for writing without
/// blocking, so a reader still waiting on it gets end-of-file and the runtime can
/// shut down instead of hanging.
struct Unblock(std::path::PathBuf);

impl Drop for Unblock {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.0);
    }
}

/// AIP-155 for collections: a retried create returns the collection it made, a
/// retried delete succeeds again.
#[tokio::test]
async fn request_ids_make_collection_retries_safe() {
    let mut s = Server::start().await;
    let mut request = create("c", test_fields());
    request.request_id = "make-c".into();
    let first = s
        .collections
        .create_collection(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = s
        .collections
        .create_collection(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.create_time, first.create_time);
    // Without an id, the same create is ALREADY_EXISTS.
    let again = s
        .collections
        .create_collection(create("c", test_fields()))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    let delete = pb::DeleteCollectionRequest {
        name: "c".into(),
        request_id: "drop-c".into(),
    };
    s.collections
        .delete_collection(delete.clone())
        .await
        .unwrap();
    s.collections.delete_collection(delete).await.unwrap();
    // The create's id now names a collection that is gone.
    let mut request = create("c", test_fields());
    request.request_id = "make-c".into();
    let gone = s.collections.create_collection(request).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // An id reused for another write.
    let mut request = create("d", test_fields());
    request.request_id = "drop-c".into();
    let reused = s.collections.create_collection(request).await.unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(bad_request_field(&reused), "request_id");
    s.stop().await;
}

/// An empty collection runs no threads of its own (its index writer opens at
/// the first write), so hundreds of them cost little, before and after a
/// restart; past `--max-collections` a create is RESOURCE_EXHAUSTED and the
/// server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_empty_collections_cost_no_threads_and_the_limit_is_clean() {
    const COLLECTIONS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let limit = COLLECTIONS.to_string();
    let args = ["--max-collections", limit.as_str()];
    let mut process = crate::process::Process::start(&data, &args).await;
    let mut clients = process.connect().await;
    for i in 0..COLLECTIONS {
        clients
            .collections
            .create_collection(create(&format!("c{i}"), test_fields()))
            .await
            .unwrap();
    }
    // Each writer ran seven threads: 300 collections made 2,100 of them.
    let threads = process.threads();
    assert!(
        threads < 100,
        "{threads} threads for {COLLECTIONS} empty collections"
    );

    let err = clients
        .collections
        .create_collection(create("one-too-many", test_fields()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("--max-collections"), "{err:?}");

    // Writes open writers for the collections written to, and only those.
    for i in 0..10 {
        clients
            .documents
            .create_document(pb::CreateDocumentRequest {
                collection: format!("c{i}"),
                document: Some(crate::harness::doc(
                    "a",
                    serde_json::json!({"title": "first"}),
                )),
                async_visibility: false,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let threads = process.threads();
    assert!(
        threads < 100 + 10 * 4,
        "{threads} threads with 10 writers open"
    );

    // After a restart every collection is back, none with a writer.
    process.kill9();
    let mut process = crate::process::Process::start(&data, &args).await;
    let mut clients = process.connect().await;
    let listed = clients
        .collections
        .list_collections(pb::ListCollectionsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.collections.len(), COLLECTIONS);
    let threads = process.threads();
    assert!(threads < 100, "{threads} threads after a restart");
}
