//! The report's two tables as polars frames (`train report --csv FILE` writes them as FILE and
//! FILE's `.folds.csv`), built from [`Comparison::run_rows`] and [`Comparison::fold_rows`].

use super::compare::Comparison;
use crate::{Result, TrainError};
use polars::prelude::{Column, DataFrame};
use std::path::PathBuf;

impl Comparison {
    /// One row per run: label, status, the differing settings, cache key, git revision, folds
    /// finished, mean and std (%), oracle mean (%).
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
        cols.push(Column::new(
            "accuracy_mean_pct".into(),
            rows.iter().map(|r| 100.0 * r.mean).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "accuracy_std_pct".into(),
            rows.iter().map(|r| 100.0 * r.std).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "oracle_mean_pct".into(),
            rows.iter()
                .map(|r| r.oracle_mean.map(|m| 100.0 * m))
                .collect::<Vec<_>>(),
        ));
        DataFrame::new(rows.len(), cols).map_err(table_err)
    }

    /// One row per (run, fold): epochs run and planned, accuracy, reported epoch, oracle
    /// accuracy, and the difference from the baseline on that fold.
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
