//! A fold's checkpoint: the model and optimiser tensors (`checkpoint.safetensors`) and their
//! bookkeeping (`checkpoint.json`: last finished epoch, the tensors' blake3, every epoch's record),
//! written atomically after every epoch and read back to resume.

use crate::optim::Optimizer;
use crate::report::EpochRecord;
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
/// Copies the `model.*` tensors of a checkpoint file into `vs`; returns every tensor of the file
/// (the optimizer state is in it too).
///
/// Errors: unreadable file, a variable of the model missing from it.
pub fn load_model_vars(vs: &nn::VarStore, file: &Path) -> Result<Vec<(String, Tensor)>> {
    let named = Tensor::read_safetensors(file)?;
    let mut vars = vs.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vars.iter_mut() {
            let key = format!("model.{name}");
            let src = named
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, t)| t)
                .ok_or_else(|| TrainError::Checkpoint {
                    path: file.to_path_buf(),
                    reason: format!("no {key}"),
                })?;
            var.copy_(&src.to_device(var.device()));
        }
        Ok(())
    })?;
    Ok(named)
}

/// The weights of a fold's reported epoch (`fold-*/model.safetensors`, the `model.*` tensors):
/// written whenever the selection rule's choice moves to the epoch just evaluated, so that after
/// the fold it holds the epoch `result.json` reports. `checkpoint.safetensors` holds the last
/// epoch's, which differ under `selection = "validation"`.
pub const REPORTED_WEIGHTS: &str = "model.safetensors";

/// Which weights of a fold a consumer (predict, export, eval, `init_from`) got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldWeights {
    /// The file read.
    pub file: std::path::PathBuf,
    /// `true`: the reported epoch's ([`REPORTED_WEIGHTS`]); `false`: the last epoch's, from
    /// the checkpoint of a fold trained before the reported epoch's were kept.
    pub reported_epoch: bool,
}

/// The weights a fold's results were measured with: [`REPORTED_WEIGHTS`], or for folds trained
/// before it existed the checkpoint's (the last epoch's). `None` when the fold has neither.
pub fn fold_weights(fold_dir: &Path) -> Option<FoldWeights> {
    let reported = fold_dir.join(REPORTED_WEIGHTS);
    if reported.exists() {
        return Some(FoldWeights {
            file: reported,
            reported_epoch: true,
        });
    }
    let last = fold_dir.join("checkpoint.safetensors");
    last.exists().then_some(FoldWeights {
        file: last,
        reported_epoch: false,
    })
}

/// Loads a fold's weights ([`fold_weights`]) into every variable of `vs`.
///
/// Errors: [`TrainError::Checkpoint`] for a fold without weights, and those of
/// [`load_model_vars`].
pub fn load_fold_weights(vs: &nn::VarStore, fold_dir: &Path) -> Result<FoldWeights> {
    let w = fold_weights(fold_dir).ok_or_else(|| TrainError::Checkpoint {
        path: fold_dir.to_path_buf(),
        reason: format!("no {REPORTED_WEIGHTS} or checkpoint.safetensors: has the fold trained?"),
    })?;
    load_model_vars(vs, &w.file)?;
    Ok(w)
}

/// Writes the model's variables as [`REPORTED_WEIGHTS`] in `fold_dir`, atomically.
///
/// Errors: I/O, libtorch's writer.
pub(crate) fn save_reported_weights(vs: &nn::VarStore, fold_dir: &Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t.detach().to_device(Device::Cpu)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors_atomically(&named, &fold_dir.join(REPORTED_WEIGHTS))
}

/// Writes `named` to `file` through a temporary file, fsync, rename and a directory fsync.
fn write_tensors_atomically(named: &[(String, Tensor)], file: &Path) -> Result<()> {
    let tmp = file.with_extension("safetensors.tmp");
    Tensor::write_safetensors(named, &tmp)?;
    let f = std::fs::File::open(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| TrainError::io(file, e))?;
    // The rename is durable only once the directory is synced (as `shard::atomic_write`
    // does): otherwise a crash can leave checkpoint.json naming tensors that are not there.
    if let Some(dir) = file.parent() {
        shard::fsync_dir(dir)?;
    }
    Ok(())
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
