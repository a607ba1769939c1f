//! The standard analyzer's tokens of a text, made once for a stemmed field and
//! its raw shadow.
//!
//! A stemmed TEXT field's analyzer is the standard analyzer followed by stop
//! words and a stemmer, and its raw shadow (the words as written, for prefix
//! and fuzzy terms) is the same text through the standard analyzer alone. So
//! every word of an import was split, lowercased and folded twice; the shadow
//! took about a third of an import's CPU (docs/decisions.md). The stemmed
//! analyzers now record the standard analyzer's tokens as they pass
//! ([`Record`]), and the standard analyzer ([`Replay`]) replays a recording of
//! the very same text made on the same thread instead of analysing it again.
//! tantivy indexes a document's fields in the order of their ids, and a shadow
//! is added after every declared field, so the shadow comes second.
//!
//! A replay is the standard analyzer's output by construction: a recording is
//! used only for a text equal to the one recorded, and only once its stream
//! ran to the end. Written by hand because tantivy has no way to share one
//! field's tokens with another.

use std::cell::RefCell;

use tantivy::tokenizer::{
    BoxTokenStream, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// Recordings a thread keeps: a document's stemmed fields (title and body, or
/// a few values of a list) until their shadows are indexed.
const RECORDINGS: usize = 4;

/// Longer texts are not recorded (each recording holds a copy of its text).
const MAX_RECORDED_BYTES: usize = 256 * 1024;

/// The standard analyzer's tokens of one text.
#[derive(Default)]
pub(crate) struct Recording {
    source: String,
    /// The tokens' texts, one after the other.
    texts: String,
    /// Per token: where its text ends in `texts`, its offsets and position.
    tokens: Vec<(usize, usize, usize, usize)>,
}

thread_local! {
    /// This thread's recordings of streams that ran to their end, the newest
    /// last. A stream's recording joins them only then, so each holds every
    /// token of its text.
    static RECORDED: RefCell<Vec<Recording>> = const { RefCell::new(Vec::new()) };
}

/// A filter recording the tokens that reach it, for [`Replay`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Record;

impl TokenFilter for Record {
    type Tokenizer<T: Tokenizer> = RecordTokenizer<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> RecordTokenizer<T> {
        RecordTokenizer { inner }
    }
}

#[derive(Clone)]
pub(crate) struct RecordTokenizer<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for RecordTokenizer<T> {
    type TokenStream<'a> = RecordStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let recording = (text.len() <= MAX_RECORDED_BYTES).then(|| {
            // With the list full, the oldest recording's buffers are reused.
            let mut recording = RECORDED
                .try_with(|r| {
                    let mut r = r.borrow_mut();
                    if r.len() >= RECORDINGS {
                        r.remove(0)
                    } else {
                        Recording::default()
                    }
                })
                .unwrap_or_default();
            recording.source.clear();
            recording.source.push_str(text);
            recording.texts.clear();
            recording.tokens.clear();
            recording
        });
        RecordStream {
            tail: self.inner.token_stream(text),
            recording,
        }
    }
}

pub(crate) struct RecordStream<S> {
    tail: S,
    /// Filled as tokens pass; kept for replay once the stream ends.
    recording: Option<Recording>,
}

