//! `train report`'s comparison of several runs: every setting that differs, per-fold
//! accuracies, each run paired with the first over the folds they share, and the rows every
//! rendering shows ([`RunRow`], [`FoldRow`]).

use super::rows::FigureRow;
use super::runs::{natural_key, read_run, RunRecord};
use super::stats::{sign_flip_p, McNemar};
use crate::outputs::{mean_std, Confusion};
use crate::{Result, TrainError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// A run against the baseline (the first run) over the folds both finished.
#[derive(Debug, Clone, Serialize)]
pub struct PairedComparison {
    /// The run compared (its label).
    pub run: String,
    /// The baseline's label.
    pub baseline: String,
    /// (fold, baseline accuracy, run accuracy) for every shared finished fold.
    pub folds: Vec<(String, f64, f64)>,
    /// Mean of run − baseline over the shared folds.
    pub mean_difference: f64,
    /// Sample std of the differences.
    pub std_difference: f64,
    /// Paired t statistic (mean / (std / √n); NaN for fewer than 2 folds or zero spread).
    pub t: f64,
    /// Two-sided p value of the exact sign-flip permutation test of the mean difference (all
    /// 2ⁿ sign patterns up to 20 folds, else 100,000 seeded draws); 1 for no folds.
    pub p_permutation: f64,
    /// McNemar's exact test over the test samples of the shared finished folds, matched by
    /// sample id (`fold-*/predictions.parquet`); `None` when a run lacks the predictions.
    pub mcnemar: Option<McNemar>,
    /// Folds where the run is better / worse / equal.
    pub better: usize,
    /// See `better`.
    pub worse: usize,
    /// See `better`.
    pub equal: usize,
}

/// Compares `run` with `baseline` over the folds both finished.
pub fn paired(baseline: &RunRecord, run: &RunRecord) -> PairedComparison {
    let a = baseline.fold_accuracies();
    let b = run.fold_accuracies();
    let mut folds: Vec<(String, f64, f64)> = a
        .iter()
        .filter_map(|(f, x)| b.get(f).map(|y| (f.clone(), *x, *y)))
        .collect();
    folds.sort_by_key(|x| natural_key(&x.0));
    let d: Vec<f64> = folds.iter().map(|(_, x, y)| y - x).collect();
    let (m, s) = mean_std(&d);
    let t = if d.len() >= 2 && s > 0.0 {
        m / (s / (d.len() as f64).sqrt())
    } else {
        f64::NAN
    };
    let mcnemar = mcnemar_over(baseline, run, folds.iter().map(|f| f.0.as_str()));
    PairedComparison {
        mcnemar,
        run: run.label.clone(),
        baseline: baseline.label.clone(),
        mean_difference: m,
        std_difference: s,
        t,
        p_permutation: sign_flip_p(&d),
        better: d.iter().filter(|x| **x > 1e-12).count(),
        worse: d.iter().filter(|x| **x < -1e-12).count(),
        equal: d.iter().filter(|x| x.abs() <= 1e-12).count(),
        folds,
    }
}

/// McNemar's exact test of `run` against `baseline` over the samples of `folds` that both
/// scored (matched by sample id within each fold). `None` when either lacks a fold's predictions.
fn mcnemar_over<'f>(
    baseline: &RunRecord,
    run: &RunRecord,
    folds: impl Iterator<Item = &'f str>,
) -> Option<McNemar> {
    let (mut n, mut b, mut c) = (0u64, 0u64, 0u64);
    let mut any = false;
    for fold in folds {
        let first = baseline.fold_outcomes(fold)?;
        let second = run.fold_outcomes(fold)?;
        any = true;
        for (id, right_first) in &first {
            if let Some(right_second) = second.get(id) {
                n += 1;
                match (right_first, right_second) {
                    (true, false) => b += 1,
                    (false, true) => c += 1,
                    _ => {}
                }
            }
        }
    }
    any.then(|| McNemar::from_counts(n, b, c))
}

