//! Advisory locks on directories that several processes may use at once: a cache being built
//! (exclusive) or read (shared), and a training run directory (exclusive).
//!
//! The lock is `flock(2)` on the file [`LOCK_FILE`] inside the directory, through std's
//! [`File::lock`] family. The kernel drops it when its holder exits in any way, SIGKILL included,
//! so a crashed holder never blocks the next command. An exclusive holder writes who it is into
//! the file (pid, start time, command line), so that a waiting or refused process can say whom
//! it waits for.
//!
//! The file is never removed while locked; a directory removed under a waiting process (`prep
//! cache gc`) is noticed after the wait (the locked file is no longer the one at the path) and
//! the lock is taken again on the new file, so two processes never both believe they hold it.

use crate::{Result, ShardError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside a locked directory (hidden, so listings and readers skip it).
pub const LOCK_FILE: &str = ".lock";

/// Who holds a directory's exclusive lock, as the holder wrote it into [`LOCK_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// When it took the lock (seconds since the Unix epoch).
    pub since_unix: u64,
    /// Its command line.
    pub command: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ago = unix_now().saturating_sub(self.since_unix);
        write!(
            f,
            "pid {} (since {} s ago, unix time {}: {})",
            self.pid, ago, self.since_unix, self.command
        )
    }
}

/// How a message names the holder a process waits for or is refused by: the recorded exclusive
/// holder, or "another process" (shared holders record nothing).
pub fn describe_holder(holder: Option<LockHolder>) -> String {
    holder.map_or_else(|| "another process".to_string(), |h| h.to_string())
}

/// Shared (readers) or exclusive (a writer, or a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Any number of shared holders, no exclusive one.
    Shared,
    /// One holder, no shared ones.
    Exclusive,
}

/// A held lock on a directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    /// `None`: a shared lock on a directory this process may not write (nothing to coordinate
    /// with: no writer can write there either).
    file: Option<File>,
    dir: PathBuf,
    mode: LockMode,
}

impl DirLock {
    /// Takes `dir`'s lock in `mode`, waiting as long as another process holds it in a conflicting
    /// mode. `on_wait` is called once, before waiting, with the exclusive holder when one is
    /// recorded (`None` when the conflict is with shared holders). An exclusive lock creates
    /// `dir` when missing and records this process as the holder.
    ///
    /// Errors: [`ShardError::Io`] creating the directory or the lock file, or from the lock call.
    pub fn acquire(
        dir: &Path,
        mode: LockMode,
        on_wait: &mut dyn FnMut(Option<LockHolder>),
    ) -> Result<DirLock> {
        let mut waited = false;
        loop {
            let Some(file) = open_lock_file(dir, mode)? else {
                return Ok(DirLock {
                    file: None,
                    dir: dir.to_path_buf(),
                    mode,
                });
            };
            match try_lock(&file, mode) {
                Ok(true) => {}
                Ok(false) => {
                    if !waited {
                        waited = true;
                        on_wait(read_holder(dir));
                    }
                    let lock = match mode {
                        LockMode::Shared => file.lock_shared(),
                        LockMode::Exclusive => file.lock(),
                    };
                    lock.map_err(|e| ShardError::io(lock_path(dir), e))?;
                }
                Err(e) => return Err(e),
            }
            if still_at_path(&file, dir) {
                return DirLock {
                    file: Some(file),
                    dir: dir.to_path_buf(),
                    mode,
                }
                .recorded();
            }
            // The directory was removed (or the file replaced) while we waited: lock the new one.
        }
    }

