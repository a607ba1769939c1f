//! Filters: a subset of AIP-160, parsed by hand (no maintained Rust crate parses
//! AIP-160) into a syntax tree, then built into a tantivy query.
//!
//! ```text
//! expr       := and ('OR' and)*
//! and        := unary (('AND')? unary)*          juxtaposition means AND
//! unary      := ('NOT' | '-') unary | primary
//! primary    := '(' expr ')' | comparison
//! comparison := FIELD op value                    op: = != < <= > >= :
//!             | FIELD ':' '*'                     the field has a value
//! value      := "quoted string" | bare token (number, true, false, date, word)
//! ```
//!
//! A presence test, `price:*`, matches the documents whose field holds a value:
//! read from the field's column for every type but TEXT, and for TEXT from its
//! field norms (a value the analyzer keeps no word of counts as none).

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BitSetDocSet, BooleanQuery, ConstScorer, EnableScoring, ExistsQuery, Explanation,
    Occur, Query, RangeQuery, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, Index, Score, SegmentReader, Term};

use crate::error::{EngineError, Result};
use crate::lang::cursor::Cursor;
use crate::lang::query::text_query;
use crate::schema::{CollectionSchema, FieldType};
use crate::timestamp;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 64 * 1024;
/// The deepest nesting of parentheses and NOT accepted.
pub const MAX_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Has,
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: String,
        op: Op,
        value: String,
        /// Character position of the comparison, for errors.
        position: usize,
    },
    /// `field:*`: the field holds a value.
    Present {
        field: String,
        position: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Minus,
    Op(Op),
    Word(String),
    Quoted(String),
}

fn syntax(position: usize, message: impl Into<String>) -> EngineError {
    crate::lang::cursor::syntax("filter", position, message)
}

fn lex(input: &str) -> Result<Vec<(usize, Tok)>> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '=' => {
                i += 1;
                Tok::Op(Op::Eq)
            }
            ':' => {
                i += 1;
                Tok::Op(Op::Has)
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op(Op::Ne)
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                i += if eq { 2 } else { 1 };
                Tok::Op(match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                })
            }
            '-' if chars.get(i + 1).is_some_and(|n| !n.is_ascii_digit()) => {
                i += 1;
                Tok::Minus
            }
            '"' | '\'' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax(start, "unterminated string")),
                        Some('\\') if i + 1 < chars.len() => {
                            value.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                Tok::Quoted(value)
            }
            _ => {
                let end = (i..chars.len())
                    .find(|&j| chars[j].is_whitespace() || "()=!<>:\"'".contains(chars[j]))
                    .unwrap_or(chars.len());
                if end == i {
                    return Err(syntax(i, format!("unexpected character {c:?}")));
                }
                let word: String = chars[i..end].iter().collect();
                i = end;
                match word.as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Word(word),
                }
            }
        };
        out.push((start, tok));
    }
    Ok(out)
}

