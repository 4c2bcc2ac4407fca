//! Dataset parsers, fold lists and (next) the pipeline from raw files to a shard cache.
//!
//! Owns everything that knows how a dataset is laid out on disk: file-name conventions, label
//! files, the authors' fold lists. It depends on `face` (geometry) and `shard` (the cache) and must
//! not depend on `tch`: data flows raw files → face → prep → shard → train.

pub mod datasets;
mod error;
pub mod folds;

pub use error::{PrepError, Result};
