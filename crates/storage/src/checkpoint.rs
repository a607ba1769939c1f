//! Checkpoints and snapshots: every collection's definition, documents and
//! tantivy segment files, written to a directory that becomes visible by one
//! rename.
//!
//! ```text
//! DIR/MANIFEST             a frame: format, log position, collection definitions
//! DIR/requests             frames: remembered request ids and their outcomes
//! DIR/c<uid>/docs          frames: the documents
//! DIR/c<uid>/dictionary    the zstd dictionary of their bodies, once trained
//! DIR/c<uid>/index/<file>  the index files of one commit (meta.json and segments)
//! ```
//! Restoring copies the index files back into memory, so a restart does not
//! re-index: it reads the documents and the files, then replays the log after
//! the checkpoint.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tantivy::directory::{Directory, RamDirectory};

use trove_engine::persist::{Captured, Loaded};
use trove_engine::{Dictionary, DocMap, EngineError, Result};

use super::files::{damaged, io, sync_dir};
use super::frame::{self, Next};
use super::record::{self, CollectionRecord, DocRecord, RequestRecord};

/// The remembered request ids of a checkpoint, one frame each.
const REQUESTS_FILE: &str = "requests";

/// What a checkpoint remembers of request ids: one record at a time, so that
/// none of them need be in memory all at once.
pub type RequestRecords<'a> = &'a mut dyn Iterator<Item = Result<RequestRecord>>;

/// The layout version of a checkpoint or snapshot directory.
pub const FORMAT: u32 = 1;

/// A collection's zstd dictionary, if it has one, in its directory.
const DICTIONARY_FILE: &str = "dictionary";

/// What `MANIFEST` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Log records from this one on are not in the checkpoint (0 for a snapshot
    /// taken without a log).
    pub seq: u64,
    pub collections: Vec<CollectionRecord>,
    /// Remembered request ids, as checkpoints before the `requests` file held
    /// them (empty now: one frame could not hold them all). Their documents
    /// are compressed without a dictionary: their collection may be gone.
    pub requests: Vec<RequestRecord>,
    /// `document_counts[i]` documents in `collections[i]`.
    pub document_counts: Vec<u64>,
}

/// Writes `collections` to `target`, which must not exist: first into a
/// temporary sibling of its own (`.NAME.UNIQUE.tmp`, so concurrent writes
/// never share one), fsynced file by file, checked by reading its manifest
/// back, then renamed into place without replacing anything. Segment files are
/// immutable and uniquely named, so those already in `previous` (the last
/// checkpoint) are hard-linked rather than written again. A write that fails
/// removes its temporary directory; a target that appeared meanwhile is
/// [`EngineError::AlreadyExists`].
pub fn write(
    target: &Path,
    previous: Option<&Path>,
    seq: u64,
    collections: &[Captured],
    requests: RequestRecords<'_>,
) -> Result<()> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let tmp = target.with_file_name(format!(".{name}.{unique}.tmp"));
    let written = write_into(&tmp, previous, seq, collections, requests)
        .and_then(|()| rename_new(&tmp, target));
    if written.is_err() && tmp.exists() {
        if let Err(err) = fs::remove_dir_all(&tmp) {
            tracing::warn!(dir = %tmp.display(), %err, "could not remove an unfinished checkpoint");
        }
    }
    written?;
    if let Some(parent) = target.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn write_into(
    tmp: &Path,
    previous: Option<&Path>,
    seq: u64,
    collections: &[Captured],
    requests: RequestRecords<'_>,
) -> Result<()> {
    fs::create_dir_all(tmp).map_err(|e| io("creating", tmp, &e))?;
    for captured in collections {
        let dir = tmp.join(format!("c{}", captured.definition.uid));
        let index_dir = dir.join("index");
        fs::create_dir_all(&index_dir).map_err(|e| io("creating", &index_dir, &e))?;
        write_docs(&dir.join("docs"), &captured.docs)?;
        if let Some(dictionary) = &captured.dictionary {
            write_file(&dir.join(DICTIONARY_FILE), dictionary.bytes())?;
        }
        let previous_index = previous.map(|p| {
            p.join(format!("c{}", captured.definition.uid))
                .join("index")
        });
        for (name, bytes) in &captured.index_files {
            let path = index_dir.join(name);
            let reusable = previous_index.as_ref().map(|p| p.join(name)).filter(|old| {
                is_segment_file(name)
                    && fs::metadata(old).is_ok_and(|m| m.len() == bytes.len() as u64)
            });
            match reusable {
                Some(old) if fs::hard_link(&old, &path).is_ok() => {}
                _ => write_file(&path, bytes.as_slice())?,
            }
        }
        sync_dir(&index_dir)?;
        sync_dir(&dir)?;
    }
    write_frames(&tmp.join(REQUESTS_FILE), requests)?;
    let manifest = Manifest {
        format: FORMAT,
        seq,
        collections: collections
            .iter()
            .map(|c| CollectionRecord::from(&c.definition))
            .collect(),
        requests: Vec::new(),
        document_counts: collections.iter().map(|c| c.docs.len() as u64).collect(),
    };
    let mut frame = Vec::new();
    record::encode(&manifest, &mut frame)?;
    write_file(&tmp.join("MANIFEST"), &frame)?;
    sync_dir(tmp)?;
    // What was written is what was captured: the manifest reads back, naming
    // these collections with these document counts.
    let back = read_manifest(tmp)?;
    let same = back.seq == seq
        && back.document_counts == manifest.document_counts
        && back
            .collections
            .iter()
            .map(|c| c.uid)
            .eq(collections.iter().map(|c| c.definition.uid));
    if !same {
        return Err(EngineError::Internal(format!(
            "{} does not read back as written",
            tmp.display()
        )));
    }
    Ok(())
}

