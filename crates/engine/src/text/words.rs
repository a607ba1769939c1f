//! Words by the Unicode word boundary rules (UAX #29), with a shortcut for
//! the plain ASCII words that make up most text.
//!
//! `unicode-segmentation` looks up every character's word-break class, which
//! was about a fifth of indexing time on English prose (see docs/decisions.md).
//! A run of ASCII letters and digits with ASCII white space (or the start or end
//! of the text) on both sides is one word under every rule of UAX #29: nothing
//! breaks between letters and digits, white space never joins a letter or
//! digit, and no rule looks across white space. Such runs are taken as they
//! are; every other run goes to `unicode-segmentation` together with the white
//! space before it (and the spaces of any kind just before that, which WB3d
//! joins to it), since that white space is what a leading combining mark attaches to
//! (rule WB4). The words are those `unicode_word_indices` gives for
//! the whole text; a test compares them over text made to be hard.

use unicode_segmentation::{UnicodeSegmentation, UnicodeWordIndices};

/// The ASCII characters that separate runs: WSegSpace, Newline, CR and LF,
/// and tab (Other), none of which any rule joins to a letter or digit.
fn separates(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// The spaces of word-break class WSegSpace, which rule WB3d joins together.
fn joined_space(c: char) -> bool {
    matches!(c, ' ' | '\u{1680}' | '\u{2000}'..='\u{2006}' | '\u{2008}'..='\u{200A}' | '\u{205F}' | '\u{3000}')
}

/// The words of `text` holding a letter or digit, with their byte offsets.
pub(crate) fn words(text: &str) -> Words<'_> {
    Words {
        text,
        at: 0,
        slow: None,
    }
}

pub(crate) struct Words<'a> {
    text: &'a str,
    /// Where the next run's white space starts.
    at: usize,
    /// The words of a run that needs the full rules, and where it starts.
    slow: Option<(usize, UnicodeWordIndices<'a>)>,
}

impl<'a> Iterator for Words<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        loop {
            if let Some((base, run)) = &mut self.slow {
                if let Some((offset, word)) = run.next() {
                    return Some((*base + offset, word));
                }
                self.slow = None;
            }
            let bytes = self.text.as_bytes();
            let space = self.at;
            while self.at < bytes.len() && separates(bytes[self.at]) {
                self.at += 1;
            }
            if self.at == bytes.len() {
                return None;
            }
            let start = self.at;
            let mut plain = true;
            while self.at < bytes.len() && !separates(bytes[self.at]) {
                plain &= bytes[self.at].is_ascii_alphanumeric();
                self.at += 1;
            }
            // Separators are ASCII, so `start` and `at` fall between characters.
            if plain {
                return Some((start, &self.text[start..self.at]));
            }
            // The spaces may continue back into the runs before (WB3d), where
            // no word ends: start there.
            let space = self.text[..space]
                .char_indices()
                .rev()
                .take_while(|&(_, c)| joined_space(c))
                .last()
                .map_or(space, |(i, _)| i);
            self.slow = Some((space, self.text[space..self.at].unicode_word_indices()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_rules(text: &str) -> Vec<(usize, &str)> {
        text.unicode_word_indices().collect()
    }

    #[test]
    fn plain_and_mixed_runs() {
        for text in [
            "",
            "   ",
            "hello world",
            "  The U.S. can't 3.14 e-mail a_b foo:bar x,y\tdone\n",
            "café naïve 東京タワー ไทย",
            "a \u{301}b",
            "a  \u{93F}x",
            "\u{2028} \u{1680} \u{93F}",
            " \u{1680} \u{93F}",
            "\u{93F}x",
            "x\u{200D}\u{1F600} 🇫🇷🇩🇪 1,000.5",
        ] {
            assert_eq!(
                words(text).collect::<Vec<_>>(),
                full_rules(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn any_text_splits_as_under_the_full_rules() {
        // Characters of every class the rules treat apart: letters, digits,
        // separators, mid-word and mid-number marks, extenders, combining
        // marks, joiners, format characters, ideographs, kana, Hebrew,
        // regional indicators, emoji.
        const ALPHABET: &[char] = &[
            'a',
            'Z',
            '7',
            '0',
            ' ',
            ' ',
            '\t',
            '\n',
            '\r',
            '\u{0B}',
            '\u{0C}',
            '.',
            ':',
            '\'',
            ',',
            ';',
            '_',
            '-',
            '"',
            '\u{301}',
            '\u{93F}',
            '\u{200D}',
            '\u{200B}',
            '\u{AD}',
            '\u{2060}',
            '東',
            'タ',
            'ー',
            'ก',
            'א',
            '\u{5F3}',
            '\u{1F1EB}',
            '\u{1F1F7}',
            '\u{1F600}',
            'é',
            '\u{A0}',
            '\u{3000}',
            '\u{85}',
            '\u{2028}',
            '٣',
            '\u{FF0E}',
            '\u{2000}',
            '\u{1680}',
            '\u{205F}',
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let rounds = std::env::var("TROVE_WORDS_ROUNDS").map_or(20_000, |n| n.parse().unwrap());
        for _ in 0..rounds {
            let len = (next() % 32) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            assert_eq!(
                words(&text).collect::<Vec<_>>(),
                full_rules(&text),
                "{text:?}"
            );
        }
    }

    /// Over a file of real text: `TROVE_WORDS_FILE=corpus.jsonl cargo test
    /// --release -p trove-engine words -- --ignored`.
    #[test]
    #[ignore = "needs TROVE_WORDS_FILE"]
    fn a_file_splits_as_under_the_full_rules() {
        let path = std::env::var("TROVE_WORDS_FILE").expect("TROVE_WORDS_FILE");
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines() {
            assert_eq!(
                words(line).collect::<Vec<_>>(),
                full_rules(line),
                "{line:?}"
            );
        }
    }
}
