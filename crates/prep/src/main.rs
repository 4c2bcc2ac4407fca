//! `prep`: build and inspect the shard caches that `train` reads.
//!
//! A thin binary: argument parsing, progress and tables, one file per command under `cli/`. The
//! work lives in the `prep`, `face` and `shard` libraries.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod cli;

/// Turn raw facial-expression datasets into aligned face and part crops in a verified shard cache.
#[derive(Parser, Debug)]
#[command(name = "prep", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a cache from a dataset: faces, 68 landmarks, aligned face and part crops, folds.
    /// Unchanged inputs and config are a cache hit. Example:
    /// prep build --dataset jaffe --source ../shared/data/jaffe
    Build(cli::build::BuildArgs),
    /// Detect faces and 68 landmarks in images; print a table or JSON, optionally draw overlays.
    Detect(cli::detect::DetectArgs),
    /// Write synthetic CK+, Oulu-CASIA, FER2013, FER+, RAF-DB, AffectNet and ExpW datasets and
    /// DFEW and AFEW video layouts (encoded with FFmpeg), made from the embedded public-domain face
    /// (expressions by landmark displacement and piecewise-affine warping), with fold lists,
    /// planted duplicates and planted broken videos.
    Synth(cli::synth::SynthArgs),
    /// Write one synthetic test video (a person moving across the frame, changing expression,
    /// with a stretch of frames without a face) and its per-frame truth, for `train predict`
    /// and the video benchmark. Example: prep synth-video --out data/raw/video/test.mp4
    SynthVideo(cli::synth::SynthVideoArgs),
    /// Write a cache of any size (e.g. AffectNet's 290,000 records) from a small one, its records
    /// re-encoded in turn under new sample ids: for measuring training at scale without running
    /// the face pipeline that long. Example: prep synth-scale --template data/cache/demo-fer2013-*
    /// --records 290000 --name fer-290k
    SynthScale(cli::synth::SynthScaleArgs),
    /// Inspect, verify, list and garbage-collect caches.
    Cache(CacheArgs),
    /// Time detection + landmarks + crops on images, one thread (see scripts/bench_face.sh).
    BenchFace(cli::bench::BenchFaceArgs),
    /// Scale face images up and pad them into larger frames (benchmark input).
    #[command(hide = true)]
    MakeFrames(cli::bench::MakeFramesArgs),
    /// Build a small cache from the embedded public-domain face (a cache hit when unchanged).
    DemoCache(cli::demo::DemoCacheArgs),
    /// Write a cache's crops as PNG files in torchvision's ImageFolder layout,
    /// <out>/<split>/<class>/<id>.png. Example:
    /// prep export data/cache/jaffe-e56c64fccabc93a0 --out data/export/jaffe-face
    Export(cli::export::ExportArgs),
}

#[derive(Args, Debug)]
struct CacheArgs {
    #[command(subcommand)]
    command: cli::cache::CacheCommand,
}

/// Errors are values: printed once as `error: context: cause`, exit status 1, never a backtrace
/// (even with RUST_BACKTRACE set); panics stay for bugs.
fn main() -> std::process::ExitCode {
    reset_sigpipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build(a) => cli::build::run(a),
        Command::Synth(a) => cli::synth::run(a).context("prep synth"),
        Command::SynthVideo(a) => cli::synth::run_video(a).context("prep synth-video"),
        Command::SynthScale(a) => cli::synth::run_scale(a).context("prep synth-scale"),
        Command::Detect(a) => cli::detect::run(a).context("prep detect"),
        Command::Cache(a) => cli::cache::run(a.command),
        Command::BenchFace(a) => cli::bench::run(a).context("prep bench-face"),
        Command::MakeFrames(a) => cli::bench::make_frames(a).context("prep make-frames"),
        Command::DemoCache(a) => cli::demo::run(a).context("prep demo-cache"),
        Command::Export(a) => cli::export::run(a).context("prep export"),
    }
}

/// Common model options of subcommands that run face detection.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// dlib 68-point model [default: $FER_SHAPE_MODEL or
    /// /usr/share/dlib/shape_predictor_68_face_landmarks.dat, from Debian's libdlib-data]
    #[arg(long, value_name = "FILE")]
    pub shape_model: Option<PathBuf>,
    /// OpenCV cascade: a name under /usr/share/opencv4 (haarcascade_frontalface_default,
    /// haarcascade_frontalface_alt2, lbpcascade_frontalface, …) or a path to an XML file.
    #[arg(
        long,
        default_value = "lbpcascade_frontalface",
        value_name = "NAME|FILE"
    )]
    pub cascade: String,
    /// Cascade tried on images where the first finds no face ("none" to disable). LBP first and
    /// Haar second is 2.6x faster than Haar alone on JAFFE, with the same landmark accuracy.
    #[arg(
        long,
        default_value = "haarcascade_frontalface_default",
        value_name = "NAME|FILE|none"
    )]
    pub fallback_cascade: String,
}

impl ModelArgs {
    /// Loads detector and predictor into a pipeline (the model-file rules of
    /// [`face::ModelFiles::resolve`], the loading of [`face::ModelFiles::load`]).
    pub fn pipeline(&self, reinitialise: bool) -> Result<face::FacePipeline> {
        let shape_model = self
            .shape_model
            .clone()
            .unwrap_or_else(face::default_shape_model_path);
        face::ModelFiles::resolve(shape_model, &self.cascade, &self.fallback_cascade)
            .load(reinitialise)
            .context("loading the face models (run `make setup` to install them)")
    }
}

/// Restores the default SIGPIPE action so that `prep … | head` ends quietly instead of panicking on
/// a closed stdout (Rust ignores SIGPIPE by default).
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; only resets a signal action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
