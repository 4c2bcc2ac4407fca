use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = PrepError> = std::result::Result<T, E>;

/// Errors of dataset parsing. Each names the file and, where it applies, the line.
#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// A line of a text file that does not parse.
    #[error("{file}:{line}: {reason}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// A fold list that contradicts itself (a sequence in two folds, with two labels, …).
    #[error("{file}: inconsistent fold list: {reason}")]
    Folds {
        /// The file.
        file: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A build whose counts fail its [`crate::build::FailurePolicy`] (or that cached nothing):
    /// the directory holds `failures.parquet` and `build-failed.json`, and no manifest.
    #[error(
        "{cache}: build failed, no cache written: {reason} (see `prep cache failures {cache}`)"
    )]
    BuildFailed {
        /// The cache.
        cache: PathBuf,
        /// What is wrong, in words.
        reason: String,
        /// The counts, for the summary table.
        summary: Box<crate::build::Summary>,
    },
    /// A table prep writes (duplicates.parquet) that cannot be built or written.
    #[error("{path}: {reason}")]
    Table {
        /// The file or directory the operation was on.
        path: std::path::PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A record `prep export` cannot write (no such plane, a file that cannot be written).
    #[error("{record}: {reason}")]
    Export {
        /// Global record number.
        record: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A value that cannot be written as TOML or JSON (never replaced by an empty file).
    #[error("{what}: cannot be serialised: {reason}")]
    Serialize {
        /// What was being written or drawn.
        what: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// Model loading or face processing that cannot go on (a missing model file).
    #[error(transparent)]
    Face(#[from] face::FaceError),
    /// Cache I/O or a damaged cache.
    #[error(transparent)]
    Cache(#[from] shard::ShardError),
}

impl PrepError {
    pub(crate) fn parse(file: &std::path::Path, line: usize, reason: impl Into<String>) -> Self {
        PrepError::Parse {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}
