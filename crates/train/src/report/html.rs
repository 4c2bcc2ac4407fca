//! `train report --html`: one static, self-contained HTML file for one run or a comparison — no
//! network, no script; figures are inline SVG drawn by [`super::figures`]. The tables are the rows
//! of [`Comparison::run_rows`] and [`Comparison::fold_rows`], as in the Markdown and CSV.
//!
//! Numbers carry their exact value in `data-value` attributes (fractions, not rounded
//! percentages) so that tests and scripts can read the page back; `data-run` and `data-fold`
//! name the cell's run (its index from 1) and fold.

use super::compare::Comparison;
use super::rows::{p_value, pct, FigureRow};
use crate::outputs::figures;
use crate::outputs::Confusion;
use crate::Result;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 24px 32px; color: #1b1b1b; max-width: 1500px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #c8c8c8; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #eef1f5; } td.text, th.text { text-align: left; }
tr.differs td, td.differs { background: #fff3b0; }
td.unfinished { color: #9a3b00; font-style: italic; }
td.better { color: #0b6b2b; } td.worse { color: #a4161a; }
code { font-size: 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.figures svg { border: 1px solid #ddd; max-width: 100%; height: auto; }
details { margin: 8px 0; } summary { cursor: pointer; }
.note { color: #555; font-size: 13px; }
"#;

/// A numeric cell: shown as a percentage, exact fraction in `data-value`.
fn num_cell(field: &str, run: usize, fold: Option<&str>, v: f64, extra_class: &str) -> String {
    format!(
        "<td class=\"{extra_class}\" data-field=\"{field}\" data-run=\"{run}\"{} data-value=\"{v}\">{}</td>",
        fold.map(|f| format!(" data-fold=\"{}\"", escape(f)))
            .unwrap_or_default(),
        pct(v)
    )
}

/// The report page.
///
/// Errors: a figure that cannot be drawn (no font: [`crate::TrainError::Figure`]).
pub fn html(c: &Comparison) -> Result<String> {
    let single = c.runs.len() == 1;
    let title = if single {
        format!("MGLN run {}", c.runs[0].label)
    } else {
        format!("MGLN: {} runs compared", c.runs.len())
    };
    let mut h = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"train {}\"><title>{}</title><style>{STYLE}</style></head><body>\n\
         <h1>{}</h1>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&title),
        escape(&title)
    );

    // Runs.
    h.push_str(&format!(
        "<h2>Runs</h2>\n<table id=\"runs\"><tr><th>#</th><th class=\"text\">run</th>\
         <th class=\"text\">status</th><th>folds finished</th>{}\
         <th>oracle mean (%)</th><th class=\"text\">epochs run / planned</th>\
         <th class=\"text\">cache key</th><th class=\"text\">git revision</th>\
         <th class=\"text\">device</th><th class=\"text\">directory</th></tr>\n",
        FigureRow::html_headers()
    ));
    for r in c.run_rows() {
        let n = r.index;
        let epochs: Vec<String> = r
            .epochs
            .iter()
            .map(|(fold, run, planned)| format!("{fold}: {run}/{planned}"))
            .collect();
        let status_class = if r.finished {
            "text"
        } else {
            "text unfinished"
        };
        h.push_str(&format!(
            "<tr data-run=\"{n}\"><td>{n}</td><td class=\"text\" data-field=\"label\">{}</td>\
             <td class=\"{status_class}\" data-field=\"status\">{}</td><td>{} of {}</td>{}{}\
             <td class=\"text\">{}</td><td class=\"text\"><code data-field=\"cache_key\" data-value=\"{}\" title=\"{}\">{}…</code></td>\
             <td class=\"text\"><code>{}</code></td><td class=\"text\">{}</td>\
             <td class=\"text\"><code>{}</code></td></tr>\n",
            escape(&r.label),
            escape(&r.status),
            r.folds_finished,
            r.folds_total,
            r.figures.html_cells(&format!("data-run=\"{n}\"")),
            match r.oracle_mean {
                Some(m) => num_cell("oracle_mean", n, None, m, ""),
                None => "<td>–</td>".into(),
            },
            escape(&epochs.join(", ")),
            escape(&r.cache_key),
            escape(&r.cache_key),
            escape(r.short_key()),
            escape(&r.git_revision),
            escape(&r.device),
            escape(&r.dir.display().to_string()),
        ));
    }
    h.push_str(
        "</table>\n<p class=\"note\">Accuracy: test accuracy at each fold's reported epoch \
         (final, or best on validation), mean and sample standard deviation over finished folds. \
         Oracle: the best test epoch per fold — selected on the test data, shown only for \
         comparison with numbers reported that way.</p>\n",
    );

    // Settings.
    if !single {
        h.push_str("<h2>Settings that differ</h2>\n");
        if c.differing.is_empty() {
            h.push_str("<p>None: the runs have identical configurations.</p>\n");
        } else {
            h.push_str("<table id=\"differing\"><tr><th class=\"text\">setting</th>");
            for i in 0..c.runs.len() {
                h.push_str(&format!("<th class=\"text\">#{}</th>", i + 1));
            }
            h.push_str("</tr>\n");
            for (k, vals) in &c.differing {
                h.push_str(&format!(
                    "<tr class=\"differs\"><td class=\"text\"><code>{}</code></td>",
                    escape(k)
                ));
                for v in vals {
                    h.push_str(&format!(
                        "<td class=\"text\"><code>{}</code></td>",
                        escape(v)
                    ));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        }
    }
    h.push_str("<details><summary>All settings</summary><table id=\"settings\"><tr><th class=\"text\">setting</th>");
    for i in 0..c.runs.len() {
        h.push_str(&format!("<th class=\"text\">#{}</th>", i + 1));
    }
    h.push_str("</tr>\n");
    let keys: std::collections::BTreeSet<&String> =
        c.runs.iter().flat_map(|r| r.settings.keys()).collect();
    for k in keys {
        let cls = if c.differing.contains_key(k) {
            " class=\"differs\""
        } else {
            ""
        };
        h.push_str(&format!(
            "<tr{cls}><td class=\"text\"><code>{}</code></td>",
            escape(k)
        ));
        for r in &c.runs {
            h.push_str(&format!(
                "<td class=\"text\"><code>{}</code></td>",
                escape(r.settings.get(k).map(String::as_str).unwrap_or("—"))
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table></details>\n");

    // Per fold.
    h.push_str(
        "<h2>Test accuracy per fold (%)</h2>\n<table id=\"folds\"><tr><th class=\"text\">fold</th>",
    );
    for i in 0..c.runs.len() {
        h.push_str(&format!("<th>#{}</th><th>epoch</th>", i + 1));
    }
    for i in 1..c.runs.len() {
        h.push_str(&format!("<th>#{} − #1</th>", i + 1));
    }
    h.push_str("</tr>\n");
    let rows = c.fold_rows();
    for fold in c.fold_names() {
        h.push_str(&format!("<tr><td class=\"text\">{}</td>", escape(&fold)));
        let of_run = |run: usize| rows.iter().find(|f| f.run == run && f.fold == fold);
        for run in 1..=c.runs.len() {
            match of_run(run) {
                Some(f) if f.finished => {
                    h.push_str(&num_cell(
                        "accuracy",
                        run,
                        Some(&fold),
                        f.accuracy.unwrap_or(f64::NAN),
                        "",
                    ));
                    h.push_str(&format!("<td>{}</td>", f.reported_epoch.unwrap_or(0)));
                }
                other => h.push_str(&format!(
                    "<td class=\"unfinished\" colspan=\"2\">{}</td>",
                    match other {
                        Some(f) =>
                            format!("unfinished ({}/{} epochs)", f.epochs_run, f.epochs_planned),
                        None => "not run".into(),
                    }
                )),
            }
        }
        for run in 2..=c.runs.len() {
            match of_run(run).and_then(|f| f.difference_from_first) {
                Some(d) => {
                    let cls = if d > 1e-12 {
                        "better"
                    } else if d < -1e-12 {
                        "worse"
                    } else {
                        ""
                    };
                    h.push_str(&format!(
                        "<td class=\"{cls}\" data-field=\"difference\" data-run=\"{run}\" data-fold=\"{}\" data-value=\"{d}\">{:+.2}</td>",
                        escape(&fold),
                        100.0 * d
                    ));
                }
                None => h.push_str("<td>–</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");

    if !c.paired.is_empty() {
        h.push_str(
            "<h2>Paired comparison with #1</h2>\n<table id=\"paired\"><tr><th class=\"text\">run</th>\
             <th>shared finished folds</th><th>mean difference (points)</th><th>std</th>\
             <th>paired t</th><th>p (sign-flip permutation)</th><th>better / worse / equal</th>\
             <th>McNemar: only #1 right / only this right (samples)</th><th>p (McNemar exact)</th></tr>\n",
        );
        for (i, p) in c.paired.iter().enumerate() {
            h.push_str(&format!(
                "<tr><td class=\"text\">#{} {}</td><td>{}</td><td data-field=\"mean_difference\" data-run=\"{}\" data-value=\"{}\">{:+.2}</td>\
                 <td>{:.2}</td><td>{}</td><td>{:.4}</td><td>{} / {} / {}</td>{}</tr>\n",
                i + 2,
                escape(&p.run),
                p.folds.len(),
                i + 2,
                p.mean_difference,
                100.0 * p.mean_difference,
                100.0 * p.std_difference,
                if p.t.is_finite() { format!("{:.2}", p.t) } else { "–".into() },
                p.p_permutation,
                p.better,
                p.worse,
                p.equal,
                match &p.mcnemar {
                    Some(m) => format!(
                        "<td>{} / {} ({})</td><td data-field=\"p_mcnemar\" data-run=\"{}\" data-value=\"{}\">{}</td>",
                        m.only_first, m.only_second, m.samples, i + 2, m.p, p_value(m.p)
                    ),
                    None => "<td>–</td><td>–</td>".into(),
                }
            ));
        }
        h.push_str(
            "</table>\n<p class=\"note\">The permutation test flips the sign of each shared \
             fold's difference (exact over all patterns up to 20 folds): with k folds the \
             smallest attainable two-sided p is 2/2<sup>k</sup>. McNemar's exact test pools the \
             shared folds' test samples, matched by sample id, and tests whether the samples only \
             one model gets right split evenly.</p>\n",
        );
    }

    // Recall.
    let classes = &c.runs[0].classes;
    if !classes.is_empty() && c.runs.iter().all(|r| r.classes == *classes) {
        h.push_str("<h2>Recall per class over finished folds (%)</h2>\n<table id=\"recall\"><tr><th class=\"text\">class</th>");
        for i in 0..c.runs.len() {
            h.push_str(&format!("<th>#{}</th>", i + 1));
        }
        h.push_str("</tr>\n");
        let recalls: Vec<Vec<f64>> = c.runs.iter().map(|r| r.recall()).collect();
        for (ci, name) in classes.iter().enumerate() {
            h.push_str(&format!("<tr><td class=\"text\">{}</td>", escape(name)));
            for (ri, r) in recalls.iter().enumerate() {
                let v = r.get(ci).copied().unwrap_or(f64::NAN);
                h.push_str(&num_cell("recall", ri + 1, Some(name), v, ""));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
        h.push_str(
            "<h2>Precision and F1 per class over finished folds (%)</h2>\n<table id=\"class-scores\">\
             <tr><th class=\"text\">class</th>",
        );
        for i in 0..c.runs.len() {
            h.push_str(&format!(
                "<th>#{} precision</th><th>#{} F1</th>",
                i + 1,
                i + 1
            ));
        }
        h.push_str("</tr>\n");
        let scores: Vec<_> = c
            .runs
            .iter()
            .map(|r| r.pooled_confusion().class_scores())
            .collect();
        for (ci, name) in classes.iter().enumerate() {
            h.push_str(&format!("<tr><td class=\"text\">{}</td>", escape(name)));
            for (ri, sc) in scores.iter().enumerate() {
                for (field, v) in [("precision", &sc.precision), ("f1", &sc.f1)] {
                    let v = v.get(ci).copied().flatten().unwrap_or(f64::NAN);
                    h.push_str(&num_cell(field, ri + 1, Some(name), v, ""));
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    // Figures per run and fold.
    for (i, r) in c.runs.iter().enumerate() {
        h.push_str(&format!(
            "<h2>#{} {}: confusion matrices and training curves</h2>\n",
            i + 1,
            escape(&r.label)
        ));
        for f in &r.folds {
            h.push_str(&format!(
                "<h3>{} — {}</h3>\n<div class=\"figures\">",
                escape(&f.fold),
                match &f.result {
                    Some(res) => format!(
                        "test accuracy {} % at epoch {} ({})",
                        pct(res.accuracy),
                        res.epoch,
                        escape(&res.selection)
                    ),
                    None => format!(
                        "unfinished: {} of {} epochs",
                        f.epochs_run, f.epochs_planned
                    ),
                }
            ));
            if let Some(res) = &f.result {
                if !res.confusion.is_empty() {
                    let conf = Confusion {
                        counts: res.confusion.clone(),
                    };
                    let title = format!("{} · epoch {}", f.fold, res.epoch);
                    h.push_str(&figures::svg_string(
                        figures::confusion_size(conf.counts.len()),
                        |root| figures::draw_confusion(root, &conf, &r.classes, &title),
                    )?);
                }
            }
            if !f.history.is_empty() {
                let selected = f.result.as_ref().map(|x| x.epoch).unwrap_or(0);
                h.push_str(&figures::svg_string(figures::CURVES_SIZE, |root| {
                    figures::draw_curves(
                        root,
                        &f.history,
                        selected,
                        &format!("{} · training curves", f.fold),
                    )
                })?);
            }
            h.push_str("</div>\n");
        }
    }
    h.push_str(&format!(
        "<p class=\"note\">Written by <code>train report --html</code> (train {}).</p>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    ));
    Ok(h)
}
