//! Analyzers: how text becomes terms. Each is a tantivy tokenizer pipeline
//! registered on every collection's index under the analyzer's name.

use tantivy::Index;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, StopWordFilter,
    TextAnalyzer,
};

use crate::text::replay::{Record, Replay};
use crate::text::stem::MemoStemmer;

/// Tokens longer than this many bytes are dropped (they are never words).
const MAX_TOKEN_BYTES: usize = 255;

/// A named analyzer for TEXT fields (KEYWORD fields always use `keyword`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Analyzer {
    /// Unicode word segmentation, lowercase, ASCII folding.
    Standard,
    /// The whole value as one term.
    Keyword,
    /// Standard plus English stop words and the English stemmer.
    English,
    /// Standard plus the language's stop words (where tantivy has a list) and stemmer.
    Stemmed(Language),
}

const LANGUAGES: &[(&str, Language)] = &[
    ("arabic", Language::Arabic),
    ("danish", Language::Danish),
    ("dutch", Language::Dutch),
    ("finnish", Language::Finnish),
    ("french", Language::French),
    ("german", Language::German),
    ("greek", Language::Greek),
    ("hungarian", Language::Hungarian),
    ("italian", Language::Italian),
    ("norwegian", Language::Norwegian),
    ("portuguese", Language::Portuguese),
    ("romanian", Language::Romanian),
    ("russian", Language::Russian),
    ("spanish", Language::Spanish),
    ("swedish", Language::Swedish),
    ("tamil", Language::Tamil),
    ("turkish", Language::Turkish),
];

impl Analyzer {
    /// The analyzer called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(Analyzer::Standard),
            "keyword" => Some(Analyzer::Keyword),
            "english" => Some(Analyzer::English),
            _ => LANGUAGES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, lang)| Analyzer::Stemmed(*lang)),
        }
    }

    /// The analyzer's name, which is also its tokenizer name in tantivy.
    pub fn name(self) -> &'static str {
        match self {
            Analyzer::Standard => "standard",
            Analyzer::Keyword => "keyword",
            Analyzer::English => "english",
            Analyzer::Stemmed(lang) => LANGUAGES
                .iter()
                .find(|(_, l)| *l == lang)
                .map_or("standard", |(n, _)| n),
        }
    }

    /// Every analyzer name, for error messages.
    pub fn known_names() -> String {
        let mut names = vec!["standard", "english", "keyword"];
        names.extend(LANGUAGES.iter().map(|(n, _)| *n));
        names.join(", ")
    }

    #[cfg(test)]
    pub(crate) fn build_for_tests(self) -> TextAnalyzer {
        self.build()
    }

    fn build(self) -> TextAnalyzer {
        match self {
            Analyzer::Keyword => TextAnalyzer::from(RawTokenizer::default()),
            Analyzer::Standard => TextAnalyzer::from(Replay::new(standard().build())),
            Analyzer::English => stemmed(Language::English),
            Analyzer::Stemmed(lang) => stemmed(lang),
        }
    }
}

fn standard() -> tantivy::tokenizer::TextAnalyzerBuilder<impl tantivy::tokenizer::Tokenizer> {
    TextAnalyzer::builder(UnicodeWords)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
}

/// The Snowball project's English stop words: tantivy uses Snowball's lists for the
/// other languages, but Lucene's 33 words for English, which leaves "what", "which",
/// "how" and the like to add noise to natural-language queries.
const ENGLISH_STOP_WORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "would",
    "should",
    "could",
    "ought",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "cannot",
];

fn stemmed(lang: Language) -> TextAnalyzer {
    let stop = match lang {
        Language::English => Some(StopWordFilter::remove(
            ENGLISH_STOP_WORDS.iter().map(|w| w.to_string()),
        )),
        lang => StopWordFilter::new(lang),
    };
    match stop {
        Some(stop) => standard()
            .filter(Record)
            .filter(stop)
            .filter(MemoStemmer::new(lang))
            .build(),
        None => standard()
            .filter(Record)
            .filter(MemoStemmer::new(lang))
            .build(),
    }
}

/// One token of an analyzed text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub position: usize,
    /// Start and end (exclusive) in Unicode code points.
    pub start: usize,
    pub end: usize,
}

/// The tokens `analyzer` makes of `text`, with offsets in code points.
pub fn analyze(analyzer: Analyzer, text: &str) -> Vec<Token> {
    tokens_of(&mut analyzer.build(), text)
}

/// The tokens a tantivy analyzer makes of `text`, with offsets in code points.
pub(crate) fn tokens_of(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Token> {
    // Byte offset → code point offset, for every char boundary.
    let mut points = vec![0usize; text.len() + 1];
    let mut count = 0;
    for (byte, c) in text.char_indices() {
        for slot in points.iter_mut().skip(byte).take(c.len_utf8()) {
            *slot = count;
        }
        count += 1;
    }
    points[text.len()] = count;
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(Token {
            text: token.text.clone(),
            position: token.position,
            start: points[token.offset_from.min(text.len())],
            end: points[token.offset_to.min(text.len())],
        });
    }
    out
}

