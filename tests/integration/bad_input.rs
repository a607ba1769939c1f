//! The bad-input suite: hostile and malformed requests over gRPC. Each gets a
//! precise status whose message says what is wrong, and after each the server
//! still answers health and a real search (nothing panicked).

use std::future::Future;
use std::pin::Pin;

use prost_types::FieldMask;
use serde_json::json;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use trove::api::pb;

use crate::harness::{Server, doc, query};

type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

struct Case {
    name: &'static str,
    code: Code,
    /// Part of the message or of the BadRequest field, so that the status says
    /// what is wrong.
    mentions: &'static str,
    call: Call,
}

macro_rules! case {
    ($name:expr, $code:expr, $mentions:expr, $client:ident, $method:ident, $request:expr) => {{
        let mut client = $client.clone();
        let request = $request;
        Case {
            name: $name,
            code: $code,
            mentions: $mentions,
            call: Box::pin(async move { client.$method(request).await.map(|_| ()) }),
        }
    }};
}

fn create(document: pb::Document) -> pb::CreateDocumentRequest {
    pb::CreateDocumentRequest {
        collection: "c".into(),
        document: Some(document),
        async_visibility: false,
        request_id: String::new(),
    }
}

fn search(f: impl FnOnce(&mut pb::SearchRequest)) -> pb::SearchRequest {
    let mut request = query("c", "word");
    f(&mut request);
    request
}

fn get(id: String) -> pb::GetDocumentRequest {
    pb::GetDocumentRequest {
        collection: "c".into(),
        id,
    }
}

