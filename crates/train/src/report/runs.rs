//! Runs read back from their directories for `train report`: every fold planned or started,
//! epochs run against planned (unfinished runs reported as such), results, histories, settings.
//!
//! A run is read from its directory alone: `config.toml`, `run.json`, `summary.json` (present
//! once the run has finished) and per fold `result.json` (a finished fold) or `checkpoint.json`
//! (its history so far).

use super::rows::FigureRow;
use crate::config::ExperimentConfig;
use crate::outputs::{pooled_confusion, Confusion, EpochRecord, FoldResult, RunSummary};
use crate::{Result, TrainError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One fold of a run as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FoldStatus {
    /// Fold name (`fold0`, `test`, …).
    pub fold: String,
    /// Epochs trained so far.
    pub epochs_run: usize,
    /// Epochs the configuration asks for.
    pub epochs_planned: usize,
    /// The fold's result when it has finished.
    pub result: Option<FoldResult>,
    /// Its epoch history (from the checkpoint).
    #[serde(skip)]
    pub history: Vec<EpochRecord>,
}

impl FoldStatus {
    /// Whether the fold has finished (it has a result).
    pub fn finished(&self) -> bool {
        self.result.is_some()
    }
}

/// One run read back for the report.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run directory.
    pub dir: PathBuf,
    /// Short label: `<experiment>/<run name>`.
    pub label: String,
    /// Its configuration (`config.toml`).
    pub config: ExperimentConfig,
    /// The configuration flattened to `section.key = value` (values as TOML prints them).
    pub settings: BTreeMap<String, String>,
    /// `run.json` (null fields when absent).
    pub run_json: serde_json::Value,
    /// Its summary, when the run has finished.
    pub summary: Option<RunSummary>,
    /// Every fold the run planned or started, in order.
    pub folds: Vec<FoldStatus>,
    /// Class names (from the summary or run.json).
    pub classes: Vec<String>,
}

impl RunRecord {
    /// Whether every planned fold finished and the summary is written.
    pub fn finished(&self) -> bool {
        self.summary.is_some() && self.folds.iter().all(FoldStatus::finished)
    }

