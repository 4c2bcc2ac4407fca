//! The still-image, in-the-wild layouts — FER+ (a FER2013 csv with its `fer2013new.csv`), RAF-DB,
//! AffectNet and ExpW — each in its distributed layout, with duplicates planted so that the
//! duplicate report can be checked against exactly what was planted.
//!
//! Every image is its own "person" (a seeded subject of its own) on a smooth random backdrop:
//! in-the-wild photos differ as wholes, so the difference hashes of two generated images are far
//! apart and only the planted copies are near. Each dataset plants three inputs after its own:
//!
//! * `exact-across-splits`: an image copied byte for byte into the test side, same label;
//! * `exact-conflicting`: an image copied within the training side under another label;
//! * `near`: an image brightened by a few grey levels, in the test side, same label (its decoded
//!   pixels differ, its difference hash does not or barely).
//!
//! ExpW's photos hold two listed faces each, and its copied photo repeats both: two exact pairs,
//! while the two faces of one photo are not duplicates of each other.

use super::files::{encode, write_file};
use super::*;
use crate::dedup::DuplicateKind;
use face::GrayImage;
use shard::KeyedRng;

/// One planted duplicate pair, named by the sample ids `prep build` gives the two inputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlantedDuplicate {
    /// `ferplus`, `rafdb`, `affectnet` or `expw`.
    pub dataset: &'static str,
    /// Exact or near (the kind `duplicates.parquet` must report).
    pub kind: DuplicateKind,
    /// What was planted (`exact-across-splits`, `exact-conflicting`, `near`).
    pub what: &'static str,
    /// The original's sample id.
    pub original: String,
    /// The copy's sample id.
    pub copy: String,
}

/// Counts of the in-the-wild layouts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WildReport {
    /// Rows of `ferplus/fer2013.csv` (= rows of `fer2013new.csv`), planted copies included.
    pub ferplus_rows: usize,
    /// Images in RAF-DB's list, planted copies included.
    pub rafdb_images: usize,
    /// Of those, images written without a box file (found by the detector).
    pub rafdb_without_box: usize,
    /// Rows of AffectNet's two lists, planted copies included.
    pub affectnet_rows: usize,
    /// Of those, rows with expression 8–10 (none, uncertain, no-face).
    pub affectnet_excluded: usize,
    /// Faces listed in ExpW's `label.lst`, planted copies included.
    pub expw_faces: usize,
    /// Photos under ExpW's `image/origin/`.
    pub expw_photos: usize,
    /// Every planted pair.
    pub planted: Vec<PlantedDuplicate>,
}

/// How far the `near` copies are brightened (grey levels).
pub const NEAR_BRIGHTENING: u8 = 5;

/// FER+ vote patterns by row (row mod 5), over (true emotion, second, third, fourth, unknown,
/// not-a-face) — the known answers of `majority` and `plurality`:
///
/// | pattern | votes                         | majority  | plurality |
/// |---------|-------------------------------|-----------|-----------|
/// | 0       | 9 true, 1 second              | true      | true      |
/// | 1       | 4 true, 3, 2, 1               | excluded  | true      |
/// | 2       | 6 true, 1, 1, 2 unknown       | true      | true      |
/// | 3       | 5 true, 5 second (a tie)      | excluded  | excluded  |
/// | 4       | 2 true, 8 not-a-face          | excluded  | excluded  |
pub const FERPLUS_PATTERNS: [[u32; 6]; 5] = [
    [9, 1, 0, 0, 0, 0],
    [4, 3, 2, 1, 0, 0],
    [6, 1, 1, 0, 2, 0],
    [5, 5, 0, 0, 0, 0],
    [2, 0, 0, 0, 0, 8],
];

/// The 10 FERPlus vote columns of a row whose true emotion is FER+ class `class` (0–7) under
/// pattern `p` (the second, third and fourth emotions follow it cyclically).
pub fn ferplus_votes(class: usize, p: usize) -> [u32; 10] {
    let pat = FERPLUS_PATTERNS[p % FERPLUS_PATTERNS.len()];
    let mut v = [0u32; 10];
    for k in 0..4 {
        v[(class + k) % 8] += pat[k];
    }
    v[8] = pat[4];
    v[9] = pat[5];
    v
}

/// FER+ classes (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt): the
/// expression shown and the original FER2013 label written in the csv.
const FERPLUS: [(&str, u8); 8] = [
    ("", 6),
    ("happy", 3),
    ("surprise", 5),
    ("sadness", 4),
    ("anger", 0),
    ("disgust", 1),
    ("fear", 2),
    ("contempt", 0),
];

/// RAF-DB labels 1–7 (surprise, fear, disgust, happiness, sadness, anger, neutral).
const RAFDB: [&str; 7] = [
    "surprise", "fear", "disgust", "happy", "sadness", "anger", "",
];

/// AffectNet expressions 0–7 (neutral, happy, sad, surprise, fear, disgust, anger, contempt) with
/// a typical (valence, arousal).
const AFFECTNET: [(&str, [f32; 2]); 8] = [
    ("", [0.0, 0.0]),
    ("happy", [0.75, 0.5]),
    ("sadness", [-0.625, -0.25]),
    ("surprise", [0.25, 0.75]),
    ("fear", [-0.5, 0.75]),
    ("disgust", [-0.625, 0.375]),
    ("anger", [-0.5, 0.625]),
    ("contempt", [-0.375, 0.25]),
];

