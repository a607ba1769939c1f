//! SearchService.

use std::collections::HashSet;

use serde_json::json;
use tonic::Code;
use trove::api::pb;

use crate::harness::{Server, bad_request_field, ids, query, to_json};

/// A collection `c` with a few documents of every field type.
pub async fn library() -> Server {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let docs = [
        (
            "a",
            json!({"title": "Rust in Action", "body": "Systems programming with ownership and borrowing", "tags": ["rust", "systems"], "n": 3, "price": 39.5, "live": true, "date": "2021-08-07"}),
        ),
        (
            "b",
            json!({"title": "Programming Rust", "body": "Fast, safe systems development; the borrow checker explained", "tags": ["rust"], "n": 1, "price": 45.0, "live": false, "date": "2021-07-01T10:00:00Z"}),
        ),
        (
            "c",
            json!({"title": "Python Crash Course", "body": "A hands-on introduction to programming", "tags": "python", "n": 2, "price": 25.0, "live": true, "date": "2020-01-15"}),
        ),
        (
            "d",
            json!({"title": "The Go Programming Language", "body": "Concurrency with goroutines and channels", "tags": ["go", "systems"], "n": 5, "live": true, "date": "2021-08-20"}),
        ),
        (
            "e",
            json!({"title": "Untitled", "body": "Nothing about programming languages here, only gardening"}),
        ),
    ];
    for (id, fields) in docs {
        s.put("c", id, fields).await;
    }
    s
}

#[tokio::test]
async fn relevance_phrases_modifiers_and_fields() {
    let mut s = library().await;
    let found = s.find(query("c", "rust")).await;
    assert_eq!(found.total_size, 2);
    let mut got = ids(&found);
    got.sort();
    assert_eq!(got, ["a", "b"]);
    let all = s.find(query("c", "programming rust systems")).await;
    assert!(
        all.hits.windows(2).all(|w| w[0].score >= w[1].score),
        "scores never increase"
    );
    assert!(all.hits.iter().all(|h| h.score > 0.0));

    let check = |q: &'static str, want: &'static [&'static str]| (q, want);
    for (q, want) in [
        check("\"borrow checker\"", &["b"]),
        check("\"checker borrow\"", &[]),
        check("+rust +action", &["a"]),
        check("programming -rust", &["c", "d", "e"]),
        check("-rust", &["c", "d", "e"]),
        check("title:rust", &["a", "b"]),
        check("body:rust", &[]),
        check("tags:systems", &["a", "d"]),
        check("tags:\"python\"", &["c"]),
        // The english analyzer stems: "languages" finds "language" and "languages".
        check("body:languages", &["e"]),
        check("nothingmatches", &[]),
    ] {
        let mut got = ids(&s.find(query("c", q)).await);
        got.sort();
        assert_eq!(got, want, "{q}");
    }
    // Title is boosted ×2: a title match outranks a body match.
    let ranked = s.find(query("c", "gardening python")).await;
    assert_eq!(ids(&ranked)[0], "c");
    // Empty query: everything, score 0.
    let everything = s.find(query("c", "")).await;
    assert_eq!(everything.total_size, 5);
    assert_eq!(
        ids(&everything),
        ["a", "b", "c", "d", "e"],
        "equal scores in id order"
    );
    s.stop().await;
}

/// A word's rarity is shared by the text fields: "wing", in every body, is a
/// common word even where it sits in a title. Scored with each field's own
/// frequencies, the title match (rare among titles, boosted ×2) would outrank
/// the body match of the word that is rare everywhere.
#[tokio::test]
async fn document_frequency_is_shared_by_text_fields() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    s.put(
        "c",
        "common-in-title",
        json!({"title": "wing", "body": "notes on the design"}),
    )
    .await;
    s.put(
        "c",
        "rare-in-body",
        json!({"title": "report", "body": "flutter of a panel"}),
    )
    .await;
    for i in 0..4 {
        s.put(
            "c",
            &format!("w{i}"),
            json!({"title": "report", "body": format!("wing number {i}")}),
        )
        .await;
    }
    let found = s.find(query("c", "flutter wing")).await;
    assert_eq!(ids(&found)[0], "rare-in-body", "{found:?}");

    let mut request = query("c", "title:wing");
    request.explain = true;
    let found = s.find(request).await;
    let explanation = found.hits[0].explanation.as_ref().unwrap();
    let n = find_detail(explanation, "n, number of docs containing this term")
        .expect("BM25 explains the document frequency");
    assert_eq!(n, 4.0, "the frequency of \"wing\" in bodies, not in titles");
    s.stop().await;
}

