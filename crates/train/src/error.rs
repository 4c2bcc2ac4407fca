use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Errors of configuration, data loading, the network and the trainer.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// An experiment TOML that does not parse or check.
    #[error("{file}:{line}: {reason}")]
    ConfigFile {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// A configuration that cannot run (e.g. crops below the network's stride).
    #[error("configuration: {0}")]
    Config(String),
    /// The run was asked to stop ([`crate::trainer::request_stop`], Ctrl-C) during `epoch`
    /// (1-based) of `fold`; the last finished epoch's checkpoint is on disk.
    #[error("{run}: stopped during {fold} epoch {epoch}; continue with: train run --resume {run}")]
    Stopped {
        run: PathBuf,
        fold: String,
        epoch: usize,
    },
    /// A cache that is damaged or does not hold what the experiment needs.
    #[error(transparent)]
    Cache(#[from] shard::ShardError),
    /// A record whose planes do not match the cache's layout.
    #[error("{cache}: record {record}: {reason}")]
    Record {
        cache: PathBuf,
        record: u64,
        reason: String,
    },
    /// A table of the cache that cannot be read.
    #[error("{path}: {reason}")]
    Table { path: PathBuf, reason: String },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// A call into the project's libtorch shim (`shim/torch_ext.cpp`) threw.
    #[error("libtorch {op}: {reason}")]
    Libtorch { op: &'static str, reason: String },
    /// A figure that cannot be drawn (no font, a plotting error).
    #[error("figure {what}: {reason}")]
    Figure { what: String, reason: String },
    /// A weights file that does not fit the model.
    #[error("{file}: {reason}")]
    Weights { file: PathBuf, reason: String },
    /// A checkpoint or run directory that cannot be resumed.
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    /// Face models or a cache's recorded prep settings that cannot be loaded.
    #[error(transparent)]
    Face(#[from] face::FaceError),
    /// A cache whose preprocessing `train predict` cannot repeat for new inputs (settings it
    /// cannot reproduce, model files that differ from the ones the cache was built with).
    #[error("cache {cache}: cannot preprocess new inputs as its samples were: {reason}")]
    Unreproducible { cache: PathBuf, reason: String },
    /// Another process is running in this run directory (it holds the directory's lock).
    #[error("run directory {dir} is in use by {holder}; wait for it to finish, or choose another --run-name")]
    RunInUse { dir: PathBuf, holder: String },
    /// A value that cannot be written as JSON or TOML (a non-finite float, a map with non-string
    /// keys): an error, never an empty file that would compare equal to another one.
    #[error("{what}: cannot be serialised: {reason}")]
    Serialize { what: String, reason: String },
    /// The split leaves nothing to train or test on.
    #[error("fold {fold}: {reason}")]
    EmptySplit { fold: String, reason: String },
}

impl TrainError {
    pub(crate) fn serialize(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        TrainError::Serialize {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, cause: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}
