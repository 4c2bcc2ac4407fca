//! Writing shards and caches (FORMAT.md sections 2 and 3).

use crate::format::{Header, IndexEntry, Trailer, HEADER_LEN};
use crate::fsutil::{fsync_dir, tmp_path};
use crate::manifest::{Counts, Manifest, ShardEntry, MANIFEST_FILE};
use crate::tables::{FailureRow, SampleRow};
use crate::{CacheKey, EncodedRecord, FormatVersion, Result, ShardError};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// Writes one shard file: header, records, index, trailer, under a `.tmp` name until
/// [`ShardWriter::finish`] syncs and renames it.
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    hasher: blake3::Hasher,
    index: Vec<IndexEntry>,
    offset: u64,
}

impl ShardWriter {
    /// Creates `path.tmp` and writes the header for shard number `number`.
    pub fn create(path: &Path, number: u32) -> Result<ShardWriter> {
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
        let mut w = ShardWriter {
            path: path.to_path_buf(),
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            index: Vec::new(),
            offset: 0,
        };
        let header = Header {
            major: crate::FORMAT_MAJOR,
            minor: crate::FORMAT_MINOR,
            schema: crate::SCHEMA_SAMPLE_META,
            shard_number: number,
        };
        w.put(&header.encode())?;
        debug_assert_eq!(w.offset, HEADER_LEN);
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| ShardError::io(&self.tmp, e))?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends a record; returns its number within the shard.
    pub fn append(&mut self, rec: &EncodedRecord) -> Result<u32> {
        let entry = IndexEntry {
            offset: self.offset,
            frame_len: rec.frame.len() as u32,
            payload_len: rec.payload_len,
            checksum: rec.checksum,
        };
        self.put(&rec.frame)?;
        self.index.push(entry);
        Ok((self.index.len() - 1) as u32)
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.offset
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.index.len() as u64
    }

    /// Writes index and trailer, fsyncs, renames into place and fsyncs the directory.
    /// Returns (file length, blake3 hex).
    pub fn finish(mut self) -> Result<(u64, String)> {
        let mut idx = Vec::with_capacity(self.index.len() * 24);
        for e in &self.index {
            e.encode_into(&mut idx);
        }
        let trailer = Trailer {
            index_offset: self.offset,
            record_count: self.index.len() as u64,
            index_checksum: xxh3_64(&idx),
        };
        self.put(&idx)?;
        self.put(&trailer.encode())?;
        self.out.flush().map_err(|e| ShardError::io(&self.tmp, e))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| ShardError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| ShardError::io(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| ShardError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            fsync_dir(dir)?;
        }
        Ok((self.offset, self.hasher.finalize().to_hex().to_string()))
    }
}

/// Options of a [`CacheWriter`].
#[derive(Debug, Clone)]
pub struct CacheWriterOptions {
    /// A shard is closed once it reaches this many bytes (default 128 MiB).
    pub target_shard_bytes: u64,
    /// Writer name and version recorded in the manifest (default `shard <version>`).
    pub tool: String,
    /// Git revision recorded in the manifest (default none).
    pub git_revision: Option<String>,
}

impl Default for CacheWriterOptions {
    fn default() -> Self {
        CacheWriterOptions {
            target_shard_bytes: 128 << 20,
            tool: format!("shard {}", env!("CARGO_PKG_VERSION")),
            git_revision: None,
        }
    }
}

/// Streams records into a cache directory and finishes it with the tables and the manifest.
///
/// The directory is not a cache until [`CacheWriter::finish`] has written `manifest.json`; creating
/// a writer removes a previous manifest first, so a reader never sees a half-rewritten cache.
pub struct CacheWriter {
    dir: PathBuf,
    name: String,
    key: CacheKey,
    class_names: Vec<String>,
    opts: CacheWriterOptions,
    current: Option<ShardWriter>,
    shards: Vec<ShardEntry>,
    /// `samples.parquet` and `landmarks.parquet`, streamed to disk as records arrive (a build's
    /// memory stays flat in its sample count).
    rows: crate::tables::TableStream<SampleRow>,
    landmarks: crate::tables::TableStream<crate::tables::LandmarkRow>,
    samples: u64,
    failures: Vec<FailureRow>,
    counts: Counts,
}