    /// The full cache key it trained on (`?` when run.json predates the field).
    pub fn cache_key(&self) -> String {
        self.run_json["cache_key"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    /// `git_revision` from run.json (`unknown` when absent).
    pub fn git_revision(&self) -> String {
        self.run_json["git_revision"]
            .as_str()
            .unwrap_or("unknown")
            .to_string()
    }

    /// The device it ran on, as recorded.
    pub fn device(&self) -> String {
        self.run_json["device"].as_str().unwrap_or("?").to_string()
    }

    /// Accuracies of the finished folds by fold name.
    pub fn fold_accuracies(&self) -> BTreeMap<String, f64> {
        self.folds
            .iter()
            .filter_map(|f| f.result.as_ref().map(|r| (f.fold.clone(), r.accuracy)))
            .collect()
    }

    /// The finished folds' results.
    pub fn results(&self) -> Vec<&FoldResult> {
        self.folds
            .iter()
            .filter_map(|f| f.result.as_ref())
            .collect()
    }

    /// Per-class recall summed over the finished folds (NaN for a class without samples).
    pub fn recall(&self) -> Vec<f64> {
        self.pooled_confusion().recalls()
    }

    /// The finished folds' confusion matrices summed.
    pub fn pooled_confusion(&self) -> Confusion {
        pooled_confusion(self.classes.len(), &self.results())
    }

    /// The figures of its finished folds, as every report table shows them.
    pub fn figures(&self) -> FigureRow {
        FigureRow::of(&self.results(), self.classes.len())
    }

    /// Per-sample correctness of a finished fold from its `predictions.parquet`, keyed by
    /// sample id (by record number when ids are empty). `None` when the file is absent (runs
    /// from before it existed) or unreadable.
    pub fn fold_outcomes(&self, fold: &str) -> Option<BTreeMap<String, bool>> {
        let p = self
            .dir
            .join(format!("fold-{fold}"))
            .join("predictions.parquet");
        let rows = crate::outputs::predictions::read_predictions(&p).ok()?;
        Some(
            rows.into_iter()
                .map(|r| {
                    let key = if r.sample_id.is_empty() {
                        format!("#{}", r.record)
                    } else {
                        r.sample_id.clone()
                    };
                    (key, r.correct())
                })
                .collect(),
        )
    }

    /// "finished" or "unfinished: 1 of 3 folds, fold2 at epoch 4 of 12".
    pub fn status(&self) -> String {
        if self.finished() {
            return "finished".into();
        }
        let done = self.folds.iter().filter(|f| f.finished()).count();
        let mut s = format!("unfinished: {done} of {} folds", self.folds.len());
        if let Some(f) = self
            .folds
            .iter()
            .find(|f| !f.finished() && f.epochs_run > 0)
        {
            s.push_str(&format!(
                ", {} at epoch {} of {}",
                f.fold, f.epochs_run, f.epochs_planned
            ));
        }
        s
    }
}

fn read_json(p: &Path) -> Option<serde_json::Value> {
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Reads one run directory.
///
/// Errors: [`TrainError::RunFile`] for a directory without `config.toml` (not a run) or with
/// unreadable JSON; a run that has not finished is not an error (see [`RunRecord::status`]).
pub fn read_run(dir: &Path) -> Result<RunRecord> {
    let config =
        ExperimentConfig::load(&dir.join("config.toml")).map_err(|e| TrainError::RunFile {
            path: dir.to_path_buf(),
            reason: format!("not a run directory (config.toml: {e})"),
        })?;
    let mut settings = BTreeMap::new();
    if let Ok(t) = toml::from_str::<toml::Table>(&config.to_toml()?) {
        for (k, v) in crate::config::flatten_toml(&t) {
            settings.insert(k, v.to_string());
        }
    }
    // Where runs are written is not a setting of the experiment.
    settings.remove("runs_dir");
    let run_json = read_json(&dir.join("run.json")).unwrap_or(serde_json::Value::Null);
    let summary = match std::fs::read(dir.join("summary.json")) {
        Ok(b) => {
            Some(
                serde_json::from_slice::<RunSummary>(&b).map_err(|e| TrainError::RunFile {
                    path: dir.join("summary.json"),
                    reason: e.to_string(),
                })?,
            )
        }
        Err(_) => None,
    };
    let epochs_planned = run_json["epochs_planned"]
        .as_u64()
        .map(|e| e as usize)
        .unwrap_or(config.train.epochs);
    // Planned folds: run.json's list (newer runs), else the fold directories present.
    let mut names: Vec<String> = run_json["folds_planned"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| TrainError::io(dir, e))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("fold-").map(String::from)
        })
        .collect();
    present.sort_by_key(|a| natural_key(a));
    for p in present {
        if !names.contains(&p) {
            names.push(p);
        }
    }
    let folds = names
        .iter()
        .map(|name| {
            let fd = dir.join(format!("fold-{name}"));
            let result = read_json(&fd.join("result.json"))
                .and_then(|v| serde_json::from_value::<FoldResult>(v).ok());
            let history: Vec<EpochRecord> = read_json(&fd.join("checkpoint.json"))
                .and_then(|v| serde_json::from_value(v["history"].clone()).ok())
                .unwrap_or_default();
            FoldStatus {
                fold: name.clone(),
                epochs_run: history.iter().map(|r| r.epoch).max().unwrap_or(0),
                epochs_planned,
                result,
                history,
            }
        })
        .collect();
    let classes = summary
        .as_ref()
        .map(|s| s.classes.clone())
        .or_else(|| {
            run_json["classes"].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
        })
        .unwrap_or_default();
    let run_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(RunRecord {
        dir: dir.to_path_buf(),
        label: format!("{}/{run_name}", config.name),
        config,
        settings,
        run_json,
        summary,
        folds,
        classes,
    })
}

/// Sort key that orders `fold2` before `fold10`.
pub(crate) fn natural_key(s: &str) -> (String, u64) {
    let digits: String = s
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let stem = s[..s.len() - digits.len()].to_string();
    (stem, digits.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_fold_names() {
        let mut v = vec!["fold10", "fold2", "fold0", "test"];
        v.sort_by_key(|a| natural_key(a));
        assert_eq!(v, ["fold0", "fold2", "fold10", "test"]);
    }
}
