//! The fixed mixed query set, the same for every engine: one, two and three
//! words, a phrase, a date-filtered query and a faceted one, in turn.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One benchmark query.
#[derive(Clone, Debug)]
pub struct BenchQuery {
    /// Plain words (any may match), or the words of a phrase.
    pub words: Vec<String>,
    pub phrase: bool,
    /// Dates in `[from, to)`, as RFC 3339 strings.
    pub dates: Option<(String, String)>,
    /// Count the top values of `tags` and `source` over every match.
    pub facets: bool,
}

/// `n` queries over `vocabulary` (most frequent first); phrases come from `bodies`.
pub fn query_set(seed: u64, n: usize, vocabulary: &[&str], bodies: &[&str]) -> Vec<BenchQuery> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Words of middling frequency: the top ranks are stop words, the tail rare.
    let word = |rng: &mut ChaCha8Rng| vocabulary[rng.random_range(100..3000)].to_owned();
    (0..n)
        .map(|i| {
            let plain =
                |count: usize, rng: &mut ChaCha8Rng| (0..count).map(|_| word(rng)).collect();
            match i % 6 {
                0 => BenchQuery {
                    words: plain(1, &mut rng),
                    phrase: false,
                    dates: None,
                    facets: false,
                },
                1 => BenchQuery {
                    words: plain(2, &mut rng),
                    phrase: false,
                    dates: None,
                    facets: false,
                },
                2 => BenchQuery {
                    words: plain(3, &mut rng),
                    phrase: false,
                    dates: None,
                    facets: false,
                },
                3 => {
                    let body = bodies[rng.random_range(0..bodies.len())];
                    let words: Vec<&str> = body.split_whitespace().collect();
                    let at = rng.random_range(0..words.len().saturating_sub(1).max(1));
                    let pair = words[at..(at + 2).min(words.len())]
                        .iter()
                        .map(|w| w.trim_end_matches('.').to_lowercase())
                        .collect();
                    BenchQuery {
                        words: pair,
                        phrase: true,
                        dates: None,
                        facets: false,
                    }
                }
                4 => {
                    let year = rng.random_range(2015..2025);
                    BenchQuery {
                        words: plain(2, &mut rng),
                        phrase: false,
                        dates: Some((
                            format!("{year}-01-01T00:00:00Z"),
                            format!("{}-01-01T00:00:00Z", year + 1),
                        )),
                        facets: false,
                    }
                }
                _ => BenchQuery {
                    words: plain(2, &mut rng),
                    phrase: false,
                    dates: None,
                    facets: true,
                },
            }
        })
        .collect()
}
