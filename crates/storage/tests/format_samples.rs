//! A data directory of the current on-disk format, committed under
//! `tests/data/format-1/`: a checkpoint (documents, index files, remembered
//! request ids, one of them a reference to a checkpointed document) and a log
//! after it (puts, an update, a deleted collection, a restore logged as
//! `Restoring` … `Restored`). The test recovers a copy of it and checks what
//! comes back, so a change that alters how logs or checkpoints are encoded, or
//! how tantivy reads the index files, fails here rather than on a user's disk.
//!
//! `TROVE_WRITE_FORMAT_SAMPLE=1 cargo test -p trove-storage --test format_samples` writes the
//! directory anew: only for a deliberate change of format, with the version in
//! `DATA/FORMAT` raised and a reader for the old one kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use trove_engine::{
    CollectionName, CollectionSchema, DocId, Engine, EngineError, FieldSpec, FieldType, Fields,
    Patch, Update,
};
use trove_storage::{DataDir, Fsync, Recovery, Snapshots, Store};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-1")
}

/// A new engine, and the data directory at `path` replayed into it.
fn open(path: &Path) -> (Engine, Store, Recovery) {
    let engine = Engine::recovering(Duration::from_secs(600), 16);
    let dir = DataDir {
        path: path.to_owned(),
        fsync: Fsync::Always,
        checkpoint_bytes: u64::MAX,
    };
    let (store, recovery) = Store::open(&engine, dir).unwrap();
    (engine, store, recovery)
}

fn name(text: &str) -> CollectionName {
    CollectionName::parse(text, "name").unwrap()
}

fn id(text: &str) -> DocId {
    DocId::parse(text, "id").unwrap()
}

fn fields(value: serde_json::Value) -> Fields {
    value.as_object().unwrap().clone()
}

fn schema() -> CollectionSchema {
    let spec = |name: &str, ty: FieldType| FieldSpec {
        name: name.into(),
        ty: Some(ty),
        analyzer: String::new(),
        filterable: ty != FieldType::Text,
        sortable: ty != FieldType::Text,
        facetable: ty != FieldType::Text,
        boost: 0.0,
        normalizer: String::new(),
    };
    let mut title = spec("title", FieldType::Text);
    title.analyzer = "english".into();
    title.boost = 2.0;
    CollectionSchema::new(&[
        title,
        spec("tags", FieldType::Keyword),
        spec("n", FieldType::Integer),
        spec("price", FieldType::Float),
        spec("live", FieldType::Boolean),
        spec("date", FieldType::Timestamp),
    ])
    .unwrap()
    .with_synonyms(&["car, automobile".into()])
    .unwrap()
}

fn update(doc: &str, title: &str) -> Update {
    Update {
        id: id(doc),
        fields: fields(json!({ "title": title })),
        patch: Patch::Merge,
        allow_missing: false,
        expected_version: 0,
    }
}

/// Writes the sample into `dir` (which must not exist).
async fn write(dir: &Path) {
    let (engine, store, _) = open(dir);
    let alpha = engine
        .create_collection(name("alpha"), schema(), "make-alpha")
        .await
        .unwrap();
    let first = json!({"title": "the first car", "tags": ["a", "b"], "n": 7, "price": 2.5,
        "live": true, "date": "2026-12-04T10:00:00Z", "extra": {"kept": [1, "two"]}});
    alpha
        .create(Some(id("a1")), fields(first), true, "create-a1")
        .await
        .unwrap();
    alpha
        .create(Some(id("a2")), fields(json!({"title": "second"})), true, "")
        .await
        .unwrap();
    alpha
        .update(update("a1", "the second car"), true, "update-a1")
        .await
        .unwrap();
    alpha.delete(id("a2"), 0, true, "delete-a2").await.unwrap();
    let beta = engine
        .create_collection(name("beta"), schema(), "")
        .await
        .unwrap();
    beta.create(
        Some(id("b1")),
        fields(json!({"title": "in beta"})),
        true,
        "",
    )
    .await
    .unwrap();
    let snapshots = Snapshots::new(dir.join("snapshots"));
    snapshots
        .create(&engine, "beta-snapshot", &[name("beta")])
        .unwrap();
    assert!(store.checkpoint(&engine).unwrap());

    // The log after the checkpoint.
    alpha
        .create(
            Some(id("a3")),
            fields(json!({"title": "after"})),
            true,
            "create-a3",
        )
        .await
        .unwrap();
    alpha
        .update(update("a1", "the third car"), true, "update-a1-again")
        .await
        .unwrap();
    engine.delete_collection(&name("beta"), "").await.unwrap();
    snapshots.restore(&engine, "beta-snapshot", &[]).unwrap();
    // No checkpoint at the end: the log is what a crash leaves.
    drop((alpha, beta, engine, store));
    std::fs::remove_file(dir.join("LOCK")).unwrap();
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_data_directory_of_format_1_recovers() {
    let written_now = std::env::var_os("TROVE_WRITE_FORMAT_SAMPLE").is_some();
    if written_now {
        let _ = std::fs::remove_dir_all(sample());
        write(&sample()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy(&sample(), &data);
    let (engine, _store, recovery) = open(&data);
    assert_eq!(recovery.collections, 2);
    assert!(
        recovery.replayed > 0,
        "the log after the checkpoint was read"
    );

    let alpha = engine.collection(&name("alpha")).unwrap();
    let a1 = alpha.get(&id("a1")).unwrap();
    assert_eq!(a1.version, 3);
    assert_eq!(a1.fields["title"], "the third car");
    assert_eq!(a1.fields["extra"], json!({"kept": [1, "two"]}));
    assert_eq!(a1.fields["date"], "2026-12-04T10:00:00Z");
    assert!(matches!(
        alpha.get(&id("a2")),
        Err(EngineError::DocumentNotFound { .. })
    ));
    assert_eq!(alpha.get(&id("a3")).unwrap().fields["title"], "after");
    let beta = engine.collection(&name("beta")).unwrap();
    assert_eq!(beta.get(&id("b1")).unwrap().fields["title"], "in beta");
    assert_eq!(alpha.schema().synonyms().sets(), ["car, automobile"]);

    // The index files read back: the synonym and the stemmed title match.
    let request = trove_engine::SearchRequest {
        query: "automobile".into(),
        ..Default::default()
    };
    let found = engine.search(&name("alpha"), request).await.unwrap();
    assert_eq!(found.total_size, 1);

    // Remembered request ids: from the checkpoint (one a reference to the
    // document it holds, one whole) and from the log. Recovery decodes them all
    // and resolves the reference (one that does not resolve stops it as
    // damage), but forgets ids older than their hour, as the committed ones
    // are: their first outcomes are checked only when the sample was just
    // written.
    if written_now {
        let retried = alpha
            .update(update("a1", "ignored"), true, "update-a1")
            .await
            .unwrap();
        assert_eq!(
            (retried.version, retried.fields["title"].clone()),
            (2, json!("the second car"))
        );
        let retried = alpha
            .update(update("a1", "ignored"), true, "update-a1-again")
            .await
            .unwrap();
        assert_eq!(retried.version, 3);
        let retried = alpha
            .create(
                Some(id("a1")),
                fields(json!({"title": "ignored"})),
                true,
                "create-a1",
            )
            .await
            .unwrap();
        assert_eq!(retried.version, 1);
        alpha.delete(id("a2"), 0, true, "delete-a2").await.unwrap();
        engine
            .create_collection(name("alpha"), schema(), "make-alpha")
            .await
            .unwrap();
    }
}
