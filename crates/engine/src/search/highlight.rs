//! Highlighting: finding what a query matched in a field's text, and cutting the
//! best fragments around it.
//!
//! Written here because tantivy's snippet generator only knows the exact terms of
//! a query: it misses prefix and fuzzy expansions (which match the words as
//! written, not the stems) and marks the words of a phrase wherever they stand,
//! not only where the phrase matches.

use std::collections::{BTreeSet, HashMap};

use tantivy::tokenizer::TextAnalyzer;

use crate::error::{EngineError, Result};
use crate::lang::query::MarkKind;
use crate::text::analysis::{Token, tokens_of};

/// How snippets look.
#[derive(Clone, Debug)]
pub struct Style {
    pub pre_tag: String,
    pub post_tag: String,
    /// The longest fragment, in characters.
    pub fragment_size: usize,
    /// The most fragments per field.
    pub max_fragments: usize,
}

/// The highlights of one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldHighlight {
    /// Best first, with matches wrapped in tags and the rest HTML-escaped.
    pub snippets: Vec<String>,
    /// Every match in the field's text: `(start, end)` in code points, end exclusive.
    pub matches: Vec<(usize, usize)>,
}

/// The most characters of a field highlighting reads (as Elasticsearch's
/// `max_analyzed_offset`): matches past them are neither marked nor
/// reported, so a huge field costs a bounded time.
pub const MAX_ANALYZED_CHARS: usize = 1_000_000;

