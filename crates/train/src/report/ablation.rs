//! The ablation table of a sweep (`train report <sweep dir>`): one row per setting, mean ± std
//! over every (seed, fold) of accuracy, balanced accuracy and macro-F1, the pooled figures with
//! bootstrap intervals, and each setting paired with the baseline (the first setting) over the
//! (seed, fold) pairs both finished: the mean difference, the sign-flip permutation test, and
//! McNemar's exact test over the shared test samples.

use super::rows::{FigureRow, PairedFigures, FIGURE_HEADERS, PAIRED_HEADERS};
use super::runs::{read_run, RunRecord};
use super::stats::{sign_flip_p, McNemar};
use crate::outputs::{mean_std, FoldResult};
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
    /// Accuracy, balanced accuracy and macro-F1 over every finished (seed, fold), and their
    /// test samples pooled: the figures a run's row shows.
    pub figures: FigureRow,
    /// Against the baseline over the (seed, fold) pairs both finished (`None` for the baseline
    /// itself).
    pub paired: Option<PairedFigures>,
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
            PairedFigures {
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
            figures: FigureRow::of(&folds, n_classes),
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
             | setting | sets | cells finished | results | {} | {} |\n|---|---|---|---|{}\n",
            p.experiment,
            p.name,
            p.settings.len(),
            seeds.len(),
            p.folds.len(),
            p.cache.display(),
            shard::short_key(&p.cache_key),
            FIGURE_HEADERS.join(" | "),
            PAIRED_HEADERS.join(" | "),
            "---|".repeat(FIGURE_HEADERS.len() + PAIRED_HEADERS.len()),
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} of {} | {} | {} | {} |\n",
                r.setting,
                if r.sets.is_empty() {
                    "(as the file)".into()
                } else {
                    format!("`{}`", r.sets.join("`, `"))
                },
                r.cells_finished,
                r.cells,
                r.figures.results,
                r.figures.markdown_cells().join(" | "),
                PairedFigures::markdown_cells(r.paired.as_ref()).join(" | "),
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
        let mut cols = vec![
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
                rows.iter()
                    .map(|r| r.figures.results as u32)
                    .collect::<Vec<_>>(),
            ),
        ];
        cols.extend(FigureRow::columns(
            &rows.iter().map(|r| &r.figures).collect::<Vec<_>>(),
        ));
        cols.extend(PairedFigures::columns(
            &rows.iter().map(|r| r.paired.as_ref()).collect::<Vec<_>>(),
        ));
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
             <th class=\"text\">sets</th><th>cells finished</th><th>results</th>{}{}</tr>\n",
            escape(&self.plan.name),
            escape(&self.plan.experiment),
            escape(&self.plan.name),
            FigureRow::html_headers(),
            PairedFigures::html_headers(),
        );
        for r in &self.rows {
            let key = format!("data-setting=\"{}\"", escape(&r.setting));
            h.push_str(&format!(
                "<tr><td class=\"text\">{}</td><td class=\"text\"><code>{}</code></td><td>{} of {}</td><td>{}</td>{}{}</tr>\n",
                escape(&r.setting),
                escape(&r.sets.join(", ")),
                r.cells_finished,
                r.cells,
                r.figures.results,
                r.figures.html_cells(&key),
                PairedFigures::html_cells(r.paired.as_ref(), &key),
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
