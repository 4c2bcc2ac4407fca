//! What a run leaves for people and other tools: TensorBoard event files, figures, the report.

use crate::common::*;
use std::path::PathBuf;
use std::sync::OnceLock;
use train::trainer::run_experiment;

/// Two finished runs on one small cache (the full network and a GFM-only ablation, folds 0 and 1)
/// shared by the tests of this module; made once per test binary.
fn finished_runs() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static RUNS: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cache = synthetic_cache(dir.path(), 3, 6, 2, 4);
        let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 4);
        cfg.folds = Some(vec![0, 1]);
        cfg.train.eval_every = 2;
        let a = run_experiment(&cfg, opts("both")).unwrap().dir;
        cfg.model.branches = train::config::Branches::Gfm;
        cfg.name = "tiny-gfm".into();
        let b = run_experiment(&cfg, opts("gfm")).unwrap().dir;
        (dir, a, b)
    })
}

#[test]
fn tensorboard_reads_every_epoch_scalar_of_metrics_jsonl() {
    let (_, run, _) = finished_runs();
    let Some(py) = python("tensorboard_reads_every_epoch_scalar_of_metrics_jsonl") else {
        return;
    };
    // `tensorboard --logdir` loads runs through the multiplexer; this reads them the same way
    // (and its record reader checks both CRCs of every frame).
    let script = r#"
import json, sys
from tensorboard.backend.event_processing import event_multiplexer
m = event_multiplexer.EventMultiplexer()
m.AddRunsFromDirectory(sys.argv[1])
m.Reload()
out = {}
for run, tags in m.Runs().items():
    acc = m.GetAccumulator(run)
    out[run] = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}