/// Finds the `marks` in `text` and cuts snippets. `analyzer` is the field's,
/// `raw` the standard analyzer for marks on words as written. `None` when
/// nothing matches. Reads at most [`MAX_ANALYZED_CHARS`] characters, and
/// stops with an error when the request is cancelled.
pub fn highlight(
    text: &str,
    analyzer: &mut TextAnalyzer,
    raw: &mut TextAnalyzer,
    marks: &[&MarkKind],
    style: &Style,
) -> Result<Option<FieldHighlight>> {
    let text = match text.char_indices().nth(MAX_ANALYZED_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    let tokens = tokens_of(analyzer, text);
    check_cancelled()?;
    let mut spans: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut raw_tokens: Option<Vec<Token>> = None;
    for mark in marks {
        match mark {
            MarkKind::Term(term) => {
                spans.extend(
                    tokens
                        .iter()
                        .filter(|t| &t.text == term)
                        .map(|t| (t.start, t.end)),
                );
            }
            MarkKind::Raw(words) => {
                let raw_tokens = raw_tokens.get_or_insert_with(|| tokens_of(raw, text));
                spans.extend(
                    raw_tokens
                        .iter()
                        .filter(|t| words.contains(&t.text))
                        .map(|t| (t.start, t.end)),
                );
            }
            MarkKind::Phrase(terms, slop) => spans.extend(phrase_matches(&tokens, terms, *slop)),
        }
        check_cancelled()?;
    }
    if spans.is_empty() {
        return Ok(None);
    }
    let matches = merge(spans);
    let chars: Vec<char> = text.chars().collect();
    let windows = best_windows(&chars, &matches, style);
    let snippets = windows
        .into_iter()
        .map(|(start, end)| render(&chars, start, end, &matches, style))
        .collect();
    Ok(Some(FieldHighlight { snippets, matches }))
}

/// An error once the request that runs this search has gone away.
fn check_cancelled() -> Result<()> {
    if crate::search::pool::cancelled() {
        return Err(EngineError::Internal("the request was cancelled".into()));
    }
    Ok(())
}

/// The spans of every place the phrase matches: its first term, and each other term
/// within `slop` positions of where it should stand.
fn phrase_matches(tokens: &[Token], terms: &[(usize, String)], slop: u32) -> Vec<(usize, usize)> {
    let mut by_position: HashMap<usize, Vec<&Token>> = HashMap::new();
    for token in tokens {
        by_position.entry(token.position).or_default().push(token);
    }
    let slop = slop as usize;
    let mut out = Vec::new();
    let Some((_, first)) = terms.first() else {
        return out;
    };
    for start in tokens.iter().filter(|t| &t.text == first) {
        let mut found = vec![(start.start, start.end)];
        let all = terms.iter().skip(1).all(|(offset, term)| {
            let want = start.position + offset;
            let hit = (want.saturating_sub(slop)..=want + slop)
                .filter_map(|p| by_position.get(&p))
                .flatten()
                .find(|t| &t.text == term && t.position != start.position);
            if let Some(t) = hit {
                found.push((t.start, t.end));
            }
            hit.is_some()
        });
        if all {
            out.extend(found);
        }
    }
    out
}

/// Sorted spans with overlaps merged.
fn merge(spans: BTreeSet<(usize, usize)>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Up to `max_fragments` non-overlapping windows of at most `fragment_size`
/// characters, best first: most distinct matched words, then most matches, then
/// earliest.
///
/// One candidate window per match. Its bounds come from tables of the nearest
/// whitespace, and what it holds from a count kept as the window slides (its
/// ends move forward with the matches, and back by less than a window): linear
/// in the matches, however many a field has.
fn best_windows(chars: &[char], matches: &[(usize, usize)], style: &Style) -> Vec<(usize, usize)> {
    let size = style.fragment_size.max(1);
    if chars.len() <= size {
        return vec![(0, chars.len())];
    }
    let lead = size / 5;
    let (next_space, last_space) = whitespace_tables(chars);
    // Each match's word, lower-cased, as a number: windows count distinct ones.
    let mut numbers: HashMap<String, usize> = HashMap::new();
    let words: Vec<usize> = matches
        .iter()
        .map(|&(s, e)| {
            let word: String = chars[s..e].iter().collect::<String>().to_lowercase();
            let next = numbers.len();
            *numbers.entry(word).or_insert(next)
        })
        .collect();
    let mut window = Window {
        counts: vec![0; numbers.len()],
        distinct: 0,
        words: &words,
    };
    let (mut lo, mut hi) = (0, 0);
    let mut candidates: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(matches.len());
    for &(match_start, _) in matches {
        let mut start = match_start.saturating_sub(lead);
        // Start at a word boundary, without passing the match.
        if start > 0 {
            start = (next_space[start - 1] as usize + 1)
                .min(match_start)
                .max(start);
        }
        let mut end = (start + size).min(chars.len());
        // End at a word boundary if one is in the window's last fifth.
        if end < chars.len() {
            let floor = end - lead.min(end - start);
            if let Some(cut) = last_space[end - 1].checked_sub(1).map(|c| c as usize) {
                if cut >= floor && cut > match_start {
                    end = cut;
                }
            }
        }
        // The matches wholly inside: matches are sorted and do not overlap,
        // so both their starts and their ends increase.
        let new_lo = matches.partition_point(|&(s, _)| s < start);
        let new_hi = matches.partition_point(|&(_, e)| e <= end).max(new_lo);
        while lo > new_lo {
            lo -= 1;
            window.add(lo);
        }
        while hi < new_hi {
            window.add(hi);
            hi += 1;
        }
        while hi > new_hi {
            hi -= 1;
            window.remove(hi);
        }
        while lo < new_lo {
            window.remove(lo);
            lo += 1;
        }
        candidates.push((window.distinct, hi - lo, start, end));
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    for (_, _, start, end) in candidates {
        if chosen.len() == style.max_fragments {
            break;
        }
        if chosen.iter().all(|&(s, e)| end <= s || start >= e) {
            chosen.push((start, end));
        }
    }
    chosen
}

/// The distinct words among the matches a window holds.
struct Window<'a> {
    counts: Vec<u32>,
    distinct: usize,
    words: &'a [usize],
}

impl Window<'_> {
    fn add(&mut self, i: usize) {
        let count = &mut self.counts[self.words[i]];
        if *count == 0 {
            self.distinct += 1;
        }
        *count += 1;
    }

    fn remove(&mut self, i: usize) {
        let count = &mut self.counts[self.words[i]];
        *count -= 1;
        if *count == 0 {
            self.distinct -= 1;
        }
    }
}

/// For each position `i`: the first whitespace at or after it (or the
/// length), and one past the last whitespace at or before it (0 if none).
fn whitespace_tables(chars: &[char]) -> (Vec<u32>, Vec<u32>) {
    let len = chars.len() as u32;
    let mut next = vec![len; chars.len()];
    let mut upcoming = len;
    for i in (0..chars.len()).rev() {
        if chars[i].is_whitespace() {
            upcoming = i as u32;
        }
        next[i] = upcoming;
    }
    let mut last = vec![0; chars.len()];
    let mut seen = 0;
    for (i, c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            seen = i as u32 + 1;
        }
        last[i] = seen;
    }
    (next, last)
}

