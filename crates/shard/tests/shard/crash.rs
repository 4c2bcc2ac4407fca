//! A crash at any point leaves either a complete cache or a directory readers reject.

use crate::common::*;
use shard::{Cache, CacheWriter, CacheWriterOptions, ShardError};

#[test]
fn crash_between_shard_rename_and_manifest_leaves_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CacheWriterOptions {
        target_shard_bytes: 1, // every record closes (and renames) its shard
        ..Default::default()
    };
    let mut w = CacheWriter::create(dir.path(), "c", &key("c"), classes(), opts).unwrap();
    for i in 0..3 {
        let (m, p) = sample(i);
        w.push(&encode(&m, &p)).unwrap();
    }
    drop(w); // the process "dies" before finish(): shards renamed, no tables, no manifest
    assert!(dir.path().join("shard-00002.fsh").exists());
    assert!(matches!(
        Cache::open(dir.path()),
        Err(ShardError::NotACache { .. })
    ));
    // The next writer clears the orphans and produces a sound cache.
    let m = write_cache(dir.path(), 2, 1 << 20);
    assert_eq!(m.shards.len(), 1);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n == "shard-00002.fsh"), "{names:?}");
    assert!(Cache::open(dir.path()).unwrap().verify().unwrap().is_ok());
}

#[test]
fn crash_mid_shard_leaves_only_tmp_files_which_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        CacheWriter::create(dir.path(), "c", &key("c"), classes(), Default::default()).unwrap();
    let (m, p) = sample(0);
    w.push(&encode(&m, &p)).unwrap();
    drop(w);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // The shard and the two tables streamed beside it, all under temporary names.
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [
            "landmarks.parquet.tmp",
            "samples.parquet.tmp",
            "shard-00000.fsh.tmp"
        ]
    );
    assert!(Cache::open(dir.path()).is_err());
    write_cache(dir.path(), 1, 1 << 20);
    for n in &names {
        assert!(!dir.path().join(n).exists(), "{n} left behind");
    }
}

#[test]
fn rewriting_a_cache_invalidates_it_first() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 2, 1 << 20);
    assert!(Cache::open(dir.path()).is_ok());
    let w = CacheWriter::create(dir.path(), "c", &key("c"), classes(), Default::default()).unwrap();
    // While a rewrite is under way the old cache is no longer visible.
    assert!(Cache::open(dir.path()).is_err());
    drop(w);
}
