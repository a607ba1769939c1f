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
    writeln!(file, r#"{{"id": "", "title": "empty id"}}"#).unwrap();
    writeln!(file, r#"{{"id": null, "title": "null id"}}"#).unwrap();
    drop(file);

    for round in 1..=2 {
        let summary = trove::import::import(s.channel.clone(), "c", &path, false, false)
            .await
            .unwrap();
        assert_eq!(summary.imported, 5, "round {round}");
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
            5,
            "round {round}: a re-run replaces"
        );
        // No id, an empty one or null: the same stable id from the line.
        for id in ["books:2", "books:9", "books:10"] {
            let generated = s
                .documents
                .get_document(pb::GetDocumentRequest {
                    collection: "c".into(),
                    id: id.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                generated.version, round,
                "the id of a line without one is stable: {id}"
            );
        }
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

/// `trove import` as a user runs it: `--addr HOST:PORT` as `--listen` takes
/// it, a non-zero status when any line failed (unless `--allow-failures`), and
/// one line of error even with `RUST_BACKTRACE=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_command_reports_failures_in_its_status() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"title\": \"fine\"}\n{\"id\": \"b\", \"n\": \"five\"}\n",
    )
    .unwrap();
    // Run off the runtime that serves the server.
    let run = |extra: &'static [&'static str]| {
        let (addr, path) = (s.addr.to_string(), path.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_trove"))
                .args(["import", "--quiet", "--collection", "c", "--addr", &addr])
                .args(extra)
                .arg(&path)
                .env("RUST_BACKTRACE", "1")
                .output()
                .unwrap()
        })
    };
    let failed = run(&[]).await.unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.starts_with("trove: 1 of 2 documents failed"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(stdout.contains("line 2"), "the failure is listed: {stdout}");

    let allowed = run(&["--allow-failures"]).await.unwrap();
    assert_eq!(allowed.status.code(), Some(0), "{allowed:?}");

    // A user error of the server's command line: one line too.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_trove"))
        .args(["--listen", "127.0.0.1:1", "--data-dir"])
        .arg(dir.path().join("mixed.jsonl"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("trove: "), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    s.stop().await;
}
