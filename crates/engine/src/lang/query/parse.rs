//! Parsing both query syntaxes into a [`Node`] tree.
//!
//! Full syntax:
//! ```text
//! or     := and ('OR' and)*
//! and    := list ('AND' list)*
//! list   := unary+                     joined by the default operator
//! unary  := ('+' | '-' | 'NOT') boosted | boosted
//! boosted:= primary ('^' number)?
//! primary:= '(' or ')' | (field ':')? atom
//! atom   := '"' phrase '"' ('~' slop)? | word '*' | word '~' digit? | word
//! ```
//! Simple syntax: words and balanced `"phrases"`, joined by the default operator;
//! every other character is part of a word, so it never fails.

use tantivy::query::Occur;

pub use super::lex::LeafKind;
use super::lex::{Tok, describe, lex, syntax};
use super::{MAX_CLAUSES, MAX_DEPTH, MAX_QUERY_BYTES};
use crate::error::{EngineError, Result};
use crate::lang::cursor::Cursor;

/// Which syntax a query is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Syntax {
    /// Operators, fields, phrases, prefixes, fuzzy terms, boosts; errors name a position.
    #[default]
    Full,
    /// Text typed by end users: words and balanced phrases. Never fails.
    Simple,
}

/// How words side by side combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Operator {
    /// Any word may match; more matches rank higher.
    #[default]
    Or,
    /// Every word must match.
    And,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Sub-queries, each required, optional or excluded.
    Bool(Vec<(Occur, Node)>),
    /// A sub-query with its score multiplied.
    Boost(Box<Node>, f32),
    Leaf(Leaf),
}

/// A word or phrase, optionally limited to one field.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub field: Option<String>,
    pub kind: LeafKind,
    /// Character position in the query, for errors.
    pub position: usize,
}

/// Parses `query` in `syntax`; `None` for a query with no words (matches everything).
pub fn parse(query: &str, syntax: Syntax, operator: Operator) -> Result<Option<Node>> {
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
    let node = match syntax {
        Syntax::Simple => parse_simple(&chars, operator),
        Syntax::Full => {
            let tokens = lex(&chars)?;
            if tokens.is_empty() {
                return Ok(None);
            }
            let mut parser = Parser {
                cursor: Cursor::new(tokens, chars.len(), "query"),
                operator,
            };
            let node = parser.or(0)?;
            if !parser.cursor.at_end() {
                return Err(parser.cursor.error("unexpected ')'"));
            }
            Some(node)
        }
    };
    if let Some(node) = &node {
        if count_leaves(node) > MAX_CLAUSES {
            return Err(EngineError::invalid(
                "query",
                format!("query has more than {MAX_CLAUSES} words and phrases"),
            ));
        }
    }
    Ok(node)
}

fn count_leaves(node: &Node) -> usize {
    match node {
        Node::Bool(items) => items.iter().map(|(_, n)| count_leaves(n)).sum(),
        Node::Boost(inner, _) => count_leaves(inner),
        Node::Leaf(_) => 1,
    }
}

fn default_occur(operator: Operator) -> Occur {
    match operator {
        Operator::Or => Occur::Should,
        Operator::And => Occur::Must,
    }
}

fn parse_simple(chars: &[char], operator: Operator) -> Option<Node> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let closing = (chars[i] == '"')
            .then(|| (i + 1..chars.len()).find(|&j| chars[j] == '"'))
            .flatten();
        let kind = match closing {
            Some(close) => {
                i = close + 1;
                LeafKind::Phrase {
                    text: chars[start + 1..close].iter().collect(),
                    slop: 0,
                }
            }
            None => {
                let end = (i..chars.len())
                    .find(|&j| chars[j].is_whitespace())
                    .unwrap_or(chars.len());
                i = end;
                LeafKind::Word(chars[start..end].iter().collect())
            }
        };
        items.push((
            default_occur(operator),
            Node::Leaf(Leaf {
                field: None,
                kind,
                position: start,
            }),
        ));
    }
    match items.len() {
        0 => None,
        1 => items.pop().map(|(_, node)| node),
        _ => Some(Node::Bool(items)),
    }
}