/// Splits text into words by the Unicode word boundary rules (UAX #29, from the
/// `unicode-segmentation` crate), keeping the words that hold a letter or digit.
/// tantivy's `SimpleTokenizer` splits at every non-alphanumeric character instead,
/// which breaks `U.S` and `don't` apart and keeps runs of CJK characters whole.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnicodeWords;

/// The token stream of [`UnicodeWords`].
pub struct UnicodeWordStream<'a> {
    words: super::words::Words<'a>,
    token: tantivy::tokenizer::Token,
}

impl tantivy::tokenizer::Tokenizer for UnicodeWords {
    type TokenStream<'a> = UnicodeWordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> UnicodeWordStream<'a> {
        UnicodeWordStream {
            words: super::words::words(text),
            token: tantivy::tokenizer::Token {
                position: usize::MAX,
                ..Default::default()
            },
        }
    }
}

impl tantivy::tokenizer::TokenStream for UnicodeWordStream<'_> {
    fn advance(&mut self) -> bool {
        let Some((offset, word)) = self.words.next() else {
            return false;
        };
        self.token.text.clear();
        self.token.text.push_str(word);
        self.token.offset_from = offset;
        self.token.offset_to = offset + word.len();
        self.token.position = self.token.position.wrapping_add(1);
        true
    }

    fn token(&self) -> &tantivy::tokenizer::Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut tantivy::tokenizer::Token {
        &mut self.token
    }
}

/// How a KEYWORD field's values are normalized before they are indexed,
/// compared, sorted and counted. Facets and suggestions show the values as
/// documents write them (see `search::spelling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Normalizer {
    /// Values as written: `Sony` and `sony` are two values.
    #[default]
    None,
    /// Lowercased, then folded to ASCII where a character has an ASCII form
    /// (`Café` and `CAFE` are both `cafe`).
    Lowercase,
}

impl Normalizer {
    /// The normalizer called `name` (empty: none), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "" => Some(Normalizer::None),
            "lowercase" => Some(Normalizer::Lowercase),
            _ => None,
        }
    }

    /// The normalizer's name as requests and definitions give it (empty: none).
    pub fn name(self) -> &'static str {
        match self {
            Normalizer::None => "",
            Normalizer::Lowercase => "lowercase",
        }
    }

    /// The tantivy tokenizer of a KEYWORD field with this normalizer, for its
    /// terms and its column alike.
    pub(crate) fn tokenizer(self) -> &'static str {
        match self {
            Normalizer::None => "raw",
            Normalizer::Lowercase => "keyword_lowercase",
        }
    }

    /// `value` as this normalizer indexes it.
    pub fn apply(self, value: &str) -> String {
        match self {
            Normalizer::None => value.to_owned(),
            Normalizer::Lowercase => {
                let mut analyzer = keyword_lowercase();
                let mut stream = analyzer.token_stream(value);
                stream
                    .next()
                    .map(|token| token.text.clone())
                    .unwrap_or_default()
            }
        }
    }
}

/// The whole value as one term, lowercased and folded to ASCII.
fn keyword_lowercase() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers every analyzer on `index` under its name, and the KEYWORD
/// normalizers for terms and columns.
pub(crate) fn register(index: &Index) {
    let manager = index.tokenizers();
    for analyzer in [Analyzer::Standard, Analyzer::Keyword, Analyzer::English]
        .into_iter()
        .chain(LANGUAGES.iter().map(|(_, l)| Analyzer::Stemmed(*l)))
    {
        manager.register(analyzer.name(), analyzer.build());
    }
    let lowercase = Normalizer::Lowercase.tokenizer();
    manager.register(lowercase, keyword_lowercase());
    index
        .fast_field_tokenizer()
        .register(lowercase, keyword_lowercase());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(analyzer: Analyzer, text: &str) -> Vec<String> {
        let mut a = analyzer.build();
        let mut stream = a.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    }

    #[test]
    fn analyzers() {
        assert_eq!(
            tokens(Analyzer::Standard, "Café Déjà-vu"),
            ["cafe", "deja", "vu"]
        );
        assert_eq!(
            tokens(
                Analyzer::English,
                "What are the Taliban running attacks for"
            ),
            ["taliban", "run", "attack"]
        );
        assert_eq!(tokens(Analyzer::Keyword, "New York"), ["New York"]);
    }

    #[test]
    fn unicode_word_boundaries() {
        assert_eq!(
            tokens(
                Analyzer::Standard,
                "Don't stop: U.S. war-torn 2.5 東京タワー"
            ),
            [
                "don't",
                "stop",
                "u.s",
                "war",
                "torn",
                "2.5",
                "東",
                "京",
                "タワー"
            ]
        );
    }

    #[test]
    fn offsets_are_code_points() {
        let tokens = analyze(Analyzer::English, "Déjà vu: the cafés");
        let got: Vec<(&str, usize, usize, usize)> = tokens
            .iter()
            .map(|t| (t.text.as_str(), t.position, t.start, t.end))
            .collect();
        assert_eq!(
            got,
            [("deja", 0, 0, 4), ("vu", 1, 5, 7), ("cafe", 3, 13, 18)]
        );
    }

    #[test]
    fn names_round_trip() {
        for name in Analyzer::known_names().split(", ") {
            assert_eq!(Analyzer::from_name(name).unwrap().name(), name);
        }
        assert!(Analyzer::from_name("klingon").is_none());
    }
}