print(json.dumps(out))
"#;
    let out = std::process::Command::new(py)
        .args(["-c", script])
        .arg(run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'tensorboard'") {
        panic!("the .venv lacks tensorboard: run `make setup` (it installs it)");
    }
    assert!(out.status.success(), "{stderr}");
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let metrics = train::outputs::read_metrics(run).unwrap();
    for fold in ["fold0", "fold1"] {
        let tb = &runs[format!("fold-{fold}")];
        assert!(tb.is_object(), "no TensorBoard run fold-{fold}: {runs}");
        let hist: Vec<_> = metrics.iter().filter(|r| r.fold == fold).collect();
        assert_eq!(hist.len(), 4);
        let series = |tag: &str| -> Vec<(i64, f64)> {
            tb[tag]
                .as_array()
                .unwrap_or_else(|| panic!("no {tag} in {tb}"))
                .iter()
                .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
                .collect()
        };
        let close = |tag: &str, got: Vec<(i64, f64)>, want: Vec<(i64, f64)>| {
            assert_eq!(got.len(), want.len(), "{fold} {tag}");
            for ((gs, gv), (ws, wv)) in got.iter().zip(&want) {
                assert_eq!(gs, ws, "{fold} {tag} step");
                // simple_value is an f32.
                assert!(
                    (gv - wv).abs() <= 1e-6 * wv.abs().max(1.0),
                    "{fold} {tag} step {gs}: {gv} vs {wv}"
                );
            }
        };
        let each = |f: &dyn Fn(&train::outputs::EpochRecord) -> Option<f64>| {
            hist.iter()
                .filter_map(|r| f(r).map(|v| (r.epoch as i64, v)))
                .collect::<Vec<_>>()
        };
        close("loss/total", series("loss/total"), each(&|r| Some(r.loss)));
        close(
            "loss/global",
            series("loss/global"),
            each(&|r| Some(r.loss_global)),
        );
        close(
            "loss/local",
            series("loss/local"),
            each(&|r| Some(r.loss_local)),
        );
        close(
            "accuracy/train",
            series("accuracy/train"),
            each(&|r| Some(r.train_accuracy)),
        );
        close("lr", series("lr"), each(&|r| Some(r.lr)));
        close(
            "samples_per_s",
            series("samples_per_s"),
            each(&|r| Some(r.samples_per_s)),
        );
        let test = each(&|r| r.test_accuracy);
        assert_eq!(test.iter().map(|p| p.0).collect::<Vec<_>>(), [2, 4]);
        close("accuracy/test", series("accuracy/test"), test);
        // Balanced accuracy and macro-F1 at the evaluated epochs, from their confusion matrices.
        // metrics.jsonl drops the confusion matrices; the checkpoint keeps them.
        let ck: serde_json::Value = serde_json::from_slice(
            &std::fs::read(run.join(format!("fold-{fold}/checkpoint.json"))).unwrap(),
        )
        .unwrap();
        let full: Vec<train::outputs::EpochRecord> =
            serde_json::from_value(ck["history"].clone()).unwrap();
        let from_history = |f: fn(&train::outputs::Confusion) -> f64| {
            full.iter()
                .filter_map(|r| {
                    r.confusion.as_ref().map(|c| {
                        (
                            r.epoch as i64,
                            f(&train::outputs::Confusion { counts: c.clone() }),
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        close(
            "test/balanced_accuracy",
            series("test/balanced_accuracy"),
            from_history(train::outputs::Confusion::balanced_accuracy),
        );
        close(
            "test/macro_f1",
            series("test/macro_f1"),
            from_history(train::outputs::Confusion::macro_f1),
        );
    }
}

#[test]
fn predictions_parquet_holds_every_test_sample_at_the_reported_epoch() {
    let (_, a, _) = finished_runs();
    let summary: train::outputs::RunSummary =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    let mut pooled = 0u64;
    for r in &summary.folds {
        let rows = train::outputs::read_predictions(
            &a.join(format!("fold-{}/predictions.parquet", r.fold)),
        )
        .unwrap();
        let n: u64 = r.confusion.iter().flatten().sum();
        assert_eq!(rows.len() as u64, n, "{}: one row per test sample", r.fold);
        pooled += n;
        // The rows are the reported epoch's predictions: they rebuild its confusion matrix.
        let mut conf = train::outputs::Confusion::new(summary.classes.len());
        for row in &rows {
            conf.add(row.label as usize, row.predicted as usize);
            let sum: f32 = row.probabilities.iter().sum();
            assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
            let argmax = row
                .probabilities
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &p)| if p > b.1 { (i, p) } else { b })
                .0;
            assert_eq!(argmax as i64, row.predicted);
            assert!(!row.sample_id.is_empty() && !row.subject.is_empty());
        }
        assert_eq!(conf.counts, r.confusion, "{}", r.fold);
        let m = r.metrics.as_ref().expect("result.json carries the metrics");
        assert_eq!(m.samples, n);
        assert!((m.balanced_accuracy - conf.balanced_accuracy()).abs() < 1e-12);
        assert!((m.macro_f1 - conf.macro_f1()).abs() < 1e-12);
        assert!(m.accuracy_ci.0 <= m.accuracy + 1e-12 && m.accuracy <= m.accuracy_ci.1 + 1e-12);
    }
    assert_eq!(summary.pooled.samples, pooled);
    assert_eq!(summary.pooled.classes.support.iter().sum::<u64>(), pooled);
    let md = std::fs::read_to_string(a.join("summary.md")).unwrap();
    for want in [
        "balanced accuracy",
        "macro-F1",
        "95 % bootstrap CI",
        "| class | precision | recall | F1 | support |",
    ] {
        assert!(md.contains(want), "summary.md lacks {want}:\n{md}");
    }
    // pandas / pyarrow users read the same table.
    let Some(py) = python("predictions_parquet_holds_every_test_sample_at_the_reported_epoch")
    else {
        return;
    };
    let out = stdout_of_success(
        std::process::Command::new(py)
            .args([
                "-c",
                "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); \
                 print(t.num_rows, ','.join(t.column_names))",
            ])
            .arg(a.join("fold-fold0/predictions.parquet")),
    );
    let (rows, cols) = out.trim().split_once(' ').unwrap();
    let n: u64 = summary.folds[0].confusion.iter().flatten().sum();
    assert_eq!(rows.parse::<u64>().unwrap(), n);
    let want = [
        "record",
        "sample_id",
        "subject",
        "label",
        "label_name",
        "predicted",
        "predicted_name",
        "correct",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(summary.classes.iter().map(|c| format!("p_{c}")))
    .collect::<Vec<_>>()
    .join(",");
    assert_eq!(cols, want);
}

#[test]
fn mcnemar_counts_the_samples_only_one_run_gets_right() {
    let (_, a, b) = finished_runs();
    let c = train::report::compare(&[a.clone(), b.clone()]).unwrap();
    let m = c.paired[0]
        .mcnemar
        .as_ref()
        .expect("both runs have predictions");
    let (mut n, mut only_a, mut only_b) = (0u64, 0u64, 0u64);
    for fold in ["fold0", "fold1"] {
        let read = |run: &std::path::Path| {
            train::outputs::read_predictions(&run.join(format!("fold-{fold}/predictions.parquet")))
                .unwrap()
                .into_iter()
                .map(|r| (r.sample_id.clone(), r.correct()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (x, y) = (read(a), read(b));
        assert_eq!(x.len(), y.len(), "the same test samples");
        for (id, ra) in &x {
            let rb = y[id];
            n += 1;
            only_a += (*ra && !rb) as u64;
            only_b += (!*ra && rb) as u64;
        }
    }
    assert_eq!(
        (m.samples, m.only_first, m.only_second),
        (n, only_a, only_b)
    );
    assert_eq!(m.p, train::report::mcnemar_exact_p(only_a, only_b));
    let md = c.markdown();
    assert!(
        md.contains(&format!("{only_a} / {only_b} (of {n})")),
        "{md}"
    );
    // The CSV carries it per run (empty for the baseline).
    let df = c.runs_table().unwrap();
    let p = df
        .column("p_mcnemar_vs_first")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    assert_eq!((p.get(0), p.get(1)), (None, Some(m.p)));
}

#[test]
fn figures_name_the_classes_axes_and_reported_epoch_in_png_and_svg() {
    let (_, run, _) = finished_runs();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    for fold in ["fold-fold0", "fold-fold1"] {
        let dir = run.join(fold);
        let svg = svg_texts(&dir.join("confusion.svg"));
        for class in summary["classes"].as_array().unwrap() {
            assert!(
                svg.iter().any(|t| t == class.as_str().unwrap()),
                "{fold}: class {class}"
            );
        }
        assert!(svg.iter().any(|t| t == "predicted class"));
        assert!(svg.iter().any(|t| t == "true class"));
        // Every cell shows its count: the counts of the reported epoch's matrix.
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
        let counts = result["confusion"].as_array().unwrap();
        assert_eq!(counts.len(), 3);
        for row in counts {
            let total: u64 = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum();
            for v in row.as_array().unwrap() {
                let v = v.as_u64().unwrap();
                assert!(svg.contains(&v.to_string()), "{fold}: count {v}");
                if total > 0 {
                    let pct = format!("{:.0} %", 100.0 * v as f64 / total as f64);
                    assert!(svg.contains(&pct), "{fold}: {pct}");
                }
            }
        }
        let curves = svg_texts(&dir.join("curves.svg"));
        for label in [
            "epoch",
            "accuracy (%)",
            "learning rate",
            "training",
            "test",
            "GFM (global)",
        ] {
            assert!(
                curves.iter().any(|t| t == label),
                "{fold}: curves lack {label}"
            );
        }
        let epoch = result["epoch"].as_u64().unwrap();
        let marked = format!("reported epoch {epoch}");
        assert!(curves.contains(&marked), "{fold}");
        for png in ["confusion.png", "curves.png"] {
            let img = image::open(dir.join(png)).unwrap().to_rgb8();
            // Not blank: many distinct colours (text, cells, lines).
            let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
            colours.sort();
            colours.dedup();
            assert!(
                colours.len() > 20,
                "{fold}/{png}: {} colours",
                colours.len()
            );
        }
    }
}

/// The text contents of an SVG's `<text>` elements, trimmed.
fn svg_texts(path: &std::path::Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap();
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..t.find("</text>")?];
            Some(body.trim().to_string())
        })
        .collect()
}

#[test]
fn report_lists_differing_settings_folds_epochs_and_the_paired_comparison() {
    let (_, a, b) = finished_runs();
    let c = train::report::compare(&[a.clone(), b.clone()]).unwrap();
    // Exactly what the ablation changed (and the experiment's name).
    assert_eq!(
        c.differing.keys().collect::<Vec<_>>(),
        ["model.branches", "name"],
        "{:?}",
        c.differing
    );
    let md = c.markdown();
    for want in [
        "| `model.branches` | \"both\" | \"gfm\" |",
        "| 1 | tiny/both | finished | 2 of 2 |",
        "fold0: 4/4".replace("fold0: ", "").as_str(),
        "## Paired comparison with #1",
    ] {
        assert!(md.contains(want), "markdown lacks {want}:\n{md}");
    }
    // The fold table holds each run's accuracy and the difference, from result.json.
    for fold in ["fold0", "fold1"] {
        let acc = |run: &std::path::Path| {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(run.join(format!("fold-{fold}/result.json"))).unwrap(),
            )
            .unwrap();
            v["accuracy"].as_f64().unwrap()
        };
        let (x, y) = (acc(a), acc(b));
        let row = format!(
            "| {fold} | {:.2} | {:.2} | {:+.2} |",
            100.0 * x,
            100.0 * y,
            100.0 * (y - x)
        );
        assert!(md.contains(&row), "markdown lacks {row}:\n{md}");
    }
    let p = &c.paired[0];
    assert_eq!(p.folds.len(), 2);
    let d: Vec<f64> = p.folds.iter().map(|f| f.2 - f.1).collect();
    assert!((p.mean_difference - (d[0] + d[1]) / 2.0).abs() < 1e-12);
    assert!(p.p_permutation >= 0.5, "two folds cannot give p < 0.5");
    assert_eq!(p.better + p.worse + p.equal, 2);

    // The binary writes the same tables as CSV (runs, and per fold beside it) and Markdown.
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("ablation.csv");
    let printed = stdout_of_success(
        std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .arg("report")
            .args([a, b])
            .arg("--csv")
            .arg(&csv)
            .arg("--markdown")
            .arg(out.path().join("ablation.md")),
    );
    assert!(printed.contains("## Settings that differ"), "{printed}");
    let runs_csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(runs_csv.lines().count(), 3, "{runs_csv}");
    assert!(runs_csv.lines().next().unwrap().contains("model.branches"));
    let folds_csv = std::fs::read_to_string(out.path().join("ablation.folds.csv")).unwrap();
    assert_eq!(folds_csv.lines().count(), 5, "{folds_csv}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("ablation.md")).unwrap(),
        md
    );
}

#[test]
fn report_marks_unfinished_runs_with_epochs_run_and_planned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 6, 2, 4);
    let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 4);
    cfg.folds = Some(vec![0, 1]);
    let run = run_stopped_after(&cfg, "cut", None, 2);
    let c = train::report::compare(std::slice::from_ref(&run)).unwrap();
    let r = &c.runs[0];
    assert!(!r.finished());
    assert_eq!(
        r.status(),
        "unfinished: 0 of 2 folds, fold0 at epoch 2 of 4"
    );
    assert_eq!(
        r.folds
            .iter()
            .map(|f| (f.fold.as_str(), f.epochs_run))
            .collect::<Vec<_>>(),
        [("fold0", 2), ("fold1", 0)]
    );
    let md = c.markdown();
    assert!(md.contains("| fold0 | unfinished (2/4) |"), "{md}");
    assert!(md.contains("| fold1 | unfinished (0/4) |"), "{md}");
    // The HTML page is written for unfinished runs too.
    let page = train::report::html(&c).unwrap();
    assert!(page.contains("unfinished: 2 of 4 epochs"));
}

