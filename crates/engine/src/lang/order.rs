//! `order_by`: parsing the sort keys and the collector that keeps the top
//! documents by them. tantivy's `TopDocs` sorts on one fast field; several keys
//! mixing fields, `_score` and a tie-break on the id need this small collector.

use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::{self, AtomicU64};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::error::{EngineError, Result};
use crate::index::ids::{IdCache, SegmentIds};
use crate::schema::{CollectionSchema, FieldType};

/// One sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    /// `None` is relevance (`_score`).
    pub field: Option<(String, FieldType)>,
    pub descending: bool,
}

/// Parses `order_by` against the schema. Empty means relevance.
pub fn parse(order_by: &str, schema: &CollectionSchema) -> Result<Vec<SortKey>> {
    let mut keys: Vec<SortKey> = Vec::new();
    if order_by.trim().is_empty() {
        return Ok(keys);
    }
    for part in order_by.split(',') {
        let words: Vec<&str> = part.split_whitespace().collect();
        // `asc` and `desc` in any case (`price DESC`), as SQL and AIP-132 users write them.
        let direction = |word: &str| match word.to_ascii_lowercase().as_str() {
            "asc" => Some(false),
            "desc" => Some(true),
            _ => None,
        };
        let (name, descending) = match words.as_slice() {
            [name] => (*name, None),
            [name, word] if direction(word).is_some() => (*name, direction(word)),
            _ => {
                return Err(EngineError::invalid(
                    "order_by",
                    format!(
                        "invalid sort key {:?}: expected `field`, `field asc` or `field desc`",
                        part.trim()
                    ),
                ));
            }
        };
        let key = if name == "_score" {
            SortKey {
                field: None,
                descending: descending.unwrap_or(true),
            }
        } else {
            let (def, _) = schema.field(name).ok_or_else(|| {
                EngineError::invalid("order_by", format!("unknown field {name:?}"))
            })?;
            if !def.sortable {
                return Err(EngineError::invalid(
                    "order_by",
                    format!("field {name:?} is not sortable; declare it with sortable: true"),
                ));
            }
            SortKey {
                field: Some((name.to_owned(), def.ty)),
                descending: descending.unwrap_or(false),
            }
        };
        if keys.iter().any(|k| k.field == key.field) {
            return Err(EngineError::invalid(
                "order_by",
                format!("{name:?} is listed twice"),
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// A sort value of one document for one key.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum SortValue {
    Missing,
    Number(f64),
    /// A string's ordinal in one segment's dictionary: ordinals sort like the strings
    /// within a segment, and are turned into [`SortValue::Text`] before segments merge.
    Ord(u64),
    Text(String),
}

/// A document's sort values, its id for the tie-break, its score and address.
#[derive(Clone, Debug)]
pub struct Sorted {
    pub values: Vec<SortValue>,
    /// The document id; within a segment, before harvest, its dictionary ordinal
    /// (`id_ord`) stands in and this is empty.
    pub id: String,
    id_ord: u64,
    pub score: Score,
    pub address: DocAddress,
}

fn compare(keys: &[SortKey], a: &Sorted, b: &Sorted) -> Ordering {
    compare_values(keys, &a.values, &b.values).then_with(|| a.id.cmp(&b.id))
}

/// [`compare`] within one segment, on ordinals.
fn compare_in_segment(keys: &[SortKey], a: &Sorted, b: &Sorted) -> Ordering {
    compare_values(keys, &a.values, &b.values).then_with(|| a.id_ord.cmp(&b.id_ord))
}

/// Compares sort values only (no tie-break).
fn compare_values(keys: &[SortKey], a: &[SortValue], b: &[SortValue]) -> Ordering {
    for (key, (va, vb)) in keys.iter().zip(a.iter().zip(b)) {
        // Missing values sort last whatever the direction.
        let ord = match (va, vb) {
            (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
            (SortValue::Missing, _) => return Ordering::Greater,
            (_, SortValue::Missing) => return Ordering::Less,
            (a, b) => {
                let ord = a.partial_cmp(b).unwrap_or(Ordering::Equal);
                if key.descending { ord.reverse() } else { ord }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Keeps the first `limit` documents by `keys`.
pub struct SortCollector {
    keys: Vec<SortKey>,
    limit: usize,
    ids: Arc<IdCache>,
    /// In relevance order, the best known score that `limit` documents of the
    /// segments collected so far reach.
    bound: Arc<ScoreBound>,
}

impl SortCollector {
    pub fn new(keys: Vec<SortKey>, limit: usize, ids: Arc<IdCache>) -> SortCollector {
        SortCollector {
            keys,
            limit,
            ids,
            bound: Arc::default(),
        }
    }
}

/// A score that `limit` documents already collected reach, shared by the
/// segments of one search: a document scoring below it cannot make the page, in
/// whichever segment it is. Without it each segment's collector starts from
/// nothing and keeps its first 2 × `limit` documents before it can skip any;
/// with the many small segments of a live index that was most of its work.
#[derive(Default)]
struct ScoreBound(
    /// 0 while unknown, else `1 << 32 | score.to_bits()`: for scores that are
    /// not negative the bits order as the numbers do, so `fetch_max` keeps the
    /// highest.
    AtomicU64,
);

impl ScoreBound {
    fn get(&self) -> Option<Score> {
        let raw = self.0.load(atomic::Ordering::Relaxed);
        (raw != 0).then(|| Score::from_bits(raw as u32))
    }

    fn raise(&self, score: Score) {
        // -0.0 and NaN would break the order of the bits.
        if score >= 0.0 && score.is_sign_positive() {
            self.0.fetch_max(
                1 << 32 | u64::from(score.to_bits()),
                atomic::Ordering::Relaxed,
            );
        }
    }
}

enum KeyReader {
    Score,
    Number(Column<f64>),
    Int(Column<i64>),
    Bool(Column<bool>),
    Date(Column<tantivy::DateTime>),
    Str(Option<StrColumn>),
}

pub struct SortSegmentCollector {
    keys: Vec<SortKey>,
    readers: Vec<KeyReader>,
    ids: Arc<SegmentIds>,
    /// Reused for each collected document's values.
    scratch: Vec<SortValue>,
    /// Relevance order alone (`_score desc`), the usual case: below the
    /// threshold's score a document is skipped without computing anything.
    score_only: bool,
    threshold_score: Option<Score>,
    bound: Arc<ScoreBound>,
    segment: SegmentOrdinal,
    limit: usize,
    docs: Vec<Sorted>,
    /// Value buffers of trimmed documents, reused for the next ones kept.
    spare: Vec<Vec<SortValue>>,
    /// The values of the worst document kept at the last trim.
    threshold: Option<Vec<SortValue>>,
}

impl Collector for SortCollector {
    type Fruit = Vec<Sorted>;
    type Child = SortSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        if crate::search::pool::cancelled() {
            return Err(tantivy::TantivyError::InternalError(
                "the request was cancelled".into(),
            ));
        }
        let fast = reader.fast_fields();
        let readers = self
            .keys
            .iter()
            .map(|key| {
                Ok(match &key.field {
                    None => KeyReader::Score,
                    Some((name, FieldType::Integer)) => KeyReader::Int(fast.i64(name)?),
                    Some((name, FieldType::Float)) => KeyReader::Number(fast.f64(name)?),
                    Some((name, FieldType::Boolean)) => KeyReader::Bool(fast.bool(name)?),
                    Some((name, FieldType::Timestamp)) => KeyReader::Date(fast.date(name)?),
                    Some((name, _)) => KeyReader::Str(fast.str(name)?),
                })
            })
            .collect::<tantivy::Result<_>>()?;
        let score_only = matches!(
            self.keys.as_slice(),
            [SortKey {
                field: None,
                descending: true
            }]
        );
        Ok(SortSegmentCollector {
            keys: self.keys.clone(),
            readers,
            ids: self.ids.ids(reader)?,
            scratch: Vec::with_capacity(self.keys.len()),
            score_only,
            threshold_score: if score_only { self.bound.get() } else { None },
            bound: self.bound.clone(),
            segment,
            limit: self.limit,
            docs: Vec::new(),
            spare: Vec::new(),
            threshold: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.keys.iter().any(|k| k.field.is_none())
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Sorted>>) -> tantivy::Result<Vec<Sorted>> {
        let mut all: Vec<Sorted> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| compare(&self.keys, a, b));
        all.truncate(self.limit);
        Ok(all)
    }
}

fn ord_to_string(column: &Option<StrColumn>, ord: u64) -> Option<String> {
    let mut out = String::new();
    column
        .as_ref()?
        .ord_to_str(ord, &mut out)
        .ok()?
        .then_some(out)
}

impl SortSegmentCollector {
    /// Keeps the best `limit` documents (`collect` keeps none when it is 0) and
    /// raises the threshold to the worst of them.
    fn trim(&mut self) {
        let keys = &self.keys;
        let last = self.limit - 1;
        self.docs
            .select_nth_unstable_by(last, |a, b| compare_in_segment(keys, a, b));
        self.spare
            .extend(self.docs.drain(self.limit..).map(|d| d.values));
        let worst = &self.docs[last];
        match &mut self.threshold {
            Some(threshold) => threshold.clone_from(&worst.values),
            None => self.threshold = Some(worst.values.clone()),
        }
        if self.score_only {
            // The bound may be above this segment's own worst kept score.
            self.bound.raise(worst.score);
            self.threshold_score = self.bound.get();
        }
    }
}

impl SegmentCollector for SortSegmentCollector {
    type Fruit = Vec<Sorted>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.limit == 0 {
            return;
        }
        if self.score_only && self.threshold_score.is_some_and(|t| score < t) {
            return;
        }
        // Values are computed into a reused buffer: most documents fall below the
        // threshold and must not cost an allocation.
        let mut values = std::mem::take(&mut self.scratch);
        values.clear();
        values.extend(self.readers.iter().map(|reader| {
            match reader {
                KeyReader::Score => SortValue::Number(score as f64),
                KeyReader::Number(c) => c.first(doc).map_or(SortValue::Missing, SortValue::Number),
                KeyReader::Int(c) => c
                    .first(doc)
                    .map_or(SortValue::Missing, |v| SortValue::Number(v as f64)),
                KeyReader::Bool(c) => c.first(doc).map_or(SortValue::Missing, |v| {
                    SortValue::Number(if v { 1.0 } else { 0.0 })
                }),
                KeyReader::Date(c) => c.first(doc).map_or(SortValue::Missing, |v| {
                    SortValue::Number(v.into_timestamp_micros() as f64)
                }),
                KeyReader::Str(c) => c
                    .as_ref()
                    .and_then(|c| c.term_ords(doc).next())
                    .map_or(SortValue::Missing, SortValue::Ord),
            }
        }));
        // Once the buffer has been trimmed, a document worse than the last kept one
        // cannot make the page: skip it before reading its id.
        if let Some(threshold) = &self.threshold {
            if compare_values(&self.keys, &values, threshold) == Ordering::Greater {
                self.scratch = values;
                return;
            }
        }
        let mut kept = self.spare.pop().unwrap_or_default();
        kept.clone_from(&values);
        self.docs.push(Sorted {
            values: kept,
            id: String::new(),
            id_ord: self.ids.ord(doc).unwrap_or(u64::MAX),
            score,
            address: DocAddress::new(self.segment, doc),
        });
        self.scratch = values;
        // Keep memory bounded: when the buffer doubles, keep the best `limit`
        // (a selection, not a sort: their order is settled at harvest).
        if self.docs.len() >= self.limit.max(64) * 2 {
            self.trim();
        }
    }

    fn harvest(mut self) -> Vec<Sorted> {
        let keys = &self.keys;
        self.docs.sort_by(|a, b| compare_in_segment(keys, a, b));
        self.docs.truncate(self.limit);
        if self.score_only && self.limit > 0 && self.docs.len() == self.limit {
            self.bound.raise(self.docs[self.limit - 1].score);
        }
        // Only the kept documents pay for dictionary lookups.
        for sorted in &mut self.docs {
            sorted.id = self
                .ids
                .text(sorted.id_ord)
                .map(str::to_string)
                .unwrap_or_default();
            for (value, reader) in sorted.values.iter_mut().zip(&self.readers) {
                if let (SortValue::Ord(ord), KeyReader::Str(column)) = (&*value, reader) {
                    *value =
                        ord_to_string(column, *ord).map_or(SortValue::Missing, SortValue::Text);
                }
            }
        }
        self.docs
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::collection::Collection;
    use crate::names::{CollectionName, DocId};
    use crate::search::page_token::PageTokens;
    use crate::search::pins::Pins;
    use crate::search::{SearchRequest, search};

    /// Enough documents that each segment's collector trims its buffer many
    /// times, with many ties on the sort value and on the score.
    const DOCS: usize = 700;

    /// The documents, made visible every `refresh_every`; each refresh writes
    /// segments, which are not merged.
    async fn collection(refresh_every: usize) -> Arc<Collection> {
        let name = CollectionName::parse("sorting", "name").unwrap();
        let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
        collection.stop_merges();
        for i in 0..DOCS {
            // Title lengths give "rust" different scores; `n` has 7 values.
            let title = ["rust", "rust and more", "rust and a good deal more"][i % 3];
            let fields = json!({"title": title, "n": i % 7});
            let id = DocId::parse(&format!("d{:04}", (i * 389) % DOCS), "id").unwrap();
            let fields = fields.as_object().unwrap().clone();
            collection
                .create(Some(id), fields, false, "")
                .await
                .unwrap();
            if (i + 1) % refresh_every == 0 {
                collection.refresh().await.unwrap();
            }
        }
        collection.refresh().await.unwrap();
        collection
    }

    /// Every page of `query` ordered by `order_by`: (id, n, score) per hit.
    fn all_pages(collection: &Collection, query: &str, order_by: &str) -> Vec<(String, i64, f32)> {
        let (tokens, pins) = (PageTokens::new(), Pins::default());
        let mut request = SearchRequest {
            query: query.into(),
            order_by: order_by.into(),
            page_size: 45,
            ..Default::default()
        };
        let mut hits = Vec::new();
        loop {
            let page = search(collection, &tokens, &pins, &request).unwrap();
            assert_eq!(page.total_size, DOCS as u64);
            hits.extend(page.hits.into_iter().map(|hit| {
                let n = hit.document.fields["n"].as_i64().unwrap();
                (hit.document.id.to_string(), n, hit.score)
            }));
            if page.next_page_token.is_empty() {
                return hits;
            }
            request.page_token = page.next_page_token;
        }
    }

    fn assert_each_id_once(hits: &[(String, i64, f32)]) {
        let mut ids: Vec<&str> = hits.iter().map(|(id, _, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), DOCS);
        assert_eq!(hits.len(), DOCS);
    }

    #[tokio::test]
    async fn a_field_order_breaks_ties_by_id_across_trims_and_pages() {
        let collection = collection(DOCS).await;
        let hits = all_pages(&collection, "", "n desc");
        assert_each_id_once(&hits);
        let mut expected = hits.clone();
        expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let order =
            |h: &[(String, i64, f32)]| h.iter().map(|x| (x.0.clone(), x.1)).collect::<Vec<_>>();
        assert_eq!(order(&hits), order(&expected));
    }

    #[tokio::test]
    async fn relevance_breaks_ties_by_id_across_trims_and_pages() {
        let collection = collection(DOCS).await;
        let hits = all_pages(&collection, "rust", "");
        assert_each_id_once(&hits);
        let distinct_scores = {
            let mut scores: Vec<u32> = hits.iter().map(|h| h.2.to_bits()).collect();
            scores.sort_unstable();
            scores.dedup();
            scores.len()
        };
        assert!(distinct_scores > 1, "distinct scores as well as ties");
        for pair in hits.windows(2) {
            let ((a, _, sa), (b, _, sb)) = (&pair[0], &pair[1]);
            assert!(
                sa > sb || (sa == sb && a < b),
                "{a} ({sa}) before {b} ({sb})"
            );
        }
    }

    /// Segments share the score their collected pages reach; a document tied
    /// with it must still be considered (ties go to the smaller id).
    #[tokio::test]
    async fn relevance_across_many_segments_matches_one_segment() {
        let one = all_pages(&*collection(DOCS).await, "rust", "");
        let many = collection(2).await;
        let segments = many.view().searcher.segment_readers().len();
        assert!(segments >= DOCS / 2, "{segments} segments");
        assert_eq!(all_pages(&many, "rust", ""), one);
    }
}
