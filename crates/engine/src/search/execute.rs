//! Running a search on a collection's published view: query and filter, order,
//! paging, facets and highlights.

use std::sync::Arc;

use tantivy::collector::Count;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query};
use tantivy::{DocAddress, Score};

use crate::budget::ResponseBudget;
use crate::collection::{Collection, View};
use crate::document::Document;
use crate::error::{EngineError, Result};
use crate::lang::filter;
use crate::lang::order::{self, SortCollector};
use crate::lang::query::{BlendedStatistics, Builder, MarkKind, QueryOptions};
use crate::schema::FieldType;
use crate::search::facet::{self, FacetCollector, FacetCounts, FacetRequest};
use crate::search::highlight::{self, FieldHighlight, Style};
use crate::search::page_token::{PageTokens, Position};
use crate::search::pins::Pins;
use crate::search::spelling;

/// The default page size of searches and lists.
pub const DEFAULT_PAGE_SIZE: usize = 10;
/// The largest page size; larger requests are coerced down (AIP-158).
pub const MAX_PAGE_SIZE: usize = 1000;
/// The default snippet length in characters.
pub const DEFAULT_FRAGMENT_SIZE: usize = 150;
/// The longest snippet in characters.
pub const MAX_FRAGMENT_SIZE: usize = 10_000;
/// The most snippets per field.
pub const MAX_FRAGMENTS: usize = 10;

/// Highlighting options.
#[derive(Clone, Debug, PartialEq)]
pub struct Highlight {
    /// Empty means every TEXT field.
    pub fields: Vec<String>,
    pub pre_tag: String,
    pub post_tag: String,
    /// The longest snippet in characters (at most [`MAX_FRAGMENT_SIZE`]).
    pub fragment_size: usize,
    /// The most snippets per field (at most [`MAX_FRAGMENTS`]).
    pub max_fragments: usize,
}

/// A search request in engine terms.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    pub query: String,
    pub filter: String,
    pub order_by: String,
    /// The most hits (at most [`MAX_PAGE_SIZE`]).
    pub page_size: usize,
    pub page_token: String,
    pub highlight: Option<Highlight>,
    pub facets: Vec<FacetRequest>,
    /// Syntax, default operator, fields and typo tolerance of `query`.
    pub options: QueryOptions,
    /// Explain each hit's score.
    pub explain: bool,
    /// Hits carry their documents' metadata without their fields (the read
    /// mask names none): no stored document is decompressed, and none counts
    /// against the response budget. Highlighting still reads the fields.
    pub without_fields: bool,
    /// Only the total and the facets: no hit is ranked or read.
    pub skip_hits: bool,
    /// Narrows the hits and the facets of the fields it does not name.
    pub post_filter: String,
}

/// One hit.
#[derive(Clone, Debug)]
pub struct Hit {
    pub score: Score,
    pub document: Document,
    /// Per field with a match: its snippets and match offsets.
    pub highlights: Vec<(String, FieldHighlight)>,
    /// How the score was computed, when asked for.
    pub explanation: Option<Explanation>,
}

/// A score and how it was computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub value: f32,
    pub description: String,
    pub details: Vec<Explanation>,
}

/// A page of results.
#[derive(Clone, Debug)]
pub struct SearchResults {
    pub hits: Vec<Hit>,
    pub total_size: u64,
    pub next_page_token: String,
    pub facets: Vec<FacetCounts>,
}

/// The most searches one batch may hold.
pub const MAX_BATCH_SEARCHES: usize = 16;

/// Runs `requests` on one view of `collection` (the latest), in order: their
/// counts agree with each other whatever writes go on. A page token is refused
/// (a later page reads the view its token pinned); a failure names its search
/// (`searches[i]`).
pub fn search_batch(
    collection: &Collection,
    tokens: &PageTokens,
    pins: &Pins,
    requests: &[SearchRequest],
) -> Result<Vec<SearchResults>> {
    if requests.len() > MAX_BATCH_SEARCHES {
        return Err(EngineError::invalid(
            "searches",
            format!(
                "{} searches; a batch holds at most {MAX_BATCH_SEARCHES}",
                requests.len()
            ),
        ));
    }
    let view = collection.view();
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let named = |err: EngineError| match err {
                EngineError::Syntax {
                    field,
                    position,
                    message,
                } => EngineError::invalid(
                    format!("searches[{i}].{field}"),
                    format!("{field}: {message} at position {position}"),
                ),
                other => other.within(&format!("searches[{i}]")),
            };
            if !request.page_token.is_empty() {
                return Err(named(EngineError::invalid(
                    "page_token",
                    "a batch runs first pages only; follow next_page_token with Search",
                )));
            }
            search_in(collection, tokens, pins, request, Some(view.clone())).map_err(named)
        })
        .collect()
}

