//! Conversions between wire messages and engine types. Messages are destructured
//! field by field so that a new proto field fails the build here until it is
//! handled.

use std::sync::Arc;

use prost_types::{FieldMask, Timestamp};
use tonic::Status;

use super::served as pb;
use super::status::invalid;
use super::value::struct_to_fields;
use super::wire::WireStruct;
use crate::engine::{
    Collection, DEFAULT_FRAGMENT_SIZE, DEFAULT_PAGE_SIZE, Document, EngineError, Explanation,
    FacetCounts, FacetRequest, FieldDef, FieldSpec, FieldType, Fields, Highlight,
    MAX_FRAGMENT_SIZE, MAX_FRAGMENTS, MAX_PAGE_SIZE, Operator, QueryOptions, SearchRequest,
    SearchResults, Syntax, Token,
};

/// A wire timestamp from microseconds since the epoch.
pub fn timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn field_type(ty: i32, path: &str) -> Result<Option<FieldType>, Status> {
    Ok(match pb::FieldType::try_from(ty) {
        Ok(pb::FieldType::Unspecified) => None,
        Ok(pb::FieldType::Text) => Some(FieldType::Text),
        Ok(pb::FieldType::Keyword) => Some(FieldType::Keyword),
        Ok(pb::FieldType::Integer) => Some(FieldType::Integer),
        Ok(pb::FieldType::Float) => Some(FieldType::Float),
        Ok(pb::FieldType::Boolean) => Some(FieldType::Boolean),
        Ok(pb::FieldType::Timestamp) => Some(FieldType::Timestamp),
        Err(_) => return Err(invalid(path, format!("unknown field type {ty}"))),
    })
}

fn wire_field_type(ty: FieldType) -> pb::FieldType {
    match ty {
        FieldType::Text => pb::FieldType::Text,
        FieldType::Keyword => pb::FieldType::Keyword,
        FieldType::Integer => pb::FieldType::Integer,
        FieldType::Float => pb::FieldType::Float,
        FieldType::Boolean => pb::FieldType::Boolean,
        FieldType::Timestamp => pb::FieldType::Timestamp,
    }
}

/// The field specs of a collection to create.
pub fn field_specs(fields: Vec<pb::Field>) -> Result<Vec<FieldSpec>, Status> {
    fields
        .into_iter()
        .enumerate()
        .map(|(i, field)| {
            let pb::Field {
                name,
                r#type,
                analyzer,
                filterable,
                sortable,
                facetable,
                boost,
                normalizer,
            } = field;
            Ok(FieldSpec {
                name,
                ty: field_type(r#type, &format!("collection.fields[{i}].type"))?,
                analyzer,
                filterable,
                sortable,
                facetable,
                boost,
                normalizer,
            })
        })
        .collect()
}

fn wire_field(def: &FieldDef) -> pb::Field {
    let spec = def.to_spec();
    pb::Field {
        name: spec.name,
        r#type: wire_field_type(def.ty) as i32,
        analyzer: spec.analyzer,
        filterable: spec.filterable,
        sortable: spec.sortable,
        facetable: spec.facetable,
        boost: spec.boost,
        normalizer: spec.normalizer,
    }
}

/// A collection with its schema and statistics.
pub fn wire_collection(collection: &Collection) -> pb::Collection {
    let stats = collection.stats();
    pb::Collection {
        name: collection.name().to_string(),
        fields: collection
            .schema()
            .fields()
            .iter()
            .map(wire_field)
            .collect(),
        document_count: stats.document_count as i64,
        memory_bytes: stats.memory_bytes as i64,
        create_time: Some(timestamp(collection.create_time())),
        synonyms: collection.schema().synonyms().sets().to_vec(),
    }
}

/// A document's id and fields from the wire; `path` prefixes error fields
/// (`document`).
pub fn document_parts(
    document: Option<pb::Document>,
    path: &str,
) -> Result<(String, Fields), Status> {
    let pb::Document {
        id,
        fields,
        version: _,
        create_time: _,
        update_time: _,
    } = document.ok_or_else(|| invalid(path, format!("{path} is required")))?;
    let fields = fields
        .unwrap_or_default()
        .into_struct()
        .map_err(|e| invalid(format!("{path}.fields"), format!("undecodable fields: {e}")))?;
    let fields = struct_to_fields(fields, &format!("{path}.fields"))?;
    Ok((id, fields))
}

/// A whole document on the wire.
pub fn wire_document(doc: Document) -> pb::Document {
    let Document {
        id,
        fields,
        version,
        create_time,
        update_time,
    } = doc;
    pb::Document {
        id: id.to_string(),
        fields: Some(WireStruct::json(fields)),
        version,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
    }
}

/// The document keys named by an update mask (`fields.<key>` paths).
pub fn mask_keys(mask: FieldMask) -> Result<Vec<String>, Status> {
    mask.paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| match path.strip_prefix("fields.") {
            Some(key) if !key.is_empty() => Ok(key.to_owned()),
            _ => Err(invalid(
                format!("update_mask.paths[{i}]"),
                format!("invalid path {path:?}: expected fields.<key>"),
            )),
        })
        .collect()
}

