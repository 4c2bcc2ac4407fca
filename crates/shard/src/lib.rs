//! The shard cache: what `prep` writes once and every `train` run reads many times.
//!
//! This crate owns the on-disk format described in `FORMAT.md` beside this crate: shard files of
//! zstd-compressed records with a checksummed footer index, the `manifest.json` that makes a
//! directory a cache, the `samples.parquet` / `failures.parquet` tables, and the [`CacheKey`] that
//! decides whether a cache can be reused.
//!
//! It must not depend on `tch`, on image decoding or on face processing: a record is metadata plus
//! named u8 planes, nothing more. That keeps the format readable from any language and keeps this
//! crate fast to build and test.
//!
//! * Writing: [`CacheWriter`] streams [`EncodedRecord`]s (compressed in parallel by the caller) into
//!   shards, rolls shards by size, writes every file atomically and the manifest last.
//! * Reading: [`Cache::open`] checks the manifest and format version; [`Cache::get`],
//!   [`Cache::iter`], [`RecordReader`] (reusable buffers) and [`Cache::par_decode`] read records;
//!   [`Cache::verify`] re-hashes everything.
//! * Finding: [`list_caches`] and [`resolve_cache`] turn an experiment's `cache = "…"` into one
//!   directory, or an error that lists the candidates.
//! * Shared by `prep` and `train`, which both depend on this crate (it depends on none of ours):
//!   [`KeyedRng`] (the seeded streams of synthetic data, sample order and augmentation),
//!   [`hash_file`] (content identity of model files, lists, checkpoints) and [`line_at`].

mod catalog;
mod error;
mod format;
mod fsutil;
mod key;
pub mod lock;
mod manifest;
mod meta;
mod reader;
mod record;
pub mod rng;
pub mod tables;
pub mod votes;
mod writer;

pub use catalog::{list_caches, resolve_cache, CacheState, ListedCache, BUILD_FAILED_FILE};
pub use error::{Result, ShardError};
pub use format::{FormatVersion, FORMAT_MAJOR, FORMAT_MINOR, SCHEMA_SAMPLE_META};
pub use fsutil::{atomic_write, fsync_dir, line_at};
pub use key::{hash_file, CacheKey, SourceFile, SourceFingerprint, SourceFingerprinter};
pub use lock::{DirLock, LockHolder, LockMode, LOCK_FILE};
pub use manifest::{Counts, Manifest, ShardEntry, MANIFEST_FILE};
pub use meta::{flags, FrameInfo, MetaExt, PlaneInfo, SampleMeta, Split};
pub use reader::{Cache, CacheIter, Record, RecordReader, ShardReader, VerifyReport};
pub use record::EncodedRecord;
pub use rng::KeyedRng;
pub use tables::{FailureRow, LandmarkRow, SampleRow};
pub use writer::{CacheWriter, CacheWriterOptions, ShardWriter};

/// The directory name of a cache: `<name>-<first 16 hex digits of the key>`.
pub fn cache_dir_name(name: &str, key: &CacheKey) -> String {
    format!("{name}-{}", key.short())
}

/// The git revision of the working tree the tool runs in (`<hash>` or `<hash>-dirty`), recorded in
/// manifests and run directories for provenance; `None` outside a git checkout or without git.
pub fn git_revision() -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let hash = run(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

/// blake3 (hex) of `git diff HEAD` in the working tree the tool runs in: with [`git_revision`]'s
/// `-dirty` suffix it tells which uncommitted changes a run or cache was made with. `None` outside
/// a git checkout, without git, or when the tracked files are unchanged.
pub fn git_diff_blake3() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["diff", "HEAD", "--no-ext-diff", "--binary"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    if out.stdout.is_empty() {
        return None;
    }
    Some(blake3::hash(&out.stdout).to_hex().to_string())
}
