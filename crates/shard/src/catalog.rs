//! Caches under a directory, and the one an experiment's `cache = "…"` reference names.
//!
//! A reference is one of
//! * a path to a cache directory (`data/cache/fer2013-c1172570a3902510`, or just that directory's
//!   name under the cache directory);
//! * `name@keyprefix` (`fer2013@c1172570`): the complete cache of that name whose key starts
//!   with the prefix;
//! * a bare `name` (`fer2013`): the complete cache of that name. When there are several, they
//!   must all come from the same source (same dataset files: a rebuild with other settings or
//!   another tool version), and the newest is taken; caches of one name built from different
//!   sources (the full FER2013 csv and a 3,000-row sample) are an error that lists them, so that
//!   an experiment never trains on the wrong one silently.
//!
//! Part caches (`prep build --part i/N`) and caches with no samples are never chosen.

use crate::{Manifest, Result, ShardError};
use std::path::{Path, PathBuf};

/// Written into a cache directory instead of `manifest.json` when a build ends in an error (too
/// many failures, no sample at all): the directory keeps `failures.parquet` for diagnosis, is never
/// a complete cache, and `prep cache ls` shows the reason from this file.
pub const BUILD_FAILED_FILE: &str = "build-failed.json";

/// What a directory under the cache directory is.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheState {
    /// A manifest that loads, with samples; usable by a reference.
    Complete,
    /// A complete part of a split build (`prep build --part`); merge the parts to use them.
    Part(String),
    /// A manifest with no samples (written by older versions for failed builds).
    Empty,
    /// A build that ended in an error; the reason from [`BUILD_FAILED_FILE`].
    Failed(String),
    /// No valid manifest: a build still running, killed or crashed, or a damaged manifest.
    Incomplete(String),
}

impl std::fmt::Display for CacheState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheState::Complete => write!(f, "complete"),
            CacheState::Part(p) => write!(f, "part {p} (prep cache merge the parts)"),
            CacheState::Empty => write!(f, "empty (0 samples)"),
            CacheState::Failed(r) => write!(f, "failed build: {r}"),
            CacheState::Incomplete(r) => write!(f, "incomplete: {r}"),
        }
    }
}

/// One directory under the cache directory.
#[derive(Debug, Clone)]
pub struct ListedCache {
    /// The directory.
    pub dir: PathBuf,
    /// The cache name (from the manifest, else the directory name before its last `-`).
    pub name: String,
    /// The manifest, when it loads.
    pub manifest: Option<Manifest>,
    /// What the directory is.
    pub state: CacheState,
    /// Bytes of the files directly inside it.
    pub bytes: u64,
}

