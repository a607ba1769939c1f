//! File helpers shared by the log, checkpoints and snapshots: the data
//! directory's format file and lock, directory syncs, and the errors a file
//! operation reports.

use std::fs;
use std::path::{Path, PathBuf};

use trove_engine::{EngineError, Result};

/// The first line of `DATA/FORMAT`.
const FORMAT_LINE: &str = "trove data directory format 1";

/// The lock file: a second server on the same directory would append to the
/// same log and overwrite its checkpoints.
const LOCK_FILE: &str = "LOCK";

/// Checks `DATA/FORMAT`, writing it into a new data directory.
pub fn check_format(root: &Path) -> Result<()> {
    fs::create_dir_all(root).map_err(|e| io("creating", root, &e))?;
    let path = root.join("FORMAT");
    match fs::read_to_string(&path) {
        Ok(text) if text.lines().next() == Some(FORMAT_LINE) => Ok(()),
        Ok(text) => Err(EngineError::DataDamaged(format!(
            "{} says {:?}; this trove reads {FORMAT_LINE:?} and will not touch the directory",
            path.display(),
            text.lines().next().unwrap_or_default()
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let occupied = fs::read_dir(root)
                .map_err(|e| io("listing", root, &e))?
                .any(|entry| entry.is_ok_and(|e| e.file_name() != LOCK_FILE));
            if occupied {
                return Err(EngineError::DataDamaged(format!(
                    "{} is not empty and has no FORMAT file: not a trove data directory",
                    root.display()
                )));
            }
            fs::write(&path, format!("{FORMAT_LINE}\n")).map_err(|e| io("writing", &path, &e))?;
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io("syncing", &path, &e))?;
            sync_dir(root)
        }
        Err(err) => Err(io("reading", &path, &err)),
    }
}

/// Takes `DATA/LOCK` for as long as the returned file stays open (an flock,
/// which the kernel releases when the process ends, however it ends), and
/// writes this process's id into it. Refuses when another process holds it.
pub fn lock(root: &Path) -> Result<fs::File> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;

    fs::create_dir_all(root).map_err(|e| io("creating", root, &e))?;
    let path = root.join(LOCK_FILE);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("opening", &path, &e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io("locking", &path, &err));
        }
        let holder = fs::read_to_string(&path).unwrap_or_default();
        let holder = match holder.trim() {
            "" => "another process".to_owned(),
            pid => format!("another trove server (pid {pid})"),
        };
        return Err(EngineError::StorageUnavailable(format!(
            "{} is in use by {holder}: one server per data directory",
            root.display()
        )));
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| io("writing", &path, &e))?;
    Ok(file)
}

/// Complete checkpoints by log position; removes unfinished ones.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io("listing", dir, &e))? {
        let path = entry.map_err(|e| io("listing", dir, &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".tmp") {
            fs::remove_dir_all(&path).map_err(|e| io("removing", &path, &e))?;
        } else if let Ok(seq) = name.parse::<u64>() {
            found.push((seq, path));
        }
    }
    found.sort();
    Ok(found)
}

pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list_checkpoints(dir)?.pop().map(|(_, path)| path))
}

/// Fsyncs a directory, making the files created or renamed in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, &e))
}

/// A failed file operation on `path`: StorageFull or StorageUnavailable.
pub fn io(action: &str, path: &Path, err: &std::io::Error) -> EngineError {
    EngineError::storage(&format!("{action} {}", path.display()), err)
}

/// Damage found in `path` at `offset`: start-up stops.
pub fn damaged(path: &Path, offset: usize, what: &str) -> EngineError {
    EngineError::DataDamaged(format!(
        "{} is damaged at offset {offset}: {what}",
        path.display()
    ))
}