#[tokio::test]
async fn every_bad_request_gets_a_precise_status_and_the_server_keeps_serving() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    s.put("c", "kept", json!({"title": "a word kept", "n": 1}))
        .await;

    let d = s.documents.clone();
    let q = s.search.clone();
    let c = s.collections.clone();
    let nested_query = format!("{}word{}", "(".repeat(1000), ")".repeat(1000));
    let nested_filter = format!("{}n = 1{}", "(".repeat(1000), ")".repeat(1000));
    let many_terms = (0..10_000)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let cases = vec![
        // Oversized messages and strings.
        case!(
            "a 17 MiB message",
            Code::ResourceExhausted,
            "message",
            q,
            search,
            search(|r| r.query = "x".repeat(17 << 20))
        ),
        case!(
            "a 1 MiB query string",
            Code::InvalidArgument,
            "query",
            q,
            search,
            search(|r| r.query = "word ".repeat(200_000))
        ),
        case!(
            "a 1 MiB filter",
            Code::InvalidArgument,
            "filter",
            q,
            search,
            search(|r| r.filter = "n = 1 OR ".repeat(100_000))
        ),
        // Nesting and size of queries and filters.
        case!(
            "a query nested 1000 deep",
            Code::InvalidArgument,
            "32",
            q,
            search,
            search(|r| r.query = nested_query)
        ),
        case!(
            "a filter nested 1000 deep",
            Code::InvalidArgument,
            "64",
            q,
            search,
            search(|r| r.filter = nested_filter)
        ),
        case!(
            "a 10,000-term query",
            Code::InvalidArgument,
            "1024",
            q,
            search,
            search(|r| r.query = many_terms)
        ),
        case!(
            "an unknown field in a query",
            Code::InvalidArgument,
            "nope",
            q,
            search,
            search(|r| r.query = "nope:word".into())
        ),
        case!(
            "a filter on an unknown field",
            Code::InvalidArgument,
            "nope",
            q,
            search,
            search(|r| r.filter = "nope = 1".into())
        ),
        case!(
            "a filter comparing an integer to text",
            Code::InvalidArgument,
            "n",
            q,
            search,
            search(|r| r.filter = "n = \"one\"".into())
        ),
        case!(
            "order_by an unknown field",
            Code::InvalidArgument,
            "nope",
            q,
            search,
            search(|r| r.order_by = "nope desc".into())
        ),
        case!(
            "order_by with a bad direction",
            Code::InvalidArgument,
            "sideways",
            q,
            search,
            search(|r| r.order_by = "n sideways".into())
        ),
        // Page sizes and tokens.
        case!(
            "a negative page size",
            Code::InvalidArgument,
            "page_size",
            q,
            search,
            search(|r| r.page_size = -1)
        ),
        case!(
            "a forged page token",
            Code::InvalidArgument,
            "page_token",
            q,
            search,
            search(|r| r.page_token = "AAAAforged-token".into())
        ),
        case!(
            "a page token of another query",
            Code::InvalidArgument,
            "page_token",
            q,
            search,
            search(|r| r.page_token = "x".repeat(5000))
        ),
        case!(
            "a forged List page token",
            Code::InvalidArgument,
            "page_token",
            d,
            list_documents,
            pb::ListDocumentsRequest {
                collection: "c".into(),
                page_size: 10,
                page_token: "%%%".into(),
            }
        ),
        case!(
            "a negative List page size",
            Code::InvalidArgument,
            "page_size",
            d,
            list_documents,
            pb::ListDocumentsRequest {
                collection: "c".into(),
                page_size: i32::MIN,
                page_token: String::new(),
            }
        ),
        // Field masks.
        case!(
            "a read mask naming an unknown field",
            Code::InvalidArgument,
            "read_mask",
            q,
            search,
            search(|r| r.read_mask = Some(FieldMask {
                paths: vec!["nope".into()],
            }))
        ),
        case!(
            "an update mask with an empty path",
            Code::InvalidArgument,
            "update_mask",
            d,
            update_document,
            pb::UpdateDocumentRequest {
                collection: "c".into(),
                document: Some(doc("kept", json!({"title": "x"}))),
                update_mask: Some(FieldMask {
                    paths: vec![String::new()],
                }),
                ..Default::default()
            }
        ),
        // Values of the wrong type for the schema.
        case!(
            "text given a number",
            Code::InvalidArgument,
            "title",
            d,
            create_document,
            create(doc("t1", json!({"title": 5})))
        ),
        case!(
            "an integer given text",
            Code::InvalidArgument,
            "n",
            d,
            create_document,
            create(doc("t2", json!({"n": "five"})))
        ),
        case!(
            "an integer given a fraction",
            Code::InvalidArgument,
            "n",
            d,
            create_document,
            create(doc("t3", json!({"n": 1.5})))
        ),
        case!(
            "a timestamp given nonsense",
            Code::InvalidArgument,
            "date",
            d,
            create_document,
            create(doc("t4", json!({"date": "yesterday"})))
        ),
        case!(
            "a boolean given an object",
            Code::InvalidArgument,
            "live",
            d,
            create_document,
            create(doc("t5", json!({"live": {"a": 1}})))
        ),
        case!(
            "a keyword given a nested list",
            Code::InvalidArgument,
            "tags",
            d,
            create_document,
            create(doc("t6", json!({"tags": [["a"]]})))
        ),
        case!(
            "a float given NaN",
            Code::InvalidArgument,
            "price",
            d,
            create_document,
            create(nan_doc(f64::NAN))
        ),
        case!(
            "a float given infinity",
            Code::InvalidArgument,
            "price",
            d,
            create_document,
            create(nan_doc(f64::INFINITY))
        ),
        // Ids.
        case!(
            "an empty id to get",
            Code::InvalidArgument,
            "id",
            d,
            get_document,
            get(String::new())
        ),
        case!(
            "a 100 KB id",
            Code::InvalidArgument,
            "id",
            d,
            get_document,
            get("x".repeat(100_000))
        ),
        case!(
            "an id with a control character",
            Code::InvalidArgument,
            "id",
            d,
            get_document,
            get("a\u{0}b".into())
        ),
        case!(
            "a missing document",
            Code::NotFound,
            "nothing-here",
            d,
            get_document,
            get("nothing-here".into())
        ),
        // Collections.
        case!(
            "an unknown collection",
            Code::NotFound,
            "nowhere",
            q,
            search,
            pb::SearchRequest {
                collection: "nowhere".into(),
                ..Default::default()
            }
        ),
        case!(
            "a collection name with a slash",
            Code::InvalidArgument,
            "collection",
            q,
            search,
            pb::SearchRequest {
                collection: "a/b".into(),
                ..Default::default()
            }
        ),
        case!(
            "a collection without fields of a known type",
            Code::InvalidArgument,
            "type",
            c,
            create_collection,
            pb::CreateCollectionRequest {
                collection: Some(pb::Collection {
                    name: "weird".into(),
                    fields: vec![pb::Field {
                        name: "f".into(),
                        r#type: 999,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            }
        ),
    ];

    for case in cases {
        let Case {
            name,
            code,
            mentions,
            call,
        } = case;
        let status = call.await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
        let field = {
            use tonic_types::StatusExt;
            status
                .get_error_details()
                .bad_request()
                .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
                .unwrap_or_default()
        };
        assert!(
            status.message().contains(mentions) || field.contains(mentions),
            "{name}: the message or the BadRequest field should mention {mentions:?}: {:?} / {field:?}",
            status.message()
        );
        // Still serving.
        let health = s
            .health
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(health.status, 1, "{name}");
        assert_eq!(s.find(query("c", "kept")).await.total_size, 1, "{name}");
    }

    // An enormous page size is coerced to the maximum (AIP-158), not refused.
    let found = s.find(search(|r| r.page_size = i32::MAX)).await;
    assert_eq!(found.total_size, 1);
    s.stop().await;
}

/// A document whose `price` is `value` (JSON cannot carry NaN, so built by hand).
fn nan_doc(value: f64) -> pb::Document {
    let mut document = doc("nan", json!({}));
    document.fields.as_mut().unwrap().fields.insert(
        "price".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(value)),
        },
    );
    document
}
