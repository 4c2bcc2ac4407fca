//! `prep detect`: faces and landmarks of individual images, for people to look at.

use crate::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use face::{crop_face_and_parts, CropConfig, GrayConversion, GrayImage};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Images to process (PNG, JPEG, TIFF).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Print JSON in the reference files' shape instead of a table.
    #[arg(long)]
    json: bool,
    /// Write `<stem>.overlay.png` (boxes and landmarks) and `<stem>.crops.png` into DIR.
    #[arg(long, value_name = "DIR")]
    overlay: Option<PathBuf>,
    /// Skip cascade windows smaller than this many pixels (default: 20, OpenCV's minSize).
    #[arg(long, value_name = "PX")]
    min_face: Option<i64>,
    /// Run the predictor a second time from the box fitted to the first landmarks (off by default:
    /// it does not improve agreement with dlib on JAFFE and dlib's example faces).
    #[arg(long)]
    reinit: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct JsonFace {
    box_ltrb: [i64; 4],
    detection_xywh: Option<[i64; 4]>,
    landmarks: Vec<[i64; 2]>,
}

#[derive(Serialize)]
struct JsonImage {
    image: String,
    width: usize,
    height: usize,
    faces: Vec<JsonFace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(a: DetectArgs) -> Result<()> {
    let pipeline = a.model.pipeline(a.reinit)?;
    if let Some(dir) = &a.overlay {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let results: Vec<JsonImage> = a
        .images
        .par_iter()
        .map(|path| process(&pipeline, path, a.min_face, a.overlay.as_deref()))
        .collect();
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            tool: String,
            images: &'a [JsonImage],
        }
        let out = Out {
            tool: format!(
                "prep {} detect ({}; dlib 68-point model)",
                env!("CARGO_PKG_VERSION"),
                pipeline.detector().name()
            ),
            images: &results,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{:<40} {:>9} {:>5}  first face box (l,t,r,b)",
            "image", "size", "faces"
        );
        for r in &results {
            let size = format!("{}x{}", r.width, r.height);
            match (&r.error, r.faces.first()) {
                (Some(e), _) => println!("{:<40} {:>9} {:>5}  error: {e}", r.image, size, "-"),
                (None, Some(f)) => println!(
                    "{:<40} {:>9} {:>5}  {:?}",
                    r.image,
                    size,
                    r.faces.len(),
                    f.box_ltrb
                ),
                (None, None) => println!("{:<40} {:>9} {:>5}  no face found", r.image, size, 0),
            }
        }
        let found = results.iter().filter(|r| !r.faces.is_empty()).count();
        println!(
            "{} images, {} with a face, {} errors",
            results.len(),
            found,
            results.iter().filter(|r| r.error.is_some()).count()
        );
    }
    // The table (or JSON) is printed in full first; then the exit status says whether it all
    // worked, so that scripts notice unreadable inputs and a run that found nothing.
    let errors: Vec<&str> = results
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.image.as_str())
        .collect();
    anyhow::ensure!(
        errors.is_empty(),
        "{} of {} inputs failed: {}",
        errors.len(),
        results.len(),
        errors.join(", ")
    );
    anyhow::ensure!(
        results.iter().any(|r| !r.faces.is_empty()),
        "no face found in any of the {} inputs",
        results.len()
    );
    Ok(())
}

fn process(
    pipeline: &face::FacePipeline,
    path: &Path,
    min_face: Option<i64>,
    overlay: Option<&Path>,
) -> JsonImage {
    let name = path.display().to_string();
    let img = match GrayImage::open(path, GrayConversion::PilLuma) {
        Ok(i) => i,
        Err(e) => {
            return JsonImage {
                image: name,
                width: 0,
                height: 0,
                faces: vec![],
                error: Some(e.to_string()),
            }
        }
    };
    let faces = pipeline.detect(&img, min_face);
    let mut error = None;
    if let Some(dir) = overlay {
        if let Err(e) = draw_overlay(&img, &faces, path, dir) {
            error = Some(format!("overlay: {e:#}"));
        }
    }
    JsonImage {
        image: name,
        width: img.width(),
        height: img.height(),
        faces: faces
            .iter()
            .map(|f| JsonFace {
                box_ltrb: [
                    f.face_box.left,
                    f.face_box.top,
                    f.face_box.right,
                    f.face_box.bottom,
                ],
                detection_xywh: f.detection.map(|r| [r.x, r.y, r.w, r.h]),
                landmarks: f.landmarks.points.clone(),
            })
            .collect(),
        error,
    }
}

fn draw_overlay(
    img: &GrayImage,
    faces: &[face::DetectedFace],
    path: &Path,
    dir: &Path,
) -> Result<()> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut rgb = image::RgbImage::from_fn(img.width() as u32, img.height() as u32, |x, y| {
        let v = img.at(x as usize, y as usize);
        image::Rgb([v, v, v])
    });
    for f in faces {
        if let Some(r) = f.detection {
            prep::draw::rect(
                &mut rgb,
                r.x,
                r.y,
                r.x + r.w - 1,
                r.y + r.h - 1,
                [255, 160, 0],
            );
        }
        let b = f.face_box;
        prep::draw::rect(&mut rgb, b.left, b.top, b.right, b.bottom, [0, 200, 255]);
        for p in &f.landmarks.points {
            prep::draw::cross(&mut rgb, p[0], p[1], [0, 255, 0]);
        }
    }
    let out = dir.join(format!("{stem}.overlay.png"));
    rgb.save(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    if let Some(f) = faces.first() {
        if let Some(c) = crop_face_and_parts(img, &f.landmarks.precise, &CropConfig::default()) {
            let sheet = prep::draw::crop_strip(&[&c.face, &c.eyes, &c.nose, &c.mouth]);
            let out = dir.join(format!("{stem}.crops.png"));
            sheet
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
        }
    }
    Ok(())
}
