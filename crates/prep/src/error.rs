use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = PrepError> = std::result::Result<T, E>;

/// Errors of dataset parsing. Each names the file and, where it applies, the line.
#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// A line of a text file that does not parse.
    #[error("{file}:{line}: {reason}")]
    Parse {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// A fold list that contradicts itself (a sequence in two folds, with two labels, …).
    #[error("{file}: inconsistent fold list: {reason}")]
    Folds { file: PathBuf, reason: String },
    /// A build whose counts fail its [`crate::build::FailurePolicy`] (or that cached nothing):
    /// the directory holds `failures.parquet` and `build-failed.json`, and no manifest.
    #[error(
        "{cache}: build failed, no cache written: {reason} (see `prep cache failures {cache}`)"
    )]
    BuildFailed {
        cache: PathBuf,
        reason: String,
        /// The counts, for the summary table.
        summary: Box<crate::build::Summary>,
    },
    /// A table prep writes (duplicates.parquet) that cannot be built or written.
    #[error("{path}: {reason}")]
    Table {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A record `prep export` cannot write (no such plane, a file that cannot be written).
    #[error("{record}: {reason}")]
    Export { record: String, reason: String },
    /// A value that cannot be written as TOML or JSON (never replaced by an empty file).
    #[error("{what}: cannot be serialised: {reason}")]
    Serialize { what: String, reason: String },
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
