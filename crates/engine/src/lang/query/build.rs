//! Building tantivy queries from a parsed [`Node`] tree.
//!
//! Words are analysed with each target field's analyzer. Prefix and fuzzy terms,
//! typo tolerance and search-as-you-type expand against the *raw* form of a TEXT
//! field (standard analyzer, no stemming), so `computers*` finds "computers" in an
//! `english` field; each expansion is a scored term query, and their number is
//! limited.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, DisjunctionMaxQuery, EmptyQuery, FuzzyTermQuery, Occur,
    PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Index, Searcher, Term};

use super::parse::{Leaf, LeafKind, Node, Operator, Syntax};
use super::{MAX_EXPANSIONS, MAX_FUZZY_CHARS, parse};
use crate::error::{EngineError, Result};
use crate::schema::{CollectionSchema, FieldType};

/// Expansions kept for the last word when searching as you type: the most
/// frequent, without failing.
const AS_YOU_TYPE_EXPANSIONS: usize = 64;
/// Score factor of a typo-tolerant match against an exact one.
const TYPO_BOOST: f32 = 0.5;

/// Ranking options of a search request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOptions {
    pub syntax: Syntax,
    pub default_operator: Operator,
    /// Fields words without a `field:` search, with weights: `title^2 body`.
    /// Empty means every TEXT field, weighted by its `boost`.
    pub search_fields: String,
    /// Match words within 1 edit (from 5 characters) or 2 (from 9).
    pub typo_tolerance: bool,
    /// Match the last word as a prefix too (search as you type).
    pub prefix_last_word: bool,
}

impl QueryOptions {
    /// The options as a short text that differs whenever the options do, for a
    /// page token's fingerprint (the `Debug` form cost a formatter per search).
    pub fn fingerprint_text(&self) -> String {
        let flag = |on: bool| if on { '1' } else { '0' };
        let mut text = String::with_capacity(5 + self.search_fields.len());
        text.push(match self.syntax {
            Syntax::Full => 'f',
            Syntax::Simple => 's',
        });
        text.push(match self.default_operator {
            Operator::Or => 'o',
            Operator::And => 'a',
        });
        text.push(flag(self.typo_tolerance));
        text.push(flag(self.prefix_last_word));
        text.push(':');
        text.push_str(&self.search_fields);
        text
    }
}

/// Builds queries for one collection and searcher.
pub struct Builder<'a> {
    index: &'a Index,
    schema: &'a CollectionSchema,
    searcher: &'a Searcher,
    options: &'a QueryOptions,
    /// Default target fields with their weights.
    targets: Vec<(Field, f32)>,
    /// Position of the last plain word, for `prefix_last_word`.
    last_word: Option<usize>,
    /// What matched words look like, per field, for highlighting.
    marks: RefCell<Vec<Mark>>,
    /// Above 0 while building an excluded part: its words are not marked.
    excluded: Cell<u32>,
}

/// What a match looks like in one declared field, for highlighting.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// The declared field (never a raw shadow).
    pub field: Field,
    pub kind: MarkKind,
}

/// How to find a match in a field's text.
#[derive(Clone, Debug, PartialEq)]
pub enum MarkKind {
    /// A token of the field's analyzer.
    Term(String),
    /// Tokens of the standard analyzer (words as written): prefix and fuzzy expansions.
    Raw(Vec<String>),
    /// Tokens of the field's analyzer at relative positions, within `slop` moves.
    Phrase(Vec<(usize, String)>, u32),
}

impl<'a> Builder<'a> {
    pub fn new(
        index: &'a Index,
        schema: &'a CollectionSchema,
        searcher: &'a Searcher,
        options: &'a QueryOptions,
    ) -> Result<Self> {
        let targets = if options.search_fields.trim().is_empty() {
            schema
                .iter()
                .filter(|(def, _)| def.ty == FieldType::Text)
                .map(|(def, field)| (field, def.boost))
                .collect()
        } else {
            parse_search_fields(&options.search_fields, schema)?
        };
        Ok(Builder {
            index,
            schema,
            searcher,
            options,
            targets,
            last_word: None,
            marks: RefCell::default(),
            excluded: Cell::new(0),
        })
    }