struct Parser {
    cursor: Cursor<Tok>,
    operator: Operator,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.cursor.peek()
    }

    fn here(&self) -> usize {
        self.cursor.here()
    }

    fn or(&mut self, depth: usize) -> Result<Node> {
        let mut items = vec![self.and(depth)?];
        while self.cursor.eat(&Tok::Or) {
            items.push(self.and(depth)?);
        }
        Ok(combine(Occur::Should, items))
    }

    fn and(&mut self, depth: usize) -> Result<Node> {
        let mut items = vec![self.list(depth)?];
        while self.cursor.eat(&Tok::And) {
            items.push(self.list(depth)?);
        }
        Ok(combine(Occur::Must, items))
    }

    fn list(&mut self, depth: usize) -> Result<Node> {
        let mut items = Vec::new();
        while let Some(tok) = self.peek() {
            if matches!(tok, Tok::Or | Tok::And | Tok::RParen) {
                break;
            }
            items.push(self.unary(depth)?);
        }
        if items.is_empty() {
            let what = match self.peek() {
                Some(Tok::Or) => "'OR' needs a word, phrase or group on its left",
                Some(Tok::And) => "'AND' needs a word, phrase or group on its left",
                Some(_) => "empty group",
                None if self.cursor.at_start() => "empty query",
                None => "expected a word, phrase or group",
            };
            return Err(syntax(self.here(), what));
        }
        if items.len() == 1 && items[0].0 == default_occur(self.operator) {
            return Ok(items
                .pop()
                .map(|(_, n)| n)
                .unwrap_or(Node::Bool(Vec::new())));
        }
        Ok(Node::Bool(items))
    }

    fn unary(&mut self, depth: usize) -> Result<(Occur, Node)> {
        let occur = match self.peek() {
            Some(Tok::Plus) => Some(Occur::Must),
            Some(Tok::Minus | Tok::Not) => Some(Occur::MustNot),
            _ => None,
        };
        if occur.is_some() {
            self.cursor.next();
        }
        let node = self.boosted(depth)?;
        Ok((occur.unwrap_or(default_occur(self.operator)), node))
    }

    fn boosted(&mut self, depth: usize) -> Result<Node> {
        let node = self.primary(depth)?;
        if let Some(Tok::Caret(boost)) = self.peek() {
            let boost = *boost;
            self.cursor.next();
            return Ok(Node::Boost(Box::new(node), boost));
        }
        Ok(node)
    }

    fn primary(&mut self, depth: usize) -> Result<Node> {
        let position = self.here();
        match self.cursor.peek().cloned() {
            Some(Tok::LParen) => {
                if depth >= MAX_DEPTH {
                    return Err(EngineError::invalid(
                        "query",
                        format!("query nests deeper than {MAX_DEPTH} levels of parentheses"),
                    ));
                }
                self.cursor.next();
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(syntax(self.here(), "expected ')'"));
                }
                self.cursor.next();
                Ok(inner)
            }
            Some(Tok::Atom { field, kind }) => {
                self.cursor.next();
                Ok(Node::Leaf(Leaf {
                    field,
                    kind,
                    position,
                }))
            }
            Some(Tok::Caret(_)) => Err(syntax(position, "'^' must follow a word, phrase or group")),
            Some(Tok::RParen) => Err(syntax(position, "unexpected ')'")),
            Some(tok) => Err(syntax(position, format!("unexpected {}", describe(&tok)))),
            None => Err(syntax(position, "expected a word, phrase or group")),
        }
    }
}

