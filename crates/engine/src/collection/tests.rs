use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use tantivy::Term;

use super::*;
use crate::names::{CollectionName, DocId};

/// A merge that ends after the last commit changes the index, not the view;
/// `publish_merged` then publishes a view of the merged segment, so the view
/// no longer holds the segments it replaced.
#[tokio::test]
async fn a_merge_ended_after_the_last_commit_is_published() {
    let name = CollectionName::parse("merging", "name").unwrap();
    let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
    collection.stop_merges();
    for i in 0..4 {
        let fields = json!({"title": format!("rust {i}")});
        let id = DocId::parse(&format!("d{i}"), "id").unwrap();
        let fields = fields.as_object().unwrap().clone();
        collection.create(Some(id), fields, true, "").await.unwrap();
    }
    let segments = |c: &Collection| c.view().searcher.segment_readers().len();
    assert_eq!(segments(&collection), 4, "one segment per visible write");
    assert!(!collection.is_merged_since_view().unwrap());

    collection.merge_all().unwrap();
    assert!(collection.is_merged_since_view().unwrap());
    assert_eq!(segments(&collection), 4, "the view is the last commit's");

    let before = collection.view().id;
    collection.publish_merged().await.unwrap();
    let view = collection.view();
    assert_ne!(view.id, before, "a new view");
    assert_eq!(segments(&collection), 1);
    assert_eq!(view.searcher.num_docs(), 4);
    assert_eq!(view.docs.len(), 4);
    assert!(!collection.is_merged_since_view().unwrap());
}

/// Once idle, a collection's comparable segments are merged into one, once
/// per idle period; a large segment beside a few new documents is left alone.
#[tokio::test]
async fn an_idle_collection_merges_its_segments_once() {
    let name = CollectionName::parse("idle", "name").unwrap();
    let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
    let write = |i: usize| {
        let collection = collection.clone();
        async move {
            let fields = json!({"title": format!("rust {i}")});
            let id = DocId::parse(&format!("d{i}"), "id").unwrap();
            let fields = fields.as_object().unwrap().clone();
            collection.create(Some(id), fields, true, "").await.unwrap();
        }
    };
    let segments = |c: &Collection| c.view().searcher.segment_readers().len();
    for i in 0..4 {
        write(i).await;
    }
    assert_eq!(segments(&collection), 4, "one segment per visible write");
    assert!(
        !collection.merge_if_idle(Duration::from_secs(3600)).unwrap(),
        "not idle yet"
    );
    assert!(!collection.idle_merge_due(Duration::from_secs(3600)));

    assert!(collection.idle_merge_due(Duration::ZERO));
    assert!(collection.merge_if_idle(Duration::ZERO).unwrap());
    assert!(
        !collection.idle_merge_due(Duration::ZERO),
        "done for this idle period"
    );
    assert!(!collection.writer_open(), "closed after the merge");
    collection.publish_merged().await.unwrap();
    assert_eq!(segments(&collection), 1);
    assert_eq!(collection.view().searcher.num_docs(), 4);
    assert!(
        !collection.merge_if_idle(Duration::ZERO).unwrap(),
        "once per idle period"
    );

    // One new document beside the four: left as it is, and the writer closed.
    write(4).await;
    assert!(collection.writer_open());
    assert!(!collection.merge_if_idle(Duration::ZERO).unwrap());
    assert!(!collection.writer_open());
    assert_eq!(segments(&collection), 2);
    // Three more: the merged segment is at most twice the rest, so all are
    // merged.
    for i in 5..8 {
        write(i).await;
    }
    assert!(collection.merge_if_idle(Duration::ZERO).unwrap());
    collection.publish_merged().await.unwrap();
    assert_eq!(segments(&collection), 1);
    assert_eq!(collection.view().searcher.num_docs(), 8);
    assert_eq!(collection.view().docs.len(), 8);
}

