//! The ablation table of a sweep (`train report <sweep dir>`): one row per setting, mean ± std
//! over every (seed, fold) of accuracy, balanced accuracy and macro-F1, the pooled figures with
//! bootstrap intervals, and each setting paired with the baseline (the first setting) over the
//! (seed, fold) pairs both finished: the mean difference, the sign-flip permutation test, and
//! McNemar's exact test over the shared test samples.

use super::compare::{read_run, sign_flip_p, RunRecord};
use super::markdown::{p_value, pct};
use super::metrics::{McNemar, Metrics};
use super::run::{mean_std, pooled_confusion, Confusion, FoldResult, POOLED_BOOTSTRAP_KEY};
use crate::sweep::{read_plan, SweepPlan};
use crate::{Result, TrainError};
use polars::prelude::{Column, DataFrame};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One setting of a sweep, over its seeds and folds.
#[derive(Debug, Clone, Serialize)]
pub struct SettingRow {
    /// The setting's name (`branches-gfm`).
    pub setting: String,
    /// What it sets (`model.branches = "gfm"`), the seed left out.
    pub sets: Vec<String>,
    /// Cells (seeds) whose every fold finished, and cells planned.
    pub cells_finished: usize,
    /// See `cells_finished`.
    pub cells: usize,
    /// Finished (seed, fold) results.
    pub results: usize,
    /// Accuracy: mean and sample std over the finished (seed, fold) results.
    pub accuracy: (f64, f64),
    /// Balanced accuracy (mean class accuracy): mean and std over the same.
    pub balanced_accuracy: (f64, f64),
    /// Macro-F1: mean and std over the same.
    pub macro_f1: (f64, f64),
    /// Every finished fold's test samples of every seed pooled, with bootstrap intervals.
    pub pooled: Metrics,
    /// Against the baseline (`None` for the baseline itself).
    pub paired: Option<SettingPair>,
}

/// A setting against the baseline over the (seed, fold) pairs both finished.
#[derive(Debug, Clone, Serialize)]
pub struct SettingPair {
    /// Shared (seed, fold) pairs.
    pub pairs: usize,
    /// Mean accuracy difference (this − baseline).
    pub mean_difference: f64,
    /// Two-sided sign-flip permutation p of the mean difference.
    pub p_permutation: f64,
    /// McNemar's exact test over the shared test samples of every shared pair (`None` when a
    /// fold lacks `predictions.parquet`).
    pub mcnemar: Option<McNemar>,
}

/// A sweep's ablation table.
#[derive(Debug, Clone)]
pub struct AblationReport {
    /// The sweep directory.
    pub dir: PathBuf,
    /// Its plan (`sweep.json`).
    pub plan: SweepPlan,
    /// One row per setting, the baseline first.
    pub rows: Vec<SettingRow>,
}

/// Whether `dir` is a sweep directory (it holds `sweep.json`).
pub fn is_sweep_dir(dir: &Path) -> bool {
    dir.join("sweep.json").is_file()
}

