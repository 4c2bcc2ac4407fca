//! `train`: MGLN experiments on a shard cache.
//!
//! A thin binary: argument parsing, progress and tables, one file per command under `cli/`. The
//! work lives in the `train` library.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

/// Train and evaluate MGLN (multi-task global-local network) on caches built by `prep`.
#[derive(Parser, Debug)]
#[command(name = "train", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment (all folds of its protocol), or resume an interrupted run.
    /// Example: train run --config manifests/experiments/demo.toml
    Run(cli::run::RunArgs),
    /// Run every cell of an experiment's [sweep] table (an ablation grid × seeds) on one pinned
    /// cache, resumably, then write the ablation table; or one (cell, fold) task of a job array.
    /// Example: train sweep --config manifests/experiments/ckplus-ablation.toml
    Sweep(cli::sweep::SweepArgs),
    /// Report one run or compare several (an ablation study): every setting that differs, fold
    /// ids, epochs run vs planned (unfinished runs included, marked), per-fold accuracies, a paired
    /// comparison with the first run (sign-flip and McNemar tests), balanced accuracy, macro-F1,
    /// bootstrap intervals, per-class scores. Given a sweep directory (runs/<exp>/<sweep>), the
    /// ablation table over its settings, seeds and folds. Printed as Markdown; also written as
    /// CSV, Markdown or a self-contained HTML page with figures.
    /// Example: train report runs/demo/a runs/demo/b --html compare.html
    Report(cli::report::ReportArgs),
    /// Training-step throughput per precision and batch size: synthetic device-resident inputs,
    /// and streaming from a cache when --cache is given.
    Bench(cli::bench::BenchArgs),
    /// Frames per second of `train predict` on a video on 1 and 2 cores (each pinned with
    /// taskset), beside FFmpeg decoding it alone. Example: train bench-video --run
    /// runs/demo/<run> --video bench-out/video-640x480.mp4
    BenchVideo(cli::bench_video::BenchVideoArgs),
    /// Classify images, frame folders or videos with a trained run (all its fold models vote),
    /// through the same face pipeline and prep settings as its cache. Inputs without a face are
    /// reported. A video gives one row per frame (CSV with OpenFace's column names, JSONL), a
    /// plot of the class probabilities over time and, with --annotate, the video with the face,
    /// landmarks and top class drawn. Example: train predict --run runs/demo/<run> clip.mp4
    Predict(cli::predict::PredictArgs),
    /// Score a trained run (every trained fold, or one) or an exported model on another cache:
    /// cross-dataset evaluation. Classes are matched by name (angry = anger, sad = sadness, …);
    /// those only one side has are listed, and their samples left out or scored as --unshared
    /// says. Accuracy, balanced accuracy, macro-F1 with bootstrap intervals; eval.json, eval.md
    /// and per-sample predictions are written.
    /// Example: train eval --run runs/fer2013-cnn/<run> --cache ckplus48
    Eval(cli::eval::EvalArgs),
    /// Export a trained fold (or every fold) as a model directory: weights.safetensors under the
    /// names of the PyTorch module fer_shard.mgln, model.json (network, classes, inputs,
    /// normalisation, preprocessing recipe) and MODEL_CARD.md.
    /// Example: train export runs/demo/<run> --fold 0 --out models/demo-fold0
    Export(cli::export::ExportArgs),
    /// Report what libtorch sees: CUDA, cuDNN, device count, CPU threads.
    Env {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Errors are values: printed once as `error: context: cause`, exit status 1, never a backtrace
/// (even with RUST_BACKTRACE set); panics stay for bugs.
/// Exit status of a run or sweep task stopped by SIGINT/SIGTERM after its current step
/// (EX_TEMPFAIL: resumable, try again).
const STOPPED_EXIT: u8 = 75;

fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Stopped by a signal with its last epoch on disk: a distinct status, so that a
            // batch script can tell "continue me" from a failure (scripts/slurm requeues on it).
            let stopped = e
                .chain()
                .any(|c| matches!(c.downcast_ref(), Some(train::TrainError::Stopped { .. })));
            if stopped {
                std::process::ExitCode::from(STOPPED_EXIT)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Predict(a) => cli::predict::predict(a),
        Command::Run(a) => cli::run::run(a),
        Command::Sweep(a) => cli::sweep::sweep(a),
        Command::Report(a) => cli::report::report(a),
        Command::Bench(a) => cli::bench::bench(a),
        Command::BenchVideo(a) => cli::bench_video::bench_video(a),
        Command::Export(a) => cli::export::export(a),
        Command::Eval(a) => cli::eval::eval(a),
        Command::Env { json } => {
            let r = train::device_report();
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("tch          {}", r.tch);
                println!("cuda         {} ({} devices)", r.cuda, r.cuda_devices);
                println!("cudnn        {}", r.cudnn);
                println!("cpu threads  {}", r.cpu_threads);
                println!(
                    "cpu kernels  {} (ATEN_CPU_CAPABILITY selects DEFAULT, AVX2 or AVX512)",
                    r.cpu_capability
                );
                println!("face simd    {}", face::simd_description());
            }
            Ok(())
        }
    }
}
