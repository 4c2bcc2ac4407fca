//! `prep synth`: synthetic CK+, Oulu-CASIA, FER2013 (csv and image folders), FER+, RAF-DB, AffectNet, ExpW, DFEW and AFEW datasets
//! from the embedded public-domain face, in their exact distributed layouts, with fold lists in
//! the authors' format and planted duplicates.

use crate::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use face::{GrayConversion, GrayImage};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output root; ckplus/, oulu/, fer2013/, fer2013-folders/, fer2013-kaggle/, ferplus/,
    /// rafdb/, affectnet/, expw/, dfew/ and afew/ are written under it.
    #[arg(long, default_value = "data/raw/demo", value_name = "DIR")]
    out: PathBuf,
    /// Number of synthetic subjects (fold = subject mod 10).
    #[arg(long, default_value_t = 20)]
    subjects: usize,
    /// Seed of the identities, poses and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Frames per sequence, neutral to peak.
    #[arg(long, default_value_t = 6)]
    frames: usize,
    /// Frames per video clip of the DFEW and AFEW layouts (neutral, rise, peak), at 25 fps.
    #[arg(long, default_value_t = 16)]
    clip_frames: usize,
    /// The base face.
    #[arg(long, default_value = "data/faces/astronaut.png", value_name = "IMAGE")]
    image: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

/// The face every synthetic frame is warped from: `image` with its 68 landmarks, found by our
/// own detector and predictor.
fn base_face(image: &std::path::Path, faces: &face::FacePipeline) -> Result<prep::synth::BaseFace> {
    let img = GrayImage::open(image, GrayConversion::PilLuma)
        .with_context(|| format!("reading {}", image.display()))?;
    let found = faces
        .detect(&img, None)
        .into_iter()
        .next()
        .with_context(|| format!("no face found in {}", image.display()))?;
    Ok(prep::synth::BaseFace::new(img, &found.landmarks.precise))
}