impl<S: TokenStream> TokenStream for RecordStream<S> {
    fn advance(&mut self) -> bool {
        let more = self.tail.advance();
        if let Some(recording) = &mut self.recording {
            if more {
                let token = self.tail.token();
                recording.texts.push_str(&token.text);
                recording.tokens.push((
                    recording.texts.len(),
                    token.offset_from,
                    token.offset_to,
                    token.position,
                ));
            } else if let Some(recording) = self.recording.take() {
                let _ = RECORDED.try_with(|r| r.borrow_mut().push(recording));
            }
        }
        more
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// The standard analyzer: replays this thread's recording of the text if it
/// has one, and analyses the text with `live` otherwise.
#[derive(Clone)]
pub(crate) struct Replay {
    live: TextAnalyzer,
}

impl Replay {
    pub(crate) fn new(live: TextAnalyzer) -> Replay {
        Replay { live }
    }
}

/// The recording of `text` on this thread, taken out of the list.
fn take_recording(text: &str) -> Option<Recording> {
    RECORDED
        .try_with(|r| {
            let mut r = r.borrow_mut();
            let i = r.iter().rposition(|rec| rec.source == text)?;
            Some(r.remove(i))
        })
        .ok()
        .flatten()
}

impl Tokenizer for Replay {
    type TokenStream<'a> = ReplayStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ReplayStream<'a> {
        match take_recording(text) {
            Some(recording) => ReplayStream::Recorded {
                recording,
                next: 0,
                token: Token::default(),
            },
            None => ReplayStream::Live(self.live.token_stream(text)),
        }
    }
}

pub(crate) enum ReplayStream<'a> {
    Recorded {
        recording: Recording,
        next: usize,
        token: Token,
    },
    Live(BoxTokenStream<'a>),
}

impl TokenStream for ReplayStream<'_> {
    fn advance(&mut self) -> bool {
        match self {
            ReplayStream::Live(stream) => stream.advance(),
            ReplayStream::Recorded {
                recording,
                next,
                token,
            } => {
                let Some(&(end, from, to, position)) = recording.tokens.get(*next) else {
                    return false;
                };
                let start = match *next {
                    0 => 0,
                    i => recording.tokens[i - 1].0,
                };
                token.text.clear();
                token.text.push_str(&recording.texts[start..end]);
                token.offset_from = from;
                token.offset_to = to;
                token.position = position;
                *next += 1;
                true
            }
        }
    }

    fn token(&self) -> &Token {
        match self {
            ReplayStream::Live(stream) => stream.token(),
            ReplayStream::Recorded { token, .. } => token,
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        match self {
            ReplayStream::Live(stream) => stream.token_mut(),
            ReplayStream::Recorded { token, .. } => token,
        }
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::{Language, TextAnalyzer};

    use super::*;
    use crate::text::analysis::Analyzer;
    use crate::text::tantivy_tokens as tokens;

    /// The texts this thread holds recordings of, oldest first.
    fn recorded() -> Vec<String> {
        RECORDED.with(|r| r.borrow().iter().map(|rec| rec.source.clone()).collect())
    }

    /// The standard analyzer with this thread's recordings dropped, so that
    /// it analyses: what a replay must give.
    fn live() -> TextAnalyzer {
        RECORDED.with(|r| r.borrow_mut().clear());
        Analyzer::Standard.build_for_tests()
    }

    /// A text a stemmed analyzer has seen on this thread is replayed to the
    /// standard analyzer as the standard analyzer would make it, once.
    #[test]
    fn replays_what_the_standard_analyzer_makes() {
        let long = "x".repeat(300);
        let texts = [
            "The Quick brown foxes were running; Straße, café and naïve résumés.".to_owned(),
            format!("a {long} word after a long one, then ﬁnally ligatures and 日本語の文章"),
            "  leading spaces, trailing ones  ".to_owned(),
            String::new(),
            "the of and a to in is".to_owned(),
        ];
        for text in &texts {
            let want = tokens(&mut live(), text);
            let mut english = Analyzer::English.build_for_tests();
            let mut german = Analyzer::Stemmed(Language::German).build_for_tests();
            let mut standard = Analyzer::Standard.build_for_tests();
            tokens(&mut english, text);
            assert_eq!(recorded(), vec![text.clone()]);
            assert_eq!(tokens(&mut standard, text), want, "replayed: {text:?}");
            assert!(recorded().is_empty(), "a recording is used once");
            // Nothing recorded: analysed as usual.
            assert_eq!(tokens(&mut standard, text), want, "live: {text:?}");
            // Another language's stemmed analyzer records the same tokens.
            tokens(&mut german, text);
            assert_eq!(tokens(&mut standard, text), want, "after German: {text:?}");
        }
    }

    /// A document's title and body, recorded one after the other, are each
    /// replayed for their own text; an equal-length different text is not.
    #[test]
    fn replays_each_text_for_itself() {
        let title = "Running Dogs";
        let body = "Walking cats";
        let mut english = Analyzer::English.build_for_tests();
        let mut standard = live();
        let want_title = tokens(&mut standard, title);
        let want_body = tokens(&mut standard, body);
        let other = "Barking Dogs";
        let want_other = tokens(&mut standard, other);
        tokens(&mut english, title);
        tokens(&mut english, body);
        assert_eq!(tokens(&mut standard, title), want_title);
        assert_eq!(tokens(&mut standard, body), want_body);
        tokens(&mut english, title);
        assert_eq!(other.len(), title.len());
        assert_ne!(want_other, want_title);
        assert_eq!(tokens(&mut standard, other), want_other);
        assert_eq!(recorded(), vec![title.to_owned()]);
    }

    /// A stemmed stream left before its end records nothing a replay would
    /// use, and only the newest recordings are kept.
    #[test]
    fn keeps_only_whole_recent_recordings() {
        let text = "one two three four";
        let mut english = Analyzer::English.build_for_tests();
        let mut standard = live();
        let want = tokens(&mut standard, text);
        {
            let mut stream = english.token_stream(text);
            assert!(stream.advance());
        }
        assert!(recorded().is_empty());
        assert_eq!(tokens(&mut standard, text), want);
        for i in 0..RECORDINGS + 3 {
            tokens(&mut english, &format!("text number {i}"));
        }
        let kept = recorded();
        assert_eq!(kept.len(), RECORDINGS);
        assert_eq!(
            kept.last().unwrap(),
            &format!("text number {}", RECORDINGS + 2)
        );
    }
}
