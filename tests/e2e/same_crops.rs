//! `train predict` preprocesses an input exactly as `prep build` made the cache's samples (issue
//! 15): for every record of a cache of each layout, the crops that `train predict` cuts from the
//! record's own source input (the sequence folder, the image file, the csv row written as a PNG)
//! equal the cached planes byte for byte. The two sides once had two copies of this code, and the
//! copy in predict had drifted (detection on every frame ignored, stills re-tracked, the
//! cascades taken from the defaults instead of the cache).

use crate::{fixture, request, Fixture};
use prep::DatasetKind;
use shard::Cache;
use std::path::{Path, PathBuf};
use train::predict::InputPreprocessor;

/// How many records used each kind of input.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct InputKinds {
    pub(crate) sequence_folders: usize,
    pub(crate) linked_frames: usize,
    pub(crate) files: usize,
    pub(crate) csv_rows: usize,
}

/// The input `train predict` is given for a record: its sequence folder when the recipe picks the
/// record's frames from it, else a folder of links to its distinct frames (class-folder
/// sequences such as CK+48), its image file, or its csv row written as a PNG.
fn input_of(
    root: &Path,
    meta: &shard::SampleMeta,
    positions: &face::SampleRecipe,
    scratch: &Path,
    kinds: &mut InputKinds,
) -> PathBuf {
    let mut distinct: Vec<&str> = meta.source.iter().map(String::as_str).collect();
    distinct.dedup();
    if let [one] = distinct.as_slice() {
        if let Some((csv, line)) = one.rsplit_once(':') {
            if let Ok(line) = line.parse::<usize>() {
                kinds.csv_rows += 1;
                return csv_row_as_png(&root.join(csv), line, scratch, &meta.sample_id);
            }
        }
        kinds.files += 1;
        return root.join(one);
    }
    let first = root.join(distinct[0]);
    let folder = first.parent().unwrap().to_path_buf();
    let mut images: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| face::is_image_name(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    images.sort();
    let picked: Vec<PathBuf> = positions
        .frame_indices(images.len())
        .into_iter()
        .map(|i| images[i].clone())
        .collect();
    let wanted: Vec<PathBuf> = meta.source.iter().map(|s| root.join(s)).collect();
    if picked == wanted {
        kinds.sequence_folders += 1;
        return folder;
    }
    kinds.linked_frames += 1;
    let dir = scratch.join(meta.sample_id.replace('/', "_"));
    std::fs::create_dir_all(&dir).unwrap();
    for (k, f) in distinct.iter().enumerate() {
        let name = Path::new(f).file_name().unwrap().to_string_lossy();
        std::os::unix::fs::symlink(root.join(f), dir.join(format!("{k:03}-{name}"))).unwrap();
    }
    dir
}

/// Line `line` (1-based, header = 1) of a FER2013 csv as a 48×48 PNG.
fn csv_row_as_png(csv: &Path, line: usize, scratch: &Path, id: &str) -> PathBuf {
    let text = std::fs::read_to_string(csv).unwrap();
    let row = text.lines().nth(line - 1).unwrap();
    let pixels: Vec<u8> = row
        .split(',')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let png = scratch.join(format!("{}.png", id.replace('/', "_")));
    face::GrayImage::new(48, 48, pixels)
        .unwrap()
        .save_png(&png)
        .unwrap();
    png
}

/// Asserts that every record of the cache at `dir` is reproduced byte for byte and returns how
/// its inputs were given.
pub(crate) fn assert_predict_cuts_the_cached_crops(dir: &Path, source_root: &Path) -> InputKinds {
    let cache = Cache::open(dir).unwrap();
    let pre = InputPreprocessor::for_cache(&cache, face::default_shape_model_path()).unwrap();
    let recipe = pre.recipe().clone();
    let scratch = tempfile::tempdir().unwrap();
    let mut kinds = InputKinds::default();
    let mut checked = 0;
    for rec in cache.iter() {
        let rec = rec.unwrap();
        let m = &rec.meta;
        let input = input_of(source_root, m, &recipe, scratch.path(), &mut kinds);
        let crops = pre
            .preprocess(&input)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", m.sample_id, input.display()));
        assert_eq!(crops.len(), recipe.slots(), "{}", m.sample_id);
        let peak = &crops[crops.len() - 1].crops;
        assert!(
            rec.plane("face") == Some(peak.face.data()),
            "{}: face crop differs",
            m.sample_id
        );
        for (k, c) in crops.iter().enumerate() {
            for (name, img) in [
                ("eyes", &c.crops.eyes),
                ("nose", &c.crops.nose),
                ("mouth", &c.crops.mouth),
            ] {
                assert!(
                    rec.plane(&format!("{name}/{k}")) == Some(img.data()),
                    "{}: {name}/{k} differs ({})",
                    m.sample_id,
                    input.display()
                );
            }
            assert_eq!(c.landmarks, m.landmarks[k], "{}: slot {k}", m.sample_id);
        }
        assert_eq!(crops[0].detector, m.detector, "{}", m.sample_id);
        checked += 1;
    }
    assert!(checked > 0 && checked == cache.len(), "{}", dir.display());
    kinds
}

/// A JAFFE-named flat folder (`SA.HA1.1.png`) of the synthetic CK+ peak frames.
fn synthetic_jaffe(fx: &Fixture) -> PathBuf {
    let out = fx.root.join("raw/jaffe");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // The synthetic CK+ sequences 001–006 show these expressions (prep synth's order).
    let codes = ["AN", "DI", "FE", "HA", "SA", "SU"];
    let ck = fx.raw.join("ckplus/cohn-kanade-images");
    for s in 0..4u8 {
        let subject = format!("S{:03}", 501 + s as usize);
        for (q, code) in codes.iter().enumerate() {
            let seq = ck.join(&subject).join(format!("{:03}", q + 1));
            let mut frames: Vec<PathBuf> = std::fs::read_dir(&seq)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            frames.sort();
            let peak = frames.last().unwrap();
            let name = format!("S{}.{code}1.{}.png", (b'A' + s) as char, q + 1);
            std::fs::copy(peak, out.join(name)).unwrap();
        }
    }
    out
}

#[test]
fn predict_preprocessing_equals_the_cached_crops_on_every_synthetic_layout() {
    let Some(fx) = fixture() else { return };
    let ck = assert_predict_cuts_the_cached_crops(&fx.ck.dir, &fx.raw.join("ckplus"));
    assert!(ck.sequence_folders > 0 && ck.linked_frames == 0, "{ck:?}");
    let ou = assert_predict_cuts_the_cached_crops(&fx.ou.dir, &fx.raw.join("oulu"));
    assert!(ou.sequence_folders > 0 && ou.linked_frames == 0, "{ou:?}");
    let fer = assert_predict_cuts_the_cached_crops(&fx.fer.dir, &fx.raw.join("fer2013"));
    assert_eq!(fer.csv_rows as u64, Cache::open(&fx.fer.dir).unwrap().len());
    let jaffe_src = synthetic_jaffe(fx);
    let caches = tempfile::tempdir().unwrap();
    let jaffe = prep::build(
        &request(
            DatasetKind::Jaffe,
            &jaffe_src,
            caches.path(),
            "e2e-jaffe",
            None,
            &fx.models,
        ),
        &prep::build::NoProgress,
    )
    .unwrap();
    assert_eq!(jaffe.summary.cached, 24, "{:?}", jaffe.summary);
    let j = assert_predict_cuts_the_cached_crops(&jaffe.dir, &jaffe_src);
    assert_eq!(j.files, 24);
}

#[test]
fn predict_refuses_a_cache_it_cannot_reproduce_and_says_why() {
    let Some(fx) = fixture() else { return };
    let cache = Cache::open(&fx.ck.dir).unwrap();
    // Another dlib model file than the one the cache key recorded.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(&fx.models.shape_predictor, other.path()).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(other.path())
            .unwrap();
        f.write_all(b"\0").unwrap();
    }
    let e = InputPreprocessor::for_cache(&cache, other.path().to_path_buf())
        .err()
        .expect("a different model was accepted")
        .to_string();
    assert!(
        e.contains("shape_predictor") && e.contains("built with"),
        "{e}"
    );
    // A cache built from the dataset's landmark files.
    let caches = tempfile::tempdir().unwrap();
    let mut req = request(
        DatasetKind::Ckplus,
        &fx.raw.join("ckplus"),
        caches.path(),
        "e2e-ck-landmarks",
        Some(fx.raw.join("ckplus/folds.txt")),
        &fx.models,
    );
    req.config.dataset_landmarks = true;
    req.qa_samples = 0;
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let e = InputPreprocessor::for_cache(
        &Cache::open(&out.dir).unwrap(),
        fx.models.shape_predictor.clone(),
    )
    .err()
    .expect("dataset landmarks were accepted")
    .to_string();
    assert!(e.contains("dataset_landmarks"), "{e}");
}

