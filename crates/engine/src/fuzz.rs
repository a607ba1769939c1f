//! Entry points for the cargo-fuzz targets in `fuzz/` and for the replay of their
//! corpora in `tests/fuzz_corpus.rs`: each runs one parser (and what consumes its
//! result) on arbitrary text against a small fixed collection. Errors are the
//! expected outcome for most inputs; a panic is the bug being looked for.

use std::sync::{Arc, OnceLock};

use serde_json::json;

use crate::collection::Collection;
use crate::lang::query::{Builder, Operator, QueryOptions, Syntax, parse};
use crate::lang::{filter, order};
use crate::names::{CollectionName, DocId};
use crate::schema::{CollectionSchema, FieldSpec, FieldType};
use crate::search::page_token::PageTokens;

/// Every field type (text on the english analyzer), and one synonym set.
pub(crate) fn schema() -> CollectionSchema {
    let spec = |name: &str, ty| FieldSpec {
        name: name.into(),
        ty: Some(ty),
        analyzer: if ty == FieldType::Text {
            "english".into()
        } else {
            String::new()
        },
        filterable: true,
        sortable: ty != FieldType::Text,
        facetable: ty != FieldType::Text,
        boost: 0.0,
        normalizer: String::new(),
    };
    CollectionSchema::new(&[
        spec("title", FieldType::Text),
        spec("body", FieldType::Text),
        spec("tags", FieldType::Keyword),
        spec("n", FieldType::Integer),
        spec("price", FieldType::Float),
        spec("live", FieldType::Boolean),
        spec("date", FieldType::Timestamp),
    ])
    .and_then(|schema| schema.with_synonyms(&["rust, b a".into()]))
    .expect("the fixture's schema is valid")
}

/// A collection of [`schema`] with a few documents, built once.
fn fixture() -> &'static Arc<Collection> {
    static FIXTURE: OnceLock<Arc<Collection>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let schema = schema();
        let name = CollectionName::parse("fuzz", "name").expect("a valid name");
        let collection = Collection::standalone(name, schema).expect("an in-memory collection");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime for the fixture");
        for (i, text) in ["rust is fast", "a b rust", "東京 rust"].iter().enumerate() {
            let fields = json!({
                "title": text, "body": text, "tags": ["rust"], "n": i,
                "price": 1.5, "live": true, "date": "2021-08-07"
            });
            let id = DocId::parse(&format!("d{i}"), "id").expect("a valid id");
            let fields = fields.as_object().cloned().unwrap_or_default();
            runtime
                .block_on(collection.create(Some(id), fields, true, ""))
                .expect("the fixture's documents are valid");
        }
        collection
    })
}

/// The query parser in both syntaxes, and the query builder on the fixture.
pub fn query(input: &str) {
    let collection = fixture();
    let view = collection.view();
    for syntax in [Syntax::Full, Syntax::Simple] {
        for operator in [Operator::Or, Operator::And] {
            let _ = parse(input, syntax, operator);
        }
        let options = QueryOptions {
            syntax,
            default_operator: Operator::Or,
            search_fields: String::new(),
            typo_tolerance: true,
            prefix_last_word: true,
        };
        if let Ok(mut builder) = Builder::new(
            collection.index(),
            collection.schema(),
            &view.searcher,
            &options,
        ) {
            let _ = builder.build(input);
        }
    }
}

/// The filter parser, and building its query on the fixture's schema.
pub fn filter(input: &str) {
    let collection = fixture();
    if let Ok(Some(expr)) = filter::parse(input) {
        let _ = filter::build(collection.index(), collection.schema(), &expr);
    }
}

/// The `order_by` parser on the fixture's schema.
pub fn order_by(input: &str) {
    let _ = order::parse(input, fixture().schema());
}

/// Decoding a page token (forged: the key is this process's).
pub fn page_token(input: &str) {
    static TOKENS: OnceLock<PageTokens> = OnceLock::new();
    let tokens = TOKENS.get_or_init(PageTokens::new);
    let _ = tokens.decode(input, [0; 8]);
}
