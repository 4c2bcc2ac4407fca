//! Directory listing that reports instead of failing: unreadable folders and non-UTF-8 names become
//! rejection rows, hidden files (`.DS_Store`, `._*`) are not inputs, and nothing recurses without a
//! fixed depth, so a symlink loop cannot trap a parser.

use crate::inventory::{is_image_name, reason, Inventory};
use std::path::{Path, PathBuf};

/// One directory entry with a UTF-8 name.
#[derive(Debug, Clone)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// A directory (after following symlinks).
    pub is_dir: bool,
}

/// Lists `dir` sorted by name. `rel` names the directory in rejection rows. An unreadable
/// directory gives one `unreadable` row and no entries; a non-UTF-8 name gives a `bad_name` row.
pub fn list(dir: &Path, rel: &str, inv: &mut Inventory) -> Vec<Entry> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            inv.reject(rel, "read", reason::UNREADABLE, e.to_string());
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                inv.reject(rel, "read", reason::UNREADABLE, e.to_string());
                continue;
            }
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            inv.reject(
                join(rel, &entry.file_name().to_string_lossy()),
                "read",
                reason::BAD_NAME,
                "file name is not valid UTF-8",
            );
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Follows symlinks; a dangling or looping link is reported, not followed forever.
        let is_dir = match std::fs::metadata(&path) {
            Ok(m) => m.is_dir(),
            Err(e) => {
                inv.reject(join(rel, &name), "read", reason::UNREADABLE, e.to_string());
                continue;
            }
        };
        out.push(Entry { name, path, is_dir });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The image file names of a sequence folder (unsorted). Other entries are excluded as
/// `not_an_image`; a folder without images is rejected as `no_frames` and gives `None`.
pub fn sequence_frames(dir: &Path, rel: &str, inv: &mut Inventory) -> Option<Vec<String>> {
    let mut frames = Vec::new();
    for f in list(dir, rel, inv) {
        if !f.is_dir && is_image_name(&f.name) {
            frames.push(f.name);
        } else {
            inv.exclude(
                join(rel, &f.name),
                reason::NOT_AN_IMAGE,
                "not an image file",
            );
        }
    }
    if frames.is_empty() {
        inv.reject(
            rel,
            "parse",
            reason::NO_FRAMES,
            "sequence folder without images",
        );
        return None;
    }
    Some(frames)
}

/// The sub-folders of `dir` (named `rel` in rows) with their relative paths, for layouts whose
/// levels are folders (`<subject>/<sequence>/`): a file where a `what` folder belongs is an
/// exclusion row ("a file where subject folders are"), not an input.
pub fn subdirs(dir: &Path, rel: &str, what: &str, inv: &mut Inventory) -> Vec<(Entry, String)> {
    let mut out = Vec::new();
    for e in list(dir, rel, inv) {
        let path = join(rel, &e.name);
        if e.is_dir {
            out.push((e, path));
        } else {
            inv.exclude(
                &path,
                reason::NOT_AN_IMAGE,
                format!("a file where {what} folders are"),
            );
        }
    }
    out
}

/// `a/b`, or `b` when `a` is empty.
pub fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// All regular files under `root` up to `depth` levels, as sorted relative paths (for the source
/// fingerprint). Hidden names are skipped like the parsers skip them; non-UTF-8 names are kept
/// lossily (the parser reports them).
pub fn files_for_fingerprint(root: &Path, depth: usize) -> Vec<String> {
    fn rec(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = e.path();
            let r = join(rel, &name);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() && depth > 1 => rec(&path, &r, depth - 1, out),
                // Unreadable files are left to the parser, which reports them as failure rows.
                Ok(m) if m.is_file() && std::fs::File::open(&path).is_ok() => out.push(r),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    rec(root, "", depth, &mut out);
    out.sort();
    out
}
