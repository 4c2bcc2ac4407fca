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

use super::layouts::{encode, write_file};
use super::*;
use face::GrayImage;
use shard::KeyedRng;

/// One planted duplicate pair, named by the sample ids `prep build` gives the two inputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlantedDuplicate {
    /// `ferplus`, `rafdb`, `affectnet` or `expw`.
    pub dataset: &'static str,
    /// `exact` or `near` (the kind in `duplicates.parquet`).
    pub kind: &'static str,
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
    ferplus(base, opts, &mut report)?;
    rafdb(base, faces, opts, &mut report)?;
    affectnet(base, faces, opts, &mut report)?;
    expw(base, faces, opts, &mut report)?;
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

fn ferplus(base: &BaseFace, opts: &SynthOptions, report: &mut WildReport) -> crate::Result<()> {
    use rayon::prelude::*;
    let canvas = Canvas {
        width: 48,
        height: 48,
        eye_mid: [0.5, 0.38],
        iod: 17.0,
        fill: 110,
    };
    // (pixels, FER2013 label, Usage, votes)
    let mut rows: Vec<(Vec<u8>, u8, &str, [u32; 10])> = (0..opts.subjects * FERPLUS.len())
        .into_par_iter()
        .map(|i| {
            let (s, c) = (i / FERPLUS.len(), i % FERPLUS.len());
            let fr = photo(
                base,
                opts.seed,
                FERPLUS_PEOPLE + i as u64,
                FERPLUS[c].0,
                &canvas,
            );
            (
                fr.image.into_data(),
                FERPLUS[c].1,
                usage(s),
                ferplus_votes(c, i),
            )
        })
        .collect();
    let id = |r: usize| format!("ferplus/r{r:06}");
    let n = rows.len();
    if n >= 8 {
        // Rows 0, 2 and 5 are Training (person 0) and kept under every rule (patterns 0, 2, 0):
        // an excluded row is no input, and a copy of it no duplicate.
        let (r0, r1, r2) = (rows[0].clone(), rows[5].clone(), rows[2].clone());
        let near: Vec<u8> =
            r2.0.iter()
                .map(|v| v.saturating_add(NEAR_BRIGHTENING))
                .collect();
        // The conflicting copy: another label and another winning emotion (sadness, pattern 0).
        let plants = [
            (
                (r0.0, r0.1, "PublicTest", r0.3),
                0,
                "exact",
                "exact-across-splits",
            ),
            (
                (r1.0, 4, "Training", ferplus_votes(3, 0)),
                5,
                "exact",
                "exact-conflicting",
            ),
            ((near, r2.1, "PrivateTest", r2.3), 2, "near", "near"),
        ];
        for (row, of, kind, what) in plants {
            report.planted.push(PlantedDuplicate {
                dataset: "ferplus",
                kind,
                what,
                original: id(of),
                copy: id(rows.len()),
            });
            rows.push(row);
        }
    }
    let mut csv = String::from("emotion,pixels,Usage\n");
    let mut plus = String::from(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n",
    );
    for (i, (px, label, usage, votes)) in rows.iter().enumerate() {
        let px: Vec<String> = px.iter().map(|p| p.to_string()).collect();
        csv.push_str(&format!("{label},{},{usage}\n", px.join(" ")));
        let v: Vec<String> = votes.iter().map(|x| x.to_string()).collect();
        plus.push_str(&format!("{usage},fer{i:07}.png,{}\n", v.join(",")));
    }
    let dir = opts.out.join("ferplus");
    write_file(&dir.join("fer2013.csv"), csv.as_bytes())?;
    write_file(&dir.join("fer2013new.csv"), plus.as_bytes())?;
    report.ferplus_rows = rows.len();
    Ok(())
}

