//! A trained run used outside Rust: `train export` → the PyTorch module `fer_shard.mgln` and an
//! ONNX graph in ONNX Runtime, against `train predict`'s own scores on the same inputs
//! (`--dump-crops`), for MGLN (the demo network: both branches, per-channel deformable sampling)
//! and the plain CNN baseline; `--csv` / `--jsonl` output and the exit status.

use super::{fixture, repo, small_config};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `train` binary beside this test binary (`cargo test --workspace` builds it).
fn train_bin() -> Command {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("train");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with --workspace",
        bin.display()
    );
    Command::new(bin)
}

/// A two-epoch run of fold 0 on the synthetic CK+ cache with `overrides` (`model.kind=cnn`).
fn trained(root: &Path, name: &str, overrides: &[&str]) -> PathBuf {
    let runs = root.join("runs-export");
    let text = small_config(&PathBuf::from("x"), &runs, "[0]", 2)
        .to_toml()
        .unwrap();
    let overrides: Vec<train::config::overrides::Override> =
        overrides.iter().map(|o| o.parse().unwrap()).collect();
    let mut cfg =
        train::ExperimentConfig::parse_with_overrides(&text, Path::new("export.toml"), &overrides)
            .unwrap();
    cfg.cache = fixture().unwrap().ck.dir.display().to_string();
    cfg.name = name.into();
    let file = root.join(format!("{name}.toml"));
    std::fs::write(&file, cfg.to_toml().unwrap()).unwrap();
    let out = train_bin()
        .args(["run", "--config"])
        .arg(&file)
        .args(["--run-name", "r"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    runs.join(name).join("r")
}

/// The largest differences `python -m fer_shard.onnx check` reports, or None when the .venv is
/// missing (skipped).
fn parity(model: &Path, dump: &Path, test: &str) -> Option<serde_json::Value> {
    let py = testkit::venv_python(test)?;
    let run = |args: &[&str]| {
        let out = Command::new(&py)
            .args(["-m", "fer_shard.onnx"])
            .args(args)
            .current_dir(repo())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("No module named 'onnx"),
            "the .venv lacks onnx / onnxruntime: run `make setup` (it installs them)"
        );
        assert!(out.status.success(), "{args:?}: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let m = model.to_str().unwrap();
    run(&["export", m]);
    let onnx = model.join("model.onnx");
    let out = run(&[
        "check",
        m,
        dump.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    Some(serde_json::from_str(&out).unwrap())
}

fn exports_and_matches(name: &str, overrides: &[&str], test: &str) {
    let Some(fx) = fixture() else { return };
    let root = fx.root.join(format!("export-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let run = trained(&root, name, overrides);
    let model = root.join("model");
    let out = train_bin()
        .arg("export")
        .arg(&run)
        .args(["--fold", "0", "--data-licence", "synthetic test data"])
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "fer-mgln-model/1");
    assert_eq!(meta["classes"].as_array().unwrap().len(), 7);
    assert_eq!(meta["fold"]["name"], "fold0");
    assert!(meta["preprocessing"].is_object(), "the cache's recipe");
    let tta = overrides.contains(&"train.tta_flip=true");
    assert_eq!(meta["tta_flip"], tta);
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    for want in [
        "Intended use",
        "synthetic test data",
        "balanced accuracy",
        "not ground truth",
    ] {
        assert!(card.contains(want), "model card lacks {want}:\n{card}");
    }

    // train predict on a sequence, a still image and a blank frame: CSV, JSONL, the dump.
    let raw = &fx.raw;
    let seq = raw.join("ckplus/cohn-kanade-images/S501/003");
    let still = raw.join("ckplus/cohn-kanade-images/S502/001/S502_001_00000004.png");
    let blank = root.join("blank.png");
    face::GrayImage::filled(200, 150, 128)
        .save_png(&blank)
        .unwrap();
    let (csv, jsonl, dump) = (root.join("p.csv"), root.join("p.jsonl"), root.join("dump"));
    let out = train_bin()
        .args(["predict", "--device", "cpu", "--fold", "0", "--run"])
        .arg(&run)
        .arg("--csv")
        .arg(&csv)
        .arg("--jsonl")
        .arg(&jsonl)
        .arg("--dump-crops")
        .arg(&dump)
        .args([&seq, &still, &blank])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a failed input makes the exit status non-zero"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "a header and one row per input:\n{text}");
    assert_eq!(rows[0].len(), 8 + 7 + 136);
    assert_eq!(&rows[0][..3], ["input", "class", "error"]);
    for r in &rows[1..3] {
        assert_eq!(r.len(), rows[0].len());
        assert!(r[2].is_empty() && !r[1].is_empty(), "{r:?}");
        let p: f64 = r[8..15].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-4);
        assert!(
            r[15..].iter().all(|v| v.parse::<f64>().is_ok()),
            "68 points"
        );
    }
    assert!(rows[3][2].contains("no face"), "{:?}", rows[3]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["landmarks"].as_array().unwrap().len(), 68);
    assert!(lines[2]["error"].is_string());
    for i in 0..2 {
        for f in [
            "inputs.safetensors",
            "outputs.safetensors",
            "face.png",
            "input.json",
        ] {
            assert!(dump.join(format!("{i}/{f}")).is_file(), "{i}/{f}");
        }
    }

    // The PyTorch module and ONNX Runtime against train predict.
    let Some(r) = parity(&model, &dump, test) else {
        return;
    };
    assert_eq!(r["inputs"], 2);
    let d = &r["max_abs_difference"];
    for (engine, bound) in [
        ("pytorch", 1e-5),
        ("onnxruntime", 1e-4),
        ("onnxruntime_batched", 1e-4),
    ] {
        let m = d[engine]
            .as_object()
            .unwrap_or_else(|| panic!("no {engine} in {r}"));
        assert!(
            m.contains_key("probabilities") && m.contains_key("global"),
            "{r}"
        );
        if tta && engine != "onnxruntime_batched" {
            assert!(
                m.contains_key("global_mirrored"),
                "the mirror image's scores: {r}"
            );
        }
        for (what, v) in m {
            let v = v.as_f64().unwrap();
            println!("export-parity {name} {engine} {what}: {v:.3e} (bound {bound:e})");
            assert!(v <= bound, "{engine} {what}: {v} > {bound}");
        }
    }
}

#[test]
fn mgln_exports_to_pytorch_and_onnx_with_train_predicts_scores() {
    // With flip averaging (`tta_flip`): train predict, the PyTorch module and the ONNX check
    // each average the input's and its mirror image's probabilities (the CNN test runs without).
    exports_and_matches(
        "mgln",
        &["train.tta_flip=true"],
        "mgln_exports_to_pytorch_and_onnx_with_train_predicts_scores",
    );
}

#[test]
fn cnn_baseline_exports_to_pytorch_and_onnx_with_train_predicts_scores() {
    exports_and_matches(
        "cnn",
        &["model.kind=cnn"],
        "cnn_baseline_exports_to_pytorch_and_onnx_with_train_predicts_scores",
    );
}

#[test]
fn export_refuses_an_unfinished_fold_unless_allowed() {
    let Some(fx) = fixture() else { return };
    let root = fx.root.join("export-partial");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let run = trained(&root, "partial", &[]);
    std::fs::remove_file(run.join("fold-fold0/result.json")).unwrap();
    let export = |extra: &[&str]| {
        train_bin()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(root.join("m"))
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = export(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("did not finish"),
        "{err}"
    );
    let ok = export(&["--allow-partial"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Without --fold, every fold goes into a directory of its own.
    assert!(root.join("m/fold0/model.json").is_file());
}