/// A collection with one segment for each of `n` visible writes.
async fn with_segments(name: &str, n: usize) -> Arc<Collection> {
    let name = CollectionName::parse(name, "name").unwrap();
    let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
    for i in 0..n {
        let fields = json!({"title": format!("rust {i}")});
        let id = DocId::parse(&format!("d{i}"), "id").unwrap();
        let fields = fields.as_object().unwrap().clone();
        collection.create(Some(id), fields, true, "").await.unwrap();
    }
    assert_eq!(collection.view().searcher.segment_readers().len(), n);
    collection
}

/// The index files that belong to no segment of the last commit.
fn stray_files(collection: &Collection) -> Vec<std::path::PathBuf> {
    let live: Vec<String> = collection
        .index
        .searchable_segment_metas()
        .unwrap()
        .iter()
        .map(|meta| meta.id().uuid_string())
        .collect();
    let mut stray: Vec<_> = collection
        .index
        .directory()
        .list_managed_files()
        .into_iter()
        .filter(|path| {
            let name = path.to_string_lossy();
            !name.ends_with(".json") && !live.iter().any(|id| name.starts_with(id.as_str()))
        })
        .collect();
    stray.sort();
    stray
}

/// The idle merge leaves alone segments a background merge holds: tantivy
/// would run both merges, and the second to end would fail.
#[tokio::test]
async fn an_idle_merge_waits_for_background_merges() {
    let collection = with_segments("waiting", 4).await;
    let ids = collection.index.searchable_segment_ids().unwrap();
    collection.write.lock().in_merge.hold(&ids[..1]);
    assert!(!collection.merge_if_idle(Duration::ZERO).unwrap());
    assert!(
        !collection.write.lock().idle_merge_started,
        "tried again later"
    );

    // Closing the writer waits for its merges; none holds a segment after it.
    assert!(collection.close_idle_writer(Duration::ZERO).unwrap());
    assert!(collection.merge_if_idle(Duration::ZERO).unwrap());
    collection.publish_merged().await.unwrap();
    assert_eq!(collection.view().searcher.segment_readers().len(), 1);
    assert!(stray_files(&collection).is_empty());
}

/// Two merges of the same segments both run; the second to end fails, and
/// tantivy collects the directory's garbage only after merges that succeed:
/// the inputs (which the failed merge held when the first ended) and the
/// failed merge's output stay until `collect_garbage`.
#[tokio::test]
async fn garbage_collection_removes_what_a_failed_merge_leaves() {
    let collection = with_segments("failed", 4).await;
    let ids = collection.index.searchable_segment_ids().unwrap();
    let (first, second) = {
        let mut state = collection.write.lock();
        let writer = state.writer().unwrap();
        (writer.merge(&ids), writer.merge(&ids))
    };
    assert!(first.wait().is_ok());
    assert!(second.wait().is_err(), "its segments are gone");
    // Four inputs and one output, six files each at most.
    assert!(
        stray_files(&collection).len() > 6,
        "{:?}",
        stray_files(&collection)
    );

    collection.collect_garbage().unwrap();
    assert_eq!(stray_files(&collection), Vec::<std::path::PathBuf>::new());
    collection.publish_merged().await.unwrap();
    assert_eq!(collection.view().searcher.num_docs(), 4);
}

/// The documents of `view` holding `term`.
fn documents_holding(view: &View, term: Term) -> usize {
    let query = tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::Basic);
    view.searcher
        .search(&query, &tantivy::collector::Count)
        .unwrap()
}