fn rafdb(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let root = opts.out.join("rafdb");
    let original = Canvas {
        width: 320,
        height: 240,
        eye_mid: [0.5, 0.42],
        iod: 56.0,
        fill: 100,
    };
    let aligned = Canvas {
        width: 100,
        height: 100,
        eye_mid: [0.5, 0.4],
        iod: 34.0,
        fill: 100,
    };
    // Names are numbered per split in generation order: (index, label 1–7, split name, number).
    let mut counters = [0usize; 2];
    let mut entries: Vec<(usize, usize, &str, usize)> = Vec::new();
    for i in 0..opts.subjects * RAFDB.len() {
        let test = (i / RAFDB.len()) % 10 >= 8;
        counters[test as usize] += 1;
        let split = if test { "test" } else { "train" };
        entries.push((i, i % RAFDB.len() + 1, split, counters[test as usize]));
    }
    // Every fifth image ships without a box file: the detector finds it.
    let written: Vec<crate::Result<(String, GrayImage)>> = entries
        .par_iter()
        .map(|&(i, label, split, k)| {
            let stem = format!("{split}_{k:05}");
            let person = RAFDB_PEOPLE + i as u64;
            let fr = photo(base, opts.seed, person, RAFDB[label - 1], &original);
            write_file(
                &root.join("Image/original").join(format!("{stem}.jpg")),
                &jpeg(&fr.image),
            )?;
            if i % 5 != 4 {
                let b = face_box(faces, &fr, 0.0);
                write_file(
                    &root
                        .join("Annotation/boundingbox")
                        .join(format!("{stem}_boundingbox.txt")),
                    format!("{}.0 {}.0 {}.0 {}.0\n", b[0], b[1], b[2], b[3]).as_bytes(),
                )?;
            }
            // Five points (eye centres, nose tip, mouth corners), then gender, race, age.
            let (l, r) = eye_centres(&fr.landmarks);
            let lm = &fr.landmarks;
            let five = [l, r, lm[30], lm[48], lm[54]];
            let mut manual: String = five
                .iter()
                .map(|p| format!("{:.2}\t{:.2}\n", p[0], p[1]))
                .collect();
            manual.push_str("0\n0\n1\n");
            write_file(
                &root
                    .join("Annotation/manual")
                    .join(format!("{stem}_manu_attri.txt")),
                manual.as_bytes(),
            )?;
            let small = photo(base, opts.seed, person, RAFDB[label - 1], &aligned);
            write_file(
                &root
                    .join("Image/aligned")
                    .join(format!("{stem}_aligned.jpg")),
                &jpeg(&small.image),
            )?;
            Ok((stem, fr.image))
        })
        .collect();
    let mut list = String::new();
    let mut images = Vec::new();
    for ((_, label, _, _), w) in entries.iter().zip(written) {
        let (stem, img) = w?;
        list.push_str(&format!("{stem}.jpg {label}\n"));
        images.push((stem, *label, img));
    }
    report.rafdb_without_box = entries.iter().filter(|e| e.0 % 5 == 4).count();
    report.rafdb_images = entries.len();
    // The planted copies: the boxes are copied too (a copy is the same annotated image).
    if images.len() >= 3 {
        let copy_file = |from: &str, to: &str| -> crate::Result<()> {
            for (dir, suffix) in [
                ("Image/original", ".jpg"),
                ("Annotation/boundingbox", "_boundingbox.txt"),
                ("Annotation/manual", "_manu_attri.txt"),
                ("Image/aligned", "_aligned.jpg"),
            ] {
                let src = root.join(dir).join(format!("{from}{suffix}"));
                if src.is_file() {
                    let bytes = std::fs::read(&src).map_err(|e| super::layouts::io_err(&src, e))?;
                    write_file(&root.join(dir).join(format!("{to}{suffix}")), &bytes)?;
                }
            }
            Ok(())
        };
        let mut next = |split: usize| {
            counters[split] += 1;
            format!("{}_{:05}", ["train", "test"][split], counters[split])
        };
        let plants = [
            (0usize, 1usize, None, "exact", "exact-across-splits"),
            (
                1,
                0,
                Some(images[1].1 % 7 + 1),
                "exact",
                "exact-conflicting",
            ),
            (2, 1, None, "near", "near"),
        ];
        for (of, split, relabel, kind, what) in plants {
            let (stem, label, img) = &images[of];
            let to = next(split);
            copy_file(stem, &to)?;
            if kind == "near" {
                write_file(
                    &root.join("Image/original").join(format!("{to}.jpg")),
                    &jpeg(&brightened(img)),
                )?;
            }
            list.push_str(&format!("{to}.jpg {}\n", relabel.unwrap_or(*label)));
            report.planted.push(PlantedDuplicate {
                dataset: "rafdb",
                kind,
                what,
                original: format!("rafdb/{stem}"),
                copy: format!("rafdb/{to}"),
            });
            report.rafdb_images += 1;
        }
    }
    write_file(
        &root.join(crate::datasets::rafdb::LIST_FILE),
        list.as_bytes(),
    )
}

