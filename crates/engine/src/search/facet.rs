//! Facet counts over every match of a search. Written as a collector of our own
//! because tantivy's aggregations have no calendar intervals (month, year) for
//! date histograms, and term counts over a str column are a few lines.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};
use time::{Date, Duration, Month, OffsetDateTime};

use crate::error::{EngineError, Result};
use crate::schema::{CollectionSchema, FieldType};
use crate::timestamp;

/// Default number of values of a term facet.
pub const DEFAULT_SIZE: usize = 10;
/// The most values a term facet returns.
pub const MAX_SIZE: usize = 1000;
/// The most facets one search may ask for.
pub const MAX_FACETS: usize = 32;

/// A calendar bucket of a date histogram (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

/// A facet as the client asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct FacetRequest {
    pub field: String,
    /// 0 means the default.
    pub size: i32,
    /// Empty means `month` (TIMESTAMP fields only).
    pub interval: String,
    /// `[from, to)` ranges for INTEGER and FLOAT fields; `None` is an open bound.
    pub ranges: Vec<(Option<f64>, Option<f64>)>,
}

/// The most ranges one facet may ask for.
pub const MAX_RANGES: usize = 100;

/// A validated facet.
#[derive(Clone, Debug)]
pub struct Facet {
    field: String,
    ty: FieldType,
    size: usize,
    interval: Interval,
    ranges: Vec<(Option<f64>, Option<f64>)>,
}

impl Facet {
    /// The field counted.
    pub fn field(&self) -> &str {
        &self.field
    }
}

/// The counts of one facet.
#[derive(Clone, Debug, PartialEq)]
pub struct FacetCounts {
    pub field: String,
    /// `(value, count)`: most frequent first (ties by value), or in time order for
    /// a date histogram.
    pub buckets: Vec<(String, u64)>,
}

/// Checks the requested facets against the schema.
pub fn validate(requests: &[FacetRequest], schema: &CollectionSchema) -> Result<Vec<Facet>> {
    if requests.len() > MAX_FACETS {
        return Err(EngineError::invalid(
            "facets",
            format!(
                "{} facets requested; the limit is {MAX_FACETS}",
                requests.len()
            ),
        ));
    }
    requests
        .iter()
        .enumerate()
        .map(|(i, req)| {
            let path = |p: &str| format!("facets[{i}].{p}");
            let (def, _) = schema.field(&req.field).ok_or_else(|| {
                EngineError::invalid(path("field"), format!("unknown field {:?}", req.field))
            })?;
            if !def.facetable {
                return Err(EngineError::invalid(
                    path("field"),
                    format!(
                        "field {:?} is not facetable; declare it with facetable: true",
                        req.field
                    ),
                ));
            }
            let size = match req.size {
                0 => DEFAULT_SIZE,
                n if n < 0 => {
                    return Err(EngineError::invalid(
                        path("size"),
                        format!("size must not be negative, got {n}"),
                    ));
                }
                n => (n as usize).min(MAX_SIZE),
            };
            let interval = match (def.ty, req.interval.as_str()) {
                (FieldType::Timestamp, "" | "month") => Interval::Month,
                (FieldType::Timestamp, "day") => Interval::Day,
                (FieldType::Timestamp, "week") => Interval::Week,
                (FieldType::Timestamp, "year") => Interval::Year,
                (FieldType::Timestamp, other) => {
                    return Err(EngineError::invalid(
                        path("interval"),
                        format!("unknown interval {other:?}: expected day, week, month or year"),
                    ));
                }
                (_, "") => Interval::Month,
                (ty, _) => {
                    return Err(EngineError::invalid(
                        path("interval"),
                        format!(
                            "interval applies to TIMESTAMP fields; {:?} is {}",
                            req.field,
                            ty.name()
                        ),
                    ));
                }
            };
            if !req.ranges.is_empty() {
                if !matches!(def.ty, FieldType::Integer | FieldType::Float) {
                    return Err(EngineError::invalid(
                        path("ranges"),
                        format!(
                            "ranges apply to INTEGER and FLOAT fields; {:?} is {}",
                            req.field,
                            def.ty.name()
                        ),
                    ));
                }
                if req.ranges.len() > MAX_RANGES {
                    return Err(EngineError::invalid(
                        path("ranges"),
                        format!(
                            "{} ranges requested; the limit is {MAX_RANGES}",
                            req.ranges.len()
                        ),
                    ));
                }
                for (j, (from, to)) in req.ranges.iter().enumerate() {
                    let finite = from.is_none_or(f64::is_finite) && to.is_none_or(f64::is_finite);
                    let ordered = match (from, to) {
                        (Some(from), Some(to)) => from < to,
                        _ => true,
                    };
                    if !finite || !ordered {
                        return Err(EngineError::invalid(
                            format!("facets[{i}].ranges[{j}]"),
                            "a range needs finite bounds with from < to",
                        ));
                    }
                }
            }
            Ok(Facet {
                field: req.field.clone(),
                ty: def.ty,
                size,
                interval,
                ranges: req.ranges.clone(),
            })
        })
        .collect()
}

