//! The free-text query language: parsing to a small syntax tree, then building
//! the tantivy query against a collection's schema.
//!
//! Written by hand because tantivy's own query parser reports no error positions
//! and treats unknown fields and syntax errors in ways a service cannot explain to
//! its clients.
//!
//! Grammar (whitespace separates clauses):
//! ```text
//! query  := clause*
//! clause := ('+' | '-')? (field ':')? (word | '"' phrase '"')
//! ```
//! A word or phrase without a field searches every TEXT field. Plain clauses are
//! optional (OR: more matches rank higher), `+` clauses are required, `-` clauses
//! exclude.

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Index, Term};

use super::error::{EngineError, Result};
use super::schema::{CollectionSchema, FieldType};

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// The most clauses a query may have.
pub const MAX_CLAUSES: usize = 1024;

/// Whether a clause is optional, required or excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modifier {
    Should,
    Must,
    MustNot,
}

/// One parsed clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub modifier: Modifier,
    /// The field named with `field:`, if any.
    pub field: Option<String>,
    pub text: String,
    pub phrase: bool,
    /// Character position of the clause in the query.
    pub position: usize,
}

/// Parses `query` into clauses.
pub fn parse(query: &str) -> Result<Vec<Clause>> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(EngineError::invalid(
            "query",
            format!(
                "query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                query.len()
            ),
        ));
    }
    let chars: Vec<char> = query.chars().collect();
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let modifier = match chars[i] {
            '+' => {
                i += 1;
                Modifier::Must
            }
            '-' => {
                i += 1;
                Modifier::MustNot
            }
            _ => Modifier::Should,
        };
        if modifier != Modifier::Should && (i >= chars.len() || chars[i].is_whitespace()) {
            return Err(syntax(
                start,
                format!("'{}' must be followed by a word or phrase", chars[start]),
            ));
        }
        // An optional `field:` prefix: a field-name-shaped run followed by ':'.
        let mut field = None;
        let name_end = (i..chars.len())
            .find(|&j| !(chars[j].is_ascii_alphanumeric() || chars[j] == '_'))
            .unwrap_or(chars.len());
        if name_end > i
            && name_end < chars.len()
            && chars[name_end] == ':'
            && (chars[i].is_ascii_alphabetic() || chars[i] == '_')
        {
            field = Some(chars[i..name_end].iter().collect::<String>());
            i = name_end + 1;
            if i >= chars.len() || chars[i].is_whitespace() {
                return Err(syntax(i, "expected a word or phrase after ':'"));
            }
        }
        let (text, phrase) = if chars[i] == '"' {
            let open = i;
            let close = (i + 1..chars.len())
                .find(|&j| chars[j] == '"')
                .ok_or_else(|| syntax(open, "unterminated phrase: missing closing '\"'"))?;
            i = close + 1;
            (chars[open + 1..close].iter().collect::<String>(), true)
        } else {
            let end = (i..chars.len())
                .find(|&j| chars[j].is_whitespace())
                .unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            i = end;
            (word, false)
        };
        if clauses.len() == MAX_CLAUSES {
            return Err(EngineError::invalid(
                "query",
                format!("query has more than {MAX_CLAUSES} clauses"),
            ));
        }
        clauses.push(Clause {
            modifier,
            field,
            text,
            phrase,
            position: start,
        });
    }
    Ok(clauses)
}

fn syntax(position: usize, message: impl Into<String>) -> EngineError {
    EngineError::Syntax {
        field: "query",
        position,
        message: message.into(),
    }
}