#[test]
fn html_report_renders_in_chromium_with_the_summary_numbers() {
    let (_, a, b) = finished_runs();
    let Some(chromium) = testkit::program(
        "HTML report test",
        &["chromium", "chromium-browser", "google-chrome"],
    ) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("report.html");
    stdout_of_success(
        std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .arg("report")
            .args([a, b])
            .arg("--html")
            .arg(&page),
    );
    let text = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no scripts, nothing fetched (the only URL is the SVG namespace name).
    for banned in ["<script", " src=", "href=", "url(", "@import"] {
        assert!(!text.contains(banned), "the page has {banned}");
    }
    let browser = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let o = std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The DOM after Chromium parsed the page.
    let dom = browser(&["--dump-dom"]);
    let value = |field: &str, run: usize, fold: Option<&str>| -> f64 {
        let mut key = format!("data-field=\"{field}\" data-run=\"{run}\"");
        if let Some(f) = fold {
            key.push_str(&format!(" data-fold=\"{f}\""));
        }
        let at = dom.find(&key).unwrap_or_else(|| panic!("DOM lacks {key}"));
        let rest = &dom[at..];
        let v = &rest[rest.find("data-value=\"").unwrap() + 12..];
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    let attr = |field: &str, run: usize, name: &str| -> f64 {
        let key = format!("data-field=\"{field}\" data-run=\"{run}\"");
        let at = dom.find(&key).unwrap_or_else(|| panic!("DOM lacks {key}"));
        let rest = &dom[at..];
        let v = &rest[rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2..];
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    for (n, run) in [(1, a), (2, b)] {
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
        // The run's accuracy cell (the runs table precedes the per-fold one): the mean in
        // data-value, the std in data-std.
        assert!((value("accuracy", n, None) - s["mean"].as_f64().unwrap()).abs() < 1e-12);
        assert!((attr("accuracy", n, "data-std") - s["std"].as_f64().unwrap()).abs() < 1e-12);
        assert!((value("oracle_mean", n, None) - s["oracle_mean"].as_f64().unwrap()).abs() < 1e-12);
        for f in s["folds"].as_array().unwrap() {
            let fold = f["fold"].as_str().unwrap();
            let got = value("accuracy", n, Some(fold));
            assert!(
                (got - f["accuracy"].as_f64().unwrap()).abs() < 1e-12,
                "{fold}"
            );
        }
        for (class, r) in s["classes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(s["recall"].as_array().unwrap())
        {
            let got = value("recall", n, class.as_str());
            match r.as_f64() {
                Some(r) => assert!((got - r).abs() < 1e-12, "{class}"),
                None => assert!(got.is_nan()),
            }
        }
    }
    // Rendered: the screenshot is not blank (tables, text and the inline SVG figures).
    let shot = out.path().join("shot.png");
    browser(&[
        "--window-size=1400,2400",
        &format!("--screenshot={}", shot.display()),
    ]);
    let img = image::open(&shot).unwrap().to_rgb8();
    let dark = img
        .pixels()
        .filter(|p| p.0.iter().all(|c| *c < 100))
        .count();
    let blue = img
        .pixels()
        .filter(|p| p.0[2] > 90 && p.0[0] < 40 && p.0[1] < 80)
        .count();
    assert!(dark > 2_000, "{dark} dark pixels: blank page?");
    assert!(
        blue > 500,
        "{blue} confusion-cell pixels: figures not drawn?"
    );
}

#[test]
fn report_of_one_run_lists_every_setting() {
    let (_, a, _) = finished_runs();
    let c = train::report::compare(std::slice::from_ref(a)).unwrap();
    let md = c.markdown();
    for want in [
        "# Run report",
        "| `train.lr` | 0.002 |",
        "| `train.seed` | 0 |",
        "| `train.epochs` | 4 |",
    ] {
        assert!(md.contains(want), "lacks {want}:\n{md}");
    }
}
