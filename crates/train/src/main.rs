//! `train`: MGLN experiments on a shard cache.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use train::config::Precision;
use train::report::EpochRecord;
use train::trainer::{RunOptions, TrainProgress};

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
    Run(RunArgs),
    /// Report one run or compare several (an ablation study): every setting that differs, fold
    /// ids, epochs run vs planned (unfinished runs included, marked), per-fold accuracies, a paired
    /// comparison with the first run, per-class recall. Printed as Markdown; also written as CSV,
    /// Markdown or a self-contained HTML page with figures.
    /// Example: train report runs/demo/a runs/demo/b --html compare.html
    Report(ReportArgs),
    /// Training-step throughput per precision and batch size: synthetic device-resident inputs,
    /// and streaming from a cache when --cache is given.
    Bench(BenchArgs),
    /// Classify images or frame folders with a trained run (all its fold models vote), through the
    /// same face pipeline and prep settings as its cache. Inputs without a face are reported.
    Predict(PredictArgs),
    /// Report what libtorch sees: CUDA, cuDNN, device count, CPU threads.
    Env {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Experiment TOML (see manifests/experiments/). Not needed with --resume.
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last checkpoint (its config.toml is used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Run only these test folds (comma-separated) [default: the experiment's, or all].
    #[arg(long, value_delimiter = ',', value_name = "K,…")]
    fold: Option<Vec<u16>>,
    /// Override train.epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override train.device (auto, cpu, cuda, cuda:N).
    #[arg(long)]
    device: Option<String>,
    /// Run directory name under runs/<experiment>/ [default: UTC time stamp].
    #[arg(long)]
    run_name: Option<String>,
    /// Stop after this many epochs (leaves a resumable run; for tests and time-boxed jobs).
    #[arg(long, hide = true)]
    stop_after_epochs: Option<usize>,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Run directories (runs/<experiment>/<run>); the first is the baseline of the paired
    /// comparison.
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Write the runs table (one row per run) as CSV to FILE, and the per-fold table (one row
    /// per run and fold) beside it as <FILE stem>.folds.csv [default: not written].
    #[arg(long, visible_alias = "out", value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the Markdown report to FILE [default: printed only].
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write one self-contained HTML page (tables, confusion matrices and curves as inline SVG;
    /// no network, no script) to FILE [default: not written]. Open it in any browser.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// The run directory (runs/<experiment>/<run>).
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// Image files (a still image fills every frame slot) or folders of frames (a sequence).
    #[arg(required = true, value_name = "PATH")]
    inputs: Vec<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Device (auto, cpu, cuda, cuda:N).
    #[arg(long, default_value = "auto")]
    device: String,
    /// dlib 68-point model [default: /usr/share/dlib/shape_predictor_68_face_landmarks.dat].
    #[arg(long, value_name = "FILE")]
    shape_model: Option<PathBuf>,
    /// Predict with a run whose folds did not all finish (their models are from mid-schedule)
    /// [default: refuse such runs].
    #[arg(long)]
    allow_partial: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    batch: Vec<i64>,
    /// Precisions (fp32, tf32, bf16; tf32 and bf16 need CUDA).
    #[arg(long, value_delimiter = ',', default_value = "fp32")]
    precision: Vec<String>,
    /// Timed steps (median reported) after 3 warm-up steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Channel multiplier of the network (1 = the paper).
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Device (auto, cpu, cuda, cuda:N).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Also stream from this cache through the real loader.
    #[arg(long, value_name = "CACHE")]
    cache: Option<PathBuf>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// Progress bars: one per epoch with samples/s and ETA, and a line per finished epoch.
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl TrainProgress for Bars {
    fn epoch_start(&self, fold: &str, epoch: usize, epochs: usize, batches: u64) {
        let b = ProgressBar::with_draw_target(Some(batches), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} batches {msg} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(format!("{fold} epoch {}/{epochs}", epoch + 1));
        if let Ok(mut g) = self.bar.lock() {
            *g = Some(b);
        }
    }
    fn batch_done(&self, samples: u64) {
        if let Ok(g) = self.bar.lock() {
            if let Some(b) = g.as_ref() {
                b.inc(1);
                let secs = b.elapsed().as_secs_f64().max(1e-9);
                let done = b.position() as f64 * samples as f64;
                b.set_message(format!("{:.0} samples/s", done / secs));
            }
        }
    }
    fn epoch_end(&self, r: &EpochRecord) {
        if let Ok(mut g) = self.bar.lock() {
            if let Some(b) = g.take() {
                b.finish_and_clear();
            }
        }
        let acc = |v: Option<f64>| {
            v.map(|a| format!("{:5.1} %", 100.0 * a))
                .unwrap_or("    -  ".into())
        };
        println!(
            "{:>7} epoch {:>3}  loss {:.4} (g {:.4} p {:.4})  train {:5.1} %  test {}  val {}  lr {:.0e}  {:.0} samples/s",
            r.fold,
            r.epoch,
            r.loss,
            r.loss_global,
            r.loss_local,
            100.0 * r.train_accuracy,
            acc(r.test_accuracy),
            acc(r.validation_accuracy),
            r.lr,
            r.samples_per_s
        );
    }
    fn note(&self, text: &str) {
        println!("note: {text}");
    }
}

fn run(a: RunArgs) -> Result<()> {
    let (mut cfg, resume) = match (&a.config, &a.resume) {
        (_, Some(dir)) => (
            train::ExperimentConfig::load(&dir.join("config.toml"))
                .with_context(|| format!("reading the config of run {}", dir.display()))?,
            Some(dir.clone()),
        ),
        (Some(c), None) => (
            train::ExperimentConfig::load(c).with_context(|| format!("reading {}", c.display()))?,
            None,
        ),
        (None, None) => bail!("give --config FILE or --resume RUN_DIR"),
    };
    if let Some(f) = a.fold {
        cfg.folds = Some(f);
    }
    if let Some(e) = a.epochs {
        cfg.train.epochs = e;
    }
    if let Some(d) = a.device {
        cfg.train.device = d;
    }
    let bars = Bars {
        bar: Mutex::new(None),
    };
    install_stop_handler();
    let out = train::trainer::run_experiment(
        &cfg,
        RunOptions {
            resume,
            run_name: a.run_name,
            git_revision: shard::git_revision(),
            progress: &bars,
            stop_after_epochs: a.stop_after_epochs,
        },
    )
    .map_err(|e| match e {
        // Ctrl-C / SIGTERM: say where the run is and how to continue it, as the error line.
        e @ train::TrainError::Stopped { .. } => anyhow::anyhow!(e),
        e => anyhow::anyhow!(e).context(format!("experiment {}", cfg.name)),
    })?;
    if out.folds.is_empty() {
        println!(
            "stopped; continue with: train run --resume {}",
            out.dir.display()
        );
        return Ok(());
    }
    let summary = std::fs::read_to_string(out.dir.join("summary.md")).unwrap_or_default();
    println!("\n{summary}");
    println!("run directory: {}", out.dir.display());
    Ok(())
}

fn report(a: ReportArgs) -> Result<()> {
    let c = train::compare::compare(&a.runs).context("reading the runs")?;
    let md = c.markdown();
    println!("{md}");
    if let Some(out) = &a.csv {
        use polars::prelude::SerWriter;
        let folds_out = out.with_file_name(format!(
            "{}.folds.csv",
            out.file_stem().unwrap_or_default().to_string_lossy()
        ));
        for (path, mut df) in [
            (out.clone(), c.runs_table()?),
            (folds_out, c.folds_table()?),
        ] {
            let mut buf = Vec::new();
            polars::prelude::CsvWriter::new(&mut buf)
                .finish(&mut df)
                .with_context(|| format!("writing {}", path.display()))?;
            shard::atomic_write(&path, &buf)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("written: {}", path.display());
        }
    }
    if let Some(out) = &a.markdown {
        shard::atomic_write(out, md.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        println!("written: {}", out.display());
    }
    if let Some(out) = &a.html {
        let page = train::html::html(&c).context("drawing the HTML report")?;
        shard::atomic_write(out, page.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        println!(
            "written: {} (open it in a browser: file://{})",
            out.display(),
            std::fs::canonicalize(out)
                .unwrap_or_else(|_| out.clone())
                .display()
        );
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let device = train::trainer::pick_device(&a.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut rows = Vec::new();
    for p in &a.precision {
        let precision = match p.as_str() {
            "fp32" => Precision::Fp32,
            "tf32" => Precision::Tf32,
            "bf16" => Precision::Bf16,
            other => bail!("precision {other:?}: expected fp32, tf32 or bf16"),
        };
        for &b in &a.batch {
            let mc = train::bench::paper_config(7, a.width);
            let (input, y) = train::bench::synthetic_input(&mc, b, device);
            let ms = train::bench::time_steps(&mc, device, precision, b, 3, a.steps, &mut || {
                Ok((
                    train::model::ModelInput {
                        face: input.face.shallow_clone(),
                        parts: [
                            input.parts[0].shallow_clone(),
                            input.parts[1].shallow_clone(),
                            input.parts[2].shallow_clone(),
                        ],
                    },
                    y.shallow_clone(),
                ))
            })?;
            rows.push(train::bench::BenchRow::new("synthetic", p, b, ms));
            if let Some(c) = &a.cache {
                let (mut mc2, mut next) = train::bench::cache_inputs(c, b as usize, device)?;
                mc2.width = a.width;
                let ms =
                    train::bench::time_steps(&mc2, device, precision, b, 3, a.steps, &mut *next)?;
                rows.push(train::bench::BenchRow::new("cache", p, b, ms));
            }
        }
    }
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!(
            "device {device:?}, width {}, median of {} steps",
            a.width, a.steps
        );
        println!(
            "{:<10} {:<9} {:>6} {:>10} {:>12}",
            "input", "precision", "batch", "ms/step", "samples/s"
        );
        for r in &rows {
            println!(
                "{:<10} {:<9} {:>6} {:>10.1} {:>12.1}",
                r.input, r.precision, r.batch, r.median_ms, r.samples_per_s
            );
        }
    }
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let device = train::trainer::pick_device(&a.device)?;
    let unfinished = train::predict::unfinished_folds(&a.run);
    if !unfinished.is_empty() && !a.allow_partial {
        bail!(
            "run {} has unfinished folds ({}): their models stopped mid-schedule. Finish it with \
             `train run --resume {}`, or pass --allow-partial",
            a.run.display(),
            unfinished.join(", "),
            a.run.display()
        );
    }
    let p = train::predict::Predictor::load(
        &a.run,
        device,
        a.shape_model
            .clone()
            .unwrap_or_else(face::default_shape_model_path),
    )
    .with_context(|| format!("loading run {}", a.run.display()))?;
    if !unfinished.is_empty() {
        eprintln!(
            "warning: predicting with unfinished folds {} (--allow-partial)",
            unfinished.join(", ")
        );
    }
    let out = p.predict(&a.inputs)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"classes": p.classes(), "predictions": out})
            )?
        );
    } else {
        print!(
            "{:<40} {:<12} {:<22} {:<24}",
            "input", "class", "face box (l,t,r,b)", "found by"
        );
        for c in p.classes() {
            print!(" {:>9}", c.chars().take(9).collect::<String>());
        }
        println!();
        for r in &out {
            let bx = r
                .face_box
                .map(|b| format!("{},{},{},{}", b[0], b[1], b[2], b[3]))
                .unwrap_or_else(|| "-".into());
            print!(
                "{:<40} {:<12} {:<22} {:<24}",
                r.input,
                r.class.as_deref().unwrap_or("-"),
                bx,
                r.detector.as_deref().unwrap_or("-")
            );
            match &r.error {
                Some(e) => println!(" error: {e}"),
                None => {
                    for v in &r.probabilities {
                        print!(" {:>9.3}", v);
                    }
                    println!();
                }
            }
        }
    }
    let failed: Vec<&str> = out
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.input.as_str())
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} inputs could not be classified: {}",
        failed.len(),
        out.len(),
        failed.join(", ")
    );
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM ask the trainer to stop after its current step
/// ([`train::trainer::request_stop`]); it then reports the run directory and the resume command.
/// A second signal ends the process at once.
fn install_stop_handler() {
    extern "C" fn on_signal(_: libc::c_int) {
        if train::trainer::stop_requested() {
            // SAFETY: _exit is async-signal-safe; a second Ctrl-C means "now".
            unsafe { libc::_exit(130) };
        }
        train::trainer::request_stop();
        let msg = b"\nstopping after the current step (Ctrl-C again to stop at once)\n";
        // SAFETY: write(2) is async-signal-safe; the buffer is a static byte string.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    }
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only touches an atomic and calls async-signal-safe
        // functions; done once, before training starts.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}

/// Errors are values: printed once as `error: context: cause`, exit status 1, never a backtrace
/// (even with RUST_BACKTRACE set); panics stay for bugs.
fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Predict(a) => predict(a),
        Command::Run(a) => run(a),
        Command::Report(a) => report(a),
        Command::Bench(a) => bench(a),
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
