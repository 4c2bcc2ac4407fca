//! Writing the synthetic CK+, Oulu-CASIA and FER2013 datasets and their fold lists (the
//! in-the-wild layouts are in `wild`).

use super::fer_folders::FerRow;
use super::files::{encode, write_file};
use super::*;

/// What `prep synth` writes and how.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Output root (`ckplus/`, `oulu/`, `fer2013/`, `ferplus/`, `rafdb/`, `affectnet/`, `expw/`
    /// are created under it).
    pub out: std::path::PathBuf,
    /// Number of subjects (default 20; folds = subject mod 10).
    pub subjects: usize,
    /// Seed (default 0).
    pub seed: u64,
    /// Frames per sequence, neutral to peak (default 6).
    pub frames: usize,
}

/// Landmark error of our pipeline on the generated faces, in inter-ocular units.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LandmarkCheck {
    /// Frames checked.
    pub frames: usize,
    /// Frames where a face was found.
    pub found: usize,
    /// Mean error over found frames (mean over the 68 points / true inter-ocular distance).
    pub mean: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Counts of a generation.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SynthReport {
    /// CK+ labelled sequences (plus one unlabelled per subject).
    pub ckplus_sequences: usize,
    /// CK+ frames written.
    pub ckplus_frames: usize,
    /// Oulu-CASIA sequences.
    pub oulu_sequences: usize,
    /// FER2013 rows.
    pub fer2013_rows: usize,
    /// The FER2013 image-folder releases written from those rows, with their planted extras.
    pub fer2013_folders: super::fer_folders::FolderReleases,
    /// Our detector and predictor on the CK+ peak frames.
    pub landmarks: LandmarkCheck,
    /// The in-the-wild layouts (FER+, RAF-DB, AffectNet, ExpW) and their planted duplicates.
    pub wild: WildReport,
}

/// Oulu-CASIA folder names in label order with the authors' fold-list codes.
const OULU: [(&str, &str, u16); 6] = [
    ("Anger", "anger", 1),
    ("Disgust", "disgust", 3),
    ("Fear", "fear", 4),
    ("Happiness", "happy", 5),
    ("Sadness", "sadness", 6),
    ("Surprise", "surprise", 7),
];

/// FER2013 labels 0–6 and the expression that shows them ("" = neutral).
const FER: [&str; 7] = [
    "anger", "disgust", "fear", "happy", "sadness", "surprise", "",
];

