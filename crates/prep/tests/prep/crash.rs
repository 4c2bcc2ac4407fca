//! `prep build` killed with SIGKILL at several points, then run again: the final cache equals an
//! uninterrupted build (same key, byte-identical shards, same tables) and no temporary file remains.
//!
//! The kill points are events seen on disk, not delays (a delay lands wherever the machine's speed
//! puts it, after the build on a fast one): the first shard's `.tmp` file appearing, then holding a
//! quarter, a half and three quarters of the finished shard's bytes. Each kill is checked to have
//! hit mid-work: the process died by the signal, a partial `.tmp` is on disk and no manifest is.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn prep_build(raw: &Path, caches: &Path) -> Command {
    let mut c = ckplus_build_command(raw, caches);
    c.stdout(std::process::Stdio::null())
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

/// Bytes of the `*.tmp` files under `caches` (any depth), or None while there is none.
fn tmp_bytes(caches: &Path) -> Option<u64> {
    let mut total = None;
    let mut stack = vec![caches.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".tmp") {
                *total.get_or_insert(0) += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

/// Whether a `manifest.json` exists under `caches` (a finished cache).
fn has_manifest(caches: &Path) -> bool {
    std::fs::read_dir(caches)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join(shard::MANIFEST_FILE).exists())
}

#[cfg(unix)]
#[test]
fn killed_builds_finish_identical_to_an_uninterrupted_one() {
    use std::os::unix::process::ExitStatusExt;
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
    let shard_bytes: u64 = want.manifest().shards.iter().map(|s| s.bytes).sum();
    assert!(shard_bytes > 0);
    // Kill when the partial shard holds at least this share of the finished shard's bytes
    // (0 = as soon as the .tmp file exists).
    for share in [0.0, 0.25, 0.5, 0.75] {
        let threshold = (shard_bytes as f64 * share) as u64;
        // The window between the kill point and the end of the build is milliseconds; on a loaded
        // machine the watcher can miss it. A missed point says nothing about the product, so the
        // build is started again (a fresh directory) until the kill lands, 20 tries at most.
        let mut attempt = 0;
        let (caches, mut child) = loop {
            attempt += 1;
            let caches = tempfile::tempdir().unwrap();
            let mut child = prep_build(raw.path(), caches.path()).spawn().unwrap();
            let start = Instant::now();
            let reached = loop {
                if tmp_bytes(caches.path()).is_some_and(|b| b >= threshold.max(1) || share == 0.0) {
                    break true;
                }
                if child.try_wait().unwrap().is_some() {
                    break false;
                }
                assert!(start.elapsed() < Duration::from_secs(120), "no progress");
                std::thread::sleep(Duration::from_millis(1));
            };
            if reached {
                break (caches, child);
            }
            assert!(
                attempt < 20,
                "20 builds ended before their shard reached {share} of its bytes"
            );
        };
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "share {share}: {status}");
        assert!(
            tmp_bytes(caches.path()).is_some(),
            "share {share}: no partial file on disk after the kill"
        );
        assert!(
            !has_manifest(caches.path()),
            "share {share}: a manifest was written before the kill"
        );
        assert!(
            prep_build(raw.path(), caches.path())
                .status()
                .unwrap()
                .success(),
            "rerun after the kill at {share}"
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
            "killed at {share} of the shard"
        );
        let fa = shard::tables::read_failures(&dir.join("failures.parquet")).unwrap();
        let fb =
            shard::tables::read_failures(&cache_dir(reference.path()).join("failures.parquet"))
                .unwrap();
        assert_eq!(fa, fb);
        assert_eq!(tmp_bytes(caches.path()), None, "temporary files left");
    }
}