/// Several runs side by side.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The runs, the first being the baseline of the paired comparisons.
    pub runs: Vec<RunRecord>,
    /// Settings whose values differ between the runs: key → value per run (`—` where absent).
    pub differing: BTreeMap<String, Vec<String>>,
    /// Each later run against the first.
    pub paired: Vec<PairedComparison>,
}

/// Reads and compares runs.
///
/// Errors: as [`read_run`]; no runs.
pub fn compare(dirs: &[PathBuf]) -> Result<Comparison> {
    if dirs.is_empty() {
        return Err(TrainError::Config(
            "train report: no run directories".into(),
        ));
    }
    let runs = dirs
        .iter()
        .map(|d| read_run(d))
        .collect::<Result<Vec<_>>>()?;
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.settings.keys()).collect();
    let mut differing = BTreeMap::new();
    for k in keys {
        let vals: Vec<String> = runs
            .iter()
            .map(|r| r.settings.get(k).cloned().unwrap_or_else(|| "—".into()))
            .collect();
        if vals.iter().any(|v| *v != vals[0]) {
            differing.insert(k.clone(), vals);
        }
    }
    let paired = runs[1..].iter().map(|r| paired(&runs[0], r)).collect();
    Ok(Comparison {
        runs,
        differing,
        paired,
    })
}

impl Comparison {
    /// Every fold name of any run, in natural order.
    pub fn fold_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .runs
            .iter()
            .flat_map(|r| r.folds.iter().map(|f| f.fold.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        names.sort_by_key(|a| natural_key(a));
        names
    }

    /// One row per run: what every rendering (Markdown, HTML, CSV) shows of it.
    pub fn run_rows(&self) -> Vec<RunRow> {
        self.runs
            .iter()
            .enumerate()
            .map(|(i, r)| RunRow {
                figures: r.figures(),
                index: i + 1,
                label: r.label.clone(),
                status: r.status(),
                finished: r.finished(),
                folds_finished: r.folds.iter().filter(|f| f.finished()).count(),
                folds_total: r.folds.len(),
                oracle_mean: r.summary.as_ref().map(|s| s.oracle_mean),
                epochs: r
                    .folds
                    .iter()
                    .map(|f| (f.fold.clone(), f.epochs_run, f.epochs_planned))
                    .collect(),
                differing: self.differing.values().map(|v| v[i].clone()).collect(),
                cache_key: r.cache_key(),
                git_revision: r.git_revision(),
                device: r.device(),
                dir: r.dir.clone(),
            })
            .collect()
    }

    /// One row per run and fold (every fold a run planned or started), in run order.
    pub fn fold_rows(&self) -> Vec<FoldRow> {
        let base = self.runs[0].fold_accuracies();
        let mut rows = Vec::new();
        for (i, r) in self.runs.iter().enumerate() {
            for f in &r.folds {
                let accuracy = f.result.as_ref().map(|x| x.accuracy);
                let metrics = f
                    .result
                    .as_ref()
                    .filter(|x| !x.confusion.is_empty())
                    .map(|x| {
                        x.metrics.clone().unwrap_or_else(|| {
                            Confusion {
                                counts: x.confusion.clone(),
                            }
                            .metrics(&[shard::name_key(&f.fold)])
                        })
                    });
                rows.push(FoldRow {
                    balanced_accuracy: metrics.as_ref().map(|m| m.balanced_accuracy),
                    macro_f1: metrics.as_ref().map(|m| m.macro_f1),
                    accuracy_ci: metrics.as_ref().map(|m| m.accuracy_ci),
                    macro_f1_ci: metrics.as_ref().map(|m| m.macro_f1_ci),
                    run: i + 1,
                    label: r.label.clone(),
                    fold: f.fold.clone(),
                    finished: f.finished(),
                    epochs_run: f.epochs_run,
                    epochs_planned: f.epochs_planned,
                    accuracy,
                    reported_epoch: f.result.as_ref().map(|x| x.epoch),
                    oracle: f.result.as_ref().map(|x| x.oracle_accuracy),
                    difference_from_first: accuracy.and_then(|a| base.get(&f.fold).map(|b| a - b)),
                });
            }
        }
        rows
    }
}

/// A run as every rendering of the report shows it (accuracies as fractions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Position in the report, from 1 (#1 is the baseline of the paired comparisons).
    pub index: usize,
    /// `<experiment>/<run name>`.
    pub label: String,
    /// `finished`, or what is unfinished ([`RunRecord::status`]).
    pub status: String,
    /// Whether every planned fold finished.
    pub finished: bool,
    /// Folds finished.
    pub folds_finished: usize,
    /// Folds planned or started.
    pub folds_total: usize,
    /// Accuracy, balanced accuracy and macro-F1 over the finished folds, and their test samples
    /// pooled: the figures every report table shows, a sweep's settings alike.
    pub figures: FigureRow,
    /// The mean best-on-test ("oracle") accuracy, once the run has finished.
    pub oracle_mean: Option<f64>,
    /// Per fold: name, epochs run, epochs planned.
    pub epochs: Vec<(String, usize, usize)>,
    /// This run's values of [`Comparison::differing`]'s settings, in its order.
    pub differing: Vec<String>,
    /// The full cache key.
    pub cache_key: String,
    /// The git revision recorded in run.json.
    pub git_revision: String,
    /// The device recorded in run.json.
    pub device: String,
    /// The run directory.
    pub dir: PathBuf,
}

