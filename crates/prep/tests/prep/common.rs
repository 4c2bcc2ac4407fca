use face::{GrayConversion, GrayImage};
use prep::{BuildRequest, DatasetKind, ModelFiles, PrepConfig};
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The models from `make setup`, or None with a "skipped" line (a panic when FER_REQUIRE_SHARED
/// is set).
pub fn models(test: &str) -> Option<ModelFiles> {
    let m = ModelFiles {
        shape_predictor: face::default_shape_model_path(),
        cascade: face::cascade_path("lbpcascade_frontalface"),
        fallback: Some(face::cascade_path("haarcascade_frontalface_default")),
    };
    testkit::files_present(test, &[&m.shape_predictor, &m.cascade]).then_some(m)
}

pub use testkit::shared_dir as shared;

pub fn request(
    kind: DatasetKind,
    source: &Path,
    cache_dir: &Path,
    models: ModelFiles,
) -> BuildRequest {
    BuildRequest {
        kind,
        source: source.to_path_buf(),
        cache_dir: cache_dir.to_path_buf(),
        name: None,
        config: PrepConfig::default(),
        fold_list: None,
        ferplus_labels: None,
        ferplus_mode: prep::FerPlusMode::Majority,
        part: None,
        models,
        force_rehash: false,
        qa_samples: 4,
        tool: "prep-tests".into(),
        git_revision: None,
        subjects_file: None,
        failure_policy: Default::default(),
    }
}

/// The embedded public-domain face, grey.
pub fn astronaut() -> GrayImage {
    GrayImage::open(
        &repo_root().join("data/faces/astronaut.png"),
        GrayConversion::PilLuma,
    )
    .expect("data/faces/astronaut.png")
}

/// A `w`×`h` frame with the astronaut scaled to `side` and shifted by (dx, dy), mirrored when asked.
pub fn frame(w: usize, h: usize, side: usize, dx: i64, dy: i64, mirror: bool) -> GrayImage {
    let src = astronaut();
    let mut out = GrayImage::filled(w, h, 90);
    let (ox, oy) = (
        (w as i64 - side as i64) / 2 + dx,
        (h as i64 - side as i64) / 2 + dy,
    );
    let s = src.width() as f64 / side as f64;
    for y in 0..side as i64 {
        for x in 0..side as i64 {
            let (tx, ty) = (ox + x, oy + y);
            if tx < 0 || ty < 0 || tx >= w as i64 || ty >= h as i64 {
                continue;
            }
            let sx = if mirror { side as i64 - 1 - x } else { x };
            let v = src.at(
                ((sx as f64 + 0.5) * s) as usize,
                ((y as f64 + 0.5) * s) as usize,
            );
            out.data_mut()[ty as usize * w + tx as usize] = v;
        }
    }
    out
}

/// The astronaut's face box (left, top, right, bottom) as our detector finds it in the astronaut
/// image, moved into the pixels of `frame(w, h, side, 0, 0, false)`: where a dataset would put
/// its box for that frame.
pub fn astronaut_box_in_frame(models: &ModelFiles, w: usize, h: usize, side: usize) -> [f64; 4] {
    let faces = models.load(false).unwrap();
    let found = faces
        .detect(&astronaut(), None)
        .into_iter()
        .next()
        .unwrap()
        .face_box;
    let s = side as f64 / astronaut().width() as f64;
    let (ox, oy) = ((w - side) as f64 / 2.0, (h - side) as f64 / 2.0);
    [
        ox + found.left as f64 * s,
        oy + found.top as f64 * s,
        ox + found.right as f64 * s,
        oy + found.bottom as f64 * s,
    ]
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn save_png(img: &GrayImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_png(path).unwrap();
}

pub fn save_jpeg(img: &GrayImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let buf =
        image::GrayImage::from_raw(img.width() as u32, img.height() as u32, img.data().to_vec())
            .unwrap();
    buf.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

/// A CK+ tree: subjects S005 and S010 with labelled sequences of 5 frames, plus an unlabelled
/// sequence, a neutral one, one with a garbage Emotion file, one without frames and one whose
/// frames are truncated PNGs.
pub fn ckplus_tree(root: &Path) {
    let img = root.join("cohn-kanade-images");
    let emo = root.join("Emotion");
    let seqs: &[(&str, &str, Option<&str>, bool)] = &[
        ("S005", "001", Some("   3.0000000e+00"), false),
        ("S005", "002", Some("5"), true),
        ("S010", "001", Some("   7.0000000e+00"), false),
        ("S010", "002", Some("1.0"), true),
        ("S010", "003", None, false),          // unlabelled -> excluded
        ("S010", "004", Some("0"), false),     // neutral -> excluded
        ("S011", "001", Some("three"), false), // garbage emotion -> failed
        ("S011", "002", Some("6"), false),     // truncated frames -> failed
    ];
    for (k, (s, q, label, mirror)) in seqs.iter().enumerate() {
        for f in 1..=5u32 {
            let name = format!("{s}_{q}_{f:08}.png");
            let path = img.join(s).join(q).join(&name);
            if *s == "S011" && *q == "002" {
                write(&path, &[0x89, b'P', b'N', b'G', 13, 10]);
            } else {
                save_png(
                    &frame(640, 490, 440, (f as i64) * 2 + k as i64, 3, *mirror),
                    &path,
                );
            }
            if let Some(l) = label {
                if f == 5 {
                    write(
                        &emo.join(s)
                            .join(q)
                            .join(format!("{s}_{q}_{f:08}_emotion.txt")),
                        l.as_bytes(),
                    );
                }
            }
        }
    }
    // A sequence folder without frames, with a label.
    std::fs::create_dir_all(img.join("S011/003")).unwrap();
    write(&emo.join("S011/003/S011_003_00000001_emotion.txt"), b"2");
}

/// `prep build` of the CK+ tree `raw` (see [`ckplus_tree`]) into `caches`, one thread, accepting
/// the tree's planted failures; stdout and stderr are the caller's to set.
pub fn ckplus_build_command(raw: &Path, caches: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prep"));
    c.args([
        "build",
        "--dataset",
        "ckplus",
        "--folds",
        "none",
        "-j",
        "1",
        // The tree holds broken sequences on purpose: accept its failure rate.
        "--max-failure-rate",
        "1",
        "--source",
    ])
    .arg(raw)
    .arg("--cache-dir")
    .arg(caches);
    c
}
