//! Reading one shard file (FORMAT.md section 3.5): header, checksummed index, records. A whole
//! cache is read through [`crate::Cache`] (`cache.rs`).

use crate::format::{Header, IndexEntry, Trailer, INDEX_ENTRY_LEN, TRAILER_LEN};
use crate::record::decode_payload;
use crate::{PlaneInfo, Result, SampleMeta, ShardError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use xxhash_rust::xxh3::xxh3_64;

/// One shard file opened for random access. The index is read and checked on first use.
#[derive(Debug)]
pub struct ShardReader {
    pub(crate) path: PathBuf,
    file: File,
    pub(crate) len: u64,
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

    pub(crate) fn read_into(&self, i: u64, s: &mut DecodeScratch, rec: &mut Record) -> Result<()> {
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

pub(crate) fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub(crate) struct DecodeScratch {
    dctx: zstd::bulk::Decompressor<'static>,
    frame: Vec<u8>,
}

impl DecodeScratch {
    pub(crate) fn new(path: &Path) -> Result<Self> {
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
    pub(crate) fn empty() -> Record {
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
