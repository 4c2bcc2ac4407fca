use shard::{CacheKey, SourceFingerprinter};
use std::collections::BTreeMap;

#[derive(serde::Serialize)]
struct ConfigA {
    face: (u32, u32),
    frames: Vec<&'static str>,
}

#[derive(serde::Serialize)]
struct ConfigB {
    frames: Vec<&'static str>,
    face: (u32, u32),
}

fn files(dir: &std::path::Path) -> Vec<String> {
    std::fs::write(dir.join("a.png"), b"aaa").unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/b.png"), b"bbbb").unwrap();
    vec!["sub/b.png".into(), "a.png".into()]
}

#[test]
fn key_ignores_field_order_and_changes_with_content() {
    let dir = tempfile::tempdir().unwrap();
    let list = files(dir.path());
    let fp = SourceFingerprinter::new()
        .fingerprint(dir.path(), &list)
        .unwrap();
    assert_eq!((fp.files, fp.bytes), (2, 7));
    let models = BTreeMap::from([("m.dat".to_string(), "ab".to_string())]);
    let a = ConfigA {
        face: (128, 128),
        frames: vec!["first", "peak"],
    };
    let b = ConfigB {
        frames: vec!["first", "peak"],
        face: (128, 128),
    };
    let ka = CacheKey::compute(&a, &models, &fp).unwrap();
    let kb = CacheKey::compute(&b, &models, &fp).unwrap();
    assert_eq!(ka, kb, "field order must not change the key");
    assert_eq!(ka.hex().len(), 64);
    assert_eq!(ka.short(), &ka.hex()[..16]);

    // Order of the file list does not matter; content does.
    let mut rev = list.clone();
    rev.reverse();
    let fp2 = SourceFingerprinter::new()
        .fingerprint(dir.path(), &rev)
        .unwrap();
    assert_eq!(fp, fp2);
    std::fs::write(dir.path().join("a.png"), b"aab").unwrap();
    let fp3 = SourceFingerprinter::new()
        .fingerprint(dir.path(), &list)
        .unwrap();
    assert_ne!(fp.digest, fp3.digest);
    assert_ne!(ka, CacheKey::compute(&a, &models, &fp3).unwrap());
    let other_models = BTreeMap::from([("m.dat".to_string(), "cd".to_string())]);
    assert_ne!(ka, CacheKey::compute(&a, &other_models, &fp).unwrap());
}

#[test]
fn stat_cache_fast_path_and_forced_rehash() {
    let dir = tempfile::tempdir().unwrap();
    let list = files(dir.path());
    let stat = dir.path().join("stat/fp.json");
    let fp1 = SourceFingerprinter::new()
        .with_stat_cache(&stat)
        .fingerprint(dir.path(), &list)
        .unwrap();
    assert!(stat.exists());
    // Tamper with the stored hash: the fast path trusts size+mtime and reuses it...
    let mut entries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&stat).unwrap()).unwrap();
    entries[0]["blake3"] = serde_json::json!("11".repeat(32));
    std::fs::write(&stat, serde_json::to_vec(&entries).unwrap()).unwrap();
    let fast = SourceFingerprinter::new()
        .with_stat_cache(&stat)
        .fingerprint(dir.path(), &list)
        .unwrap();
    assert_ne!(
        fast.digest, fp1.digest,
        "fast path must reuse the stored hash"
    );
    // ...and --force-rehash reads the content again.
    let forced = SourceFingerprinter::new()
        .with_stat_cache(&stat)
        .force_rehash(true)
        .fingerprint(dir.path(), &list)
        .unwrap();
    assert_eq!(forced.digest, fp1.digest);
}

#[test]
fn missing_input_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = SourceFingerprinter::new()
        .fingerprint(dir.path(), &["nope.png".to_string()])
        .unwrap_err();
    assert!(err.to_string().contains("nope.png"), "{err}");
}
