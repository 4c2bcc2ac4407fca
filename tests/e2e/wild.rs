//! The in-the-wild layouts of `prep synth` (FER+, RAF-DB, AffectNet, ExpW) built end to end:
//! exact counts per layout and protocol rule, and a duplicate report that lists exactly the
//! planted pairs. The near-duplicate threshold (2 bits) sits between the planted near copies
//! (0–1 bits: brightened, re-encoded) and the closest generated images (4 bits and more).

use super::*;
use prep::dedup::DedupMode;
use prep::inventory::reason;

/// Near-duplicate threshold of these builds.
const NEAR_BITS: u32 = 2;

type Pair = (String, String, String);

fn pair(kind: prep::dedup::DuplicateKind, a: &str, b: &str) -> Pair {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    (kind.to_string(), a.to_string(), b.to_string())
}

/// What the generator planted in `dataset`.
fn planted(fx: &Fixture, dataset: &str) -> BTreeSet<Pair> {
    fx.synth
        .wild
        .planted
        .iter()
        .filter(|p| p.dataset == dataset)
        .map(|p| pair(p.kind, &p.original, &p.copy))
        .collect()
}

/// What the build reported in `duplicates.parquet`.
fn reported(out: &prep::BuildOutcome) -> BTreeSet<Pair> {
    prep::dedup::read_table(&out.dir.join("duplicates.parquet"))
        .unwrap()
        .iter()
        .map(|p| pair(p.kind, &p.samples[0], &p.samples[1]))
        .collect()
}

fn build(
    fx: &Fixture,
    kind: DatasetKind,
    source: &str,
    name: &str,
    adjust: impl FnOnce(&mut BuildRequest),
) -> prep::BuildOutcome {
    let mut req = request(
        kind,
        &fx.raw.join(source),
        &fx.root.join("cache"),
        name,
        None,
        &fx.models,
    );
    req.config.near_duplicate_bits = Some(NEAR_BITS);
    adjust(&mut req);
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert!(out.summary.adds_up(), "{name}: {:?}", out.summary);
    assert!(Cache::open(&out.dir).unwrap().verify().unwrap().is_ok());
    out
}

fn labels(out: &prep::BuildOutcome) -> BTreeMap<String, u16> {
    Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| {
            let m = r.unwrap().meta;
            (m.sample_id, m.label)
        })
        .collect()
}

/// FER+: the generator's vote patterns give known rows and labels under `majority` (patterns 0
/// and 2) and `plurality` (0, 1, 2); the soft modes keep what their rule keeps; the planted copies
/// are reported, their labels coming from their own votes.
#[test]
fn ferplus_synthetic_votes_give_each_rules_known_rows() {
    let Some(fx) = fixture() else { return };
    let w = &fx.synth.wild;
    let regular = 10 * 8;
    assert_eq!(w.ferplus_rows, regular + 3);
    // Row → (FER+ class of its votes, pattern); the copies: r80 = r0, r81 = sadness pattern 0,
    // r82 = r2.
    let row = |i: usize| match i {
        80 => (0, 0),
        81 => (3, 0),
        82 => (2, 2),
        i => (i % 8, i % 5),
    };
    let id = |i: usize| format!("ferplus/r{i:06}");
    let build_mode = |mode| {
        build(
            fx,
            DatasetKind::Ferplus,
            "ferplus/fer2013.csv",
            "e2e-ferplus",
            |r: &mut BuildRequest| r.ferplus_mode = mode,
        )
    };
    for (mode, kept_patterns) in [
        (prep::FerPlusMode::Majority, &[0usize, 2][..]),
        (prep::FerPlusMode::Plurality, &[0, 1, 2][..]),
    ] {
        let out = build_mode(mode);
        let want: BTreeMap<String, u16> = (0..w.ferplus_rows)
            .filter(|&i| kept_patterns.contains(&row(i).1))
            .map(|i| (id(i), row(i).0 as u16))
            .collect();
        assert_eq!(labels(&out), want, "{mode:?}");
        let s = &out.summary;
        assert_eq!(s.seen as usize, w.ferplus_rows, "{mode:?}");
        assert_eq!(
            s.excluded.get(reason::FERPLUS_NO_MAJORITY).copied(),
            Some((w.ferplus_rows - want.len()) as u64),
            "{mode:?}: {s:?}"
        );
        assert_eq!(reported(&out), planted(fx, "ferplus"), "{mode:?}");
        let d = &s.duplicates;
        assert_eq!(
            (
                d.exact_pairs,
                d.exact_within_split,
                d.exact_across_splits,
                d.exact_conflicting,
                d.near_pairs
            ),
            (2, 1, 1, 1, 1),
            "{mode:?}"
        );
    }
    // The soft modes: the rows their rule keeps, labels = the distribution's first maximum.
    for mode in [
        prep::FerPlusMode::Probability,
        prep::FerPlusMode::Crossentropy,
        prep::FerPlusMode::MultiTarget,
    ] {
        let out = build_mode(mode);
        let want: BTreeMap<String, u16> = (0..w.ferplus_rows)
            .filter_map(|i| {
                let (class, p) = row(i);
                let votes = prep::synth::ferplus_votes(class, p);
                shard::votes::ferplus_target(&votes, mode)
                    .ok()
                    .map(|t| (id(i), t.label))
            })
            .collect();
        assert_eq!(labels(&out), want, "{mode:?}");
    }
}