struct Parser {
    cursor: Cursor<Tok>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.cursor.peek()
    }

    fn here(&self) -> usize {
        self.cursor.here()
    }

    fn expr(&mut self, depth: usize) -> Result<Expr> {
        if depth > MAX_DEPTH {
            return Err(EngineError::invalid(
                "filter",
                format!("filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        let mut terms = vec![self.and(depth)?];
        while self.cursor.eat(&Tok::Or) {
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr> {
        let mut terms = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.cursor.next();
                    terms.push(self.unary(depth)?);
                }
                Some(Tok::Or | Tok::RParen) | None => break,
                Some(_) => terms.push(self.unary(depth)?),
            }
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr> {
        match self.peek() {
            Some(Tok::Not | Tok::Minus) => {
                self.cursor.next();
                if depth + 1 > MAX_DEPTH {
                    return Err(EngineError::invalid(
                        "filter",
                        format!("filter nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
                Ok(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            _ => self.primary(depth),
        }
    }

    /// One value: a word or a quoted string.
    fn value(&mut self) -> Result<String> {
        match self.cursor.peek().cloned() {
            Some(Tok::Word(v) | Tok::Quoted(v)) => {
                self.cursor.next();
                Ok(v)
            }
            _ => Err(syntax(self.here(), "expected a value")),
        }
    }

    /// The values of a composite argument, `a OR b AND c` (AND binds tighter),
    /// each compared with `field` by `op`.
    fn values(&mut self, field: &str, op: Op, position: usize) -> Result<Expr> {
        let mut any = Vec::new();
        loop {
            let mut all = Vec::new();
            loop {
                all.push(Expr::Compare {
                    field: field.to_owned(),
                    op,
                    value: self.value()?,
                    position,
                });
                if !self.cursor.eat(&Tok::And) {
                    break;
                }
            }
            any.push(if all.len() == 1 {
                all.remove(0)
            } else {
                Expr::And(all)
            });
            if !self.cursor.eat(&Tok::Or) {
                break;
            }
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Or(any)
        })
    }

    fn primary(&mut self, depth: usize) -> Result<Expr> {
        let position = self.here();
        match self.cursor.peek().cloned() {
            Some(Tok::LParen) => {
                self.cursor.next();
                let inner = self.expr(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(syntax(self.here(), "expected ')'"));
                }
                self.cursor.next();
                Ok(inner)
            }
            Some(Tok::Word(field)) => {
                self.cursor.next();
                let op = match self.peek() {
                    Some(Tok::Op(op)) => *op,
                    _ => {
                        return Err(syntax(
                            self.here(),
                            format!(
                                "expected a comparison operator (= != < <= > >= :) after {field:?}"
                            ),
                        ));
                    }
                };
                self.cursor.next();
                // AIP-160's composite argument: `tags:("a" OR "b")`, one
                // comparison per value, joined as written.
                if matches!(op, Op::Eq | Op::Has) && self.cursor.eat(&Tok::LParen) {
                    let values = self.values(&field, op, position)?;
                    if !self.cursor.eat(&Tok::RParen) {
                        return Err(syntax(self.here(), "expected ')' after the values"));
                    }
                    return Ok(values);
                }
                // `field:*` (a bare `*`; a quoted one is the value "*").
                if op == Op::Has && self.peek() == Some(&Tok::Word("*".into())) {
                    self.cursor.next();
                    return Ok(Expr::Present { field, position });
                }
                let value = self.value()?;
                Ok(Expr::Compare {
                    field,
                    op,
                    value,
                    position,
                })
            }
            Some(_) => Err(syntax(
                position,
                "expected a comparison like `field = value` or '('",
            )),
            None => Err(syntax(position, "unexpected end of filter")),
        }
    }
}

/// Parses `filter`; `None` when it is empty.
pub fn parse(filter: &str) -> Result<Option<Expr>> {
    if filter.len() > MAX_FILTER_BYTES {
        return Err(EngineError::invalid(
            "filter",
            format!(
                "filter is {} bytes long; the limit is {MAX_FILTER_BYTES}",
                filter.len()
            ),
        ));
    }
    let toks = lex(filter)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        cursor: Cursor::new(toks, filter.chars().count(), "filter"),
    };
    let expr = parser.expr(0)?;
    if !parser.cursor.at_end() {
        return Err(parser.cursor.error("unexpected ')'"));
    }
    Ok(Some(expr))
}

/// Builds the tantivy query for a parsed filter.
pub fn build(index: &Index, schema: &CollectionSchema, expr: &Expr) -> Result<Box<dyn Query>> {
    Ok(match expr {
        Expr::And(items) => Box::new(BooleanQuery::new(
            items
                .iter()
                .map(|e| Ok((Occur::Must, build(index, schema, e)?)))
                .collect::<Result<Vec<_>>>()?,
        )),
        Expr::Or(items) => Box::new(BooleanQuery::new(
            items
                .iter()
                .map(|e| Ok((Occur::Should, build(index, schema, e)?)))
                .collect::<Result<Vec<_>>>()?,
        )),
        Expr::Not(inner) => not(build(index, schema, inner)?),
        Expr::Compare {
            field,
            op,
            value,
            position,
        } => compare(index, schema, field, *op, value, *position)?,
        Expr::Present { field, position } => present(schema, field, *position)?,
    })
}

/// Whether `expr` names the field `name`.
pub fn mentions(expr: &Expr, name: &str) -> bool {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().any(|e| mentions(e, name)),
        Expr::Not(inner) => mentions(inner, name),
        Expr::Compare { field, .. } | Expr::Present { field, .. } => field == name,
    }
}

/// The first field `expr` names that `schema` does not declare (the document
/// id aside), with its position.
pub fn undeclared<'a>(expr: &'a Expr, schema: &CollectionSchema) -> Option<(&'a str, usize)> {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().find_map(|e| undeclared(e, schema)),
        Expr::Not(inner) => undeclared(inner, schema),
        Expr::Compare {
            field, position, ..
        }
        | Expr::Present { field, position } => {
            (field != "id" && schema.field(field).is_none()).then_some((field.as_str(), *position))
        }
    }
}

/// The declared, filterable field `name`, or why a filter cannot use it.
fn filterable<'a>(
    schema: &'a CollectionSchema,
    name: &str,
    position: usize,
) -> Result<(&'a crate::schema::FieldDef, Field)> {
    let (def, field) = schema
        .field(name)
        .ok_or_else(|| syntax(position, format!("unknown field {name:?}")))?;
    if !def.filterable {
        return Err(EngineError::invalid(
            "filter",
            format!("field {name:?} is not filterable; declare it with filterable: true"),
        ));
    }
    Ok((def, field))
}

/// The documents whose field `name` holds a value.
fn present(schema: &CollectionSchema, name: &str, position: usize) -> Result<Box<dyn Query>> {
    if name == "id" && schema.field(name).is_none() {
        return Ok(Box::new(AllQuery));
    }
    let (def, field) = filterable(schema, name, position)?;
    Ok(if def.ty == FieldType::Text {
        Box::new(HasWords(field))
    } else {
        // Every filterable field but TEXT has a column (`FieldDef::is_fast`).
        Box::new(ExistsQuery::new(name.to_owned(), false))
    })
}

/// The documents whose TEXT field holds a word: a field norm above 0.
#[derive(Clone, Debug)]
struct HasWords(Field);

impl Query for HasWords {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(HasWordsWeight(self.0)))
    }
}

struct HasWordsWeight(Field);

impl Weight for HasWordsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let norms = reader.get_fieldnorms_reader(self.0)?;
        let mut docs = BitSet::with_max_value(reader.max_doc());
        for doc in 0..reader.max_doc() {
            if norms.fieldnorm_id(doc) != 0 {
                docs.insert(doc);
            }
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let norms = reader.get_fieldnorms_reader(self.0)?;
        if norms.fieldnorm_id(doc) == 0 {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} holds no word in the field"
            )));
        }
        Ok(Explanation::new("the field holds a value", 1.0))
    }
}

