//! A fold's weights on disk: the reported epoch's (`model.safetensors`), read back by predict,
//! export, `model.init_from` and `train eval`, and the tensor-file writing the checkpoint
//! shares.

use crate::{Result, TrainError};
use std::path::Path;
use tch::{nn, Device, Tensor};

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
                .ok_or_else(|| TrainError::Weights {
                    file: file.to_path_buf(),
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
/// Errors: [`TrainError::RunFile`] for a fold without weights, and those of
/// [`load_model_vars`].
pub fn load_fold_weights(vs: &nn::VarStore, fold_dir: &Path) -> Result<FoldWeights> {
    let w = fold_weights(fold_dir).ok_or_else(|| TrainError::RunFile {
        path: fold_dir.to_path_buf(),
        reason: format!("no {REPORTED_WEIGHTS} or checkpoint.safetensors: has the fold trained?"),
    })?;
    load_model_vars(vs, &w.file)?;
    Ok(w)
}

/// Writes the model's variables as [`REPORTED_WEIGHTS`] in `fold_dir`, atomically.
///
/// Errors: I/O, libtorch's writer.
pub fn save_reported_weights(vs: &nn::VarStore, fold_dir: &Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t.detach().to_device(Device::Cpu)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors_atomically(&named, &fold_dir.join(REPORTED_WEIGHTS))
}

/// Writes `named` to `file` through a temporary file, fsync, rename and a directory fsync.
pub fn write_tensors_atomically(named: &[(String, Tensor)], file: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a full disk during training ended with tch's debug dump of the error
    /// (`IoError(Os { code: 28, kind: StorageFull …`) instead of the path and the operating
    /// system's words. The temporary file is planted as a link to /dev/full, whose writes fail
    /// with ENOSPC.
    #[test]
    fn a_full_disk_is_reported_with_the_path_and_the_os_words() {
        if !Path::new("/dev/full").exists() {
            eprintln!(
                "skipped: a_full_disk_is_reported_with_the_path_and_the_os_words: no /dev/full"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoint.safetensors");
        let tmp = dir.path().join("checkpoint.safetensors.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let named = vec![(
            "model.w".to_string(),
            Tensor::ones([64], tch::kind::FLOAT_CPU),
        )];
        let err = write_tensors_atomically(&named, &file).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TrainError::Io { .. }), "{err:?}");
        assert!(msg.contains("No space left on device"), "{msg}");
        assert!(msg.contains("checkpoint.safetensors.tmp"), "{msg}");
        assert!(!msg.contains("IoError(Os"), "{msg}");
        assert!(
            !file.exists(),
            "nothing renamed into place after a failed write"
        );
    }
}
