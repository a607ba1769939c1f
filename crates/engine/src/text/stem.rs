//! A stemming token filter that remembers the words it has stemmed.
//!
//! tantivy's `Stemmer` runs the Snowball algorithm on every token. Text follows
//! Zipf's law, so nearly every token of a large import is a word already seen,
//! and the algorithm took about an eighth of the indexing threads' time (a
//! profile of a 20,000-document import). This filter looks each word up in a
//! memo, one per language for the whole process (so its memory stays bounded
//! however many collections there are), and runs the same Snowball stemmer
//! (`frostem`, the crate tantivy's filter calls) only on a miss. Written by hand
//! because neither tantivy nor frostem offers a memo; the output is the same,
//! token for token.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock};

use frostem::Algorithm;
use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};
use tantivy::tokenizer::{Language, Token, TokenFilter, TokenStream, Tokenizer};

/// Shards of the memo, so that indexing threads rarely wait for each other.
const SHARDS: usize = 16;

/// Words a shard remembers before it starts again (64k words per language, at
/// most about 6 MB): enough for a language's working vocabulary, bounded against
/// a stream of distinct tokens (ids, numbers).
const WORDS_PER_SHARD: usize = 4096;

/// Longer words are stemmed each time rather than remembered.
const MAX_REMEMBERED_BYTES: usize = 32;

/// The filter: `Stemmer::new(language)` with a memo.
#[derive(Clone)]
pub struct MemoStemmer {
    stemmer: frostem::Stemmer,
    memo: Arc<Memo>,
}

struct Memo {
    shards: [Mutex<FxHashMap<Box<str>, Box<str>>>; SHARDS],
}

/// The memo of each language in use.
static MEMOS: LazyLock<Mutex<HashMap<Language, Arc<Memo>>>> = LazyLock::new(Default::default);

impl MemoStemmer {
    pub fn new(language: Language) -> Self {
        let memo = MEMOS
            .lock()
            .entry(language)
            .or_insert_with(|| {
                Arc::new(Memo {
                    shards: std::array::from_fn(|_| Mutex::new(FxHashMap::default())),
                })
            })
            .clone();
        MemoStemmer {
            stemmer: frostem::Stemmer::new(algorithm(language)),
            memo,
        }
    }
}

impl Memo {
    /// `word` stemmed into `out`.
    fn stem(&self, stemmer: frostem::Stemmer, word: &str, out: &mut String) {
        out.clear();
        if word.len() > MAX_REMEMBERED_BYTES {
            out.push_str(&stemmer.stem(word));
            return;
        }
        let shard = &self.shards[FxBuildHasher.hash_one(word) as usize % SHARDS];
        if let Some(stem) = shard.lock().get(word) {
            out.push_str(stem);
            return;
        }
        let stem = stemmer.stem(word);
        out.push_str(&stem);
        let mut words = shard.lock();
        if words.len() >= WORDS_PER_SHARD {
            words.clear();
        }
        words.insert(word.into(), stem.into());
    }
}

/// Empties every language's memo and gives its tables back to the allocator.
///
/// A memo fills during an import (the real-text corpus has about 95,000
/// distinct words, so every shard reaches its bound) and, left alone, kept
/// about 5 MB for the life of the process, while an idle server stems only
/// the words of its queries. The server calls this when it goes idle; the
/// next import stems its vocabulary again, a few milliseconds of Snowball.
pub fn forget_stems() {
    let memos: Vec<Arc<Memo>> = MEMOS.lock().values().cloned().collect();
    for memo in memos {
        for shard in &memo.shards {
            // Replaced, not cleared: `clear` keeps the table's capacity.
            let words = std::mem::take(&mut *shard.lock());
            drop(words);
        }
    }
}

/// tantivy's mapping of its `Language` to the Snowball algorithm (private there).
fn algorithm(language: Language) -> Algorithm {
    match language {
        Language::Arabic => Algorithm::Arabic,
        Language::Danish => Algorithm::Danish,
        Language::Dutch => Algorithm::Dutch,
        Language::English => Algorithm::English,
        Language::Finnish => Algorithm::Finnish,
        Language::French => Algorithm::French,
        Language::German => Algorithm::German,
        Language::Greek => Algorithm::Greek,
        Language::Hungarian => Algorithm::Hungarian,
        Language::Italian => Algorithm::Italian,
        Language::Norwegian => Algorithm::Norwegian,
        Language::Portuguese => Algorithm::Portuguese,
        Language::Romanian => Algorithm::Romanian,
        Language::Russian => Algorithm::Russian,
        Language::Spanish => Algorithm::Spanish,
        Language::Swedish => Algorithm::Swedish,
        Language::Tamil => Algorithm::Tamil,
        Language::Turkish => Algorithm::Turkish,
    }
}

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter {
            stemmer: self,
            inner,
        }
    }
}

