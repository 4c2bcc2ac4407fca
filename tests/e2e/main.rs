//! End to end on the synthetic datasets of `prep synth`: layouts and counts, fold lists, caches
//! that verify, crop sizes, landmark accuracy against the true warped points, and a k-fold
//! training run that learns. CPU, well under a minute.

mod fuzz_replay;

use prep::synth::{generate, BaseFace, SynthOptions};
use prep::{BuildRequest, DatasetKind, ModelFiles, PrepConfig};
use shard::{Cache, Split};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models() -> Option<ModelFiles> {
    let m = ModelFiles {
        shape_predictor: face::default_shape_model_path(),
        cascade: face::cascade_path("lbpcascade_frontalface"),
        fallback: Some(face::cascade_path("haarcascade_frontalface_default")),
    };
    if m.shape_predictor.exists() && m.cascade.exists() {
        return Some(m);
    }
    let why = "skipped: e2e: model files missing (run `make setup`)";
    assert!(std::env::var_os("FER_REQUIRE_SHARED").is_none(), "{why}");
    println!("{why}");
    None
}

fn request(
    kind: DatasetKind,
    source: &Path,
    caches: &Path,
    name: &str,
    folds: Option<PathBuf>,
    m: &ModelFiles,
) -> BuildRequest {
    BuildRequest {
        kind,
        source: source.to_path_buf(),
        cache_dir: caches.to_path_buf(),
        name: Some(name.into()),
        config: PrepConfig::default(),
        fold_list: folds,
        ferplus_labels: None,
        part: None,
        models: m.clone(),
        force_rehash: false,
        qa_samples: 6,
        tool: "e2e".into(),
        git_revision: None,
    }
}

