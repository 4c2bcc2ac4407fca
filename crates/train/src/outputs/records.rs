//! The records a run keeps while it runs: one line of `metrics.jsonl` per fold and epoch
//! ([`EpochRecord`]), and each fold's `result.json` ([`FoldResult`]).

use super::confusion::{Confusion, Metrics};
use crate::config::Selection;
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One epoch of one fold (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Fold name.
    pub fold: String,
    /// Epoch, counted from 1 as the console and summary count them.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean total loss.
    pub loss: f64,
    /// Mean GFM loss (mixup).
    pub loss_global: f64,
    /// Mean PBM loss.
    pub loss_local: f64,
    /// Training accuracy of the fused prediction (against the dominant mixup label).
    pub train_accuracy: f64,
    /// Test accuracy, when evaluated.
    pub test_accuracy: Option<f64>,
    /// Validation accuracy (selection only), when evaluated.
    pub validation_accuracy: Option<f64>,
    /// Training throughput.
    pub samples_per_s: f64,
    /// Wall time of the epoch's training.
    pub seconds: f64,
    /// Damaged records skipped (only with `skip_bad_records`).
    pub skipped_records: usize,
    /// Test confusion counts [true][predicted], when evaluated.
    pub confusion: Option<Vec<Vec<u64>>>,
}

impl EpochRecord {
    /// The record without timing fields (what must be identical between a resumed and an
    /// uninterrupted CPU run).
    pub fn without_timing(&self) -> EpochRecord {
        EpochRecord {
            samples_per_s: 0.0,
            seconds: 0.0,
            ..self.clone()
        }
    }
}

/// The outcome of one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// Fold name.
    pub fold: String,
    /// Test accuracy at the reported epoch.
    pub accuracy: f64,
    /// The reported epoch, counted from 1 (last, or best on validation).
    pub epoch: usize,
    /// How it was chosen.
    pub selection: String,
    /// Best test accuracy over all epochs: an optimistic "oracle" figure, shown labelled as such.
    pub oracle_accuracy: f64,
    /// Test confusion counts at the reported epoch.
    pub confusion: Vec<Vec<u64>>,
    /// Accuracy, balanced accuracy, macro-F1, per-class scores and bootstrap intervals at the
    /// reported epoch (from `confusion`; absent in results written before they existed).
    #[serde(default)]
    pub metrics: Option<Metrics>,
}

/// The reported result of a fold from its history.
pub fn fold_result(fold: &str, history: &[EpochRecord], selection: Selection) -> FoldResult {
    let evaluated: Vec<&EpochRecord> = history
        .iter()
        .filter(|r| r.test_accuracy.is_some())
        .collect();
    let chosen = match selection {
        Selection::Final => evaluated.last().copied(),
        Selection::Validation => evaluated
            .iter()
            .copied()
            .filter(|r| r.validation_accuracy.is_some())
            // Latest of the best on ties: later epochs have seen more training.
            .max_by(|a, b| {
                a.validation_accuracy
                    .partial_cmp(&b.validation_accuracy)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.epoch.cmp(&b.epoch))
            })
            .or(evaluated.last().copied()),
    };
    let oracle = evaluated
        .iter()
        .filter_map(|r| r.test_accuracy)
        .fold(0.0, f64::max);
    let confusion = chosen.and_then(|r| r.confusion.clone()).unwrap_or_default();
    let metrics = (!confusion.is_empty()).then(|| {
        Confusion {
            counts: confusion.clone(),
        }
        .metrics(&[shard::name_key(fold)])
    });
    FoldResult {
        fold: fold.to_string(),
        accuracy: chosen.and_then(|r| r.test_accuracy).unwrap_or(0.0),
        epoch: chosen.map(|r| r.epoch).unwrap_or(0),
        selection: match selection {
            Selection::Final => "final epoch".into(),
            Selection::Validation => "best validation epoch".into(),
        },
        oracle_accuracy: oracle,
        confusion,
        metrics,
    }
}

/// Rewrites `metrics.jsonl` from every fold's checkpoint history (so that a resumed run's file is
/// the same as an uninterrupted one's, whatever point the interruption hit).
pub fn write_metrics(run: &Path) -> Result<()> {
    let mut lines = String::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run)
        .map_err(|e| TrainError::io(run, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("checkpoint.json").exists())
        .collect();
    dirs.sort();
    for d in dirs {
        let p = d.join("checkpoint.json");
        let bytes = std::fs::read(&p).map_err(|e| TrainError::io(&p, e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| TrainError::Checkpoint {
                path: p.clone(),
                reason: e.to_string(),
            })?;
        if let Some(h) = v.get("history").and_then(|h| h.as_array()) {
            for r in h {
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() {
                    o.remove("confusion");
                }
                lines.push_str(&r.to_string());
                lines.push('\n');
            }
        }
    }
    shard::atomic_write(&run.join("metrics.jsonl"), lines.as_bytes())?;
    Ok(())
}

/// Reads `metrics.jsonl`.
pub fn read_metrics(run: &Path) -> Result<Vec<EpochRecord>> {
    let p = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&p).map_err(|e| TrainError::io(&p, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| TrainError::RunFile {
                path: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// UTC time stamp `YYYYMMDD-HHMMSS` for run names.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86400) as i64;
    let (h, mi, s) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{s:02}")
}
