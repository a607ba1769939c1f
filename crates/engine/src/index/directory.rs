//! The directory a collection's tantivy index lives in: tantivy's `RamDirectory`
//! with locks held in the process instead of lock files.
//!
//! tantivy takes its locks by creating a lock file and, when the file exists and
//! the lock is a blocking one, sleeps 100 ms before trying again. The meta lock is
//! blocking and is taken both by a reader reloading and by the writer's garbage
//! collection after every commit and merge, which overlap whenever a background
//! merge ends while a write is being made visible: that write then waits 100 ms
//! for a lock held for microseconds. Here a blocking lock waits on a condition
//! variable and is handed over as soon as it is released. A non-blocking lock
//! (the index writer's) fails at once when held, as with lock files.
//!
//! Written by hand because tantivy has no such directory; everything but the
//! locks is passed through to the `RamDirectory`.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, RamDirectory, WatchCallback, WatchHandle, WritePtr,
};

/// A `RamDirectory` whose locks are held in memory.
#[derive(Clone, Debug)]
pub(crate) struct IndexDirectory {
    files: RamDirectory,
    locks: Arc<Locks>,
}

impl IndexDirectory {
    pub(crate) fn new(files: RamDirectory) -> IndexDirectory {
        IndexDirectory {
            files,
            locks: Arc::default(),
        }
    }
}

/// The paths of the locks held now.
#[derive(Debug, Default)]
struct Locks {
    held: Mutex<HashSet<PathBuf>>,
    released: Condvar,
}

/// Releases its lock when dropped.
struct Held {
    locks: Arc<Locks>,
    path: PathBuf,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.locks.held.lock().remove(&self.path);
        self.locks.released.notify_all();
    }
}

impl Directory for IndexDirectory {
    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let mut held = self.locks.held.lock();
        while held.contains(&lock.filepath) {
            if !lock.is_blocking {
                return Err(LockError::LockBusy);
            }
            self.locks.released.wait(&mut held);
        }
        held.insert(lock.filepath.clone());
        Ok(DirectoryLock::from(Box::new(Held {
            locks: self.locks.clone(),
            path: lock.filepath.clone(),
        })))
    }

    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.files.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.files.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.files.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.files.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.files.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.files.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.files.sync_directory()
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.files.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use tantivy::directory::DirectoryClone;

    use super::*;

    fn lock(name: &str, is_blocking: bool) -> Lock {
        Lock {
            filepath: PathBuf::from(name),
            is_blocking,
        }
    }

    #[test]
    fn a_non_blocking_lock_fails_while_held_and_succeeds_once_released() {
        let directory = IndexDirectory::new(RamDirectory::create());
        let held = directory.acquire_lock(&lock("w.lock", false)).unwrap();
        assert!(matches!(
            directory.box_clone().acquire_lock(&lock("w.lock", false)),
            Err(LockError::LockBusy)
        ));
        // Another lock is independent.
        let _other = directory.acquire_lock(&lock("m.lock", false)).unwrap();
        drop(held);
        directory.acquire_lock(&lock("w.lock", false)).unwrap();
        // No lock file is left among the index's files.
        assert!(!directory.exists(Path::new("w.lock")).unwrap());
    }

    #[test]
    fn a_blocking_lock_is_handed_over_when_released() {
        let directory = IndexDirectory::new(RamDirectory::create());
        let held = directory.acquire_lock(&lock("m.lock", true)).unwrap();
        let (acquired, on_acquired) = mpsc::channel();
        let waiter = std::thread::spawn({
            let directory = directory.box_clone();
            move || {
                let _lock = directory.acquire_lock(&lock("m.lock", true)).unwrap();
                acquired.send(Instant::now()).unwrap();
            }
        });
        // The waiter is still waiting while the lock is held.
        assert!(on_acquired.recv_timeout(Duration::from_millis(50)).is_err());
        let released = Instant::now();
        drop(held);
        let at = on_acquired.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(at >= released);
        waiter.join().unwrap();
    }
}
