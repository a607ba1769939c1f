//! Synonyms: sets of equivalent words and phrases (`usa, united states`), applied
//! at query time by rewriting the parsed query, so they work in both syntaxes and
//! with any analyzer. Only plain words without `field:` are rewritten.

use std::collections::{HashMap, HashSet};

use tantivy::query::Occur;

use super::parse::{Leaf, LeafKind, Node};
use crate::error::{EngineError, Result};

/// The most synonym sets a collection may have.
pub const MAX_SETS: usize = 10_000;
/// The most words or phrases one set may have.
pub const MAX_MEMBERS: usize = 256;
/// The most words and phrases of all sets together.
pub const MAX_TOTAL_MEMBERS: usize = 100_000;
/// The most alternatives synonyms add to one query: past it, the query's
/// later words stay as written (a query never fails because of synonyms).
pub const MAX_ALTERNATIVES: usize = 1024;
/// The most words one synonym may have.
const MAX_WORDS: usize = 8;

/// A collection's synonym sets.
///
/// Each member maps to the sets it belongs to, not to a copy of their members:
/// building is linear in the sets' size, and a query's alternatives are
/// gathered when it is rewritten, within [`MAX_ALTERNATIVES`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Synonyms {
    /// As given, for reading back.
    sets: Vec<String>,
    /// The lower-cased words of each member of each set.
    members: Vec<Vec<Vec<String>>>,
    /// Lower-cased words of a synonym → the sets it is a member of.
    by_words: HashMap<Vec<String>, Vec<usize>>,
    /// The most words of any synonym.
    longest: usize,
}

impl Synonyms {
    /// Parses sets like `usa, united states, america`; errors name `synonyms[i]`.
    pub fn new(sets: &[String]) -> Result<Self> {
        if sets.len() > MAX_SETS {
            return Err(EngineError::invalid(
                "synonyms",
                format!("{} synonym sets; the limit is {MAX_SETS}", sets.len()),
            ));
        }
        let mut out = Synonyms::default();
        let mut total = 0;
        for (i, set) in sets.iter().enumerate() {
            let path = || format!("synonyms[{i}]");
            let members: Vec<Vec<String>> = set
                .split(',')
                .map(|m| {
                    m.split_whitespace()
                        .map(str::to_lowercase)
                        .collect::<Vec<_>>()
                })
                .collect();
            if members.len() < 2 || members.iter().any(Vec::is_empty) {
                return Err(EngineError::invalid(
                    path(),
                    format!(
                        "{set:?}: a synonym set is two or more words or phrases separated by commas"
                    ),
                ));
            }
            if members.len() > MAX_MEMBERS {
                return Err(EngineError::invalid(
                    path(),
                    format!(
                        "a set of {} words or phrases; the limit is {MAX_MEMBERS} per set",
                        members.len()
                    ),
                ));
            }
            total += members.len();
            if total > MAX_TOTAL_MEMBERS {
                return Err(EngineError::invalid(
                    path(),
                    format!("the sets hold more than {MAX_TOTAL_MEMBERS} words and phrases in all"),
                ));
            }
            if let Some(long) = members.iter().find(|m| m.len() > MAX_WORDS) {
                return Err(EngineError::invalid(
                    path(),
                    format!("{:?} has more than {MAX_WORDS} words", long.join(" ")),
                ));
            }
            for member in &members {
                let sets = out.by_words.entry(member.clone()).or_default();
                if sets.last() != Some(&i) {
                    sets.push(i);
                }
                out.longest = out.longest.max(member.len());
            }
            out.members.push(members);
            out.sets.push(set.clone());
        }
        Ok(out)
    }

    /// The sets as given.
    pub fn sets(&self) -> &[String] {
        &self.sets
    }

    /// Rewrites runs of plain words that spell a synonym into an OR of its
    /// alternatives, adding at most [`MAX_ALTERNATIVES`] in all.
    pub fn apply(&self, node: Node) -> Node {
        if self.by_words.is_empty() {
            return node;
        }
        let mut budget = MAX_ALTERNATIVES;
        self.apply_within(node, &mut budget)
    }