    /// The tantivy query for `query`.
    pub fn build(&mut self, query: &str) -> Result<Box<dyn Query>> {
        let Some(node) = parse(query, self.options.syntax, self.options.default_operator)? else {
            return Ok(Box::new(AllQuery));
        };
        let node = self.schema.synonyms().apply(node);
        if self.options.prefix_last_word {
            self.last_word = last_word(&node);
        }
        self.node(&node)
    }

    /// The marks of the words the last built query matches (not its excluded parts).
    pub fn marks(&self) -> Vec<Mark> {
        self.marks.borrow().clone()
    }

    fn mark(&self, field: Field, kind: MarkKind) {
        if self.excluded.get() == 0 {
            self.marks.borrow_mut().push(Mark { field, kind });
        }
    }

    /// `text_query`, marking what it matches.
    fn text(&self, field: Field, text: &str, slop: u32) -> Result<Option<Box<dyn Query>>> {
        let (query, terms) = analyzed_query(self.index, field, text, slop)?;
        match terms.len() {
            0 => {}
            1 => self.mark(field, MarkKind::Term(terms[0].1.clone())),
            _ => self.mark(field, MarkKind::Phrase(terms, slop)),
        }
        Ok(query)
    }

    fn node(&self, node: &Node) -> Result<Box<dyn Query>> {
        match node {
            Node::Leaf(leaf) => Ok(self.leaf(leaf)?.unwrap_or_else(|| Box::new(EmptyQuery))),
            Node::Boost(inner, boost) => Ok(Box::new(BoostQuery::new(self.node(inner)?, *boost))),
            Node::Bool(items) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for (occur, item) in items {
                    let excluded = *occur == Occur::MustNot;
                    self.excluded.set(self.excluded.get() + u32::from(excluded));
                    let built = self.bool_item(*occur, item, &mut clauses);
                    self.excluded.set(self.excluded.get() - u32::from(excluded));
                    built?;
                }
                if clauses.is_empty() {
                    return Ok(Box::new(EmptyQuery));
                }
                if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                    // Only exclusions: exclude them from everything.
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
        }
    }

    fn bool_item(
        &self,
        occur: Occur,
        item: &Node,
        clauses: &mut Vec<(Occur, Box<dyn Query>)>,
    ) -> Result<()> {
        let Node::Leaf(leaf) = item else {
            clauses.push((occur, self.node(item)?));
            return Ok(());
        };
        match self.leaf(leaf)? {
            Some(q) => clauses.push((occur, q)),
            // Only stop words: a required one matches nothing; an optional or
            // excluded one is dropped.
            None if occur == Occur::Must => clauses.push((Occur::Must, Box::new(EmptyQuery))),
            None => {}
        }
        Ok(())
    }

    /// The query for one leaf over its target fields; `None` when the text makes
    /// no terms in any field (stop words only).
    fn leaf(&self, leaf: &Leaf) -> Result<Option<Box<dyn Query>>> {
        let targets = match &leaf.field {
            None => self.targets.clone(),
            Some(name) => {
                let (def, field) = self
                    .schema
                    .field(name)
                    .ok_or_else(|| syntax(leaf.position, format!("unknown field {name:?}")))?;
                if !matches!(def.ty, FieldType::Text | FieldType::Keyword) {
                    return Err(syntax(
                        leaf.position,
                        format!(
                            "field {name:?} is {}: only TEXT and KEYWORD fields can be searched; use filter",
                            def.ty.name()
                        ),
                    ));
                }
                vec![(field, 1.0)]
            }
        };
        let mut alternatives = Vec::new();
        for (field, weight) in targets {
            if let Some(q) = self.leaf_in_field(leaf, field)? {
                alternatives.push(if weight == 1.0 {
                    q
                } else {
                    Box::new(BoostQuery::new(q, weight)) as Box<dyn Query>
                });
            }
        }
        Ok(match alternatives.len() {
            0 => None,
            1 => alternatives.pop(),
            _ => Some(Box::new(BooleanQuery::new(
                alternatives
                    .into_iter()
                    .map(|q| (Occur::Should, q))
                    .collect(),
            ))),
        })
    }

