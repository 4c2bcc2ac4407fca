//! Record payloads and their compressed frames (FORMAT.md section 3.2).

use crate::{Result, SampleMeta, ShardError};
use xxhash_rust::xxh3::xxh3_64;

/// A record compressed and checksummed, ready to be appended to a shard.
///
/// Encoding is the expensive part of writing (zstd), so callers build these in parallel worker
/// threads and hand them to one [`crate::CacheWriter`], which only copies bytes.
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    /// The metadata, kept for the manifest counts and the samples table.
    pub meta: SampleMeta,
    pub(crate) frame: Vec<u8>,
    pub(crate) payload_len: u32,
    pub(crate) checksum: u64,
}

impl EncodedRecord {
    /// Serialises `meta` and `planes` into a payload and compresses it as one zstd frame with the
    /// content checksum on.
    ///
    /// `planes` must match `meta.planes` in number and size. `level` is the zstd level (1–22;
    /// prep uses 3). Errors: [`ShardError::Encode`] naming the sample.
    pub fn encode(meta: SampleMeta, planes: &[&[u8]], level: i32) -> Result<EncodedRecord> {
        let fail = |reason: String| ShardError::Encode {
            sample_id: meta.sample_id.clone(),
            reason,
        };
        if planes.len() != meta.planes.len() {
            return Err(fail(format!(
                "{} planes given, metadata lists {}",
                planes.len(),
                meta.planes.len()
            )));
        }
        for (info, data) in meta.planes.iter().zip(planes) {
            if info.len() != data.len() {
                return Err(fail(format!(
                    "plane {} is {} bytes, {}×{} needs {}",
                    info.name,
                    data.len(),
                    info.height,
                    info.width,
                    info.len()
                )));
            }
        }
        if meta.flags & !crate::flags::KNOWN != 0 {
            return Err(fail(format!("unknown flag bits {:#x}", meta.flags)));
        }
        let mut meta_bytes = postcard::to_stdvec(&meta).map_err(|e| fail(e.to_string()))?;
        // Format 1.1: the appended fields follow in the same region (FORMAT.md section 5.1).
        meta_bytes.extend(postcard::to_stdvec(&meta.ext).map_err(|e| fail(e.to_string()))?);
        let total = 4 + meta_bytes.len() + meta.planes_len();
        let payload_len = u32::try_from(total)
            .map_err(|_| fail(format!("payload of {total} bytes exceeds 4 GiB")))?;
        let mut payload = Vec::with_capacity(total);
        payload.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        payload.extend_from_slice(&meta_bytes);
        for p in planes {
            payload.extend_from_slice(p);
        }
        let frame = compress_frame(&payload, level).map_err(|e| fail(e.to_string()))?;
        if u32::try_from(frame.len()).is_err() {
            return Err(fail("compressed frame exceeds 4 GiB".into()));
        }
        let checksum = xxh3_64(&frame);
        Ok(EncodedRecord {
            meta,
            frame,
            payload_len,
            checksum,
        })
    }

    /// Length of the compressed frame in bytes.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }
}

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses with a per-thread reusable context (creating one per record costs more than a small
/// record's compression).
fn compress_frame(payload: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let mut c = zstd::bulk::Compressor::new(level)?;
            c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
            c.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(true))?;
            *slot = Some((level, c));
        }
        match slot.as_mut() {
            Some((_, c)) => c.compress(payload),
            None => Err(std::io::Error::other("compressor missing")),
        }
    })
}

/// Splits a decompressed payload into metadata and the offset where the planes start, checking
/// that the plane sizes add up exactly.
pub(crate) fn decode_payload(payload: &[u8]) -> std::result::Result<(SampleMeta, usize), String> {
    if payload.len() < 4 {
        return Err(format!(
            "payload of {} bytes has no length prefix",
            payload.len()
        ));
    }
    let meta_len = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
    let meta_end = 4usize
        .checked_add(meta_len)
        .filter(|&e| e <= payload.len())
        .ok_or_else(|| format!("metadata length {meta_len} exceeds the payload"))?;
    let (mut meta, rest): (SampleMeta, &[u8]) = postcard::take_from_bytes(&payload[4..meta_end])
        .map_err(|e| format!("metadata does not decode: {e}"))?;
    if !rest.is_empty() {
        // Fields appended in 1.1; bytes after them are later minors' and are ignored.
        let (ext, _later): (crate::MetaExt, &[u8]) = postcard::take_from_bytes(rest)
            .map_err(|e| format!("appended metadata (format 1.1) does not decode: {e}"))?;
        meta.ext = ext;
    }
    let planes = meta.planes_len();
    if meta_end + planes != payload.len() {
        return Err(format!(
            "planes need {planes} bytes but {} follow the metadata",
            payload.len() - meta_end
        ));
    }
    Ok((meta, meta_end))
}
