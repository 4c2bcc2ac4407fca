use crate::common::*;
use train::trainer::run_experiment;

/// A k-fold run with the default training settings (augmentation, mixup, minibatches) writes
/// every output; that it learns is `learning::learns_held_out_subjects_in_kfold`.
#[test]
fn kfold_run_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 12, 3, 6);
    let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 3);
    cfg.folds = Some(vec![0, 2]);
    let out = run_experiment(&cfg, opts("a")).unwrap();
    assert_eq!(out.folds.len(), 2);
    for f in [
        "config.toml",
        "run.json",
        "metrics.jsonl",
        "summary.md",
        "summary.json",
    ] {
        assert!(out.dir.join(f).exists(), "{f}");
    }
    for fold in ["fold-fold0", "fold-fold2"] {
        for f in [
            "confusion.csv",
            "confusion.png",
            "curves.png",
            "result.json",
            "checkpoint.safetensors",
        ] {
            assert!(out.dir.join(fold).join(f).exists(), "{fold}/{f}");
        }
    }
    let metrics = train::outputs::read_metrics(&out.dir).unwrap();
    assert_eq!(metrics.len(), 6, "3 epochs of 2 folds");
    for f in &out.folds {
        assert_eq!(f.confusion.iter().flatten().sum::<u64>(), 24, "{}", f.fold);
    }
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["cache_key"].as_str().unwrap().len(), 64);

    // An ablation (GFM only) and the comparison table.
    cfg.model.branches = train::config::Branches::Gfm;
    cfg.name = "tiny-gfm".into();
    cfg.train.epochs = 2;
    let b = run_experiment(&cfg, opts("b")).unwrap();
    let c = train::report::compare(&[out.dir.clone(), b.dir.clone()]).unwrap();
    assert_eq!(c.runs_table().unwrap().height(), 2);
    assert_eq!(c.differing["model.branches"], ["\"both\"", "\"gfm\""]);
}

#[test]
fn same_seed_same_losses_and_resume_gives_the_uninterrupted_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 6, 2, 4);
    let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 4);
    cfg.folds = Some(vec![1]);
    let a = run_experiment(&cfg, opts("a")).unwrap();
    let b = run_experiment(&cfg, opts("b")).unwrap();
    let (ma, mb) = (
        strip(train::outputs::read_metrics(&a.dir).unwrap()),
        strip(train::outputs::read_metrics(&b.dir).unwrap()),
    );
    assert_eq!(ma, mb, "same seed, different metrics");
    // Interrupted after 1 and then 2 more epochs, resumed to the end.
    let c_dir = run_stopped_after(&cfg, "c", None, 1);
    run_stopped_after(&cfg, "c", Some(c_dir.clone()), 2);
    let mut o = opts("c");
    o.resume = Some(c_dir);
    let c = run_experiment(&cfg, o).unwrap();
    assert_eq!(strip(train::outputs::read_metrics(&c.dir).unwrap()), ma);
    assert_eq!(c.folds, a.folds);
    // Another seed gives other losses.
    cfg.train.seed = 9;
    let d = run_experiment(&cfg, opts("d")).unwrap();
    assert_ne!(strip(train::outputs::read_metrics(&d.dir).unwrap()), ma);
}

#[test]
fn validation_selection_never_uses_the_test_fold() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 10, 5, 3);
    let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 1);
    cfg.train.selection = train::config::Selection::Validation;
    cfg.train.validation_share = 0.25;
    let c = shard::Cache::open(&cache).unwrap();
    let infos = train::loader::sample_infos(&c).unwrap();
    let plans = train::trainer::plan_folds(&cfg, &infos).unwrap();
    assert_eq!(plans.len(), 5);
    let subject = |r: &u64| infos[*r as usize].subject.clone();
    for p in &plans {
        let test: std::collections::BTreeSet<String> = p.test.iter().map(subject).collect();
        let val: std::collections::BTreeSet<String> = p.validation.iter().map(subject).collect();
        let tr: std::collections::BTreeSet<String> = p.train.iter().map(subject).collect();
        assert!(!val.is_empty());
        assert!(
            test.is_disjoint(&val) && test.is_disjoint(&tr) && val.is_disjoint(&tr),
            "{}",
            p.name
        );
        assert_eq!(
            p.train.len() + p.validation.len() + p.test.len(),
            infos.len()
        );
    }
}