/// Which parts of a document a read mask keeps.
#[derive(Clone, Debug, Default)]
pub struct ReadMask {
    all: bool,
    id: bool,
    /// `None`: all fields (if `all` or `fields` was named).
    fields: Option<Vec<String>>,
    all_fields: bool,
    version: bool,
    create_time: bool,
    update_time: bool,
}

impl ReadMask {
    /// Parses a read mask; no paths means the whole document.
    pub fn parse(mask: Option<FieldMask>) -> Result<Self, Status> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(ReadMask {
                all: true,
                ..Default::default()
            });
        }
        let mut out = ReadMask::default();
        for (i, path) in paths.into_iter().enumerate() {
            match path.as_str() {
                "id" => out.id = true,
                "fields" => out.all_fields = true,
                "version" => out.version = true,
                "create_time" => out.create_time = true,
                "update_time" => out.update_time = true,
                p => match p.strip_prefix("fields.") {
                    Some(key) if !key.is_empty() => {
                        out.fields.get_or_insert_with(Vec::new).push(key.to_owned())
                    }
                    _ => {
                        return Err(invalid(
                            format!("read_mask.paths[{i}]"),
                            format!(
                                "invalid path {p:?}: expected id, fields, fields.<key>, version, create_time or update_time"
                            ),
                        ));
                    }
                },
            }
        }
        Ok(out)
    }

    /// Whether the mask keeps any of a document's fields.
    pub fn keeps_fields(&self) -> bool {
        self.all || self.all_fields || self.fields.is_some()
    }

    /// The masked document on the wire.
    pub fn apply(&self, doc: Document) -> pb::Document {
        if self.all {
            return wire_document(doc);
        }
        let Document {
            id,
            fields,
            version,
            create_time,
            update_time,
        } = doc;
        let fields = if self.all_fields {
            Some(WireStruct::json(fields))
        } else {
            self.fields.as_ref().map(|keys| {
                let kept: Fields = keys
                    .iter()
                    .filter_map(|k| fields.get_key_value(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                WireStruct::json(Arc::new(kept))
            })
        };
        pb::Document {
            id: if self.id {
                id.to_string()
            } else {
                String::new()
            },
            fields,
            version: if self.version { version } else { 0 },
            create_time: self.create_time.then(|| timestamp(create_time)),
            update_time: self.update_time.then(|| timestamp(update_time)),
        }
    }
}

/// A client's page size: 0 is the default, a larger one than the maximum is
/// coerced down (AIP-158), a negative one is INVALID_ARGUMENT.
pub fn page_size(requested: i32) -> Result<usize, Status> {
    count(requested, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
}

/// A count of the wire: 0 means `default`, past `max` it is `max`, and a
/// negative one is INVALID_ARGUMENT naming `field`.
fn count(requested: i32, field: &str, default: usize, max: usize) -> Result<usize, Status> {
    match usize::try_from(requested) {
        Ok(0) => Ok(default),
        Ok(n) => Ok(n.min(max)),
        Err(_) => {
            let name = field.rsplit('.').next().unwrap_or(field);
            Err(invalid(
                field,
                format!("{name} must not be negative, got {requested}"),
            ))
        }
    }
}

/// A search request in engine terms, with its read mask.
pub fn search_request(
    request: pb::SearchRequest,
) -> Result<(String, SearchRequest, ReadMask), Status> {
    let pb::SearchRequest {
        collection,
        query,
        filter,
        order_by,
        page_size,
        page_token,
        highlight,
        facets,
        read_mask,
        syntax,
        default_operator,
        search_fields,
        typo_tolerance,
        prefix_last_word,
        explain,
        skip_hits,
        post_filter,
    } = request;
    let syntax = match pb::search_request::Syntax::try_from(syntax) {
        Ok(pb::search_request::Syntax::Unspecified | pb::search_request::Syntax::Full) => {
            Syntax::Full
        }
        Ok(pb::search_request::Syntax::Simple) => Syntax::Simple,
        Err(_) => return Err(invalid("syntax", format!("unknown syntax {syntax}"))),
    };
    let default_operator = match pb::search_request::Operator::try_from(default_operator) {
        Ok(pb::search_request::Operator::Unspecified | pb::search_request::Operator::Or) => {
            Operator::Or
        }
        Ok(pb::search_request::Operator::And) => Operator::And,
        Err(_) => {
            return Err(invalid(
                "default_operator",
                format!("unknown operator {default_operator}"),
            ));
        }
    };
    let highlight = highlight
        .map(|h| {
            let pb::HighlightOptions {
                fields,
                pre_tag,
                post_tag,
                fragment_size,
                max_fragments,
            } = h;
            Ok::<_, Status>(Highlight {
                fields,
                pre_tag,
                post_tag,
                fragment_size: count(
                    fragment_size,
                    "highlight.fragment_size",
                    DEFAULT_FRAGMENT_SIZE,
                    MAX_FRAGMENT_SIZE,
                )?,
                max_fragments: count(max_fragments, "highlight.max_fragments", 1, MAX_FRAGMENTS)?,
            })
        })
        .transpose()?;
    let facets = facets
        .into_iter()
        .map(|f| {
            let pb::FacetRequest {
                field,
                size,
                interval,
                ranges,
            } = f;
            FacetRequest {
                field,
                size,
                interval,
                ranges: ranges.into_iter().map(|r| (r.from, r.to)).collect(),
            }
        })
        .collect();
    let mask = ReadMask::parse(read_mask)?;
    Ok((
        collection,
        SearchRequest {
            query,
            filter,
            order_by,
            page_size: self::page_size(page_size)?,
            page_token,
            highlight,
            facets,
            options: QueryOptions {
                syntax,
                default_operator,
                search_fields,
                typo_tolerance,
                prefix_last_word,
            },
            explain,
            without_fields: !mask.keeps_fields(),
            skip_hits,
            post_filter,
        },
        mask,
    ))
}

/// A page of search results on the wire.
pub fn search_response(results: SearchResults, mask: &ReadMask) -> pb::SearchResponse {
    let SearchResults {
        hits,
        total_size,
        next_page_token,
        facets,
    } = results;
    pb::SearchResponse {
        hits: hits
            .into_iter()
            .map(|hit| pb::SearchHit {
                id: hit.document.id.to_string(),
                score: hit.score,
                document: Some(mask.apply(hit.document)),
                highlights: hit
                    .highlights
                    .into_iter()
                    .map(|(field, found)| pb::Highlight {
                        field,
                        snippets: found.snippets,
                        matches: found
                            .matches
                            .into_iter()
                            .map(|(start, end)| pb::HighlightMatch {
                                start: start as i32,
                                end: end as i32,
                            })
                            .collect(),
                    })
                    .collect(),
                explanation: hit.explanation.map(wire_explanation),
            })
            .collect(),
        total_size: total_size as i64,
        next_page_token,
        facets: facets.into_iter().map(wire_facet).collect(),
    }
}

fn wire_explanation(explanation: Explanation) -> pb::Explanation {
    let Explanation {
        value,
        description,
        details,
    } = explanation;
    pb::Explanation {
        value,
        description,
        details: details.into_iter().map(wire_explanation).collect(),
    }
}

/// Tokens on the wire.
pub fn wire_tokens(tokens: Vec<Token>) -> Vec<pb::Token> {
    tokens
        .into_iter()
        .map(|t| pb::Token {
            text: t.text,
            position: t.position as i32,
            start: t.start as i32,
            end: t.end as i32,
        })
        .collect()
}

fn wire_facet(counts: FacetCounts) -> pb::FacetResult {
    pb::FacetResult {
        field: counts.field,
        buckets: counts
            .buckets
            .into_iter()
            .map(|(value, count)| pb::FacetBucket {
                value,
                count: count as i64,
            })
            .collect(),
    }
}

/// An error of a document write with its location on the wire: the engine
/// names a field of the document it was given (`fields.date`), which the
/// request carries as `document.fields.date`.
pub fn in_document(err: EngineError) -> EngineError {
    match &err {
        EngineError::InvalidArgument { field, .. } if field.starts_with("fields") => {
            err.within("document")
        }
        _ => err,
    }
}
