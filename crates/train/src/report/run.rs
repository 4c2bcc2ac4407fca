//! A run's outputs: `metrics.jsonl`, per fold `result.json` and `confusion.csv` (figures:
//! [`super::figures`]), `summary.md` and `summary.json`.

use super::metrics::{name_key, Metrics};
use crate::config::{ExperimentConfig, Selection};
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

/// A confusion matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    /// counts[true][predicted].
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// Zeros for `n` classes.
    pub fn new(n: usize) -> Confusion {
        Confusion {
            counts: vec![vec![0; n]; n],
        }
    }

    /// Counts one prediction (out-of-range classes are ignored).
    pub fn add(&mut self, truth: usize, pred: usize) {
        if let Some(c) = self.counts.get_mut(truth).and_then(|r| r.get_mut(pred)) {
            *c += 1;
        }
    }

    /// Fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().flatten().sum();
        let diag: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        if total == 0 {
            0.0
        } else {
            diag as f64 / total as f64
        }
    }

    /// Recall per class (NaN for a class without samples).
    pub fn recalls(&self) -> Vec<f64> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let n: u64 = r.iter().sum();
                if n == 0 {
                    f64::NAN
                } else {
                    r[i] as f64 / n as f64
                }
            })
            .collect()
    }

    /// Writes `true\predicted` CSV with class names.
    pub fn write_csv(&self, path: &Path, classes: &[String]) -> Result<()> {
        let mut s = String::from("true\\predicted");
        for c in classes {
            s.push(',');
            s.push_str(c);
        }
        s.push('\n');
        for (i, row) in self.counts.iter().enumerate() {
            s.push_str(classes.get(i).map(String::as_str).unwrap_or("?"));
            for v in row {
                s.push_str(&format!(",{v}"));
            }
            s.push('\n');
        }
        shard::atomic_write(path, s.as_bytes())?;
        Ok(())
    }
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
        .metrics(&[name_key(fold)])
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
            serde_json::from_str(l).map_err(|e| TrainError::Checkpoint {
                path: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Machine-readable summary of a run (`summary.json`), read by `train report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// Experiment name.
    pub experiment: String,
    /// Per-fold results.
    pub folds: Vec<FoldResult>,
    /// Mean test accuracy over folds.
    pub mean: f64,
    /// Sample standard deviation over folds (0 for one fold).
    pub std: f64,
    /// Mean of the per-fold oracle accuracies (optimistic; labelled).
    pub oracle_mean: f64,
    /// Per-class recall from the summed confusion matrices.
    pub recall: Vec<f64>,
    /// Class names.
    pub classes: Vec<String>,
    /// Mean and sample std over folds of the balanced accuracy (mean class accuracy).
    #[serde(default)]
    pub balanced_accuracy: (f64, f64),
    /// Mean and sample std over folds of the macro-F1.
    #[serde(default)]
    pub macro_f1: (f64, f64),
    /// Every figure of the folds' test samples pooled (the summed confusion matrices), with
    /// bootstrap intervals over those samples.
    #[serde(default)]
    pub pooled: Metrics,
}

/// The per-fold confusion matrices of `folds` summed.
pub fn pooled_confusion(classes: usize, folds: &[&FoldResult]) -> Confusion {
    let mut total = Confusion::new(classes);
    for f in folds {
        for (i, row) in f.confusion.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if let Some(c) = total.counts.get_mut(i).and_then(|r| r.get_mut(j)) {
                    *c += v;
                }
            }
        }
    }
    total
}

/// The seed of a run's pooled bootstrap (a fixed stream: the interval is a property of the
/// predictions, not of a training seed).
pub const POOLED_BOOTSTRAP_KEY: u64 = 0x0090_01ed;

/// Mean and std over folds of a figure computed from each fold's confusion matrix.
pub fn fold_mean_std(folds: &[&FoldResult], figure: impl Fn(&Confusion) -> f64) -> (f64, f64) {
    let v: Vec<f64> = folds
        .iter()
        .filter(|f| !f.confusion.is_empty())
        .map(|f| {
            figure(&Confusion {
                counts: f.confusion.clone(),
            })
        })
        .collect();
    mean_std(&v)
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    (m, s)
}

/// Writes `summary.md` and `summary.json`.
pub fn write_summary(
    run: &Path,
    cfg: &ExperimentConfig,
    classes: &[String],
    folds: &[FoldResult],
) -> Result<RunSummary> {
    let accs: Vec<f64> = folds.iter().map(|f| f.accuracy).collect();
    let (mean, std) = mean_std(&accs);
    let oracle_mean = mean_std(&folds.iter().map(|f| f.oracle_accuracy).collect::<Vec<_>>()).0;
    let refs: Vec<&FoldResult> = folds.iter().collect();
    let total = pooled_confusion(classes.len(), &refs);
    let recall = total.recalls();
    let pooled = total.metrics(&[POOLED_BOOTSTRAP_KEY]);
    let balanced_accuracy = fold_mean_std(&refs, Confusion::balanced_accuracy);
    let macro_f1 = fold_mean_std(&refs, Confusion::macro_f1);
    let mut md = format!(
        "# {}\n\nProtocol {:?}, {} fold(s), selection: {}. Branches {:?}, deform {:?}, fusion weight {}, \
         mixup α {}, width {}, pretrained: {}.\n\n| fold | accuracy | balanced accuracy | macro-F1 | accuracy 95 % CI | epoch | oracle (best test epoch, optimistic) |\n|---|---|---|---|---|---|---|\n",
        cfg.name,
        cfg.protocol,
        folds.len(),
        folds.first().map(|f| f.selection.as_str()).unwrap_or("-"),
        cfg.model.branches,
        cfg.model.deform,
        cfg.model.fusion_weight,
        cfg.train.mixup_alpha,
        cfg.model.width,
        cfg.model
            .pretrained
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "no (random init)".into()),
    );
    for f in folds {
        let m = f.metrics.clone().unwrap_or_default();
        md.push_str(&format!(
            "| {} | {:.2} % | {:.2} % | {:.2} % | {:.1}–{:.1} % | {} | {:.2} % |\n",
            f.fold,
            100.0 * f.accuracy,
            100.0 * m.balanced_accuracy,
            100.0 * m.macro_f1,
            100.0 * m.accuracy_ci.0,
            100.0 * m.accuracy_ci.1,
            f.epoch,
            100.0 * f.oracle_accuracy
        ));
    }
    md.push_str(&format!(
        "\n**Accuracy: {:.2} ± {:.2} %** (mean ± sample std over folds). Balanced accuracy \
         (mean class accuracy) {:.2} ± {:.2} %, macro-F1 {:.2} ± {:.2} %. Oracle mean {:.2} % — \
         selected on the test data, shown only for comparison with the authors' code.\n\n\
         All {} test samples pooled: accuracy {:.2} % (95 % bootstrap CI {:.2}–{:.2} %), \
         balanced accuracy {:.2} %, macro-F1 {:.2} % (CI {:.2}–{:.2} %).\n\n\
         | class | precision | recall | F1 | support |\n|---|---|---|---|---|\n",
        100.0 * mean,
        100.0 * std,
        100.0 * balanced_accuracy.0,
        100.0 * balanced_accuracy.1,
        100.0 * macro_f1.0,
        100.0 * macro_f1.1,
        100.0 * oracle_mean,
        pooled.samples,
        100.0 * pooled.accuracy,
        100.0 * pooled.accuracy_ci.0,
        100.0 * pooled.accuracy_ci.1,
        100.0 * pooled.balanced_accuracy,
        100.0 * pooled.macro_f1,
        100.0 * pooled.macro_f1_ci.0,
        100.0 * pooled.macro_f1_ci.1,
    ));
    let pc = &pooled.classes;
    for (i, c) in classes.iter().enumerate() {
        let pct = |v: Option<&Option<f64>>| match v {
            Some(Some(x)) => format!("{:.1} %", 100.0 * x),
            _ => "–".into(),
        };
        md.push_str(&format!(
            "| {c} | {} | {} | {} | {} |\n",
            pct(pc.precision.get(i)),
            pct(pc.recall.get(i)),
            pct(pc.f1.get(i)),
            pc.support.get(i).copied().unwrap_or(0)
        ));
    }
    md.push_str(
        "\nFigures per fold (PNG and SVG): `fold-*/confusion.png` (rows true class, columns \
         predicted, counts and row percentages at the reported epoch), `fold-*/curves.png` (losses, \
         accuracies and learning rate per epoch, the reported epoch dashed). TensorBoard: \
         `tensorboard --logdir <this directory>`.\n",
    );
    shard::atomic_write(&run.join("summary.md"), md.as_bytes())?;
    let s = RunSummary {
        experiment: cfg.name.clone(),
        folds: folds.to_vec(),
        mean,
        std,
        oracle_mean,
        recall,
        classes: classes.to_vec(),
        balanced_accuracy,
        macro_f1,
        pooled,
    };
    shard::atomic_write(
        &run.join("summary.json"),
        &serde_json::to_vec_pretty(&s).map_err(|e| TrainError::serialize("summary.json", e))?,
    )?;
    Ok(s)
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
