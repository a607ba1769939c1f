//! The peers, in-process: tantivy with trove's schema (what trove would be
//! without its service around the index) and SQLite FTS5 (rusqlite, bundled).

use std::ops::Bound;
use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};
use tantivy::aggregation::AggregationCollector;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{DateTime, Index, IndexReader, TantivyDocument, Term};

use crate::queries::BenchQuery;

/// Indexing threads and memory, as a trove collection has them on this machine.
const THREADS: usize = 2;
const HEAP_PER_THREAD: usize = 24 << 20;

fn date(text: &str) -> anyhow::Result<DateTime> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)?;
    Ok(DateTime::from_utc(parsed))
}

fn str_of<'a>(fields: &'a Map<String, Value>, key: &str) -> &'a str {
    fields.get(key).and_then(Value::as_str).unwrap_or("")
}

/// tantivy with the benchmark schema, in RAM; it stores every field.
pub struct Tantivy {
    reader: IndexReader,
    parser: QueryParser,
    date: Field,
}

impl Tantivy {
    /// Indexes `docs` and commits.
    pub fn ingest(docs: &[(String, Map<String, Value>)]) -> anyhow::Result<Tantivy> {
        let mut builder = Schema::builder();
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("en_stem")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let id = builder.add_text_field("id", STRING | STORED);
        let title = builder.add_text_field("title", text.clone());
        let body = builder.add_text_field("body", text);
        let date_field = builder.add_date_field("date", INDEXED | FAST | STORED);
        let tags = builder.add_text_field("tags", STRING | FAST | STORED);
        let source = builder.add_text_field("source", STRING | FAST | STORED);
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(THREADS, THREADS * HEAP_PER_THREAD)?;
        for (doc_id, fields) in docs {
            let mut doc = TantivyDocument::default();
            doc.add_text(id, doc_id);
            doc.add_text(title, str_of(fields, "title"));
            doc.add_text(body, str_of(fields, "body"));
            doc.add_date(date_field, date(str_of(fields, "date"))?);
            for tag in fields
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                doc.add_text(tags, tag.as_str().unwrap_or(""));
            }
            doc.add_text(source, str_of(fields, "source"));
            writer.add_document(doc)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        let reader = index.reader()?;
        let parser = QueryParser::for_index(&index, vec![title, body]);
        Ok(Tantivy {
            reader,
            parser,
            date: date_field,
        })
    }

    /// Runs `query`: the top 10 with their stored fields (and facet counts).
    /// Returns how many documents came back.
    pub fn search(&self, query: &BenchQuery) -> anyhow::Result<usize> {
        let searcher = self.reader.searcher();
        let text = if query.phrase {
            format!("\"{}\"", query.words.join(" "))
        } else {
            query.words.join(" ")
        };
        let mut parsed: Box<dyn Query> = self.parser.parse_query(&text)?;
        if let Some((from, to)) = &query.dates {
            let range = RangeQuery::new(
                Bound::Included(Term::from_field_date(self.date, date(from)?)),
                Bound::Excluded(Term::from_field_date(self.date, date(to)?)),
            );
            parsed = Box::new(BooleanQuery::new(vec![
                (Occur::Must, parsed),
                (Occur::Must, Box::new(range)),
            ]));
        }
        let top = TopDocs::with_limit(10).order_by_score();
        let hits = if query.facets {
            let aggs: Aggregations = serde_json::from_value(serde_json::json!({
                "tags": {"terms": {"field": "tags", "size": 10}},
                "source": {"terms": {"field": "source", "size": 10}},
            }))?;
            let facets = AggregationCollector::from_aggs(aggs, Default::default());
            let (hits, counts) = searcher.search(&parsed, &(top, facets))?;
            std::hint::black_box(counts);
            hits
        } else {
            searcher.search(&parsed, &top)?
        };
        for (_, address) in &hits {
            let doc: TantivyDocument = searcher.doc(*address)?;
            std::hint::black_box(doc);
        }
        Ok(hits.len())
    }
}

/// SQLite FTS5 (porter stemmer) in a file, WAL mode; one connection per thread.
pub struct Fts5 {
    path: std::path::PathBuf,
}

impl Fts5 {
    pub fn ingest(dir: &Path, docs: &[(String, Map<String, Value>)]) -> anyhow::Result<Fts5> {
        let path = dir.join("fts5.db");
        let mut db = rusqlite::Connection::open(&path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = OFF;
             CREATE VIRTUAL TABLE docs USING fts5(
                 id UNINDEXED, title, body, date UNINDEXED, tags UNINDEXED, source UNINDEXED,
                 tokenize = 'porter unicode61');
             CREATE TABLE doc_tags(docid INTEGER, tag TEXT);",
        )?;
        for chunk in docs.chunks(10_000) {
            let tx = db.transaction()?;
            {
                let mut insert = tx.prepare(
                    "INSERT INTO docs(id, title, body, date, tags, source) VALUES (?, ?, ?, ?, ?, ?)",
                )?;
                let mut tag = tx.prepare("INSERT INTO doc_tags(docid, tag) VALUES (?, ?)")?;
                for (id, fields) in chunk {
                    let tags: Vec<&str> = fields
                        .get("tags")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    insert.execute(rusqlite::params![
                        id,
                        str_of(fields, "title"),
                        str_of(fields, "body"),
                        str_of(fields, "date"),
                        tags.join(" "),
                        str_of(fields, "source"),
                    ])?;
                    let rowid = tx.last_insert_rowid();
                    for t in tags {
                        tag.execute(rusqlite::params![rowid, t])?;
                    }
                }
            }
            tx.commit()?;
        }
        db.execute_batch("CREATE INDEX doc_tags_docid ON doc_tags(docid);")?;
        Ok(Fts5 { path })
    }

    pub fn connect(&self) -> anyhow::Result<rusqlite::Connection> {
        rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .context("opening the FTS5 database")
    }

    /// Runs `query` on `db`: the top 10 by bm25 with their fields (and facet counts).
    pub fn search(db: &rusqlite::Connection, query: &BenchQuery) -> anyhow::Result<usize> {
        let expr = if query.phrase {
            format!("\"{}\"", query.words.join(" "))
        } else {
            query
                .words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" OR ")
        };
        let (from, to) = query
            .dates
            .clone()
            .unwrap_or_else(|| (String::new(), "9999".into()));
        let mut top = db.prepare_cached(
            "SELECT id, title, body, date, tags, source FROM docs
             WHERE docs MATCH ?1 AND date >= ?2 AND date < ?3 ORDER BY rank LIMIT 10",
        )?;
        let rows = top
            .query_map(rusqlite::params![expr, from, to], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if query.facets {
            let mut sources = db.prepare_cached(
                "SELECT source, count(*) AS n FROM docs WHERE docs MATCH ?1
                 GROUP BY source ORDER BY n DESC LIMIT 10",
            )?;
            let counts: Vec<(String, i64)> = sources
                .query_map([&expr], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            std::hint::black_box(counts);
            let mut tags = db.prepare_cached(
                "SELECT t.tag, count(*) AS n FROM docs JOIN doc_tags t ON t.docid = docs.rowid
                 WHERE docs MATCH ?1 GROUP BY t.tag ORDER BY n DESC LIMIT 10",
            )?;
            let counts: Vec<(String, i64)> = tags
                .query_map([&expr], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            std::hint::black_box(counts);
        }
        Ok(rows.len())
    }
}
