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
    // Identical pixel strings, counted independently in Python (pairs of rows with equal `pixels`:
    // 24, 21 with the same Usage, 3 across, none with different emotions).
    let d = &out.summary.duplicates;
    assert_eq!(
        (
            d.exact_pairs,
            d.exact_within_split,
            d.exact_across_splits,
            d.exact_conflicting
        ),
        (24, 21, 3, 0)
    );
}

/// FER+ under each FERPlus rule, with the real `fer2013new.csv` (35,887 rows) paired with a
/// generated fer2013.csv of as many rows (the counts depend only on the votes and Usage). The
/// majority and plurality counts are the ones measured with FERPlus's own code and with the old
/// rule (issue 19); the other three come from a separate Python transcription of FERPlus's
/// `_process_data`.
#[test]
fn real_ferplus_rules_give_the_known_split_counts() {
    use prep::FerPlusMode::*;
    let Some(shared) = shared("real_ferplus") else {
        return;
    };
    let labels = shared.join("data/ferplus/fer2013new.csv");
    let text = std::fs::read_to_string(&labels).unwrap();
    let usages: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(usages.len(), 35_887);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer2013.csv");
    {
        use std::io::Write;
        let pixels = vec!["0"; 48 * 48].join(" ");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(w, "emotion,pixels,Usage").unwrap();
        for u in &usages {
            writeln!(w, "0,{pixels},{u}").unwrap();
        }
    }
    let expected = [
        (Majority, [25_060, 3_199, 3_153]),
        (Plurality, [26_940, 3_396, 3_376]),
        (Probability, [27_956, 3_505, 3_505]),
        (Crossentropy, [27_956, 3_505, 3_505]),
        (MultiTarget, [27_671, 3_472, 3_472]),
    ];
    for (mode, want) in expected {
        let inv = prep::datasets::fer2013::inventory(&csv, Some((&labels, mode)), 1).unwrap();
        let count = |s: Split| inv.items.iter().filter(|i| i.split == s).count();
        let got = [
            count(Split::Train),
            count(Split::Validation),
            count(Split::Test),
        ];
        assert_eq!(got, want, "{mode:?}");
        // Every other row is excluded with the reason, none rejected.
        assert_eq!(inv.items.len() + inv.rejected.len(), 35_887, "{mode:?}");
        assert!(inv
            .rejected
            .iter()
            .all(|r| r.reason == "ferplus_no_majority" && r.detail.contains(mode.name())));
        println!("ferplus {:<12} {got:?}", mode.name());
    }
}
