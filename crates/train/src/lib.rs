//! MGLN training on the shard cache: loader into tensors, the network in tch, the trainer and reports.
//!
//! This is the only crate that depends on `tch` (libtorch). It depends on `shard` (it reads caches)
//! and `face` (`train predict` cuts new inputs with [`face::SampleCropper`] under the recipe the
//! cache recorded), never on `prep`: data flows raw files → face → prep → shard → train.
//!
//! * [`loader`] — records into batches of tensors (streamed, seeded order and augmentation).
//! * [`model`] — MGLN (SSM, GFM, PBM), the plain CNN, their initialisation and weight loading;
//!   [`optim`] — Adam, AdamW and SGD, the schedules, clipping.
//! * [`config`] — the experiment schema, presets, overrides and checks; [`sweep`] — ablation
//!   grids over one cache.
//! * [`trainer`] — fold plans, the epoch loop, checkpoints, resumption, the run directory; it
//!   writes through [`outputs`] (metrics.jsonl, results, [`outputs::Confusion`], predictions,
//!   figures, TensorBoard, the reported weights), the layer below it.
//! * [`report`] — above the trainer: reads finished run folders back (`train report`'s
//!   comparisons, the ablation table, paired tests, Markdown/CSV/HTML). Only the CLI calls it.
//! * [`predict`] and [`recipe`] — new inputs through the cache's own preprocessing.
//! * [`trained`], [`transfer`], [`classes`] — a trained run or export as a starting point
//!   (`model.init_from`) or scored on another cache (`train eval`), classes matched by name.
//! * [`bench`], [`torch_ext`] — step throughput, and what tch does not bind (shim).

#![warn(missing_docs)]

pub mod bench;
pub mod classes;
pub mod config;
mod error;
pub mod eval;
pub mod export;
pub mod loader;
pub mod model;
pub mod optim;
pub mod outputs;
pub mod predict;
pub mod recipe;
pub mod report;
pub mod sweep;
pub mod torch_ext;
pub mod trained;
pub mod trainer;
pub mod transfer;

pub use config::ExperimentConfig;
pub use error::{Result, TrainError};

/// What libtorch reports about the compute devices of this host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceReport {
    /// `tch` crate version.
    pub tch: &'static str,
    /// Whether CUDA is usable.
    pub cuda: bool,
    /// Number of CUDA devices.
    pub cuda_devices: i64,
    /// Whether cuDNN is usable.
    pub cudnn: bool,
    /// Threads libtorch uses for CPU work.
    pub cpu_threads: i32,
    /// The CPU kernel set libtorch dispatches to (`DEFAULT`, `AVX2`, `AVX512`; set with
    /// `ATEN_CPU_CAPABILITY`).
    pub cpu_capability: String,
}

/// The tch crate version this build binds (libtorch 2.11.0), as run records and `train env`
/// name it.
pub const TCH_VERSION: &str = "0.24.0";

/// Queries libtorch for the devices it can use.
pub fn device_report() -> DeviceReport {
    DeviceReport {
        tch: TCH_VERSION,
        cuda: tch::Cuda::is_available(),
        cuda_devices: tch::Cuda::device_count(),
        cudnn: tch::Cuda::cudnn_is_available(),
        cpu_threads: tch::get_num_threads(),
        cpu_capability: torch_ext::cpu_capability().unwrap_or_else(|e| format!("unknown ({e})")),
    }
}
