//! The query language over gRPC: operators, groups, phrases with slop, prefix,
//! fuzzy, boosts, both syntaxes and the ranking options.

use tonic::Code;
use trove::api::pb;
use trove::api::pb::search_request::{Operator, Syntax};

use crate::harness::{Server, bad_request_field, ids, query};
use crate::search::library;

async fn sorted_ids(s: &mut Server, request: pb::SearchRequest) -> Vec<String> {
    let mut got = ids(&s.find(request).await);
    got.sort();
    got
}

#[tokio::test]
async fn operators_groups_and_atoms() {
    let mut s = library().await;
    let cases: &[(&str, &[&str])] = &[
        ("rust AND action", &["a"]),
        ("rust OR python", &["a", "b", "c"]),
        ("programming AND NOT rust", &["c", "d", "e"]),
        ("(rust OR go) AND systems", &["a", "b"]),
        ("(rust OR go) AND tags:systems", &["a", "d"]),
        ("NOT rust", &["c", "d", "e"]),
        ("rust -(borrow OR borrowing)", &[]),
        ("\"systems development\"", &["b"]),
        // The english analyzer drops "the": "borrow checker" at slop 0 still matches.
        ("\"safe development\"", &[]),
        ("\"safe development\"~1", &["b"]),
        ("body:\"programming with ownership\"", &["a"]),
        ("progr*", &["a", "b", "c", "d", "e"]),
        ("title:progr*", &["b", "d"]),
        ("tags:sys*", &["a", "d"]),
        // Prefixes match words as written, not stems: "borrowing" is in a's body.
        ("borrowi*", &["a"]),
        ("goroutnes~", &["d"]),
        ("garutines~2", &["d"]),
        ("garutines~1", &[]),
        ("pythn~1", &["c"]),
    ];
    for (q, want) in cases {
        assert_eq!(sorted_ids(&mut s, query("c", q)).await, *want, "{q}");
    }
    // Boosts change the order.
    let python = s.find(query("c", "rust python^5")).await;
    assert_eq!(ids(&python)[0], "c");
    let rust = s.find(query("c", "rust^5 python")).await;
    assert_ne!(ids(&rust)[0], "c");
    let same_doc = python
        .hits
        .iter()
        .find(|h| h.id == rust.hits[0].id)
        .unwrap();
    assert!(
        rust.hits[0].score > same_doc.score,
        "boosting rust raises its score"
    );
    s.stop().await;
}