/// Renames `from` to `to`, failing with [`EngineError::AlreadyExists`] if `to`
/// exists (Linux's `renameat2` with `RENAME_NOREPLACE`: atomic, unlike a check
/// before a rename).
fn rename_new(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| EngineError::Internal(format!("{} has a NUL byte", p.display())))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::AlreadyExists {
        return Err(EngineError::AlreadyExists(format!(
            "{} already exists",
            to.display()
        )));
    }
    Err(io("renaming", from, &err))
}

/// Reads the manifest of the checkpoint or snapshot in `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("MANIFEST");
    let data = fs::read(&path).map_err(|e| io("reading", &path, &e))?;
    let manifest: Manifest = match frame::next(&data, 0) {
        Next::Frame(payload, _) => record::decode(payload)
            .map_err(|e| damaged(&path, 0, &format!("undecodable manifest: {e}")))?,
        _ => return Err(damaged(&path, 0, "checksum mismatch")),
    };
    if manifest.format != FORMAT {
        return Err(EngineError::DataDamaged(format!(
            "{} has format {}; this trove reads format {FORMAT}",
            path.display(),
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Reads the checkpoint or snapshot in `dir`: the collections `wanted` accepts.
pub fn read(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<(Manifest, Vec<Loaded>)> {
    let manifest = read_manifest(dir)?;
    let mut loaded = Vec::new();
    for record in manifest.collections.iter().filter(|r| wanted(&r.name)) {
        let cdir = dir.join(format!("c{}", record.uid));
        let path = cdir.join(DICTIONARY_FILE);
        let dictionary = match fs::read(&path) {
            Ok(bytes) => Some(Arc::new(
                Dictionary::from_bytes(bytes).map_err(|e| damaged(&path, 0, &e.to_string()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("reading", &path, &e)),
        };
        let docs = read_docs(&cdir.join("docs"), dictionary.as_ref())?;
        let index = RamDirectory::create();
        let index_dir = cdir.join("index");
        for entry in fs::read_dir(&index_dir).map_err(|e| io("listing", &index_dir, &e))? {
            let path = entry.map_err(|e| io("listing", &index_dir, &e))?.path();
            let bytes = fs::read(&path).map_err(|e| io("reading", &path, &e))?;
            let name = PathBuf::from(path.file_name().expect("a listed file has a name"));
            index
                .atomic_write(&name, &bytes)
                .map_err(|e| io("loading", &path, &e))?;
        }
        loaded.push(Loaded {
            definition: record.definition()?,
            docs,
            index,
            dictionary,
        });
    }
    Ok((manifest, loaded))
}

/// Whether `name` is an immutable segment file (not `meta.json` or
/// `.managed.json`, which change with every commit).
fn is_segment_file(name: &Path) -> bool {
    !matches!(name.to_str(), Some("meta.json" | ".managed.json"))
}

fn write_docs(path: &Path, docs: &DocMap) -> Result<()> {
    let mut records = docs
        .iter()
        .map(|(id, stored)| Ok(DocRecord::of(id, stored)));
    write_frames(path, &mut records)
}

/// Writes one frame per record into a new file at `path`, and fsyncs it.
fn write_frames<T: Serialize>(
    path: &Path,
    records: &mut dyn Iterator<Item = Result<T>>,
) -> Result<()> {
    let file = File::create(path).map_err(|e| io("creating", path, &e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    for record in records {
        buf.clear();
        record::encode(&record?, &mut buf)?;
        out.write_all(&buf).map_err(|e| io("writing", path, &e))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| io("writing", path, e.error()))?;
    file.sync_all().map_err(|e| io("syncing", path, &e))
}

/// The remembered request ids of the checkpoint in `dir`: those of its
/// manifest (older checkpoints) and of its `requests` file.
pub fn read_requests(dir: &Path, manifest: &mut Manifest) -> Result<Vec<RequestRecord>> {
    let mut requests = std::mem::take(&mut manifest.requests);
    let path = dir.join(REQUESTS_FILE);
    let data = match fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(requests),
        Err(e) => return Err(io("reading", &path, &e)),
    };
    let mut offset = 0;
    loop {
        match frame::next(&data, offset) {
            Next::Frame(payload, end) => {
                requests.push(record::decode(payload).map_err(|e| {
                    damaged(&path, offset, &format!("undecodable request record: {e}"))
                })?);
                offset = end;
            }
            Next::End => return Ok(requests),
            Next::Torn | Next::Corrupt => return Err(damaged(&path, offset, "checksum mismatch")),
        }
    }
}

fn read_docs(path: &Path, dictionary: Option<&Arc<Dictionary>>) -> Result<DocMap> {
    let data = fs::read(path).map_err(|e| io("reading", path, &e))?;
    let mut docs = DocMap::new();
    let mut offset = 0;
    loop {
        match frame::next(&data, offset) {
            Next::Frame(payload, end) => {
                let doc: DocRecord = record::decode(payload)
                    .map_err(|e| damaged(path, offset, &format!("undecodable document: {e}")))?;
                let (id, stored) = doc
                    .into_stored(|id| dictionary.filter(|d| d.id() == id).cloned())
                    .map_err(|e| damaged(path, offset, &e.to_string()))?;
                docs.insert(id, Arc::new(stored));
                offset = end;
            }
            Next::End => return Ok(docs),
            Next::Torn | Next::Corrupt => return Err(damaged(path, offset, "checksum mismatch")),
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| io("creating", path, &e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", path, &e))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use trove_engine::{CollectionName, DocId, Engine};

    use super::*;

    /// An engine with collection `c` of `n` documents.
    async fn engine_with(n: usize) -> Engine {
        let engine = Engine::new(Duration::from_secs(60), 16);
        let name = CollectionName::parse("c", "name").unwrap();
        let schema = crate::testing::title_schema();
        let c = engine.create_collection(name, schema, "").await.unwrap();
        for i in 0..n {
            let fields = json!({ "title": format!("document {i}") });
            let id = DocId::parse(&format!("d{i}"), "id").unwrap();
            c.create(Some(id), fields.as_object().unwrap().clone(), false, "")
                .await
                .unwrap();
        }
        engine
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_reads_back_as_captured() {
        let engine = engine_with(1200).await;
        let captured = engine.capture(&[]).unwrap();
        assert!(
            captured[0].dictionary.is_some(),
            "trained past 1,000 documents"
        );
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("cp");
        write(&target, None, 7, &captured, &mut std::iter::empty()).unwrap();
        let (manifest, loaded) = read(&target, |_| true).unwrap();
        assert_eq!(
            (manifest.seq, manifest.document_counts.as_slice()),
            (7, &[1200][..])
        );
        let loaded = &loaded[0];
        assert_eq!(loaded.definition.uid, captured[0].definition.uid);
        assert_eq!(loaded.docs.len(), 1200);
        for (id, doc) in captured[0].docs.iter() {
            let back = &loaded.docs[id];
            assert_eq!((back.version, back.body()), (doc.version, doc.body()));
        }
        // Writing the same target again is refused, and leaves nothing behind.
        let again = write(&target, None, 7, &captured, &mut std::iter::empty());
        assert!(matches!(again, Err(EngineError::AlreadyExists(_))));
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary directory is left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_document_file_is_reported_with_its_offset() {
        let engine = engine_with(20).await;
        let captured = engine.capture(&[]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("cp");
        write(&target, None, 1, &captured, &mut std::iter::empty()).unwrap();
        let docs = target
            .join(format!("c{}", captured[0].definition.uid))
            .join("docs");
        let mut data = fs::read(&docs).unwrap();
        data[20] ^= 0xff;
        fs::write(&docs, &data).unwrap();
        let err = read(&target, |_| true).err().unwrap();
        assert!(matches!(err, EngineError::DataDamaged(_)), "{err:?}");
        assert!(err.to_string().contains("offset 0"), "{err}");
        // A manifest of another format is refused before anything is read.
        let mut manifest = read_manifest(&target).unwrap();
        manifest.format = FORMAT + 1;
        let mut frame = Vec::new();
        record::encode(&manifest, &mut frame).unwrap();
        fs::write(target.join("MANIFEST"), &frame).unwrap();
        let err = read_manifest(&target).err().unwrap();
        assert!(
            err.to_string().contains("this trove reads format 1"),
            "{err}"
        );
    }
}
