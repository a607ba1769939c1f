//! Synonyms: sets of equivalent words and phrases (`usa, united states`), applied
//! at query time by rewriting the parsed query, so they work in both syntaxes and
//! with any analyzer. Only plain words without `field:` are rewritten.

use std::collections::HashMap;

use tantivy::query::Occur;

use super::parse::{Leaf, LeafKind, Node};
use crate::engine::error::{EngineError, Result};

/// The most synonym sets a collection may have.
pub const MAX_SETS: usize = 10_000;
/// The most words one synonym may have.
const MAX_WORDS: usize = 8;

/// A collection's synonym sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Synonyms {
    /// As given, for reading back.
    sets: Vec<String>,
    /// Lower-cased words of a synonym → the alternatives it stands for (itself included).
    by_words: HashMap<Vec<String>, Vec<Vec<String>>>,
    /// The most words of any synonym.
    longest: usize,
}

impl Synonyms {
    /// Parses sets like `usa, united states, america`; errors name `collection.synonyms[i]`.
    pub fn new(sets: &[String]) -> Result<Self> {
        if sets.len() > MAX_SETS {
            return Err(EngineError::invalid(
                "collection.synonyms",
                format!("{} synonym sets; the limit is {MAX_SETS}", sets.len()),
            ));
        }
        let mut out = Synonyms::default();
        for (i, set) in sets.iter().enumerate() {
            let path = format!("collection.synonyms[{i}]");
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
                    path,
                    format!(
                        "{set:?}: a synonym set is two or more words or phrases separated by commas"
                    ),
                ));
            }
            if let Some(long) = members.iter().find(|m| m.len() > MAX_WORDS) {
                return Err(EngineError::invalid(
                    path,
                    format!("{:?} has more than {MAX_WORDS} words", long.join(" ")),
                ));
            }
            for member in &members {
                let alternatives = out.by_words.entry(member.clone()).or_default();
                for other in &members {
                    if !alternatives.contains(other) {
                        alternatives.push(other.clone());
                    }
                }
                out.longest = out.longest.max(member.len());
            }
            out.sets.push(set.clone());
        }
        Ok(out)
    }

    /// The sets as given.
    pub fn sets(&self) -> &[String] {
        &self.sets
    }

    /// Rewrites runs of plain words that spell a synonym into an OR of its alternatives.
    pub fn apply(&self, node: Node) -> Node {
        if self.by_words.is_empty() {
            return node;
        }
        match node {
            Node::Leaf(leaf) => match self.rewrite(std::slice::from_ref(&leaf)) {
                Some(node) => node,
                None => Node::Leaf(leaf),
            },
            Node::Boost(inner, boost) => Node::Boost(Box::new(self.apply(*inner)), boost),
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
                        if let Some(node) = self.rewrite(&run[..len]) {
                            out.push((occur, node));
                            i += len;
                            continue 'items;
                        }
                    }
                    let (occur, node) = items[i].clone();
                    out.push((occur, self.apply(node)));
                    i += 1;
                }
                Node::Bool(out)
            }
        }
    }

    /// The OR of the alternatives of `leaves`, if they spell a synonym.
    fn rewrite(&self, leaves: &[Leaf]) -> Option<Node> {
        let words: Vec<String> = leaves
            .iter()
            .map(|l| match &l.kind {
                LeafKind::Word(w) if l.field.is_none() => Some(w.to_lowercase()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let alternatives = self.by_words.get(&words)?;
        let position = leaves[0].position;
        Some(Node::Bool(
            alternatives
                .iter()
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
    use crate::engine::query::{Operator, Syntax, parse};

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
        for bad in ["usa", "usa, ", ", x", &format!("a, {}", "w ".repeat(9))] {
            assert!(Synonyms::new(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }
}