/// Reads a sweep directory's cells and builds its ablation table. Cells not started yet count
/// as unfinished, not as errors.
///
/// Errors: no or unreadable `sweep.json`; a cell directory that is not a run.
pub fn ablation(dir: &Path) -> Result<AblationReport> {
    let plan = read_plan(dir)?;
    // setting → seed → run
    let mut runs: BTreeMap<String, BTreeMap<u64, RunRecord>> = BTreeMap::new();
    for c in &plan.cells {
        let d = dir.join(&c.name);
        if d.join("config.toml").exists() {
            runs.entry(c.setting.clone())
                .or_default()
                .insert(c.seed, read_run(&d)?);
        }
    }
    let n_classes = runs
        .values()
        .flat_map(|m| m.values())
        .map(|r| r.classes.len())
        .max()
        .unwrap_or(0);
    let results_of = |setting: &str| -> BTreeMap<(u64, String), (&RunRecord, &FoldResult)> {
        runs.get(setting)
            .into_iter()
            .flat_map(|m| m.iter())
            .flat_map(|(seed, r)| {
                r.folds.iter().filter_map(move |f| {
                    f.result
                        .as_ref()
                        .map(|res| ((*seed, f.fold.clone()), (r, res)))
                })
            })
            .collect()
    };
    let baseline = plan.settings.first().cloned().unwrap_or_default();
    let base_results = results_of(&baseline);
    let mut rows = Vec::new();
    for setting in &plan.settings {
        let cells: Vec<_> = plan
            .cells
            .iter()
            .filter(|c| &c.setting == setting)
            .collect();
        let res = results_of(setting);
        let folds: Vec<&FoldResult> = res.values().map(|(_, r)| *r).collect();
        let of = |f: fn(&Confusion) -> f64| {
            mean_std(
                &folds
                    .iter()
                    .filter(|r| !r.confusion.is_empty())
                    .map(|r| {
                        f(&Confusion {
                            counts: r.confusion.clone(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let finished = |c: &&&crate::sweep::SweepCell| {
            runs.get(setting)
                .and_then(|m| m.get(&c.seed))
                .is_some_and(|r| {
                    r.folds.len() == plan.folds.len() && r.folds.iter().all(|f| f.finished())
                })
        };
        let paired = (setting != &baseline).then(|| {
            let mut d = Vec::new();
            let (mut n, mut b, mut c) = (0u64, 0u64, 0u64);
            let mut have_predictions = true;
            for (key, (run, r)) in &res {
                let Some((base_run, base)) = base_results.get(key) else {
                    continue;
                };
                d.push(r.accuracy - base.accuracy);
                match (base_run.fold_outcomes(&key.1), run.fold_outcomes(&key.1)) {
                    (Some(x), Some(y)) => {
                        for (id, right_base) in &x {
                            if let Some(right) = y.get(id) {
                                n += 1;
                                b += u64::from(*right_base && !right);
                                c += u64::from(!right_base && *right);
                            }
                        }
                    }
                    _ => have_predictions = false,
                }
            }
            SettingPair {
                pairs: d.len(),
                mean_difference: mean_std(&d).0,
                p_permutation: sign_flip_p(&d),
                mcnemar: (have_predictions && !d.is_empty()).then(|| McNemar::from_counts(n, b, c)),
            }
        });
        rows.push(SettingRow {
            setting: setting.clone(),
            sets: cells
                .first()
                .map(|c| {
                    c.overrides
                        .iter()
                        .filter(|o| o.key != "train.seed")
                        .map(|o| format!("{} = {}", o.key, o.text))
                        .collect()
                })
                .unwrap_or_default(),
            cells_finished: cells.iter().filter(finished).count(),
            cells: cells.len(),
            results: folds.len(),
            accuracy: mean_std(&folds.iter().map(|r| r.accuracy).collect::<Vec<_>>()),
            balanced_accuracy: of(Confusion::balanced_accuracy),
            macro_f1: of(Confusion::macro_f1),
            pooled: pooled_confusion(n_classes, &folds).metrics(&[POOLED_BOOTSTRAP_KEY]),
            paired,
        });
    }
    Ok(AblationReport {
        dir: dir.to_path_buf(),
        plan,
        rows,
    })
}

impl AblationReport {
    /// The ablation table as Markdown.
    pub fn markdown(&self) -> String {
        let p = &self.plan;
        let seeds: std::collections::BTreeSet<u64> = p.cells.iter().map(|c| c.seed).collect();
        let mut s = format!(
            "# Ablation: {} / {}\n\n{} settings × {} seeds × {} folds on cache `{}` (key `{}`). \
             Mean ± sample std over every finished (seed, fold); pooled figures over all their \
             test samples with 95 % bootstrap intervals. The first setting is the baseline.\n\n\
             | setting | sets | cells finished | results | accuracy (%) | balanced accuracy (%) \
             | macro-F1 (%) | pooled accuracy [95 % CI] (%) | pooled macro-F1 [95 % CI] (%) | \
             Δ accuracy vs baseline (points) | p (sign-flip) | McNemar only baseline / only this \
             | p (McNemar) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            p.experiment,
            p.name,
            p.settings.len(),
            seeds.len(),
            p.folds.len(),
            p.cache.display(),
            shard::short_key(&p.cache_key),
        );
        let pm = |v: (f64, f64), n: usize| {
            if n == 0 {
                "–".to_string()
            } else {
                format!("{} ± {}", pct(v.0), pct(v.1))
            }
        };
        for r in &self.rows {
            let ci = |v: f64, c: (f64, f64)| {
                if r.results == 0 {
                    "–".to_string()
                } else {
                    format!("{} [{}, {}]", pct(v), pct(c.0), pct(c.1))
                }
            };
            let (d, pp, mc, mp) = match &r.paired {
                None => ("baseline".into(), "–".into(), "–".into(), "–".into()),
                Some(x) => (
                    format!("{:+.2} over {} pairs", 100.0 * x.mean_difference, x.pairs),
                    p_value(x.p_permutation),
                    x.mcnemar.as_ref().map_or("–".into(), |m| {
                        format!("{} / {} (of {})", m.only_first, m.only_second, m.samples)
                    }),
                    x.mcnemar.as_ref().map_or("–".into(), |m| p_value(m.p)),
                ),
            };
            s.push_str(&format!(
                "| {} | {} | {} of {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.setting,
                if r.sets.is_empty() {
                    "(as the file)".into()
                } else {
                    format!("`{}`", r.sets.join("`, `"))
                },
                r.cells_finished,
                r.cells,
                r.results,
                pm(r.accuracy, r.results),
                pm(r.balanced_accuracy, r.results),
                pm(r.macro_f1, r.results),
                ci(r.pooled.accuracy, r.pooled.accuracy_ci),
                ci(r.pooled.macro_f1, r.pooled.macro_f1_ci),
                d,
                pp,
                mc,
                mp
            ));
        }
        s.push_str(&format!(
            "\nCells: `{}/<setting>.seed-<n>/` (each a run: `train report` on it gives its own \
             report). The permutation test flips the sign of each (seed, fold) difference; \
             McNemar pools the shared test samples of those pairs.\n",
            self.dir.display()
        ));
        s
    }

    /// The ablation table as a polars frame (one row per setting; percentages).
    ///
    /// Errors: [`TrainError::Table`] when polars refuses the columns.
    pub fn table(&self) -> Result<DataFrame> {
        let rows = &self.rows;
        let f = |name: &str, v: &dyn Fn(&SettingRow) -> Option<f64>| {
            Column::new(name.into(), rows.iter().map(v).collect::<Vec<_>>())
        };
        let pct = |x: f64| Some(100.0 * x);
        let cols = vec![
            Column::new(
                "setting".into(),
                rows.iter().map(|r| r.setting.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "sets".into(),
                rows.iter().map(|r| r.sets.join("; ")).collect::<Vec<_>>(),
            ),
            Column::new(
                "cells_finished".into(),
                rows.iter()
                    .map(|r| r.cells_finished as u32)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "cells".into(),
                rows.iter().map(|r| r.cells as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                "results".into(),
                rows.iter().map(|r| r.results as u32).collect::<Vec<_>>(),
            ),
            f("accuracy_mean_pct", &|r| pct(r.accuracy.0)),
            f("accuracy_std_pct", &|r| pct(r.accuracy.1)),
            f("balanced_accuracy_mean_pct", &|r| {
                pct(r.balanced_accuracy.0)
            }),
            f("balanced_accuracy_std_pct", &|r| pct(r.balanced_accuracy.1)),
            f("macro_f1_mean_pct", &|r| pct(r.macro_f1.0)),
            f("macro_f1_std_pct", &|r| pct(r.macro_f1.1)),
            f("pooled_accuracy_pct", &|r| pct(r.pooled.accuracy)),
            f("pooled_accuracy_ci_low_pct", &|r| {
                pct(r.pooled.accuracy_ci.0)
            }),
            f("pooled_accuracy_ci_high_pct", &|r| {
                pct(r.pooled.accuracy_ci.1)
            }),
            f("pooled_macro_f1_pct", &|r| pct(r.pooled.macro_f1)),
            f("pooled_macro_f1_ci_low_pct", &|r| {
                pct(r.pooled.macro_f1_ci.0)
            }),
            f("pooled_macro_f1_ci_high_pct", &|r| {
                pct(r.pooled.macro_f1_ci.1)
            }),
            f("difference_from_baseline_pct", &|r| {
                r.paired.as_ref().map(|p| 100.0 * p.mean_difference)
            }),
            f("p_permutation", &|r| {
                r.paired.as_ref().map(|p| p.p_permutation)
            }),
            f("p_mcnemar", &|r| {
                r.paired
                    .as_ref()
                    .and_then(|p| p.mcnemar.as_ref())
                    .map(|m| m.p)
            }),
        ];
        DataFrame::new(rows.len(), cols).map_err(|e| TrainError::Table {
            path: self.dir.clone(),
            reason: e.to_string(),
        })
    }

    /// The ablation table as one self-contained HTML page (no script, no network); numbers
    /// carry their exact value in `data-value`, as in [`super::html`].
    pub fn html(&self) -> String {
        use super::html::escape;
        let md_rows = self.markdown();
        let mut h = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ablation {}</title>\
             <style>body {{ font-family: \"DejaVu Sans\", Arial, sans-serif; margin: 24px; }} \
             table {{ border-collapse: collapse; font-size: 13px; }} th, td {{ border: 1px solid #c8c8c8; \
             padding: 4px 8px; text-align: right; }} td.text, th.text {{ text-align: left; }} \
             th {{ background: #eef1f5; }} .note {{ color: #555; font-size: 13px; }}</style></head><body>\n\
             <h1>Ablation: {} / {}</h1>\n<table id=\"ablation\"><tr><th class=\"text\">setting</th>\
             <th class=\"text\">sets</th><th>cells finished</th><th>results</th><th>accuracy (%)</th>\
             <th>balanced accuracy (%)</th><th>macro-F1 (%)</th><th>pooled accuracy [95 % CI] (%)</th>\
             <th>pooled macro-F1 [95 % CI] (%)</th><th>Δ accuracy vs baseline (points)</th>\
             <th>p (sign-flip)</th><th>p (McNemar)</th></tr>\n",
            escape(&self.plan.name),
            escape(&self.plan.experiment),
            escape(&self.plan.name)
        );
        for r in &self.rows {
            let cell = |field: &str, v: (f64, f64)| {
                format!(
                    "<td data-field=\"{field}\" data-setting=\"{}\" data-value=\"{}\" data-std=\"{}\">{} ± {}</td>",
                    escape(&r.setting),
                    v.0,
                    v.1,
                    pct(v.0),
                    pct(v.1)
                )
            };
            let ci = |field: &str, v: f64, c: (f64, f64)| {
                format!(
                    "<td data-field=\"{field}\" data-setting=\"{}\" data-value=\"{v}\" data-low=\"{}\" data-high=\"{}\">{} [{}, {}]</td>",
                    escape(&r.setting),
                    c.0,
                    c.1,
                    pct(v),
                    pct(c.0),
                    pct(c.1)
                )
            };
            let opt = |field: &str, v: Option<f64>, shown: String| {
                match v {
                Some(x) => format!(
                    "<td data-field=\"{field}\" data-setting=\"{}\" data-value=\"{x}\">{shown}</td>",
                    escape(&r.setting)
                ),
                None => "<td>–</td>".into(),
            }
            };
            let pair = r.paired.as_ref();
            h.push_str(&format!(
                "<tr><td class=\"text\">{}</td><td class=\"text\"><code>{}</code></td><td>{} of {}</td><td>{}</td>{}{}{}{}{}{}{}{}</tr>\n",
                escape(&r.setting),
                escape(&r.sets.join(", ")),
                r.cells_finished,
                r.cells,
                r.results,
                cell("accuracy", r.accuracy),
                cell("balanced_accuracy", r.balanced_accuracy),
                cell("macro_f1", r.macro_f1),
                ci("pooled_accuracy", r.pooled.accuracy, r.pooled.accuracy_ci),
                ci("pooled_macro_f1", r.pooled.macro_f1, r.pooled.macro_f1_ci),
                opt(
                    "difference",
                    pair.map(|p| p.mean_difference),
                    pair.map_or(String::new(), |p| format!("{:+.2}", 100.0 * p.mean_difference))
                ),
                opt(
                    "p_permutation",
                    pair.map(|p| p.p_permutation),
                    pair.map_or(String::new(), |p| p_value(p.p_permutation))
                ),
                opt(
                    "p_mcnemar",
                    pair.and_then(|p| p.mcnemar.as_ref()).map(|m| m.p),
                    pair.and_then(|p| p.mcnemar.as_ref())
                        .map_or(String::new(), |m| format!("{} ({} / {})", p_value(m.p), m.only_first, m.only_second))
                ),
            ));
        }
        h.push_str("</table>\n<pre class=\"note\">");
        h.push_str(&escape(
            md_rows
                .lines()
                .find(|l| l.starts_with("Cells:"))
                .unwrap_or(""),
        ));
        h.push_str("</pre>\n</body></html>\n");
        h
    }
}
