//! `prep build` killed with SIGKILL at several points, then run again: the final cache equals an
//! uninterrupted build (same key, byte-identical shards, same tables) and no temporary file remains.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn prep_build(raw: &Path, caches: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prep"));
    c.args([
        "build",
        "--dataset",
        "ckplus",
        "--folds",
        "none",
        "-j",
        "1",
        // The tree holds broken sequences on purpose: accept its failure rate.
        "--max-failure-rate",
        "1",
        "--source",
    ])
    .arg(raw)
    .arg("--cache-dir")
    .arg(caches)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    c
}

fn cache_dir(caches: &Path) -> std::path::PathBuf {
    std::fs::read_dir(caches)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .expect("a cache directory")
}

#[cfg(unix)]
#[test]
fn killed_builds_finish_identical_to_an_uninterrupted_one() {
    if models("killed_builds_finish_identical_to_an_uninterrupted_one").is_none() {
        return;
    }
    let raw = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    let reference = tempfile::tempdir().unwrap();
    let out = prep_build(raw.path(), reference.path())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = shard::Cache::open(&cache_dir(reference.path())).unwrap();
    for delay_ms in [30u64, 150, 400, 800, 1500] {
        let caches = tempfile::tempdir().unwrap();
        let mut child = prep_build(raw.path(), caches.path()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            prep_build(raw.path(), caches.path())
                .status()
                .unwrap()
                .success(),
            "rerun after {delay_ms} ms"
        );
        let dir = cache_dir(caches.path());
        let got = shard::Cache::open(&dir).unwrap();
        assert!(got.verify().unwrap().is_ok());
        assert_eq!(got.manifest().key, want.manifest().key);
        let files = |m: &shard::Manifest| {
            m.shards
                .iter()
                .map(|s| (s.file.clone(), s.blake3.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            files(got.manifest()),
            files(want.manifest()),
            "killed after {delay_ms} ms"
        );
        let fa = shard::tables::read_failures(&dir.join("failures.parquet")).unwrap();
        let fb =
            shard::tables::read_failures(&cache_dir(reference.path()).join("failures.parquet"))
                .unwrap();
        assert_eq!(fa, fb);
        let leftovers: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
