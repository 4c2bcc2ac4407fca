//! The `train` binary's commands, one file each.

pub mod bench;
pub mod bench_video;
pub mod eval;
pub mod export;
pub mod measure;
pub mod predict;
pub mod predict_video;
pub mod report;
pub mod run;
pub mod sweep;
