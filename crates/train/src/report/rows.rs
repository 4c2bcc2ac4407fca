//! The row model of every report table: the figures a row shows, whether the row is a run (over
//! its folds) or a sweep's setting (over its seeds and folds), and its comparison with the
//! table's baseline. Markdown, CSV and HTML render these cells and columns from here, so a run
//! report and an ablation table cannot show the same figure two ways.

use super::stats::McNemar;
use crate::outputs::{
    fold_mean_std, mean_std, pooled_confusion, Confusion, FoldResult, Metrics, POOLED_BOOTSTRAP_KEY,
};
use polars::prelude::Column;
use serde::Serialize;

/// A fraction as a percentage with two decimals, `–` when not finite.
pub(crate) fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}", 100.0 * x)
    } else {
        "–".into()
    }
}

/// A p value: four decimals, or two significant digits below 10⁻⁴ (never a bare `0.0000`).
pub(crate) fn p_value(p: f64) -> String {
    if p >= 1e-4 || p == 0.0 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// The figures of one row, over its finished results (folds, or (seed, fold) pairs).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FigureRow {
    /// Finished results the figures are over.
    pub results: usize,
    /// Test accuracy: mean and sample std over the results.
    pub accuracy: (f64, f64),
    /// Balanced accuracy (mean class accuracy): mean and sample std.
    pub balanced_accuracy: (f64, f64),
    /// Macro-F1: mean and sample std.
    pub macro_f1: (f64, f64),
    /// Every result's test samples pooled (the summed confusion matrices), with 95 % bootstrap
    /// intervals and per-class scores.
    pub pooled: Metrics,
}

/// The Markdown header cells of [`FigureRow::markdown_cells`].
pub const FIGURE_HEADERS: [&str; 5] = [
    "accuracy (mean ± std, %)",
    "balanced accuracy (mean ± std, %)",
    "macro-F1 (mean ± std, %)",
    "pooled accuracy [95 % CI] (%)",
    "pooled macro-F1 [95 % CI] (%)",
];

impl FigureRow {
    /// The figures of `results` (finished folds' results) over `classes` classes.
    pub fn of(results: &[&FoldResult], classes: usize) -> FigureRow {
        FigureRow {
            results: results.len(),
            accuracy: mean_std(&results.iter().map(|r| r.accuracy).collect::<Vec<_>>()),
            balanced_accuracy: fold_mean_std(results, Confusion::balanced_accuracy),
            macro_f1: fold_mean_std(results, Confusion::macro_f1),
            pooled: pooled_confusion(classes, results).metrics(&[POOLED_BOOTSTRAP_KEY]),
        }
    }

    /// A mean with its spread: `–` without results, the value alone for one result (a single
    /// split has no spread to show), else `mean ± std`.
    pub fn spread(&self, (m, sd): (f64, f64)) -> String {
        match self.results {
            0 => "–".into(),
            1 => pct(m),
            _ => format!("{} ± {}", pct(m), pct(sd)),
        }
    }

    fn interval(&self, v: f64, (lo, hi): (f64, f64)) -> String {
        if self.results == 0 {
            "–".into()
        } else {
            format!("{} [{}, {}]", pct(v), pct(lo), pct(hi))
        }
    }

    /// The cells under [`FIGURE_HEADERS`].
    pub fn markdown_cells(&self) -> [String; 5] {
        [
            self.spread(self.accuracy),
            self.spread(self.balanced_accuracy),
            self.spread(self.macro_f1),
            self.interval(self.pooled.accuracy, self.pooled.accuracy_ci),
            self.interval(self.pooled.macro_f1, self.pooled.macro_f1_ci),
        ]
    }

    /// The same cells as HTML `<td>`s, the exact fractions in `data-value` (`data-std`,
    /// `data-low`, `data-high`); `key` is the row's attribute (`data-run="2"`,
    /// `data-setting="gfm"`).
    pub fn html_cells(&self, key: &str) -> String {
        let pm = |field: &str, (m, sd): (f64, f64)| {
            if self.results == 0 {
                return "<td>–</td>".to_string();
            }
            format!(
                "<td data-field=\"{field}\" {key} data-value=\"{m}\" data-std=\"{sd}\">{}</td>",
                self.spread((m, sd))
            )
        };
        let ci = |field: &str, v: f64, (lo, hi): (f64, f64)| {
            if self.results == 0 {
                return "<td>–</td>".to_string();
            }
            format!(
                "<td data-field=\"{field}\" {key} data-value=\"{v}\" data-low=\"{lo}\" data-high=\"{hi}\">{}</td>",
                self.interval(v, (lo, hi))
            )
        };
        [
            pm("accuracy", self.accuracy),
            pm("balanced_accuracy", self.balanced_accuracy),
            pm("macro_f1", self.macro_f1),
            ci(
                "pooled_accuracy",
                self.pooled.accuracy,
                self.pooled.accuracy_ci,
            ),
            ci(
                "pooled_macro_f1",
                self.pooled.macro_f1,
                self.pooled.macro_f1_ci,
            ),
        ]
        .concat()
    }

    /// The HTML header cells of [`FigureRow::html_cells`].
    pub fn html_headers() -> String {
        FIGURE_HEADERS
            .iter()
            .map(|h| format!("<th>{h}</th>"))
            .collect()
    }