/// Runs `request` on `collection`'s latest view, or for a later page on the view
/// its page token pinned.
pub fn search(
    collection: &Collection,
    tokens: &PageTokens,
    pins: &Pins,
    request: &SearchRequest,
) -> Result<SearchResults> {
    search_in(collection, tokens, pins, request, None)
}

/// [`search`], on `first` for a first page when given.
fn search_in(
    collection: &Collection,
    tokens: &PageTokens,
    pins: &Pins,
    request: &SearchRequest,
    first: Option<Arc<View>>,
) -> Result<SearchResults> {
    let schema = collection.schema();
    let index = collection.index();
    let limit = request.page_size.clamp(1, MAX_PAGE_SIZE);
    let ranking = request.options.fingerprint_text();
    let fingerprint = PageTokens::fingerprint(&[
        collection.name().as_str(),
        &request.query,
        &request.filter,
        &request.order_by,
        &ranking,
        &request.post_filter,
    ]);
    let (offset, view) = match tokens.decode(&request.page_token, fingerprint)? {
        None => (0, first.unwrap_or_else(|| collection.view())),
        Some(position) => {
            let view = pins.get(position.view)?;
            if view.collection != collection.uid() {
                return Err(EngineError::PageTokenExpired(format!(
                    "collection {} was deleted and created again since this page token was \
                     issued; start again from the first page",
                    collection.name()
                )));
            }
            let offset = usize::try_from(position.offset)
                .map_err(|_| EngineError::invalid("page_token", "invalid page token"))?;
            (offset, view)
        }
    };

    let searcher = &view.searcher;
    let mut builder = Builder::new(index, schema, searcher, &request.options)?;
    let text_query = builder.build(&request.query)?;
    let marks = builder.marks();
    let filter = filter::parse(&request.filter)?
        .map(|expr| {
            if let Some((name, position)) = filter::undeclared(&expr, schema)
                && stored_not_declared(&view, name)
            {
                return Err(EngineError::invalid(
                    "filter",
                    format!(
                        "field {name:?} (at position {position}) is in the documents but not \
                         declared in the collection's fields, so it is stored, not indexed: \
                         declare it with filterable: true when creating the collection"
                    ),
                ));
            }
            filter::build(index, schema, &expr)
        })
        .transpose()?;
    let keys = order::parse(&request.order_by, schema)?;
    let facets = facet::validate(&request.facets, schema)?;
    let highlight = request
        .highlight
        .as_ref()
        .map(|h| highlight_plan(collection, h))
        .transpose()?;

    // The post filter's parts (its top-level ANDs), each with its query.
    let post_parts: Vec<(filter::Expr, Box<dyn Query>)> =
        match filter::parse(&request.post_filter).map_err(as_post_filter)? {
            None => Vec::new(),
            Some(filter::Expr::And(items)) => items,
            Some(expr) => vec![expr],
        }
        .into_iter()
        .map(|expr| {
            let query = filter::build(index, schema, &expr).map_err(as_post_filter)?;
            Ok((expr, query))
        })
        .collect::<Result<_>>()?;
    // Filters must not change scores: they match with a constant 0.
    let restricted = |query: &dyn Query, parts: &mut dyn Iterator<Item = &Box<dyn Query>>| {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, query.box_clone())];
        for part in parts {
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(part.box_clone(), 0.0)),
            ));
        }
        let query: Box<dyn Query> = if clauses.len() == 1 {
            clauses.remove(0).1
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        query
    };
    // Without a filter or a post filter, the text query itself (no copy of its tree).
    let with_filter: Option<Box<dyn Query>> =
        filter.map(|filter| restricted(&*text_query, &mut std::iter::once(&filter)));
    let filtered: &dyn Query = with_filter.as_deref().unwrap_or(&*text_query);
    let with_post_filter: Option<Box<dyn Query>> = (!post_parts.is_empty())
        .then(|| restricted(filtered, &mut post_parts.iter().map(|(_, q)| q)));
    let full_query: &dyn Query = with_post_filter.as_deref().unwrap_or(filtered);
    // A facet on a field the post filter names counts without that part, in a
    // pass of its own; the others count in the main pass.
    let (main_facets, apart): (Vec<_>, Vec<_>) =
        facets.into_iter().enumerate().partition(|(_, f)| {
            !post_parts
                .iter()
                .any(|(e, _)| filter::mentions(e, f.field()))
        });
    let main_order: Vec<usize> = main_facets.iter().map(|(i, _)| *i).collect();
    let facets_apart = |main: Vec<FacetCounts>| -> Result<Vec<FacetCounts>> {
        let mut all: Vec<(usize, FacetCounts)> = main_order.iter().copied().zip(main).collect();
        for (i, facet) in &apart {
            let field = facet.field();
            let query = restricted(
                filtered,
                &mut post_parts
                    .iter()
                    .filter(|(e, _)| !filter::mentions(e, field))
                    .map(|(_, q)| q),
            );
            let collector = FacetCollector {
                facets: vec![facet.clone()],
            };
            let counts = searcher.search(&*query, &collector)?;
            all.extend(counts.into_iter().map(|c| (*i, c)));
        }
        all.sort_by_key(|(i, _)| *i);
        let mut all: Vec<FacetCounts> = all.into_iter().map(|(_, c)| c).collect();
        for counts in &mut all {
            if let Some((_, field)) = schema.field(&counts.field) {
                spelling::spell(
                    searcher,
                    schema,
                    field,
                    counts.buckets.iter_mut().map(|(value, _)| value),
                )?;
            }
        }
        Ok(all)
    };

    let end = offset.saturating_add(limit);
    let facet_collector = FacetCollector {
        facets: main_facets.into_iter().map(|(_, f)| f).collect(),
    };
    // Relevance is `_score desc`: the sort collector breaks ties by id.
    let keys = if keys.is_empty() {
        vec![order::SortKey {
            field: None,
            descending: true,
        }]
    } else {
        keys
    };
    if request.skip_hits {
        // Neither collector scores, so tantivy matches without scoring.
        let (total, facets) = searcher.search(full_query, &(Count, facet_collector))?;
        return Ok(SearchResults {
            hits: Vec::new(),
            total_size: total as u64,
            next_page_token: String::new(),
            facets: facets_apart(facets)?,
        });
    }
    let sort = SortCollector::new(keys, end, collection.id_cache());
    let statistics = BlendedStatistics::new(searcher, schema);
    let (sorted, total, facet_counts) = searcher.search_with_statistics_provider(
        full_query,
        &(sort, Count, facet_collector),
        &statistics,
    )?;
    let facet_counts = facets_apart(facet_counts)?;
    let ranked: Vec<order::Sorted> = sorted.into_iter().skip(offset).take(limit).collect();

    let mut analyzers = match &highlight {
        Some((fields, _)) => fields
            .iter()
            .map(|(name, field)| {
                let analyzer = index.tokenizer_for_field(*field)?;
                let raw = index.tokenizer_for_field(schema.raw_field(*field))?;
                let field_marks: Vec<&MarkKind> = marks
                    .iter()
                    .filter(|m| m.field == *field)
                    .map(|m| &m.kind)
                    .collect();
                Ok((name.clone(), analyzer, raw, field_marks))
            })
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };

    // The page's documents must fit in one response: looked up once and
    // charged before any of them is decompressed.
    let read_fields = !request.without_fields || highlight.is_some();
    let mut budget = ResponseBudget::new("page_size");
    let mut stored = Vec::with_capacity(ranked.len());
    for sorted in &ranked {
        let (id, doc) = stored_of(&view, &sorted.id, sorted.address)?;
        if read_fields {
            budget.charge(doc)?;
        }
        stored.push((id.clone(), doc.clone()));
    }

    let mut hits = Vec::with_capacity(ranked.len());
    for (order::Sorted { score, address, .. }, (id, doc)) in ranked.into_iter().zip(stored) {
        if crate::search::pool::cancelled() {
            return Err(EngineError::Internal("the request was cancelled".into()));
        }
        let document = if read_fields {
            doc.to_document_cached(&id, &collection.documents)?
        } else {
            doc.to_document_without_fields(&id)
        };
        let mut highlights = Vec::new();
        if let Some((_, style)) = &highlight {
            for (name, analyzer, raw, field_marks) in &mut analyzers {
                let Some(serde_json::Value::String(text)) = document.fields.get(name.as_str())
                else {
                    continue;
                };
                if let Some(found) = highlight::highlight(text, analyzer, raw, field_marks, style)?
                {
                    highlights.push((name.clone(), found));
                }
            }
        }
        let explanation = if request.explain {
            Some(explain(collection, full_query, &statistics, address)?)
        } else {
            None
        };
        hits.push(Hit {
            score,
            document,
            highlights,
            explanation,
        });
    }
    let next = offset + hits.len();
    let next_page_token = if hits.len() == limit && next < total {
        pins.pin(&view);
        let position = Position {
            offset: next as u64,
            view: view.id,
        };
        tokens.encode(position, fingerprint)
    } else {
        String::new()
    };
    Ok(SearchResults {
        hits,
        total_size: total as u64,
        next_page_token,
        facets: facet_counts,
    })
}

