//! `trove-eval`: measures ranking quality on a relevance test collection through
//! the gRPC API, as a client would.
//!
//! ```text
//! trove-eval cranfield ../shared/data/cranfield              # starts a server in-process
//! trove-eval cranfield ../shared/data/cranfield --addr http://127.0.0.1:50051
//! ```
//! Loads the documents (title and body, both `english`, default settings) into a
//! fresh collection, runs every query as plain words, and prints nDCG@10, MAP
//! (over the top 1000) and P@10 by their standard definitions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tonic::transport::Channel;
use trove::api::pb::collection_service_client::CollectionServiceClient;
use trove::api::pb::document_service_client::DocumentServiceClient;
use trove::api::pb::search_service_client::SearchServiceClient;
use trove::api::pb::{self, search_request::Syntax};

/// The depth of the ranked list scored by MAP.
const DEPTH: i32 = 1000;

#[derive(Parser)]
#[command(
    name = "trove-eval",
    about = "Measure trove's ranking on a relevance test collection"
)]
struct Cli {
    #[command(subcommand)]
    collection: Collection,
}

#[derive(Subcommand)]
enum Collection {
    /// The Cranfield collection (cran.all.1400.xml, cran.qry.xml, cranqrel.trec.txt).
    Cranfield {
        /// The directory holding the three files.
        dir: PathBuf,
        /// A running server to use; by default one is started in-process.
        #[arg(long)]
        addr: Option<String>,
        /// Print each query's figures too.
        #[arg(long)]
        verbose: bool,
    },
}

struct TestCollection {
    docs: Vec<(String, String, String)>,
    queries: Vec<String>,
    /// qrels[query index] = doc id → relevance (only > 0 kept).
    qrels: Vec<HashMap<String, u32>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Collection::Cranfield { dir, addr, verbose } = Cli::parse().collection;
    let data = load_cranfield(&dir)?;
    let (channel, _server) = connect(addr).await?;
    let name = format!("cranfield-{}", std::process::id());
    create_and_load(&channel, &name, &data).await?;

    let mut search = SearchServiceClient::new(channel.clone()).max_decoding_message_size(256 << 20);
    let (mut ndcg, mut map, mut p10) = (0.0, 0.0, 0.0);
    for (i, text) in data.queries.iter().enumerate() {
        let request = pb::SearchRequest {
            collection: name.clone(),
            query: plain_words(text),
            syntax: Syntax::Simple as i32,
            page_size: DEPTH,
            read_mask: Some(prost_types::FieldMask {
                paths: vec!["id".into()],
            }),
            ..Default::default()
        };
        let ranked: Vec<String> = search
            .search(request)
            .await?
            .into_inner()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        let qrels = &data.qrels[i];
        let (n, ap, p) = (
            ndcg_at(&ranked, qrels, 10),
            average_precision(&ranked, qrels),
            precision_at(&ranked, qrels, 10),
        );
        if verbose {
            println!("query {:3}: nDCG@10 {n:.3}  AP {ap:.3}  P@10 {p:.3}", i + 1);
        }
        ndcg += n;
        map += ap;
        p10 += p;
    }
    let count = data.queries.len() as f64;
    CollectionServiceClient::new(channel)
        .delete_collection(pb::DeleteCollectionRequest {
            name,
            request_id: String::new(),
        })
        .await?;
    println!(
        "cranfield: {} documents, {} queries",
        data.docs.len(),
        data.queries.len()
    );
    println!(
        "nDCG@10 {:.4}   MAP {:.4}   P@10 {:.4}",
        ndcg / count,
        map / count,
        p10 / count
    );
    Ok(())
}

