//! Small requests that used to cost unbounded memory or time: fuzzy terms on
//! KEYWORD fields, large synonym sets, highlighting a field with hundreds of
//! thousands of matches. Each is answered at once, and the server keeps
//! serving.

use serde_json::json;
use tonic::Code;
use trove::api::pb;

use crate::harness::{Server, query};

/// A long fuzzy term is INVALID_ARGUMENT on every field type, before any
/// automaton is built: on a KEYWORD field the term is not cut into tokens, and
/// 1,000 CJK characters took more than 6 GB.
#[tokio::test]
async fn a_long_fuzzy_term_is_refused_on_every_field_type() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    s.put("c", "a", json!({"title": "kabul", "tags": ["kabul"]}))
        .await;
    let cjk: String = (0..1000u32)
        .map(|i| char::from_u32(0x4E00 + i).unwrap())
        .collect();
    let long_word = "abcdefghijklmnopqrstuvwxyz".repeat(4);
    // On TEXT fields the CJK text is several words, itself an error.
    for (q, why) in [
        (format!("tags:{cjk}~2"), "at most 32"),
        (format!("title:{long_word}~2"), "at most 32"),
        (format!("title:{cjk}~2"), "take one word"),
        (format!("{cjk}~1"), "take one word"),
    ] {
        let err = s.search.search(query("c", &q)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let message: String = err.message().chars().rev().take(200).collect();
        let message: String = message.chars().rev().collect();
        assert!(err.message().contains(why), "{why}: …{message}");
        assert!(err.message().len() <= 1024, "{}", err.message().len());
    }
    // Typo tolerance skips such words instead of failing.
    let mut tolerant = query("c", &format!("kabul {cjk}"));
    tolerant.typo_tolerance = true;
    assert_eq!(s.find(tolerant).await.total_size, 1);
    // Fuzzy terms of a usual length still work.
    assert_eq!(s.find(query("c", "tags:kabol~1")).await.total_size, 1);
    s.stop().await;
}

/// A synonym set past the member limit is INVALID_ARGUMENT; the largest
/// allowed set builds at once, and a query repeating one of its members adds
/// a bounded number of alternatives.
#[tokio::test]
async fn synonym_sets_are_bounded() {
    let mut s = Server::start().await;
    let set = |n: usize| {
        (0..n)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let create = |name: &str, synonyms: Vec<String>| pb::CreateCollectionRequest {
        collection: Some(pb::Collection {
            name: name.into(),
            fields: crate::harness::test_fields(),
            synonyms,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let err = s
        .collections
        .create_collection(create("too-big", vec![set(4000)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("the limit is 256"), "{err:?}");

    s.collections
        .create_collection(create("syn", vec![set(256); 100]))
        .await
        .unwrap();
    s.put("syn", "a", json!({"title": "w200"})).await;
    let found = s.find(query("syn", &"w7 ".repeat(1000))).await;
    assert_eq!(found.total_size, 1);
    s.stop().await;
}

/// A field with about 160,000 matches is highlighted up to the analysed
/// length, with every match before it reported; a search with a deadline
/// that passes mid-way stops, and other searches go on.
#[tokio::test]
async fn highlighting_a_field_full_of_matches_is_bounded() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let analysed = trove::engine::MAX_HIGHLIGHT_CHARS;
    let text = "kabul ".repeat(analysed / 6 + 50_000);
    s.put("c", "huge", json!({"body": text})).await;
    s.put("c", "small", json!({"title": "other words"})).await;

    let mut request = query("c", "kabul");
    request.highlight = Some(pb::HighlightOptions {
        fields: vec!["body".into()],
        max_fragments: 3,
        ..Default::default()
    });
    let found = s.find(request.clone()).await;
    let highlights = &found.hits[0].highlights[0];
    assert_eq!(highlights.matches.len(), analysed / 6);
    assert!(
        highlights
            .matches
            .iter()
            .all(|m| m.end as usize <= analysed)
    );
    assert_eq!(highlights.snippets.len(), 3);

    // Two highlighted searches whose deadline passes, then an ordinary one.
    let mut late = tonic::Request::new(request.clone());
    late.set_timeout(std::time::Duration::from_millis(1));
    let mut other = s.search.clone();
    let late = other.search(late);
    let mut late_too = tonic::Request::new(request);
    late_too.set_timeout(std::time::Duration::from_millis(1));
    let mut another = s.search.clone();
    let (a, b) = tokio::join!(late, another.search(late_too));
    for result in [a, b] {
        if let Err(err) = result {
            // The client's own timer may answer first (CANCELLED).
            assert!(
                matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
                "{err:?}"
            );
        }
    }
    assert_eq!(s.find(query("c", "other")).await.total_size, 1);
    s.stop().await;
}

/// Documents of 12 MiB of one letter are stored in a few kilobytes each; a
/// page of eight would be 96 MiB of JSON. Reads that would carry more than
/// 64 MiB of documents are RESOURCE_EXHAUSTED before anything is
/// decompressed, naming the field that asks for fewer; smaller pages work.
#[tokio::test]
async fn a_response_of_highly_compressible_documents_is_bounded() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let letters = "a".repeat(12 << 20);
    let mut documents = s
        .documents
        .clone()
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    for i in 0..8 {
        documents
            .create_document(pb::CreateDocumentRequest {
                collection: "c".into(),
                document: Some(crate::harness::doc(
                    &format!("d{i}"),
                    json!({"title": "bomb", "blob": letters}),
                )),
                async_visibility: false,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let mut search = s.search.clone().max_decoding_message_size(usize::MAX);

    let list = |page_size| pb::ListDocumentsRequest {
        collection: "c".into(),
        page_size,
        ..Default::default()
    };
    let err = documents.list_documents(list(8)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("page_size"), "{err:?}");
    let page = documents
        .list_documents(list(3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.documents.len(), 3);

    let ids: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
    let err = documents
        .batch_get_documents(pb::BatchGetDocumentsRequest {
            collection: "c".into(),
            ids,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("`ids`"), "{err:?}");

    let mut all = query("c", "bomb");
    all.page_size = 8;
    let err = search.search(all.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("page_size"), "{err:?}");
    // A read mask without fields decompresses nothing, so the page fits.
    let mut ids_only = all.clone();
    ids_only.read_mask = Some(prost_types::FieldMask {
        paths: vec!["id".into(), "version".into()],
    });
    let page = search.search(ids_only).await.unwrap().into_inner();
    assert_eq!(page.hits.len(), 8);
    let first = page.hits[0].document.as_ref().unwrap();
    assert!(first.id.starts_with('d') && first.version == 1 && first.fields.is_none());
    all.page_size = 2;
    assert_eq!(search.search(all).await.unwrap().into_inner().hits.len(), 2);
    let one = documents
        .get_document(pb::GetDocumentRequest {
            collection: "c".into(),
            id: "d0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.id, "d0");
    s.stop().await;
}
