//! Issue 16's training cases, each reproduced as a newcomer hit it and now answered: the binary
//! starts without any environment, a reused run name with other settings is refused (the same
//! settings continue), impossible inputs fail before a run directory exists, Ctrl-C stops
//! gracefully with the resume command, and predict refuses unfinished runs.

use crate::common::*;
use std::process::{Command, Stdio};
use train::trainer::run_experiment;

#[test]
fn the_binary_finds_libtorch_without_any_environment_regression_issue16_case3() {
    let out = stdout_of_success(
        Command::new(env!("CARGO_BIN_EXE_train"))
            .env_clear()
            .arg("env"),
    );
    assert!(out.contains("cuda"), "env -i train env: {out}");
}

#[test]
fn a_reused_run_name_with_other_settings_is_refused_regression_issue16_case4() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 6, 2, 2);
    let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 2);
    cfg.folds = Some(vec![0]);
    let first = run_experiment(&cfg, opts("same")).unwrap();
    let metrics = train::outputs::read_metrics(&first.dir).unwrap();
    // Other settings under the same name: refused, naming the differing lines; nothing changed.
    let mut other = cfg.clone();
    other.train.epochs = 3;
    let err = run_experiment(&other, opts("same"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another configuration") && err.contains("epochs = 3"),
        "{err}"
    );
    assert_eq!(train::outputs::read_metrics(&first.dir).unwrap(), metrics);
    // The same settings: continued (here: already complete, kept), not refused.
    let again = run_experiment(&cfg, opts("same")).unwrap();
    assert_eq!(again.folds, first.folds);
}

#[test]
fn impossible_inputs_fail_before_a_run_directory_exists_regression_issue16_case6() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 6, 2, 2);
    let runs = dir.path().join("runs");
    let base = small_experiment(&cache, &runs, 2);
    let mut zero = base.clone();
    zero.train.epochs = 0;
    let mut missing_fold = base.clone();
    missing_fold.folds = Some(vec![7]);
    let mut cases = vec![(zero, "epochs"), (missing_fold, "fold7")];
    if !tch::Cuda::is_available() {
        let mut cuda = base.clone();
        cuda.train.device = "cuda".into();
        cases.push((cuda, "libtorch sees no CUDA device"));
    }
    for (cfg, want) in cases {
        let err = run_experiment(&cfg, opts("bad")).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
        assert!(
            !runs.join(&cfg.name).join("bad").exists(),
            "{want}: a run directory was left"
        );
    }
}

/// Ctrl-C (SIGINT) during a run: the process stops after the current step on its own (no kill),
/// prints the run directory and the resume command, and `--resume` then ends with the metrics of
/// an uninterrupted run. `train predict` refuses the interrupted run until it is finished.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_after_the_step_and_says_how_to_resume_regression_issue16_case7() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let (cfg, toml) = one_fold_experiment(dir.path(), 4);
    let want = metrics_of_a_separate_run(&toml, &cfg, "reference");
    let run_dir = dir.path().join("runs").join(&cfg.name).join("stopped");
    let fold_dir = run_dir.join("fold-fold0");
    let train_bin = env!("CARGO_BIN_EXE_train");
    let child = Command::new(train_bin)
        .args(["run", "--config"])
        .arg(&toml)
        .args(["--run-name", "stopped"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !fold_dir.join("checkpoint.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: sends SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}{stderr}");
    let resume_cmd = format!("train run --resume {}", run_dir.display());
    assert!(stdout.contains(&resume_cmd), "printed at start: {stdout}");
    assert!(
        stderr.contains("stopped during") && stderr.contains(&resume_cmd),
        "{stderr}"
    );
    assert!(
        !fold_dir.join("result.json").exists(),
        "stopped before the fold ended"
    );
    // An unfinished run is refused by predict, before anything is loaded.
    let p = Command::new(train_bin)
        .args(["predict", "--device", "cpu", "--run"])
        .arg(&run_dir)
        .arg("nothing.png")
        .output()
        .unwrap();
    assert!(!p.status.success());
    assert!(String::from_utf8_lossy(&p.stderr).contains("--allow-partial"));
    // Resumed: the uninterrupted metrics.
    stdout_of_success(
        Command::new(train_bin)
            .args(["run", "--resume"])
            .arg(&run_dir),
    );
    assert_eq!(strip(train::outputs::read_metrics(&run_dir).unwrap()), want);
}
