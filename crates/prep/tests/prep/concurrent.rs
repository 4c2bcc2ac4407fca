//! Two commands on one cache at once (issue: "two commands at once must not collide"): a build of
//! a key that is being built waits for it, says for whom, and ends as a cache hit; the lock of a
//! killed build is released by the kernel; `prep cache gc` leaves a cache alone while it is being
//! built. Deterministic: the first build is paused (SIGSTOP) once it holds its lock, instead of
//! racing the second one against the clock.

use crate::common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn prep_build(raw: &Path, caches: &Path) -> Command {
    let mut c = ckplus_build_command(raw, caches);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// Waits until some cache directory under `caches` has its lock held and recorded by `pid`.
fn locked_by(caches: &Path, pid: u32) -> PathBuf {
    let start = Instant::now();
    loop {
        for e in std::fs::read_dir(caches).into_iter().flatten().flatten() {
            if shard::lock::read_holder(&e.path()).is_some_and(|h| h.pid == pid) {
                return e.path();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "pid {pid} never took a cache lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads `child`'s stderr until it contains `needle` (or the child ends); returns what it read.
fn stderr_until(child: &mut Child, needle: &str) -> String {
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match err.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    child.stderr = Some(err);
    String::from_utf8_lossy(&seen).into_owned()
}

fn finish(child: Child) -> (bool, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_second_build_of_the_same_key_waits_and_ends_as_a_cache_hit() {
    if models("a_second_build_of_the_same_key_waits_and_ends_as_a_cache_hit").is_none() {
        return;
    }
    let raw = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    let caches = tempfile::tempdir().unwrap();
    let first = prep_build(raw.path(), caches.path()).spawn().unwrap();
    let dir = locked_by(caches.path(), first.id());
    signal(&first, "STOP");
    let mut second = prep_build(raw.path(), caches.path()).spawn().unwrap();
    let said = stderr_until(&mut second, "waiting");
    assert!(
        said.contains(&format!("pid {}", first.id())) && said.contains("waiting"),
        "the waiting build names the one it waits for: {said}"
    );
    // While the first holds the key directory, gc keeps it (it is incomplete: removable otherwise).
    let gc = Command::new(env!("CARGO_BIN_EXE_prep"))
        .args(["cache", "gc", "--delete", "--cache-dir"])
        .arg(caches.path())
        .arg("--experiments")
        .arg(raw.path().join("no-experiments"))
        .output()
        .unwrap();
    let gc_out = String::from_utf8_lossy(&gc.stdout);
    assert!(gc.status.success(), "{gc_out}");
    assert!(
        gc_out.contains("in use") && dir.is_dir(),
        "gc must keep a cache being built: {gc_out}"
    );
    signal(&first, "CONT");
    let (ok1, out1, err1) = finish(first);
    let (ok2, out2, err2) = finish(second);
    assert!(ok1, "first build: {out1}\n{err1}");
    assert!(ok2, "second build: {out2}\n{err2}");
    assert!(out1.contains("built "), "{out1}");
    assert!(
        out2.contains("cache hit"),
        "the second build reuses the first's cache: {out2}"
    );
    // One complete cache, which verifies.
    let complete: Vec<PathBuf> = std::fs::read_dir(caches.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(shard::MANIFEST_FILE).exists())
        .collect();
    assert_eq!(complete, vec![dir.clone()]);
    let report = shard::Cache::open(&dir).unwrap().verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn the_lock_of_a_killed_build_is_released_and_the_next_build_proceeds() {
    use std::os::unix::process::ExitStatusExt;
    if models("the_lock_of_a_killed_build_is_released_and_the_next_build_proceeds").is_none() {
        return;
    }
    let raw = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    let caches = tempfile::tempdir().unwrap();
    let mut first = prep_build(raw.path(), caches.path()).spawn().unwrap();
    let dir = locked_by(caches.path(), first.id());
    signal(&first, "KILL");
    assert_eq!(first.wait().unwrap().signal(), Some(9));
    assert!(!dir.join(shard::MANIFEST_FILE).exists(), "killed mid-build");
    // The next build neither waits for the dead holder nor trips over its leftovers.
    let start = Instant::now();
    let (ok, out, err) = finish(prep_build(raw.path(), caches.path()).spawn().unwrap());
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("built "), "{out}");
    assert!(
        !err.contains("waiting"),
        "nobody holds the lock any more: {err}"
    );
    assert!(start.elapsed() < Duration::from_secs(120));
    assert!(shard::Cache::open(&dir).unwrap().verify().unwrap().is_ok());
}