    /// The table columns of `rows` (percentages): mean and std of accuracy, balanced accuracy
    /// and macro-F1, the pooled figures and their interval bounds.
    pub fn columns(rows: &[&FigureRow]) -> Vec<Column> {
        let f = |name: &str, v: &dyn Fn(&FigureRow) -> f64| {
            Column::new(
                name.into(),
                rows.iter().map(|r| 100.0 * v(r)).collect::<Vec<_>>(),
            )
        };
        vec![
            f("accuracy_mean_pct", &|r| r.accuracy.0),
            f("accuracy_std_pct", &|r| r.accuracy.1),
            f("balanced_accuracy_mean_pct", &|r| r.balanced_accuracy.0),
            f("balanced_accuracy_std_pct", &|r| r.balanced_accuracy.1),
            f("macro_f1_mean_pct", &|r| r.macro_f1.0),
            f("macro_f1_std_pct", &|r| r.macro_f1.1),
            f("pooled_accuracy_pct", &|r| r.pooled.accuracy),
            f("pooled_accuracy_ci_low_pct", &|r| r.pooled.accuracy_ci.0),
            f("pooled_accuracy_ci_high_pct", &|r| r.pooled.accuracy_ci.1),
            f("pooled_balanced_accuracy_pct", &|r| {
                r.pooled.balanced_accuracy
            }),
            f("pooled_macro_f1_pct", &|r| r.pooled.macro_f1),
            f("pooled_macro_f1_ci_low_pct", &|r| r.pooled.macro_f1_ci.0),
            f("pooled_macro_f1_ci_high_pct", &|r| r.pooled.macro_f1_ci.1),
        ]
    }
}

/// A row against the table's baseline over the results both finished (folds, or (seed, fold)
/// pairs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedFigures {
    /// Shared results.
    pub pairs: usize,
    /// Mean accuracy difference (this − baseline).
    pub mean_difference: f64,
    /// Two-sided sign-flip permutation p of the mean difference.
    pub p_permutation: f64,
    /// McNemar's exact test over the shared test samples (`None` when a fold lacks
    /// `predictions.parquet`).
    pub mcnemar: Option<McNemar>,
}

/// The Markdown header cells of [`PairedFigures::markdown_cells`].
pub const PAIRED_HEADERS: [&str; 4] = [
    "Δ accuracy vs baseline (points)",
    "p (sign-flip)",
    "McNemar only baseline / only this",
    "p (McNemar)",
];

impl PairedFigures {
    /// The cells under [`PAIRED_HEADERS`] for `paired` (`None`: the baseline itself).
    pub fn markdown_cells(paired: Option<&PairedFigures>) -> [String; 4] {
        match paired {
            None => ["baseline".into(), "–".into(), "–".into(), "–".into()],
            Some(x) => [
                format!("{:+.2} over {} pairs", 100.0 * x.mean_difference, x.pairs),
                p_value(x.p_permutation),
                x.mcnemar.as_ref().map_or("–".into(), |m| {
                    format!("{} / {} (of {})", m.only_first, m.only_second, m.samples)
                }),
                x.mcnemar.as_ref().map_or("–".into(), |m| p_value(m.p)),
            ],
        }
    }

    /// The same as HTML `<td>`s (`difference`, `p_permutation`, `p_mcnemar`, the exact value in
    /// `data-value`); `key` as for [`FigureRow::html_cells`].
    pub fn html_cells(paired: Option<&PairedFigures>, key: &str) -> String {
        let cell = |field: &str, v: Option<f64>, shown: String| match v {
            Some(x) => format!("<td data-field=\"{field}\" {key} data-value=\"{x}\">{shown}</td>"),
            None => "<td>–</td>".into(),
        };
        let mc = paired.and_then(|p| p.mcnemar.as_ref());
        [
            cell(
                "difference",
                paired.map(|p| p.mean_difference),
                paired.map_or(String::new(), |p| {
                    format!("{:+.2}", 100.0 * p.mean_difference)
                }),
            ),
            cell(
                "p_permutation",
                paired.map(|p| p.p_permutation),
                paired.map_or(String::new(), |p| p_value(p.p_permutation)),
            ),
            cell(
                "p_mcnemar",
                mc.map(|m| m.p),
                mc.map_or(String::new(), |m| {
                    format!("{} ({} / {})", p_value(m.p), m.only_first, m.only_second)
                }),
            ),
        ]
        .concat()
    }

    /// The HTML header cells of [`PairedFigures::html_cells`].
    pub fn html_headers() -> &'static str {
        "<th>Δ accuracy vs baseline (points)</th><th>p (sign-flip)</th><th>p (McNemar)</th>"
    }

    /// The table columns of `rows` (`None`: the baseline): the difference in points and both p
    /// values.
    pub fn columns(rows: &[Option<&PairedFigures>]) -> Vec<Column> {
        vec![
            Column::new(
                "difference_from_baseline_pct".into(),
                rows.iter()
                    .map(|p| p.map(|p| 100.0 * p.mean_difference))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "p_permutation".into(),
                rows.iter()
                    .map(|p| p.map(|p| p.p_permutation))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "p_mcnemar".into(),
                rows.iter()
                    .map(|p| p.and_then(|p| p.mcnemar.as_ref()).map(|m| m.p))
                    .collect::<Vec<_>>(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_result_shows_no_spread_and_none_shows_a_dash() {
        let mut r = FigureRow {
            results: 1,
            accuracy: (0.618, 0.0),
            ..Default::default()
        };
        assert_eq!(r.markdown_cells()[0], "61.80");
        r.results = 3;
        r.accuracy = (0.618, 0.05);
        assert_eq!(r.markdown_cells()[0], "61.80 ± 5.00");
        r.results = 0;
        assert_eq!(r.markdown_cells()[0], "–");
        assert_eq!(r.markdown_cells()[3], "–");
    }
}