fn affectnet(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let root = opts.out.join("affectnet");
    let canvas = Canvas {
        width: 256,
        height: 256,
        eye_mid: [0.5, 0.4],
        iod: 58.0,
        fill: 100,
    };
    // Per person: the 8 expressions 0–7, then one of 8–10 (none, uncertain, no-face).
    let per = AFFECTNET.len() + 1;
    let rows: Vec<crate::Result<(bool, String, GrayImage)>> = (0..opts.subjects * per)
        .into_par_iter()
        .map(|i| {
            let (s, c) = (i / per, i % per);
            let expression = if c < AFFECTNET.len() { c } else { 8 + s % 3 };
            let (expr, va) = AFFECTNET
                .get(expression)
                .copied()
                .unwrap_or(("", [0.0, 0.0]));
            let fr = photo(base, opts.seed, AFFECTNET_PEOPLE + i as u64, expr, &canvas);
            let rel = format!("{}/{:08x}.jpg", 100 + s, 0x5eed_0000 + i);
            write_file(
                &root.join("Manually_Annotated_Images").join(&rel),
                &jpeg(&fr.image),
            )?;
            let b = face_box(faces, &fr, 0.0);
            let lm: Vec<String> = fr
                .landmarks
                .iter()
                .flat_map(|p| [format!("{:.2}", p[0]), format!("{:.2}", p[1])])
                .collect();
            let row = format!(
                "{rel},{},{},{},{},{},{expression},{},{}\n",
                b[0],
                b[1],
                b[2] - b[0] + 1,
                b[3] - b[1] + 1,
                lm.join(";"),
                va[0],
                va[1]
            );
            Ok((s % 10 >= 8, row, fr.image))
        })
        .collect();
    let header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n";
    let mut lists = [String::from(header), String::from(header)];
    let mut kept: Vec<(String, GrayImage)> = Vec::new();
    for r in rows {
        let (validation, row, img) = r?;
        lists[validation as usize].push_str(&row);
        kept.push((row, img));
    }
    report.affectnet_rows = kept.len();
    report.affectnet_excluded = opts.subjects;
    let id = |row: &str| {
        let rel = row.split(',').next().unwrap_or_default();
        format!("affectnet/{}", rel.trim_end_matches(".jpg"))
    };
    // Planted: rows 0, 1 and 2 (person 0, training), copied as other files of directory 99.
    if kept.len() >= 3 {
        let plants = [
            (0usize, 1usize, None, "exact", "exact-across-splits"),
            (1, 0, Some(6), "exact", "exact-conflicting"),
            (2, 1, None, "near", "near"),
        ];
        for (k, (of, list, relabel, kind, what)) in plants.into_iter().enumerate() {
            let (row, img) = &kept[of];
            let rel = format!("99/copy{k}.jpg");
            let bytes = if kind == "near" {
                jpeg(&brightened(img))
            } else {
                let src = root
                    .join("Manually_Annotated_Images")
                    .join(row.split(',').next().unwrap_or_default());
                std::fs::read(&src).map_err(|e| super::layouts::io_err(&src, e))?
            };
            write_file(&root.join("Manually_Annotated_Images").join(&rel), &bytes)?;
            let mut f: Vec<String> = row.trim_end().split(',').map(str::to_string).collect();
            f[0] = rel;
            if let Some(l) = relabel {
                f[6] = format!("{l}");
            }
            let copy = f.join(",") + "\n";
            lists[list].push_str(&copy);
            report.planted.push(PlantedDuplicate {
                dataset: "affectnet",
                kind,
                what,
                original: id(row),
                copy: id(&copy),
            });
            report.affectnet_rows += 1;
        }
    }
    let dir = root.join("Manually_Annotated_file_lists");
    write_file(&dir.join("training.csv"), lists[0].as_bytes())?;
    write_file(&dir.join("validation.csv"), lists[1].as_bytes())
}

