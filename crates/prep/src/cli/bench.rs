//! `prep bench-face`: single-thread throughput of detection + landmarks + alignment + crops on real
//! images, printed as a table, so it can run beside `shared/bench/ref_prep.py` in one command.

use crate::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use face::{crop_face_and_parts, CropConfig, GrayConversion, GrayImage};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchFaceArgs {
    /// Images to process (decoded once, before timing).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Smallest face searched, as a fraction of the image's shorter side (default 0.25; CK+,
    /// Oulu and JAFFE faces fill more than a third of the frame).
    #[arg(long, default_value_t = 0.25, value_name = "FRACTION")]
    min_face_fraction: f64,
    /// Passes over the image list (default 3; the best pass is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(a: BenchFaceArgs) -> Result<()> {
    let t = Instant::now();
    let pipeline = a.model.pipeline(false)?;
    let load_s = t.elapsed().as_secs_f64();
    let images: Vec<GrayImage> = a
        .images
        .iter()
        .map(|p| {
            GrayImage::open(p, GrayConversion::PilLuma)
                .with_context(|| format!("decoding {}", p.display()))
        })
        .collect::<Result<_>>()?;
    let crops = CropConfig::default();
    let (mut best_detect, mut best_track, mut faces) = (f64::INFINITY, f64::INFINITY, 0usize);
    let (mut best_cascade, mut best_single, mut best_batch) =
        (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..a.repeat.max(1) {
        // Per image: detect, landmarks, align + crop (what a static image or a sequence's first frame costs).
        let t = Instant::now();
        let mut found = Vec::with_capacity(images.len());
        for img in &images {
            let min_face = (img.width().min(img.height()) as f64 * a.min_face_fraction) as i64;
            let f = pipeline.detect(img, Some(min_face)).into_iter().next();
            if let Some(f) = &f {
                std::hint::black_box(crop_face_and_parts(img, &f.landmarks.precise, &crops));
            }
            found.push(f);
        }
        best_detect = best_detect.min(t.elapsed().as_secs_f64());
        // The cascade alone.
        let t = Instant::now();
        for img in &images {
            let min_face = (img.width().min(img.height()) as f64 * a.min_face_fraction) as i64;
            let mut p = pipeline.options().detect;
            p.min_size = (p.min_size.0.max(min_face), p.min_size.1.max(min_face));
            std::hint::black_box(pipeline.detector().detect(img, &p));
        }
        best_cascade = best_cascade.min(t.elapsed().as_secs_f64());
        faces = found.iter().filter(|f| f.is_some()).count();
        // Per frame of a sequence after the first: track from the previous landmarks, landmarks, crops.
        let t = Instant::now();
        for (img, f) in images.iter().zip(&found) {
            if let Some(f) = f {
                let tr = pipeline.track(img, &f.landmarks);
                std::hint::black_box(crop_face_and_parts(img, &tr.landmarks.precise, &crops));
            }
        }
        best_track = best_track.min(t.elapsed().as_secs_f64());
        // Landmarks alone in the detected boxes: one face at a time, then all in one batch.
        let boxes: Vec<(&GrayImage, face::FaceBox)> = images
            .iter()
            .zip(&found)
            .filter_map(|(img, f)| f.as_ref().map(|f| (img, f.face_box)))
            .collect();
        let t = Instant::now();
        for &(img, b) in &boxes {
            std::hint::black_box(pipeline.predictor().predict(img, b));
        }
        best_single = best_single.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(pipeline.predictor().predict_batch(&boxes));
        best_batch = best_batch.min(t.elapsed().as_secs_f64());
    }
    let n = images.len() as f64;
    let (w, h) = images
        .first()
        .map(|i| (i.width(), i.height()))
        .unwrap_or((0, 0));
    println!(
        "models loaded in {:.0} ms (dlib .dat parse + cascades)",
        load_s * 1000.0
    );
    println!(
        "{:<44} {:>8} {:>10} {:>12}",
        "stage (one thread)", "images", "faces", "images/s"
    );
    println!(
        "{:<44} {:>8} {:>10} {:>12.1}",
        format!("detect+landmarks+crops {w}x{h}"),
        images.len(),
        faces,
        n / best_detect
    );
    println!(
        "{:<44} {:>8} {:>10} {:>12.1}",
        format!("cascade only {w}x{h}"),
        images.len(),
        "-",
        n / best_cascade
    );
    println!(
        "{:<44} {:>8} {:>10} {:>12.1}",
        format!("track+landmarks+crops {w}x{h}"),
        faces,
        faces,
        faces as f64 / best_track
    );
    let per_face = |s: f64| s / faces.max(1) as f64 * 1e3;
    println!(
        "{:<44} {:>8} {:>10} {:>9.3} ms/face",
        "landmarks alone, one face at a time",
        faces,
        faces,
        per_face(best_single)
    );
    println!(
        "{:<44} {:>8} {:>10} {:>9.3} ms/face",
        "landmarks alone, one batch (predict_batch)",
        faces,
        faces,
        per_face(best_batch)
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct MakeFramesArgs {
    /// Output directory (PNG files 000.png, 001.png, …).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Side the source image is scaled to (bilinear).
    #[arg(long, default_value_t = 448)]
    size: usize,
    /// Canvas WIDTHxHEIGHT the scaled image is centred in (grey 128 around it).
    #[arg(long, default_value = "640x490")]
    canvas: String,
    /// Source images.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

/// Writes benchmark frames of CK+ size from smaller face images.
pub fn make_frames(a: MakeFramesArgs) -> Result<()> {
    let (cw, ch) = a
        .canvas
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)))
        .context("--canvas must look like 640x490")?;
    anyhow::ensure!(a.size <= cw && a.size <= ch, "--size must fit the canvas");
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut scaled = Vec::new();
    for (i, p) in a.images.iter().enumerate() {
        let img = GrayImage::open(p, GrayConversion::PilLuma)?;
        face::resize_linear_exact(&img, a.size, a.size, &mut scaled);
        let mut canvas = GrayImage::filled(cw, ch, 128);
        let (x0, y0) = ((cw - a.size) / 2, (ch - a.size) / 2);
        for y in 0..a.size {
            canvas.data_mut()[(y0 + y) * cw + x0..(y0 + y) * cw + x0 + a.size]
                .copy_from_slice(&scaled[y * a.size..(y + 1) * a.size]);
        }
        canvas.save_png(&a.out.join(format!("{i:03}.png")))?;
    }
    println!(
        "wrote {} frames of {cw}x{ch} to {}",
        a.images.len(),
        a.out.display()
    );
    Ok(())
}