    fn leaf_in_field(&self, leaf: &Leaf, field: Field) -> Result<Option<Box<dyn Query>>> {
        let raw = self.schema.raw_field(field);
        match &leaf.kind {
            LeafKind::Word(word) => {
                let exact = self.text(field, word, 0)?;
                let mut alternatives: Vec<Box<dyn Query>> = exact.into_iter().collect();
                let chars = word.chars().count();
                if self.options.typo_tolerance && chars >= 5 {
                    let distance = if chars >= 9 { 2 } else { 1 };
                    if let Some(q) = self.fuzzy(leaf, field, raw, word, distance, false)? {
                        alternatives.push(Box::new(BoostQuery::new(q, TYPO_BOOST)));
                    }
                }
                if self.last_word == Some(leaf.position) {
                    if let Some(q) = self.prefix(leaf, field, raw, word, true)? {
                        alternatives.push(Box::new(BoostQuery::new(q, TYPO_BOOST)));
                    }
                }
                Ok(match alternatives.len() {
                    0 => None,
                    1 => alternatives.pop(),
                    _ => Some(Box::new(DisjunctionMaxQuery::new(alternatives))),
                })
            }
            LeafKind::Phrase { text, slop } => self.text(field, text, *slop),
            LeafKind::Prefix(word) => self.prefix(leaf, field, raw, word, false),
            LeafKind::Fuzzy { word, distance } => {
                let distance = distance.unwrap_or(if word.chars().count() >= 9 { 2 } else { 1 });
                self.fuzzy(leaf, field, raw, word, distance, true)
            }
        }
    }

    /// The one normalised term of `word` in the raw field, or an error naming the
    /// leaf when it is not one word.
    fn raw_term(&self, leaf: &Leaf, raw: Field, word: &str) -> Result<Option<String>> {
        let mut analyzer = self.index.tokenizer_for_field(raw)?;
        let mut stream = analyzer.token_stream(word);
        let mut tokens = Vec::new();
        while let Some(token) = stream.next() {
            tokens.push(token.text.clone());
        }
        match tokens.len() {
            0 => Ok(None),
            1 => Ok(tokens.pop()),
            _ => Err(syntax(
                leaf.position,
                format!(
                    "prefix and fuzzy terms take one word; {} is several",
                    crate::error::quote(word)
                ),
            )),
        }
    }

    fn prefix(
        &self,
        leaf: &Leaf,
        main: Field,
        raw: Field,
        word: &str,
        lenient: bool,
    ) -> Result<Option<Box<dyn Query>>> {
        let prefix = if self.schema.is_keyword(raw) {
            Some(self.schema.normalizer(raw).apply(word))
        } else if lenient {
            self.raw_term(leaf, raw, word).ok().flatten()
        } else {
            self.raw_term(leaf, raw, word)?
        };
        let Some(prefix) = prefix else {
            return Ok(None);
        };
        let mut terms = BTreeSet::new();
        for segment in self.searcher.segment_readers() {
            let inverted = segment.inverted_index(raw)?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .into_stream()
                .map_err(io)?;
            while stream.advance() {
                if !stream.key().starts_with(prefix.as_bytes()) {
                    break;
                }
                terms.insert(stream.key().to_vec());
                if terms.len() > MAX_EXPANSIONS {
                    break;
                }
            }
        }
        self.expansions(leaf, main, raw, terms, &format!("{word}*"), lenient)
    }

