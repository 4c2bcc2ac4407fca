//! A whole cache (FORMAT.md section 3.5): opened by its manifest, read record by record or in
//! parallel, verified against the manifest's hashes.

use crate::format::TRAILER_LEN;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::reader::{DecodeScratch, Record, ShardReader};
use crate::{Result, ShardError};
use rayon::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A complete cache opened by its manifest.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    manifest: Manifest,
    shards: Vec<ShardReader>,
    /// Cumulative record counts: shard s holds global records starts[s]..starts[s+1].
    starts: Vec<u64>,
    /// The shared lock held while this reader lives ([`Cache::open_shared`]).
    lock: Option<crate::DirLock>,
}

impl Cache {
    /// Opens the cache in `dir`: reads the manifest (refusing unknown format majors) and opens every
    /// shard, checking its header. Shard indexes are read lazily, so opening is cheap.
    pub fn open(dir: &Path) -> Result<Cache> {
        let manifest = Manifest::load(dir)?;
        let mut shards = Vec::with_capacity(manifest.shards.len());
        let mut starts = vec![0u64];
        for (n, entry) in manifest.shards.iter().enumerate() {
            let path = dir.join(&entry.file);
            let r = ShardReader::open(&path)?;
            if r.shard_number() as usize != n {
                return Err(ShardError::BadManifest {
                    cache: dir.to_path_buf(),
                    reason: format!(
                        "{} holds shard number {} but is listed at position {n}",
                        entry.file,
                        r.shard_number()
                    ),
                });
            }
            if r.len != entry.bytes {
                return Err(ShardError::BadManifest {
                    cache: dir.to_path_buf(),
                    reason: format!(
                        "{} is {} bytes, the manifest says {}",
                        entry.file, r.len, entry.bytes
                    ),
                });
            }
            starts.push(starts[n] + entry.samples);
            shards.push(r);
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
            manifest,
            shards,
            starts,
            lock: None,
        })
    }

    /// [`Cache::open`] under the directory's shared lock, held as long as the returned reader
    /// lives: `prep cache gc` does not remove a cache that is being read, and a build of the same
    /// directory that is under way is waited for (`on_wait` is told by whom) before opening.
    ///
    /// Errors: those of [`Cache::open`], and [`ShardError::Io`] from the lock.
    pub fn open_shared(
        dir: &Path,
        on_wait: &mut dyn FnMut(Option<crate::LockHolder>),
    ) -> Result<Cache> {
        if !dir.join(MANIFEST_FILE).exists() && !dir.join(crate::LOCK_FILE).exists() {
            // Not a cache (and no build under way): say so without creating a lock file there.
            return Cache::open(dir);
        }
        let lock = crate::DirLock::acquire(dir, crate::LockMode::Shared, on_wait)?;
        let mut cache = Cache::open(dir)?;
        cache.lock = Some(lock);
        Ok(cache)
    }

    /// Whether this reader holds the directory's shared lock ([`Cache::open_shared`]).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.manifest.samples
    }

    /// True when the cache holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maps a global record number to (shard position, record within the shard).
    pub fn locate(&self, g: u64) -> Result<(usize, u64)> {
        if g >= self.len() {
            return Err(ShardError::OutOfRange {
                cache: self.dir.clone(),
                index: g,
                len: self.len(),
            });
        }
        let s = self.starts.partition_point(|&start| start <= g) - 1;
        Ok((s, g - self.starts[s]))
    }

    /// Reads global record `g` (allocates; use [`Cache::reader`] in loops).
    pub fn get(&self, g: u64) -> Result<Record> {
        self.reader()?.read(g)
    }

    /// A reader with reusable decompression context and buffers.
    pub fn reader(&self) -> Result<RecordReader<'_>> {
        Ok(RecordReader {
            cache: self,
            scratch: DecodeScratch::new(&self.dir)?,
        })
    }

    /// Sequential iteration over all records.
    pub fn iter(&self) -> CacheIter<'_> {
        CacheIter {
            reader: self.reader(),
            next: 0,
        }
    }

    /// Decodes `indices` on the rayon pool and maps each record with `f`; results come back in the
    /// order of `indices` whatever the thread count.
    pub fn par_decode<T, F>(&self, indices: &[u64], f: F) -> Vec<Result<T>>
    where
        T: Send,
        F: Fn(u64, &Record) -> T + Sync,
    {
        indices
            .par_iter()
            .map_init(
                || (DecodeScratch::new(&self.dir), Record::empty()),
                |(scratch, rec), &g| {
                    let scratch = scratch.as_mut().map_err(|e| ShardError::Io {
                        path: self.dir.clone(),
                        cause: std::io::Error::other(e.to_string()),
                    })?;
                    let (s, local) = self.locate(g)?;
                    self.shards[s].read_into(local, scratch, rec)?;
                    Ok(f(g, rec))
                },
            )
            .collect()
    }

    /// Re-hashes every shard file against the manifest and decodes every record. Returns a report
    /// listing every problem found (it does not stop at the first). A cache with no sample is a
    /// problem too: a build that cached nothing is a failed build, never a usable cache.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut problems: Vec<Vec<ShardError>> = self
            .manifest
            .shards
            .par_iter()
            .zip(self.shards.par_iter())
            .map(|(entry, reader)| verify_shard(entry, reader))
            .collect();
        if self.is_empty() {
            problems.push(vec![ShardError::NotACache {
                cache: self.dir.clone(),
                reason: "it holds no sample (a build in which every input failed?)".into(),
            }]);
        }
        Ok(VerifyReport {
            shards: self.shards.len() as u64,
            records: self.len(),
            bytes: self.manifest.shards.iter().map(|s| s.bytes).sum(),
            problems: problems.into_iter().flatten().collect(),
        })
    }
}