#[derive(Clone)]
pub struct MemoStemmerFilter<T> {
    stemmer: MemoStemmer,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoStemmerStream {
            tail: self.inner.token_stream(text),
            stemmer: &self.stemmer,
            buffer: String::new(),
        }
    }
}

pub struct MemoStemmerStream<'a, T> {
    tail: T,
    stemmer: &'a MemoStemmer,
    buffer: String,
}

impl<T: TokenStream> TokenStream for MemoStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        let MemoStemmer { stemmer, memo } = self.stemmer;
        memo.stem(*stemmer, &token.text, &mut self.buffer);
        std::mem::swap(&mut token.text, &mut self.buffer);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

    use super::*;
    use crate::text::tantivy_tokens as tokens;

    /// The tests that look into the memos, one at a time: forgetting empties
    /// every memo of the process.
    static MEMO_TESTS: Mutex<()> = Mutex::new(());

    /// tantivy's English stemmer, a memo stemmer and an analyzer with it.
    fn english_pair() -> (TextAnalyzer, MemoStemmer, TextAnalyzer) {
        let expected = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(Stemmer::new(Language::English))
            .build();
        let memo = MemoStemmer::new(Language::English);
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(memo.clone())
            .build();
        (expected, memo, analyzer)
    }

    /// The same tokens as tantivy's `Stemmer`, from a memo that is warm, shared
    /// by clones and by analyzers of the same language, and overflowing.
    #[test]
    fn stems_as_tantivy_does() {
        let _one_at_a_time = MEMO_TESTS.lock();
        let texts = [
            (
                Language::English,
                "Running runners ran; the generously generalized generalizations running again, running",
            ),
            (
                Language::French,
                "Les chanteuses chantaient des chansons continuellement, chanteuses",
            ),
            (
                Language::German,
                "Die Häuser der Bäckereien und Bäckerinnen, Häuser",
            ),
            (
                Language::Russian,
                "Красивые девушки красиво танцевали, девушки",
            ),
        ];
        let long = format!("{}ing", "walk".repeat(20));
        for (language, text) in texts {
            let text = format!("{text} {long} {long}");
            let mut expected = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(Stemmer::new(language))
                .build();
            let memo = MemoStemmer::new(language);
            let mut first = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(memo.clone())
                .build();
            let mut clone = first.clone();
            let mut other = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(MemoStemmer::new(language))
                .build();
            let want = tokens(&mut expected, &text);
            assert_eq!(tokens(&mut first, &text), want, "first, {language:?}");
            assert_eq!(tokens(&mut first, &text), want, "again, {language:?}");
            assert_eq!(tokens(&mut clone, &text), want, "a clone, {language:?}");
            assert_eq!(tokens(&mut other, &text), want, "another, {language:?}");
            assert!(memo.memo.shards.iter().any(|s| !s.lock().is_empty()));
            assert!(Arc::ptr_eq(&memo.memo, &MemoStemmer::new(language).memo));
        }
        // More distinct words than the memo keeps: shards start again and the
        // words still come out right.
        let many: Vec<String> = (0..WORDS_PER_SHARD * SHARDS * 2)
            .map(|i| format!("walking{i}s"))
            .collect();
        let text = many.join(" ");
        let (mut expected, memo, mut analyzer) = english_pair();
        assert_eq!(tokens(&mut analyzer, &text), tokens(&mut expected, &text));
        for shard in &memo.memo.shards {
            assert!(shard.lock().len() <= WORDS_PER_SHARD);
        }
    }

    /// Forgetting empties the memos and hands their tables back; the words
    /// still come out right after it.
    #[test]
    fn forgets_and_stems_again() {
        let _one_at_a_time = MEMO_TESTS.lock();
        let text = "forgetting forgotten memories remembered again";
        let (mut expected, memo, mut analyzer) = english_pair();
        let want = tokens(&mut expected, text);
        assert_eq!(tokens(&mut analyzer, text), want);
        forget_stems();
        // Other tests may be indexing meanwhile, so only this text's words
        // are checked: none of them is left.
        for word in text.split(' ') {
            let shard = &memo.memo.shards[FxBuildHasher.hash_one(word) as usize % SHARDS];
            assert!(shard.lock().get(word).is_none(), "{word} still remembered");
        }
        assert_eq!(tokens(&mut analyzer, text), want);
    }
}
