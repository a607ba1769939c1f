//! Search paging walks one snapshot while writes go on.

use std::collections::HashSet;

use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;
use trove::api::pb;
use trove::config::Config;

use crate::harness::{Server, bad_request_field, ids, query, to_json};

async fn walk(
    s: &mut Server,
    first: pb::SearchRequest,
    mut between_pages: impl AsyncFnMut(&mut Server, usize),
) -> Vec<pb::SearchResponse> {
    let mut pages = Vec::new();
    let mut request = first;
    loop {
        let page = s.find(request.clone()).await;
        let token = page.next_page_token.clone();
        pages.push(page);
        if token.is_empty() {
            return pages;
        }
        between_pages(s, pages.len()).await;
        request.page_token = token;
    }
}

#[tokio::test]
async fn pages_show_the_snapshot_of_the_first_page() {
    let mut s = Server::start().await;
    s.create_test_collection("p").await;
    for i in 0..30 {
        s.put(
            "p",
            &format!("d{i:02}"),
            json!({"title": format!("original {i}"), "n": i}),
        )
        .await;
    }
    let mut first = query("p", "original");
    first.order_by = "n".into();
    first.page_size = 7;
    let pages = walk(&mut s, first, async |s: &mut Server, page: usize| {
        // Between pages: delete a document of a later page, rewrite another, add new ones.
        let later = format!("d{:02}", 29 - page);
        s.documents
            .delete_document(pb::DeleteDocumentRequest {
                collection: "p".into(),
                id: later,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut update = pb::UpdateDocumentRequest {
            collection: "p".into(),
            document: Some(crate::harness::doc(
                &format!("d{:02}", 20 + page),
                json!({"title": "rewritten original", "n": -1}),
            )),
            ..Default::default()
        };
        update.merge = true;
        s.documents.update_document(update).await.unwrap();
        s.put(
            "p",
            &format!("new{page}"),
            json!({"title": "original newcomer", "n": 100 + page}),
        )
        .await;
    })
    .await;
    let seen: Vec<String> = pages.iter().flat_map(ids).collect();
    let want: Vec<String> = (0..30).map(|i| format!("d{i:02}")).collect();
    assert_eq!(
        seen, want,
        "every document of the snapshot once, in order, no newcomers"
    );
    assert!(
        pages.iter().all(|p| p.total_size == 30),
        "total_size is the snapshot's"
    );
    // Deleted and rewritten documents appear as they were in the snapshot.
    let last = pages.last().unwrap();
    let d29 = last.hits.iter().find(|h| h.id == "d29").unwrap();
    assert_eq!(
        to_json(d29.document.as_ref().unwrap().fields.as_ref().unwrap())["title"],
        "original 29"
    );
    assert_eq!(
        s.pinned_snapshot_count(),
        1,
        "one snapshot pinned for the whole walk"
    );
    // A new search sees the changes: 4 deleted, 4 added.
    let now = s.find(query("p", "original")).await;
    assert_eq!(now.total_size, 30 - 4 + 4);
    s.stop().await;
}

#[tokio::test]
async fn expired_and_evicted_snapshots_say_page_token_expired() {
    let mut config = Config::for_tests();
    config.snapshot_ttl = 0;
    let mut s = Server::start_with(config).await;
    s.create_test_collection("p").await;
    for i in 0..5 {
        s.put("p", &format!("d{i}"), json!({"title": "word"})).await;
    }
    let mut first = query("p", "word");
    first.page_size = 2;
    let page = s.find(first.clone()).await;
    let mut second = first.clone();
    second.page_token = page.next_page_token;
    let err = s.search.search(second).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let info = err
        .get_error_details()
        .error_info()
        .cloned()
        .expect("an ErrorInfo detail");
    assert_eq!(info.reason, "PAGE_TOKEN_EXPIRED");
    assert_eq!(bad_request_field(&err), "page_token");
    assert!(
        err.message().contains("pinned 0 seconds"),
        "the configured lifetime: {}",
        err.message()
    );
    s.stop().await;

    // A token of an earlier run of the server: the same reason and details.
    let mut s = Server::start().await;
    s.create_test_collection("p").await;
    for i in 0..5 {
        s.put("p", &format!("d{i}"), json!({"title": "word"})).await;
    }
    let page = s.find(first.clone()).await;
    s.stop().await;
    let mut s = Server::start().await;
    s.create_test_collection("p").await;
    let mut stale = first.clone();
    stale.page_token = page.next_page_token;
    let err = s.search.search(stale).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.get_error_details()
            .error_info()
            .map(|i| i.reason.clone())
            .as_deref(),
        Some("PAGE_TOKEN_EXPIRED")
    );
    assert_eq!(bad_request_field(&err), "page_token");
    assert!(err.message().contains("restarted"), "{}", err.message());
    s.stop().await;

    let mut config = Config::for_tests();
    config.max_snapshots = 2;
    let mut s = Server::start_with(config).await;
    s.create_test_collection("p").await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        // Each write makes a new snapshot; each first page pins it.
        for j in 0..3 {
            s.put("p", &format!("d{i}{j}"), json!({"title": "word"}))
                .await;
        }
        let page = s.find(first.clone()).await;
        tokens.push(page.next_page_token);
    }
    let page_of = |token: &String| {
        let mut r = first.clone();
        r.page_token = token.clone();
        r
    };
    let err = s.search.search(page_of(&tokens[0])).await.unwrap_err();
    assert_eq!(
        err.get_error_details()
            .error_info()
            .map(|i| i.reason.clone())
            .as_deref(),
        Some("PAGE_TOKEN_EXPIRED")
    );
    assert_eq!(s.find(page_of(&tokens[1])).await.total_size, 6);
    assert_eq!(s.find(page_of(&tokens[2])).await.total_size, 9);
    let unique: HashSet<&String> = tokens.iter().collect();
    assert_eq!(unique.len(), 3);
    s.stop().await;
}

/// A page token names the incarnation of its collection: after the collection
/// is deleted and created again under the same name (with another schema), an
/// old token is PAGE_TOKEN_EXPIRED and never reads the deleted documents.
#[tokio::test]
async fn a_page_token_does_not_outlive_its_collection() {
    let mut s = Server::start().await;
    s.create_test_collection("p").await;
    for i in 0..5 {
        s.put("p", &format!("old{i}"), json!({"title": "rust", "n": i}))
            .await;
    }
    let mut first = query("p", "rust");
    first.order_by = "n".into();
    first.page_size = 2;
    let page = s.find(first.clone()).await;
    assert!(!page.next_page_token.is_empty());

    s.collections
        .delete_collection(pb::DeleteCollectionRequest {
            name: "p".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    // Same name, other field types: `title` is now a KEYWORD, `n` a FLOAT.
    s.collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "p".into(),
                fields: vec![
                    pb::Field {
                        name: "title".into(),
                        r#type: pb::FieldType::Keyword as i32,
                        ..Default::default()
                    },
                    pb::Field {
                        name: "n".into(),
                        r#type: pb::FieldType::Float as i32,
                        sortable: true,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    s.put("p", "new0", json!({"title": "rust", "n": 0.5})).await;

    let mut second = first.clone();
    second.page_token = page.next_page_token;
    let err = s.search.search(second).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        err.get_error_details()
            .error_info()
            .map(|i| i.reason.clone())
            .as_deref(),
        Some("PAGE_TOKEN_EXPIRED"),
        "{err:?}"
    );
    assert!(err.message().contains("created again"), "{err:?}");
    // The new collection answers a first page as usual.
    assert_eq!(s.find(query("p", "")).await.total_size, 1);
    s.stop().await;
}
