//! The full syntax's tokens: words, phrases and their modifiers, field
//! prefixes, operators and parentheses, each with its character position.

use crate::error::{EngineError, Result};

/// What a leaf matches.
#[derive(Clone, Debug, PartialEq)]
pub enum LeafKind {
    Word(String),
    Phrase {
        text: String,
        slop: u32,
    },
    /// `word*`: words starting with this.
    Prefix(String),
    /// `word~` (automatic distance) or `word~N` (N edits, at most 2).
    Fuzzy {
        word: String,
        distance: Option<u8>,
    },
}

/// A syntax error in the query at `position`.
pub(super) fn syntax(position: usize, message: impl Into<String>) -> EngineError {
    crate::lang::cursor::syntax("query", position, message)
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    Plus,
    Minus,
    And,
    Or,
    Not,
    Caret(f32),
    /// `field:` and the atom that follows.
    Atom {
        field: Option<String>,
        kind: LeafKind,
    },
}

/// Characters that end a word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '^')
}

pub(super) fn lex(chars: &[char]) -> Result<Vec<(usize, Tok)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        // `+` and `-` are operators only at the start of a clause.
        let clause_start = i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == '(';
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
            '+' | '-' if clause_start => {
                i += 1;
                if i >= chars.len() || chars[i].is_whitespace() || chars[i] == ')' {
                    return Err(syntax(
                        start,
                        format!("'{c}' must be followed by a word, phrase or group"),
                    ));
                }
                if c == '+' { Tok::Plus } else { Tok::Minus }
            }
            '^' => {
                i += 1;
                let end = (i..chars.len())
                    .find(|&j| !(chars[j].is_ascii_digit() || chars[j] == '.'))
                    .unwrap_or(chars.len());
                let text: String = chars[i..end].iter().collect();
                let boost = text
                    .parse::<f32>()
                    .ok()
                    .filter(|b| b.is_finite() && *b >= 0.0 && *b <= 1000.0)
                    .ok_or_else(|| {
                        syntax(start, "'^' must be followed by a boost from 0 to 1000")
                    })?;
                i = end;
                Tok::Caret(boost)
            }
            _ => {
                let (tok, next) = lex_atom(chars, i)?;
                i = next;
                tok
            }
        };
        out.push((start, tok));
    }
    Ok(out)
}

/// Lexes `field:atom`, `atom`, or a keyword (AND, OR, NOT) starting at `i`.
fn lex_atom(chars: &[char], mut i: usize) -> Result<(Tok, usize)> {
    let start = i;
    let mut field = None;
    let name_end = (i..chars.len())
        .find(|&j| !(chars[j].is_ascii_alphanumeric() || chars[j] == '_'))
        .unwrap_or(chars.len());
    if name_end > i
        && chars.get(name_end) == Some(&':')
        && (chars[i].is_ascii_alphabetic() || chars[i] == '_')
    {
        field = Some(chars[i..name_end].iter().collect::<String>());
        i = name_end + 1;
        if i >= chars.len() || chars[i].is_whitespace() || chars[i] == ')' {
            return Err(syntax(i, "expected a word or phrase after ':'"));
        }
    }
    if chars[i] == '"' {
        let open = i;
        let close = (i + 1..chars.len())
            .find(|&j| chars[j] == '"')
            .ok_or_else(|| syntax(open, "unterminated phrase: missing closing '\"'"))?;
        let text: String = chars[open + 1..close].iter().collect();
        i = close + 1;
        let mut slop = 0;
        if chars.get(i) == Some(&'~') {
            let end = (i + 1..chars.len())
                .find(|&j| !chars[j].is_ascii_digit())
                .unwrap_or(chars.len());
            let digits: String = chars[i + 1..end].iter().collect();
            slop = digits
                .parse::<u32>()
                .ok()
                .filter(|s| *s <= 100)
                .ok_or_else(|| {
                    syntax(
                        i,
                        "'~' after a phrase must be followed by a slop from 0 to 100",
                    )
                })?;
            i = end;
        }
        return Ok((
            Tok::Atom {
                field,
                kind: LeafKind::Phrase { text, slop },
            },
            i,
        ));
    }
    if chars[i] == '(' || chars[i] == '^' {
        return Err(syntax(i, "expected a word or phrase"));
    }
    let end = (i..chars.len())
        .find(|&j| ends_word(chars[j]))
        .unwrap_or(chars.len());
    let word: String = chars[i..end].iter().collect();
    let next = end;
    if field.is_none() {
        match word.as_str() {
            "AND" => return Ok((Tok::And, next)),
            "OR" => return Ok((Tok::Or, next)),
            "NOT" => return Ok((Tok::Not, next)),
            _ => {}
        }
    }
    let kind = if let Some(stem) = word
        .strip_suffix('*')
        .filter(|s| !s.is_empty() && !s.ends_with('*'))
    {
        LeafKind::Prefix(stem.to_owned())
    } else if let Some((stem, distance)) = word.rsplit_once('~').filter(|(s, _)| !s.is_empty()) {
        let distance = match distance {
            "" => None,
            "0" => Some(0),
            "1" => Some(1),
            "2" => Some(2),
            _ => {
                return Err(syntax(
                    start + stem.chars().count() + field.as_ref().map_or(0, |f| f.len() + 1),
                    "'~' after a word must be followed by an edit distance of 0, 1 or 2",
                ));
            }
        };
        LeafKind::Fuzzy {
            word: stem.to_owned(),
            distance,
        }
    } else {
        LeafKind::Word(word)
    };
    Ok((Tok::Atom { field, kind }, next))
}

pub(super) fn describe(tok: &Tok) -> &'static str {
    match tok {
        Tok::And => "'AND'",
        Tok::Or => "'OR'",
        Tok::Not => "'NOT'",
        Tok::Plus => "'+'",
        Tok::Minus => "'-'",
        _ => "token",
    }
}
