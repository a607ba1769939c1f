//! Text analysis: the analyzers fields are indexed with, and stemming.

pub(crate) mod analysis;
pub(crate) mod replay;
pub(crate) mod stem;
pub(crate) mod words;

/// Every token `analyzer` makes of `text`, as tantivy gives them (tests).
#[cfg(test)]
pub(crate) fn tantivy_tokens(
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
    text: &str,
) -> Vec<tantivy::tokenizer::Token> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.clone());
    }
    out
}