/// Counts the values of every facet over all matching documents.
pub struct FacetCollector {
    pub facets: Vec<Facet>,
}

/// Counts per term ordinal: dense for the usual keyword field, a map past
/// [`DENSE_ORDS`] distinct values (a per-query vector that size would cost more
/// than it saves).
enum OrdCounts {
    Dense(Vec<u32>),
    Sparse(HashMap<u64, u64>),
}

/// The most distinct values counted in a dense vector.
const DENSE_ORDS: usize = 1 << 16;

enum Source {
    Str(Option<StrColumn>, OrdCounts),
    Int(Column<i64>),
    Float(Column<f64>),
    Bool(Column<bool>),
    Date(Column<tantivy::DateTime>, Interval),
    /// Counts per range, in request order.
    Ranges(Column<f64>, Vec<(Option<f64>, Option<f64>)>, Vec<u64>),
    IntRanges(Column<i64>, Vec<(Option<f64>, Option<f64>)>, Vec<u64>),
}

pub struct FacetSegmentCollector {
    sources: Vec<(Source, HashMap<String, u64>)>,
    /// Matching documents not counted yet: keyword values are read a block at a
    /// time (one call into the column per block rather than an iterator per
    /// document), as tantivy's own term aggregation does.
    pending: Vec<DocId>,
    /// Buffers of [`Self::flush`], kept between blocks.
    row_docs: Vec<DocId>,
    rows: Vec<u32>,
    ords: Vec<u64>,
}

/// Documents per block of [`FacetSegmentCollector::flush`].
const BLOCK: usize = 64;

