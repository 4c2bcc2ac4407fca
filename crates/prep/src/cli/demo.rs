//! `prep demo-cache`: a small cache from the embedded public-domain face, exercising the whole
//! face → crops → shard path (detection, landmarks, alignment, crops, cache key, atomic writer,
//! verification) on a fresh machine without any dataset.

use crate::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use face::{crop_face_and_parts, CropConfig, GrayConversion, GrayImage};
use shard::{
    flags, CacheKey, CacheWriter, CacheWriterOptions, EncodedRecord, SampleMeta,
    SourceFingerprinter, Split,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoCacheArgs {
    /// Directory that holds caches.
    #[arg(long, default_value = "data/cache", value_name = "DIR")]
    out: PathBuf,
    /// The face image.
    #[arg(long, default_value = "data/faces/astronaut.png", value_name = "IMAGE")]
    image: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

/// What determines the demo cache's content (part of its key).
#[derive(serde::Serialize)]
struct DemoConfig<'a> {
    crops: &'a CropConfig,
    cascade: &'a str,
    variants: &'a [&'a str],
    frames: usize,
}

pub fn run(a: DemoCacheArgs) -> Result<()> {
    let crops = CropConfig::default();
    let variants = ["original", "mirrored"];
    let cfg = DemoConfig {
        crops: &crops,
        cascade: &a.model.cascade,
        variants: &variants,
        frames: 3,
    };
    let root = a
        .image
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    let file = a
        .image
        .file_name()
        .context("image path has no file name")?
        .to_string_lossy()
        .into_owned();
    let source = SourceFingerprinter::new().fingerprint(&root, std::slice::from_ref(&file))?;
    let model_path = a
        .model
        .shape_model
        .clone()
        .unwrap_or_else(face::default_shape_model_path);
    let models = BTreeMap::from([(
        "shape_predictor_68_face_landmarks.dat".to_string(),
        shard::hash_file(&model_path)?,
    )]);
    let key = CacheKey::compute(&cfg, &models, &source)?;
    let dir = a.out.join(shard::cache_dir_name("demo-astronaut", &key));
    if let Ok(cache) = shard::Cache::open(&dir) {
        println!(
            "cache hit: {} ({} samples, key {})",
            dir.display(),
            cache.len(),
            key.short()
        );
        return Ok(());
    }
    let pipeline = a.model.pipeline(false)?;
    let img = GrayImage::open(&a.image, GrayConversion::PilLuma)?;
    let class_names = vec!["neutral".to_string()];
    let mut w = CacheWriter::create(
        &dir,
        "demo-astronaut",
        &key,
        class_names,
        CacheWriterOptions {
            tool: format!("prep {}", env!("CARGO_PKG_VERSION")),
            git_revision: crate::cli::git_revision(),
            ..Default::default()
        },
    )?;
    for (k, variant) in variants.iter().enumerate() {
        let frame = if k == 0 { img.clone() } else { mirrored(&img) };
        let Some(f) = pipeline.detect(&frame, Some(64)).into_iter().next() else {
            w.push_failure(shard::FailureRow {
                input: format!("{file}#{variant}"),
                stage: "detect".into(),
                reason: "no_face".into(),
                detail: "no cascade window accepted".into(),
            });
            continue;
        };
        let c = crop_face_and_parts(&frame, &f.landmarks.precise, &crops).context("crop")?;
        let size = |s: face::CropSize| (s.height as u16, s.width as u16);
        let planes = shard::planes::sample_planes(
            size(crops.face),
            [size(crops.eyes), size(crops.nose), size(crops.mouth)],
            3,
        );
        // In the order of `planes`: the face, then the still image's parts in each of 3 slots.
        let mut data: Vec<&[u8]> = vec![c.face.data()];
        for _ in 0..3 {
            data.extend([c.eyes.data(), c.nose.data(), c.mouth.data()]);
        }
        let meta = SampleMeta {
            sample_id: format!("astronaut/{variant}"),
            dataset: "demo-astronaut".into(),
            subject: "astronaut".into(),
            sequence: None,
            source: vec![file.clone(); 3],
            frame_indices: vec![0; 3],
            label: 0,
            split: Split::Train,
            landmarks: vec![f.landmarks.precise.clone(); 3],
            detector: pipeline.detector().name().to_string(),
            flags: flags::REPEATED_FRAME | if c.padded { flags::PADDED } else { 0 },
            planes,
            ext: shard::MetaExt::default(),
        };
        w.push(&EncodedRecord::encode(meta, &data, 3)?)?;
    }
    let m =
        w.finish(serde_json::json!({"note": "demo cache of the embedded public-domain face"}))?;
    println!(
        "built {} ({} samples, {} failures, key {})",
        dir.display(),
        m.samples,
        m.failures,
        key.short()
    );
    let report = shard::Cache::open(&dir)?.verify()?;
    anyhow::ensure!(report.is_ok(), "verification failed: {:?}", report.problems);
    println!(
        "verified: {} shards, {} records",
        report.shards, report.records
    );
    Ok(())
}

fn mirrored(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width(), img.height());
    let mut out = img.clone();
    let src = img.data();
    let dst = out.data_mut();
    for y in 0..h {
        for x in 0..w {
            dst[y * w + x] = src[y * w + (w - 1 - x)];
        }
    }
    out
}
