use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = ShardError> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a cache.
///
/// Every variant that concerns stored bytes names the file and, where it applies, the record
/// number within the shard and the byte offset, so that a damaged cache can be located by hand.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// The 32-byte shard header is missing or wrong.
    #[error("{shard}: bad shard header: {reason}")]
    BadHeader {
        /// The shard file.
        shard: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The file was written by a format major this reader does not understand.
    #[error("{file}: format version {major}.{minor} is not supported (this reader knows major {known}); rebuild the cache with this version of prep")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Format major version found.
        major: u16,
        /// Format minor version found.
        minor: u16,
        /// What this reader knows.
        known: u16,
    },
    /// The header names a metadata schema this reader does not know.
    #[error("{shard}: unknown metadata schema id {schema} (this reader knows {known})")]
    UnknownSchema {
        /// The shard file.
        shard: PathBuf,
        /// Schema id found.
        schema: u32,
        /// What this reader knows.
        known: u32,
    },
    /// The trailer or index is missing, inconsistent or fails its checksum.
    #[error("{shard}: bad footer at byte {offset}: {reason}")]
    BadFooter {
        /// The shard file.
        shard: PathBuf,
        /// Byte offset in the file.
        offset: u64,
        /// What is wrong, in words.
        reason: String,
    },
    /// A record's compressed bytes do not match the checksum stored in the index.
    #[error("{shard} record {record} at byte {offset}: checksum mismatch (index says {expected:016x}, bytes hash to {found:016x})")]
    RecordChecksum {
        /// The shard file.
        shard: PathBuf,
        /// Global record number.
        record: u64,
        /// Byte offset in the file.
        offset: u64,
        /// What was expected.
        expected: u64,
        /// What was found.
        found: u64,
    },
    /// A record's frame or payload cannot be decoded.
    #[error("{shard} record {record} at byte {offset}: {reason}")]
    BadRecord {
        /// The shard file.
        shard: PathBuf,
        /// Global record number.
        record: u64,
        /// Byte offset in the file.
        offset: u64,
        /// What is wrong, in words.
        reason: String,
    },
    /// A global record number past the end of the cache.
    #[error("{cache}: record {index} is out of range (the cache holds {len})")]
    OutOfRange {
        /// The cache.
        cache: PathBuf,
        /// The record asked for.
        index: u64,
        /// Length (records or bytes).
        len: u64,
    },
    /// The directory is not a complete cache.
    #[error("{cache}: not a cache: {reason}")]
    NotACache {
        /// The cache.
        cache: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// `manifest.json` exists but is malformed or disagrees with the shards.
    #[error("{cache}: bad manifest: {reason}")]
    BadManifest {
        /// The cache.
        cache: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A shard file's blake3 differs from the manifest.
    #[error("{shard}: blake3 {found} does not match the manifest's {expected}")]
    ShardHash {
        /// The shard file.
        shard: PathBuf,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A record could not be encoded (metadata serialisation or plane sizes).
    #[error("record {sample_id}: {reason}")]
    Encode {
        /// The sample.
        sample_id: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A cache reference (`cache = "…"` of an experiment) that names no cache, or several.
    #[error("cache {reference:?} under {cache_dir}: {reason}")]
    CacheRef {
        /// The reference as written (`cache = "…"`).
        reference: String,
        /// Where caches were looked for.
        cache_dir: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A parquet table could not be written or read.
    #[error("{path}: table error: {reason}")]
    Table {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
}

impl ShardError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        ShardError::Io {
            path: path.into(),
            cause,
        }
    }
}
