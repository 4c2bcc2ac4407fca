//! `train report`: what an ablation table needs from several runs — every setting that differs,
//! fold ids, epochs run against planned (unfinished runs reported as such), cache keys, per-fold
//! accuracies and a paired comparison of each run with the first over the folds they share.
//!
//! A run is read from its directory alone: `config.toml`, `run.json`, `summary.json` (present
//! once the run has finished) and per fold `result.json` (a finished fold) or `checkpoint.json`
//! (its history so far).

use super::metrics::{McNemar, Metrics};
use super::run::{
    fold_mean_std, mean_std, pooled_confusion, Confusion, EpochRecord, FoldResult, RunSummary,
    POOLED_BOOTSTRAP_KEY,
};
use crate::config::ExperimentConfig;
use crate::{Result, TrainError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
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

    /// Mean and sample std of the finished folds' accuracies.
    pub fn mean_std(&self) -> (f64, f64) {
        mean_std(&self.fold_accuracies().values().copied().collect::<Vec<_>>())
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

    /// Mean and sample std over finished folds of the balanced accuracy.
    pub fn balanced_accuracy(&self) -> (f64, f64) {
        fold_mean_std(&self.results(), Confusion::balanced_accuracy)
    }

    /// Mean and sample std over finished folds of the macro-F1.
    pub fn macro_f1(&self) -> (f64, f64) {
        fold_mean_std(&self.results(), Confusion::macro_f1)
    }

    /// Every figure of the finished folds' test samples pooled, with bootstrap intervals (the
    /// same stream as `summary.json`'s `pooled`).
    pub fn pooled_metrics(&self) -> Metrics {
        self.pooled_confusion().metrics(&[POOLED_BOOTSTRAP_KEY])
    }

    /// Per-sample correctness of a finished fold from its `predictions.parquet`, keyed by
    /// sample id (by record number when ids are empty). `None` when the file is absent (runs
    /// from before it existed) or unreadable.
    pub fn fold_outcomes(&self, fold: &str) -> Option<BTreeMap<String, bool>> {
        let p = self
            .dir
            .join(format!("fold-{fold}"))
            .join("predictions.parquet");
        let rows = super::predictions::read_predictions(&p).ok()?;
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
/// Errors: [`TrainError::Checkpoint`] for a directory without `config.toml` (not a run) or with
/// unreadable JSON; a run that has not finished is not an error (see [`RunRecord::status`]).
pub fn read_run(dir: &Path) -> Result<RunRecord> {
    let config =
        ExperimentConfig::load(&dir.join("config.toml")).map_err(|e| TrainError::Checkpoint {
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
    let summary =
        match std::fs::read(dir.join("summary.json")) {
            Ok(b) => Some(serde_json::from_slice::<RunSummary>(&b).map_err(|e| {
                TrainError::Checkpoint {
                    path: dir.join("summary.json"),
                    reason: e.to_string(),
                }
            })?),
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
fn natural_key(s: &str) -> (String, u64) {
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

/// Two-sided sign-flip permutation p value of the mean of `d`: the share of sign patterns whose
/// |mean| is at least the observed one (exact up to 20 values).
pub fn sign_flip_p(d: &[f64]) -> f64 {
    let n = d.len();
    if n == 0 {
        return 1.0;
    }
    let observed = d.iter().sum::<f64>().abs();
    // Ties within rounding count as "at least as extreme".
    let tol = 1e-12 * d.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
    let extreme = |signs: u64| {
        let s: f64 = d
            .iter()
            .enumerate()
            .map(|(i, x)| if signs >> i & 1 == 1 { -x } else { *x })
            .sum();
        s.abs() >= observed - tol
    };
    if n <= 20 {
        let total = 1u64 << n;
        let hits = (0..total).filter(|&s| extreme(s)).count();
        hits as f64 / total as f64
    } else {
        let mut rng = shard::KeyedRng::new(&[0x5eed_f1b5, n as u64]);
        let draws = 100_000;
        let mut hits = 1; // the observed pattern itself
        for _ in 0..draws {
            let mut s: f64 = 0.0;
            for x in d {
                s += if rng.next_u64() & 1 == 1 { -x } else { *x };
            }
            if s.abs() >= observed - tol {
                hits += 1;
            }
        }
        hits as f64 / (draws + 1) as f64
    }
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
            .map(|(i, r)| {
                let (mean, std) = r.mean_std();
                RunRow {
                    balanced_accuracy: r.balanced_accuracy(),
                    macro_f1: r.macro_f1(),
                    pooled: r.pooled_metrics(),
                    index: i + 1,
                    label: r.label.clone(),
                    status: r.status(),
                    finished: r.finished(),
                    folds_finished: r.folds.iter().filter(|f| f.finished()).count(),
                    folds_total: r.folds.len(),
                    mean,
                    std,
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
                }
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
                            .metrics(&[super::metrics::name_key(&f.fold)])
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
    /// Mean test accuracy over the finished folds (0 when none finished).
    pub mean: f64,
    /// Its sample standard deviation.
    pub std: f64,
    /// The mean best-on-test ("oracle") accuracy, once the run has finished.
    pub oracle_mean: Option<f64>,
    /// Balanced accuracy (mean class accuracy): mean and sample std over finished folds.
    pub balanced_accuracy: (f64, f64),
    /// Macro-F1: mean and sample std over finished folds.
    pub macro_f1: (f64, f64),
    /// The finished folds' test samples pooled: accuracy, balanced accuracy, macro-F1 and their
    /// 95 % bootstrap intervals, per-class scores.
    pub pooled: Metrics,
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

    #[test]
    fn natural_order_of_fold_names() {
        let mut v = vec!["fold10", "fold2", "fold0", "test"];
        v.sort_by_key(|a| natural_key(a));
        assert_eq!(v, ["fold0", "fold2", "fold10", "test"]);
    }
}