impl RunRow {
    /// The first 16 hex digits of the cache key (all of it when shorter).
    pub fn short_key(&self) -> &str {
        shard::short_key(&self.cache_key)
    }
}

/// One fold of one run as every rendering of the report shows it (accuracies as fractions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldRow {
    /// The run's position in the report, from 1.
    pub run: usize,
    /// The run's label.
    pub label: String,
    /// Fold name.
    pub fold: String,
    /// Whether the fold finished.
    pub finished: bool,
    /// Epochs trained.
    pub epochs_run: usize,
    /// Epochs planned.
    pub epochs_planned: usize,
    /// Test accuracy at the reported epoch, once finished.
    pub accuracy: Option<f64>,
    /// The reported epoch (1-based), once finished.
    pub reported_epoch: Option<usize>,
    /// The best test accuracy over the epochs (oracle), once finished.
    pub oracle: Option<f64>,
    /// Accuracy minus run #1's on the same fold, when both finished.
    pub difference_from_first: Option<f64>,
    /// Balanced accuracy at the reported epoch, once finished.
    pub balanced_accuracy: Option<f64>,
    /// Macro-F1 at the reported epoch, once finished.
    pub macro_f1: Option<f64>,
    /// 95 % bootstrap interval of the accuracy, once finished.
    pub accuracy_ci: Option<(f64, f64)>,
    /// 95 % bootstrap interval of the macro-F1, once finished.
    pub macro_f1_ci: Option<(f64, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_flip_known_answers() {
        // Three positive differences: only the all-plus and all-minus patterns reach |Σ| = 6.
        assert!((sign_flip_p(&[1.0, 2.0, 3.0]) - 2.0 / 8.0).abs() < 1e-12);
        // {+1, -1}: every pattern has |Σ| ≥ 0.
        assert_eq!(sign_flip_p(&[1.0, -1.0]), 1.0);
        // Five equal positive differences: 2 of 32.
        assert!((sign_flip_p(&[0.1; 5]) - 2.0 / 32.0).abs() < 1e-12);
        assert_eq!(sign_flip_p(&[]), 1.0);
        // [3, 1, 1]: the patterns give |Σ| ∈ {5, 3, 1}; only the two of |Σ| = 5 count: 2/8.
        assert!((sign_flip_p(&[3.0, 1.0, 1.0]) - 0.25).abs() < 1e-12);
        // [1, 1, 1, 3]: sums ≥ 6 in absolute value: ±6 only → 2/16.
        assert!((sign_flip_p(&[1.0, 1.0, 1.0, 3.0]) - 0.125).abs() < 1e-12);
    }
}