/// Connects to `addr`, or starts a server in-process on a free port.
async fn connect(
    addr: Option<String>,
) -> anyhow::Result<(Channel, Option<tokio::task::JoinHandle<anyhow::Result<()>>>)> {
    if let Some(addr) = addr {
        return Ok((Channel::from_shared(addr)?.connect().await?, None));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    let mut config = trove::config::Config::for_tests();
    config.no_seeds = true;
    let server = tokio::spawn(trove::server::run(config, listener, std::future::pending()));
    let channel = Channel::from_shared(format!("http://{local}"))?
        .connect()
        .await?;
    Ok((channel, Some(server)))
}

async fn create_and_load(
    channel: &Channel,
    name: &str,
    data: &TestCollection,
) -> anyhow::Result<()> {
    let text = |field: &str| pb::Field {
        name: field.into(),
        r#type: pb::FieldType::Text as i32,
        analyzer: "english".into(),
        ..Default::default()
    };
    CollectionServiceClient::new(channel.clone())
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: name.into(),
                fields: vec![text("title"), text("body")],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?;
    let requests: Vec<pb::ImportDocumentsRequest> = data
        .docs
        .iter()
        .map(|(id, title, body)| {
            let fields = [("title", title), ("body", body)]
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.to_owned(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue(v.clone())),
                        },
                    )
                })
                .collect();
            pb::ImportDocumentsRequest {
                collection: name.into(),
                document: Some(pb::Document {
                    id: id.clone(),
                    fields: Some(prost_types::Struct { fields }),
                    ..Default::default()
                }),
                async_visibility: false,
            }
        })
        .collect();
    let response = DocumentServiceClient::new(channel.clone())
        .import_documents(tokio_stream::iter(requests))
        .await?
        .into_inner();
    if response.failed_count > 0 {
        bail!(
            "{} documents failed to import: {:?}",
            response.failed_count,
            response.failures.first()
        );
    }
    Ok(())
}

/// Letters and digits only: the query as plain words.
fn plain_words(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect()
}

/// The text between `<tag>` and `</tag>` in `block`.
fn element<'a>(block: &'a str, tag: &str) -> Option<&'a str> {
    let start = block.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = block[start..].find(&format!("</{tag}>"))? + start;
    Some(block[start..end].trim())
}

fn load_cranfield(dir: &Path) -> anyhow::Result<TestCollection> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))
    };
    let docs = read("cran.all.1400.xml")?
        .split("</doc>")
        .filter_map(|block| {
            let id = element(block, "docno")?;
            Some((
                id.to_owned(),
                element(block, "title").unwrap_or("").to_owned(),
                element(block, "text").unwrap_or("").to_owned(),
            ))
        })
        .collect::<Vec<_>>();
    // The n-th <top> is qrels query n (the <num> values have gaps).
    let queries: Vec<String> = read("cran.qry.xml")?
        .split("</top>")
        .filter_map(|block| element(block, "title").map(str::to_owned))
        .collect();
    let mut qrels = vec![HashMap::new(); queries.len()];
    for line in read("cranqrel.trec.txt")?.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [query, _, doc, relevance] = parts[..] else {
            continue;
        };
        let (query, relevance): (usize, u32) = (query.parse()?, relevance.parse()?);
        if relevance > 0 && (1..=queries.len()).contains(&query) {
            qrels[query - 1].insert(doc.to_owned(), relevance);
        }
    }
    if docs.len() != 1400 || queries.len() != 225 {
        bail!(
            "expected 1400 documents and 225 queries, found {} and {}",
            docs.len(),
            queries.len()
        );
    }
    Ok(TestCollection {
        docs,
        queries,
        qrels,
    })
}

/// nDCG@k with the relevance grade as the gain and a log2(rank + 1) discount.
fn ndcg_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| *qrels.get(id).unwrap_or(&0) as f64 / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u32> = qrels.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| *g as f64 / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Average precision over the ranked list, divided by the number of relevant documents.
fn average_precision(ranked: &[String], qrels: &HashMap<String, u32>) -> f64 {
    if qrels.is_empty() {
        return 0.0;
    }
    let mut hits = 0;
    let mut sum = 0.0;
    for (i, id) in ranked.iter().enumerate() {
        if qrels.contains_key(id) {
            hits += 1;
            sum += hits as f64 / (i + 1) as f64;
        }
    }
    sum / qrels.len() as f64
}

fn precision_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .filter(|id| qrels.contains_key(*id))
        .count() as f64
        / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qrels(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(d, r)| (d.to_string(), *r)).collect()
    }

    fn list(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metrics() {
        let q = qrels(&[("a", 1), ("b", 1)]);
        assert_eq!(ndcg_at(&list(&["a", "b", "c"]), &q, 10), 1.0);
        assert_eq!(ndcg_at(&list(&["c", "d"]), &q, 10), 0.0);
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&list(&["c", "a"]), &q, 10) - expected).abs() < 1e-12);
        assert_eq!(
            average_precision(&list(&["a", "c", "b"]), &q),
            (1.0 + 2.0 / 3.0) / 2.0
        );
        assert_eq!(average_precision(&list(&["a"]), &q), 0.5);
        assert_eq!(precision_at(&list(&["a", "c", "b"]), &q, 10), 0.2);
        assert_eq!(plain_words("what (is) it, 2.5?"), "what  is  it  2 5 ");
    }
}