fn render(
    chars: &[char],
    start: usize,
    end: usize,
    matches: &[(usize, usize)],
    style: &Style,
) -> String {
    let mut out = String::new();
    let mut at = start;
    let first = matches.partition_point(|&(s, _)| s < start);
    let inside = matches[first..].iter().take_while(|&&(_, e)| e <= end);
    for &(s, e) in inside {
        escape_into(&mut out, &chars[at..s]);
        out.push_str(&style.pre_tag);
        escape_into(&mut out, &chars[s..e]);
        out.push_str(&style.post_tag);
        at = e;
    }
    escape_into(&mut out, &chars[at..end]);
    out.trim().to_owned()
}

fn escape_into(out: &mut String, chars: &[char]) {
    for c in chars {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(*c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::analysis::Analyzer;

    fn style(fragment_size: usize, max_fragments: usize) -> Style {
        Style {
            pre_tag: "[".into(),
            post_tag: "]".into(),
            fragment_size,
            max_fragments,
        }
    }

    fn run(text: &str, marks: &[MarkKind], style: &Style) -> Option<FieldHighlight> {
        let mut english = Analyzer::English.build_for_tests();
        let mut raw = Analyzer::Standard.build_for_tests();
        highlight(
            text,
            &mut english,
            &mut raw,
            &marks.iter().collect::<Vec<_>>(),
            style,
        )
        .unwrap()
    }

    #[test]
    fn terms_phrases_and_raw_words() {
        let text = "Peace talks: the peace process stalled; a process of peace & <calm>.";
        let phrase = MarkKind::Phrase(vec![(0, "peac".into()), (1, "process".into())], 0);
        let got = run(text, &[phrase], &style(500, 1)).unwrap();
        assert_eq!(
            got.snippets,
            ["Peace talks: the [peace] [process] stalled; a process of peace &amp; &lt;calm&gt;."]
        );
        assert_eq!(got.matches, [(17, 22), (23, 30)]);

        let term = MarkKind::Term("peac".into());
        assert_eq!(
            run(text, &[term], &style(500, 1)).unwrap().matches,
            [(0, 5), (17, 22), (53, 58)]
        );

        // Raw words match as written: "talks" but not "talk".
        let raw = MarkKind::Raw(vec!["talks".into(), "stall".into()]);
        assert_eq!(
            run(text, &[raw], &style(500, 1)).unwrap().matches,
            [(6, 11)]
        );
        assert!(run(text, &[MarkKind::Term("war".into())], &style(500, 1)).is_none());
    }

    #[test]
    fn sloppy_phrases_match_only_nearby() {
        let text = "process far away from any peace, then peace and the process";
        let phrase = MarkKind::Phrase(vec![(0, "peac".into()), (1, "process".into())], 1);
        // "peace and the process": and/the are stop words, process is 3 positions on.
        assert!(run(text, std::slice::from_ref(&phrase), &style(500, 1)).is_none());
        let wide = MarkKind::Phrase(vec![(0, "peac".into()), (1, "process".into())], 2);
        assert_eq!(
            run(text, &[wide], &style(500, 1)).unwrap().matches,
            [(38, 43), (52, 59)]
        );
    }

    #[test]
    fn several_fragments_best_first() {
        let filler = "lorem ipsum dolor sit amet ".repeat(4);
        let text = format!("{filler}kabul once. {filler}kabul airport kabul again. {filler}");
        let got = run(&text, &[MarkKind::Term("kabul".into())], &style(40, 2)).unwrap();
        assert_eq!(got.snippets.len(), 2);
        assert!(
            got.snippets[0].matches("[kabul]").count() == 2,
            "{:?}",
            got.snippets
        );
        assert!(
            got.snippets[1].contains("[kabul] once"),
            "{:?}",
            got.snippets
        );
        assert!(
            got.snippets.iter().all(|s| s.chars().count() <= 40 + 4 * 2),
            "{:?}",
            got.snippets
        );
        assert_eq!(got.matches.len(), 3);
    }

    /// The windows as first written: every candidate rescans every match.
    fn reference_windows(
        chars: &[char],
        matches: &[(usize, usize)],
        style: &Style,
    ) -> Vec<(usize, usize)> {
        let size = style.fragment_size.max(1);
        if chars.len() <= size {
            return vec![(0, chars.len())];
        }
        let lead = size / 5;
        let mut candidates: Vec<(usize, usize, usize, usize)> = matches
            .iter()
            .map(|&(match_start, _)| {
                let mut start = match_start.saturating_sub(lead);
                while start > 0 && start < match_start && !chars[start - 1].is_whitespace() {
                    start += 1;
                }
                let mut end = (start + size).min(chars.len());
                if end < chars.len() {
                    if let Some(cut) = (end - lead.min(end - start)..end)
                        .rev()
                        .find(|&i| chars[i].is_whitespace())
                    {
                        if cut > match_start {
                            end = cut;
                        }
                    }
                }
                let inside: Vec<&(usize, usize)> = matches
                    .iter()
                    .filter(|(s, e)| *s >= start && *e <= end)
                    .collect();
                let distinct: BTreeSet<String> = inside
                    .iter()
                    .map(|(s, e)| chars[*s..*e].iter().collect::<String>().to_lowercase())
                    .collect();
                (distinct.len(), inside.len(), start, end)
            })
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        for (_, _, start, end) in candidates {
            if chosen.len() == style.max_fragments {
                break;
            }
            if chosen.iter().all(|&(s, e)| end <= s || start >= e) {
                chosen.push((start, end));
            }
        }
        chosen
    }

    /// The sliding windows choose what rescanning every match chose, on texts
    /// of many lengths of words, spaces and matches.
    #[test]
    fn sliding_windows_choose_as_rescanning_does() {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as usize
        };
        let words = ["kabul", "Kabul", "airport", "x", "peace", "talks"];
        for round in 0..200 {
            let mut text = String::new();
            let mut matches = Vec::new();
            for _ in 0..next(120) + 1 {
                let word = words[next(words.len() as u64)];
                let start = text.chars().count();
                text.push_str(word);
                if word != "x" && next(3) > 0 {
                    matches.push((start, start + word.chars().count()));
                }
                text.push_str(&" ".repeat(next(3)));
                if next(5) == 0 {
                    text.push_str("long-unbroken-stretch-of-text");
                }
            }
            let chars: Vec<char> = text.chars().collect();
            let style = style(next(80) + 1, next(4) + 1);
            assert_eq!(
                best_windows(&chars, &matches, &style),
                reference_windows(&chars, &matches, &style),
                "round {round}: {text:?}"
            );
        }
    }

    /// Past MAX_ANALYZED_CHARS a field is neither read nor marked.
    #[test]
    fn a_huge_field_is_read_up_to_the_cap() {
        let text = "kabul ".repeat(MAX_ANALYZED_CHARS / 6 + 1000);
        let got = run(&text, &[MarkKind::Term("kabul".into())], &style(100, 2)).unwrap();
        assert_eq!(got.matches.len(), MAX_ANALYZED_CHARS / 6);
        assert!(got.matches.iter().all(|&(_, e)| e <= MAX_ANALYZED_CHARS));
        assert_eq!(got.snippets.len(), 2);
    }
}