fn find_detail(e: &pb::Explanation, description: &str) -> Option<f32> {
    if e.description.starts_with(description) {
        return Some(e.value);
    }
    e.details.iter().find_map(|d| find_detail(d, description))
}

/// `field:*` on a TEXT field: a value the analyzer keeps a word of.
#[tokio::test]
async fn presence_on_a_text_field() {
    use crate::harness::field;
    use trove::api::pb::FieldType;
    let mut s = Server::start().await;
    s.collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "notes".into(),
                fields: vec![
                    field("note", FieldType::Text, |f| {
                        f.filterable = true;
                        f.analyzer = "english".into();
                    }),
                    field("title", FieldType::Text, |_| {}),
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    s.put("notes", "worded", json!({"note": "Some words"}))
        .await;
    s.put("notes", "stop", json!({"note": "the"})).await;
    s.put("notes", "empty", json!({"note": ""})).await;
    s.put("notes", "none", json!({"title": "no note"})).await;
    for (filter, want) in [
        ("note:*", vec!["worded"]),
        ("NOT note:*", vec!["empty", "none", "stop"]),
    ] {
        let mut request = query("notes", "");
        request.filter = filter.into();
        let mut got = ids(&s.find(request).await);
        got.sort();
        assert_eq!(got, want, "{filter}");
    }
    // Presence needs a filterable field, as every filter does; a key that
    // documents carry without a declaration is named as such.
    s.put(
        "notes",
        "colored",
        json!({"title": "red one", "color": "red"}),
    )
    .await;
    for (filter, message) in [
        ("title:*", "not filterable"),
        ("nothing:*", "unknown field"),
        ("color = \"red\"", "is in the documents but not declared"),
        ("note:* AND color:*", "declare it with filterable: true"),
    ] {
        let mut request = query("notes", "");
        request.filter = filter.into();
        let status = s.search.search(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{filter}");
        assert!(status.message().contains(message), "{filter}: {status:?}");
    }
    s.stop().await;
}

/// `post_filter` narrows the hits and the facets of other fields, not a facet
/// on a field it names (a shop page's checked boxes).
#[tokio::test]
async fn post_filter_leaves_the_facet_of_its_own_field_whole() {
    let mut s = library().await;
    let facet = |field: &str| pb::FacetRequest {
        field: field.into(),
        ..Default::default()
    };
    let mut request = query("c", "");
    request.filter = "n >= 1".into();
    request.post_filter = "tags:(\"rust\" OR \"go\") AND live = true".into();
    request.facets = vec![facet("tags"), facet("live"), facet("n")];
    let found = s.find(request.clone()).await;
    let mut got = ids(&found);
    got.sort();
    assert_eq!(got, ["a", "d"], "hits: filter and post filter");
    assert_eq!(found.total_size, 2);
    let buckets = |i: usize| {
        let mut b: Vec<(String, i64)> = found.facets[i]
            .buckets
            .iter()
            .map(|b| (b.value.clone(), b.count))
            .collect();
        b.sort();
        b
    };
    let owned = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(v, c)| (v.to_string(), *c)).collect()
    };
    // tags: the filter and the post filter's `live` part (a, c, d), not its tags part.
    assert_eq!(
        buckets(0),
        owned(&[("go", 1), ("python", 1), ("rust", 1), ("systems", 2)])
    );
    // live: the filter and the post filter's tags part (a, b, d).
    assert_eq!(buckets(1), owned(&[("false", 1), ("true", 2)]));
    // n: both parts (a, d).
    assert_eq!(buckets(2), owned(&[("3", 1), ("5", 1)]));
    // The same counts without hits; a bad post filter names its field.
    request.skip_hits = true;
    let counts = s.find(request.clone()).await;
    assert_eq!(counts.facets, found.facets);
    assert_eq!(counts.total_size, 2);
    request.post_filter = "n >".into();
    let err = s.search.search(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_request_field(&err), "post_filter");
    s.stop().await;
}