/// Regression: under `split`, a cache without a validation split (RAF-DB, AffectNet) used to
/// select "on validation" with no validation data, i.e. silently report the final epoch. Now a
/// seeded share of the training data is held out: by sample without subjects, by subject with.
#[test]
fn split_selection_without_a_validation_split_holds_out_training_data() {
    use train::loader::SampleInfo;
    let mut cfg = train::ExperimentConfig {
        protocol: train::config::Protocol::Split,
        ..Default::default()
    };
    cfg.train.selection = train::config::Selection::Validation;
    cfg.train.validation_share = 0.1;
    let info = |record: u64, subject: &str, split: shard::Split| SampleInfo {
        record,
        sample_id: format!("s{record}"),
        label: 0,
        subject: subject.into(),
        split,
        votes: Vec::new(),
    };
    let mut infos: Vec<SampleInfo> = (0..100).map(|r| info(r, "", shard::Split::Train)).collect();
    infos.extend((100..120).map(|r| info(r, "", shard::Split::Test)));
    let plans = train::trainer::plan_folds(&cfg, &infos).unwrap();
    let p = &plans[0];
    assert_eq!(
        (p.train.len(), p.validation.len(), p.test.len()),
        (90, 10, 20)
    );
    assert!(p
        .validation
        .iter()
        .all(|r| !p.train.contains(r) && *r < 100));
    // Same seed, same held-out samples; another seed, others.
    assert_eq!(
        train::trainer::plan_folds(&cfg, &infos).unwrap()[0].validation,
        p.validation
    );
    cfg.train.seed = 1;
    assert_ne!(
        train::trainer::plan_folds(&cfg, &infos).unwrap()[0].validation,
        p.validation
    );
    // With subjects, whole subjects are held out.
    for (k, i) in infos.iter_mut().enumerate().take(100) {
        i.subject = format!("P{}", k / 5);
    }
    let p = &train::trainer::plan_folds(&cfg, &infos).unwrap()[0];
    assert_eq!(p.validation.len(), 10, "2 of 20 subjects, 5 samples each");
    let subj = |r: &u64| infos[*r as usize].subject.clone();
    let held: std::collections::BTreeSet<String> = p.validation.iter().map(subj).collect();
    assert!(p.train.iter().all(|r| !held.contains(&subj(r))));
}

