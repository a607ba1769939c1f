#!/usr/bin/env bash
# Runs the test suites of the patched crates in vendor/ (README.md there), each in a
# scratch copy outside the workspace. tantivy-fst's tests read data/words-100000 from
# the crate as published, which is downloaded from crates.io; h2's HPACK fixture tests
# read files the published crate leaves out, so they are skipped.
set -euo pipefail
cd "$(dirname "$0")"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export CARGO_TARGET_DIR="$scratch/target"
for crate in tantivy-fst tantivy-stacker h2; do
  cp -r "$crate" "$scratch/$crate"
  echo '[workspace]' >>"$scratch/$crate/Cargo.toml"
done
python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' \
  https://static.crates.io/crates/tantivy-fst/tantivy-fst-0.5.0.crate |
  tar xzf - -C "$scratch" tantivy-fst-0.5.0/data/words-100000
mkdir -p "$scratch/tantivy-fst/data"
mv "$scratch/tantivy-fst-0.5.0/data/words-100000" "$scratch/tantivy-fst/data/"
for crate in tantivy-fst tantivy-stacker; do
  echo "--- $crate"
  (cd "$scratch/$crate" && cargo test --quiet --lib)
done
echo "--- h2"
(cd "$scratch/h2" && cargo test --quiet --lib -- --skip hpack::test::fixture)
