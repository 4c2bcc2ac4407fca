//! Reading a run directory's own records back: `run.json`, and fold names as the command line
//! gives them.

use crate::{Result, TrainError};
use std::path::{Path, PathBuf};

/// A run's `run.json` and the cache directory it recorded (what `train predict` and `train
/// export` need to repeat the run's preprocessing and layout).
///
/// Errors: [`TrainError::Io`] for a run.json that cannot be read (the operating system's
/// words), [`TrainError::RunFile`] for one that is not JSON or has no `cache`.
pub fn read_run_json(run: &Path) -> Result<(serde_json::Value, PathBuf)> {
    let path = run.join("run.json");
    let bytes = std::fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
    let run_json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| TrainError::RunFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let cache = run_json["cache"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| TrainError::RunFile {
            path,
            reason: "no `cache` entry".into(),
        })?;
    Ok((run_json, cache))
}

/// A fold as the command line names it (`3` or `fold3`) → its name (`fold3`).
pub fn fold_name(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_digit()) {
        format!("fold{arg}")
    } else {
        arg.to_string()
    }
}

/// The folds of a run directory that have weights (`fold-*/model.safetensors` or a checkpoint),
/// in name order.
///
/// Errors: [`TrainError::Io`] when the directory cannot be read.
pub fn trained_folds(run: &Path) -> Result<Vec<String>> {
    let mut folds: Vec<String> = std::fs::read_dir(run)
        .map_err(|e| TrainError::io(run, e))?
        .flatten()
        .filter(|e| super::fold_weights(&e.path()).is_some())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("fold-")
                .map(String::from)
        })
        .collect();
    folds.sort();
    Ok(folds)
}
