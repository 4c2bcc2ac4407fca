use crate::common::*;
use prep::DatasetKind;
use shard::{Cache, Split};
use std::collections::{BTreeMap, BTreeSet};

fn subjects_in_one_fold(cache: &Cache) {
    let mut folds: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for r in cache.iter() {
        let m = r.unwrap().meta;
        let Split::Fold(f) = m.split else {
            panic!("{} has split {:?}", m.sample_id, m.split)
        };
        folds.entry(m.subject).or_default().insert(f);
    }
    for (s, f) in &folds {
        assert_eq!(f.len(), 1, "subject {s} in folds {f:?}");
    }
}

#[test]
fn real_ckplus48_sequences_and_subject_disjoint_folds() {
    let (Some(shared), Some(models)) = (shared("real_ckplus48"), models("real_ckplus48")) else {
        return;
    };
    let caches = tempfile::tempdir().unwrap();
    let req = request(
        DatasetKind::Ckplus48,
        &shared.join("data/ckplus48"),
        caches.path(),
        models,
    );
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up());
    // 981 images = 327 sequences of 3 frames; the paper's class counts.
    assert_eq!((s.seen, s.cached, s.failed_total()), (327, 327, 0));
    let cache = Cache::open(&out.dir).unwrap();
    assert!(cache.verify().unwrap().is_ok());
    let by_class = &cache.manifest().counts.by_class;
    let want = [
        ("anger", 45),
        ("contempt", 18),
        ("disgust", 59),
        ("fear", 25),
        ("happy", 69),
        ("sadness", 28),
        ("surprise", 83),
    ];
    for (c, n) in want {
        assert_eq!(by_class.get(c), Some(&n), "{c}");
    }
    subjects_in_one_fold(&cache);
}

#[test]
fn real_jaffe_detects_every_face() {
    let (Some(shared), Some(models)) = (shared("real_jaffe"), models("real_jaffe")) else {
        return;
    };
    let caches = tempfile::tempdir().unwrap();
    let req = request(
        DatasetKind::Jaffe,
        &shared.join("data/jaffe"),
        caches.path(),
        models,
    );
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert_eq!((out.summary.seen, out.summary.cached), (213, 213));
    let cache = Cache::open(&out.dir).unwrap();
    assert!(cache.verify().unwrap().is_ok());
    assert_eq!(cache.manifest().counts.by_subject.len(), 10);
    subjects_in_one_fold(&cache);
    assert!(out.dir.join("qa/sheet-01.png").exists());
}

#[test]
fn real_fer2013_sample_by_usage() {
    let (Some(shared), Some(models)) = (shared("real_fer2013"), models("real_fer2013")) else {
        return;
    };
    let caches = tempfile::tempdir().unwrap();
    let csv = shared.join("data/fer2013_sample/fer2013.csv");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() as u64 - 1;
    let req = request(DatasetKind::Fer2013, &csv, caches.path(), models);
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert_eq!(out.summary.seen, rows);
    assert!(out.summary.adds_up());
    let cache = Cache::open(&out.dir).unwrap();
    assert!(cache.verify().unwrap().is_ok());
    let by_split = &cache.manifest().counts.by_split;
    assert_eq!(by_split.values().sum::<u64>(), out.summary.cached);
    for s in ["train", "validation", "test"] {
        assert!(
            by_split.get(s).copied().unwrap_or(0) > 0,
            "{s}: {by_split:?}"
        );
    }
}