#[test]
fn real_predict_preprocessing_equals_the_cached_crops() {
    let Some(fx) = fixture() else { return };
    let Some(shared) = crate::shared("real_predict_preprocessing_equals_the_cached_crops") else {
        return;
    };
    let caches = tempfile::tempdir().unwrap();
    let build = |kind, source: PathBuf, name: &str| {
        let mut req = request(kind, &source, caches.path(), name, None, &fx.models);
        req.qa_samples = 0;
        prep::build(&req, &prep::build::NoProgress).unwrap()
    };
    let jaffe_src = shared.join("data/jaffe");
    let jaffe = build(DatasetKind::Jaffe, jaffe_src.clone(), "real-jaffe");
    let j = assert_predict_cuts_the_cached_crops(&jaffe.dir, &jaffe_src);
    assert_eq!(j.files, 213);
    let ck48_src = shared.join("data/ckplus48");
    let ck48 = build(DatasetKind::Ckplus48, ck48_src.clone(), "real-ckplus48");
    let c = assert_predict_cuts_the_cached_crops(&ck48.dir, &ck48_src);
    assert_eq!(c.linked_frames, 327, "{c:?}");
    let csv = shared.join("data/fer2013_sample/fer2013.csv");
    let fer = build(DatasetKind::Fer2013, csv.clone(), "real-fer2013");
    let f = assert_predict_cuts_the_cached_crops(&fer.dir, csv.parent().unwrap());
    assert_eq!(f.csv_rows as u64, fer.summary.cached);
}
