//! `train run`: an experiment's folds with progress bars, Ctrl-C handling and the summary table.

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use train::outputs::EpochRecord;
use train::trainer::{RunOptions, TrainProgress};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment TOML (see manifests/experiments/). Not needed with --resume.
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last checkpoint (its config.toml is used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Run only these test folds (comma-separated) [default: the experiment's, or all].
    #[arg(long, value_delimiter = ',', value_name = "K,…")]
    pub fold: Option<Vec<u16>>,
    /// Override train.epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override train.device (auto, cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: Option<String>,
    /// Run directory name under runs/<experiment>/ [default: UTC time stamp].
    #[arg(long)]
    pub run_name: Option<String>,
    /// Override a key of the experiment TOML, as if the file set it (repeatable), e.g.
    /// `--set model.branches=gfm --set train.seed=2`. Values are TOML (`2`, `1e-3`, `[0, 1]`,
    /// `true`) or bare strings. An unknown key or a bad value is refused before anything is
    /// written, with the nearest keys. Recorded in config.toml (resolved) and run.json
    /// [default: none]. Not with --resume (the run's config.toml is fixed).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    pub overrides: Vec<train::config::overrides::Override>,
    /// Stop after N training steps and print what they measured, as one JSON line: the time
    /// from the command's start to the first step (cache open, split, model), samples/s after
    /// it, and the peak resident memory. For benchmarks (scripts/bench_loader_memory.sh); the
    /// run directory is left as an interrupted run [default: train to the end].
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
}

/// Progress bars: one per epoch with samples/s and ETA, and a line per finished epoch.
pub(crate) struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// No bar yet.
    pub(crate) fn new() -> Bars {
        Bars {
            bar: Mutex::new(None),
        }
    }
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
        // The branch losses only where there are two branches (not for the CNN, GFM or PBM
        // alone, whose other loss is 0).
        let branches = if r.loss_global > 0.0 && r.loss_local > 0.0 {
            format!(" (g {:.4} p {:.4})", r.loss_global, r.loss_local)
        } else {
            String::new()
        };
        println!(
            "{:>7} epoch {:>3}  loss {:.4}{branches}  train {:5.1} %  test {}  val {}  lr {:.0e}  {:.0} samples/s",
            r.fold,
            r.epoch,
            r.loss,
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

pub fn run(a: RunArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let (mut cfg, resume) = match (&a.config, &a.resume) {
        (_, Some(dir)) => (
            train::ExperimentConfig::load(&dir.join("config.toml"))
                .with_context(|| format!("reading the config of run {}", dir.display()))?,
            Some(dir.clone()),
        ),
        (Some(c), None) => (
            train::ExperimentConfig::load_with_overrides(c, &a.overrides)
                .with_context(|| format!("reading {}", c.display()))?,
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
    let bars = Bars::new();
    let stop = install_stop_handler();
    let limit = a
        .max_steps
        .map(|n| super::measure::StepLimit::new(&bars, n.max(1), stop.clone(), started));
    let progress: &dyn TrainProgress = match &limit {
        Some(l) => l,
        None => &bars,
    };
    let result = train::trainer::run_experiment(
        &cfg,
        RunOptions {
            resume,
            run_name: a.run_name,
            git_revision: train::trainer::git_revision(),
            progress,
            stop,
            overrides: a.overrides.clone(),
            task_folds: None,
        },
    );
    if let Some(l) = &limit {
        if l.steps() >= a.max_steps.unwrap_or(0) || result.is_ok() {
            println!("{}", serde_json::to_string(&l.figures())?);
            return Ok(());
        }
    }
    let out = result.map_err(|e| match e {
        // Ctrl-C / SIGTERM: say where the run is and how to continue it, as the error line.
        e @ train::TrainError::Stopped { .. } => anyhow::anyhow!(e),
        e => anyhow::anyhow!(e).context(format!("experiment {}", cfg.name)),
    })?;
    let summary = std::fs::read_to_string(out.dir.join("summary.md")).unwrap_or_default();
    println!("\n{summary}");
    println!("run directory: {}", out.dir.display());
    Ok(())
}

/// The run's stop token, where the signal handler finds it.
static SIGNAL_STOP: std::sync::OnceLock<train::trainer::StopToken> = std::sync::OnceLock::new();

/// SIGINT (Ctrl-C) and SIGTERM trip the returned token: the trainer stops after its current step,
/// and then reports the run directory and the resume command. A second signal ends the process at
/// once.
pub(crate) fn install_stop_handler() -> train::trainer::StopToken {
    extern "C" fn on_signal(_: libc::c_int) {
        // An atomic load: the token is set before the handler is installed.
        let Some(token) = SIGNAL_STOP.get() else {
            return;
        };
        if token.is_stopped() {
            // SAFETY: _exit is async-signal-safe; a second Ctrl-C means "now".
            unsafe { libc::_exit(130) };
        }
        token.stop();
        let msg = b"\nstopping after the current step (Ctrl-C again to stop at once)\n";
        // SAFETY: write(2) is async-signal-safe; the buffer is a static byte string.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    }
    let token = SIGNAL_STOP
        .get_or_init(train::trainer::StopToken::new)
        .clone();
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only touches an atomic and calls async-signal-safe
        // functions; done once, before training starts.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    token
}
