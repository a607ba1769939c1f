//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same entry points the fuzz targets call, so that every input the fuzzer found
//! interesting is checked in each test run without a nightly toolchain.

use std::path::Path;

fn replay(target: &str, run: fn(&str)) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&data) {
            run(text);
        }
        count += 1;
    }
    assert!(count > 0, "the {target} corpus is empty");
    count
}

#[test]
fn query_corpus() {
    replay("query", trove::engine::fuzz::query);
}

#[test]
fn filter_corpus() {
    replay("filter", trove::engine::fuzz::filter);
}

#[test]
fn order_by_corpus() {
    replay("order_by", trove::engine::fuzz::order_by);
}

#[test]
fn page_token_corpus() {
    replay("page_token", trove::engine::fuzz::page_token);
}
