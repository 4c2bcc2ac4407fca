//! `prep export`: ImageFolder PNGs that decode to the cache's planes.

use shard::{
    Cache, CacheKey, CacheWriter, CacheWriterOptions, EncodedRecord, PlaneInfo, SampleMeta,
    SourceFingerprint, Split,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Six records of 2 classes with distinct pixel patterns, ids with a `/`, three splits.
fn small_cache(dir: &Path) -> PathBuf {
    let key = CacheKey::compute(
        &serde_json::json!({"export-test": 1}),
        &BTreeMap::new(),
        &SourceFingerprint {
            files: 0,
            bytes: 0,
            digest: "export-test".into(),
        },
    )
    .unwrap();
    let out = dir.join(shard::cache_dir_name("exp", &key));
    let names = vec!["calm".to_string(), "happy".to_string()];
    let mut w =
        CacheWriter::create(&out, "exp", &key, names, CacheWriterOptions::default()).unwrap();
    let splits = [
        Split::Train,
        Split::Train,
        Split::Validation,
        Split::Test,
        Split::Fold(3),
        Split::Test,
    ];
    for (k, split) in splits.into_iter().enumerate() {
        let face: Vec<u8> = (0..16 * 12)
            .map(|i| ((i * 7 + k * 31) % 256) as u8)
            .collect();
        let eyes: Vec<u8> = (0..8 * 16).map(|i| ((i + k) % 256) as u8).collect();
        let meta = SampleMeta {
            sample_id: format!("S{k:03}/001"),
            dataset: "exp".into(),
            subject: format!("S{k:03}"),
            sequence: None,
            source: vec![],
            frame_indices: vec![0],
            label: (k % 2) as u16,
            split,
            landmarks: vec![],
            detector: "synthetic".into(),
            flags: 0,
            planes: vec![
                PlaneInfo::new("face", 16, 12),
                PlaneInfo::new("eyes/0", 8, 16),
            ],
            ext: shard::MetaExt::default(),
        };
        w.push(&EncodedRecord::encode(meta, &[&face, &eyes], 1).unwrap())
            .unwrap();
    }
    w.finish(serde_json::json!({})).unwrap();
    out
}

#[test]
fn export_writes_image_folders_that_decode_to_the_planes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&small_cache(tmp.path())).unwrap();
    let out = tmp.path().join("png");
    let ticks = std::sync::atomic::AtomicU64::new(0);
    let tick = || {
        ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let s = prep::export::export_image_folders(&cache, &out, "face", &tick).unwrap();
    assert_eq!(s.files(), 6);
    assert_eq!(ticks.into_inner(), 6);
    assert_eq!(s.counts["train"]["calm"], 1);
    assert_eq!(s.counts["train"]["happy"], 1);
    assert_eq!(s.counts["test"].values().sum::<u64>(), 2);
    assert_eq!(s.counts["fold3"]["calm"], 1);
    for rec in cache.iter() {
        let rec = rec.unwrap();
        let m = &rec.meta;
        let class = ["calm", "happy"][m.label as usize];
        let file = out
            .join(m.split.to_string())
            .join(class)
            .join(format!("{}.png", prep::export::file_stem(&m.sample_id)));
        let png = image::open(&file).unwrap().to_luma8();
        assert_eq!((png.width(), png.height()), (12, 16), "{}", file.display());
        assert_eq!(
            png.as_raw().as_slice(),
            rec.plane("face").unwrap(),
            "{}",
            file.display()
        );
    }
    // Nothing else in the folder, and no partial folder left beside it.
    let pngs = walk_count(&out);
    assert_eq!(pngs, 6);
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");

    // A part crop.
    let eyes = tmp.path().join("eyes");
    prep::export::export_image_folders(&cache, &eyes, "eyes/0", &|| {}).unwrap();
    let one = image::open(eyes.join("validation/calm/S002_001.png"))
        .unwrap()
        .to_luma8();
    assert_eq!((one.width(), one.height()), (16, 8));
}

#[test]
fn export_refuses_an_existing_folder_and_a_missing_plane_without_leaving_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&small_cache(tmp.path())).unwrap();
    let out = tmp.path().join("png");
    std::fs::create_dir(&out).unwrap();
    let e = prep::export::export_image_folders(&cache, &out, "face", &|| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists"), "{e}");
    assert_eq!(walk_count(&out), 0);
    let other = tmp.path().join("none");
    let e = prep::export::export_image_folders(&cache, &other, "nose/5", &|| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("nose/5") && e.contains("face, eyes/0"), "{e}");
    assert!(!other.exists());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn walk_count(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += walk_count(&p);
        } else {
            n += 1;
        }
    }
    n
}
