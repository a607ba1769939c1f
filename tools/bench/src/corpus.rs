//! A deterministic generator of news-like documents: words drawn with a Zipf
//! distribution from `tools/bench/vocabulary.txt` (most frequent first), bodies of a
//! few hundred to a couple of thousand words, dates over ten years, tags and a
//! source. The same seed gives the same corpus on every machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Zipf};
use serde_json::{Map, Value, json};

const VOCABULARY: &str = include_str!("../vocabulary.txt");
const SOURCES: &[&str] = &[
    "reuters", "ap", "afp", "bbc", "guardian", "nyt", "wsj", "ft", "dw", "nhk", "abc", "cbc",
];
const TAGS: &[&str] = &[
    "politics",
    "economy",
    "science",
    "health",
    "sport",
    "technology",
    "climate",
    "energy",
    "markets",
    "europe",
    "asia",
    "africa",
    "americas",
    "elections",
    "education",
    "space",
    "transport",
    "culture",
    "music",
    "film",
    "law",
    "security",
    "trade",
    "housing",
    "food",
    "travel",
    "weather",
    "labour",
    "media",
    "religion",
];
/// 2015-01-01T00:00:00Z.
const START_SECONDS: i64 = 1_420_070_400;
const TEN_YEARS_SECONDS: i64 = 3_652 * 86_400;

/// Generates documents one by one.
pub struct Corpus {
    words: Vec<&'static str>,
    rng: ChaCha8Rng,
    word: Zipf<f64>,
    extra_words: Exp<f64>,
    tag: Zipf<f64>,
    source: Zipf<f64>,
    next: u64,
}

impl Corpus {
    pub fn new(seed: u64) -> Self {
        let words: Vec<&'static str> = VOCABULARY
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        Corpus {
            word: Zipf::new(words.len() as f64, 1.0).expect("a valid Zipf"),
            words,
            rng: ChaCha8Rng::seed_from_u64(seed),
            // Bodies: 200 words plus an exponential tail of mean 250, at most 2000.
            extra_words: Exp::new(1.0 / 250.0).expect("a valid rate"),
            tag: Zipf::new(TAGS.len() as f64, 1.0).expect("a valid Zipf"),
            source: Zipf::new(SOURCES.len() as f64, 0.8).expect("a valid Zipf"),
            next: 0,
        }
    }

    fn words(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n * 8);
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            let rank = self.word.sample(&mut self.rng) as usize;
            out.push_str(self.words[rank - 1]);
        }
        out
    }

    /// The vocabulary, most frequent first.
    pub fn vocabulary(&self) -> &[&'static str] {
        &self.words
    }

    /// The next document: `id` and its fields.
    pub fn next_doc(&mut self) -> (String, Map<String, Value>) {
        let id = format!("n{:07}", self.next);
        self.next += 1;
        let title_len = self.rng.random_range(5..=12);
        let mut title = self.words(title_len);
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let body_len = (200.0 + self.extra_words.sample(&mut self.rng)).min(2000.0) as usize;
        let mut body = String::new();
        let mut left = body_len;
        while left > 0 {
            let sentence = self.rng.random_range(8..=25).min(left);
            if !body.is_empty() {
                body.push(' ');
            }
            let mut s = self.words(sentence);
            if let Some(first) = s.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            body.push_str(&s);
            body.push('.');
            left -= sentence;
        }
        let seconds = START_SECONDS + self.rng.random_range(0..TEN_YEARS_SECONDS);
        let date = time::OffsetDateTime::from_unix_timestamp(seconds)
            .expect("a date in range")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 formats");
        let tag_count = self.rng.random_range(1..=3);
        let mut tags: Vec<&str> = Vec::new();
        while tags.len() < tag_count {
            let tag = TAGS[self.tag.sample(&mut self.rng) as usize - 1];
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        let source = SOURCES[self.source.sample(&mut self.rng) as usize - 1];
        let fields = json!({
            "title": title,
            "body": body,
            "date": date,
            "tags": tags,
            "source": source,
        });
        let Value::Object(fields) = fields else {
            unreachable!("an object literal")
        };
        (id, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_news_sized() {
        let a: Vec<_> = (0..50)
            .map({
                let mut c = Corpus::new(7);
                move |_| c.next_doc()
            })
            .collect();
        let b: Vec<_> = (0..50)
            .map({
                let mut c = Corpus::new(7);
                move |_| c.next_doc()
            })
            .collect();
        assert_eq!(a, b);
        let bytes: usize = a
            .iter()
            .map(|(_, f)| serde_json::to_string(f).unwrap().len())
            .sum();
        let mean = bytes / a.len();
        assert!(
            (1500..6000).contains(&mean),
            "mean document of {mean} bytes"
        );
        assert_eq!(a[3].0, "n0000003");
    }
}