#[tokio::test]
async fn options_operator_fields_typos_and_as_you_type() {
    let mut s = library().await;
    let with = |q: &str, f: fn(&mut pb::SearchRequest)| {
        let mut r = query("c", q);
        f(&mut r);
        r
    };
    assert_eq!(
        sorted_ids(&mut s, query("c", "rust development")).await,
        ["a", "b"]
    );
    assert_eq!(
        sorted_ids(
            &mut s,
            with("rust development", |r| r.default_operator =
                Operator::And as i32)
        )
        .await,
        ["b"]
    );
    // search_fields restricts and weights the fields words search.
    assert_eq!(
        sorted_ids(
            &mut s,
            with("programming", |r| r.search_fields = "title".into())
        )
        .await,
        ["b", "d"]
    );
    let body_first = s
        .find(with("rust gardening", |r| {
            r.search_fields = "title body^10".into()
        }))
        .await;
    assert_eq!(ids(&body_first)[0], "e");
    // Typo tolerance: 1 edit from 5 characters, 2 from 9; exact matches first.
    assert_eq!(
        sorted_ids(&mut s, query("c", "pythn")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        sorted_ids(&mut s, with("pyton", |r| r.typo_tolerance = true)).await,
        ["c"]
    );
    assert_eq!(
        sorted_ids(&mut s, with("gorotuines", |r| r.typo_tolerance = true)).await,
        ["d"]
    );
    assert_eq!(
        sorted_ids(&mut s, with("rsut", |r| r.typo_tolerance = true)).await,
        Vec::<String>::new()
    );
    // Search as you type: the last word is also a prefix.
    assert_eq!(
        sorted_ids(&mut s, with("systems gard", |r| r.prefix_last_word = true)).await,
        ["a", "b", "e"]
    );
    assert_eq!(
        sorted_ids(
            &mut s,
            with("gard", |r| {
                r.prefix_last_word = true;
                r.default_operator = Operator::And as i32;
            })
        )
        .await,
        ["e"]
    );
    // Ranking options are part of what a page token is bound to.
    let mut first = query("c", "programming");
    first.page_size = 1;
    let token = s.find(first.clone()).await.next_page_token;
    let mut changed = first.clone();
    changed.page_token = token.clone();
    changed.typo_tolerance = true;
    assert_eq!(s.search_code(changed).await, Code::InvalidArgument);
    let mut resized = first;
    resized.page_token = token;
    resized.page_size = 3;
    assert_eq!(
        s.find(resized).await.hits.len(),
        3,
        "page_size may change between pages"
    );
    s.stop().await;
}

#[tokio::test]
async fn simple_syntax_never_fails_and_full_syntax_names_positions() {
    let mut s = library().await;
    for q in [
        "\"unbalanced rust",
        "rust AND",
        "((rust",
        "+",
        "title:",
        "rust^",
        "x~9",
        "))) OR (((",
    ] {
        let mut r = query("c", q);
        r.syntax = Syntax::Simple as i32;
        s.find(r).await;
    }
    let mut simple = query("c", "\"borrow checker\" rust(");
    simple.syntax = Syntax::Simple as i32;
    assert_eq!(sorted_ids(&mut s, simple).await, ["a", "b"]);

    let cases: &[(&str, &str)] = &[
        ("rust AND", "position 8"),
        ("(rust", "position 5"),
        ("rust)", "position 4"),
        ("a OR OR b", "position 5"),
        ("rust^x", "position 4"),
        ("rust~5", "position 4"),
        ("\"a b\"~x", "position 5"),
        ("nofield:x", "unknown field"),
        ("n:3", "use filter"),
    ];
    for (q, want) in cases {
        let err = s.search.search(query("c", q)).await.unwrap_err();
        assert_eq!(
            (err.code(), bad_request_field(&err).as_str()),
            (Code::InvalidArgument, "query"),
            "{q}"
        );
        assert!(
            err.message().contains(want),
            "{q}: {:?} lacks {want:?}",
            err.message()
        );
    }
    let mut bad_fields = query("c", "x");
    bad_fields.search_fields = "title^zero".into();
    let err = s.search.search(bad_fields).await.unwrap_err();
    assert_eq!(bad_request_field(&err), "search_fields");
    let mut bad_fields = query("c", "x");
    bad_fields.search_fields = "n".into();
    assert_eq!(s.search_code(bad_fields).await, Code::InvalidArgument);
    let mut bad_enum = query("c", "x");
    bad_enum.syntax = 9;
    assert_eq!(s.search_code(bad_enum).await, Code::InvalidArgument);
    s.stop().await;
}

#[tokio::test]
async fn limits_on_clauses_depth_and_expansions() {
    let mut s = Server::start().await;
    s.create_test_collection("big").await;
    let words: Vec<String> = (0..1100).map(|i| format!("w{i:04}")).collect();
    for chunk in words.chunks(100) {
        s.put(
            "big",
            &chunk[0],
            serde_json::json!({"title": chunk.join(" ")}),
        )
        .await;
    }
    let err = s.search.search(query("big", "w*")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("expands to more than 1024 terms"),
        "{}",
        err.message()
    );
    assert_eq!(s.find(query("big", "w00*")).await.total_size, 1);
    // Search as you type never fails: it keeps the most frequent completions.
    let mut typing = query("big", "w");
    typing.prefix_last_word = true;
    assert!(s.find(typing).await.total_size > 0);

    let many = "x ".repeat(1025);
    let err = s.search.search(query("big", &many)).await.unwrap_err();
    assert!(err.message().contains("1024"), "{}", err.message());
    let deep = format!("{}x{}", "(".repeat(40), ")".repeat(40));
    let err = s.search.search(query("big", &deep)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("deeper"), "{}", err.message());
    assert_eq!(
        s.find(query("big", "w0001")).await.total_size,
        1,
        "still serving"
    );
    s.stop().await;
}

#[tokio::test]
async fn synonyms_apply_at_query_time() {
    let mut s = Server::start().await;
    let mut collection = pb::Collection {
        name: "syn".into(),
        fields: crate::harness::test_fields(),
        synonyms: vec![
            "usa, united states, america".into(),
            "car, automobile".into(),
        ],
        ..Default::default()
    };
    let created = s
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(collection.clone()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.synonyms, collection.synonyms);
    s.put(
        "syn",
        "1",
        serde_json::json!({"body": "Trade policy of the United States"}),
    )
    .await;
    s.put(
        "syn",
        "2",
        serde_json::json!({"body": "The USA and its allies"}),
    )
    .await;
    s.put(
        "syn",
        "3",
        serde_json::json!({"body": "An automobile factory in America"}),
    )
    .await;
    s.put(
        "syn",
        "4",
        serde_json::json!({"body": "United we stand; states rights"}),
    )
    .await;
    for (q, want) in [
        ("usa", &["1", "2", "3"][..]),
        ("united states", &["1", "2", "3"]),
        ("car", &["3"]),
        ("\"united states\"", &["1"]),
        ("body:usa", &["2"]),
    ] {
        assert_eq!(sorted_ids(&mut s, query("syn", q)).await, want, "{q}");
    }
    collection.name = "bad".into();
    collection.synonyms = vec!["lonely".into()];
    let err = s
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(collection),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&err), "collection.synonyms[0]");
    s.stop().await;
}
