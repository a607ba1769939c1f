//! DocumentService.
//!
//! Longer than most files: every method's contract (create, get, batch get,
//! update and its patch modes, delete, list) is checked through the wire here,
//! and the tests share their small helpers.

use serde_json::json;
use tonic::Code;
use trove::api::pb;

use crate::harness::{Server, bad_request_field, doc, ids, query, to_json};

fn get(collection: &str, id: &str) -> pb::GetDocumentRequest {
    pb::GetDocumentRequest {
        collection: collection.into(),
        id: id.into(),
    }
}

fn update(id: &str, fields: serde_json::Value) -> pb::UpdateDocumentRequest {
    pb::UpdateDocumentRequest {
        collection: "c".into(),
        document: Some(doc(id, fields)),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_get_update_delete() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let created = s
        .put(
            "c",
            "d1",
            json!({"title": "First", "n": 3, "date": "2021-08-07", "extra": {"nested": [1, "x"]}}),
        )
        .await;
    assert_eq!(created.id, "d1");
    assert_eq!(created.version, 1);
    assert_eq!(created.create_time, created.update_time);
    let got = s
        .documents
        .get_document(get("c", "d1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
    assert_eq!(
        to_json(got.fields.as_ref().unwrap()),
        json!({"title": "First", "n": 3.0, "date": "2021-08-07T00:00:00Z", "extra": {"nested": [1.0, "x"]}})
    );

    // Replace all fields.
    let replaced = s
        .documents
        .update_document(update("d1", json!({"title": "Second"})))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replaced.version, 2);
    assert_eq!(
        to_json(replaced.fields.as_ref().unwrap()),
        json!({"title": "Second"})
    );
    assert_eq!(replaced.create_time, created.create_time);

    // Patch with a mask: set n, remove title (named but absent).
    let mut masked = update("d1", json!({"n": 7}));
    masked.update_mask = Some(prost_types::FieldMask {
        paths: vec!["fields.n".into(), "fields.title".into()],
    });
    let patched = s
        .documents
        .update_document(masked)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(patched.version, 3);
    assert_eq!(to_json(patched.fields.as_ref().unwrap()), json!({"n": 7.0}));

    // Merge: given keys replace, null removes.
    let mut merge = update("d1", json!({"title": "Third", "n": null}));
    merge.merge = true;
    let merged = s
        .documents
        .update_document(merge)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(merged.version, 4);
    assert_eq!(
        to_json(merged.fields.as_ref().unwrap()),
        json!({"title": "Third"})
    );

    // expected_version.
    let mut stale = update("d1", json!({"title": "x"}));
    stale.expected_version = 3;
    assert_eq!(
        s.documents.update_document(stale).await.unwrap_err().code(),
        Code::Aborted
    );
    let mut fresh = update("d1", json!({"title": "Fourth"}));
    fresh.expected_version = 4;
    assert_eq!(
        s.documents
            .update_document(fresh)
            .await
            .unwrap()
            .into_inner()
            .version,
        5
    );

    // Missing document: NOT_FOUND, or an upsert with allow_missing.
    let err = s
        .documents
        .update_document(update("nope", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut upsert = update("new", json!({"title": "Upserted"}));
    upsert.allow_missing = true;
    assert_eq!(
        s.documents
            .update_document(upsert)
            .await
            .unwrap()
            .into_inner()
            .version,
        1
    );

    // Delete with a wrong, then the right version.
    let delete = |version| pb::DeleteDocumentRequest {
        collection: "c".into(),
        id: "d1".into(),
        expected_version: version,
        async_visibility: false,
        request_id: String::new(),
    };
    assert_eq!(
        s.documents
            .delete_document(delete(1))
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
    s.documents.delete_document(delete(5)).await.unwrap();
    assert_eq!(
        s.documents
            .get_document(get("c", "d1"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        s.documents
            .delete_document(delete(0))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // Deleted documents leave search at once.
    let found = s.find(query("c", "fourth")).await;
    assert!(found.hits.is_empty(), "{found:?}");
    s.stop().await;
}

/// Numbers are doubles on the wire: each comes back with the same bits, from a
/// read and from a search hit (the stored JSON text must parse back exactly).
/// Whole numbers within ±2^53 are stored as integers, so -0 comes back as 0.
#[tokio::test]
async fn doubles_come_back_bit_for_bit() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let numbers = [
        1.5e-300,
        0.1,
        1.0 / 3.0,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        -2.2250738585072014e-308,
        123456789.12345679,
        9007199254740993.0,
    ];
    let fields: serde_json::Map<String, serde_json::Value> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("x{i}"), json!(n)))
        .chain([("title".to_string(), json!("exact numbers"))])
        .collect();
    s.put("c", "d", serde_json::Value::Object(fields)).await;
    let got = s
        .documents
        .get_document(get("c", "d"))
        .await
        .unwrap()
        .into_inner();
    let hits = s.find(query("c", "exact")).await.hits;
    for found in [
        got.fields.unwrap(),
        hits[0].document.clone().unwrap().fields.unwrap(),
    ] {
        for (i, n) in numbers.iter().enumerate() {
            let value = &found.fields[&format!("x{i}")];
            let Some(prost_types::value::Kind::NumberValue(back)) = value.kind else {
                panic!("x{i}: {value:?}")
            };
            assert_eq!(
                back.to_bits(),
                n.to_bits(),
                "x{i}: {n:e} came back as {back:e}"
            );
        }
    }
}

/// Reads keep decoded documents for the next read: a write, a delete and a
/// re-creation under the same id are each seen at once by Get and Search.
#[tokio::test]
async fn reads_after_a_write_see_the_write_not_a_kept_copy() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let title = |found: &pb::SearchResponse| {
        let fields = found.hits[0].document.as_ref().unwrap().fields.as_ref();
        to_json(fields.unwrap())["title"].clone()
    };
    let read = |s: &mut Server| {
        let mut documents = s.documents.clone();
        async move {
            let got = documents.get_document(get("c", "d1")).await.unwrap();
            to_json(got.into_inner().fields.as_ref().unwrap())["title"].clone()
        }
    };
    for (round, text) in ["alpha one", "alpha two"].into_iter().enumerate() {
        if round == 0 {
            s.put("c", "d1", json!({"title": text})).await;
        } else {
            s.documents
                .update_document(update("d1", json!({"title": text})))
                .await
                .unwrap();
        }
        // Twice: the second read is answered from what the first kept.
        for _ in 0..2 {
            assert_eq!(title(&s.find(query("c", "alpha")).await), text);
            assert_eq!(read(&mut s).await, text);
        }
    }
    s.documents
        .delete_document(pb::DeleteDocumentRequest {
            collection: "c".into(),
            id: "d1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let created = s.put("c", "d1", json!({"title": "alpha three"})).await;
    assert_eq!(created.version, 1);
    assert_eq!(title(&s.find(query("c", "alpha")).await), "alpha three");
    assert_eq!(read(&mut s).await, "alpha three");
    // A read mask on a kept document keeps only what it names.
    let mut masked = query("c", "alpha");
    masked.read_mask = Some(prost_types::FieldMask {
        paths: vec!["fields.title".into()],
    });
    let found = s.find(masked).await;
    let document = found.hits[0].document.as_ref().unwrap();
    assert_eq!(
        to_json(document.fields.as_ref().unwrap()),
        json!({"title": "alpha three"})
    );
    assert_eq!(document.version, 0);
    s.stop().await;
}

#[tokio::test]
async fn writes_are_visible_to_search_when_they_return() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    // Many concurrent writers share commits; each sees its write in search.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let mut documents = s.documents.clone();
        let mut search = s.search.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{i}");
            documents
                .create_document(pb::CreateDocumentRequest {
                    collection: "c".into(),
                    document: Some(doc(&id, json!({"title": format!("marker{i}")}))),
                    async_visibility: false,
                    request_id: String::new(),
                })
                .await
                .unwrap();
            let found = search
                .search(query("c", &format!("marker{i}")))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(ids(&found), [id]);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.find(query("c", "")).await.total_size, 40);

    // An asynchronous write is readable at once, searchable once a later
    // synchronous write (or the periodic refresh) commits.
    s.documents
        .create_document(pb::CreateDocumentRequest {
            collection: "c".into(),
            document: Some(doc("async", json!({"title": "lazy"}))),
            async_visibility: true,
            request_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        s.documents
            .get_document(get("c", "async"))
            .await
            .unwrap()
            .into_inner()
            .id,
        "async"
    );
    s.put("c", "sync", json!({"title": "eager"})).await;
    assert_eq!(ids(&s.find(query("c", "lazy")).await), ["async"]);
    s.stop().await;
}

#[tokio::test]
async fn generated_ids_list_and_batch_get() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let generated = s.put("c", "", json!({"title": "no id"})).await;
    assert!(!generated.id.is_empty());
    for id in ["b", "a", "c", "é", "d"] {
        s.put("c", id, json!({"title": id})).await;
    }
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = s
            .documents
            .list_documents(pb::ListDocumentsRequest {
                collection: "c".into(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.documents.into_iter().map(|d| d.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut want: Vec<String> = ["a", "b", "c", "d", "é"].map(String::from).to_vec();
    want.push(generated.id.clone());
    want.sort();
    assert_eq!(listed, want);

    let batch = s
        .documents
        .batch_get_documents(pb::BatchGetDocumentsRequest {
            collection: "c".into(),
            ids: vec!["d".into(), "a".into(), "d".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        batch
            .documents
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        ["d", "a", "d"]
    );
    let err = s
        .documents
        .batch_get_documents(pb::BatchGetDocumentsRequest {
            collection: "c".into(),
            ids: vec!["a".into(), "missing".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("missing"), "{}", err.message());
    s.stop().await;
}

#[tokio::test]
async fn import_applies_good_documents_and_reports_bad_ones() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let items = |n: usize| {
        let mut items: Vec<pb::ImportDocumentsRequest> = (0..n)
            .map(|i| pb::ImportDocumentsRequest {
                collection: if i == 0 { "c".into() } else { String::new() },
                document: Some(doc(
                    &format!("i{i:04}"),
                    json!({"title": format!("imported {i}"), "n": i}),
                )),
                async_visibility: false,
            })
            .collect();
        // A wrong type, a bad id and another collection: each fails alone.
        items[3].document = Some(doc("bad-type", json!({"n": "three"})));
        items[5].document = Some(doc("tab\tid", json!({})));
        items[7].collection = "other".into();
        items
    };
    let response = s
        .documents
        .import_documents(tokio_stream::iter(items(1500)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.imported_count, 1497);
    assert_eq!(response.failed_count, 3);
    let failures: Vec<(i64, i32)> = response
        .failures
        .iter()
        .map(|f| (f.index, f.code))
        .collect();
    assert_eq!(
        failures,
        [
            (3, Code::InvalidArgument as i32),
            (5, Code::InvalidArgument as i32),
            (7, Code::InvalidArgument as i32)
        ]
    );
    assert_eq!(response.failures[0].id, "bad-type");
    assert_eq!(s.find(query("c", "imported")).await.total_size, 1497);

    // A re-run replaces: same documents, version 2.
    let again = s
        .documents
        .import_documents(tokio_stream::iter(items(1500)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.imported_count, 1497);
    assert_eq!(s.find(query("c", "")).await.total_size, 1497);
    assert_eq!(
        s.documents
            .get_document(get("c", "i0001"))
            .await
            .unwrap()
            .into_inner()
            .version,
        2
    );

    // A stream naming no or an unknown collection fails as a whole.
    let err = s
        .documents
        .import_documents(tokio_stream::iter(vec![pb::ImportDocumentsRequest {
            collection: "missing".into(),
            document: Some(doc("x", json!({}))),
            async_visibility: false,
        }]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn bad_documents_and_requests() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    s.put("c", "exists", json!({})).await;
    let create = |id: &str, fields| pb::CreateDocumentRequest {
        collection: "c".into(),
        document: Some(doc(id, fields)),
        async_visibility: false,
        request_id: String::new(),
    };
    let err = s
        .documents
        .create_document(create("exists", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    let cases = [
        (create("x", json!({"title": 5})), "document.fields.title"),
        (
            create("x", json!({"tags": ["a", 1]})),
            "document.fields.tags",
        ),
        (create("x", json!({"n": 1.5})), "document.fields.n"),
        (create("x", json!({"n": 1e16})), "document.fields.n"),
        (create("x", json!({"live": "yes"})), "document.fields.live"),
        (
            create("x", json!({"date": "yesterday"})),
            "document.fields.date",
        ),
        (create("x", json!({"price": "1"})), "document.fields.price"),
        (create(&"x".repeat(513), json!({})), "document.id"),
        (create("a\u{1}b", json!({})), "document.id"),
        (
            pb::CreateDocumentRequest {
                collection: "c".into(),
                document: None,
                async_visibility: false,
                request_id: String::new(),
            },
            "document",
        ),
        (
            pb::CreateDocumentRequest {
                collection: "Bad Name".into(),
                document: Some(doc("x", json!({}))),
                async_visibility: false,
                request_id: String::new(),
            },
            "collection",
        ),
    ];
    for (request, want) in cases {
        let err = s
            .documents
            .create_document(request.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}: {err:?}");
        assert_eq!(bad_request_field(&err), want, "{request:?}");
    }

    // NaN and infinities cannot be stored.
    let mut nan = create("x", json!({}));
    nan.document
        .as_mut()
        .unwrap()
        .fields
        .as_mut()
        .unwrap()
        .fields
        .insert(
            "price".into(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
            },
        );
    let err = s.documents.create_document(nan).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = s
        .documents
        .create_document(create("x", json!({})))
        .await
        .map(|_| ());
    assert!(
        err.is_ok(),
        "a valid document still goes in after the failures"
    );

    let mut bad_mask = update("exists", json!({}));
    bad_mask.update_mask = Some(prost_types::FieldMask {
        paths: vec!["title".into()],
    });
    let err = s.documents.update_document(bad_mask).await.unwrap_err();
    assert_eq!(
        (err.code(), bad_request_field(&err).as_str()),
        (Code::InvalidArgument, "update_mask.paths[0]")
    );
    let mut both = update("exists", json!({}));
    both.merge = true;
    both.update_mask = Some(prost_types::FieldMask {
        paths: vec!["fields.title".into()],
    });
    assert_eq!(
        s.documents.update_document(both).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    assert_eq!(
        s.documents
            .get_document(get("missing", "x"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        s.documents
            .get_document(get("c", ""))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let err = s
        .documents
        .list_documents(pb::ListDocumentsRequest {
            collection: "c".into(),
            page_size: -5,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .documents
        .list_documents(pb::ListDocumentsRequest {
            collection: "c".into(),
            page_size: 0,
            page_token: "!!!".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    s.stop().await;
}

/// AIP-155: a retried write with the same request_id returns the first outcome.
#[tokio::test]
async fn request_ids_make_retries_safe() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let create = pb::CreateDocumentRequest {
        collection: "c".into(),
        document: Some(doc("", json!({"title": "generated id"}))),
        async_visibility: false,
        request_id: "create-1".into(),
    };
    let first = s
        .documents
        .create_document(create.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = s
        .documents
        .create_document(create)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.id, first.id, "the retry names the first document");
    assert_eq!(retry.version, 1);

    let update = pb::UpdateDocumentRequest {
        collection: "c".into(),
        document: Some(doc(&first.id, json!({"title": "changed"}))),
        request_id: "update-1".into(),
        ..Default::default()
    };
    for _ in 0..3 {
        let updated = s
            .documents
            .update_document(update.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.version, 2, "applied once");
    }

    // The same id for another write is a client bug.
    let reused = s
        .documents
        .delete_document(pb::DeleteDocumentRequest {
            collection: "c".into(),
            id: first.id.clone(),
            request_id: "update-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(bad_request_field(&reused), "request_id");

    let delete = pb::DeleteDocumentRequest {
        collection: "c".into(),
        id: first.id.clone(),
        request_id: "delete-1".into(),
        ..Default::default()
    };
    s.documents.delete_document(delete.clone()).await.unwrap();
    // Without the id a second delete is NOT_FOUND; with it, the first outcome.
    s.documents.delete_document(delete).await.unwrap();

    let listed = s
        .documents
        .list_documents(pb::ListDocumentsRequest {
            collection: "c".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.documents.is_empty(), "{listed:?}");

    let too_long = s
        .documents
        .delete_document(pb::DeleteDocumentRequest {
            collection: "c".into(),
            id: "x".into(),
            request_id: "r".repeat(257),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Code::InvalidArgument);
    assert_eq!(bad_request_field(&too_long), "request_id");
    s.stop().await;
}
