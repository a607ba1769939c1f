//! Suggest, Analyze, explain and range facets.

use serde_json::json;
use tonic::Code;
use trove::api::pb;

use crate::harness::{Server, bad_request_field, query};
use crate::search::library;

fn suggest(collection: &str, prefix: &str, field: &str, limit: i32) -> pb::SuggestRequest {
    pb::SuggestRequest {
        collection: collection.into(),
        prefix: prefix.into(),
        field: field.into(),
        limit,
    }
}

#[tokio::test]
async fn suggest_completes_words_as_written_by_frequency() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    s.put(
        "c",
        "1",
        json!({"body": "Computers compute; computing computers", "tags": ["computer science"]}),
    )
    .await;
    s.put(
        "c",
        "2",
        json!({"body": "A computer and computers", "tags": ["compilers"]}),
    )
    .await;
    s.put(
        "c",
        "3",
        json!({"body": "Compassion", "tags": ["computer science"]}),
    )
    .await;
    let got = |r: pb::SuggestResponse| {
        r.suggestions
            .into_iter()
            .map(|s| (s.text, s.count))
            .collect::<Vec<_>>()
    };
    let response = s
        .search
        .suggest(suggest("c", "Comput", "", 0))
        .await
        .unwrap()
        .into_inner();
    // Words as written (lower-cased), not stems; by document frequency, then text.
    assert_eq!(
        got(response),
        [
            ("computers".to_string(), 2),
            ("compute".into(), 1),
            ("computer".into(), 1),
            ("computing".into(), 1)
        ]
    );
    let response = s
        .search
        .suggest(suggest("c", "fast comp", "body", 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got(response),
        [
            ("fast computers".to_string(), 2),
            ("fast compassion".into(), 1)
        ]
    );
    let response = s
        .search
        .suggest(suggest("c", "comp", "tags", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got(response),
        [("computer science".to_string(), 2), ("compilers".into(), 1)]
    );
    assert!(
        s.search
            .suggest(suggest("c", "zzz", "", 0))
            .await
            .unwrap()
            .into_inner()
            .suggestions
            .is_empty()
    );

    for (request, field) in [
        (suggest("c", "x", "n", 0), "field"),
        (suggest("c", "x", "nope", 0), "field"),
        (suggest("c", "x", "", -1), "limit"),
        (suggest("Bad", "x", "", 0), "collection"),
    ] {
        let err = s.search.suggest(request).await.unwrap_err();
        assert_eq!(
            (err.code(), bad_request_field(&err).as_str()),
            (Code::InvalidArgument, field)
        );
    }
    assert_eq!(
        s.search
            .suggest(suggest("nope", "x", "", 0))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    s.stop().await;
}

#[tokio::test]
async fn analyze_by_name_and_by_field() {
    let mut s = library().await;
    let analyze = |analyzer: &str, collection: &str, field: &str, text: &str| pb::AnalyzeRequest {
        analyzer: analyzer.into(),
        collection: collection.into(),
        field: field.into(),
        text: text.into(),
    };
    let tokens = s
        .search
        .analyze(analyze("english", "", "", "The cafés were running"))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let got: Vec<(String, i32, i32, i32)> = tokens
        .into_iter()
        .map(|t| (t.text, t.position, t.start, t.end))
        .collect();
    assert_eq!(
        got,
        [("cafe".to_string(), 1, 4, 9), ("run".into(), 3, 15, 22)]
    );
    let keyword = s
        .search
        .analyze(analyze("", "c", "tags", "New York"))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(
        keyword.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["New York"]
    );
    let title = s
        .search
        .analyze(analyze("", "c", "title", "Running"))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(title[0].text, "running", "title uses the standard analyzer");
    for (request, field) in [
        (analyze("klingon", "", "", "x"), "analyzer"),
        (analyze("", "", "", "x"), "analyzer"),
        (analyze("", "c", "nope", "x"), "field"),
        (
            analyze("standard", "", "", &"x".repeat((1 << 20) + 1)),
            "text",
        ),
    ] {
        let err = s.search.analyze(request).await.unwrap_err();
        assert_eq!(
            (err.code(), bad_request_field(&err).as_str()),
            (Code::InvalidArgument, field)
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn explain_breaks_the_score_down_by_term_and_field() {
    let mut s = library().await;
    let mut request = query("c", "rust borrow");
    request.explain = true;
    let found = s.find(request).await;
    for hit in &found.hits {
        let explanation = hit.explanation.as_ref().expect("an explanation per hit");
        assert!(
            (explanation.value - hit.score).abs() < 1e-4,
            "{explanation:?} vs {}",
            hit.score
        );
        let mut leaves = Vec::new();
        collect_descriptions(explanation, &mut leaves);
        assert!(
            leaves
                .iter()
                .any(|d| d.contains("term \"rust\" in title")
                    || d.contains("term \"borrow\" in body")),
            "{leaves:?}"
        );
        assert!(
            leaves.iter().any(|d| d.contains("freq / (freq + k1")),
            "BM25 parts: {leaves:?}"
        );
    }
    let plain = s.find(query("c", "rust")).await;
    assert!(plain.hits.iter().all(|h| h.explanation.is_none()));
    s.stop().await;
}

fn collect_descriptions(e: &pb::Explanation, out: &mut Vec<String>) {
    out.push(e.description.clone());
    for d in &e.details {
        collect_descriptions(d, out);
    }
}

#[tokio::test]
async fn numeric_range_facets() {
    let mut s = library().await;
    let range = |from: Option<f64>, to: Option<f64>| pb::FacetRange { from, to };
    let mut request = query("c", "");
    request.facets = vec![
        pb::FacetRequest {
            field: "n".into(),
            ranges: vec![
                range(None, Some(2.0)),
                range(Some(2.0), Some(4.0)),
                range(Some(4.0), None),
            ],
            ..Default::default()
        },
        pb::FacetRequest {
            field: "price".into(),
            ranges: vec![range(Some(30.0), Some(40.0)), range(Some(0.0), None)],
            ..Default::default()
        },
        pb::FacetRequest {
            field: "n".into(),
            ..Default::default()
        },
    ];
    let found = s.find(request).await;
    let buckets = |i: usize| {
        found.facets[i]
            .buckets
            .iter()
            .map(|b| (b.value.clone(), b.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        buckets(0),
        [
            ("..2".to_string(), 1),
            ("2..4".into(), 2),
            ("4..".into(), 1)
        ]
    );
    assert_eq!(buckets(1), [("30..40".to_string(), 1), ("0..".into(), 3)]);
    assert_eq!(
        buckets(2),
        [
            ("1".to_string(), 1),
            ("2".into(), 1),
            ("3".into(), 1),
            ("5".into(), 1)
        ]
    );

    for (ranges, field) in [
        (vec![range(Some(5.0), Some(1.0))], "facets[0].ranges[0]"),
        (vec![range(Some(f64::NAN), None)], "facets[0].ranges[0]"),
        (vec![range(None, None); 101], "facets[0].ranges"),
    ] {
        let mut request = query("c", "");
        request.facets = vec![pb::FacetRequest {
            field: "n".into(),
            ranges,
            ..Default::default()
        }];
        let err = s.search.search(request).await.unwrap_err();
        assert_eq!(
            (err.code(), bad_request_field(&err).as_str()),
            (Code::InvalidArgument, field)
        );
    }
    let mut request = query("c", "");
    request.facets = vec![pb::FacetRequest {
        field: "tags".into(),
        ranges: vec![range(None, Some(1.0))],
        ..Default::default()
    }];
    assert_eq!(s.search_code(request).await, Code::InvalidArgument);
    s.stop().await;
}

#[tokio::test]
async fn highlights_mark_what_matched_and_where() {
    let mut s = Server::start().await;
    s.create_test_collection("h").await;
    let body =
        "The peace process began. Computers talk; peace talks stall. A process of peace & <calm>.";
    s.put("h", "1", json!({"body": body})).await;
    let highlight = |q: &str, max_fragments: i32| {
        let mut r = query("h", q);
        r.highlight = Some(pb::HighlightOptions {
            fields: vec!["body".into()],
            max_fragments,
            ..Default::default()
        });
        r
    };
    let marked = |r: &pb::SearchResponse| {
        let h = &r.hits[0].highlights[0];
        let chars: Vec<char> = body.chars().collect();
        h.matches
            .iter()
            .map(|m| {
                chars[m.start as usize..m.end as usize]
                    .iter()
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
    };
    // A phrase is marked only where it matches.
    let found = s.find(highlight("\"peace process\"", 0)).await;
    assert_eq!(marked(&found), ["peace", "process"]);
    assert!(
        found.hits[0].highlights[0].snippets[0]
            .starts_with("The <em>peace</em> <em>process</em> began.")
    );
    assert!(
        found.hits[0].highlights[0].snippets[0].contains("&amp; &lt;calm&gt;"),
        "HTML-escaped"
    );
    // Prefix and fuzzy terms mark the words they expanded to, as written.
    assert_eq!(
        marked(&s.find(highlight("comput*", 0)).await),
        ["Computers"]
    );
    assert_eq!(marked(&s.find(highlight("tallks~", 0)).await), ["talks"]);
    let mut typo = highlight("proces", 0);
    typo.typo_tolerance = true;
    assert_eq!(marked(&s.find(typo).await), ["process", "process"]);
    // Stemmed terms mark every form; excluded words are not marked.
    let found = s.find(highlight("talking peace -computers", 0)).await;
    assert!(found.hits.is_empty(), "the document holds computers");
    let found = s.find(highlight("talking peace -war", 0)).await;
    assert_eq!(marked(&found), ["peace", "talk", "peace", "talks", "peace"]);
    // Several fragments, best first.
    let mut fragments = highlight("peace process", 3);
    fragments.highlight.as_mut().unwrap().fragment_size = 30;
    let found = s.find(fragments).await;
    let snippets = &found.hits[0].highlights[0].snippets;
    assert!(snippets.len() > 1 && snippets.len() <= 3, "{snippets:?}");
    assert!(
        snippets[0].contains("<em>peace</em> <em>process</em>"),
        "{snippets:?}"
    );
    let mut bad = highlight("peace", -1);
    bad.highlight.as_mut().unwrap().max_fragments = -1;
    let err = s.search.search(bad).await.unwrap_err();
    assert_eq!(bad_request_field(&err), "highlight.max_fragments");
    s.stop().await;
}
