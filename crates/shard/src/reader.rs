//! Reading and verifying caches (FORMAT.md section 3.5).

use crate::format::{Header, IndexEntry, Trailer, INDEX_ENTRY_LEN, TRAILER_LEN};
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::record::decode_payload;
use crate::{PlaneInfo, Result, SampleMeta, ShardError};
use rayon::prelude::*;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use xxhash_rust::xxh3::xxh3_64;

/// One shard file opened for random access. The index is read and checked on first use.
#[derive(Debug)]
pub struct ShardReader {
    path: PathBuf,
    file: File,
    len: u64,
    header: HeaderInfo,
    index: OnceLock<Vec<IndexEntry>>,
}

#[derive(Debug, Clone, Copy)]
struct HeaderInfo {
    shard_number: u32,
}

impl ShardReader {
    /// Opens `path` and checks its header: magic, checksum, format major and schema id.
    pub fn open(path: &Path) -> Result<ShardReader> {
        let file = File::open(path).map_err(|e| ShardError::io(path, e))?;
        let len = file.metadata().map_err(|e| ShardError::io(path, e))?.len();
        let mut head = [0u8; 32];
        let n = read_up_to(&file, &mut head, 0).map_err(|e| ShardError::io(path, e))?;
        let header = Header::decode(&head[..n]).map_err(|reason| ShardError::BadHeader {
            shard: path.to_path_buf(),
            reason,
        })?;
        if header.major != crate::FORMAT_MAJOR {
            return Err(ShardError::UnsupportedVersion {
                file: path.to_path_buf(),
                major: header.major,
                minor: header.minor,
                known: crate::FORMAT_MAJOR,
            });
        }
        if header.schema != crate::SCHEMA_SAMPLE_META {
            return Err(ShardError::UnknownSchema {
                shard: path.to_path_buf(),
                schema: header.schema,
                known: crate::SCHEMA_SAMPLE_META,
            });
        }
        Ok(ShardReader {
            path: path.to_path_buf(),
            file,
            len,
            header: HeaderInfo {
                shard_number: header.shard_number,
            },
            index: OnceLock::new(),
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shard number stored in the header.
    pub fn shard_number(&self) -> u32 {
        self.header.shard_number
    }

    fn footer_err(&self, offset: u64, reason: String) -> ShardError {
        ShardError::BadFooter {
            shard: self.path.clone(),
            offset,
            reason,
        }
    }

    fn index(&self) -> Result<&[IndexEntry]> {
        if let Some(ix) = self.index.get() {
            return Ok(ix);
        }
        if self.len < 32 + TRAILER_LEN {
            return Err(self.footer_err(
                self.len,
                format!(
                    "file of {} bytes is too short for header and trailer",
                    self.len
                ),
            ));
        }
        let at = self.len - TRAILER_LEN;
        let mut tb = [0u8; TRAILER_LEN as usize];
        self.file
            .read_exact_at(&mut tb, at)
            .map_err(|e| ShardError::io(&self.path, e))?;
        let t = Trailer::decode(&tb, self.len).map_err(|r| self.footer_err(at, r))?;
        let ix_len = (t.record_count * INDEX_ENTRY_LEN) as usize;
        let mut ib = vec![0u8; ix_len];
        self.file
            .read_exact_at(&mut ib, t.index_offset)
            .map_err(|e| ShardError::io(&self.path, e))?;
        let found = xxh3_64(&ib);
        if found != t.index_checksum {
            return Err(self.footer_err(
                t.index_offset,
                format!(
                    "index checksum {found:016x} does not match the trailer's {:016x}",
                    t.index_checksum
                ),
            ));
        }
        let entries: Vec<IndexEntry> = ib
            .chunks_exact(INDEX_ENTRY_LEN as usize)
            .map(IndexEntry::decode)
            .collect();
        let mut expect = 32u64;
        for (i, e) in entries.iter().enumerate() {
            if e.offset != expect {
                return Err(self.footer_err(
                    t.index_offset + i as u64 * INDEX_ENTRY_LEN,
                    format!(
                        "record {i} starts at {} but the previous record ends at {expect}",
                        e.offset
                    ),
                ));
            }
            expect += e.frame_len as u64;
        }
        if expect != t.index_offset {
            return Err(self.footer_err(
                t.index_offset,
                format!(
                    "records end at {expect} but the index starts at {}",
                    t.index_offset
                ),
            ));
        }
        Ok(self.index.get_or_init(|| entries))
    }

    /// Number of records (reads the index on first use).
    pub fn records(&self) -> Result<u64> {
        Ok(self.index()?.len() as u64)
    }

    /// Reads record `i`, checking the index checksum, the zstd frame checksum and the payload layout.
    pub fn read(&self, i: u64) -> Result<Record> {
        let mut scratch = DecodeScratch::new(&self.path)?;
        let mut rec = Record::empty();
        self.read_into(i, &mut scratch, &mut rec)?;
        Ok(rec)
    }

    fn read_into(&self, i: u64, s: &mut DecodeScratch, rec: &mut Record) -> Result<()> {
        let index = self.index()?;
        let e = *index.get(i as usize).ok_or_else(|| ShardError::BadRecord {
            shard: self.path.clone(),
            record: i,
            offset: 0,
            reason: format!("record {i} does not exist (shard holds {})", index.len()),
        })?;
        let bad = |reason: String| ShardError::BadRecord {
            shard: self.path.clone(),
            record: i,
            offset: e.offset,
            reason,
        };
        s.frame.resize(e.frame_len as usize, 0);
        self.file
            .read_exact_at(&mut s.frame, e.offset)
            .map_err(|err| bad(format!("read failed: {err}")))?;
        let found = xxh3_64(&s.frame);
        if found != e.checksum {
            return Err(ShardError::RecordChecksum {
                shard: self.path.clone(),
                record: i,
                offset: e.offset,
                expected: e.checksum,
                found,
            });
        }
        rec.payload.clear();
        let n = if e.payload_len as usize <= BULK_PAYLOAD_LIMIT {
            rec.payload.reserve(e.payload_len as usize);
            s.dctx
                .decompress_to_buffer(&s.frame[..], &mut rec.payload)
                .map_err(|err| bad(format!("zstd: {err}")))?
        } else {
            // A large claimed size is not allocated up front: the buffer grows only as the frame
            // really produces bytes, so a damaged index claiming 4 GiB costs nothing (found by
            // fuzzing, fuzz/regressions/shard_reader).
            let mut dec = zstd::stream::read::Decoder::with_buffer(&s.frame[..])
                .map_err(|err| bad(format!("zstd: {err}")))?;
            std::io::Read::read_to_end(
                &mut std::io::Read::take(&mut dec, e.payload_len as u64 + 1),
                &mut rec.payload,
            )
            .map_err(|err| bad(format!("zstd: {err}")))?
        };
        if n != e.payload_len as usize {
            return Err(bad(format!(
                "payload is {n} bytes, the index says {}",
                e.payload_len
            )));
        }
        let (meta, start) = decode_payload(&rec.payload).map_err(bad)?;
        rec.meta = meta;
        rec.planes_start = start;
        Ok(())
    }
}

/// Payloads up to this size are decompressed in one call into a buffer of the size the index
/// gives (MGLN records are ~47 KB); larger ones stream into a growing buffer.
const BULK_PAYLOAD_LIMIT: usize = 16 << 20;

fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

struct DecodeScratch {
    dctx: zstd::bulk::Decompressor<'static>,
    frame: Vec<u8>,
}

impl DecodeScratch {
    fn new(path: &Path) -> Result<Self> {
        Ok(DecodeScratch {
            dctx: zstd::bulk::Decompressor::new().map_err(|e| ShardError::io(path, e))?,
            frame: Vec::new(),
        })
    }
}

/// A decoded record: metadata and the planes, borrowed from one payload buffer.
#[derive(Debug, Clone)]
pub struct Record {
    /// The sample's metadata.
    pub meta: SampleMeta,
    payload: Vec<u8>,
    planes_start: usize,
}

impl Record {
    fn empty() -> Record {
        Record {
            meta: SampleMeta {
                sample_id: String::new(),
                dataset: String::new(),
                subject: String::new(),
                sequence: None,
                source: Vec::new(),
                frame_indices: Vec::new(),
                label: 0,
                split: crate::Split::Train,
                landmarks: Vec::new(),
                detector: String::new(),
                flags: 0,
                planes: Vec::new(),
                ext: crate::MetaExt::default(),
            },
            payload: Vec::new(),
            planes_start: 0,
        }
    }

    /// The planes in stored order with their shapes.
    pub fn planes(&self) -> impl Iterator<Item = (&PlaneInfo, &[u8])> {
        let mut at = self.planes_start;
        self.meta.planes.iter().map(move |info| {
            let p = &self.payload[at..at + info.len()];
            at += info.len();
            (info, p)
        })
    }

    /// The plane called `name`, if present.
    pub fn plane(&self, name: &str) -> Option<&[u8]> {
        self.planes().find(|(i, _)| i.name == name).map(|(_, p)| p)
    }
}

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