    /// Takes `dir`'s lock in `mode` if no other process holds it in a conflicting mode; otherwise
    /// returns `Ok(Err(holder))` at once (the exclusive holder when recorded).
    ///
    /// Errors: [`ShardError::Io`] creating the directory or the lock file.
    pub fn try_acquire(
        dir: &Path,
        mode: LockMode,
    ) -> Result<std::result::Result<DirLock, Option<LockHolder>>> {
        let Some(file) = open_lock_file(dir, mode)? else {
            return Ok(Ok(DirLock {
                file: None,
                dir: dir.to_path_buf(),
                mode,
            }));
        };
        if !try_lock(&file, mode)? {
            return Ok(Err(read_holder(dir)));
        }
        if !still_at_path(&file, dir) {
            // Removed between our open and lock: nobody can be using what is no longer there.
            return Ok(Err(None));
        }
        DirLock {
            file: Some(file),
            dir: dir.to_path_buf(),
            mode,
        }
        .recorded()
        .map(Ok)
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The mode it is held in.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// An exclusive holder writes who it is into the lock file. Shared holders write nothing
    /// (there may be many), but clear a record left by an exclusive holder that was killed before
    /// it could: while a shared lock is held no exclusive holder exists, so any record is stale.
    fn recorded(mut self) -> Result<DirLock> {
        if let (LockMode::Shared, Some(file)) = (self.mode, self.file.as_mut()) {
            if file.metadata().is_ok_and(|m| m.len() > 0) {
                // Best effort: a file opened read-only cannot be cleared, and needs not be.
                let _ = file.set_len(0);
            }
            return Ok(self);
        }
        if let (LockMode::Exclusive, Some(file)) = (self.mode, self.file.as_mut()) {
            let me = LockHolder {
                pid: std::process::id(),
                since_unix: unix_now(),
                command: std::env::args().collect::<Vec<_>>().join(" "),
            };
            let text = serde_json::to_vec(&me).map_err(|e| {
                ShardError::io(
                    lock_path(&self.dir),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?;
            let path = lock_path(&self.dir);
            (|| {
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&text)?;
                file.flush()
            })()
            .map_err(|e| ShardError::io(&path, e))?;
        }
        Ok(self)
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let (LockMode::Exclusive, Some(file)) = (self.mode, self.file.as_mut()) {
            // Nobody holds it any more; a stale name would mislead the next waiter's message.
            let _ = file.set_len(0);
        }
        // Closing the file releases the lock.
    }
}

/// The exclusive holder recorded in `dir`'s lock file, if any (it may have exited since: only a
/// failed lock attempt proves that somebody holds it).
pub fn read_holder(dir: &Path) -> Option<LockHolder> {
    let mut text = Vec::new();
    File::open(lock_path(dir))
        .ok()?
        .read_to_end(&mut text)
        .ok()?;
    serde_json::from_slice(&text).ok()
}

fn lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCK_FILE)
}

/// Opens (creating) the lock file. A shared lock on a directory this process cannot write returns
/// `None`: read-only caches need no coordination with writers that cannot exist.
fn open_lock_file(dir: &Path, mode: LockMode) -> Result<Option<File>> {
    let path = lock_path(dir);
    if mode == LockMode::Exclusive {
        std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
    }
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    match opened {
        Ok(f) => Ok(Some(f)),
        Err(e)
            if mode == LockMode::Shared
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
        {
            match File::open(&path) {
                Ok(f) => Ok(Some(f)),
                Err(_) => Ok(None),
            }
        }
        Err(e) => Err(ShardError::io(&path, e)),
    }
}

/// `Ok(true)` when taken, `Ok(false)` when another holder conflicts.
fn try_lock(file: &File, mode: LockMode) -> Result<bool> {
    let r = match mode {
        LockMode::Shared => file.try_lock_shared(),
        LockMode::Exclusive => file.try_lock(),
    };
    match r {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(ShardError::io(Path::new(LOCK_FILE), e)),
    }
}

/// Whether the file we locked is still the one at the path (not unlinked with its directory).
fn still_at_path(file: &File, dir: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(lock_path(dir))) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_records_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("c");
        let a = DirLock::acquire(&d, LockMode::Exclusive, &mut |_| panic!("no wait")).unwrap();
        let holder = read_holder(&d).expect("recorded");
        assert_eq!(holder.pid, std::process::id());
        // flock is per open file: a second open in this process conflicts like another process.
        let busy = DirLock::try_acquire(&d, LockMode::Exclusive).unwrap();
        assert_eq!(busy.unwrap_err(), Some(holder.clone()));
        assert!(DirLock::try_acquire(&d, LockMode::Shared).unwrap().is_err());
        drop(a);
        assert_eq!(read_holder(&d), None, "a released lock names nobody");
        let s1 = DirLock::try_acquire(&d, LockMode::Shared).unwrap().unwrap();
        let s2 = DirLock::try_acquire(&d, LockMode::Shared).unwrap().unwrap();
        assert!(DirLock::try_acquire(&d, LockMode::Exclusive)
            .unwrap()
            .is_err());
        drop((s1, s2));
        assert!(DirLock::try_acquire(&d, LockMode::Exclusive)
            .unwrap()
            .is_ok());
    }

    #[test]
    fn a_waiter_is_told_whom_it_waits_for_and_gets_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("c");
        let a = DirLock::acquire(&d, LockMode::Exclusive, &mut |_| {}).unwrap();
        let d2 = d.clone();
        let waiter = std::thread::spawn(move || {
            let mut told = None;
            let l = DirLock::acquire(&d2, LockMode::Exclusive, &mut |h| told = Some(h)).unwrap();
            (told, l.mode())
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(a);
        let (told, mode) = waiter.join().unwrap();
        assert_eq!(told.flatten().map(|h| h.pid), Some(std::process::id()));
        assert_eq!(mode, LockMode::Exclusive);
    }

    #[test]
    fn a_directory_removed_while_waiting_is_locked_anew() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("c");
        let a = DirLock::acquire(&d, LockMode::Exclusive, &mut |_| {}).unwrap();
        let d2 = d.clone();
        let waiter = std::thread::spawn(move || {
            DirLock::acquire(&d2, LockMode::Exclusive, &mut |_| {}).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        // What `prep cache gc` does while holding the lock.
        std::fs::remove_dir_all(&d).unwrap();
        drop(a);
        let l = waiter.join().unwrap();
        assert!(still_at_path(l.file.as_ref().unwrap(), &d));
        assert!(DirLock::try_acquire(&d, LockMode::Shared).unwrap().is_err());
    }
}
