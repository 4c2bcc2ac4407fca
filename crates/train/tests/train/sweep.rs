//! Sweeps, overrides and job arrays: `train run --set`, `train sweep` (one process, interrupted
//! and resumed) and `scripts/slurm/train-array.sbatch` run as Slurm would run it, on the
//! `[sweep]` table of `manifests/experiments/demo-ablation.toml` at tiny size.
//!
//! Every training here runs in a process of its own with one libtorch thread: libtorch's random
//! generator is global to a process, and the tests of this binary run in parallel.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo sweep's `[sweep]` table over a small experiment on `cache`, written as
/// `<dir>/<stem>.toml` with its runs under `runs`.
fn tiny_sweep_file(dir: &Path, stem: &str, cache: &Path, runs: &Path) -> PathBuf {
    let manifest = repo_root().join("manifests/experiments/demo-ablation.toml");
    let demo: toml::Table = toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let mut cfg = small_experiment(cache, runs, 2);
    cfg.train.mixup_alpha = 0.0;
    let mut t: toml::Table = toml::from_str(&cfg.to_toml().unwrap()).unwrap();
    t.insert("sweep".into(), demo["sweep"].clone());
    let path = dir.join(format!("{stem}.toml"));
    std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
    path
}

fn train_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train"))
}

/// Every (cell, fold) result of a sweep directory, by cell and fold.
fn fold_results(sweep_dir: &Path) -> Vec<(String, train::outputs::FoldResult)> {
    let plan = train::sweep::read_plan(sweep_dir).unwrap();
    let mut out = Vec::new();
    for c in &plan.cells {
        for f in &plan.folds {
            let p = sweep_dir
                .join(&c.name)
                .join(format!("fold-{f}/result.json"));
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((
                format!("{}/{f}", c.name),
                serde_json::from_slice(&bytes).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn set_overrides_keys_with_the_files_types_and_refuses_unknown_keys_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, toml) = one_fold_experiment(dir.path(), 1);
    // A typo: refused with the nearest key, and nothing is created.
    let out = train_bin()
        .args(["run", "--config"])
        .arg(&toml)
        .args(["--set", "model.branchs=gfm", "--run-name", "typo"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--set model.branchs=gfm") && err.contains("nearest: model.branches"),
        "{err}"
    );
    assert!(!cfg.runs_dir.join(&cfg.name).join("typo").exists());
    // A value of the wrong type or range, also refused up front.
    for (bad, want) in [
        ("train.seed=two", "invalid type"),
        ("model.branches=sideways", "unknown variant"),
        ("train.epochs=0", "must be positive"),
    ] {
        let out = train_bin()
            .args(["run", "--config"])
            .arg(&toml)
            .args(["--set", bad, "--run-name", "bad"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{bad}: {err}");
    }
    assert!(!cfg.runs_dir.join(&cfg.name).join("bad").exists());
    // Accepted overrides land in config.toml (resolved) and run.json (as given).
    stdout_of_success(
        train_bin()
            .args(["run", "--config"])
            .arg(&toml)
            .args(["--set", "model.branches=gfm", "--set", "train.seed=7"])
            .args(["--run-name", "set"]),
    );
    let run = cfg.runs_dir.join(&cfg.name).join("set");
    let written = train::ExperimentConfig::load(&run.join("config.toml")).unwrap();
    assert_eq!(written.model.branches, train::config::Branches::Gfm);
    assert_eq!(written.train.seed, 7);
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run_json["overrides"],
        serde_json::json!(["model.branches=gfm", "train.seed=7"])
    );
}

/// The demo sweep at tiny size, three ways: one `train sweep` process interrupted by SIGINT in
/// its third cell and run again; the Slurm array script, task by task, two at a time, then its
/// report job. The fold results (accuracy, confusion, metrics, epoch histories) are identical,
/// and the ablation table has balanced accuracy, macro-F1, intervals and McNemar.
#[test]
fn sweep_survives_an_interruption_and_equals_the_slurm_array_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 6, 2, 4);

    // One process, interrupted in its third cell.
    let single = tiny_sweep_file(dir.path(), "single", &cache, &dir.path().join("runs-a"));
    let sweep = train::sweep::Sweep::load(&single).unwrap();
    assert_eq!(sweep.cells.len(), 6, "3 settings × 2 seeds");
    let third = sweep.dir().join(&sweep.cells[2].name);
    let mut child = train_bin()
        .args(["sweep", "--config"])
        .arg(&single)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !third.join("fold-fold0/checkpoint.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the third cell never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stopped by SIGINT: {err}");
    assert!(err.contains("continues where it stopped"), "{err}");
    assert!(
        !third.join("summary.json").exists(),
        "the third cell was interrupted"
    );
    let again = stdout_of_success(train_bin().args(["sweep", "--config"]).arg(&single));
    assert!(again.contains("finished, kept"), "{again}");
    assert!(again.contains("# Ablation"), "{again}");

    // The Slurm array, as Slurm runs it: SLURM_ARRAY_TASK_ID per task, then REPORT=1.
    let array = tiny_sweep_file(dir.path(), "array", &cache, &dir.path().join("runs-b"));
    let n: usize = stdout_of_success(
        train_bin()
            .args(["sweep", "--count", "--config"])
            .arg(&array),
    )
    .trim()
    .parse()
    .unwrap();
    assert_eq!(n, 12, "6 cells × 2 folds");
    let script = repo_root().join("scripts/slurm/train-array.sbatch");
    let task = |envs: &[(&str, String)]| {
        let mut c = Command::new("bash");
        c.arg(&script)
            .env("SLURM_SUBMIT_DIR", dir.path())
            .env("TRAIN", env!("CARGO_BIN_EXE_train"))
            .env("CONFIG", &array);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let finish = |c: std::process::Child, what: &str| {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // Two tasks at a time: the two folds of one cell share its run directory.
    for i in (0..n).step_by(2) {
        let a = task(&[("SLURM_ARRAY_TASK_ID", i.to_string())]);
        let b = task(&[("SLURM_ARRAY_TASK_ID", (i + 1).to_string())]);
        finish(a, &format!("task {i}"));
        finish(b, &format!("task {}", i + 1));
    }
    finish(task(&[("REPORT", "1".into())]), "report job");

    let sweep_a = sweep.dir();
    let sweep_b = train::sweep::Sweep::load(&array).unwrap().dir();
    let (ra, rb) = (fold_results(&sweep_a), fold_results(&sweep_b));
    assert_eq!(ra.len(), 12);
    assert_eq!(
        ra, rb,
        "the array's fold results equal the single process's"
    );
    for c in &sweep.cells {
        let m = |d: &Path| strip(train::outputs::read_metrics(&d.join(&c.name)).unwrap());
        assert_eq!(m(&sweep_a), m(&sweep_b), "{}: epoch histories", c.name);
    }

    // The ablation table.
    let report = train::report::ablation(&sweep_b).unwrap();
    let names: Vec<&str> = report.rows.iter().map(|r| r.setting.as_str()).collect();
    assert_eq!(names, ["branches-both", "branches-gfm", "branches-pbm"]);
    let test_samples: u64 = ra[..2]
        .iter()
        .map(|(_, r)| r.confusion.iter().flatten().sum::<u64>())
        .sum();
    for r in &report.rows {
        assert_eq!(
            (r.cells_finished, r.cells, r.figures.results),
            (2, 2, 4),
            "{}",
            r.setting
        );
        assert_eq!(
            r.figures.pooled.samples,
            2 * test_samples,
            "two seeds of every test sample"
        );
        assert!(r.figures.pooled.accuracy_ci.0 <= r.figures.pooled.accuracy);
        assert!(r.figures.pooled.accuracy <= r.figures.pooled.accuracy_ci.1);
        match &r.paired {
            None => assert_eq!(r.setting, "branches-both"),
            Some(p) => {
                assert_eq!(p.pairs, 4);
                let m = p.mcnemar.as_ref().expect("predictions of every fold");
                assert_eq!(m.samples, 2 * test_samples);
            }
        }
    }
    let md = report.markdown();
    for want in [
        "balanced accuracy",
        "macro-F1",
        "95 % CI",
        "p (McNemar)",
        "`model.branches = \"gfm\"`",
    ] {
        assert!(md.contains(want), "ablation table lacks {want}:\n{md}");
    }
    for f in ["ablation.md", "ablation.csv", "ablation.html"] {
        assert!(sweep_b.join(f).is_file(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(sweep_b.join("ablation.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    // The HTML page carries the exact values.
    let html = std::fs::read_to_string(sweep_b.join("ablation.html")).unwrap();
    for r in &report.rows {
        let cell = format!(
            "data-field=\"pooled_accuracy\" data-setting=\"{}\" data-value=\"{}\"",
            r.setting, r.figures.pooled.accuracy
        );
        assert!(html.contains(&cell), "ablation.html lacks {cell}");
        if let Some(m) = r.paired.as_ref().and_then(|p| p.mcnemar.as_ref()) {
            let cell = format!(
                "data-field=\"p_mcnemar\" data-setting=\"{}\" data-value=\"{}\"",
                r.setting, m.p
            );
            assert!(html.contains(&cell), "ablation.html lacks {cell}");
        }
    }
    // `train sweep --list` maps every task to its cell and fold.
    let list = stdout_of_success(
        train_bin()
            .args(["sweep", "--list", "--config"])
            .arg(&array),
    );
    assert!(
        list.contains("| 11 | branches-pbm.seed-2 | fold1 |"),
        "{list}"
    );
    // `train report <sweep dir>` prints the same table.
    let printed = stdout_of_success(train_bin().arg("report").arg(&sweep_b));
    assert!(printed.contains(&md), "{printed}");
}