/// BatchSearch: several searches on one snapshot, answered in order; an error
/// names its search.
#[tokio::test]
async fn batch_search_answers_each_search_in_order() {
    let mut s = library().await;
    let mut rust = query("", "rust");
    rust.read_mask = Some(prost_types::FieldMask {
        paths: vec!["id".into()],
    });
    let mut counts = query("c", "");
    counts.skip_hits = true;
    counts.facets = vec![pb::FacetRequest {
        field: "live".into(),
        ..Default::default()
    }];
    let mut paged = query("", "programming");
    paged.page_size = 1;
    let batch = |searches: Vec<pb::SearchRequest>| pb::BatchSearchRequest {
        collection: "c".into(),
        searches,
    };
    let found = s
        .search
        .batch_search(batch(vec![rust.clone(), counts.clone(), paged.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.responses.len(), 3);
    let mut got = ids(&found.responses[0]);
    got.sort();
    assert_eq!(got, ["a", "b"]);
    assert!(
        found.responses[0].hits[0]
            .document
            .as_ref()
            .unwrap()
            .fields
            .is_none()
    );
    assert!(found.responses[1].hits.is_empty());
    assert_eq!(found.responses[1].total_size, 5);
    assert_eq!(found.responses[1].facets[0].buckets.len(), 2);
    // A response's next page continues with Search, on the batch's snapshot.
    let first = &found.responses[2];
    assert_eq!(first.hits.len(), 1);
    let mut next = paged.clone();
    next.collection = "c".into();
    next.page_token = first.next_page_token.clone();
    let second = s.find(next).await;
    assert_eq!(second.total_size, first.total_size);
    assert_ne!(ids(&second), ids(first));

    // Errors name the search they belong to.
    let mut bad = query("", "");
    bad.filter = "n >".into();
    let cases = [
        (batch(vec![rust.clone(), bad]), "searches[1].filter"),
        (
            batch(vec![pb::SearchRequest {
                page_token: "x".into(),
                ..query("", "")
            }]),
            "searches[0].page_token",
        ),
        (batch(vec![query("other", "")]), "searches[0].collection"),
        (
            batch(vec![pb::SearchRequest {
                page_size: -1,
                ..query("", "")
            }]),
            "searches[0].page_size",
        ),
        (batch(vec![query("", ""); 17]), "searches"),
    ];
    for (request, field) in cases {
        let err = s.search.batch_search(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(bad_request_field(&err), field, "{err:?}");
    }
    let missing = pb::BatchSearchRequest {
        collection: "nothing".into(),
        searches: vec![query("", "")],
    };
    let err = s.search.batch_search(missing).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn filters_on_every_type() {
    let mut s = library().await;
    let cases: &[(&str, &[&str])] = &[
        ("tags = \"rust\"", &["a", "b"]),
        ("tags = systems", &["a", "d"]),
        ("tags != rust", &["c", "d", "e"]),
        ("n >= 2", &["a", "c", "d"]),
        ("n > 2 AND n < 5", &["a"]),
        ("n = 1 OR n = 5", &["b", "d"]),
        ("price <= 39.5", &["a", "c"]),
        ("live = true", &["a", "c", "d"]),
        ("NOT live = true", &["b", "e"]),
        ("date >= \"2021-08-01\"", &["a", "d"]),
        ("date < \"2021-07-01T10:00:00Z\"", &["c"]),
        ("date >= \"2021-08-01\" AND tags = \"rust\"", &["a"]),
        ("(tags = go OR tags = python) live = true", &["c", "d"]),
        ("tags:(go OR python) live = true", &["c", "d"]),
        ("id = \"b\"", &["b"]),
        ("id:(\"a\" OR \"e\")", &["a", "e"]),
        ("id != a AND n >= 1", &["b", "c", "d"]),
        ("tags = (\"go\" OR \"rust\" AND \"systems\")", &["a", "d"]),
        // Presence: `e` holds only title and body, `d` no price.
        ("price:*", &["a", "b", "c"]),
        ("NOT price:*", &["d", "e"]),
        (
            "tags:* AND n:* AND live:* AND date:*",
            &["a", "b", "c", "d"],
        ),
        ("-live:*", &["e"]),
        ("id:*", &["a", "b", "c", "d", "e"]),
        ("tags:\"*\"", &[]),
    ];
    for (filter, want) in cases {
        let mut request = query("c", "");
        request.filter = filter.to_string();
        let found = s.find(request).await;
        let mut got = ids(&found);
        got.sort();
        assert_eq!(got, *want, "{filter}");
        assert_eq!(found.total_size as usize, want.len(), "{filter}");
    }
    // A filter does not change scores.
    let plain = s.find(query("c", "rust")).await;
    let mut filtered = query("c", "rust");
    filtered.filter = "n >= 0".into();
    let filtered = s.find(filtered).await;
    let scores = |r: &pb::SearchResponse| {
        r.hits
            .iter()
            .map(|h| (h.id.clone(), h.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&plain), scores(&filtered));
    s.stop().await;
}

#[tokio::test]
async fn order_by_keys_missing_last_and_ties_by_id() {
    let mut s = library().await;
    let order = |o: &str| {
        let mut r = query("c", "");
        r.order_by = o.into();
        r
    };
    assert_eq!(ids(&s.find(order("n")).await), ["b", "c", "a", "d", "e"]);
    assert_eq!(
        ids(&s.find(order("n desc")).await),
        ["d", "a", "c", "b", "e"]
    );
    // The direction in any case.
    assert_eq!(
        ids(&s.find(order("n DESC")).await),
        ["d", "a", "c", "b", "e"]
    );
    assert_eq!(
        ids(&s.find(order("n Asc")).await),
        ["b", "c", "a", "d", "e"]
    );
    assert_eq!(
        ids(&s.find(order("date desc")).await),
        ["d", "a", "b", "c", "e"]
    );
    // live: false < true; ties broken by the next key, then by id.
    assert_eq!(
        ids(&s.find(order("live desc, price")).await),
        ["c", "a", "d", "b", "e"]
    );
    assert_eq!(ids(&s.find(order("live")).await), ["b", "a", "c", "d", "e"]);
    assert_eq!(ids(&s.find(order("tags")).await)[..2], ["d", "c"]);
    let mut relevance_then_n = query("c", "programming");
    relevance_then_n.order_by = "_score desc, n".into();
    let found = s.find(relevance_then_n).await;
    assert!(found.hits.windows(2).all(|w| w[0].score >= w[1].score));
    s.stop().await;
}

#[tokio::test]
async fn page_tokens_walk_every_hit_once() {
    let mut s = Server::start().await;
    s.create_test_collection("p").await;
    for i in 0..57 {
        s.put(
            "p",
            &format!("{i:03}"),
            json!({"title": format!("page word{}", i % 7), "n": i % 5}),
        )
        .await;
    }
    for order in ["", "n desc"] {
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let mut request = query("p", "page word3");
            request.order_by = order.into();
            request.page_size = 10;
            request.page_token = token;
            let page = s.find(request).await;
            assert_eq!(page.total_size, 57);
            seen.extend(ids(&page));
            token = page.next_page_token;
            pages += 1;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(pages, 6);
        assert_eq!(seen.len(), 57, "{order:?}");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            57,
            "no repeats for {order:?}"
        );
    }
    // page_size: coerced down above 1000, negative refused.
    let mut big = query("p", "");
    big.page_size = 5000;
    assert_eq!(s.find(big).await.hits.len(), 57);
    let mut negative = query("p", "");
    negative.page_size = -1;
    assert_eq!(s.search_code(negative).await, Code::InvalidArgument);

    // A token is bound to its request and cannot be forged.
    let mut first = query("p", "page");
    first.page_size = 5;
    let token = s.find(first).await.next_page_token;
    let mut other_query = query("p", "word1");
    other_query.page_token = token.clone();
    assert_eq!(s.search_code(other_query).await, Code::InvalidArgument);
    let mut altered = query("p", "page");
    let mut chars: Vec<char> = token.chars().collect();
    chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
    altered.page_token = chars.into_iter().collect();
    let err = s.search.search(altered).await.unwrap_err();
    assert_eq!(
        (err.code(), bad_request_field(&err).as_str()),
        (Code::InvalidArgument, "page_token")
    );
    s.stop().await;
}

#[tokio::test]
async fn highlights_facets_and_read_mask() {
    let mut s = library().await;
    let mut request = query("c", "borrow programming");
    request.highlight = Some(pb::HighlightOptions::default());
    let found = s.find(request).await;
    let b = found.hits.iter().find(|h| h.id == "b").unwrap();
    let body = b.highlights.iter().find(|h| h.field == "body").unwrap();
    assert!(body.snippets[0].contains("<em>borrow</em>"), "{body:?}");
    let title = b.highlights.iter().find(|h| h.field == "title").unwrap();
    assert!(
        title.snippets[0].contains("<em>Programming</em>"),
        "{title:?}"
    );

    let mut tags = query("c", "\"borrow checker\"");
    tags.highlight = Some(pb::HighlightOptions {
        fields: vec!["body".into()],
        pre_tag: "[".into(),
        post_tag: "]".into(),
        fragment_size: 40,
        ..Default::default()
    });
    let found = s.find(tags).await;
    let snippet = &found.hits[0].highlights[0].snippets[0];
    assert!(snippet.contains("[borrow] [checker]"), "{snippet}");
    assert!(snippet.chars().count() <= 40 + 4, "{snippet}");

    let mut facets = query("c", "");
    facets.filter = "n >= 1".into();
    facets.facets = vec![
        pb::FacetRequest {
            field: "tags".into(),
            size: 2,
            interval: String::new(),
            ..Default::default()
        },
        pb::FacetRequest {
            field: "date".into(),
            size: 0,
            interval: "month".into(),
            ..Default::default()
        },
        pb::FacetRequest {
            field: "live".into(),
            size: 0,
            interval: String::new(),
            ..Default::default()
        },
    ];
    // Without hits: the same total and facets, nothing ranked, no next page.
    let mut counts_only = facets.clone();
    counts_only.skip_hits = true;
    counts_only.page_size = 1;
    counts_only.order_by = "n desc".into();
    let counts = s.find(counts_only.clone()).await;
    assert!(counts.hits.is_empty());
    assert!(counts.next_page_token.is_empty());
    let found = s.find(facets).await;
    assert_eq!(counts.total_size, found.total_size);
    assert_eq!(counts.facets, found.facets);
    // The order is still checked.
    counts_only.order_by = "nothing".into();
    let err = s.search.search(counts_only).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let buckets = |i: usize| {
        found.facets[i]
            .buckets
            .iter()
            .map(|b| (b.value.as_str(), b.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(buckets(0), [("rust", 2), ("systems", 2)]);
    assert_eq!(
        buckets(1),
        [
            ("2020-01-01T00:00:00Z", 1),
            ("2021-07-01T00:00:00Z", 1),
            ("2021-08-01T00:00:00Z", 2)
        ]
    );
    assert_eq!(buckets(2), [("true", 3), ("false", 1)]);

    let mut masked = query("c", "action");
    masked.read_mask = Some(prost_types::FieldMask {
        paths: vec!["id".into(), "fields.title".into(), "version".into()],
    });
    let hit = &s.find(masked).await.hits[0];
    let document = hit.document.as_ref().unwrap();
    assert_eq!(document.id, "a");
    assert_eq!(document.version, 1);
    assert!(document.create_time.is_none());
    assert_eq!(
        to_json(document.fields.as_ref().unwrap()),
        json!({"title": "Rust in Action"})
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_queries_filters_orders_and_facets() {
    let mut s = library().await;
    let run = |f: fn(&mut pb::SearchRequest)| {
        let mut r = query("c", "");
        f(&mut r);
        r
    };
    let cases: Vec<(pb::SearchRequest, &str, Option<&str>)> = vec![
        (
            run(|r| r.query = "\"unclosed".into()),
            "query",
            Some("position 0"),
        ),
        (
            run(|r| r.query = "ok +".into()),
            "query",
            Some("position 3"),
        ),
        (
            run(|r| r.query = "nofield:x".into()),
            "query",
            Some("unknown field"),
        ),
        (run(|r| r.query = "n:3".into()), "query", None),
        (
            run(|r| r.filter = "n >".into()),
            "filter",
            Some("position 3"),
        ),
        (
            run(|r| r.filter = "(n = 1".into()),
            "filter",
            Some("position 6"),
        ),
        (
            run(|r| r.filter = "title = x".into()),
            "filter",
            Some("not filterable"),
        ),
        (
            run(|r| r.filter = "nope = x".into()),
            "filter",
            Some("unknown field"),
        ),
        (
            run(|r| r.filter = "id > a".into()),
            "filter",
            Some("only = != and : apply to id"),
        ),
        (run(|r| r.filter = "n = abc".into()), "filter", None),
        (
            run(|r| r.filter = "date > yesterday".into()),
            "filter",
            None,
        ),
        (run(|r| r.filter = "live < true".into()), "filter", None),
        (
            run(|r| r.order_by = "title".into()),
            "order_by",
            Some("not sortable"),
        ),
        (run(|r| r.order_by = "n sideways".into()), "order_by", None),
        (run(|r| r.order_by = "n, n desc".into()), "order_by", None),
        (run(|r| r.page_token = "garbage".into()), "page_token", None),
        (
            run(|r| {
                r.facets = vec![pb::FacetRequest {
                    field: "title".into(),
                    ..Default::default()
                }]
            }),
            "facets[0].field",
            None,
        ),
        (
            run(|r| {
                r.facets = vec![pb::FacetRequest {
                    field: "date".into(),
                    interval: "fortnight".into(),
                    ..Default::default()
                }]
            }),
            "facets[0].interval",
            None,
        ),
        (
            run(|r| {
                r.facets = vec![pb::FacetRequest {
                    field: "tags".into(),
                    size: -1,
                    ..Default::default()
                }]
            }),
            "facets[0].size",
            None,
        ),
        (
            run(|r| {
                r.highlight = Some(pb::HighlightOptions {
                    fields: vec!["n".into()],
                    ..Default::default()
                })
            }),
            "highlight.fields[0]",
            None,
        ),
        (
            run(|r| {
                r.read_mask = Some(prost_types::FieldMask {
                    paths: vec!["nope".into()],
                })
            }),
            "read_mask.paths[0]",
            None,
        ),
        (run(|r| r.collection = "Bad".into()), "collection", None),
    ];
    for (request, field, message) in cases {
        let err = s.search.search(request.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}: {err:?}");
        assert_eq!(bad_request_field(&err), field, "{request:?}");
        if let Some(message) = message {
            assert!(
                err.message().contains(message),
                "{:?} lacks {message:?}",
                err.message()
            );
        }
    }
    assert_eq!(s.search_code(query("missing", "x")).await, Code::NotFound);
    // The server still answers afterwards.
    assert_eq!(s.find(query("c", "rust")).await.total_size, 2);
    s.stop().await;
}

#[tokio::test]
async fn seeds_are_searchable() {
    let mut s = Server::start_seeded().await;
    let mut request = query("news", "taliban");
    request.filter = "date >= \"2021-08-01\"".into();
    let found = s.find(request).await;
    assert_eq!(ids(&found), ["000_d1f7c310efad4f4c"]);
    let document = found.hits[0].document.as_ref().unwrap();
    let fields = to_json(document.fields.as_ref().unwrap());
    assert_eq!(fields["date"], "2021-08-07T00:00:00Z");
    assert!(
        fields["title"]
            .as_str()
            .unwrap()
            .starts_with("The US on Saturday asked its citizens")
    );
    s.stop().await;
}

/// A seeds directory that cannot be read creates nothing: `news` is missing,
/// not empty.
#[tokio::test]
async fn a_missing_seeds_directory_creates_no_collection() {
    let mut config = trove::config::Config::for_tests();
    config.no_seeds = false;
    config.seeds = "no/such/seeds/directory".into();
    let mut s = Server::start_with(config).await;
    let err = s
        .collections
        .get_collection(pb::GetCollectionRequest {
            name: "news".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await;
}

/// A shop's brands, declared with the `lowercase` normalizer, and a SKU field
/// without one.
async fn shop() -> Server {
    use crate::harness::field;
    use pb::FieldType;
    let mut s = Server::start().await;
    let lowercase = |f: &mut pb::Field| {
        f.normalizer = "lowercase".into();
        f.filterable = true;
        f.sortable = true;
        f.facetable = true;
    };
    s.collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "shop".into(),
                fields: vec![
                    field("name", FieldType::Text, |_| {}),
                    field("brand", FieldType::Keyword, lowercase),
                    field("labels", FieldType::Keyword, lowercase),
                    field("sku", FieldType::Keyword, |f| f.filterable = true),
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let products = [
        (
            "p1",
            json!({"name": "Headphones", "brand": "Sony", "labels": ["Sale", "New"], "sku": "AB-1"}),
        ),
        (
            "p2",
            json!({"name": "Speaker", "brand": "SONY", "labels": "sale"}),
        ),
        ("p3", json!({"name": "Camera", "brand": "Sony"})),
        (
            "p4",
            json!({"name": "Earbuds", "brand": "Bose", "labels": ["NEW"]}),
        ),
        ("p5", json!({"name": "Soundbar", "brand": "Bosé"})),
        (
            "p6",
            json!({"name": "Turntable", "brand": "bang & olufsen"}),
        ),
        (
            "p7",
            json!({"name": "Phone", "brand": "Apple", "sku": "ab-1"}),
        ),
    ];
    for (id, fields) in products {
        s.put("shop", id, fields).await;
    }
    s
}

/// A KEYWORD field with the `lowercase` normalizer matches, sorts, counts and
/// completes values whatever their case and accents, and shows them as written.
#[tokio::test]
async fn keyword_normalizer_ignores_case_and_accents() {
    let mut s = shop().await;
    let sorted_ids = |found: &pb::SearchResponse| {
        let mut got = ids(found);
        got.sort();
        got
    };
    let filtered = |filter: &str| {
        let mut request = query("shop", "");
        request.filter = filter.into();
        request
    };
    for (filter, want) in [
        ("brand = \"sony\"", vec!["p1", "p2", "p3"]),
        ("brand = \"SONY\"", vec!["p1", "p2", "p3"]),
        (
            "brand:(\"sony\" OR \"BOSE\")",
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        ("brand = \"Bosé\"", vec!["p4", "p5"]),
        ("brand != \"sony\"", vec!["p4", "p5", "p6", "p7"]),
        ("labels = \"NEW\"", vec!["p1", "p4"]),
        // No normalizer: values as written.
        ("sku = \"ab-1\"", vec!["p7"]),
        ("sku = \"AB-1\"", vec!["p1"]),
    ] {
        let found = s.find(filtered(filter)).await;
        assert_eq!(sorted_ids(&found), want, "{filter}");
    }
    // Query terms on the field are normalized the same way.
    for (q, want) in [
        ("brand:SONY", vec!["p1", "p2", "p3"]),
        ("brand:\"Bang & Olufsen\"", vec!["p6"]),
        ("brand:so*", vec!["p1", "p2", "p3"]),
        ("brand:BOSS~1", vec!["p4", "p5"]),
    ] {
        let found = s.find(query("shop", q)).await;
        assert_eq!(sorted_ids(&found), want, "{q}");
    }
    // Sorting ignores case and accents (ties by id).
    let mut request = query("shop", "");
    request.order_by = "brand".into();
    let found = s.find(request).await;
    assert_eq!(ids(&found), ["p7", "p6", "p4", "p5", "p1", "p2", "p3"]);
    // Facets count values together and show the most common spelling (ties:
    // the smallest); documents keep theirs.
    let mut request = query("shop", "");
    request.facets = vec![
        pb::FacetRequest {
            field: "brand".into(),
            ..Default::default()
        },
        pb::FacetRequest {
            field: "labels".into(),
            ..Default::default()
        },
    ];
    let found = s.find(request).await;
    let buckets = |i: usize| -> Vec<(String, i64)> {
        found.facets[i]
            .buckets
            .iter()
            .map(|b| (b.value.clone(), b.count))
            .collect()
    };
    let owned = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(v, c)| (v.to_string(), *c)).collect()
    };
    assert_eq!(
        buckets(0),
        owned(&[
            ("Sony", 3),
            ("Bose", 2),
            ("Apple", 1),
            ("bang & olufsen", 1)
        ])
    );
    assert_eq!(buckets(1), owned(&[("NEW", 2), ("Sale", 2)]));
    let p2 = s
        .documents
        .get_document(pb::GetDocumentRequest {
            collection: "shop".into(),
            id: "p2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(to_json(&p2.fields.unwrap())["brand"], "SONY");
    // Suggestions complete whole values from their beginning, whatever the case.
    let suggest = |prefix: &str| pb::SuggestRequest {
        collection: "shop".into(),
        prefix: prefix.into(),
        field: "brand".into(),
        limit: 0,
    };
    for (prefix, want) in [
        ("so", vec![("Sony", 3)]),
        ("BANG & O", vec![("bang & olufsen", 1)]),
        ("b", vec![("Bose", 2), ("bang & olufsen", 1)]),
    ] {
        let got: Vec<(String, i64)> = s
            .search
            .suggest(suggest(prefix))
            .await
            .unwrap()
            .into_inner()
            .suggestions
            .into_iter()
            .map(|x| (x.text, x.count))
            .collect();
        assert_eq!(got, owned(&want), "{prefix}");
    }
    // The definition says so.
    let shop = s
        .collections
        .get_collection(pb::GetCollectionRequest {
            name: "shop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let normalizers: Vec<&str> = shop.fields.iter().map(|f| f.normalizer.as_str()).collect();
    assert_eq!(normalizers, ["", "lowercase", "lowercase", ""]);
    s.stop().await;
}
