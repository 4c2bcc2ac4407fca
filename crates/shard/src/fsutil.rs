//! Crash-safe file writing: temp file, fsync, rename, fsync of the directory.

use crate::{Result, ShardError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name a file is written under before it is renamed into place.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// [`atomic_write`] for a file that several processes may write at the same moment (job-array
/// tasks sharing a run directory write the same `config.toml`): the temporary file is
/// `path.<pid>.tmp`, so that one process's rename cannot take another's half-written file away.
/// The last rename wins; each is a complete file.
///
/// Errors: [`ShardError::Io`] naming the path that failed.
pub fn atomic_write_shared(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    write_through(path, &path.with_file_name(name), bytes)
}

/// Writes `bytes` to `path` atomically: `path.tmp`, fsync, rename, fsync of the parent directory.
///
/// A crash leaves either the old file (or none) or the complete new one, never a partial file under
/// the final name. Errors name the path that failed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_through(path, &tmp_path(path), bytes)
}

/// `bytes` into `tmp`, fsync, rename onto `path`, fsync of the parent directory.
fn write_through(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp.to_path_buf();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| ShardError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| ShardError::io(&tmp, e))?;
    f.sync_all().map_err(|e| ShardError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| ShardError::io(path, e))?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Flushes a directory's entries (renames, creations) to disk.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let d = File::open(dir).map_err(|e| ShardError::io(dir, e))?;
    d.sync_all().map_err(|e| ShardError::io(dir, e))
}