/// ExpW labels 0–6 (angry, disgust, fear, happy, sad, surprise, neutral).
const EXPW: [&str; 7] = [
    "anger", "disgust", "fear", "happy", "sadness", "surprise", "",
];

/// Subject-index spaces of the datasets, so that no two generated images share a person.
const FERPLUS_PEOPLE: u64 = 4 << 24;
const RAFDB_PEOPLE: u64 = 1 << 24;
const AFFECTNET_PEOPLE: u64 = 2 << 24;
const EXPW_PEOPLE: u64 = 3 << 24;

/// One in-the-wild photo: person `person` showing `expr` at full intensity on `canvas`, on its own
/// backdrop.
fn photo(base: &BaseFace, seed: u64, person: u64, expr: &str, canvas: &Canvas) -> Frame {
    let subject = Subject::new(seed, person);
    let intensity = if expr.is_empty() { 0.0 } else { 1.0 };
    let mut fr = render(base, &subject, expr, intensity, canvas, person);
    backdrop(&mut fr, &[seed, person, 0xbac]);
    fr
}

/// Replaces what lies outside an ellipse around the face with a smooth random backdrop (a 5×4
/// grid of grey levels, interpolated, plus noise), blended over a soft edge.
fn backdrop(fr: &mut Frame, key: &[u64]) {
    let mut r = KeyedRng::in_domain(KeyedRng::SYNTH, key);
    let grid: Vec<f64> = (0..20).map(|_| r.range(15.0, 240.0)).collect();
    let (w, h) = (fr.image.width(), fr.image.height());
    let xs = fr.landmarks.iter().map(|p| p[0]);
    let ys = fr.landmarks.iter().map(|p| p[1]);
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0 - 0.1 * (y1 - y0));
    let (rx, ry) = (0.62 * (x1 - x0).max(1.0), 0.75 * (y1 - y0).max(1.0));
    let level = |x: f64, y: f64| {
        let gx = x / (w.max(2) - 1) as f64 * 4.0;
        let gy = y / (h.max(2) - 1) as f64 * 3.0;
        let (ix, iy) = ((gx.floor() as usize).min(3), (gy.floor() as usize).min(2));
        let (fx, fy) = (gx - ix as f64, gy - iy as f64);
        let g = |c: usize, r: usize| grid[r * 5 + c];
        (1.0 - fy) * ((1.0 - fx) * g(ix, iy) + fx * g(ix + 1, iy))
            + fy * ((1.0 - fx) * g(ix, iy + 1) + fx * g(ix + 1, iy + 1))
    };
    let data = fr.image.data_mut();
    for y in 0..h {
        for x in 0..w {
            let d = (((x as f64 - cx) / rx).powi(2) + ((y as f64 - cy) / ry).powi(2)).sqrt();
            let a = ((d - 1.0) / 0.2).clamp(0.0, 1.0);
            if a > 0.0 {
                let v = &mut data[y * w + x];
                let bg = level(x as f64, y as f64) + 3.0 * r.normal();
                *v = ((1.0 - a) * *v as f64 + a * bg).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// `img` brightened by [`NEAR_BRIGHTENING`] grey levels (saturating).
fn brightened(img: &GrayImage) -> GrayImage {
    let data = img
        .data()
        .iter()
        .map(|v| v.saturating_add(NEAR_BRIGHTENING))
        .collect();
    GrayImage::new(img.width(), img.height(), data).unwrap_or_else(|_| img.clone())
}

/// The box dlib's predictor needs for the frame's true landmarks, `[left, top, right, bottom]`.
fn face_box(faces: &face::FacePipeline, fr: &Frame, dx: f64) -> [i64; 4] {
    let pts: Vec<[f32; 2]> = fr
        .landmarks
        .iter()
        .map(|p| [(p[0] + dx) as f32, p[1] as f32])
        .collect();
    let b = faces.predictor().box_from_landmarks(&pts);
    [b.left, b.top, b.right, b.bottom]
}

fn jpeg(img: &GrayImage) -> Vec<u8> {
    encode(img, image::ImageFormat::Jpeg)
}

/// Writes `ferplus/`, `rafdb/`, `affectnet/` and `expw/` under `opts.out` with `opts.subjects`
/// images per class (FER+ 8 classes, RAF-DB 7, AffectNet 8 plus one of 8–10, ExpW 7), and the
/// planted pairs in `duplicates-planted.csv` (dataset, kind, what, original, copy).
///
/// Errors: I/O under `out`.
pub fn generate_wild(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
) -> crate::Result<WildReport> {
    let mut report = WildReport::default();
    ferplus::ferplus(base, opts, &mut report)?;
    rafdb::rafdb(base, faces, opts, &mut report)?;
    affectnet::affectnet(base, faces, opts, &mut report)?;
    expw::expw(base, faces, opts, &mut report)?;
    let mut csv = String::from("dataset,kind,what,original,copy\n");
    for p in &report.planted {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            p.dataset, p.kind, p.what, p.original, p.copy
        ));
    }
    write_file(&opts.out.join("duplicates-planted.csv"), csv.as_bytes())?;
    Ok(report)
}

fn usage(i: usize) -> &'static str {
    match i % 10 {
        0..=6 => "Training",
        7 => "PublicTest",
        _ => "PrivateTest",
    }
}

mod affectnet;
mod expw;
mod ferplus;
mod rafdb;
