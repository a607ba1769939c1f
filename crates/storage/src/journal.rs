//! The write-ahead log: segment files of framed [`Record`]s in `DATA/wal/`, each
//! named by the sequence number of its first record.
//!
//! A write appends its record (one `pwrite`) before it changes memory, so a full
//! disk refuses the write instead of acknowledging it; a partial append is cut
//! back at once so the file stays a clean sequence of frames. [`Journal::sync`]
//! is the group commit: the first caller fsyncs everything appended so far, the
//! callers that queued behind it find their record already on disk. An fsync that
//! fails leaves the file in an unknown state (the kernel may have dropped the
//! dirty pages), so the log refuses every later write until a restart recovers.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use trove_engine::persist::{Appended, Entry, WriteLog};
use trove_engine::{EngineError, Result};

use super::files::{damaged, io, sync_dir};
use super::frame::{self, Next};
use super::record::{self, Op, Record};

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before the write is acknowledged.
    Always,
    /// Every interval, in the background: a crash may lose the writes of the
    /// last interval.
    Interval(Duration),
}

/// Starts every segment file.
const SEGMENT_MAGIC: &[u8] = b"TROVE-WAL-1\n";

/// The open log.
pub struct Journal {
    dir: PathBuf,
    fsync: Fsync,
    writer: Mutex<Writer>,
    /// Every record up to this one is on disk.
    synced: AtomicU64,
    /// Held by the one caller fsyncing now.
    sync_lock: Mutex<()>,
    /// Set when an fsync failed: the log takes no more writes.
    failed: Mutex<Option<String>>,
}

struct Writer {
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    /// Bytes appended since the last rotation, which decides checkpoints.
    appended: u64,
    buf: Vec<u8>,
}

/// Where recovery left the log.
pub struct Recovered {
    pub journal: Arc<Journal>,
    /// Records read and applied.
    pub replayed: u64,
}

