//! Duplicate inputs: the report lists exactly the planted pairs (exact within and across splits,
//! with conflicting labels, near), the dedup modes drop exactly what they say, and sequences
//! compare as wholes.

use crate::common::*;
use prep::dedup::DedupMode;
use prep::inventory::reason;
use prep::DatasetKind;
use shard::Cache;
use std::collections::BTreeSet;

/// 48×48 noise, distinct per seed (so its difference hash is far from the others').
fn noise(seed: u64) -> Vec<u8> {
    let mut rng = shard::KeyedRng::new(&[seed, 0xd0]);
    (0..48 * 48).map(|_| rng.below(256) as u8).collect()
}

fn row(px: &[u8], label: u8, usage: &str) -> String {
    let p: Vec<String> = px.iter().map(|v| v.to_string()).collect();
    format!("{label},{},{usage}\n", p.join(" "))
}

type Pair = (String, String, String);

fn pairs(dir: &std::path::Path) -> BTreeSet<Pair> {
    let df = shard::tables::read_table(&dir.join("duplicates.parquet")).unwrap();
    let col = |c: &str| -> Vec<String> {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap().to_string())
            .collect()
    };
    let (k, a, b) = (col("kind"), col("sample_a"), col("sample_b"));
    (0..df.height())
        .map(|i| (k[i].clone(), a[i].clone(), b[i].clone()))
        .collect()
}

#[test]
fn planted_duplicates_are_reported_and_dropped_as_the_mode_says() {
    let Some(models) = models("planted_duplicates_are_reported_and_dropped_as_the_mode_says")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d, e) = (noise(1), noise(2), noise(3), noise(4), noise(5));
    let mut d2 = d.clone();
    d2[100] = d2[100].wrapping_add(1); // not pixel-identical; same difference hash
    let csv = String::from("emotion,pixels,Usage\n")
        + &row(&a, 3, "Training") // r0
        + &row(&b, 0, "Training") // r1
        + &row(&a, 3, "PublicTest") // r2: r0 across splits
        + &row(&b, 5, "PrivateTest") // r3: r1 across splits, another label
        + &row(&c, 2, "Training") // r4
        + &row(&c, 2, "Training") // r5: r4 within Training
        + &row(&d, 4, "Training") // r6
        + &row(&d2, 4, "PrivateTest") // r7: near r6
        + &row(&e, 6, "Training"); // r8
    let path = dir.path().join("fer2013.csv");
    std::fs::write(&path, csv).unwrap();
    let id = |r: usize| format!("fer2013/r{r:06}");
    let exact = |x: usize, y: usize| ("exact".to_string(), id(x), id(y));

    // report (default): exact pairs only, nothing dropped.
    let caches = tempfile::tempdir().unwrap();
    let req = request(DatasetKind::Fer2013, &path, caches.path(), models.clone());
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert_eq!(
        pairs(&out.dir),
        [exact(0, 2), exact(1, 3), exact(4, 5)]
            .into_iter()
            .collect()
    );
    let dc = &out.summary.duplicates;
    assert_eq!(
        (
            dc.exact_pairs,
            dc.exact_within_split,
            dc.exact_across_splits,
            dc.exact_conflicting
        ),
        (3, 1, 2, 1)
    );
    assert_eq!((dc.near_pairs, dc.dropped, out.summary.cached), (0, 0, 9));
    // In the manifest as well.
    let m = Cache::open(&out.dir).unwrap().manifest().clone();
    assert_eq!(m.extra["summary"]["duplicates"]["exact_across_splits"], 2);

    // Near duplicates on request.
    let mut req_near = req.clone();
    req_near.config.near_duplicate_bits = Some(3);
    let out = prep::build(&req_near, &prep::build::NoProgress).unwrap();
    let mut want: BTreeSet<Pair> = [exact(0, 2), exact(1, 3), exact(4, 5)]
        .into_iter()
        .collect();
    want.insert(("near".into(), id(6), id(7)));
    assert_eq!(pairs(&out.dir), want);

    // drop-from-train: the training copies of r2, r3 and (near) r7 go; r4/r5 (both training) stay.
    req_near.config.dedup = DedupMode::DropFromTrain;
    let out = prep::build(&req_near, &prep::build::NoProgress).unwrap();
    let kept: BTreeSet<String> = Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| r.unwrap().meta.sample_id)
        .collect();
    let want: BTreeSet<String> = [2, 3, 4, 5, 7, 8].map(id).into_iter().collect();
    assert_eq!(kept, want);
    assert_eq!(
        out.summary.excluded.get(reason::DUPLICATE_ACROSS_SPLITS),
        Some(&3)
    );
    assert!(out.summary.adds_up(), "{:?}", out.summary);

    // drop-conflicting: both members of the r1/r3 group (labels 0 and 5).
    let mut req_c = req.clone();
    req_c.config.dedup = DedupMode::DropConflicting;
    let out = prep::build(&req_c, &prep::build::NoProgress).unwrap();
    let kept: BTreeSet<String> = Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| r.unwrap().meta.sample_id)
        .collect();
    assert_eq!(kept, [0, 2, 4, 5, 6, 7, 8].map(id).into_iter().collect());
    assert_eq!(
        out.summary.excluded.get(reason::CONFLICTING_DUPLICATE),
        Some(&2)
    );
    let failures = shard::tables::read_failures(&out.dir.join("failures.parquet")).unwrap();
    assert!(failures
        .iter()
        .any(|f| f.reason == reason::CONFLICTING_DUPLICATE && f.detail.contains(&id(3))));
}

/// A CK+ sequence copied to another subject is one exact pair (the sequence as a whole); a
/// sequence sharing only its first frames with another is not.
#[test]
fn sequence_duplicates_compare_whole_sequences() {
    let Some(models) = models("sequence_duplicates_compare_whole_sequences") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    let img = raw.path().join("cohn-kanade-images");
    let emo = raw.path().join("Emotion");
    for f in 1..=5u32 {
        std::fs::create_dir_all(img.join("S012/001")).unwrap();
        std::fs::copy(
            img.join(format!("S005/001/S005_001_{f:08}.png")),
            img.join(format!("S012/001/S012_001_{f:08}.png")),
        )
        .unwrap();
    }
    write(&emo.join("S012/001/S012_001_00000005_emotion.txt"), b"3");
    // S012/002: S005/002's first four frames, another last frame.
    for f in 1..=5u32 {
        std::fs::create_dir_all(img.join("S012/002")).unwrap();
        let from = if f < 5 {
            img.join(format!("S005/002/S005_002_{f:08}.png"))
        } else {
            img.join(format!("S010/001/S010_001_{f:08}.png"))
        };
        std::fs::copy(from, img.join(format!("S012/002/S012_002_{f:08}.png"))).unwrap();
    }
    write(&emo.join("S012/002/S012_002_00000005_emotion.txt"), b"5");
    let caches = tempfile::tempdir().unwrap();
    let mut req = request(DatasetKind::Ckplus, raw.path(), caches.path(), models);
    req.config.folds = 2;
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert_eq!(
        pairs(&out.dir),
        [(
            "exact".to_string(),
            "S005/001".to_string(),
            "S012/001".to_string()
        )]
        .into_iter()
        .collect()
    );
    assert_eq!(out.summary.duplicates.exact_pairs, 1);
}