#[test]
fn synthetic_datasets_to_caches_to_a_model_that_learns() {
    let Some(m) = models() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    let caches = tmp.path().join("cache");
    let faces = prep::build::load_faces(&m, &PrepConfig::default()).unwrap();
    let img = face::GrayImage::open(
        &repo().join("data/faces/astronaut.png"),
        face::GrayConversion::PilLuma,
    )
    .unwrap();
    let found = faces
        .detect(&img, None)
        .into_iter()
        .next()
        .expect("the astronaut's face");
    let base = BaseFace::new(img, &found.landmarks.precise);
    let report = generate(
        &base,
        &faces,
        &SynthOptions {
            out: raw.clone(),
            subjects: 10,
            seed: 3,
            frames: 4,
        },
    )
    .unwrap();
    assert_eq!(report.ckplus_sequences, 70);
    assert_eq!(report.ckplus_frames, 10 * (7 * 4 + 3));
    assert_eq!(report.oulu_sequences, 60);
    assert_eq!(report.fer2013_rows, 140);
    // The detector finds the warped faces and its landmarks are close to the true ones.
    let l = &report.landmarks;
    assert!(l.found * 10 >= l.frames * 9, "{l:?}");
    assert!(l.mean < 0.10, "{l:?}");

    // CK+: labelled sequences cached, unlabelled ones excluded, the generated authors'-format folds.
    let ck = prep::build(
        &request(
            DatasetKind::Ckplus,
            &raw.join("ckplus"),
            &caches,
            "e2e-ckplus",
            Some(raw.join("ckplus/folds.txt")),
            &m,
        ),
        &prep::build::NoProgress,
    )
    .unwrap();
    let s = &ck.summary;
    assert!(s.adds_up());
    assert_eq!((s.seen, s.cached, s.failed_total()), (80, 70, 0), "{s:?}");
    assert_eq!(s.excluded.get("unlabelled"), Some(&10));
    assert_eq!(s.folds.as_ref().unwrap().listed, 70);
    let cache = Cache::open(&ck.dir).unwrap();
    assert!(cache.verify().unwrap().is_ok());
    let mut fold_subjects: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    for r in cache.iter() {
        let r = r.unwrap();
        let Split::Fold(f) = r.meta.split else {
            panic!("{:?}", r.meta.split)
        };
        fold_subjects
            .entry(f)
            .or_default()
            .insert(r.meta.subject.clone());
        assert_eq!(r.plane("face").unwrap().len(), 128 * 128);
        assert_eq!(r.plane("eyes/2").unwrap().len(), 48 * 128);
        assert_eq!(r.plane("nose/0").unwrap().len(), 64 * 32);
        assert_eq!(r.plane("mouth/1").unwrap().len(), 32 * 64);
        assert_eq!(r.meta.frame_indices, vec![1, 3, 4]);
    }
    assert_eq!(fold_subjects.len(), 10);
    let all: Vec<&String> = fold_subjects.values().flatten().collect();
    assert_eq!(
        all.len(),
        all.iter().collect::<BTreeSet<_>>().len(),
        "a subject in two folds"
    );

    // Oulu-CASIA and FER2013 demo caches.
    let ou = prep::build(
        &request(
            DatasetKind::Oulu,
            &raw.join("oulu"),
            &caches,
            "e2e-oulu",
            Some(raw.join("oulu/folds.txt")),
            &m,
        ),
        &prep::build::NoProgress,
    )
    .unwrap();
    assert_eq!(
        (ou.summary.cached, ou.summary.failed_total()),
        (60, 0),
        "{:?}",
        ou.summary
    );
    assert!(Cache::open(&ou.dir).unwrap().verify().unwrap().is_ok());
    let fer = prep::build(
        &request(
            DatasetKind::Fer2013,
            &raw.join("fer2013/fer2013.csv"),
            &caches,
            "e2e-fer2013",
            None,
            &m,
        ),
        &prep::build::NoProgress,
    )
    .unwrap();
    assert_eq!(fer.summary.cached, 140);
    let by_split = &Cache::open(&fer.dir)
        .unwrap()
        .manifest()
        .counts
        .by_split
        .clone();
    assert_eq!(
        (by_split["train"], by_split["validation"], by_split["test"]),
        (98, 14, 28)
    );

    // Training on the CK+ cache learns (training loss falls, training accuracy over twice the 1/7 of chance).
    let cfg = train::ExperimentConfig::parse(
        &format!(
            r#"
name = "e2e"
cache = "{}"
runs_dir = "{}"
folds = [0, 5]
[model]
width = 0.125
ssm_batchnorm = true
face_size = [64, 64]
part_scale = 0.5
lstm_side = 8
lstm_layers = 2
head_relu = false
[train]
epochs = 16
batch = 8
lr = 1e-3
threads = 2
mixup_alpha = 0.0
eval_every = 8
device = "cpu"
"#,
            ck.dir.display(),
            tmp.path().join("runs").display()
        ),
        Path::new("e2e.toml"),
    )
    .unwrap();
    let out = train::trainer::run_experiment(
        &cfg,
        train::trainer::RunOptions {
            resume: None,
            run_name: Some("r".into()),
            git_revision: None,
            progress: &train::trainer::Quiet,
            stop_after_epochs: None,
        },
    )
    .unwrap();
    assert_eq!(out.folds.len(), 2);
    let metrics = train::report::read_metrics(&out.dir).unwrap();
    for fold in ["fold0", "fold5"] {
        let h: Vec<_> = metrics.iter().filter(|r| r.fold == fold).collect();
        assert_eq!(h.len(), 16);
        let (first, last) = (h[0], h[15]);
        assert!(
            last.loss < 0.95 * first.loss,
            "{fold}: loss {} -> {}",
            first.loss,
            last.loss
        );
        assert!(
            last.train_accuracy > 0.3,
            "{fold}: training accuracy {}",
            last.train_accuracy
        );
    }
    assert!(out.dir.join("summary.md").exists());

    // train predict: a sequence folder, a still image, and inputs without a face, reported.
    let p = train::predict::Predictor::load(&out.dir, tch::Device::Cpu, &m).unwrap();
    let seq = raw.join("ckplus/cohn-kanade-images/S501/003");
    let still = raw.join("ckplus/cohn-kanade-images/S502/001/S502_001_00000004.png");
    let blank = tmp.path().join("blank.png");
    face::GrayImage::filled(200, 150, 128)
        .save_png(&blank)
        .unwrap();
    let r = p
        .predict(&[seq, still, blank, raw.join("README.txt")])
        .unwrap();
    assert_eq!(r.len(), 4);
    for ok in &r[..2] {
        assert!(ok.error.is_none(), "{ok:?}");
        assert_eq!(ok.probabilities.len(), 7);
        assert!((ok.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        assert!(ok.class.is_some());
    }
    assert_eq!(r[2].error.as_deref(), Some("no face found"));
    assert!(r[3].error.is_some() && r[3].class.is_none());
}