impl Journal {
    /// Reads the log in `dir` from record `from_seq` on, passing each record to
    /// `apply` in order; cuts a torn tail back to the last good record; opens
    /// the log for appending after it.
    pub fn recover(
        dir: &Path,
        fsync: Fsync,
        from_seq: u64,
        mut apply: impl FnMut(Record) -> Result<()>,
    ) -> Result<Recovered> {
        fs::create_dir_all(dir).map_err(|e| io("creating the log directory", dir, &e))?;
        let segments = list_segments(dir)?;
        let mut next_seq = from_seq;
        let mut replayed = 0;
        let mut tail: Option<(PathBuf, u64)> = None;
        for (i, (start, path)) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let data = fs::read(path).map_err(|e| io("reading", path, &e))?;
            let mut offset = match check_magic(&data) {
                Some(offset) => offset,
                None if last && SEGMENT_MAGIC.starts_with(&data) => {
                    tracing::warn!(file = %path.display(), "log segment header was torn: rewritten");
                    write_new_segment(path)?;
                    tail = Some((path.clone(), SEGMENT_MAGIC.len() as u64));
                    next_seq = next_seq.max(*start);
                    continue;
                }
                None => return Err(damaged(path, 0, "not a trove log segment")),
            };
            if *start > next_seq && replayed > 0 {
                return Err(damaged(
                    path,
                    0,
                    &format!("records {next_seq}..{start} are missing"),
                ));
            }
            next_seq = next_seq.max(*start);
            loop {
                match frame::next(&data, offset) {
                    Next::Frame(payload, end) => {
                        let record: Record = record::decode(payload).map_err(|e| {
                            damaged(path, offset, &format!("undecodable record: {e}"))
                        })?;
                        if record.seq >= from_seq {
                            if record.seq != next_seq {
                                return Err(damaged(
                                    path,
                                    offset,
                                    &format!("record {} where {next_seq} was expected", record.seq),
                                ));
                            }
                            next_seq += 1;
                            replayed += 1;
                            apply(record)?;
                        } else {
                            next_seq = next_seq.max(record.seq + 1);
                        }
                        offset = end;
                    }
                    Next::End => break,
                    Next::Torn if last => {
                        tracing::warn!(
                            file = %path.display(),
                            offset,
                            cut = data.len() - offset,
                            "log tail was torn by a crash mid-write: cut back to the last good record"
                        );
                        let file = OpenOptions::new()
                            .write(true)
                            .open(path)
                            .map_err(|e| io("opening", path, &e))?;
                        file.set_len(offset as u64)
                            .map_err(|e| io("truncating", path, &e))?;
                        file.sync_all().map_err(|e| io("syncing", path, &e))?;
                        break;
                    }
                    Next::Torn | Next::Corrupt => {
                        return Err(damaged(path, offset, "checksum mismatch"));
                    }
                }
            }
            if last {
                tail = Some((path.clone(), offset as u64));
            }
        }
        let (path, len) = match tail {
            Some(tail) => tail,
            None => {
                let path = segment_path(dir, next_seq);
                write_new_segment(&path)?;
                sync_dir(dir)?;
                (path, SEGMENT_MAGIC.len() as u64)
            }
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", &path, &e))?;
        let journal = Arc::new(Journal {
            dir: dir.to_owned(),
            fsync,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                path,
                len,
                next_seq,
                appended: 0,
                buf: Vec::new(),
            }),
            synced: AtomicU64::new(next_seq.saturating_sub(1)),
            sync_lock: Mutex::new(()),
            failed: Mutex::new(None),
        });
        if let Fsync::Interval(every) = fsync {
            start_interval_sync(Arc::downgrade(&journal), every);
        }
        Ok(Recovered { journal, replayed })
    }

    /// Appends `op`; returns its sequence number. Not on disk until [`Journal::sync`].
    pub fn append_op(&self, op: Op) -> Result<u64> {
        self.check_failed()?;
        let mut w = self.writer.lock();
        let w = &mut *w;
        let seq = w.next_seq;
        w.buf.clear();
        record::encode(&Record { seq, op }, &mut w.buf)?;
        if let Err(err) = w.file.write_all_at(&w.buf, w.len) {
            // Cut a partial frame back so that later appends follow good records.
            if let Err(cut) = w.file.set_len(w.len) {
                self.fail(format!("cutting back a failed append: {cut}"));
            }
            return Err(EngineError::storage(
                &format!("appending to {}", w.path.display()),
                &err,
            ));
        }
        w.len += w.buf.len() as u64;
        w.appended += w.buf.len() as u64;
        w.next_seq += 1;
        if w.buf.capacity() > 1 << 20 {
            w.buf = Vec::new();
        }
        Ok(seq)
    }

    /// Returns once record `seq` is on disk (at once with [`Fsync::Interval`]).
    pub fn sync(&self, seq: u64) -> Result<()> {
        if matches!(self.fsync, Fsync::Interval(_)) {
            return self.check_failed();
        }
        if self.synced.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _one = self.sync_lock.lock();
        if self.synced.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        self.sync_all()
    }

    /// Fsyncs everything appended so far. Call with `sync_lock` held.
    fn sync_all(&self) -> Result<()> {
        self.check_failed()?;
        let (file, upto) = {
            let w = self.writer.lock();
            (w.file.clone(), w.next_seq - 1)
        };
        if let Err(err) = file.sync_data() {
            self.fail(format!("fsync of the log failed: {err}"));
            return Err(EngineError::storage("syncing the log", &err));
        }
        self.synced.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Bytes appended since the last rotation.
    pub fn appended(&self) -> u64 {
        self.writer.lock().appended
    }

    /// Syncs the current segment and starts a new one; returns the sequence number
    /// of its first record. Every earlier record is in the older segments.
    pub fn rotate(&self) -> Result<u64> {
        let _one = self.sync_lock.lock();
        self.sync_all()?;
        let mut w = self.writer.lock();
        let path = segment_path(&self.dir, w.next_seq);
        if path != w.path {
            write_new_segment(&path)?;
            sync_dir(&self.dir)?;
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| EngineError::storage(&format!("opening {}", path.display()), &e))?;
            w.file = Arc::new(file);
            w.path = path;
            w.len = SEGMENT_MAGIC.len() as u64;
        }
        w.appended = 0;
        Ok(w.next_seq)
    }

    /// Removes the segments that hold only records before `seq`.
    pub fn remove_before(&self, seq: u64) -> Result<()> {
        let segments = list_segments(&self.dir)?;
        for (i, (_, path)) in segments.iter().enumerate() {
            let next_start = segments.get(i + 1).map(|(s, _)| *s);
            if next_start.is_some_and(|next| next <= seq) {
                fs::remove_file(path).map_err(|e| {
                    EngineError::storage(&format!("removing {}", path.display()), &e)
                })?;
            }
        }
        sync_dir(&self.dir)
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.writer.lock().next_seq
    }

    fn check_failed(&self) -> Result<()> {
        match &*self.failed.lock() {
            Some(cause) => Err(EngineError::StorageUnavailable(format!(
                "{cause}; the log takes no writes until the server restarts"
            ))),
            None => Ok(()),
        }
    }

    /// Refuses every later write until a restart (the log may hold a write
    /// that memory does not).
    pub fn fail(&self, cause: String) {
        tracing::error!(%cause, "the log failed");
        self.failed.lock().get_or_insert(cause);
    }
}