fn verify_shard(entry: &crate::ShardEntry, reader: &ShardReader) -> Vec<ShardError> {
    let mut problems = Vec::new();
    let mut hasher = blake3::Hasher::new();
    match File::open(&reader.path) {
        Ok(f) => {
            if let Err(e) = hasher.update_reader(f) {
                problems.push(ShardError::io(&reader.path, e));
                return problems;
            }
        }
        Err(e) => {
            problems.push(ShardError::io(&reader.path, e));
            return problems;
        }
    }
    let found = hasher.finalize().to_hex().to_string();
    if found != entry.blake3 {
        problems.push(ShardError::ShardHash {
            shard: reader.path.clone(),
            expected: entry.blake3.clone(),
            found,
        });
    }
    let n = match reader.records() {
        Ok(n) => n,
        Err(e) => {
            problems.push(e);
            return problems;
        }
    };
    if n != entry.samples {
        problems.push(ShardError::BadFooter {
            shard: reader.path.clone(),
            offset: reader.len - TRAILER_LEN,
            reason: format!(
                "index holds {n} records, the manifest says {}",
                entry.samples
            ),
        });
    }
    let mut scratch = match DecodeScratch::new(&reader.path) {
        Ok(s) => s,
        Err(e) => {
            problems.push(e);
            return problems;
        }
    };
    let mut rec = Record::empty();
    for i in 0..n {
        if let Err(e) = reader.read_into(i, &mut scratch, &mut rec) {
            problems.push(e);
        }
    }
    problems
}

/// What [`Cache::verify`] found.
#[derive(Debug)]
pub struct VerifyReport {
    /// Shards checked.
    pub shards: u64,
    /// Records listed in the manifest.
    pub records: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Every problem found; empty for a sound cache.
    pub problems: Vec<ShardError>,
}

impl VerifyReport {
    /// True when nothing was wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads records with a reusable decompression context and frame buffer.
pub struct RecordReader<'a> {
    cache: &'a Cache,
    scratch: DecodeScratch,
}

impl RecordReader<'_> {
    /// Reads global record `g` into a new [`Record`].
    pub fn read(&mut self, g: u64) -> Result<Record> {
        let mut rec = Record::empty();
        self.read_into(g, &mut rec)?;
        Ok(rec)
    }

    /// Reads global record `g` into `rec`, reusing its buffers.
    pub fn read_into(&mut self, g: u64, rec: &mut Record) -> Result<()> {
        let (s, local) = self.cache.locate(g)?;
        self.cache.shards[s].read_into(local, &mut self.scratch, rec)
    }
}

/// Iterator over all records of a cache, in global order.
pub struct CacheIter<'a> {
    reader: Result<RecordReader<'a>>,
    next: u64,
}

impl Iterator for CacheIter<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.next == u64::MAX {
            return None;
        }
        let reader = match &mut self.reader {
            Ok(r) => r,
            Err(e) => {
                // Report the setup failure once, then stop.
                let err = ShardError::Io {
                    path: PathBuf::new(),
                    cause: std::io::Error::other(e.to_string()),
                };
                self.next = u64::MAX;
                return Some(Err(err));
            }
        };
        if self.next >= reader.cache.len() {
            return None;
        }
        let g = self.next;
        self.next += 1;
        Some(reader.read(g))
    }
}
