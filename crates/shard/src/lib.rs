//! The shard cache: what `prep` writes once and every `train` run reads many times.
//!
//! This crate owns the on-disk format described in `FORMAT.md` beside this crate: shard files of
//! zstd-compressed records with a checksummed footer index, the `manifest.json` that makes a
//! directory a cache, the parquet tables beside the shards, the [`CacheKey`] that decides whether
//! a cache can be reused, and the directory locks that keep two processes from writing one cache.
//!
//! It must not depend on `tch`, on image decoding or on face processing: a record is metadata plus
//! named u8 planes, nothing more, which keeps the format readable from any language (the Python
//! reader in `python/fer_shard` was written from FORMAT.md alone). Its one heavy dependency is
//! polars, for the parquet tables.
//!
//! * Writing: [`CacheWriter`] streams [`EncodedRecord`]s (compressed in parallel by the caller) into
//!   shards, rolls shards by size, writes every file atomically and the manifest last.
//! * Reading: [`Cache::open`] checks the manifest and format version; [`Cache::get`],
//!   [`Cache::iter`], [`RecordReader`] (reusable buffers) and [`Cache::par_decode`] read records;
//!   [`Cache::verify`] re-hashes everything; [`Cache::open_shared`] reads under the lock.
//! * Finding: [`list_caches`] and [`resolve_cache`] turn an experiment's `cache = "…"` into one
//!   directory, or an error that lists the candidates.
//! * Naming: [`planes`], the plane names records carry (`face`, `eyes/0`, …), written by `prep`
//!   and parsed by `train`.
//!
//! Two modules are here although they are not the byte format, because both binaries need them
//! and this is the one crate both depend on (it depends on none of ours):
//! * [`rng`] ([`KeyedRng`]): the counter-based generator of `prep synth`'s datasets and of
//!   `train`'s sample order, augmentation and initialisation;
//! * [`votes`]: FER+'s vote rules, which decide the label a cache stores (`prep`) and the target a
//!   run trains against (`train`), so that the two cannot disagree.

#![warn(missing_docs)]

mod cache;
mod catalog;
mod error;
mod format;
mod fsutil;
mod key;
pub mod lock;
mod manifest;
mod meta;
pub mod planes;
mod reader;
mod record;
pub mod rng;
pub mod tables;
pub mod votes;
mod writer;

pub use cache::{Cache, CacheIter, RecordReader, VerifyReport};
pub use catalog::{list_caches, resolve_cache, CacheState, ListedCache, BUILD_FAILED_FILE};
pub use error::{Result, ShardError};
pub use format::{FormatVersion, FORMAT_MAJOR, FORMAT_MINOR, SCHEMA_SAMPLE_META};
pub use fsutil::{atomic_write, atomic_write_shared, fsync_dir};
pub use key::{hash_file, short_key, CacheKey, SourceFile, SourceFingerprint, SourceFingerprinter};
pub use lock::{DirLock, LockHolder, LockMode, LOCK_FILE};
pub use manifest::{Counts, Manifest, ShardEntry, MANIFEST_FILE};
pub use meta::{flags, FrameInfo, MetaExt, PlaneInfo, SampleMeta, Split};
pub use reader::{Record, ShardReader};
pub use record::EncodedRecord;
pub use rng::{name_key, KeyedRng};
pub use tables::{FailureRow, LandmarkRow, SampleRow};
pub use writer::{CacheWriter, CacheWriterOptions, ShardWriter};

/// The directory name of a cache: `<name>-<first 16 hex digits of the key>`.
pub fn cache_dir_name(name: &str, key: &CacheKey) -> String {
    format!("{name}-{}", key.short())
}
