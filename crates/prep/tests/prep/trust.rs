//! Issue 16's cases, each reproduced as a newcomer hit it and now answered: a failed build leaves
//! no cache that hides a good one, `gc` never offers the only complete cache of a name, class
//! folders get subject-level folds when told the subjects (and a warning when not), the FER2013
//! folder source points at the csv, `prep detect` on a non-image exits non-zero, and user errors
//! print once, without a backtrace.

use crate::common::*;
use prep::DatasetKind;
use std::path::Path;
use std::process::Command;

fn prep_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prep"))
}

/// Runs `prep` with `args` to the end and returns its stdout; a failure shows its stderr.
fn prep_stdout<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = prep_bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A class-folder tree of PNG faces named `P<subject>_<n>.png` (3 classes × 4 subjects × 2).
fn folders_tree(root: &Path) {
    let face = astronaut();
    for class in ["happy", "sad", "surprise"] {
        for subject in 1..=4 {
            for n in 0..2 {
                save_png(
                    &face,
                    &root.join(class).join(format!("P{subject:02}_{n}.png")),
                );
            }
        }
    }
}

#[test]
fn a_build_in_which_every_input_fails_leaves_no_cache_regression_issue16_case2() {
    let Some(models) = models("a_build_in_which_every_input_fails_leaves_no_cache") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    // A class-folder tree built as JAFFE: no name parses, every input fails.
    folders_tree(raw.path());
    let err = prep::build(
        &request(DatasetKind::Jaffe, raw.path(), caches.path(), models),
        &prep::build::NoProgress,
    )
    .unwrap_err();
    let prep::PrepError::BuildFailed {
        cache,
        reason,
        summary,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(summary.cached, 0);
    assert!(reason.contains("no input became a sample"), "{reason}");
    assert!(!cache.join(shard::MANIFEST_FILE).exists());
    assert!(cache.join("failures.parquet").exists());
    assert!(shard::Cache::open(cache).is_err());
    let listed = shard::list_caches(caches.path()).unwrap();
    assert!(
        matches!(listed[0].state, shard::CacheState::Failed(_)),
        "{:?}",
        listed[0].state
    );
    assert!(shard::resolve_cache(caches.path(), "jaffe").is_err());
    // `prep cache failures` lists them from the failed build.
    let text = prep_stdout([
        std::ffi::OsStr::new("cache"),
        "failures".as_ref(),
        cache.as_os_str(),
    ]);
    assert!(
        text.contains("bad_name") && text.contains("24 inputs (24 failed"),
        "{text}"
    );
}

#[test]
fn class_folders_get_subject_folds_from_a_regex_or_a_csv_regression_issue16_case5() {
    let Some(models) = models("class_folders_get_subject_folds") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    folders_tree(raw.path());
    let folds_of = |dir: &Path| {
        let mut m: std::collections::BTreeMap<String, std::collections::BTreeSet<u16>> =
            Default::default();
        for r in shard::Cache::open(dir).unwrap().iter() {
            let r = r.unwrap();
            m.entry(r.meta.subject.clone())
                .or_default()
                .insert(r.meta.split.fold().unwrap());
        }
        m
    };
    // By regex: 4 subjects, each in exactly one fold.
    let caches = tempfile::tempdir().unwrap();
    let mut req = request(
        DatasetKind::Folders,
        raw.path(),
        caches.path(),
        models.clone(),
    );
    req.config.folds = 4;
    req.config.subject_regex = Some(r"^(?P<subject>P\d+)_".into());
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let folds = folds_of(&out.dir);
    assert_eq!(folds.len(), 4, "{folds:?}");
    assert!(folds.values().all(|f| f.len() == 1), "{folds:?}");
    assert_eq!(out.manifest.extra["notes"]["folds_by"], "subject");
    // By csv, with one file left out: it fails as no_subject and the counts add up.
    let csv = raw.path().join("../subjects.csv");
    let mut rows = String::from("file,subject\n");
    for class in ["happy", "sad", "surprise"] {
        for subject in 1..=4 {
            for n in 0..2 {
                if (class, subject, n) != ("sad", 3, 1) {
                    rows.push_str(&format!("{class}/P{subject:02}_{n}.png,person{subject}\n"));
                }
            }
        }
    }
    std::fs::write(&csv, rows).unwrap();
    let caches = tempfile::tempdir().unwrap();
    let mut req = request(
        DatasetKind::Folders,
        raw.path(),
        caches.path(),
        models.clone(),
    );
    req.config.folds = 4;
    req.subjects_file = Some(csv.clone());
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert_eq!(out.summary.cached, 23);
    assert_eq!(out.summary.failed.get("no_subject"), Some(&1));
    assert!(out.summary.adds_up());
    let folds = folds_of(&out.dir);
    assert_eq!(
        folds.keys().cloned().collect::<Vec<_>>(),
        ["person1", "person2", "person3", "person4"]
    );
    assert!(folds.values().all(|f| f.len() == 1), "{folds:?}");
    let _ = std::fs::remove_file(&csv);
    // Without either: image-level folds, said in the manifest and, loudly, by `prep build`.
    let caches = tempfile::tempdir().unwrap();
    let (source, cache_dir) = (raw.path().as_os_str(), caches.path().as_os_str());
    let text = prep_stdout([
        "build".as_ref(),
        "--dataset".as_ref(),
        "folders".as_ref(),
        "--qa-samples".as_ref(),
        "0".as_ref(),
        "--source".as_ref(),
        source,
        "--cache-dir".as_ref(),
        cache_dir,
    ]);
    assert!(
        text.contains("IMAGE-LEVEL") && text.contains("--subject-regex"),
        "{text}"
    );
}

#[test]
fn gc_keeps_the_only_complete_cache_of_a_name_and_says_why_regression_issue16_case1() {
    let Some(models) = models("gc_keeps_the_only_complete_cache_of_a_name") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    folders_tree(raw.path());
    let caches = tempfile::tempdir().unwrap();
    let mut req = request(DatasetKind::Folders, raw.path(), caches.path(), models);
    req.name = Some("unreferenced-name".into());
    req.qa_samples = 0;
    let good = prep::build(&req, &prep::build::NoProgress).unwrap();
    let experiments = tempfile::tempdir().unwrap();
    std::fs::write(
        experiments.path().join("x.toml"),
        "cache = \"something-else\"\n",
    )
    .unwrap();
    let text = prep_stdout([
        std::ffi::OsStr::new("cache"),
        "gc".as_ref(),
        "--cache-dir".as_ref(),
        caches.path().as_os_str(),
        "--experiments".as_ref(),
        experiments.path().as_os_str(),
    ]);
    assert!(
        text.contains("keep") && text.contains("the only complete cache named unreferenced-name"),
        "{text}"
    );
    assert!(!text.contains("would remove  unreferenced"), "{text}");
    assert!(good.dir.join(shard::MANIFEST_FILE).exists());
}

#[test]
fn cli_errors_print_once_without_backtrace_and_point_at_the_fix_regression_issue16_case9() {
    let tmp = tempfile::tempdir().unwrap();
    // A missing source: one line, the cause once, no backtrace even when asked for one.
    let out = prep_bin()
        .env("RUST_BACKTRACE", "1")
        .args([
            "build",
            "--dataset",
            "jaffe",
            "--source",
            "/nonexistent.csv",
            "--cache-dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.matches("dataset source not found").count(), 1, "{err}");
    assert!(
        !err.contains("backtrace") && !err.contains("Caused by"),
        "{err}"
    );
    // FER2013 given the folder: the error names the csv it expects.
    let out = prep_bin()
        .args(["build", "--dataset", "fer2013", "--source"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("fer2013.csv"), "{err}");
    // `prep detect` on a file that is not an image exits non-zero after printing its table.
    let not_image = tmp.path().join("notes.txt");
    std::fs::write(&not_image, "hello").unwrap();
    if models("cli_errors_print_once").is_some() {
        let out = prep_bin().arg("detect").arg(&not_image).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("notes.txt"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 1 inputs failed"));
    }
}

#[test]
fn a_fer2013_csv_without_header_names_the_header_not_the_pixels_regression_issue16_case9() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer2013.csv");
    let pixels = vec!["128"; 2304].join(" ");
    std::fs::write(
        &csv,
        format!("0,{pixels},Training\n3,{pixels},PublicTest\n"),
    )
    .unwrap();
    let err = prep::datasets::fer2013::inventory(&csv, None, 3)
        .unwrap_err()
        .to_string();
    assert!(err.len() < 400, "{} characters: {err}", err.len());
    assert!(
        err.contains("emotion,pixels,Usage") && err.contains(":1:"),
        "{err}"
    );
}