/// Every committed experiment TOML parses and passes the checks (a typo is an error, not a default).
#[test]
fn committed_experiment_configs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/experiments");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            train::ExperimentConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 10, "{n} experiment files");
    let e = train::ExperimentConfig::parse(
        "cache = \"x\"\n[train]\nepoch = 3\n",
        std::path::Path::new("typo.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("typo.toml:3"), "{e}");
}

/// `train run` killed with SIGKILL mid-run and resumed with `train run --resume` ends with exactly
/// the metrics of an uninterrupted run. The kill points are events in the run directory, not
/// delays (which land after the run on a fast machine): the run directory written but no epoch
/// finished, and the checkpoints of epochs 1 and 3 of 5 on disk. Each kill is checked to have hit
/// mid-work: the process died by the signal and the fold has no result yet.
#[cfg(unix)]
#[test]
fn killed_training_resumes_to_the_uninterrupted_metrics() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let (cfg, toml) = one_fold_experiment(dir.path(), 5);
    let train_bin = env!("CARGO_BIN_EXE_train");
    let want = metrics_of_a_separate_run(&toml, &cfg, "reference");
    // Kill once the fold's checkpoint records this many finished epochs (0: none yet, with the
    // run directory written).
    let finished_epochs = |fold: &std::path::Path| -> usize {
        std::fs::read(fold.join("checkpoint.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["epoch"].as_u64())
            .map_or(0, |e| e as usize + 1)
    };
    for (k, kill_after) in [0usize, 1, 3].into_iter().enumerate() {
        let name = format!("killed{k}");
        let run_dir = dir.path().join("runs").join(&cfg.name).join(&name);
        let fold_dir = run_dir.join("fold-fold0");
        let mut child = Command::new(train_bin)
            .args(["run", "--config"])
            .arg(&toml)
            .args(["--run-name", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            let reached = if kill_after == 0 {
                run_dir.join("run.json").exists()
            } else {
                finished_epochs(&fold_dir) >= kill_after
            };
            if reached {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the run ended ({status}) before {kill_after} finished epochs");
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "kill point {kill_after}: {status}"
        );
        assert!(
            !fold_dir.join("result.json").exists(),
            "kill point {kill_after}: the fold had already finished"
        );
        assert!(finished_epochs(&fold_dir) < 5, "kill point {kill_after}");
        // What a user does: resume when the run directory exists, start again when it does not.
        let mut again = Command::new(train_bin);
        if run_dir.join("config.toml").exists() {
            again.arg("run").arg("--resume").arg(&run_dir);
        } else {
            again
                .args(["run", "--config"])
                .arg(&toml)
                .args(["--run-name", &name]);
        }
        stdout_of_success(&mut again);
        let got = strip(train::outputs::read_metrics(&run_dir).unwrap());
        assert_eq!(got, want, "killed after {kill_after} epochs");
        let tmp: Vec<_> = std::fs::read_dir(run_dir.join("fold-fold0"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(tmp.is_empty());
    }
}

/// Two processes on one run directory: the second `train run --run-name same` (and a
/// `--resume` of it) is refused with the holder's pid and start time while the first runs, and
/// the first finishes with exactly the metrics of an undisturbed run. The first is paused
/// (SIGSTOP) once it holds the run's lock, so the second surely arrives while it runs. (The lock
/// of a SIGKILLed run is released by the kernel: `killed_training_resumes_to_the_uninterrupted_
/// metrics` resumes after every kill.)
#[cfg(unix)]
#[test]
fn a_second_process_on_a_running_run_directory_is_refused() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let (cfg, toml) = one_fold_experiment(dir.path(), 4);
    let train_bin = env!("CARGO_BIN_EXE_train");
    let want = metrics_of_a_separate_run(&toml, &cfg, "reference");
    let run_dir = dir.path().join("runs").join(&cfg.name).join("same");
    let start_run = || {
        Command::new(train_bin)
            .args(["run", "--config"])
            .arg(&toml)
            .args(["--run-name", "same"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let signal = |pid: u32, sig: &str| {
        assert!(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success());
    };
    let first = start_run();
    let start = Instant::now();
    // Paused once it holds the lock and has written run.json (config.toml before it), so that
    // `--resume` finds a run to continue and only the lock can refuse it.
    while shard::lock::read_holder(&run_dir).map(|h| h.pid) != Some(first.id())
        || !run_dir.join("run.json").exists()
    {
        assert!(start.elapsed() < Duration::from_secs(120), "no lock taken");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(first.id(), "STOP");
    for second in [
        start_run().wait_with_output().unwrap(),
        Command::new(train_bin)
            .arg("run")
            .arg("--resume")
            .arg(&run_dir)
            .output()
            .unwrap(),
    ] {
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(
            !second.status.success(),
            "the second process must be refused: {err}"
        );
        assert!(
            err.contains("in use by")
                && err.contains(&format!("pid {}", first.id()))
                && err.contains("since"),
            "the refusal names the holder and its start time: {err}"
        );
    }
    signal(first.id(), "CONT");
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run_dir.join("fold-fold0/result.json").is_file());
    let got = strip(train::outputs::read_metrics(&run_dir).unwrap());
    assert_eq!(got, want, "the first run's metrics, undisturbed");
}