fn expw(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let root = opts.out.join("expw");
    // Two faces side by side, each on its own 200×240 half.
    let half = Canvas {
        width: 200,
        height: 240,
        eye_mid: [0.5, 0.42],
        iod: 46.0,
        fill: 100,
    };
    let per = EXPW.len().div_ceil(2);
    // (photo name, its image, its list lines)
    let photos: Vec<crate::Result<(String, GrayImage, String)>> = (0..opts.subjects * per)
        .into_par_iter()
        .map(|p| {
            let j = p % per;
            let labels: Vec<usize> = [2 * j, 2 * j + 1]
                .into_iter()
                .filter(|&l| l < EXPW.len())
                .collect();
            let name = format!(
                "{}_synthetic_{:04}.jpg",
                crate::datasets::expw::EXPW_CLASSES[labels[0]],
                p
            );
            let mut px = vec![0u8; 2 * half.width * half.height];
            let mut lines = String::new();
            for side in 0..2 {
                let person = EXPW_PEOPLE + (2 * p + side) as u64;
                let (expr, label) = match labels.get(side) {
                    Some(&l) => (EXPW[l], Some(l)),
                    None => ("", None),
                };
                // An unlisted face on the right of a one-face photo: a bystander.
                let fr = photo(base, opts.seed, person, expr, &half);
                for y in 0..half.height {
                    let row = &fr.image.data()[y * half.width..(y + 1) * half.width];
                    let at = y * 2 * half.width + side * half.width;
                    px[at..at + half.width].copy_from_slice(row);
                }
                if let Some(l) = label {
                    let b = face_box(faces, &fr, (side * half.width) as f64);
                    lines.push_str(&format!(
                        "{name} {side} {} {} {} {} {:.3} {l}\n",
                        b[1],
                        b[0],
                        b[2],
                        b[3],
                        40.0 + p as f64 % 17.0
                    ));
                }
            }
            let img = GrayImage::new(2 * half.width, half.height, px)
                .map_err(|e| crate::PrepError::parse(&root, 0, format!("composing {name}: {e}")))?;
            write_file(&root.join("image/origin").join(&name), &jpeg(&img))?;
            Ok((name, img, lines))
        })
        .collect();
    let mut list = String::new();
    let mut done = Vec::new();
    for p in photos {
        let (name, img, lines) = p?;
        list.push_str(&lines);
        report.expw_faces += lines.lines().count();
        done.push((name, img, lines));
    }
    report.expw_photos = done.len();
    let id = |name: &str, face: &str| format!("expw/{}/{face}", name.trim_end_matches(".jpg"));
    // Planted: photo 0 copied byte for byte (both faces: two exact pairs); photo 1 brightened
    // (two near pairs). ExpW has no splits: where the copies land is the fold assignment's.
    if done.len() >= 2 {
        for (of, kind, what) in [(0usize, "exact", "exact-copy"), (1, "near", "near")] {
            let (name, img, lines) = &done[of];
            let to = format!("copy_{name}");
            let bytes = if kind == "near" {
                jpeg(&brightened(img))
            } else {
                let src = root.join("image/origin").join(name);
                std::fs::read(&src).map_err(|e| super::layouts::io_err(&src, e))?
            };
            write_file(&root.join("image/origin").join(&to), &bytes)?;
            for line in lines.lines() {
                let face = line.split_whitespace().nth(1).unwrap_or("0");
                list.push_str(&format!("{to}{}\n", &line[name.len()..]));
                report.planted.push(PlantedDuplicate {
                    dataset: "expw",
                    kind,
                    what,
                    original: id(name, face),
                    copy: id(&to, face),
                });
                report.expw_faces += 1;
            }
            report.expw_photos += 1;
        }
    }
    write_file(
        &root.join(crate::datasets::expw::LABEL_FILE),
        list.as_bytes(),
    )
}