pub fn run(a: SynthArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let faces = a.model.pipeline(false)?;
    let base = base_face(&a.image, &faces)?;
    let stamp = a.out.join(".synth-stamp");
    let key = format!(
        "seed={} subjects={} frames={} clip_frames={} image={} generator={}",
        a.seed,
        a.subjects,
        a.frames,
        a.clip_frames,
        shard::hash_file(&a.image)?,
        prep::synth::SYNTH_VERSION
    );
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        println!(
            "synthetic datasets in {} are up to date ({key})",
            a.out.display()
        );
        return Ok(());
    }
    if a.out.exists() {
        std::fs::remove_dir_all(&a.out).with_context(|| format!("clearing {}", a.out.display()))?;
    }
    let opts = prep::synth::SynthOptions {
        out: a.out.clone(),
        subjects: a.subjects,
        seed: a.seed,
        frames: a.frames,
    };
    let r = prep::synth::generate(&base, &faces, &opts)?;
    let clips = prep::synth::generate_clips(
        &base,
        &prep::synth::ClipOptions {
            out: a.out.clone(),
            subjects: a.subjects,
            seed: a.seed,
            frames: a.clip_frames,
            fps: 25.0,
        },
    )
    .context("writing the video layouts (dfew/, afew/)")?;
    shard::atomic_write(&stamp, key.as_bytes())?;
    println!(
        "synthetic datasets in {} ({:.1} s):",
        a.out.display(),
        start.elapsed().as_secs_f64()
    );
    println!("  ckplus/    {} labelled sequences (+{} unlabelled), {} frames 640x490 PNG, Emotion + Landmarks, folds.txt", r.ckplus_sequences, a.subjects, r.ckplus_frames);
    println!(
        "  oulu/      {} sequences, VL/Strong, 320x240 JPEG, folds.txt",
        r.oulu_sequences
    );
    println!("  fer2013/   fer2013.csv, {} rows of 48x48 (Training / PublicTest / PrivateTest by subject)", r.fer2013_rows);
    let f = &r.fer2013_folders;
    println!(
        "  fer2013-folders/ fer2013-kaggle/ the same {} images as the two image-folder releases \
         (train/validation/test; Kaggle's train/test), with {} and {} planted extras",
        f.images,
        f.three_folder_extras.len(),
        f.kaggle_extras.len()
    );
    let w = &r.wild;
    println!(
        "  ferplus/   fer2013.csv + fer2013new.csv, {} rows of 48x48, FERPlus vote patterns pinning each rule",
        w.ferplus_rows
    );
    println!(
        "  rafdb/     {} images 320x240 JPEG + aligned 100x100, {} without a box file",
        w.rafdb_images, w.rafdb_without_box
    );
    println!(
        "  affectnet/ {} rows 256x256 JPEG with 68 landmarks and valence/arousal, {} of expression 8-10",
        w.affectnet_rows, w.affectnet_excluded
    );
    println!(
        "  expw/      {} faces in {} photos 400x240 JPEG",
        w.expw_faces, w.expw_photos
    );
    println!(
        "  dfew/      {} clips 320x240 H.264 .mp4 of {} frames, official 5-fold split files",
        clips.dfew_clips, clips.frames
    );
    println!(
        "  afew/      {} clips 320x240 MPEG-4 .avi in Train/ and Val/ class folders",
        clips.afew_clips
    );
    println!(
        "planted video files: {}",
        clips
            .planted
            .iter()
            .map(|(p, r)| format!("{p} ({r})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "planted duplicates (listed in duplicates-planted.csv): {}",
        w.planted.len()
    );
    let l = &r.landmarks;
    println!(
        "landmark check on the CK+ peak frames (our detector + predictor vs the true warped points): \
         {}/{} faces found, mean error {:.1} %, p95 {:.1} % of the inter-ocular distance",
        l.found,
        l.frames,
        100.0 * l.mean,
        100.0 * l.p95
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct SynthVideoArgs {
    /// The video to write (`.avi`: MPEG-4 part 2; other extensions: H.264). Its truth is written
    /// beside it as `<FILE>.truth.csv` (frame, face drawn, the true landmarks' box, expression).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Frame width.
    #[arg(long, default_value_t = 640)]
    width: usize,
    /// Frame height.
    #[arg(long, default_value_t = 480)]
    height: usize,
    /// Number of frames.
    #[arg(long, default_value_t = 150)]
    frames: usize,
    /// Frames per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Seed of the identity and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The base face.
    #[arg(long, default_value = "data/faces/astronaut.png", value_name = "IMAGE")]
    image: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

/// `prep synth-video`: one test video with its truth.
pub fn run_video(a: SynthVideoArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let faces = a.model.pipeline(false)?;
    let base = base_face(&a.image, &faces)?;
    let truth = prep::synth::synth_video(
        &base,
        &prep::synth::VideoOptions {
            out: a.out.clone(),
            width: a.width,
            height: a.height,
            frames: a.frames,
            fps: a.fps,
            seed: a.seed,
        },
    )?;
    println!(
        "{}: {} frames {}x{} at {} fps, a face in {} of them ({:.1} s); truth in {}.truth.csv",
        a.out.display(),
        truth.len(),
        a.width,
        a.height,
        a.fps,
        truth.iter().filter(|t| t.face).count(),
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct SynthScaleArgs {
    /// The cache whose records are repeated (any cache; `make demo` builds demo-fer2013 from
    /// 48×48 images and `prep synth` writes an AffectNet-style 224×224 layout to build one from).
    #[arg(long, value_name = "CACHE_DIR")]
    template: PathBuf,
    /// Records in the new cache.
    #[arg(long, default_value_t = 290_000)]
    records: u64,
    /// Where the new cache goes (as `<name>-<key>/`).
    #[arg(long, default_value = "data/cache", value_name = "DIR")]
    cache_dir: PathBuf,
    /// The new cache's name [default: <template's name>-<records>].
    #[arg(long)]
    name: Option<String>,
}

pub fn run_scale(a: SynthScaleArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let template = shard::Cache::open(&a.template)
        .with_context(|| format!("opening the template cache {}", a.template.display()))?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", template.manifest().name, a.records));
    drop(template);
    let bar = indicatif::ProgressBar::new(a.records);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} records, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(name.clone());
    let out = prep::synth::scale_cache(&a.template, a.records, &a.cache_dir, &name, &|n| {
        bar.set_position(n)
    })?;
    bar.finish_and_clear();
    println!(
        "{}: {} records, {:.2} GiB of shards ({:.0} s)",
        out.dir.display(),
        out.records,
        out.bytes as f64 / (1u64 << 30) as f64,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
