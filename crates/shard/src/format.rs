//! Byte layout of a shard file (FORMAT.md section 3).

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Format major understood and written by this crate.
pub const FORMAT_MAJOR: u16 = 1;
/// Format minor written by this crate.
pub const FORMAT_MINOR: u16 = 1;
/// Schema id of [`crate::SampleMeta`] records.
pub const SCHEMA_SAMPLE_META: u32 = 1;

pub(crate) const MAGIC: [u8; 8] = *b"\x89FSH\r\n\x1a\n";
pub(crate) const FOOTER_MAGIC: [u8; 8] = *b"FSHEND\r\n";
pub(crate) const HEADER_LEN: u64 = 32;
pub(crate) const TRAILER_LEN: u64 = 40;
pub(crate) const INDEX_ENTRY_LEN: u64 = 24;

/// A `major.minor` format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatVersion {
    /// Incompatible changes; readers refuse unknown majors.
    pub major: u16,
    /// Compatible additions.
    pub minor: u16,
}

impl FormatVersion {
    /// The version this crate writes.
    pub const CURRENT: FormatVersion = FormatVersion {
        major: FORMAT_MAJOR,
        minor: FORMAT_MINOR,
    };
}

impl std::fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub major: u16,
    pub minor: u16,
    pub schema: u32,
    pub shard_number: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&self.schema.to_le_bytes());
        b[16..20].copy_from_slice(&self.shard_number.to_le_bytes());
        let sum = xxh3_64(&b[0..24]);
        b[24..32].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes a header; the error string says which check failed.
    pub fn decode(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_LEN as usize {
            return Err(format!(
                "file is {} bytes, shorter than the 32-byte header",
                b.len()
            ));
        }
        if b[0..8] != MAGIC {
            return Err("magic bytes are not \\x89FSH\\r\\n\\x1a\\n".into());
        }
        let stored = u64_at(b, 24);
        let found = xxh3_64(&b[0..24]);
        if stored != found {
            return Err(format!(
                "header checksum {stored:016x} does not match the header bytes ({found:016x})"
            ));
        }
        Ok(Header {
            major: u16::from_le_bytes([b[8], b[9]]),
            minor: u16::from_le_bytes([b[10], b[11]]),
            schema: u32_at(b, 12),
            shard_number: u32_at(b, 16),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub frame_len: u32,
    pub payload_len: u32,
    pub checksum: u64,
}

impl IndexEntry {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.frame_len.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> IndexEntry {
        IndexEntry {
            offset: u64_at(b, 0),
            frame_len: u32_at(b, 8),
            payload_len: u32_at(b, 12),
            checksum: u64_at(b, 16),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub index_offset: u64,
    pub record_count: u64,
    pub index_checksum: u64,
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN as usize] {
        let mut b = [0u8; TRAILER_LEN as usize];
        b[0..8].copy_from_slice(&self.index_offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.record_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.index_checksum.to_le_bytes());
        let sum = xxh3_64(&b[0..24]);
        b[24..32].copy_from_slice(&sum.to_le_bytes());
        b[32..40].copy_from_slice(&FOOTER_MAGIC);
        b
    }

    /// Decodes and checks a trailer against the file length.
    pub fn decode(b: &[u8], file_len: u64) -> Result<Trailer, String> {
        if b.len() != TRAILER_LEN as usize {
            return Err("trailer is not 40 bytes".into());
        }
        if b[32..40] != FOOTER_MAGIC {
            return Err(
                "footer magic FSHEND\\r\\n missing (file truncated or not finished)".into(),
            );
        }
        let stored = u64_at(b, 24);
        let found = xxh3_64(&b[0..24]);
        if stored != found {
            return Err(format!(
                "trailer checksum {stored:016x} does not match the trailer bytes ({found:016x})"
            ));
        }
        let t = Trailer {
            index_offset: u64_at(b, 0),
            record_count: u64_at(b, 8),
            index_checksum: u64_at(b, 16),
        };
        let expected_len = t
            .record_count
            .checked_mul(INDEX_ENTRY_LEN)
            .and_then(|n| n.checked_add(t.index_offset))
            .and_then(|n| n.checked_add(TRAILER_LEN));
        if expected_len != Some(file_len) || t.index_offset < HEADER_LEN {
            return Err(format!(
                "index at {} with {} records does not fit a file of {} bytes",
                t.index_offset, t.record_count, file_len
            ));
        }
        Ok(t)
    }
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
