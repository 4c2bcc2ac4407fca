//! Dataset parsers, fold lists and the pipeline from raw files to a shard cache.
//!
//! Owns everything that knows how a dataset is laid out on disk: file-name conventions, label
//! files, the authors' fold lists, the prep configuration, and the build that turns a dataset into
//! a cache. It depends on `face` (geometry, and the frames → crops path it shares with
//! `train predict`) and `shard` (the cache) and must not depend on `tch`: data flows raw files →
//! face → prep → shard → train, and nothing depends on `prep`.

#![warn(missing_docs)]

pub mod build;
pub mod config;
pub mod datasets;
pub mod dedup;
pub mod draw;
mod error;
pub mod export;
pub mod fingerprint;
pub mod folds;
pub mod inventory;
pub mod pipeline;
pub mod qa;
pub mod splits;
pub mod subjects;
pub mod synth;

pub use build::{
    build, merge_parts, BuildOutcome, BuildRequest, DatasetKind, FailurePolicy, ModelFiles, Summary,
};
pub use config::{BoxMode, PrepConfig};
pub use error::{PrepError, Result};
pub use shard::votes::FerPlusMode;