    fn apply_within(&self, node: Node, budget: &mut usize) -> Node {
        match node {
            Node::Leaf(leaf) => match self.rewrite(std::slice::from_ref(&leaf), budget) {
                Some(node) => node,
                None => Node::Leaf(leaf),
            },
            Node::Boost(inner, boost) => {
                Node::Boost(Box::new(self.apply_within(*inner, budget)), boost)
            }
            Node::Bool(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut i = 0;
                'items: while i < items.len() {
                    // The longest run of plain words with the same occur that spells a synonym.
                    let occur = items[i].0;
                    let run: Vec<Leaf> = items[i..]
                        .iter()
                        .take(self.longest)
                        .map_while(|(o, n)| match n {
                            Node::Leaf(
                                leaf @ Leaf {
                                    field: None,
                                    kind: LeafKind::Word(_),
                                    ..
                                },
                            ) if *o == occur => Some(leaf.clone()),
                            _ => None,
                        })
                        .collect();
                    for len in (1..=run.len()).rev() {
                        if let Some(node) = self.rewrite(&run[..len], budget) {
                            out.push((occur, node));
                            i += len;
                            continue 'items;
                        }
                    }
                    let (occur, node) = items[i].clone();
                    out.push((occur, self.apply_within(node, budget)));
                    i += 1;
                }
                Node::Bool(out)
            }
        }
    }

    /// The OR of the alternatives of `leaves`, if they spell a synonym and its
    /// alternatives fit in `budget` (which they then use up).
    fn rewrite(&self, leaves: &[Leaf], budget: &mut usize) -> Option<Node> {
        let words: Vec<String> = leaves
            .iter()
            .map(|l| match &l.kind {
                LeafKind::Word(w) if l.field.is_none() => Some(w.to_lowercase()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let sets = self.by_words.get(&words)?;
        // The members of every set the words belong to, each once, in order;
        // no more than the budget allows.
        let mut seen = HashSet::new();
        let mut alternatives = Vec::new();
        for member in sets.iter().flat_map(|&set| &self.members[set]) {
            if seen.insert(member) {
                if alternatives.len() == *budget {
                    return None;
                }
                alternatives.push(member);
            }
        }
        *budget -= alternatives.len();
        let position = leaves[0].position;
        Some(Node::Bool(
            alternatives
                .into_iter()
                .map(|alt| {
                    let kind = match alt.as_slice() {
                        [word] => LeafKind::Word(word.clone()),
                        words => LeafKind::Phrase {
                            text: words.join(" "),
                            slop: 0,
                        },
                    };
                    (
                        Occur::Should,
                        Node::Leaf(Leaf {
                            field: None,
                            kind,
                            position,
                        }),
                    )
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::query::{Operator, Syntax, parse};

    fn synonyms() -> Synonyms {
        Synonyms::new(&[
            "usa, united states, america".into(),
            "car, automobile".into(),
        ])
        .unwrap()
    }

    fn leaves(node: &Node, out: &mut Vec<String>) {
        match node {
            Node::Leaf(Leaf {
                kind: LeafKind::Word(w),
                ..
            }) => out.push(w.clone()),
            Node::Leaf(Leaf {
                kind: LeafKind::Phrase { text, .. },
                ..
            }) => out.push(format!("\"{text}\"")),
            Node::Leaf(_) => out.push("?".into()),
            Node::Boost(inner, _) => leaves(inner, out),
            Node::Bool(items) => {
                out.push("(".into());
                for (_, n) in items {
                    leaves(n, out);
                }
                out.push(")".into());
            }
        }
    }

    fn check(query: &str, want: &str) {
        let node = parse(query, Syntax::Full, Operator::Or).unwrap().unwrap();
        let mut out = Vec::new();
        leaves(&synonyms().apply(node), &mut out);
        assert_eq!(out.join(" "), want, "{query:?}");
    }

    #[test]
    fn rewrites_words_and_phrases() {
        check("usa", "( usa \"united states\" america )");
        check(
            "United States economy",
            "( ( usa \"united states\" america ) economy )",
        );
        check("cheap car", "( cheap ( car automobile ) )");
        check("united kingdom", "( united kingdom )");
        check("title:usa", "usa");
        check("\"usa\"", "\"usa\"");
        check("+united states", "( united states )");
    }

    #[test]
    fn rejects_bad_sets() {
        let too_many = (0..=MAX_MEMBERS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        for bad in [
            "usa",
            "usa, ",
            ", x",
            &format!("a, {}", "w ".repeat(9)),
            &too_many,
        ] {
            assert!(Synonyms::new(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        let most = (0..MAX_MEMBERS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>();
        assert!(Synonyms::new(&[most.join(", ")]).is_ok());
        let sets = vec![most.join(", "); MAX_TOTAL_MEMBERS / MAX_MEMBERS + 1];
        assert!(Synonyms::new(&sets).is_err());
    }

    /// A word in several sets stands for the members of all of them, each once.
    #[test]
    fn a_word_in_several_sets_gathers_them_all() {
        let synonyms =
            Synonyms::new(&["car, auto".into(), "car, automobile, auto".into()]).unwrap();
        let node = parse("car", Syntax::Full, Operator::Or).unwrap().unwrap();
        let mut out = Vec::new();
        leaves(&synonyms.apply(node), &mut out);
        assert_eq!(out.join(" "), "( car auto automobile )");
    }

    /// A query repeating a member of a large set adds at most
    /// MAX_ALTERNATIVES alternatives; the words past that stay as written.
    #[test]
    fn alternatives_stop_at_the_budget() {
        let set = (0..MAX_MEMBERS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let synonyms = Synonyms::new(&[set]).unwrap();
        let query = "w7 ".repeat(1000);
        let node = parse(&query, Syntax::Full, Operator::Or).unwrap().unwrap();
        let mut out = Vec::new();
        leaves(&synonyms.apply(node), &mut out);
        let words = out.iter().filter(|w| w.starts_with('w')).count();
        let rewritten = MAX_ALTERNATIVES / MAX_MEMBERS;
        assert_eq!(words, rewritten * MAX_MEMBERS + (1000 - rewritten));
    }
}