impl Collector for FacetCollector {
    type Fruit = Vec<FacetCounts>;
    type Child = FacetSegmentCollector;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let fast = reader.fast_fields();
        let sources = self
            .facets
            .iter()
            .map(|f| {
                let source = match f.ty {
                    // Integers compare with the bounds as f64: exact within ±2^53,
                    // which is all an INTEGER field takes.
                    FieldType::Integer if !f.ranges.is_empty() => Source::IntRanges(
                        fast.i64(&f.field)?,
                        f.ranges.clone(),
                        vec![0; f.ranges.len()],
                    ),
                    FieldType::Float if !f.ranges.is_empty() => Source::Ranges(
                        fast.f64(&f.field)?,
                        f.ranges.clone(),
                        vec![0; f.ranges.len()],
                    ),
                    FieldType::Integer => Source::Int(fast.i64(&f.field)?),
                    FieldType::Float => Source::Float(fast.f64(&f.field)?),
                    FieldType::Boolean => Source::Bool(fast.bool(&f.field)?),
                    FieldType::Timestamp => Source::Date(fast.date(&f.field)?, f.interval),
                    FieldType::Keyword | FieldType::Text => {
                        let column = fast.str(&f.field)?;
                        let terms = column.as_ref().map_or(0, |c| c.num_terms());
                        let counts = if terms <= DENSE_ORDS {
                            OrdCounts::Dense(vec![0; terms])
                        } else {
                            OrdCounts::Sparse(HashMap::new())
                        };
                        Source::Str(column, counts)
                    }
                };
                Ok((source, HashMap::new()))
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(FacetSegmentCollector {
            sources,
            pending: Vec::with_capacity(BLOCK),
            row_docs: Vec::new(),
            rows: Vec::new(),
            ords: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<HashMap<String, u64>>>,
    ) -> tantivy::Result<Vec<FacetCounts>> {
        let mut totals: Vec<HashMap<String, u64>> = vec![HashMap::new(); self.facets.len()];
        for fruit in fruits {
            for (total, counts) in totals.iter_mut().zip(fruit) {
                for (value, count) in counts {
                    *total.entry(value).or_default() += count;
                }
            }
        }
        Ok(self
            .facets
            .iter()
            .zip(totals)
            .map(|(facet, counts)| {
                let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
                if !facet.ranges.is_empty() {
                    // Ranges in request order, each once (a repeated range counts once).
                    let mut seen = std::collections::HashSet::new();
                    buckets = facet
                        .ranges
                        .iter()
                        .map(|r| range_label(*r))
                        .filter(|label| seen.insert(label.clone()))
                        .map(|label| {
                            let count = buckets
                                .iter()
                                .find(|(l, _)| *l == label)
                                .map_or(0, |(_, c)| *c);
                            (label, count)
                        })
                        .collect();
                } else if facet.ty == FieldType::Timestamp {
                    // RFC 3339 in UTC with a fixed width sorts in time order for years 0–9999.
                    buckets.sort();
                } else {
                    buckets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    buckets.truncate(facet.size);
                }
                FacetCounts {
                    field: facet.field.clone(),
                    buckets,
                }
            })
            .collect())
    }
}

impl SegmentCollector for FacetSegmentCollector {
    type Fruit = Vec<HashMap<String, u64>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.pending.push(doc);
        if self.pending.len() == BLOCK {
            self.flush();
        }
    }

    fn harvest(mut self) -> Self::Fruit {
        self.flush();
        self.sources
            .into_iter()
            .map(|(source, mut counts)| {
                match source {
                    Source::Str(Some(column), ords) => {
                        // One pass over the dictionary for all the ordinals seen.
                        let mut seen: Vec<(u64, u64)> = match ords {
                            OrdCounts::Dense(dense) => dense
                                .into_iter()
                                .enumerate()
                                .filter(|(_, n)| *n > 0)
                                .map(|(ord, n)| (ord as u64, u64::from(n)))
                                .collect(),
                            OrdCounts::Sparse(sparse) => sparse.into_iter().collect(),
                        };
                        seen.sort_unstable();
                        let ords: Vec<u64> = seen.iter().map(|(ord, _)| *ord).collect();
                        let mut found = seen.iter().map(|(_, n)| *n);
                        let _ = column.dictionary().sorted_ords_to_term_cb(&ords, |term| {
                            if let Some(n) = found.next() {
                                *counts
                                    .entry(String::from_utf8_lossy(term).into_owned())
                                    .or_default() += n;
                            }
                        });
                    }
                    Source::Ranges(_, ranges, range_counts)
                    | Source::IntRanges(_, ranges, range_counts) => {
                        for (range, count) in ranges.iter().zip(range_counts) {
                            counts.insert(range_label(*range), count);
                        }
                    }
                    _ => {}
                }
                counts
            })
            .collect()
    }
}

impl FacetSegmentCollector {
    /// Counts the pending documents.
    fn flush(&mut self) {
        let docs = &self.pending;
        for (source, counts) in &mut self.sources {
            match source {
                Source::Str(Some(column), ords) => {
                    let column = column.ords();
                    self.row_docs.clear();
                    self.rows.clear();
                    column
                        .index
                        .docids_to_rowids(docs, &mut self.row_docs, &mut self.rows);
                    self.ords.clear();
                    self.ords.resize(self.rows.len(), 0);
                    column.values.get_vals(&self.rows, &mut self.ords);
                    for &ord in &self.ords {
                        match ords {
                            OrdCounts::Dense(counts) => {
                                if let Some(count) = counts.get_mut(ord as usize) {
                                    *count += 1;
                                }
                            }
                            OrdCounts::Sparse(counts) => *counts.entry(ord).or_default() += 1,
                        }
                    }
                }
                Source::Str(None, _) => {}
                other => {
                    for &doc in docs {
                        count_doc(other, counts, doc);
                    }
                }
            }
        }
        self.pending.clear();
    }
}

/// Counts one document's values of a source other than a keyword one (those
/// are counted a block at a time in [`FacetSegmentCollector::flush`]).
fn count_doc(source: &mut Source, counts: &mut HashMap<String, u64>, doc: DocId) {
    match source {
        Source::Str(..) => {}
        Source::Int(c) => {
            for v in c.values_for_doc(doc) {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        }
        Source::Float(c) => {
            for v in c.values_for_doc(doc) {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        }
        Source::Bool(c) => {
            for v in c.values_for_doc(doc) {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        }
        Source::Ranges(c, ranges, range_counts) => {
            for v in c.values_for_doc(doc) {
                count_ranges(v, ranges, range_counts);
            }
        }
        Source::IntRanges(c, ranges, range_counts) => {
            for v in c.values_for_doc(doc) {
                count_ranges(v as f64, ranges, range_counts);
            }
        }
        Source::Date(c, interval) => {
            for v in c.values_for_doc(doc) {
                let start = bucket_start(v.into_timestamp_micros(), *interval);
                *counts.entry(timestamp::format(start)).or_default() += 1;
            }
        }
    }
}

fn count_ranges(value: f64, ranges: &[(Option<f64>, Option<f64>)], counts: &mut [u64]) {
    for ((from, to), count) in ranges.iter().zip(counts.iter_mut()) {
        if from.is_none_or(|from| value >= from) && to.is_none_or(|to| value < to) {
            *count += 1;
        }
    }
}

/// `from..to`, an open bound left empty.
fn range_label((from, to): (Option<f64>, Option<f64>)) -> String {
    let bound = |b: Option<f64>| b.map(|v| v.to_string()).unwrap_or_default();
    format!("{}..{}", bound(from), bound(to))
}

/// The start of the calendar bucket holding `micros`, in microseconds.
fn bucket_start(micros: i64, interval: Interval) -> i64 {
    let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000) else {
        return micros;
    };
    let date = dt.date();
    let start: Date = match interval {
        Interval::Day => date,
        Interval::Week => date - Duration::days(date.weekday().number_days_from_monday() as i64),
        Interval::Month => date.replace_day(1).unwrap_or(date),
        Interval::Year => Date::from_calendar_date(date.year(), Month::January, 1).unwrap_or(date),
    };
    (start.midnight().assume_utc().unix_timestamp_nanos() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_buckets() {
        let check = |input: &str, interval, want: &str| {
            let micros = timestamp::parse(input).unwrap();
            assert_eq!(
                timestamp::format(bucket_start(micros, interval)),
                want,
                "{input} {interval:?}"
            );
        };
        check(
            "2021-08-07T13:00:00Z",
            Interval::Day,
            "2021-08-07T00:00:00Z",
        );
        check(
            "2021-08-07T13:00:00Z",
            Interval::Week,
            "2021-08-02T00:00:00Z",
        );
        check(
            "2021-08-02T00:00:00Z",
            Interval::Week,
            "2021-08-02T00:00:00Z",
        );
        check(
            "2021-08-07T13:00:00Z",
            Interval::Month,
            "2021-08-01T00:00:00Z",
        );
        check(
            "2021-08-07T13:00:00Z",
            Interval::Year,
            "2021-01-01T00:00:00Z",
        );
        check(
            "1969-12-31T23:00:00Z",
            Interval::Month,
            "1969-12-01T00:00:00Z",
        );
    }

    /// Keyword values are counted a block of documents at a time: counts over
    /// several blocks, with documents missing the field or holding several
    /// values, and next to a per-document (integer) facet.
    #[tokio::test]
    async fn counts_across_blocks_match_a_count_by_hand() {
        use crate::collection::Collection;
        use crate::names::{CollectionName, DocId};
        use crate::search::page_token::PageTokens;
        use crate::search::pins::Pins;
        use crate::search::{SearchRequest, search};

        const DOCS: usize = 1000;
        let name = CollectionName::parse("facets", "name").unwrap();
        let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
        let mut tags_by_hand: HashMap<String, u64> = HashMap::new();
        let mut n_by_hand: HashMap<String, u64> = HashMap::new();
        for i in 0..DOCS {
            // Every third document has no tags, the others two or three of nine.
            let tags: Vec<String> = (0..i % 3 + 1)
                .filter(|_| i % 3 != 0)
                .map(|k| format!("t{}", (i + k * 4) % 9))
                .collect();
            let title = if i % 2 == 0 { "even rust" } else { "odd" };
            if i % 2 == 0 {
                for tag in &tags {
                    *tags_by_hand.entry(tag.clone()).or_default() += 1;
                }
                *n_by_hand.entry((i % 5).to_string()).or_default() += 1;
            }
            let fields = serde_json::json!({"title": title, "tags": tags, "n": i % 5});
            let id = DocId::parse(&format!("d{i:04}"), "id").unwrap();
            collection
                .create(Some(id), fields.as_object().unwrap().clone(), false, "")
                .await
                .unwrap();
        }
        collection.refresh().await.unwrap();
        let facet = |field: &str| FacetRequest {
            field: field.into(),
            size: 100,
            interval: String::new(),
            ranges: Vec::new(),
        };
        let request = SearchRequest {
            query: "rust".into(),
            facets: vec![facet("tags"), facet("n")],
            ..Default::default()
        };
        let found = search(&collection, &PageTokens::new(), &Pins::default(), &request).unwrap();
        assert_eq!(found.total_size, (DOCS / 2) as u64);
        let counted = |i: usize| -> HashMap<String, u64> {
            found.facets[i].buckets.iter().cloned().collect()
        };
        assert_eq!(tags_by_hand.len(), 9);
        assert_eq!(counted(0), tags_by_hand);
        assert_eq!(counted(1), n_by_hand);

        // Without hits: the same total and facets, and nothing ranked.
        let request = SearchRequest {
            skip_hits: true,
            ..request
        };
        let counts = search(&collection, &PageTokens::new(), &Pins::default(), &request).unwrap();
        assert!(counts.hits.is_empty() && counts.next_page_token.is_empty());
        assert_eq!(counts.total_size, found.total_size);
        assert_eq!(counts.facets, found.facets);
    }
}