/// RAF-DB as distributed: every listed image cached in its split, with the dataset's box where
/// the box file is there, and exactly the planted duplicates; drop-from-train drops the training
/// members of the two cross-split groups.
#[test]
fn rafdb_synthetic_tree_builds_with_boxes_and_planted_duplicates() {
    let Some(fx) = fixture() else { return };
    let w = &fx.synth.wild;
    assert_eq!((w.rafdb_images, w.rafdb_without_box), (73, 14));
    let out = build(fx, DatasetKind::Rafdb, "rafdb", "e2e-rafdb", |_| {});
    let s = &out.summary;
    assert_eq!(
        (s.seen as usize, s.cached as usize, s.failed_total()),
        (73, 73, 0),
        "{s:?}"
    );
    let cache = Cache::open(&out.dir).unwrap();
    let by_split = &cache.manifest().counts.by_split;
    // 8 of 10 people train, 2 test; the copies: two test, one train.
    assert_eq!((by_split["train"], by_split["test"]), (57, 16));
    let boxed = cache
        .iter()
        .filter(|r| r.as_ref().unwrap().meta.flags & shard::flags::DATASET_BOX != 0)
        .count();
    assert_eq!(boxed, 73 - 14);
    assert_eq!(reported(&out), planted(fx, "rafdb"));
    let d = &out.summary.duplicates;
    assert_eq!(
        (d.exact_across_splits, d.exact_conflicting, d.near_pairs),
        (1, 1, 1)
    );

    let out = build(fx, DatasetKind::Rafdb, "rafdb", "e2e-rafdb", |r| {
        r.config.dedup = DedupMode::DropFromTrain
    });
    let dropped: BTreeSet<String> = prep::dedup::read_table(&out.dir.join("duplicates.parquet"))
        .unwrap()
        .iter()
        .flat_map(|p| {
            (0..2)
                .filter(|&k| p.dropped[k])
                .map(|k| p.samples[k].clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let want: BTreeSet<String> = fx
        .synth
        .wild
        .planted
        .iter()
        .filter(|p| p.dataset == "rafdb" && p.what != "exact-conflicting")
        .map(|p| p.original.clone())
        .collect();
    assert_eq!(dropped, want);
    assert_eq!(out.summary.cached, 71);
}

/// AffectNet: the dataset's landmarks and box, valence / arousal kept, expressions 8–10 excluded
/// by reason, validation as the test split, the 7-class protocol without contempt, and exactly the
/// planted duplicates.
#[test]
fn affectnet_synthetic_lists_build_with_landmarks_and_planted_duplicates() {
    let Some(fx) = fixture() else { return };
    let w = &fx.synth.wild;
    assert_eq!((w.affectnet_rows, w.affectnet_excluded), (93, 10));
    let out = build(
        fx,
        DatasetKind::Affectnet,
        "affectnet",
        "e2e-affectnet",
        |_| {},
    );
    let s = &out.summary;
    assert_eq!((s.seen, s.cached, s.failed_total()), (93, 83, 0), "{s:?}");
    // Person s shows expression 8 + s % 3: persons 0, 3, 6, 9 → none; 1, 4, 7 → uncertain.
    assert_eq!(s.excluded.get(reason::AFFECTNET_NONE), Some(&4));
    assert_eq!(s.excluded.get(reason::AFFECTNET_UNCERTAIN), Some(&3));
    assert_eq!(s.excluded.get(reason::AFFECTNET_NO_FACE), Some(&3));
    let cache = Cache::open(&out.dir).unwrap();
    let by_split = &cache.manifest().counts.by_split;
    assert_eq!((by_split["train"], by_split["test"]), (65, 18));
    for r in cache.iter() {
        let m = r.unwrap().meta;
        assert_ne!(
            m.flags & shard::flags::DATASET_LANDMARKS,
            0,
            "{}",
            m.sample_id
        );
        assert!(m.ext.frames[0].face_box.is_some(), "{}", m.sample_id);
        let va = m.ext.valence_arousal.expect("valence and arousal");
        assert!(va.iter().all(|v| (-1.0..=1.0).contains(v)), "{va:?}");
        if m.label == 1 {
            assert_eq!(va, [0.75, 0.5], "{}: happy", m.sample_id);
        }
    }
    assert_eq!(reported(&out), planted(fx, "affectnet"));

    let seven = build(
        fx,
        DatasetKind::Affectnet,
        "affectnet",
        "e2e-affectnet",
        |r| r.config.affectnet_classes = 7,
    );
    assert_eq!(seven.summary.cached, 83 - 10);
    assert_eq!(
        seven.summary.excluded.get(reason::CONTEMPT_EXCLUDED),
        Some(&10)
    );
}

/// ExpW: one sample per listed face, each cut in its box; the copied photo's two faces are two
/// exact pairs and the brightened photo's two near pairs — and the two faces of one photo are
/// not duplicates of each other (they were, with the whole photo fingerprinted: regression).
#[test]
fn expw_faces_of_one_photo_are_not_duplicates() {
    let Some(fx) = fixture() else { return };
    let w = &fx.synth.wild;
    // 10 people × 4 photos (3 with two faces, 1 with one) + the two copies of two faces.
    assert_eq!((w.expw_faces, w.expw_photos), (74, 42));
    let out = build(fx, DatasetKind::Expw, "expw", "e2e-expw", |_| {});
    let s = &out.summary;
    assert_eq!((s.seen, s.cached, s.failed_total()), (74, 74, 0), "{s:?}");
    let cache = Cache::open(&out.dir).unwrap();
    for r in cache.iter() {
        let m = r.unwrap().meta;
        assert_eq!(m.detector, "dataset_box", "{}", m.sample_id);
    }
    let got = reported(&out);
    assert_eq!(got, planted(fx, "expw"));
    assert_eq!(got.len(), 4);
    for (_, a, b) in &got {
        let photo = |id: &str| id.rsplit_once('/').map(|x| x.0.to_string());
        assert_ne!(photo(a), photo(b), "two faces of one photo reported");
    }
}