/// Writes that wait to be searchable are indexed into a segment of their
/// own, the others by the writer's threads. Replacing or deleting a document
/// before a commit leaves only its last version in the index, whichever way
/// each write went.
#[tokio::test]
async fn the_waiting_segment_keeps_only_the_last_version_of_a_document() {
    let name = CollectionName::parse("waiting", "name").unwrap();
    let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
    let id = |s: &str| DocId::parse(s, "id").unwrap();
    let fields = |title: &str| json!({"title": title}).as_object().unwrap().clone();
    let replace = |i: &str, title: &str| Update {
        id: id(i),
        fields: fields(title),
        patch: Patch::Replace,
        allow_missing: false,
        expected_version: 0,
    };
    {
        let c = &collection;
        let mut state = c.write.lock();
        // (first write waited, second write waited) for a, b, c; d deleted.
        for (i, first, second) in [("a", true, true), ("b", true, false), ("c", false, true)] {
            c.apply_create(&mut state, Some(id(i)), fields("first"), None, first)
                .unwrap();
            c.apply_update(&mut state, replace(i, "second"), None, second)
                .unwrap();
        }
        c.apply_create(&mut state, Some(id("d")), fields("first"), None, true)
            .unwrap();
        c.apply_delete(&mut state, &id("d"), 0, None).unwrap();
        c.apply_create(&mut state, Some(id("e")), fields("second"), None, true)
            .unwrap();
        assert!(state.waiting.is_some(), "waited writes are pending");
    }
    collection.refresh().await.unwrap();

    let view = collection.view();
    let count = |term: Term| documents_holding(&view, term);
    for (i, expected) in [("a", 1), ("b", 1), ("c", 1), ("d", 0), ("e", 1)] {
        assert_eq!(count(collection.id_term(&id(i))), expected, "document {i}");
    }
    let (_, title) = collection.schema.field("title").unwrap();
    assert_eq!(
        count(Term::from_field_text(title, "first")),
        0,
        "no first version left"
    );
    assert_eq!(count(Term::from_field_text(title, "second")), 4);
    assert_eq!(view.searcher.num_docs(), 4);

    // After a commit: a document deleted before it, created again.
    for (i, title) in [("d", "third"), ("f", "third")] {
        collection
            .create(Some(id(i)), fields(title), true, "")
            .await
            .unwrap();
    }
    collection
        .update(replace("e", "third"), true, "")
        .await
        .unwrap();
    let view = collection.view();
    let count = |term: Term| documents_holding(&view, term);
    for i in ["a", "b", "c", "d", "e", "f"] {
        assert_eq!(count(collection.id_term(&id(i))), 1, "document {i}");
    }
    assert_eq!(count(Term::from_field_text(title, "third")), 3);
    assert_eq!(view.searcher.num_docs(), 6);
}

/// A collection opens its writer (and its threads) at the first write and
/// closes it when idle; writes after that open it again, and replacing a
/// document then still leaves one version of it.
#[tokio::test]
async fn the_writer_opens_at_the_first_write_and_closes_when_idle() {
    let name = CollectionName::parse("idle", "name").unwrap();
    let collection = Collection::standalone(name, crate::fuzz::schema()).expect("a collection");
    assert!(
        !collection.writer_open(),
        "an empty collection has no writer"
    );
    let id = DocId::parse("a", "id").unwrap();
    let fields = |title: &str| json!({"title": title}).as_object().unwrap().clone();
    collection
        .create(Some(id.clone()), fields("first"), true, "")
        .await
        .unwrap();
    assert!(collection.writer_open());
    assert!(
        !collection
            .close_idle_writer(Duration::from_secs(3600))
            .unwrap()
    );
    assert!(collection.close_idle_writer(Duration::ZERO).unwrap());
    assert!(!collection.writer_open());

    let update = Update {
        id: id.clone(),
        fields: fields("second"),
        patch: Patch::Replace,
        allow_missing: false,
        expected_version: 0,
    };
    collection.update(update, true, "").await.unwrap();
    assert!(collection.writer_open());
    let view = collection.view();
    assert_eq!(documents_holding(&view, collection.id_term(&id)), 1);
    assert_eq!(view.searcher.num_docs(), 1);
    collection.delete(id.clone(), 0, true, "").await.unwrap();
    assert!(collection.close_idle_writer(Duration::ZERO).unwrap());
    assert_eq!(collection.view().searcher.num_docs(), 0);
}