    fn fuzzy(
        &self,
        leaf: &Leaf,
        main: Field,
        raw: Field,
        word: &str,
        distance: u8,
        strict: bool,
    ) -> Result<Option<Box<dyn Query>>> {
        let term = if self.schema.is_keyword(raw) {
            Some(self.schema.normalizer(raw).apply(word))
        } else if strict {
            self.raw_term(leaf, raw, word)?
        } else {
            self.raw_term(leaf, raw, word).ok().flatten()
        };
        let Some(term) = term else { return Ok(None) };
        // The automaton's size grows with the term's length times its distinct
        // characters: a long word of many distinct characters (CJK) would take
        // gigabytes, and its construction cannot be interrupted.
        if term.chars().count() > MAX_FUZZY_CHARS {
            if !strict {
                return Ok(None);
            }
            return Err(EngineError::invalid(
                "query",
                format!(
                    "the fuzzy term at position {} has {} characters; at most {MAX_FUZZY_CHARS} are allowed",
                    leaf.position,
                    term.chars().count()
                ),
            ));
        }
        let automaton =
            FuzzyTermQuery::new(Term::from_field_text(raw, &term), distance, true).automaton()?;
        let mut terms = BTreeSet::new();
        for segment in self.searcher.segment_readers() {
            let inverted = segment.inverted_index(raw)?;
            let mut stream = inverted
                .terms()
                .search(&automaton)
                .into_stream()
                .map_err(io)?;
            while stream.advance() {
                terms.insert(stream.key().to_vec());
                if terms.len() > MAX_EXPANSIONS {
                    break;
                }
            }
        }
        self.expansions(
            leaf,
            main,
            raw,
            terms,
            &format!("{word}~{distance}"),
            !strict,
        )
    }

    /// Scored term queries for the expansions of a prefix or fuzzy term. Over the
    /// limit: an error, or (lenient) the most frequent terms.
    fn expansions(
        &self,
        leaf: &Leaf,
        main: Field,
        field: Field,
        terms: BTreeSet<Vec<u8>>,
        what: &str,
        lenient: bool,
    ) -> Result<Option<Box<dyn Query>>> {
        let mut terms: Vec<Term> = terms
            .into_iter()
            .filter_map(|bytes| String::from_utf8(bytes).ok())
            .map(|text| Term::from_field_text(field, &text))
            .collect();
        let limit = if lenient {
            AS_YOU_TYPE_EXPANSIONS
        } else {
            MAX_EXPANSIONS
        };
        if terms.len() > limit {
            if !lenient {
                return Err(EngineError::invalid(
                    "query",
                    format!(
                        "{what} at position {} expands to more than {MAX_EXPANSIONS} terms; make it longer",
                        leaf.position
                    ),
                ));
            }
            let mut by_freq: Vec<(u64, Term)> = terms
                .into_iter()
                .map(|t| (self.searcher.doc_freq(&t).unwrap_or(0), t))
                .collect();
            by_freq.sort_by_key(|(freq, _)| std::cmp::Reverse(*freq));
            terms = by_freq.into_iter().take(limit).map(|(_, t)| t).collect();
        }
        let texts: Vec<String> = terms
            .iter()
            .filter_map(|t| t.value().as_str().map(str::to_owned))
            .collect();
        if main == field {
            for text in texts {
                self.mark(main, MarkKind::Term(text));
            }
        } else if !texts.is_empty() {
            self.mark(main, MarkKind::Raw(texts));
        }
        Ok(match terms.len() {
            0 => None,
            _ => Some(Box::new(DisjunctionMaxQuery::new(
                terms
                    .into_iter()
                    .map(|t| {
                        Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>
                    })
                    .collect(),
            ))),
        })
    }
}

fn io(err: std::io::Error) -> EngineError {
    EngineError::Internal(format!("reading the term dictionary: {err}"))
}

fn syntax(position: usize, message: impl Into<String>) -> EngineError {
    EngineError::Syntax {
        field: "query",
        position,
        message: message.into(),
    }
}

