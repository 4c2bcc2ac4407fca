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
    let Some(py) = python() else {
        println!("skipped: tensorboard test: no .venv/bin/python (run `make setup`)");
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
    let metrics = train::report::read_metrics(run).unwrap();
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
        let each = |f: &dyn Fn(&train::report::EpochRecord) -> Option<f64>| {
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
    }
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
