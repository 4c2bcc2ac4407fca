//! Cache references and listings (issue 16): a name that two caches from different sources share
//! is an error listing both, `name@keyprefix` picks one, rebuilds from the same source resolve to
//! the newest, and failed, empty and part caches are never chosen.

use crate::common::*;
use shard::{CacheKey, CacheState, CacheWriter, CacheWriterOptions, SourceFingerprint};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A complete cache named `name` built from source `digest` with settings `tag`, `n` samples,
/// created at `created` (unix seconds, rewritten into the manifest), `extra` in the manifest.
fn cache(
    root: &Path,
    name: &str,
    digest: &str,
    tag: &str,
    n: u32,
    created: u64,
    extra: serde_json::Value,
) -> PathBuf {
    let src = SourceFingerprint {
        files: 1,
        bytes: 2,
        digest: digest.into(),
    };
    let key = CacheKey::compute(&tag, &BTreeMap::new(), &src).unwrap();
    let dir = root.join(shard::cache_dir_name(name, &key));
    let mut w =
        CacheWriter::create(&dir, name, &key, classes(), CacheWriterOptions::default()).unwrap();
    for i in 0..n {
        let (m, p) = sample(i);
        w.push(&encode(&m, &p)).unwrap();
    }
    let mut m = w.finish(extra).unwrap();
    m.created_unix = created;
    m.store(&dir).unwrap();
    dir
}

/// [`cache`] with no writer notes.
fn plain(root: &Path, name: &str, digest: &str, tag: &str, n: u32, created: u64) -> PathBuf {
    cache(root, name, digest, tag, n, created, serde_json::Value::Null)
}

fn key_of(dir: &Path) -> String {
    shard::Manifest::load(dir).unwrap().key
}

#[test]
fn caches_of_one_name_from_different_sources_are_ambiguous_until_pinned() {
    let root = tempfile::tempdir().unwrap();
    let full = cache(
        root.path(),
        "fer2013",
        "full-csv",
        "a",
        3,
        100,
        serde_json::json!({"source": "full.csv"}),
    );
    let sample = cache(
        root.path(),
        "fer2013",
        "sample-csv",
        "a",
        2,
        200,
        serde_json::json!({"source": "sample.csv"}),
    );
    let err = shard::resolve_cache(root.path(), "fer2013")
        .unwrap_err()
        .to_string();
    assert!(err.contains("different sources"), "{err}");
    for dir in [&full, &sample] {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(err.contains(&name), "the error lists {name}: {err}");
    }
    assert!(
        err.contains("fer2013@"),
        "the error shows how to pin one: {err}"
    );
    // Pinned by a key prefix, by directory name, by path.
    let k = key_of(&full);
    assert_eq!(
        shard::resolve_cache(root.path(), &format!("fer2013@{}", &k[..8])).unwrap(),
        full
    );
    let by_dir = full.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(shard::resolve_cache(root.path(), &by_dir).unwrap(), full);
    assert_eq!(
        shard::resolve_cache(root.path(), &full.display().to_string()).unwrap(),
        full
    );
    // A prefix that matches nothing, and one that is not hex.
    assert!(
        shard::resolve_cache(root.path(), "fer2013@ffffffffffff").is_err()
            || k.starts_with("ffffffffffff")
    );
    assert!(shard::resolve_cache(root.path(), "fer2013@xyz").is_err());
    let missing = shard::resolve_cache(root.path(), "jaffe")
        .unwrap_err()
        .to_string();
    assert!(missing.contains("names there: fer2013"), "{missing}");
}

#[test]
fn rebuilds_from_the_same_source_resolve_to_the_newest() {
    let root = tempfile::tempdir().unwrap();
    let _old = plain(root.path(), "ckplus", "same", "settings-1", 2, 100);
    let new = plain(root.path(), "ckplus", "same", "settings-2", 2, 200);
    assert_eq!(shard::resolve_cache(root.path(), "ckplus").unwrap(), new);
}

#[test]
fn failed_empty_and_part_caches_are_never_resolved_and_are_listed_with_their_state() {
    let root = tempfile::tempdir().unwrap();
    let good = plain(root.path(), "jaffe", "j", "a", 2, 100);
    // Newer, same source, but empty (what older versions wrote for a failed build).
    let empty = plain(root.path(), "jaffe", "j", "b", 0, 300);
    // A part cache of a split build.
    let part = cache(
        root.path(),
        "jaffe",
        "j",
        "c",
        1,
        400,
        serde_json::json!({"part": "1/2"}),
    );
    // A failed build: abandoned, so no manifest, a reason on disk.
    let src = SourceFingerprint {
        files: 1,
        bytes: 2,
        digest: "j".into(),
    };
    let key = CacheKey::compute(&"d", &BTreeMap::new(), &src).unwrap();
    let failed = root.path().join(shard::cache_dir_name("jaffe", &key));
    let mut w = CacheWriter::create(
        &failed,
        "jaffe",
        &key,
        classes(),
        CacheWriterOptions::default(),
    )
    .unwrap();
    let (m, p) = sample(0);
    w.push(&encode(&m, &p)).unwrap();
    w.abandon(
        "981 of 981 attempted inputs failed",
        serde_json::Value::Null,
    )
    .unwrap();
    assert!(!failed.join(shard::MANIFEST_FILE).exists());
    assert!(failed.join("failures.parquet").exists());
    assert!(
        !std::fs::read_dir(&failed)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".fsh")),
        "shards of a failed build are removed"
    );

    assert_eq!(shard::resolve_cache(root.path(), "jaffe").unwrap(), good);
    let listed = shard::list_caches(root.path()).unwrap();
    let state = |d: &Path| listed.iter().find(|c| c.dir == d).unwrap().state.clone();
    assert_eq!(state(&good), CacheState::Complete);
    assert_eq!(state(&empty), CacheState::Empty);
    assert_eq!(state(&part), CacheState::Part("1/2".into()));
    assert_eq!(
        state(&failed),
        CacheState::Failed("981 of 981 attempted inputs failed".into())
    );
    // `verify` refuses the empty cache.
    assert!(!shard::Cache::open(&empty)
        .unwrap()
        .verify()
        .unwrap()
        .is_ok());
    assert!(shard::Cache::open(&good).unwrap().verify().unwrap().is_ok());
    // The next build into the failed directory starts clean and completes.
    let w = CacheWriter::create(
        &failed,
        "jaffe",
        &key,
        classes(),
        CacheWriterOptions::default(),
    )
    .unwrap();
    w.finish(serde_json::Value::Null).unwrap();
    assert!(!failed.join(shard::BUILD_FAILED_FILE).exists());
}
