//! `trove import` against the real server.

use std::io::Write;
use std::path::PathBuf;

use trove::api::pb;

use crate::harness::{Server, query};

#[tokio::test]
async fn imports_jsonl_idempotently_and_reports_bad_lines() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("books.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, r#"{{"id": "a", "title": "first book", "n": 1}}"#).unwrap();
    writeln!(file, r#"{{"title": "no id here", "tags": ["x"]}}"#).unwrap();
    writeln!(file).unwrap();
    writeln!(file, r#"{{"id": "c", "title": "third book"}}"#).unwrap();
    writeln!(file, r#"not json"#).unwrap();
    writeln!(file, r#"{{"id": "e", "n": "five"}}"#).unwrap();
    writeln!(file, r#"[1, 2]"#).unwrap();
    writeln!(file, r#"{{"id": 7}}"#).unwrap();
    drop(file);

    for round in 1..=2 {
        let summary = trove::import::import(s.channel.clone(), "c", &path, false, false)
            .await
            .unwrap();
        assert_eq!(summary.imported, 3, "round {round}");
        let lines: Vec<&str> = summary
            .failures
            .iter()
            .map(|(origin, _)| origin.as_str())
            .collect();
        assert_eq!(
            lines,
            ["line 5", "line 6", "line 7", "line 8"],
            "round {round}: {:?}",
            summary.failures
        );
        assert!(
            summary.failures[1].1.contains("INTEGER"),
            "{:?}",
            summary.failures[1]
        );
        assert_eq!(
            s.find(query("c", "")).await.total_size,
            3,
            "round {round}: a re-run replaces"
        );
        let generated = s
            .documents
            .get_document(pb::GetDocumentRequest {
                collection: "c".into(),
                id: "books:2".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            generated.version, round,
            "the id of a line without one is stable"
        );
    }
    let err = trove::import::import(s.channel.clone(), "missing", &path, false, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NotFound"), "{err}");
    s.stop().await;
}

/// A call the server ends early (here, a missing collection) ends the import at
/// once, however much of the file is left: the client no longer waits to send
/// what the server will not read.
#[tokio::test]
async fn an_import_the_server_refuses_ends_without_sending_the_rest() {
    let s = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let body = "word ".repeat(200);
    for i in 0..20_000 {
        writeln!(file, r#"{{"id": "d{i}", "body": "{body}"}}"#).unwrap();
    }
    drop(file);
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        trove::import::import(s.channel.clone(), "missing", &path, false, false),
    )
    .await
    .expect("the import hung after the server refused it");
    let err = outcome.unwrap_err();
    assert!(err.to_string().contains("NotFound"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn imports_a_directory_of_articles() {
    let mut s = Server::start_seeded().await;
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let summary = trove::import::import(s.channel.clone(), "news", &seeds, false, false)
        .await
        .unwrap();
    assert_eq!((summary.imported, summary.failures.len()), (1, 0));
    let found = s.find(query("news", "taliban")).await;
    assert_eq!(found.total_size, 1);
    assert_eq!(
        found.hits[0].document.as_ref().unwrap().version,
        2,
        "the seed was replaced, not duplicated"
    );
    s.stop().await;
}