fn start_interval_sync(journal: Weak<Journal>, every: Duration) {
    std::thread::Builder::new()
        .name("trove-log-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(journal) = journal.upgrade() else {
                    return;
                };
                let _one = journal.sync_lock.lock();
                if journal.synced.load(Ordering::Acquire) + 1 < journal.next_seq() {
                    // Failures are logged and make the log refuse writes.
                    let _ = journal.sync_all();
                }
            }
        })
        .expect("spawning the log sync thread");
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.log"))
}

/// The segments in `dir` by first sequence number.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io("listing", dir, &e))? {
        let path = entry.map_err(|e| io("listing", dir, &e))?.path();
        let start = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(start) = start {
            segments.push((start, path));
        }
    }
    segments.sort();
    Ok(segments)
}

fn check_magic(data: &[u8]) -> Option<usize> {
    data.starts_with(SEGMENT_MAGIC)
        .then_some(SEGMENT_MAGIC.len())
}

fn write_new_segment(path: &Path) -> Result<()> {
    let mut file = File::create(path)
        .map_err(|e| EngineError::storage(&format!("creating {}", path.display()), &e))?;
    file.write_all(SEGMENT_MAGIC)
        .and_then(|()| file.sync_all())
        .map_err(|e| EngineError::storage(&format!("writing {}", path.display()), &e))
}

/// The local log has one writer, this server's engine, which checks each
/// write's condition under the lock that orders the writes to its target
/// before it appends: every append gets a position.
impl WriteLog for Journal {
    fn append(&self, entry: Entry<'_>) -> Result<Appended> {
        self.append_op(Op::from(entry.op)).map(Appended::At)
    }

    fn sync(&self, position: u64) -> Result<()> {
        Journal::sync(self, position)
    }