/// An error of the post filter, named as such (the filter language names
/// `filter`).
fn as_post_filter(err: EngineError) -> EngineError {
    match err {
        EngineError::Syntax {
            field: "filter",
            position,
            message,
        } => EngineError::Syntax {
            field: "post_filter",
            position,
            message,
        },
        EngineError::InvalidArgument { field, message } if field == "filter" => {
            EngineError::InvalidArgument {
                field: "post_filter".into(),
                message,
            }
        }
        other => other,
    }
}

/// How many live documents are looked at for an undeclared key.
const UNDECLARED_SAMPLE: usize = 1000;

/// Whether some of the first live documents of `view` carry the key `name`
/// (a bounded look, on the error path only).
fn stored_not_declared(view: &View, name: &str) -> bool {
    view.docs
        .values()
        .take(UNDECLARED_SAMPLE)
        .any(|doc| doc.fields().is_ok_and(|fields| fields.contains_key(name)))
}

type HighlightPlan = (Vec<(String, tantivy::schema::Field)>, Style);

fn highlight_plan(collection: &Collection, h: &Highlight) -> Result<HighlightPlan> {
    let schema = collection.schema();
    let fields = if h.fields.is_empty() {
        schema
            .iter()
            .filter(|(def, _)| def.ty == FieldType::Text)
            .map(|(def, field)| (def.name.to_string(), field))
            .collect()
    } else {
        h.fields
            .iter()
            .enumerate()
            .map(|(i, name)| match schema.field(name) {
                Some((def, field)) if def.ty == FieldType::Text => Ok((name.clone(), field)),
                Some((def, _)) => Err(EngineError::invalid(
                    format!("highlight.fields[{i}]"),
                    format!(
                        "field {name:?} is {}; only TEXT fields are highlighted",
                        def.ty.name()
                    ),
                )),
                None => Err(EngineError::invalid(
                    format!("highlight.fields[{i}]"),
                    format!("unknown field {name:?}"),
                )),
            })
            .collect::<Result<_>>()?
    };
    let size = h.fragment_size.clamp(1, MAX_FRAGMENT_SIZE);
    let pre = if h.pre_tag.is_empty() {
        "<em>"
    } else {
        &h.pre_tag
    };
    let post = if h.post_tag.is_empty() {
        "</em>"
    } else {
        &h.post_tag
    };
    let max_fragments = h.max_fragments.clamp(1, MAX_FRAGMENTS);
    let style = Style {
        pre_tag: pre.to_owned(),
        post_tag: post.to_owned(),
        fragment_size: size,
        max_fragments,
    };
    Ok((fields, style))
}

