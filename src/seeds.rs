//! Seed articles: plain-text files that start with a `date YYYY-MM-DD` header,
//! loaded into the `news` collection at start-up. The document id is the file
//! name without its extension, so loading twice changes nothing but versions.

use std::path::Path;

use serde_json::Value;

use crate::engine::{
    CollectionName, CollectionSchema, DocId, Engine, EngineError, FieldSpec, FieldType, Fields,
};

/// The collection seeds load into.
pub const NEWS: &str = "news";

/// The longest title taken from an article's first sentence, in characters.
const MAX_TITLE_CHARS: usize = 300;

/// The schema of the `news` collection.
pub fn news_schema() -> Vec<FieldSpec> {
    let field = |name: &str, ty, analyzer: &str, boost| FieldSpec {
        name: name.into(),
        ty: Some(ty),
        analyzer: analyzer.into(),
        filterable: false,
        sortable: false,
        facetable: false,
        boost,
        normalizer: String::new(),
    };
    let mut date = field("date", FieldType::Timestamp, "", 0.0);
    date.filterable = true;
    date.sortable = true;
    date.facetable = true;
    let mut words = field("words", FieldType::Integer, "", 0.0);
    words.filterable = true;
    words.sortable = true;
    let mut source = field("source", FieldType::Keyword, "", 0.0);
    source.filterable = true;
    source.facetable = true;
    vec![
        field("title", FieldType::Text, "english", 2.0),
        field("body", FieldType::Text, "english", 0.0),
        date,
        words,
        source,
    ]
}

/// A parsed seed article.
#[derive(Debug, PartialEq)]
pub struct Article {
    pub date: String,
    pub title: String,
    pub body: String,
}

/// Parses a seed file's text.
pub fn parse_article(text: &str) -> Result<Article, String> {
    let rest = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .strip_prefix("date")
        .ok_or("missing the `date YYYY-MM-DD` header")?;
    let rest = rest.trim_start();
    let date = rest.get(..10).ok_or("missing the date after `date`")?;
    crate::engine::timestamp::parse(date)?;
    let body = rest[10..].trim().to_owned();
    if body.is_empty() {
        return Err("no text after the date".into());
    }
    Ok(Article {
        date: date.to_owned(),
        title: first_sentence(&body),
        body,
    })
}

/// The first sentence: up to the first `.`, `!` or `?` followed by whitespace, or
/// the first line, at most [`MAX_TITLE_CHARS`].
fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    let chars: Vec<char> = line.chars().collect();
    let end = (0..chars.len())
        .find(|&i| {
            matches!(chars[i], '.' | '!' | '?')
                && chars.get(i + 1).is_none_or(|c| c.is_whitespace())
        })
        .map_or(chars.len(), |i| i + 1);
    chars[..end.min(MAX_TITLE_CHARS)]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Creates the `news` collection and loads every `*.txt` file of `dir` into it.
/// Returns how many articles were loaded (`None`, logged, when `news` already
/// exists, as after a restart in the durable mode, or when `dir` cannot be read);
/// unreadable files are logged and skipped.
///
/// A relative `dir` is read from the working directory; the log names the
/// directory as resolved. A directory that cannot be read is logged with that
/// path and creates nothing, so that a request for `news` says it is missing
/// rather than answering from an empty collection.
pub async fn load(engine: &Engine, dir: &Path) -> Result<Option<usize>, EngineError> {
    let name = CollectionName::parse(NEWS, "collection")?;
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    match engine.collection(&name) {
        Ok(_) => {
            tracing::info!("collection news exists: seeds not loaded");
            return Ok(None);
        }
        Err(EngineError::CollectionNotFound(_)) => {}
        Err(err) => return Err(err),
    }
    // File reads block: keep them off the async workers.
    let read = dir.clone();
    let items = match tokio::task::spawn_blocking(move || read_articles(&read))
        .await
        .map_err(|e| EngineError::Internal(format!("reading seeds: {e}")))?
    {
        Ok(items) => items,
        Err(err) => {
            tracing::warn!(
                dir = %dir.display(),
                %err,
                "cannot read the seeds directory: no seeds loaded (pass --seeds DIR, or start \
                 the server where ./seeds is)"
            );
            return Ok(None);
        }
    };
    let collection = engine
        .create_collection(name, CollectionSchema::new(&news_schema())?, "")
        .await?;
    let results = collection.import(items).await?;
    let mut loaded = 0;
    for result in results {
        match result {
            Ok(_) => loaded += 1,
            Err(err) => tracing::warn!(%err, "seed article rejected"),
        }
    }
    collection.refresh().await?;
    tracing::info!(articles = loaded, dir = %dir.display(), "seeds loaded");
    Ok(Some(loaded))
}

/// The articles of `dir` (`*.txt`, in name order) as import items; unreadable files
/// are logged and skipped, an unreadable directory is an error.
fn read_articles(dir: &Path) -> std::io::Result<Vec<(Option<DocId>, Fields)>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    let mut items = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| parse_article(&text))
            .and_then(|article| {
                Ok((
                    DocId::parse(stem, "id").map_err(|e| e.to_string())?,
                    article,
                ))
            });
        match parsed {
            Ok((id, article)) => items.push((Some(id), article_fields(article))),
            Err(err) => tracing::warn!(file = %path.display(), %err, "skipping seed file"),
        }
    }
    Ok(items)
}

/// The fields of the `news` schema for an article.
pub fn article_fields(article: Article) -> Fields {
    let words = article.body.split_whitespace().count();
    let mut fields = Fields::new();
    fields.insert("title".into(), Value::String(article.title));
    fields.insert("date".into(), Value::String(article.date));
    fields.insert("words".into(), Value::from(words));
    fields.insert("source".into(), Value::String("seed".into()));
    fields.insert("body".into(), Value::String(article.body));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_articles() {
        let a =
            parse_article(" date 2021-08-07 The US acted. Then more! Yes.\n\nNext para.").unwrap();
        assert_eq!(a.date, "2021-08-07");
        assert_eq!(a.title, "The US acted.");
        assert_eq!(a.body, "The US acted. Then more! Yes.\n\nNext para.");
        assert_eq!(
            parse_article("date 2021-08-07 No end").unwrap().title,
            "No end"
        );
        assert!(parse_article("no header").is_err());
        assert!(parse_article("date 2021-13-07 text").is_err());
        assert!(parse_article("date 2021-08-07   ").is_err());
        assert!(parse_article("date 20").is_err());
    }
}
