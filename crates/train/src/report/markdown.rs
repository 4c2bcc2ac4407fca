//! The report as Markdown (`train report` prints it; `--markdown FILE` writes it), rendered from
//! the rows of [`Comparison::run_rows`] and [`Comparison::fold_rows`].

use super::compare::{Comparison, FoldRow};
use super::rows::{p_value, pct, FIGURE_HEADERS};
use std::collections::BTreeSet;

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The cell of `fold` for one run in the per-fold matrix: the accuracy, or what is missing.
pub(crate) fn fold_cell(row: Option<&FoldRow>) -> String {
    match row {
        Some(FoldRow {
            accuracy: Some(a), ..
        }) => pct(*a),
        Some(f) => format!("unfinished ({}/{})", f.epochs_run, f.epochs_planned),
        None => "not run".into(),
    }
}

impl Comparison {
    /// The report as Markdown: runs, differing settings, per-fold accuracies (with differences
    /// from the baseline), the paired comparison and per-class recall.
    pub fn markdown(&self) -> String {
        let mut s = String::from(if self.runs.len() == 1 {
            "# Run report\n\n## Run\n\n"
        } else {
            "# Run comparison\n\n## Runs\n\n"
        });
        s.push_str(&format!(
            "| # | run | status | folds finished | {} | oracle mean (%) | epochs run / planned | \
             cache key | git revision | device |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            FIGURE_HEADERS.join(" | ")
        ));
        for r in self.run_rows() {
            let epochs: Vec<String> = r
                .epochs
                .iter()
                .map(|(_, run, planned)| format!("{run}/{planned}"))
                .collect();
            s.push_str(&format!(
                "| {} | {} | {} | {} of {} | {} | {} | {} | `{}` | {} | {} |\n",
                r.index,
                md_escape(&r.label),
                r.status,
                r.folds_finished,
                r.folds_total,
                r.figures.markdown_cells().join(" | "),
                r.oracle_mean.map(pct).unwrap_or_else(|| "–".into()),
                epochs.join(", "),
                r.short_key(),
                md_escape(&r.git_revision),
                md_escape(&r.device),
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
        let rows = self.fold_rows();
        for fold in self.fold_names() {
            s.push_str(&format!("| {fold} |"));
            let of_run = |run: usize| rows.iter().find(|f| f.run == run && f.fold == fold);
            for run in 1..=self.runs.len() {
                s.push_str(&format!(" {} |", fold_cell(of_run(run))));
            }
            for run in 2..=self.runs.len() {
                let cell = match of_run(run).and_then(|f| f.difference_from_first) {
                    Some(d) => format!("{:+.2}", 100.0 * d),
                    None => "–".into(),
                };
                s.push_str(&format!(" {cell} |"));
            }
            s.push('\n');
        }
        if !self.paired.is_empty() {
            s.push_str(
                "\n## Paired comparison with #1 over shared finished folds\n\n\
                 | run | shared folds | mean difference (points) | std | paired t | \
                 p (sign-flip permutation) | better / worse / equal | McNemar: only #1 right / \
                 only this right (of samples) | p (McNemar exact) |\n\
                 |---|---|---|---|---|---|---|---|---|\n",
            );
            for (i, p) in self.paired.iter().enumerate() {
                s.push_str(&format!(
                    "| #{} {} | {} | {:+.2} | {:.2} | {} | {:.4} | {} / {} / {} | {} | {} |\n",
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
                    p.equal,
                    p.mcnemar.as_ref().map_or("–".into(), |m| format!(
                        "{} / {} (of {})",
                        m.only_first, m.only_second, m.samples
                    )),
                    p.mcnemar.as_ref().map_or("–".into(), |m| p_value(m.p)),
                ));
            }
            s.push_str(
                "\nThe permutation test flips the sign of each fold's difference (exact over all \
                 patterns): with k folds the smallest attainable two-sided p is 2/2^k. McNemar's \
                 exact test pools the test samples of the shared folds (matched by sample id) and \
                 asks whether the samples only one of the two models gets right split evenly \
                 (binomial, p = ½); `–` where a run has no `predictions.parquet`.\n",
            );
        }
        let classes = &self.runs[0].classes;
        if self.runs.iter().all(|r| r.classes == *classes) && !classes.is_empty() {
            s.push_str(
                "\n## Per class over finished folds: precision / recall / F1 (%)\n\n| class |",
            );
            for i in 0..self.runs.len() {
                s.push_str(&format!(" #{} |", i + 1));
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(self.runs.len()));
            s.push('\n');
            let scores: Vec<_> = self
                .runs
                .iter()
                .map(|r| r.pooled_confusion().class_scores())
                .collect();
            let opt = |v: Option<&Option<f64>>| match v {
                Some(Some(x)) => pct(*x),
                _ => "–".into(),
            };
            for (ci, c) in classes.iter().enumerate() {
                s.push_str(&format!("| {} |", md_escape(c)));
                for sc in &scores {
                    s.push_str(&format!(
                        " {} / {} / {} |",
                        opt(sc.precision.get(ci)),
                        opt(sc.recall.get(ci)),
                        opt(sc.f1.get(ci))
                    ));
                }
                s.push('\n');
            }
        }
        s
    }
}
