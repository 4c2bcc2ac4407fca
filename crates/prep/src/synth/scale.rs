//! A cache of any size made from a small one (`prep synth-scale`): the template cache's records,
//! re-encoded in turn with new sample ids, so that the loader and the trainer can be measured on
//! an AffectNet-sized cache (≈ 290,000 records) without running the face pipeline that long. The
//! planes, labels, splits and landmarks are the template's; the sizes on disk are those of the
//! real thing because every record is its own zstd frame.

use crate::Result;
use rayon::prelude::*;
use shard::{Cache, CacheKey, CacheWriter, CacheWriterOptions, EncodedRecord, SourceFingerprint};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Records encoded per parallel batch (bounded memory: one batch of payloads at a time).
const BATCH: usize = 2048;

/// What [`scale_cache`] wrote.
#[derive(Debug, Clone)]
pub struct ScaledCache {
    /// The new cache directory.
    pub dir: PathBuf,
    /// Its records.
    pub records: u64,
    /// Bytes of its shards.
    pub bytes: u64,
}

/// Writes a cache of `records` records named `name` under `cache_dir`, cycling through the
/// records of `template`. The key covers the template's key and the count, so each size is a
/// cache of its own and a second call with the same arguments finds it (returned as is).
/// `on_record` is told each record written (progress).
///
/// Errors: the template cannot be read (or is empty); writing the new cache.
pub fn scale_cache(
    template: &Path,
    records: u64,
    cache_dir: &Path,
    name: &str,
    on_record: &(dyn Fn(u64) + Sync),
) -> Result<ScaledCache> {
    let t = Cache::open(template)?;
    if t.is_empty() {
        return Err(shard::ShardError::BadManifest {
            cache: template.to_path_buf(),
            reason: "the template cache holds no record".into(),
        }
        .into());
    }
    let config = serde_json::json!({
        "synth_scale": {"template_key": t.manifest().key, "records": records, "version": 1}
    });
    let key = CacheKey::compute(
        &config,
        &BTreeMap::new(),
        &SourceFingerprint {
            files: 0,
            bytes: 0,
            digest: t.manifest().key.clone(),
        },
    )?;
    let dir = cache_dir.join(shard::cache_dir_name(name, &key));
    if let Ok(c) = Cache::open(&dir) {
        if c.manifest().key == key.hex() && c.len() == records {
            let bytes = c.manifest().shards.iter().map(|s| s.bytes).sum();
            return Ok(ScaledCache {
                dir,
                records,
                bytes,
            });
        }
    }
    let mut w = CacheWriter::create(
        &dir,
        name,
        &key,
        t.manifest().class_names.clone(),
        CacheWriterOptions {
            tool: "prep synth-scale".into(),
            ..CacheWriterOptions::default()
        },
    )?;
    let n = t.len();
    let mut next = 0u64;
    while next < records {
        let end = (next + BATCH as u64).min(records);
        let encoded: Vec<std::result::Result<EncodedRecord, shard::ShardError>> = (next..end)
            .into_par_iter()
            .map(|g| {
                let r = t.get(g % n)?;
                let mut meta = r.meta.clone();
                meta.sample_id = format!("scaled/{g:07}/{}", r.meta.sample_id);
                let planes: Vec<&[u8]> = r.planes().map(|(_, p)| p).collect();
                EncodedRecord::encode(meta, &planes, 3)
            })
            .collect();
        for rec in encoded {
            w.push(&rec?)?;
        }
        on_record(end);
        next = end;
    }
    let manifest = w.finish(serde_json::json!({
        "synth_scale": {"template": template.display().to_string(), "template_records": n}
    }))?;
    Ok(ScaledCache {
        dir,
        records,
        bytes: manifest.shards.iter().map(|s| s.bytes).sum(),
    })
}
