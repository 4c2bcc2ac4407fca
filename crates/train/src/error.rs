use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Errors of configuration, data loading, the network and the trainer.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// An experiment TOML that does not parse or check.
    #[error("{file}:{line}: {reason}")]
    ConfigFile {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// A `--set KEY=VALUE` override that names no key of the experiment or gives it a value of
    /// the wrong type or range.
    #[error("--set {set}: {reason}")]
    Override {
        /// The override as given.
        set: String,
        /// What is wrong, with the nearest keys when the key does not exist.
        reason: String,
    },
    /// A configuration that cannot run (e.g. crops below the network's stride).
    #[error("configuration: {0}")]
    Config(String),
    /// The run was asked to stop (its [`crate::trainer::StopToken`]: Ctrl-C, SIGTERM) during `epoch`
    /// (1-based) of `fold`; the last finished epoch's checkpoint is on disk.
    #[error("{run}: stopped during {fold} epoch {epoch}; continue with: train run --resume {run}")]
    Stopped {
        /// The run directory.
        run: PathBuf,
        /// The fold.
        fold: String,
        /// The epoch (1-based).
        epoch: usize,
    },
    /// A cache that is damaged or does not hold what the experiment needs.
    #[error(transparent)]
    Cache(#[from] shard::ShardError),
    /// A record whose planes do not match the cache's layout.
    #[error("{cache}: record {record}: {reason}")]
    Record {
        /// The cache.
        cache: PathBuf,
        /// Global record number.
        record: u64,
        /// What is wrong, in words.
        reason: String,
    },
    /// A table of the cache that cannot be read.
    #[error("{path}: {reason}")]
    Table {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// libtorch reported an error (a tensor file's I/O failure becomes [`TrainError::Io`]).
    #[error(transparent)]
    Torch(tch::TchError),
    /// A call into the project's libtorch shim (`shim/torch_ext.cpp`) threw.
    #[error("libtorch {op}: {reason}")]
    Libtorch {
        /// The operation.
        op: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
    /// A figure that cannot be drawn (no font, a plotting error).
    #[error("figure {what}: {reason}")]
    Figure {
        /// What was being written or drawn.
        what: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A weights file that does not fit the model.
    #[error("{file}: {reason}")]
    Weights {
        /// The file.
        file: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A file a run writes for later readers (config.toml, run.json, summary.json, result.json,
    /// metrics.jsonl, predictions.parquet, sweep.json, a fold's weights) that is missing where it
    /// must be, or does not read back as what it should hold.
    #[error("{path}: {reason}")]
    RunFile {
        /// The file, or the run or fold directory that lacks it.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A checkpoint (checkpoint.json, checkpoint.safetensors, optimiser state) that cannot be
    /// resumed.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// Face models or a cache's recorded prep settings that cannot be loaded.
    #[error(transparent)]
    Face(#[from] face::FaceError),
    /// A cache whose preprocessing `train predict` cannot repeat for new inputs (settings it
    /// cannot reproduce, model files that differ from the ones the cache was built with).
    #[error("cache {cache}: cannot preprocess new inputs as its samples were: {reason}")]
    Unreproducible {
        /// The cache.
        cache: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// Another process is running in this run directory (it holds the directory's lock).
    #[error("run directory {dir} is in use by {holder}; wait for it to finish, or choose another --run-name")]
    RunInUse {
        /// The directory.
        dir: PathBuf,
        /// Who holds it.
        holder: String,
    },
    /// A value that cannot be written as JSON or TOML (a non-finite float, a map with non-string
    /// keys): an error, never an empty file that would compare equal to another one.
    #[error("{what}: cannot be serialised: {reason}")]
    Serialize {
        /// What was being written or drawn.
        what: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A cache whose recorded prep settings cannot be read back as a [`face::SampleRecipe`].
    #[error("cache {cache}: prep settings: {field}: {reason}")]
    Provenance {
        /// The cache.
        cache: String,
        /// The path of the field in the manifest (`extra.config.cascade`).
        field: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A model to start from or to evaluate (`model.init_from`, `train eval`) that cannot be
    /// read or does not fit.
    #[error("{source_model}: {reason}")]
    SourceModel {
        /// The run directory (`#fold`) or export directory as given.
        source_model: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A model whose preprocessing differs from the run's or cache's it is used with: its
    /// weights would see inputs unlike those they were trained on.
    #[error("{source_model}: its preprocessing differs from {target}'s: {}", mismatches.join("; "))]
    PreprocessingMismatch {
        /// The model's run directory (`#fold`) or export directory.
        source_model: String,
        /// What it is used with (this run, a cache).
        target: String,
        /// Each difference: what, its value for the model, its value here.
        mismatches: Vec<String>,
    },
    /// The split leaves nothing to train or test on.
    #[error("fold {fold}: {reason}")]
    EmptySplit {
        /// The fold.
        fold: String,
        /// What is wrong, in words.
        reason: String,
    },
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

impl From<tch::TchError> for TrainError {
    /// A tensor file that cannot be read or written is an I/O error on its path, printed with the
    /// operating system's words ("No space left on device (os error 28)"), not tch's debug dump
    /// of the error value.
    fn from(e: tch::TchError) -> Self {
        match e {
            tch::TchError::SafeTensorError {
                path,
                err: safetensors::SafeTensorError::IoError(cause),
            } => TrainError::Io {
                path: PathBuf::from(path),
                cause,
            },
            other => TrainError::Torch(other),
        }
    }
}
