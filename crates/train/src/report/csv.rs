//! The report's two tables as polars frames (`train report --csv FILE` writes them as FILE and
//! FILE's `.folds.csv`), built from [`Comparison::run_rows`] and [`Comparison::fold_rows`].

use super::compare::Comparison;
use crate::{Result, TrainError};
use polars::prelude::{Column, DataFrame};
use std::path::PathBuf;

impl Comparison {
    /// One row per run: label, status, the differing settings, cache key, git revision, folds
    /// finished, accuracy / balanced accuracy / macro-F1 mean and std over folds (%), the pooled
    /// figures with their 95 % bootstrap intervals (%), the permutation and McNemar p values
    /// against run #1, oracle mean (%).
    ///
    /// Errors: [`TrainError::Table`] when polars refuses the columns.
    pub fn runs_table(&self) -> Result<DataFrame> {
        let rows = self.run_rows();
        let col = |name: &str, f: &dyn Fn(&super::RunRow) -> String| {
            Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
        };
        let mut cols = vec![
            col("run", &|r| r.label.clone()),
            col("status", &|r| r.status.clone()),
        ];
        for (i, k) in self.differing.keys().enumerate() {
            cols.push(col(k, &|r| r.differing[i].clone()));
        }
        cols.push(col("cache_key", &|r| r.cache_key.clone()));
        cols.push(col("git_revision", &|r| r.git_revision.clone()));
        cols.push(Column::new(
            "folds_finished".into(),
            rows.iter()
                .map(|r| r.folds_finished as u32)
                .collect::<Vec<_>>(),
        ));
        cols.extend(super::rows::FigureRow::columns(
            &rows.iter().map(|r| &r.figures).collect::<Vec<_>>(),
        ));
        // The paired comparison with run #1 (empty for #1 itself).
        let paired = |r: &super::RunRow| self.paired.get(r.index.wrapping_sub(2));
        cols.push(Column::new(
            "p_permutation_vs_first".into(),
            rows.iter()
                .map(|r| paired(r).map(|p| p.p_permutation))
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "p_mcnemar_vs_first".into(),
            rows.iter()
                .map(|r| paired(r).and_then(|p| p.mcnemar.as_ref()).map(|m| m.p))
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "oracle_mean_pct".into(),
            rows.iter()
                .map(|r| r.oracle_mean.map(|m| 100.0 * m))
                .collect::<Vec<_>>(),
        ));
        DataFrame::new(rows.len(), cols).map_err(table_err)
    }

    /// One row per (run, fold): epochs run and planned, accuracy, balanced accuracy, macro-F1,
    /// their bootstrap intervals, reported epoch, oracle accuracy, and the difference from the
    /// baseline on that fold.
    ///
    /// Errors: [`TrainError::Table`] when polars refuses the columns.
    pub fn folds_table(&self) -> Result<DataFrame> {
        let rows = self.fold_rows();
        let pct = |v: Option<f64>| v.map(|x| 100.0 * x);
        DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "run".into(),
                    rows.iter().map(|r| r.label.clone()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "fold".into(),
                    rows.iter().map(|r| r.fold.clone()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "status".into(),
                    rows.iter()
                        .map(|r| if r.finished { "finished" } else { "unfinished" })
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "epochs_run".into(),
                    rows.iter().map(|r| r.epochs_run as u32).collect::<Vec<_>>(),
                ),
                Column::new(
                    "epochs_planned".into(),
                    rows.iter()
                        .map(|r| r.epochs_planned as u32)
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "accuracy_pct".into(),
                    rows.iter().map(|r| pct(r.accuracy)).collect::<Vec<_>>(),
                ),
                Column::new(
                    "balanced_accuracy_pct".into(),
                    rows.iter()
                        .map(|r| pct(r.balanced_accuracy))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "macro_f1_pct".into(),
                    rows.iter().map(|r| pct(r.macro_f1)).collect::<Vec<_>>(),
                ),
                Column::new(
                    "accuracy_ci_low_pct".into(),
                    rows.iter()
                        .map(|r| pct(r.accuracy_ci.map(|c| c.0)))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "accuracy_ci_high_pct".into(),
                    rows.iter()
                        .map(|r| pct(r.accuracy_ci.map(|c| c.1)))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "macro_f1_ci_low_pct".into(),
                    rows.iter()
                        .map(|r| pct(r.macro_f1_ci.map(|c| c.0)))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "macro_f1_ci_high_pct".into(),
                    rows.iter()
                        .map(|r| pct(r.macro_f1_ci.map(|c| c.1)))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "reported_epoch".into(),
                    rows.iter()
                        .map(|r| r.reported_epoch.map(|e| e as u32))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "oracle_pct".into(),
                    rows.iter().map(|r| pct(r.oracle)).collect::<Vec<_>>(),
                ),
                Column::new(
                    "difference_from_first_pct".into(),
                    rows.iter()
                        .map(|r| pct(r.difference_from_first))
                        .collect::<Vec<_>>(),
                ),
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
