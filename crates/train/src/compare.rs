//! `train report`: what an ablation table needs from several runs — every setting that differs,
//! fold ids, epochs run against planned (unfinished runs reported as such), cache keys, per-fold
//! accuracies and a paired comparison of each run with the first over the folds they share.
//!
//! A run is read from its directory alone: `config.toml`, `run.json`, `summary.json` (present
//! once the run has finished) and per fold `result.json` (a finished fold) or `checkpoint.json`
//! (its history so far).

use crate::config::ExperimentConfig;
use crate::report::{mean_std, EpochRecord, FoldResult, RunSummary};
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

    /// Per-class recall summed over the finished folds (NaN for a class without samples).
    pub fn recall(&self) -> Vec<f64> {
        let n = self.classes.len();
        let mut total = crate::report::Confusion::new(n);
        for r in self.folds.iter().filter_map(|f| f.result.as_ref()) {
            for (i, row) in r.confusion.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    if let Some(c) = total.counts.get_mut(i).and_then(|row| row.get_mut(j)) {
                        *c += v;
                    }
                }
            }
        }
        total.recalls()
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

/// Flattens a TOML table to `a.b = value` pairs.
fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
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
        flatten("", &toml::Value::Table(t), &mut settings);
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
    PairedComparison {
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

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}", 100.0 * x)
    } else {
        "–".into()
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
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

    /// The report as Markdown: runs, differing settings, per-fold accuracies (with differences
    /// from the baseline), the paired comparison and per-class recall.
    pub fn markdown(&self) -> String {
        let mut s = String::from(if self.runs.len() == 1 {
            "# Run report\n\n## Run\n\n"
        } else {
            "# Run comparison\n\n## Runs\n\n"
        });
        s.push_str(
            "| # | run | status | folds finished | accuracy (mean ± std, %) | oracle mean (%) | \
             epochs run / planned | cache key | git revision | device |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (i, r) in self.runs.iter().enumerate() {
            let (m, sd) = r.mean_std();
            let done = r.folds.iter().filter(|f| f.finished()).count();
            let oracle = r
                .summary
                .as_ref()
                .map(|x| pct(x.oracle_mean))
                .unwrap_or_else(|| "–".into());
            let epochs: Vec<String> = r
                .folds
                .iter()
                .map(|f| format!("{}/{}", f.epochs_run, f.epochs_planned))
                .collect();
            s.push_str(&format!(
                "| {} | {} | {} | {done} of {} | {} | {oracle} | {} | `{}` | {} | {} |\n",
                i + 1,
                md_escape(&r.label),
                r.status(),
                r.folds.len(),
                if done == 0 {
                    "–".into()
                } else {
                    format!("{} ± {}", pct(m), pct(sd))
                },
                epochs.join(", "),
                &r.cache_key()[..r.cache_key().len().min(16)],
                md_escape(&r.git_revision()),
                md_escape(&r.device()),
            ));
        }
        if self.runs.len() == 1 {
            s.push_str("\n## Settings\n\n| setting | value |\n|---|---|\n");
            for (k, v) in &self.runs[0].settings {
                s.push_str(&format!("| `{k}` | {} |\n", md_escape(v)));
            }
        } else {
            s.push_str(&self.settings_markdown());
        }
        s.push_str(&self.rest_markdown());
        s
    }

    /// The settings part of a comparison: those that differ as a table, the others on one line.
    fn settings_markdown(&self) -> String {
        let mut s = String::from("\n## Settings that differ\n\n");
        if self.differing.is_empty() {
            s.push_str("None: the runs have identical configurations.\n");
        } else {
            s.push_str("| setting |");
            for i in 0..self.runs.len() {
                s.push_str(&format!(" #{} |", i + 1));
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(self.runs.len()));
            s.push('\n');
            for (k, vals) in &self.differing {
                s.push_str(&format!("| `{k}` |"));
                for v in vals {
                    s.push_str(&format!(" {} |", md_escape(v)));
                }
                s.push('\n');
            }
        }
        let common: Vec<String> = self.runs[0]
            .settings
            .iter()
            .filter(|(k, _)| !self.differing.contains_key(*k))
            .map(|(k, v)| format!("`{k}` = {}", md_escape(v)))
            .collect();
        if !common.is_empty() {
            s.push_str(&format!("\nThe same in all runs: {}.\n", common.join(", ")));
        }
        s
    }

    /// Everything after the settings.
    fn rest_markdown(&self) -> String {
        let mut s = String::new();
        let keys: BTreeSet<String> = self.runs.iter().map(|r| r.cache_key()).collect();
        if keys.len() > 1 {
            s.push_str(
                "\n**The runs trained on different caches** (cache keys differ): their folds are \
                 not the same samples unless the caches differ only in settings the fold lists \
                 do not depend on.\n",
            );
        }
        s.push_str("\n## Test accuracy per fold (%)\n\n| fold |");
        for i in 0..self.runs.len() {
            s.push_str(&format!(" #{} |", i + 1));
        }
        for i in 1..self.runs.len() {
            s.push_str(&format!(" #{} − #1 |", i + 1));
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(2 * self.runs.len() - 1));
        s.push('\n');
        for fold in self.fold_names() {
            s.push_str(&format!("| {fold} |"));
            let accs: Vec<Option<f64>> = self
                .runs
                .iter()
                .map(|r| r.fold_accuracies().get(&fold).copied())
                .collect();
            for (r, a) in self.runs.iter().zip(&accs) {
                let cell = match a {
                    Some(a) => pct(*a),
                    None => match r.folds.iter().find(|f| f.fold == fold) {
                        Some(f) => format!("unfinished ({}/{})", f.epochs_run, f.epochs_planned),
                        None => "not run".into(),
                    },
                };
                s.push_str(&format!(" {cell} |"));
            }
            for a in &accs[1..] {
                let cell = match (accs[0], a) {
                    (Some(x), Some(y)) => format!("{:+.2}", 100.0 * (y - x)),
                    _ => "–".into(),
                };
                s.push_str(&format!(" {cell} |"));
            }
            s.push('\n');
        }
        if !self.paired.is_empty() {
            s.push_str(
                "\n## Paired comparison with #1 over shared finished folds\n\n\
                 | run | shared folds | mean difference (points) | std | paired t | \
                 p (sign-flip permutation) | better / worse / equal |\n\
                 |---|---|---|---|---|---|---|\n",
            );
            for (i, p) in self.paired.iter().enumerate() {
                s.push_str(&format!(
                    "| #{} {} | {} | {:+.2} | {:.2} | {} | {:.4} | {} / {} / {} |\n",
                    i + 2,
                    md_escape(&p.run),
                    p.folds.len(),
                    100.0 * p.mean_difference,
                    100.0 * p.std_difference,
                    if p.t.is_finite() {
                        format!("{:.2}", p.t)
                    } else {
                        "–".into()
                    },
                    p.p_permutation,
                    p.better,
                    p.worse,
                    p.equal
                ));
            }
            s.push_str(
                "\nThe permutation test flips the sign of each fold's difference (exact over all \
                 patterns): with k folds the smallest attainable two-sided p is 2/2^k.\n",
            );
        }
        let classes = &self.runs[0].classes;
        if self.runs.iter().all(|r| r.classes == *classes) && !classes.is_empty() {
            s.push_str("\n## Recall per class over finished folds (%)\n\n| class |");
            for i in 0..self.runs.len() {
                s.push_str(&format!(" #{} |", i + 1));
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(self.runs.len()));
            s.push('\n');
            let recalls: Vec<Vec<f64>> = self.runs.iter().map(|r| r.recall()).collect();
            for (ci, c) in classes.iter().enumerate() {
                s.push_str(&format!("| {} |", md_escape(c)));
                for r in &recalls {
                    s.push_str(&format!(
                        " {} |",
                        r.get(ci).map(|x| pct(*x)).unwrap_or_default()
                    ));
                }
                s.push('\n');
            }
        }
        s
    }

    /// One row per run: label, status, the differing settings, cache key, git revision, folds
    /// finished, mean and std (%), oracle mean (%).
    pub fn runs_table(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let n = self.runs.len();
        let mut cols = vec![
            Column::new(
                "run".into(),
                self.runs
                    .iter()
                    .map(|r| r.label.clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "status".into(),
                self.runs.iter().map(|r| r.status()).collect::<Vec<_>>(),
            ),
        ];
        for (k, vals) in &self.differing {
            cols.push(Column::new(k.as_str().into(), vals.clone()));
        }
        cols.push(Column::new(
            "cache_key".into(),
            self.runs.iter().map(|r| r.cache_key()).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "git_revision".into(),
            self.runs
                .iter()
                .map(|r| r.git_revision())
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "folds_finished".into(),
            self.runs
                .iter()
                .map(|r| r.folds.iter().filter(|f| f.finished()).count() as u32)
                .collect::<Vec<_>>(),
        ));
        let ms: Vec<(f64, f64)> = self.runs.iter().map(|r| r.mean_std()).collect();
        cols.push(Column::new(
            "accuracy_mean_pct".into(),
            ms.iter().map(|m| 100.0 * m.0).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "accuracy_std_pct".into(),
            ms.iter().map(|m| 100.0 * m.1).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "oracle_mean_pct".into(),
            self.runs
                .iter()
                .map(|r| r.summary.as_ref().map(|s| 100.0 * s.oracle_mean))
                .collect::<Vec<_>>(),
        ));
        DataFrame::new(n, cols).map_err(table_err)
    }

    /// One row per (run, fold): epochs run and planned, accuracy, reported epoch, oracle
    /// accuracy, and the difference from the baseline on that fold.
    pub fn folds_table(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let (mut run, mut fold, mut status) = (Vec::new(), Vec::new(), Vec::new());
        let (mut run_e, mut plan_e, mut acc, mut epoch, mut oracle, mut diff) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let base = self.runs[0].fold_accuracies();
        for r in &self.runs {
            for f in &r.folds {
                run.push(r.label.clone());
                fold.push(f.fold.clone());
                status.push(if f.finished() {
                    "finished"
                } else {
                    "unfinished"
                });
                run_e.push(f.epochs_run as u32);
                plan_e.push(f.epochs_planned as u32);
                acc.push(f.result.as_ref().map(|x| 100.0 * x.accuracy));
                epoch.push(f.result.as_ref().map(|x| x.epoch as u32));
                oracle.push(f.result.as_ref().map(|x| 100.0 * x.oracle_accuracy));
                diff.push(
                    f.result
                        .as_ref()
                        .and_then(|x| base.get(&f.fold).map(|b| 100.0 * (x.accuracy - b))),
                );
            }
        }
        let h = run.len();
        DataFrame::new(
            h,
            vec![
                Column::new("run".into(), run),
                Column::new("fold".into(), fold),
                Column::new("status".into(), status),
                Column::new("epochs_run".into(), run_e),
                Column::new("epochs_planned".into(), plan_e),
                Column::new("accuracy_pct".into(), acc),
                Column::new("reported_epoch".into(), epoch),
                Column::new("oracle_pct".into(), oracle),
                Column::new("difference_from_first_pct".into(), diff),
            ],
        )
        .map_err(table_err)
    }
}

fn table_err(e: polars::prelude::PolarsError) -> TrainError {
    TrainError::Table {
        path: PathBuf::from("<report>"),
        reason: e.to_string(),
    }
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