fn combine(occur: Occur, mut items: Vec<Node>) -> Node {
    if items.len() == 1 {
        return items.pop().unwrap_or(Node::Bool(Vec::new()));
    }
    Node::Bool(items.into_iter().map(|n| (occur, n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, position: usize) -> Node {
        Node::Leaf(Leaf {
            field: None,
            kind: LeafKind::Word(text.into()),
            position,
        })
    }

    fn leaf(field: Option<&str>, kind: LeafKind, position: usize) -> Node {
        Node::Leaf(Leaf {
            field: field.map(str::to_owned),
            kind,
            position,
        })
    }

    fn full(q: &str) -> Option<Node> {
        parse(q, Syntax::Full, Operator::Or).unwrap()
    }

    #[test]
    fn words_and_modifiers() {
        use Occur::*;
        assert_eq!(full(""), None);
        assert_eq!(full("  "), None);
        assert_eq!(full("taliban"), Some(word("taliban", 0)));
        assert_eq!(
            full("+us -embassy kabul"),
            Some(Node::Bool(vec![
                (Must, word("us", 1)),
                (MustNot, word("embassy", 5)),
                (Should, word("kabul", 13))
            ]))
        );
        assert_eq!(
            parse("a b", Syntax::Full, Operator::And).unwrap(),
            Some(Node::Bool(vec![(Must, word("a", 0)), (Must, word("b", 2))]))
        );
        // A hyphen inside a word is part of it.
        assert_eq!(full("war-torn"), Some(word("war-torn", 0)));
        assert_eq!(full("10:30"), Some(word("10:30", 0)));
    }

    #[test]
    fn boolean_operators_and_groups() {
        use Occur::*;
        assert_eq!(
            full("a AND b OR c"),
            Some(Node::Bool(vec![
                (
                    Should,
                    Node::Bool(vec![(Must, word("a", 0)), (Must, word("b", 6))])
                ),
                (Should, word("c", 11)),
            ]))
        );
        assert_eq!(
            full("a AND (b OR NOT c)"),
            Some(Node::Bool(vec![
                (Must, word("a", 0)),
                (
                    Must,
                    Node::Bool(vec![
                        (Should, word("b", 7)),
                        (Should, Node::Bool(vec![(MustNot, word("c", 16))]))
                    ])
                ),
            ]))
        );
        assert_eq!(
            full("(a b)^2"),
            Some(Node::Boost(
                Box::new(Node::Bool(vec![
                    (Should, word("a", 1)),
                    (Should, word("b", 3))
                ])),
                2.0
            ))
        );
    }

    #[test]
    fn atoms() {
        assert_eq!(
            full("title:\"peace process\"~2"),
            Some(leaf(
                Some("title"),
                LeafKind::Phrase {
                    text: "peace process".into(),
                    slop: 2
                },
                0
            ))
        );
        assert_eq!(
            full("comput*"),
            Some(leaf(None, LeafKind::Prefix("comput".into()), 0))
        );
        assert_eq!(
            full("talibn~"),
            Some(leaf(
                None,
                LeafKind::Fuzzy {
                    word: "talibn".into(),
                    distance: None
                },
                0
            ))
        );
        assert_eq!(
            full("body:talibn~2"),
            Some(leaf(
                Some("body"),
                LeafKind::Fuzzy {
                    word: "talibn".into(),
                    distance: Some(2)
                },
                0
            ))
        );
        assert_eq!(
            full("kabul^3"),
            Some(Node::Boost(Box::new(word("kabul", 0)), 3.0))
        );
    }

    #[test]
    fn errors_name_positions() {
        let check = |q: &str, want: usize| match parse(q, Syntax::Full, Operator::Or) {
            Err(EngineError::Syntax { position, .. }) => assert_eq!(position, want, "{q:?}"),
            other => panic!("{q:?}: expected a syntax error, got {other:?}"),
        };
        check("\"open", 0);
        check("a \"open", 2);
        check("é \"open", 2);
        check("+", 0);
        check("a - b", 2);
        check("title:", 6);
        check("(a", 2);
        check("a)", 1);
        check("()", 1);
        check("a AND", 5);
        check("OR a", 0);
        check("a OR OR b", 5);
        check("a^", 1);
        check("a^x", 1);
        check("^2", 0);
        check("a~7", 1);
        check("\"a b\"~x", 5);
        check("NOT", 3);
    }

    #[test]
    fn simple_syntax_never_fails() {
        for q in [
            "\"open",
            "a AND",
            "((",
            "+",
            "-",
            "title:",
            "a^",
            "x~9",
            "\"a b\" \"c",
            "))) OR (((",
        ] {
            assert!(parse(q, Syntax::Simple, Operator::Or).is_ok(), "{q:?}");
        }
        assert_eq!(
            parse("\"a b\" c\"", Syntax::Simple, Operator::Or).unwrap(),
            Some(Node::Bool(vec![
                (
                    Occur::Should,
                    leaf(
                        None,
                        LeafKind::Phrase {
                            text: "a b".into(),
                            slop: 0
                        },
                        0
                    )
                ),
                (Occur::Should, word("c\"", 6)),
            ]))
        );
    }

    #[test]
    fn limits() {
        let many = "a ".repeat(MAX_CLAUSES + 1);
        assert!(matches!(
            parse(&many, Syntax::Full, Operator::Or),
            Err(EngineError::InvalidArgument { .. })
        ));
        assert!(matches!(
            parse(&many, Syntax::Simple, Operator::Or),
            Err(EngineError::InvalidArgument { .. })
        ));
        let deep = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(
            parse(&deep, Syntax::Full, Operator::Or),
            Err(EngineError::InvalidArgument { .. })
        ));
        let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok, Syntax::Full, Operator::Or).is_ok());
        assert!(matches!(
            parse(&"a".repeat(MAX_QUERY_BYTES + 1), Syntax::Full, Operator::Or),
            Err(EngineError::InvalidArgument { .. })
        ));
    }
}