fn not(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, query),
    ]))
}

fn compare(
    index: &Index,
    schema: &CollectionSchema,
    name: &str,
    op: Op,
    value: &str,
    position: usize,
) -> Result<Box<dyn Query>> {
    if name == "id" && schema.field(name).is_none() {
        // The document id (unless a field of that name is declared).
        if !matches!(op, Op::Eq | Op::Has | Op::Ne) {
            return Err(syntax(position, "only = != and : apply to id"));
        }
        let q: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_text(schema.id_field(), value),
            IndexRecordOption::Basic,
        ));
        return Ok(if op == Op::Ne { not(q) } else { q });
    }
    let (def, field) = filterable(schema, name, position)?;
    let bad_value = |what: &str| {
        syntax(
            position,
            format!(
                "field {name:?} is {}: {value:?} is not {what}",
                def.ty.name()
            ),
        )
    };
    let term = match def.ty {
        FieldType::Text => {
            if !matches!(op, Op::Eq | Op::Has | Op::Ne) {
                return Err(syntax(
                    position,
                    format!("field {name:?} is TEXT: only = != and : apply"),
                ));
            }
            let q = text_query(index, field, value, 0)?
                .unwrap_or_else(|| Box::new(tantivy::query::EmptyQuery));
            return Ok(if op == Op::Ne { not(q) } else { q });
        }
        FieldType::Keyword => {
            if !matches!(op, Op::Eq | Op::Has | Op::Ne) {
                return Err(syntax(
                    position,
                    format!("field {name:?} is KEYWORD: only = != and : apply"),
                ));
            }
            Term::from_field_text(field, &def.normalizer.apply(value))
        }
        FieldType::Integer => Term::from_field_i64(
            field,
            value
                .parse::<i64>()
                .map_err(|_| bad_value("a whole number"))?,
        ),
        FieldType::Float => {
            let f = value
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad_value("a finite number"))?;
            Term::from_field_f64(field, f)
        }
        FieldType::Boolean => Term::from_field_bool(
            field,
            match value {
                "true" => true,
                "false" => false,
                _ => return Err(bad_value("true or false")),
            },
        ),
        FieldType::Timestamp => {
            let micros = timestamp::parse(value).map_err(|m| syntax(position, m))?;
            Term::from_field_date(field, timestamp::to_tantivy(micros))
        }
    };
    Ok(match op {
        Op::Eq | Op::Has => term_query(term),
        Op::Ne => not(term_query(term)),
        _ if def.ty == FieldType::Boolean => {
            return Err(syntax(
                position,
                format!("field {name:?} is BOOLEAN: only = and != apply"),
            ));
        }
        Op::Lt => range(field, Bound::Unbounded, Bound::Excluded(term)),
        Op::Le => range(field, Bound::Unbounded, Bound::Included(term)),
        Op::Gt => range(field, Bound::Excluded(term), Bound::Unbounded),
        Op::Ge => range(field, Bound::Included(term), Bound::Unbounded),
    })
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn range(_field: Field, lower: Bound<Term>, upper: Bound<Term>) -> Box<dyn Query> {
    Box::new(RangeQuery::new(lower, upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: &str, op: Op, value: &str, position: usize) -> Expr {
        Expr::Compare {
            field: field.into(),
            op,
            value: value.into(),
            position,
        }
    }

    #[test]
    fn parses() {
        let check = |f: &str, want: Option<Expr>| assert_eq!(parse(f).unwrap(), want, "{f:?}");
        check("", None);
        check("a = 1", Some(cmp("a", Op::Eq, "1", 0)));
        check("a=-1.5", Some(cmp("a", Op::Eq, "-1.5", 0)));
        check(
            r#"date >= "2021-08-01" AND tags = "politics""#,
            Some(Expr::And(vec![
                cmp("date", Op::Ge, "2021-08-01", 0),
                cmp("tags", Op::Eq, "politics", 25),
            ])),
        );
        check(
            "NOT (a < 1 OR b != x) c:y",
            Some(Expr::And(vec![
                Expr::Not(Box::new(Expr::Or(vec![
                    cmp("a", Op::Lt, "1", 5),
                    cmp("b", Op::Ne, "x", 14),
                ]))),
                cmp("c", Op::Has, "y", 22),
            ])),
        );
        check(
            "-a = 1",
            Some(Expr::Not(Box::new(cmp("a", Op::Eq, "1", 1)))),
        );
        check(r#"a = "x \" y""#, Some(cmp("a", Op::Eq, "x \" y", 0)));
        // Composite arguments.
        check(
            r#"brand:("Sony" OR "Bose")"#,
            Some(Expr::Or(vec![
                cmp("brand", Op::Has, "Sony", 0),
                cmp("brand", Op::Has, "Bose", 0),
            ])),
        );
        check(
            "t = (a OR b AND c) n = 1",
            Some(Expr::And(vec![
                Expr::Or(vec![
                    cmp("t", Op::Eq, "a", 0),
                    Expr::And(vec![cmp("t", Op::Eq, "b", 0), cmp("t", Op::Eq, "c", 0)]),
                ]),
                cmp("n", Op::Eq, "1", 19),
            ])),
        );
        check("t:(x)", Some(cmp("t", Op::Has, "x", 0)));
        // Presence; a quoted star is a value.
        let present = |field: &str, position| Expr::Present {
            field: field.into(),
            position,
        };
        check("price:*", Some(present("price", 0)));
        check(
            "NOT tags:* OR a:*",
            Some(Expr::Or(vec![
                Expr::Not(Box::new(present("tags", 4))),
                present("a", 14),
            ])),
        );
        check(r#"t:"*""#, Some(cmp("t", Op::Has, "*", 0)));
        check("t = *", Some(cmp("t", Op::Eq, "*", 0)));
    }

    #[test]
    fn reports_positions() {
        let check = |f: &str, want: usize| match parse(f) {
            Err(EngineError::Syntax { position, .. }) => assert_eq!(position, want, "{f:?}"),
            other => panic!("{f:?}: expected a syntax error, got {other:?}"),
        };
        check("a", 1);
        check("a =", 3);
        check("a = 1 AND", 9);
        check("(a = 1", 6);
        check("a = 1)", 5);
        check("a = \"x", 4);
        check("= 1", 0);
        check("a = 1 OR OR b = 2", 9);
        check("a:(x OR", 7);
        check("a:(x y)", 5);
        check("a:()", 3);
        check("a < (1 OR 2)", 4);
    }

    #[test]
    fn depth_is_limited() {
        let deep = format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH + 2),
            ")".repeat(MAX_DEPTH + 2)
        );
        assert!(matches!(
            parse(&deep),
            Err(EngineError::InvalidArgument { .. })
        ));
        let nots = format!("{}a = 1", "NOT ".repeat(MAX_DEPTH + 2));
        assert!(matches!(
            parse(&nots),
            Err(EngineError::InvalidArgument { .. })
        ));
    }
}
