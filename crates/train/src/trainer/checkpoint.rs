//! A fold's checkpoint: the model and optimiser tensors (`checkpoint.safetensors`) and their
//! bookkeeping (`checkpoint.json`: last finished epoch, the tensors' blake3, every epoch's record),
//! written atomically after every epoch and read back to resume.

use crate::optim::Optimizer;
use crate::outputs::weights::{load_model_vars, write_tensors_atomically};
use crate::outputs::EpochRecord;
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Device, Tensor};

/// A fold's checkpoint bookkeeping (`fold-<k>/checkpoint.json`), next to the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckpointInfo {
    /// Last completed epoch (0-based).
    pub(crate) epoch: usize,
    /// blake3 of the tensor file it belongs to.
    pub(crate) tensors_blake3: String,
    /// Every epoch's record so far.
    pub(crate) history: Vec<EpochRecord>,
}
/// A fold's checkpoint files in `fold_dir`.
pub(crate) struct FoldCheckpoint {
    /// `checkpoint.safetensors`: `model.*` and the optimiser state.
    tensors: std::path::PathBuf,
    /// `checkpoint.json`.
    info: std::path::PathBuf,
}

impl FoldCheckpoint {
    /// The checkpoint files of the fold directory `fold_dir`.
    pub(crate) fn in_dir(fold_dir: &Path) -> FoldCheckpoint {
        FoldCheckpoint {
            tensors: fold_dir.join("checkpoint.safetensors"),
            info: fold_dir.join("checkpoint.json"),
        }
    }

    /// Loads the checkpoint into `vs` and `opt` when there is one: `Some(info)` (the epoch to
    /// resume after and the history so far), `None` for a fold that has not finished an epoch.
    ///
    /// Errors: unreadable bookkeeping, tensors whose blake3 is not the one recorded (damaged or
    /// from another write), a model or optimiser tensor missing.
    pub(crate) fn resume(
        &self,
        vs: &nn::VarStore,
        opt: &mut Optimizer,
    ) -> Result<Option<CheckpointInfo>> {
        let Ok(bytes) = std::fs::read(&self.info) else {
            return Ok(None);
        };
        let info: CheckpointInfo =
            serde_json::from_slice(&bytes).map_err(|e| TrainError::Checkpoint {
                path: self.info.clone(),
                reason: e.to_string(),
            })?;
        let hash = shard::hash_file(&self.tensors)?;
        if hash != info.tensors_blake3 {
            return Err(TrainError::Checkpoint {
                path: self.tensors.clone(),
                reason: "tensor file does not match checkpoint.json (damaged?)".into(),
            });
        }
        let named = load_model_vars(vs, &self.tensors)?;
        opt.load_state(&named, &self.tensors)?;
        Ok(Some(info))
    }

    /// Writes the model and optimiser tensors, then the bookkeeping naming their blake3, each
    /// atomically (temporary file, fsync, rename, directory fsync).
    ///
    /// Errors: I/O, libtorch's writer, serialisation.
    pub(crate) fn save(
        &self,
        vs: &nn::VarStore,
        opt: &Optimizer,
        epoch: usize,
        history: &[EpochRecord],
    ) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t.detach().to_device(Device::Cpu)))
            .collect();
        named.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (n, t.to_device(Device::Cpu))),
        );
        named.sort_by(|a, b| a.0.cmp(&b.0));
        write_tensors_atomically(&named, &self.tensors)?;
        let ci = CheckpointInfo {
            epoch,
            tensors_blake3: shard::hash_file(&self.tensors)?,
            history: history.to_vec(),
        };
        shard::atomic_write(
            &self.info,
            &serde_json::to_vec_pretty(&ci)
                .map_err(|e| TrainError::serialize(self.info.display().to_string(), e))?,
        )?;
        Ok(())
    }
}