impl CacheWriter {
    /// Prepares `dir` (created if missing) for a new cache: removes a previous manifest, stale
    /// `*.tmp` files and shards from an unfinished build.
    pub fn create(
        dir: &Path,
        name: &str,
        key: &CacheKey,
        class_names: Vec<String>,
        opts: CacheWriterOptions,
    ) -> Result<CacheWriter> {
        fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
        let manifest = dir.join(MANIFEST_FILE);
        if manifest.exists() {
            fs::remove_file(&manifest).map_err(|e| ShardError::io(&manifest, e))?;
            fsync_dir(dir)?;
        }
        remove_stale(dir)?;
        let rows = crate::tables::stream_samples(&dir.join("samples.parquet"))?;
        let landmarks = crate::tables::stream_landmarks(&dir.join("landmarks.parquet"))?;
        Ok(CacheWriter {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            key: key.clone(),
            class_names,
            opts,
            current: None,
            shards: Vec::new(),
            rows,
            landmarks,
            samples: 0,
            failures: Vec::new(),
            counts: Counts::default(),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a record, opening a new shard when needed; returns its global record number.
    ///
    /// Errors: [`ShardError::Encode`] for a label outside `class_names` or more landmarks than
    /// `landmarks.parquet` holds; I/O and table errors.
    pub fn push(&mut self, rec: &EncodedRecord) -> Result<u64> {
        let meta = &rec.meta;
        let class_name = self
            .class_names
            .get(meta.label as usize)
            .cloned()
            .ok_or_else(|| ShardError::Encode {
                sample_id: meta.sample_id.clone(),
                reason: format!(
                    "label {} outside the {} class names",
                    meta.label,
                    self.class_names.len()
                ),
            })?;
        for (slot, points) in meta.landmarks.iter().enumerate() {
            if points.len() > crate::tables::LANDMARK_COLUMNS {
                return Err(ShardError::Encode {
                    sample_id: meta.sample_id.clone(),
                    reason: format!(
                        "{} landmarks in slot {slot}; landmarks.parquet holds {}",
                        points.len(),
                        crate::tables::LANDMARK_COLUMNS
                    ),
                });
            }
        }
        if self.current.is_none() {
            let number = self.shards.len() as u32;
            let path = self.dir.join(shard_file_name(number));
            self.current = Some(ShardWriter::create(&path, number)?);
        }
        let shard_number = self.shards.len() as u32;
        let Some(w) = self.current.as_mut() else {
            unreachable!("a shard was opened above")
        };
        let index = w.append(rec)?;
        let full = w.bytes() >= self.opts.target_shard_bytes;
        let global = self.samples;
        for (slot, points) in meta.landmarks.iter().enumerate() {
            let frame = meta.ext.frames.get(slot);
            self.landmarks.push(crate::tables::LandmarkRow {
                global_index: global,
                sample_id: meta.sample_id.clone(),
                slot: slot as u16,
                frame_index: meta.frame_indices.get(slot).copied(),
                source: meta.source.get(slot).cloned().unwrap_or_default(),
                points: points.clone(),
                face_box: frame.and_then(|f| f.face_box),
                // 1.0 records (merged from older parts) have only the sample's detector and flags.
                detector: frame.map_or_else(|| meta.detector.clone(), |f| f.detector.clone()),
                flags: frame.map_or(meta.flags, |f| f.flags),
            })?;
        }
        self.samples += 1;
        self.rows.push(SampleRow {
            global_index: global,
            sample_id: meta.sample_id.clone(),
            dataset: meta.dataset.clone(),
            subject: meta.subject.clone(),
            label: meta.label,
            class_name: class_name.clone(),
            split: meta.split.kind().to_string(),
            fold: meta.split.fold().map(i32::from).unwrap_or(-1),
            shard: shard_number,
            index,
            flags: meta.flags,
        })?;
        *self
            .counts
            .by_split
            .entry(meta.split.to_string())
            .or_default() += 1;
        *self.counts.by_class.entry(class_name).or_default() += 1;
        *self
            .counts
            .by_subject
            .entry(meta.subject.clone())
            .or_default() += 1;
        if full {
            self.close_shard()?;
        }
        Ok(global)
    }

    /// Records an input that did not become a sample.
    pub fn push_failure(&mut self, failure: FailureRow) {
        self.failures.push(failure);
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some(w) = self.current.take() {
            let records = w.records();
            let file = shard_file_name(self.shards.len() as u32);
            let (bytes, blake3) = w.finish()?;
            self.shards.push(ShardEntry {
                file,
                samples: records,
                bytes,
                blake3,
            });
        }
        Ok(())
    }

    /// Closes the last shard, writes `samples.parquet`, `landmarks.parquet`, `failures.parquet` and finally
    /// `manifest.json`. `extra` is stored in the manifest as writer-specific notes.
    pub fn finish(mut self, extra: serde_json::Value) -> Result<Manifest> {
        self.close_shard()?;
        self.rows.finish()?;
        self.landmarks.finish()?;
        crate::tables::write_failures(&self.dir.join("failures.parquet"), &self.failures)?;
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let samples = self.samples;
        let failures = self.failures.len() as u64;
        let manifest = Manifest {
            format: FormatVersion::CURRENT,
            schema_id: crate::SCHEMA_SAMPLE_META,
            name: self.name,
            key: self.key.hex().to_string(),
            key_ingredients: self.key.ingredients().clone(),
            tool: self.opts.tool,
            git_revision: self.opts.git_revision,
            created_unix,
            shards: self.shards,
            samples,
            counts: self.counts,
            failures,
            inputs_seen: samples + failures,
            class_names: self.class_names,
            extra,
        };
        manifest.store(&self.dir)?;
        Ok(manifest)
    }
}

impl CacheWriter {
    /// Ends a build that failed (too many failed inputs, no sample at all) without making the
    /// directory a cache: no manifest is written, so no reader, reference or `verify` takes it
    /// for one. Written instead: `failures.parquet` (what went wrong, input by input) and
    /// [`crate::BUILD_FAILED_FILE`] holding `reason` and `extra` (the build's counts), which
    /// `prep cache ls` shows. Shards already written are removed. The next build into the same
    /// directory starts clean.
    ///
    /// Errors: [`ShardError::Io`] and [`ShardError::Table`] on writing.
    pub fn abandon(mut self, reason: &str, extra: serde_json::Value) -> Result<()> {
        if let Some(w) = self.current.take() {
            drop(w);
        }
        for e in &self.shards {
            let p = self.dir.join(&e.file);
            if p.exists() {
                fs::remove_file(&p).map_err(|err| ShardError::io(&p, err))?;
            }
        }
        remove_stale(&self.dir)?;
        crate::tables::write_failures(&self.dir.join("failures.parquet"), &self.failures)?;
        let record = serde_json::json!({
            "reason": reason,
            "name": self.name,
            "key": self.key.hex(),
            "samples": self.samples,
            "failures": self.failures.len(),
            "extra": extra,
        });
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| ShardError::BadManifest {
            cache: self.dir.clone(),
            reason: e.to_string(),
        })?;
        crate::atomic_write(&self.dir.join(crate::BUILD_FAILED_FILE), &bytes)
    }
}

/// `shard-NNNNN.fsh`.
pub(crate) fn shard_file_name(number: u32) -> String {
    format!("shard-{number:05}.fsh")
}

/// Removes what an interrupted writer may have left: `*.tmp` files always, and shard files and
/// tables when there is no manifest (they belong to no cache).
fn remove_stale(dir: &Path) -> Result<()> {
    let has_manifest = dir.join(MANIFEST_FILE).exists();
    let entries = fs::read_dir(dir).map_err(|e| ShardError::io(dir, e))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| ShardError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = name.ends_with(".tmp")
            || (!has_manifest
                && ((name.starts_with("shard-") && name.ends_with(".fsh"))
                    || name == "samples.parquet"
                    || name == "landmarks.parquet"
                    || name == "failures.parquet"
                    || name == crate::BUILD_FAILED_FILE));
        if stale {
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| ShardError::io(&p, e))?;
            removed = true;
        }
    }
    if removed {
        fsync_dir(dir)?;
    }
    Ok(())
}