impl ListedCache {
    /// The directory's file name.
    pub fn dir_name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The source fingerprint digest the cache was built from (`key_ingredients.source.digest`),
    /// when the manifest records one.
    pub fn source_digest(&self) -> Option<String> {
        let m = self.manifest.as_ref()?;
        m.key_ingredients
            .pointer("/source/digest")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// Where the cache was built from, as the build recorded it (`extra.source`), for listings.
    pub fn source_path(&self) -> String {
        self.manifest
            .as_ref()
            .and_then(|m| m.extra.get("source"))
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    }

    fn line(&self) -> String {
        match &self.manifest {
            Some(m) => format!(
                "{}  key {}  {} samples  source {}  created {} (unix)",
                self.dir_name(),
                m.short_key(),
                m.samples,
                self.source_path(),
                m.created_unix
            ),
            None => format!("{}  {}", self.dir_name(), self.state),
        }
    }
}

/// Every directory under `cache_dir` that is or was meant to be a cache (hidden ones skipped),
/// sorted by directory name. A missing `cache_dir` is an empty list.
///
/// Errors: [`ShardError::Io`] when `cache_dir` cannot be listed.
pub fn list_caches(cache_dir: &Path) -> Result<Vec<ListedCache>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(cache_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(ShardError::io(cache_dir, e)),
    };
    for e in entries {
        let e = e.map_err(|err| ShardError::io(cache_dir, err))?;
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if hidden || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let bytes = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(|f| f.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let (manifest, state) = match Manifest::load(&dir) {
            Ok(m) => {
                let part = m
                    .extra
                    .get("part")
                    .and_then(|p| p.as_str())
                    .map(str::to_string);
                let state = match part {
                    Some(p) => CacheState::Part(p),
                    None if m.samples == 0 => CacheState::Empty,
                    None => CacheState::Complete,
                };
                (Some(m), state)
            }
            Err(err) => {
                let failed = std::fs::read(dir.join(BUILD_FAILED_FILE))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string));
                let state = match failed {
                    Some(reason) => CacheState::Failed(reason),
                    None => CacheState::Incomplete(match err {
                        ShardError::NotACache { .. } => {
                            "no manifest (a build still running, killed or crashed)".to_string()
                        }
                        other => other.to_string(),
                    }),
                };
                (None, state)
            }
        };
        let name = match &manifest {
            Some(m) => m.name.clone(),
            None => e
                .file_name()
                .to_string_lossy()
                .split_once(".part-")
                .map_or_else(
                    || e.file_name().to_string_lossy().into_owned(),
                    |(base, _)| base.to_string(),
                )
                .rsplit_once('-')
                .map(|(n, _)| n.to_string())
                .unwrap_or_default(),
        };
        out.push(ListedCache {
            dir,
            name,
            manifest,
            state,
            bytes,
        });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// The cache directory that `reference` names (see the module documentation for the forms).
///
/// Errors: [`ShardError::CacheRef`] when nothing matches (listing what exists under that name),
/// when a key prefix matches several caches, or when a bare name matches complete caches built
/// from different sources (listing them with keys and sources, and the `name@key` form to pick
/// one); [`ShardError::Io`] when `cache_dir` cannot be listed.
pub fn resolve_cache(cache_dir: &Path, reference: &str) -> Result<PathBuf> {
    let err = |reason: String| ShardError::CacheRef {
        reference: reference.to_string(),
        cache_dir: cache_dir.to_path_buf(),
        reason,
    };
    for direct in [PathBuf::from(reference), cache_dir.join(reference)] {
        if direct.join(crate::MANIFEST_FILE).is_file() {
            return Ok(direct);
        }
    }
    let (name, prefix) = match reference.split_once('@') {
        Some((n, k)) => (n, Some(k.to_ascii_lowercase())),
        None => (reference, None),
    };
    if let Some(p) = &prefix {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(err(format!(
                "the part after '@' must be the start of a cache key in hex, not {p:?}"
            )));
        }
    }
    let all = list_caches(cache_dir)?;
    let same_name: Vec<&ListedCache> = all.iter().filter(|c| c.name == name).collect();
    let mut usable: Vec<&ListedCache> = same_name
        .iter()
        .copied()
        .filter(|c| c.state == CacheState::Complete)
        .filter(|c| match (&prefix, &c.manifest) {
            (Some(p), Some(m)) => m.key.starts_with(p.as_str()),
            _ => true,
        })
        .collect();
    let listing = |caches: &[&ListedCache]| {
        caches
            .iter()
            .map(|c| format!("\n  {}", c.line()))
            .collect::<String>()
    };
    if usable.is_empty() {
        let why = if same_name.is_empty() {
            let names: std::collections::BTreeSet<&str> =
                all.iter().map(|c| c.name.as_str()).collect();
            format!(
                "no cache of that name (names there: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.into_iter().collect::<Vec<_>>().join(", ")
                }
            )
        } else {
            format!(
                "no complete cache{} among:{}",
                prefix
                    .as_ref()
                    .map(|p| format!(" with a key starting {p}"))
                    .unwrap_or_default(),
                same_name
                    .iter()
                    .map(|c| format!("\n  {}  ({})", c.line(), c.state))
                    .collect::<String>()
            )
        };
        return Err(err(why));
    }
    if usable.len() == 1 {
        return Ok(usable[0].dir.clone());
    }
    if prefix.is_some() {
        return Err(err(format!(
            "the key prefix matches {} caches; give more digits:{}",
            usable.len(),
            listing(&usable)
        )));
    }
    let sources: std::collections::BTreeSet<Option<String>> =
        usable.iter().map(|c| c.source_digest()).collect();
    if sources.len() > 1 || sources.contains(&None) {
        return Err(err(format!(
            "{} complete caches of that name come from different sources; pin one in the \
             experiment as cache = \"{name}@<key prefix>\":{}",
            usable.len(),
            listing(&usable)
        )));
    }
    // Same source, other settings or tool version: the newest build supersedes the others.
    usable.sort_by_key(|c| c.manifest.as_ref().map_or(0, |m| m.created_unix));
    Ok(usable[usable.len() - 1].dir.clone())
}
