//! Randomised checks that no request text panics the parsers or the query builder:
//! thousands of strings built from the characters and words the grammars care about.
//! (Coverage-guided fuzzing with cargo-fuzz goes further; this runs in every test run.)

use std::sync::Arc;

use serde_json::json;

use crate::collection::Collection;
use crate::lang::query::{Builder, Operator, QueryOptions, Syntax};
use crate::lang::{filter, order};
use crate::names::{CollectionName, DocId};
use crate::search::page_token::PageTokens;
use crate::search::pins::Pins;
use crate::search::{self, Highlight, SearchRequest};

const PIECES: &[&str] = &[
    "a",
    "b",
    "rust",
    "title",
    "body",
    "tags",
    "n",
    "date",
    "_id",
    " ",
    "  ",
    "\t",
    "(",
    ")",
    "\"",
    "'",
    ":",
    "+",
    "-",
    "*",
    "~",
    "~2",
    "^",
    "^2",
    "^x",
    ".",
    ",",
    "\\",
    "é",
    "東京",
    "AND",
    "OR",
    "NOT",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "2021-08-07",
    "1.5",
    "-3",
    "true",
    "asc",
    "desc",
    "_score",
    "9999999999999999999999",
    "\u{0}",
    "\u{200b}",
];

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self) -> String {
        let len = self.next() % 12;
        (0..len)
            .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
            .collect()
    }
}

fn collection() -> Arc<Collection> {
    let schema = crate::fuzz::schema();
    Collection::standalone(CollectionName::parse("fuzz", "name").unwrap(), schema).unwrap()
}

#[tokio::test]
async fn random_text_never_panics() {
    let collection = collection();
    for (i, text) in ["rust is fast", "a b rust", "東京 rust"].iter().enumerate() {
        let fields =
            json!({"title": text, "body": text, "tags": ["rust"], "n": i, "date": "2021-08-07"});
        collection
            .create(
                Some(DocId::parse(&format!("d{i}"), "id").unwrap()),
                fields.as_object().unwrap().clone(),
                true,
                "",
            )
            .await
            .unwrap();
    }
    let view = collection.view();
    let tokens = PageTokens::new();
    let pins = Pins::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let text = rng.text();
        let _ = filter::parse(&text)
            .map(|expr| expr.map(|e| filter::build(collection.index(), collection.schema(), &e)));
        let _ = order::parse(&text, collection.schema());
        for syntax in [Syntax::Full, Syntax::Simple] {
            let options = QueryOptions {
                syntax,
                default_operator: if rng.next() % 2 == 0 {
                    Operator::Or
                } else {
                    Operator::And
                },
                search_fields: if rng.next() % 4 == 0 {
                    rng.text()
                } else {
                    String::new()
                },
                typo_tolerance: rng.next() % 2 == 0,
                prefix_last_word: rng.next() % 2 == 0,
            };
            if let Ok(mut builder) = Builder::new(
                collection.index(),
                collection.schema(),
                &view.searcher,
                &options,
            ) {
                let _ = builder.build(&text);
            }
            // The whole search, with highlights and explanations, now and then.
            if rng.next() % 8 == 0 {
                let request = SearchRequest {
                    query: text.clone(),
                    filter: if rng.next() % 2 == 0 {
                        rng.text()
                    } else {
                        String::new()
                    },
                    order_by: if rng.next() % 2 == 0 {
                        rng.text()
                    } else {
                        String::new()
                    },
                    page_size: (rng.next() % 3) as usize,
                    page_token: String::new(),
                    highlight: Some(Highlight {
                        fields: Vec::new(),
                        pre_tag: rng.text(),
                        post_tag: String::new(),
                        fragment_size: (rng.next() % 20) as usize,
                        max_fragments: (rng.next() % 4) as usize,
                    }),
                    facets: Vec::new(),
                    options: options.clone(),
                    explain: rng.next() % 2 == 0,
                    without_fields: rng.next() % 2 == 0,
                    skip_hits: rng.next() % 8 == 0,
                    post_filter: if rng.next() % 4 == 0 {
                        rng.text()
                    } else {
                        String::new()
                    },
                };
                let _ = search::search(&collection, &tokens, &pins, &request);
            }
        }
    }
}