    fn last_position(&self) -> u64 {
        self.next_seq() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(uid: u64, id: &str) -> Op {
        Op::Delete {
            uid,
            id: id.into(),
            request: None,
        }
    }

    /// (seq, uid) of each record read back.
    type Seen = Vec<(u64, u64)>;

    /// The records of the log in `dir` from `from`, and the log reopened.
    fn read(dir: &Path, from: u64) -> Result<(Seen, Arc<Journal>)> {
        let mut seen = Vec::new();
        let recovered = Journal::recover(dir, Fsync::Always, from, |record| {
            let Op::Delete { uid, .. } = record.op else {
                panic!("only deletes were written");
            };
            seen.push((record.seq, uid));
            Ok(())
        })?;
        Ok((seen, recovered.journal))
    }

    fn segment(dir: &Path) -> PathBuf {
        list_segments(dir).unwrap().pop().unwrap().1
    }

    #[test]
    fn records_come_back_in_order_and_appends_continue_after_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (seen, journal) = read(tmp.path(), 1).unwrap();
        assert!(seen.is_empty());
        for uid in 1..=3 {
            assert_eq!(journal.append_op(delete(uid, "d")).unwrap(), uid);
        }
        journal.sync(3).unwrap();
        drop(journal);
        let (seen, journal) = read(tmp.path(), 1).unwrap();
        assert_eq!(seen, [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(journal.append_op(delete(4, "d")).unwrap(), 4);
        // From a checkpoint's position: the records before it are skipped.
        journal.sync(4).unwrap();
        drop(journal);
        assert_eq!(read(tmp.path(), 3).unwrap().0, [(3, 3), (4, 4)]);
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_good_record() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, journal) = read(tmp.path(), 1).unwrap();
        journal.append_op(delete(1, "d")).unwrap();
        journal.append_op(delete(2, "d")).unwrap();
        journal.sync(2).unwrap();
        drop(journal);
        let path = segment(tmp.path());
        let full = fs::metadata(&path).unwrap().len();
        // A crash in the middle of the second record's write.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 3).unwrap();
        drop(file);
        let (seen, journal) = read(tmp.path(), 1).unwrap();
        assert_eq!(seen, [(1, 1)]);
        // The file was cut to the good record, and the next append follows it.
        assert_eq!(journal.append_op(delete(3, "d")).unwrap(), 2);
        journal.sync(2).unwrap();
        drop(journal);
        assert_eq!(read(tmp.path(), 1).unwrap().0, [(1, 1), (2, 3)]);
    }

    #[test]
    fn damage_before_good_records_stops_recovery() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, journal) = read(tmp.path(), 1).unwrap();
        for uid in 1..=3 {
            journal.append_op(delete(uid, "d")).unwrap();
        }
        journal.sync(3).unwrap();
        drop(journal);
        let path = segment(tmp.path());
        let mut data = fs::read(&path).unwrap();
        // A flipped byte in the payload of the first record.
        let at = SEGMENT_MAGIC.len() + frame::HEADER_LEN + 1;
        data[at] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let err = read(tmp.path(), 1).err().unwrap();
        assert!(matches!(err, EngineError::DataDamaged(_)), "{err:?}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        // Nothing was cut: the damage stays for an operator to see.
        assert_eq!(fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_missing_segment_is_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, journal) = read(tmp.path(), 1).unwrap();
        journal.append_op(delete(1, "d")).unwrap();
        journal.rotate().unwrap();
        journal.append_op(delete(2, "d")).unwrap();
        journal.rotate().unwrap();
        journal.append_op(delete(3, "d")).unwrap();
        journal.sync(3).unwrap();
        drop(journal);
        let segments = list_segments(tmp.path()).unwrap();
        assert_eq!(segments.len(), 3);
        fs::remove_file(&segments[1].1).unwrap();
        let err = read(tmp.path(), 1).err().unwrap();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn segments_before_a_checkpoint_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, journal) = read(tmp.path(), 1).unwrap();
        journal.append_op(delete(1, "d")).unwrap();
        let seq = journal.rotate().unwrap();
        assert_eq!(seq, 2);
        journal.append_op(delete(2, "d")).unwrap();
        journal.remove_before(seq).unwrap();
        journal.sync(2).unwrap();
        drop(journal);
        assert_eq!(list_segments(tmp.path()).unwrap().len(), 1);
        assert_eq!(read(tmp.path(), seq).unwrap().0, [(2, 2)]);
    }
}