/// Builds the tantivy query for `query` over `schema`.
pub fn build(index: &Index, schema: &CollectionSchema, query: &str) -> Result<Box<dyn Query>> {
    let clauses = parse(query)?;
    if clauses.is_empty() {
        return Ok(Box::new(AllQuery));
    }
    let default_fields: Vec<(Field, f32)> = schema
        .iter()
        .filter(|(def, _)| def.ty == FieldType::Text)
        .map(|(def, field)| (field, def.boost))
        .collect();
    let mut subqueries: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut positive = false;
    for clause in &clauses {
        let targets = match &clause.field {
            None => default_fields.clone(),
            Some(name) => {
                let (def, field) = schema
                    .field(name)
                    .ok_or_else(|| syntax(clause.position, format!("unknown field {name:?}")))?;
                if !matches!(def.ty, FieldType::Text | FieldType::Keyword) {
                    return Err(syntax(
                        clause.position,
                        format!(
                            "field {name:?} is {}: only TEXT and KEYWORD fields can be searched; use filter",
                            def.ty.name()
                        ),
                    ));
                }
                vec![(field, 1.0)]
            }
        };
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, boost) in targets {
            if let Some(q) = text_query(index, field, &clause.text)? {
                let q: Box<dyn Query> = if boost == 1.0 {
                    q
                } else {
                    Box::new(BoostQuery::new(q, boost))
                };
                alternatives.push((Occur::Should, q));
            }
        }
        let occur = match clause.modifier {
            Modifier::Should => Occur::Should,
            Modifier::Must => Occur::Must,
            Modifier::MustNot => Occur::MustNot,
        };
        let q: Box<dyn Query> = match alternatives.len() {
            // Nothing to match (only stop words): a required clause matches nothing,
            // an optional or excluded one is dropped.
            0 if occur == Occur::Must => Box::new(EmptyQuery),
            0 => continue,
            1 => alternatives
                .pop()
                .map(|(_, q)| q)
                .unwrap_or_else(|| Box::new(EmptyQuery)),
            _ => Box::new(BooleanQuery::new(alternatives)),
        };
        positive |= occur != Occur::MustNot;
        subqueries.push((occur, q));
    }
    if subqueries.is_empty() {
        return Ok(Box::new(EmptyQuery));
    }
    if !positive {
        // Only exclusions: exclude them from everything.
        subqueries.push((Occur::Must, Box::new(AllQuery)));
    }
    Ok(Box::new(BooleanQuery::new(subqueries)))
}

/// The query for `text` in one field, analysed with that field's analyzer: a term,
/// or a phrase when the text makes several terms. `None` when it makes no terms.
pub(crate) fn text_query(
    index: &Index,
    field: Field,
    text: &str,
) -> Result<Option<Box<dyn Query>>> {
    let mut analyzer = index.tokenizer_for_field(field)?;
    let mut stream = analyzer.token_stream(text);
    let mut terms: Vec<(usize, Term)> = Vec::new();
    while let Some(token) = stream.next() {
        terms.push((token.position, Term::from_field_text(field, &token.text)));
    }
    Ok(match terms.len() {
        0 => None,
        1 => {
            let (_, term) = terms.remove(0);
            Some(Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)))
        }
        _ => {
            let first = terms[0].0;
            let terms = terms.into_iter().map(|(p, t)| (p - first, t)).collect();
            Some(Box::new(PhraseQuery::new_with_offset(terms)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(
        modifier: Modifier,
        field: Option<&str>,
        text: &str,
        phrase: bool,
        position: usize,
    ) -> Clause {
        Clause {
            modifier,
            field: field.map(str::to_owned),
            text: text.into(),
            phrase,
            position,
        }
    }

    #[test]
    fn parses_clauses() {
        use Modifier::*;
        let check = |q: &str, want: Vec<Clause>| assert_eq!(parse(q).unwrap(), want, "{q:?}");
        check("", vec![]);
        check("  ", vec![]);
        check("taliban", vec![clause(Should, None, "taliban", false, 0)]);
        check(
            "+us -embassy \"peace process\"",
            vec![
                clause(Must, None, "us", false, 0),
                clause(MustNot, None, "embassy", false, 4),
                clause(Should, None, "peace process", true, 13),
            ],
        );
        check(
            "title:kabul tags:\"world news\"",
            vec![
                clause(Should, Some("title"), "kabul", false, 0),
                clause(Should, Some("tags"), "world news", true, 12),
            ],
        );
        check("10:30", vec![clause(Should, None, "10:30", false, 0)]);
        check("ünï:x", vec![clause(Should, None, "ünï:x", false, 0)]);
    }

    #[test]
    fn reports_positions() {
        let check = |q: &str, want: usize| match parse(q) {
            Err(EngineError::Syntax { position, .. }) => assert_eq!(position, want, "{q:?}"),
            other => panic!("{q:?}: expected a syntax error, got {other:?}"),
        };
        check("\"open", 0);
        check("a \"open", 2);
        check("é \"open", 2);
        check("+", 0);
        check("a - b", 2);
        check("title:", 6);
        check("title: x", 6);
    }

    #[test]
    fn limits() {
        assert!(matches!(
            parse(&"a ".repeat(MAX_CLAUSES + 1)),
            Err(EngineError::InvalidArgument { .. })
        ));
        assert!(matches!(
            parse(&"a".repeat(MAX_QUERY_BYTES + 1)),
            Err(EngineError::InvalidArgument { .. })
        ));
    }
}
