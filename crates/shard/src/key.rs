//! Cache keys and source fingerprints (FORMAT.md section 7).

use crate::{FormatVersion, Result, ShardError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// blake3 of a file's content, lower-case hex, read in a stream (model files, fold lists and
/// checkpoints are identified by content in keys and run records).
///
/// Errors: [`ShardError::Io`] naming the file.
pub fn hash_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| ShardError::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    // Blocks of 8 MiB hashed on every core (blake3's tree splits a block across threads; the
    // digest does not depend on how the input is split into updates). The memory stays one
    // block, where a memory map of a large csv would count all of it as resident.
    let mut block = vec![0u8; 8 << 20];
    loop {
        let mut filled = 0;
        while filled < block.len() {
            match f.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ShardError::io(path, e)),
            }
        }
        if filled == 0 {
            break;
        }
        if filled >= 128 << 10 {
            hasher.update_rayon(&block[..filled]);
        } else {
            hasher.update(&block[..filled]);
        }
        if filled < block.len() {
            break;
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The identity of a cache: blake3 over everything that determines its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    hex: String,
    ingredients: serde_json::Value,
}

impl CacheKey {
    /// Computes the key from the prep config, the model files' hashes and the source fingerprint.
    ///
    /// `config` is serialised to canonical JSON (sorted keys, no whitespace), so field order and
    /// formatting do not change the key. Things that do not change the output (threads, paths,
    /// batch sizes) must not be in `config`.
    pub fn compute<C: Serialize>(
        config: &C,
        models: &BTreeMap<String, String>,
        source: &SourceFingerprint,
    ) -> Result<CacheKey> {
        let enc = |e: serde_json::Error| ShardError::Encode {
            sample_id: "<cache key>".into(),
            reason: e.to_string(),
        };
        let ingredients = serde_json::json!({
            "config": serde_json::to_value(config).map_err(enc)?,
            "format": FormatVersion::CURRENT,
            "models": models,
            "source": source,
        });
        let mut canonical = Vec::new();
        write_canonical(&ingredients, &mut canonical);
        let hex = blake3::hash(&canonical).to_hex().to_string();
        Ok(CacheKey { hex, ingredients })
    }

    /// The key recorded in a manifest (to write a cache with the same identity, e.g. when merging
    /// the parts of a split build).
    pub fn from_manifest(m: &crate::Manifest) -> CacheKey {
        CacheKey {
            hex: m.key.clone(),
            ingredients: m.key_ingredients.clone(),
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 16 hex digits, used in directory names and messages.
    pub fn short(&self) -> &str {
        short_key(&self.hex)
    }

    /// What went into the key, as stored in the manifest.
    pub fn ingredients(&self) -> &serde_json::Value {
        &self.ingredients
    }
}

/// The short form of a cache key that names caches and runs: its first 16 hex digits (all of
/// them when shorter, e.g. a damaged manifest's key: never a panic).
pub fn short_key(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace. Written by hand so
/// that no serde_json feature (`preserve_order`) pulled in by another crate can change the key.
pub(crate) fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String((*k).clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// Summary of a set of input files: count, total size and a digest over names, sizes and contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFingerprint {
    /// Number of files.
    pub files: u64,
    /// Total bytes.
    pub bytes: u64,
    /// blake3 hex over (path, NUL, size u64 LE, content blake3) in path order.
    pub digest: String,
}

/// One input file with its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path relative to the dataset root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (for the fast path only, not in the key).
    pub mtime_ns: u128,
    /// blake3 of the content, hex.
    pub blake3: String,
}

/// Computes [`SourceFingerprint`]s, optionally reusing content hashes of files whose size and
/// modification time have not changed since the last run (the stat cache).
#[derive(Debug, Default)]
pub struct SourceFingerprinter {
    stat_cache: Option<PathBuf>,
    force_rehash: bool,
}

impl SourceFingerprinter {
    /// A fingerprinter that hashes every file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reuse hashes from (and save them to) `path` when size and mtime are unchanged.
    pub fn with_stat_cache(mut self, path: impl Into<PathBuf>) -> Self {
        self.stat_cache = Some(path.into());
        self
    }

    /// Ignore the stat cache and hash every file (default: false).
    pub fn force_rehash(mut self, yes: bool) -> Self {
        self.force_rehash = yes;
        self
    }

    /// Fingerprints `files` (relative to `root`). Hashing runs on the rayon pool; the result does not
    /// depend on the thread count or on the order of `files`.
    ///
    /// Errors: [`ShardError::Io`] naming the file that could not be read.
    pub fn fingerprint(&self, root: &Path, files: &[String]) -> Result<SourceFingerprint> {
        let previous: HashMap<String, SourceFile> = match (&self.stat_cache, self.force_rehash) {
            (Some(p), false) => std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Vec<SourceFile>>(&b).ok())
                .map(|v| v.into_iter().map(|f| (f.path.clone(), f)).collect())
                .unwrap_or_default(),
            _ => HashMap::new(),
        };
        let mut entries: Vec<SourceFile> = files
            .par_iter()
            .map(|rel| {
                let path = root.join(rel);
                let md = std::fs::metadata(&path).map_err(|e| ShardError::io(&path, e))?;
                let mtime_ns = md
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                if let Some(prev) = previous.get(rel) {
                    if prev.size == md.len()
                        && prev.mtime_ns == mtime_ns
                        && mtime_ns != 0
                        && blake3::Hash::from_hex(&prev.blake3).is_ok()
                    {
                        return Ok(prev.clone());
                    }
                }
                Ok(SourceFile {
                    path: rel.clone(),
                    size: md.len(),
                    mtime_ns,
                    blake3: hash_file(&path)?,
                })
            })
            .collect::<Result<_>>()?;
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        entries.dedup_by(|a, b| a.path == b.path);
        let mut digest = blake3::Hasher::new();
        let mut bytes = 0u64;
        for e in &entries {
            digest.update(e.path.as_bytes());
            digest.update(&[0]);
            digest.update(&e.size.to_le_bytes());
            let hash = blake3::Hash::from_hex(&e.blake3).map_err(|err| ShardError::Encode {
                sample_id: e.path.clone(),
                reason: format!("bad content hash {:?}: {err}", e.blake3),
            })?;
            digest.update(hash.as_bytes());
            bytes += e.size;
        }
        if let Some(p) = &self.stat_cache {
            // The stat cache is an optimisation: failing to save it must not fail the build.
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(b) = serde_json::to_vec(&entries) {
                let _ = crate::atomic_write(p, &b);
            }
        }
        Ok(SourceFingerprint {
            files: entries.len() as u64,
            bytes,
            digest: digest.finalize().to_hex().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    /// The blockwise, multi-threaded file hash is blake3 of the whole content: for an empty
    /// file, a small one, one of exactly one block and one that ends a block into the next.
    #[test]
    fn file_hash_is_blake3_of_the_content_at_any_length() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1000, 8 << 20, (8 << 20) + 12_345] {
            let content: Vec<u8> = (0..len as u64)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &content).unwrap();
            assert_eq!(
                super::hash_file(&path).unwrap(),
                blake3::hash(&content).to_hex().to_string(),
                "length {len}"
            );
        }
    }
}
