//! `manifest.json`: what makes a directory a cache (FORMAT.md section 4).

use crate::format::FormatVersion;
use crate::{Result, ShardError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the manifest inside a cache directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One shard as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name inside the cache directory, `shard-NNNNN.fsh`.
    pub file: String,
    /// Number of records.
    pub samples: u64,
    /// File length in bytes.
    pub bytes: u64,
    /// blake3 of the whole file, hex.
    pub blake3: String,
}

/// Record counts per split, class and subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// `train`, `validation`, `test`, `fold0`, `fold1`, …
    pub by_split: BTreeMap<String, u64>,
    /// Class name → count.
    pub by_class: BTreeMap<String, u64>,
    /// Subject id → count (empty subject ids are counted under `""`).
    pub by_subject: BTreeMap<String, u64>,
}

/// The parsed `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of the cache.
    pub format: FormatVersion,
    /// Metadata schema id of the records.
    pub schema_id: u32,
    /// Cache name (the dataset name chosen by prep).
    pub name: String,
    /// The full cache key, 64 hex digits.
    pub key: String,
    /// What went into the key (canonical config, format, models, source fingerprint).
    pub key_ingredients: serde_json::Value,
    /// Writer name and version.
    pub tool: String,
    /// Git revision of the writer, when known.
    #[serde(default)]
    pub git_revision: Option<String>,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// The shards, in global record order.
    pub shards: Vec<ShardEntry>,
    /// Total number of records.
    pub samples: u64,
    /// Counts per split, class and subject.
    pub counts: Counts,
    /// Rows in `failures.parquet`.
    pub failures: u64,
    /// Inputs considered: `samples + failures`.
    pub inputs_seen: u64,
    /// Label index → class name.
    pub class_names: Vec<String>,
    /// Writer-specific notes.
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl Manifest {
    /// The first 16 hex digits of the key, as [`crate::CacheKey::short`] gives them.
    pub fn short_key(&self) -> &str {
        crate::key::short_key(&self.key)
    }

    /// Reads and checks `dir/manifest.json`: parses, refuses unknown format majors, checks that the
    /// shard sample counts add up.
    ///
    /// Errors: [`ShardError::NotACache`] when the file is missing, [`ShardError::BadManifest`]
    /// when it is malformed or inconsistent, [`ShardError::UnsupportedVersion`].
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ShardError::NotACache {
                    cache: dir.to_path_buf(),
                    reason: format!("{MANIFEST_FILE} is missing (an unfinished or crashed build?)"),
                })
            }
            Err(e) => return Err(ShardError::io(&path, e)),
        };
        // Read the version first so that a future major with other fields still gets the
        // "unsupported version" message rather than a parse error.
        #[derive(Deserialize)]
        struct VersionOnly {
            format: FormatVersion,
        }
        let bad = |reason: String| ShardError::BadManifest {
            cache: dir.to_path_buf(),
            reason,
        };
        let v: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if v.format.major != crate::FORMAT_MAJOR {
            return Err(ShardError::UnsupportedVersion {
                file: path,
                major: v.format.major,
                minor: v.format.minor,
                known: crate::FORMAT_MAJOR,
            });
        }
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let sum: u64 = m.shards.iter().map(|s| s.samples).sum();
        if sum != m.samples {
            return Err(bad(format!(
                "shards hold {sum} samples but the manifest says {}",
                m.samples
            )));
        }
        if m.samples + m.failures != m.inputs_seen {
            return Err(bad(format!(
                "samples {} + failures {} != inputs seen {}",
                m.samples, m.failures, m.inputs_seen
            )));
        }
        for s in &m.shards {
            if s.file.contains('/') || s.file.contains('\\') || s.file.starts_with('.') {
                return Err(bad(format!(
                    "shard file name {:?} is not a plain name",
                    s.file
                )));
            }
        }
        Ok(m)
    }

    /// Writes the manifest atomically into `dir`.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| ShardError::BadManifest {
            cache: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        crate::atomic_write(&dir.join(MANIFEST_FILE), &bytes)
    }
}
