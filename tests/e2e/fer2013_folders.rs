//! FER2013's image-folder releases (`prep synth` writes both arrangements from the synthetic csv's
//! rows, with the extras real copies carry): each builds to the csv's images, labels and splits,
//! and every planted extra is one row with its own reason.

use super::*;
use prep::inventory::reason;

/// Builds the release under `dir` of the synthetic data.
fn build_release(fx: &Fixture, dir: &str) -> prep::BuildOutcome {
    let out = prep::build(
        &request(
            DatasetKind::Fer2013Folders,
            &fx.raw.join(dir),
            &fx.root.join("cache"),
            dir,
            None,
            &fx.models,
        ),
        &prep::build::NoProgress,
    )
    .unwrap();
    assert!(out.summary.adds_up(), "{dir}: {:?}", out.summary);
    assert!(Cache::open(&out.dir).unwrap().verify().unwrap().is_ok());
    out
}

/// sample id → (label, split), with the csv's ids (`fer2013/r000007`) written as the releases
/// name their images (`angry/Training_7`).
fn samples(out: &prep::BuildOutcome, csv_names: bool) -> BTreeMap<String, (u16, Split)> {
    Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| {
            let m = r.unwrap().meta;
            let id = if csv_names {
                let row: usize = m.sample_id.trim_start_matches("fer2013/r").parse().unwrap();
                let usage = match m.split {
                    Split::Train => "Training",
                    Split::Validation => "PublicTest",
                    _ => "PrivateTest",
                };
                let class = &out.manifest.class_names[m.label as usize];
                format!("{class}/{usage}_{row}")
            } else {
                m.sample_id
            };
            (id, (m.label, m.split))
        })
        .collect()
}

/// (input, reason) of every failure and exclusion row.
fn rows(out: &prep::BuildOutcome) -> Vec<(String, String)> {
    shard::tables::read_failures(&out.dir.join("failures.parquet"))
        .unwrap()
        .into_iter()
        .map(|f| (f.input, f.reason))
        .collect()
}

fn planted(extras: &[prep::synth::PlantedExtra]) -> Vec<(String, String)> {
    extras
        .iter()
        .map(|e| (e.path.clone(), e.reason.clone()))
        .collect()
}

/// Both arrangements hold exactly the csv's images under the csv's labels and splits — the split
/// from each name's Usage, so Kaggle's `test/` gives PublicTest and PrivateTest apart — and the
/// two planted images (one a copy across splits, one sharing a name with an image of another
/// class, as in Kaggle's release); every planted extra (augmented copies, LFS pointers, an
/// unknown folder, a PrivateTest image in `train/`, a bad name, one image in two split folders)
/// is exactly one row with its reason; exact duplicates are found as in the csv.
#[test]
fn fer2013_folder_releases_build_to_the_csvs_images() {
    let Some(fx) = fixture() else { return };
    let releases = &fx.synth.fer2013_folders;
    assert_eq!(releases.images, fx.synth.fer2013_rows);
    let (original, copy) = releases.planted_duplicate.clone().unwrap();
    let mut want = samples(&fx.fer, true);
    let mut csv_counts = fx.fer.summary.split_class.clone();
    for (id, label) in &releases.extra_images {
        want.insert(id.clone(), (*label as u16, Split::Train));
        *csv_counts
            .get_mut("train")
            .unwrap()
            .get_mut(&fx.fer.manifest.class_names[*label])
            .unwrap() += 1;
    }
    for (dir, extras) in [
        ("fer2013-folders", &releases.three_folder_extras),
        ("fer2013-kaggle", &releases.kaggle_extras),
    ] {
        let out = build_release(fx, dir);
        let s = &out.summary;
        assert_eq!(samples(&out, false), want, "{dir}");
        assert_eq!(s.split_class, csv_counts, "{dir}");
        assert_eq!(rows(&out), planted(extras), "{dir}");
        assert_eq!(
            s.seen,
            (releases.images + releases.extra_images.len() + extras.len()) as u64,
            "{dir}: {s:?}"
        );
        // Exact duplicates are found as in the csv: the planted copy across splits, and no
        // other pair than the csv has.
        let dups = &s.duplicates;
        assert_eq!(
            (dups.exact_pairs, dups.exact_across_splits),
            (
                fx.fer.summary.duplicates.exact_pairs + 1,
                fx.fer.summary.duplicates.exact_across_splits + 1
            ),
            "{dir}: {dups:?}"
        );
        let pairs: Vec<Vec<String>> = prep::dedup::read_table(&out.dir.join("duplicates.parquet"))
            .unwrap()
            .into_iter()
            .map(|p| p.samples.to_vec())
            .collect();
        assert!(
            pairs
                .iter()
                .any(|p| p.contains(&original) && p.contains(&copy)),
            "{dir}: {pairs:?}"
        );
        let note = &out.manifest.extra["notes"]["fer2013_images"];
        assert_eq!(
            note["matches_official"], false,
            "{dir}: a synthetic release"
        );
        for (usage, split) in [
            ("Training", "train"),
            ("PublicTest", "validation"),
            ("PrivateTest", "test"),
        ] {
            let n: u64 = csv_counts[split].values().sum();
            assert_eq!(note["by_usage"][usage], n, "{dir} {usage}");
        }
        let shared = note["names_in_two_classes"].as_array().unwrap();
        assert_eq!(shared.len(), 1, "{dir}: {shared:?}");
        // Regression: the first reader's caches (splits from the folders, copies cached) have
        // the same files and settings; the reader's version keeps them from being reused.
        assert_eq!(out.manifest.key_ingredients["config"]["reader"], 2, "{dir}");
    }
    // Every reason the three-folder copy was given one of.
    let reasons: BTreeSet<&str> = releases
        .three_folder_extras
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    for r in [
        reason::AUGMENTED_COPY,
        reason::NOT_AN_IMAGE,
        reason::UNKNOWN_FOLDER,
        reason::SPLIT_MISMATCH,
        reason::BAD_NAME,
        reason::DUPLICATE_NAME,
    ] {
        assert!(reasons.contains(r), "{r} not planted");
    }
}

/// A release without `validation/` whose `test/` has no PublicTest image has nothing to select
/// epochs on, and says so; a root that is not a release at all is refused.
#[test]
fn fer2013_folders_without_public_test_say_so() {
    let Some(fx) = fixture() else { return };
    let root = fx.root.join("raw-no-public");
    let _ = std::fs::remove_dir_all(&root);
    let src = fx.raw.join("fer2013-folders");
    for split in ["train", "test"] {
        for class in std::fs::read_dir(src.join(split)).unwrap().flatten() {
            let to = root.join(split).join(class.file_name());
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(class.path()).unwrap().flatten() {
                // The three-folder copy plants one PublicTest image in test/ too.
                if !f.file_name().to_string_lossy().starts_with("PublicTest") {
                    std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
                }
            }
        }
    }
    let out = prep::build(
        &request(
            DatasetKind::Fer2013Folders,
            &root,
            &fx.root.join("cache"),
            "no-public",
            None,
            &fx.models,
        ),
        &prep::build::NoProgress,
    )
    .unwrap();
    assert!(!out.summary.split_class.contains_key("validation"));
    assert!(out.manifest.extra["notes"]["no_public_test"]
        .as_str()
        .unwrap()
        .contains("PublicTest"));
    let e = prep::build(
        &request(
            DatasetKind::Fer2013Folders,
            &fx.raw.join("ckplus"),
            &fx.root.join("cache"),
            "not-a-release",
            None,
            &fx.models,
        ),
        &prep::build::NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("train/"), "{e}");
}