/// Writes the three demo datasets and fold lists and the in-the-wild layouts
/// ([`generate_wild`]), and measures `faces` on the CK+ peak frames.
///
/// Errors: I/O under `out`.
pub fn generate(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
) -> crate::Result<SynthReport> {
    use rayon::prelude::*;
    let frames = opts.frames.max(2);
    let subjects: Vec<Subject> = (0..opts.subjects)
        .map(|i| Subject::new(opts.seed, i as u64))
        .collect();
    let mut report = SynthReport::default();
    let ck = opts.out.join("ckplus");
    let ck_canvas = Canvas {
        width: 640,
        height: 490,
        eye_mid: [0.5, 0.4],
        iod: 105.0,
        fill: 96,
    };
    // (subject, sequence, code) — code 0 = unlabelled neutral sequence.
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    for s in 0..subjects.len() {
        for (k, _) in EXPRESSIONS.iter().enumerate() {
            jobs.push((s, k + 1, k + 1));
        }
        jobs.push((s, EXPRESSIONS.len() + 1, 0));
    }
    let middle = ((frames - 1) as f64 * 0.5 + 0.5).floor() as usize + 1;
    // Per sequence: frames written, and (error, face found) of its peak frame.
    type SequenceChecks = (usize, Vec<(f64, bool)>);
    let results: Vec<crate::Result<SequenceChecks>> = jobs
        .par_iter()
        .map(|&(s, q, code)| {
            let subj = format!("S{:03}", 501 + s);
            let seq = format!("{q:03}");
            let expr = if code == 0 { "" } else { EXPRESSIONS[code - 1] };
            let n = if code == 0 { 3 } else { frames };
            let mut checks = Vec::new();
            for f in 1..=n {
                let t = ease((f - 1) as f64 / (n - 1) as f64);
                let fr = render(
                    base,
                    &subjects[s],
                    expr,
                    t,
                    &ck_canvas,
                    (q * 1000 + f) as u64,
                );
                let stem = format!("{subj}_{seq}_{f:08}");
                write_file(
                    &ck.join("cohn-kanade-images")
                        .join(&subj)
                        .join(&seq)
                        .join(format!("{stem}.png")),
                    &encode(&fr.image, image::ImageFormat::Png),
                )?;
                let lm: String = fr
                    .landmarks
                    .iter()
                    .map(|p| format!("   {:.7e}   {:.7e}\n", p[0], p[1]))
                    .collect();
                write_file(
                    &ck.join("Landmarks")
                        .join(&subj)
                        .join(&seq)
                        .join(format!("{stem}_landmarks.txt")),
                    lm.as_bytes(),
                )?;
                if f == n && code != 0 {
                    write_file(
                        &ck.join("Emotion")
                            .join(&subj)
                            .join(&seq)
                            .join(format!("{stem}_emotion.txt")),
                        format!("   {:.7e}\n", code as f64).as_bytes(),
                    )?;
                    checks.push(landmark_error(faces, &fr));
                }
            }
            Ok((n, checks.into_iter().flatten().collect()))
        })
        .collect();
    let mut errors = Vec::new();
    for r in results {
        let (n, c) = r?;
        report.ckplus_frames += n;
        report.landmarks.frames += c.len();
        for (e, found) in c {
            if found {
                report.landmarks.found += 1;
                errors.push(e);
            }
        }
    }
    report.ckplus_sequences = subjects.len() * EXPRESSIONS.len();
    errors.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if !errors.is_empty() {
        report.landmarks.mean = errors.iter().sum::<f64>() / errors.len() as f64;
        report.landmarks.p95 =
            errors[((errors.len() as f64 * 0.95).ceil() as usize).clamp(1, errors.len()) - 1];
    }
    let mut ck_folds = String::new();
    for s in 0..subjects.len() {
        for (k, _) in EXPRESSIONS.iter().enumerate() {
            let (subj, seq) = (format!("S{:03}", 501 + s), format!("{:03}", k + 1));
            for f in [1, middle, frames] {
                ck_folds.push_str(&format!(
                    "{}\t{subj}/{seq}/{subj}_{seq}_{f:08}.png\t{}\n",
                    s % 10,
                    k + 1
                ));
            }
        }
    }
    write_file(&ck.join("folds.txt"), ck_folds.as_bytes())?;

    // Oulu-CASIA: VL/Strong, 320×240 JPEG.
    let ou = opts.out.join("oulu");
    let ou_canvas = Canvas {
        width: 320,
        height: 240,
        eye_mid: [0.5, 0.4],
        iod: 52.0,
        fill: 70,
    };
    let ou_jobs: Vec<(usize, usize)> = (0..subjects.len())
        .flat_map(|s| (0..OULU.len()).map(move |e| (s, e)))
        .collect();
    ou_jobs
        .par_iter()
        .map(|&(s, e)| -> crate::Result<()> {
            let (folder, expr, _) = OULU[e];
            for f in 0..frames {
                let t = ease(f as f64 / (frames - 1) as f64);
                let fr = render(
                    base,
                    &subjects[s],
                    expr,
                    t,
                    &ou_canvas,
                    (50_000 + e * 100 + f) as u64,
                );
                write_file(
                    &ou.join("OriginalImg/VL/Strong")
                        .join(format!("P{:03}", s + 1))
                        .join(folder)
                        .join(format!("{f:03}.jpeg")),
                    &encode(&fr.image, image::ImageFormat::Jpeg),
                )?;
            }
            Ok(())
        })
        .collect::<crate::Result<Vec<()>>>()?;
    report.oulu_sequences = ou_jobs.len();
    let ou_mid = ((frames - 1) as f64 * 0.5 + 0.5).floor() as usize;
    let mut ou_folds = String::new();
    for s in 0..subjects.len() {
        for (folder, _, code) in OULU {
            for f in [0, ou_mid, frames - 1] {
                ou_folds.push_str(&format!(
                    "{}\tOriginalImg/VL/Strong/P{:03}/{folder}/{f:03}.jpeg\t{code}\n",
                    s % 10 + 1,
                    s + 1
                ));
            }
        }
    }
    write_file(&ou.join("folds.txt"), ou_folds.as_bytes())?;

    // FER2013: 48×48 peak frames, two variants per subject and class; Usage by subject.
    let fer_canvas = Canvas {
        width: 48,
        height: 48,
        eye_mid: [0.5, 0.38],
        iod: 17.0,
        fill: 110,
    };
    let rows: Vec<FerRow> = (0..subjects.len())
        .flat_map(|s| (0..FER.len()).flat_map(move |l| (0..2).map(move |v| (s, l, v))))
        .collect::<Vec<_>>()
        .par_iter()
        .map(|&(s, l, v)| {
            let t = if FER[l].is_empty() {
                0.0
            } else {
                [0.8, 1.0][v]
            };
            let fr = render(
                base,
                &subjects[s],
                FER[l],
                t,
                &fer_canvas,
                (90_000 + l * 10 + v) as u64,
            );
            let usage = match s % 10 {
                0..=6 => "Training",
                7 => "PublicTest",
                _ => "PrivateTest",
            };
            FerRow {
                label: l,
                usage,
                image: fr.image,
            }
        })
        .collect();
    report.fer2013_rows = rows.len();
    let mut csv = String::from("emotion,pixels,Usage\n");
    for r in &rows {
        let px: Vec<String> = r.image.data().iter().map(|p| p.to_string()).collect();
        csv.push_str(&format!("{},{},{}\n", r.label, px.join(" "), r.usage));
    }
    write_file(
        &opts.out.join("fer2013").join("fer2013.csv"),
        csv.as_bytes(),
    )?;
    report.fer2013_folders = super::fer_folders::write_releases(&opts.out, &rows)?;
    report.wild = generate_wild(base, faces, opts)?;
    write_file(
        &opts.out.join("README.txt"),
        format!(
            "Synthetic demo datasets made by `prep synth` (seed {}, {} subjects, {} frames) from the\n\
             public-domain astronaut photograph (data/faces/NOTICE). Not real expressions: for demos and tests.\n",
            opts.seed, opts.subjects, frames
        )
        .as_bytes(),
    )?;
    Ok(report)
}

/// Mean point error / true inter-ocular distance of our pipeline on a rendered frame, and whether a
/// face was found at all.
fn landmark_error(faces: &face::FacePipeline, fr: &Frame) -> Option<(f64, bool)> {
    let short = fr.image.width().min(fr.image.height()) as f64;
    let found = faces
        .detect(&fr.image, Some((0.2 * short) as i64))
        .into_iter()
        .next();
    let Some(f) = found else {
        return Some((f64::NAN, false));
    };
    let (l, r) = eye_centres(&fr.landmarks);
    let iod = ((r[0] - l[0]).powi(2) + (r[1] - l[1]).powi(2))
        .sqrt()
        .max(1e-9);
    let e: f64 = f
        .landmarks
        .precise
        .iter()
        .zip(&fr.landmarks)
        .map(|(p, t)| ((p[0] as f64 - t[0]).powi(2) + (p[1] as f64 - t[1]).powi(2)).sqrt())
        .sum::<f64>()
        / 68.0;
    Some((e / iod, true))
}
