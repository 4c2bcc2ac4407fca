//! Every truncation and every single-bit flip of a shard is an error, never a panic or wrong data.

use crate::common::*;
use shard::{Cache, ShardError, ShardReader};
use std::path::Path;

/// Reads every record of a standalone shard; Ok only if all decode.
fn read_all(path: &Path) -> Result<Vec<shard::Record>, ShardError> {
    let r = ShardReader::open(path)?;
    (0..r.records()?).map(|i| r.read(i)).collect()
}

fn small_shard() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 3, 1 << 20);
    let bytes = std::fs::read(dir.path().join("shard-00000.fsh")).unwrap();
    (dir, bytes)
}

#[test]
fn every_truncation_is_an_error() {
    let (dir, bytes) = small_shard();
    let path = dir.path().join("cut.fsh");
    assert_eq!(
        read_all(&dir.path().join("shard-00000.fsh")).unwrap().len(),
        3
    );
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let res = std::panic::catch_unwind(|| read_all(&path));
        match res {
            Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("truncation to {len} of {} bytes was accepted", bytes.len()),
            Err(_) => panic!("truncation to {len} bytes panicked"),
        }
    }
    println!("{} truncations tried, all refused", bytes.len());
}

#[test]
fn every_bit_flip_is_an_error() {
    let (dir, bytes) = small_shard();
    let path = dir.path().join("flip.fsh");
    let mut flipped = bytes.clone();
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            flipped[byte] ^= 1 << bit;
            std::fs::write(&path, &flipped).unwrap();
            let res = std::panic::catch_unwind(|| read_all(&path));
            flipped[byte] ^= 1 << bit;
            match res {
                Ok(Err(_)) => {}
                Ok(Ok(_)) => panic!("flip of bit {bit} in byte {byte} was accepted"),
                Err(_) => panic!("flip of bit {bit} in byte {byte} panicked"),
            }
        }
    }
    println!("{} single-bit flips tried, all refused", bytes.len() * 8);
}

#[test]
fn record_damage_names_shard_record_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 3, 1 << 20);
    let shard_path = dir.path().join("shard-00000.fsh");
    let mut bytes = std::fs::read(&shard_path).unwrap();
    // Record 1 starts where record 0's frame ends; flip a byte inside it.
    let r = ShardReader::open(&shard_path).unwrap();
    let rec0 = r.read(0).unwrap();
    drop(rec0);
    let at = 32 + 60; // inside record 0 or 1; find which via the error
    bytes[at] ^= 0x40;
    std::fs::write(&shard_path, &bytes).unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let report = cache.verify().unwrap();
    assert!(!report.is_ok());
    let msgs: Vec<String> = report.problems.iter().map(|e| e.to_string()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("blake3")),
        "whole-file hash must be reported: {msgs:?}"
    );
    let record_err = report
        .problems
        .iter()
        .find(|e| matches!(e, ShardError::RecordChecksum { .. }))
        .unwrap_or_else(|| panic!("no record error in {msgs:?}"));
    match record_err {
        ShardError::RecordChecksum {
            shard,
            record,
            offset,
            ..
        } => {
            assert_eq!(shard, &shard_path);
            assert!(
                *offset <= at as u64,
                "record at {offset} must contain byte {at}"
            );
            assert!(*record <= 1);
            let text = record_err.to_string();
            assert!(text.contains("shard-00000.fsh") && text.contains(&format!("record {record}")));
        }
        _ => unreachable!(),
    }
    // get() of the damaged record fails; the others still read.
    let bad = match record_err {
        ShardError::RecordChecksum { record, .. } => *record,
        _ => unreachable!(),
    };
    assert!(cache.get(bad).is_err());
    for g in (0..3).filter(|&g| g != bad) {
        assert!(cache.get(g).is_ok());
    }
}

#[test]
fn missing_shard_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 10, 500);
    std::fs::remove_file(dir.path().join("shard-00001.fsh")).unwrap();
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("shard-00001.fsh"), "{err}");
}

#[test]
fn manifest_with_wrong_hash_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 4, 1 << 20);
    let mpath = dir.path().join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["shards"][0]["blake3"] = serde_json::json!("00".repeat(32));
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let report = Cache::open(dir.path()).unwrap().verify().unwrap();
    assert!(matches!(
        report.problems.as_slice(),
        [ShardError::ShardHash { .. }]
    ));
}

#[test]
fn unknown_format_major_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 2, 1 << 20);
    // Manifest from the future.
    let mpath = dir.path().join("manifest.json");
    let orig = std::fs::read(&mpath).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&orig).unwrap();
    m["format"]["major"] = serde_json::json!(2);
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            ShardError::UnsupportedVersion {
                major: 2,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(&mpath, &orig).unwrap();
    // Shard header from the future, with a valid header checksum.
    let spath = dir.path().join("shard-00000.fsh");
    let mut b = std::fs::read(&spath).unwrap();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&b[0..24]);
    b[24..32].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&spath, &b).unwrap();
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, ShardError::UnsupportedVersion { major: 2, .. }),
        "{err}"
    );
}