/// The position of the last plain word of the query, if the query ends with one.
fn last_word(node: &Node) -> Option<usize> {
    match node {
        Node::Leaf(Leaf {
            kind: LeafKind::Word(_),
            position,
            ..
        }) => Some(*position),
        Node::Leaf(_) => None,
        Node::Boost(inner, _) => last_word(inner),
        Node::Bool(items) => items
            .last()
            .filter(|(o, _)| *o != Occur::MustNot)
            .and_then(|(_, n)| last_word(n)),
    }
}

/// Parses `title^2 body` into fields and weights.
fn parse_search_fields(spec: &str, schema: &CollectionSchema) -> Result<Vec<(Field, f32)>> {
    spec.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, weight) = match item.split_once('^') {
                Some((name, w)) => (
                    name,
                    w.parse::<f32>()
                        .ok()
                        .filter(|w| w.is_finite() && *w > 0.0 && *w <= 1000.0)
                        .ok_or_else(|| {
                            EngineError::invalid(
                                "search_fields",
                                format!(
                                    "invalid weight in {item:?}: expected a number from 0 to 1000"
                                ),
                            )
                        })?,
                ),
                None => (item, 1.0),
            };
            let (def, field) = schema.field(name).ok_or_else(|| {
                EngineError::invalid("search_fields", format!("unknown field {name:?}"))
            })?;
            if !matches!(def.ty, FieldType::Text | FieldType::Keyword) {
                return Err(EngineError::invalid(
                    "search_fields",
                    format!(
                        "field {name:?} is {}: only TEXT and KEYWORD fields can be searched",
                        def.ty.name()
                    ),
                ));
            }
            Ok((field, weight))
        })
        .collect()
}

/// The query for `text` in one field, analysed with that field's analyzer: a term,
/// or a phrase (with `slop`) when the text makes several terms. `None` when it
/// makes no terms.
pub fn text_query(
    index: &Index,
    field: Field,
    text: &str,
    slop: u32,
) -> Result<Option<Box<dyn Query>>> {
    Ok(analyzed_query(index, field, text, slop)?.0)
}

/// Analysed terms with their positions relative to the first.
type Positioned = Vec<(usize, String)>;

/// [`text_query`] with the analysed terms and their relative positions.
fn analyzed_query(
    index: &Index,
    field: Field,
    text: &str,
    slop: u32,
) -> Result<(Option<Box<dyn Query>>, Positioned)> {
    let mut analyzer = index.tokenizer_for_field(field)?;
    let mut stream = analyzer.token_stream(text);
    let mut tokens: Vec<(usize, String)> = Vec::new();
    while let Some(token) = stream.next() {
        tokens.push((token.position, token.text.clone()));
    }
    let first = tokens.first().map_or(0, |(p, _)| *p);
    let tokens: Vec<(usize, String)> = tokens.into_iter().map(|(p, t)| (p - first, t)).collect();
    let query: Option<Box<dyn Query>> = match tokens.len() {
        0 => None,
        1 => Some(Box::new(TermQuery::new(
            Term::from_field_text(field, &tokens[0].1),
            IndexRecordOption::WithFreqs,
        ))),
        _ => Some(Box::new(PhraseQuery::new_with_offset_and_slop(
            tokens
                .iter()
                .map(|(p, t)| (*p, Term::from_field_text(field, t)))
                .collect(),
            slop,
        ))),
    };
    Ok((query, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_text_differs_when_any_option_does() {
        let base = QueryOptions::default();
        let variants = [
            QueryOptions {
                syntax: Syntax::Simple,
                ..base.clone()
            },
            QueryOptions {
                default_operator: Operator::And,
                ..base.clone()
            },
            QueryOptions {
                typo_tolerance: true,
                ..base.clone()
            },
            QueryOptions {
                prefix_last_word: true,
                ..base.clone()
            },
            QueryOptions {
                search_fields: "title^2".into(),
                ..base.clone()
            },
        ];
        let mut texts: Vec<String> = variants.iter().map(|o| o.fingerprint_text()).collect();
        texts.push(base.fingerprint_text());
        assert_eq!(base.clone().fingerprint_text(), base.fingerprint_text());
        let count = texts.len();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), count, "{texts:?}");
    }
}