/// A hit's stored document, by the id the sort collector read for it.
fn stored_of<'v>(
    view: &'v View,
    id: &str,
    address: DocAddress,
) -> Result<(
    &'v crate::names::DocId,
    &'v std::sync::Arc<crate::document::StoredDoc>,
)> {
    if id.is_empty() {
        return Err(EngineError::Internal(format!("no id for {address:?}")));
    }
    view.docs.get_key_value(&id_key(id)?).ok_or_else(|| {
        EngineError::Internal(format!("indexed document {id:?} missing from its view"))
    })
}

fn id_key(id: &str) -> Result<crate::names::DocId> {
    crate::names::DocId::parse(id, "id")
        .map_err(|e| EngineError::Internal(format!("stored id: {e}")))
}

/// The explanation of `address`'s score for `query`, with field numbers replaced by
/// field names.
fn explain(
    collection: &Collection,
    query: &dyn Query,
    statistics: &BlendedStatistics,
    address: DocAddress,
) -> Result<Explanation> {
    let explanation = statistics.explain(query, address)?;
    let json = serde_json::to_value(&explanation)
        .map_err(|e| EngineError::Internal(format!("explanation: {e}")))?;
    Ok(convert_explanation(collection, &json))
}

fn convert_explanation(collection: &Collection, json: &serde_json::Value) -> Explanation {
    let mut description = json["description"].as_str().unwrap_or_default().to_owned();
    if let Some(context) = json["context"].as_array() {
        for item in context.iter().filter_map(|c| c.as_str()) {
            description.push_str(" (");
            description.push_str(&describe_context(collection, item));
            description.push(')');
        }
    }
    Explanation {
        value: json["value"].as_f64().unwrap_or(0.0) as f32,
        description,
        details: json["details"]
            .as_array()
            .map(|details| {
                details
                    .iter()
                    .map(|d| convert_explanation(collection, d))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Rewrites tantivy's `Term=Term(field=3, type=Str, "kabul")` as `term "kabul" in title`.
fn describe_context(collection: &Collection, context: &str) -> String {
    let field_number = context
        .split("field=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<u32>().ok());
    let text = context
        .rsplit_once(", ")
        .map(|(_, t)| t.trim_end_matches(')'));
    match (field_number, text) {
        (Some(number), Some(text)) => {
            let schema = collection.schema().tantivy();
            let name = schema.get_field_name(tantivy::schema::Field::from_field_id(number));
            let name = name
                .strip_prefix("_raw_")
                .map_or(name.to_owned(), |n| format!("{n} (as written)"));
            format!("term {text} in {name}")
        }
        _ => context.to_owned(),
    }
}
