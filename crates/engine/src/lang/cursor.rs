//! The cursor the expression languages (the query syntax and filters) walk
//! their tokens with, and the syntax error each reports at a position.

use crate::error::EngineError;

/// Tokens, each at a character position, and where the parser stands.
pub(crate) struct Cursor<T> {
    tokens: Vec<(usize, T)>,
    pos: usize,
    /// The position past the last character: where errors at the end point.
    end: usize,
    /// The request field the text came from (`query`, `filter`).
    field: &'static str,
}

impl<T: Clone + PartialEq> Cursor<T> {
    pub(crate) fn new(tokens: Vec<(usize, T)>, end: usize, field: &'static str) -> Self {
        Cursor {
            tokens,
            pos: 0,
            end,
            field,
        }
    }

    /// The current token.
    pub(crate) fn peek(&self) -> Option<&T> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    /// The position of the current token (or the end).
    pub(crate) fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(p, _)| *p)
    }

    /// The current token, moving past it.
    pub(crate) fn next(&mut self) -> Option<T> {
        let token = self.peek().cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    /// Moves past the current token if it is `token`.
    pub(crate) fn eat(&mut self, token: &T) -> bool {
        let here = self.peek() == Some(token);
        if here {
            self.pos += 1;
        }
        here
    }

    /// Whether no token has been read yet.
    pub(crate) fn at_start(&self) -> bool {
        self.pos == 0
    }

    /// Whether every token has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// A syntax error at the current token.
    pub(crate) fn error(&self, message: impl Into<String>) -> EngineError {
        syntax(self.field, self.here(), message)
    }
}

/// A syntax error in the text of request field `field`, at `position`
/// (characters from 0).
pub(crate) fn syntax(
    field: &'static str,
    position: usize,
    message: impl Into<String>,
) -> EngineError {
    EngineError::Syntax {
        field,
        position,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_tokens_and_points_at_the_end_past_them() {
        let mut cursor = Cursor::new(vec![(0, 'a'), (2, 'b')], 3, "filter");
        assert!(cursor.at_start());
        assert!(!cursor.eat(&'b'));
        assert!(cursor.eat(&'a'));
        assert_eq!((cursor.peek(), cursor.here()), (Some(&'b'), 2));
        assert_eq!(cursor.next(), Some('b'));
        assert!(cursor.at_end());
        assert_eq!((cursor.next(), cursor.here()), (None, 3));
        let EngineError::Syntax {
            field, position, ..
        } = cursor.error("expected a value")
        else {
            panic!("a syntax error");
        };
        assert_eq!((field, position), ("filter", 3));
    }
}
