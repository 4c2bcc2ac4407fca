//! The k-fold / split trainer: fold plans, the epoch loop with mixup and the two losses, honest
//! model selection, atomic checkpoints after every epoch, exact resumption, and the run directory.
//!
//! * `plan` — which records train, select and test in each fold; the validation hold-out.
//! * `targets` — FER+ soft targets (labels drawn from the votes, or the vote distribution).
//! * `loss` — the loss of one step ([`mgln_loss`]) and the fused prediction ([`fuse`]).
//! * `fold` — one fold's epoch loop, evaluation and outputs ([`Runner`]).
//! * `checkpoint` — the per-epoch checkpoint and resuming from it.
//! * `run_dir` — the run directory's lock, resume check, `run.json` and provenance.

mod checkpoint;
mod fold;
mod loss;
mod plan;
mod run_dir;
mod targets;

pub use fold::Runner;
pub use loss::{fuse, mgln_loss, LabelLoss, Mixup, StepLoss};
pub use plan::{plan_folds, FoldPlan};
pub use run_dir::{git_diff_blake3, git_revision};
pub use targets::{BatchTarget, SoftLoss, SoftTarget, VoteTargets};

use crate::config::{ExperimentConfig, Protocol};
use crate::loader::{self, Layout};
use crate::outputs::{self, EpochRecord, FoldResult};
use crate::{Result, TrainError};
use run_dir::RunDir;
use shard::Cache;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::Device;

/// Picks the device named in the configuration, after checking that libtorch can use it.
///
/// Errors: [`TrainError::Config`] for a name that is not `auto`, `cpu`, `cuda` or `cuda:N`, and
/// for a CUDA device libtorch does not see (with what it does see), instead of a libtorch panic
/// at the first tensor.
pub fn pick_device(name: &str) -> Result<Device> {
    let cuda = |n: usize| -> Result<Device> {
        let count = tch::Cuda::device_count();
        if !tch::Cuda::is_available() || count <= n as i64 {
            return Err(TrainError::Config(format!(
                "device {name:?}: libtorch sees {} (CUDA available: {}, cuDNN: {}); run \
                 `train env` for details, or use --device cpu (or auto, which falls back to the CPU)",
                match count {
                    0 => "no CUDA device".to_string(),
                    1 => "1 CUDA device (cuda:0)".to_string(),
                    c => format!("{c} CUDA devices (cuda:0 … cuda:{})", c - 1),
                },
                tch::Cuda::is_available(),
                tch::Cuda::cudnn_is_available()
            )));
        }
        Ok(Device::Cuda(n))
    };
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => cuda(n),
            None => Err(TrainError::Config(format!(
                "device {s:?}: expected auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Progress hooks of the trainer (the binary draws bars).
pub trait TrainProgress {
    /// A fold's epoch starts with `batches` batches.
    fn epoch_start(&self, fold: &str, epoch: usize, epochs: usize, batches: u64);
    /// A batch is done.
    fn batch_done(&self, samples: u64);
    /// The epoch ended with this record.
    fn epoch_end(&self, record: &EpochRecord);
    /// Free-form notes (pretrained weights missing, resumption, …).
    fn note(&self, text: &str);
}

/// Progress that prints nothing.
pub struct Quiet;

impl TrainProgress for Quiet {
    fn epoch_start(&self, _: &str, _: usize, _: usize, _: u64) {}
    fn batch_done(&self, _: u64) {}
    fn epoch_end(&self, _: &EpochRecord) {}
    fn note(&self, _: &str) {}
}

/// A request to stop a run, shared between the run and whoever may ask (the binary's SIGINT /
/// SIGTERM handler, a test's progress hook). The run checks it after every training step and
/// before every epoch, and then ends with [`TrainError::Stopped`]; the checkpoint of the last
/// finished epoch is on disk, and `train run --resume` repeats the interrupted epoch from its
/// start with the same results. Cloning shares the request.
#[derive(Debug, Clone, Default)]
pub struct StopToken(Arc<AtomicBool>);

impl StopToken {
    /// A token nobody has tripped yet.
    pub fn new() -> StopToken {
        StopToken::default()
    }

    /// A token for runs that nothing stops (the same as [`StopToken::new`], named for intent).
    pub fn never() -> StopToken {
        StopToken::default()
    }

    /// Asks the run to stop (an atomic store: safe in a signal handler).
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`StopToken::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What `train run` produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// Per-fold results.
    pub folds: Vec<FoldResult>,
}

/// Options of [`run_experiment`].
pub struct RunOptions<'a> {
    /// Continue this run directory instead of starting a new one.
    pub resume: Option<PathBuf>,
    /// Run name (default: UTC time stamp).
    pub run_name: Option<String>,
    /// Git revision for run.json.
    pub git_revision: Option<String>,
    /// Progress hooks.
    pub progress: &'a dyn TrainProgress,
    /// Tripped (by a signal handler, or a test's progress hook) to stop the run between training
    /// steps; [`StopToken::never`] when nothing stops it.
    pub stop: StopToken,
    /// The `--set` overrides `cfg` was resolved with, recorded in run.json (their values are in
    /// config.toml already).
    pub overrides: Vec<crate::config::overrides::Override>,
    /// A job-array task: train only these planned folds (by name) of a run directory that other
    /// tasks share — under a shared lock of the run and an exclusive lock of each fold, without
    /// the run's summary (the run that trains every fold, e.g. `train sweep` after the array,
    /// keeps the finished folds and writes it). `None`: every planned fold, then the summary.
    pub task_folds: Option<Vec<String>>,
}

/// The cache key and the names of the folds `cfg` plans (what `train sweep` maps job-array
/// tasks onto), read under the cache's shared lock.
///
/// Errors: cache errors, and those of [`plan_folds`].
pub fn planned_folds(cfg: &ExperimentConfig) -> Result<(String, Vec<String>)> {
    let cache_dir = cfg.resolve_cache()?;
    let cache = Cache::open_shared(&cache_dir, &mut |_| {})?;
    let infos = loader::sample_infos(&cache)?;
    let plans = plan_folds(cfg, &infos)?;
    Ok((
        cache.manifest().key.clone(),
        plans.into_iter().map(|p| p.name).collect(),
    ))
}

/// Runs (or resumes) an experiment: every planned fold, then `summary.md`.
///
/// Everything that can be checked is checked before the run directory is created (the
/// configuration's ranges, the device, the cache reference, the folds and their subject
/// disjointness), so a run that cannot start leaves nothing behind. A run name that exists is
/// resumed when its resolved configuration is the same, and refused when it differs.
///
/// Errors: configuration, cache and libtorch errors; a damaged checkpoint; an existing run
/// directory with another configuration or in use by another process; [`TrainError::Stopped`]
/// when `opts.stop` is tripped.
pub fn run_experiment(cfg: &ExperimentConfig, opts: RunOptions<'_>) -> Result<RunOutcome> {
    let t = &cfg.train;
    cfg.check().map_err(TrainError::Config)?;
    if let Some(n) = t.threads {
        tch::set_num_threads(n);
    }
    let device = pick_device(&t.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    crate::torch_ext::set_tf32(t.precision.allows_tf32())?;
    let cache_dir = cfg.resolve_cache()?;
    // Read under the cache's shared lock for the whole run: `prep cache gc` leaves it alone.
    let cache = Arc::new(Cache::open_shared(&cache_dir, &mut |holder| {
        opts.progress.note(&format!(
            "cache {} is being written by {}; waiting",
            cache_dir.display(),
            shard::lock::describe_holder(holder)
        ))
    })?);
    let layout = Layout::from_cache(&cache, t.frames)?;
    let classes = cache.manifest().class_names.clone();
    let infos = loader::sample_infos(&cache)?;
    let targets = VoteTargets::for_cache(&cache, &infos)?.map(Arc::new);
    if let Some(t) = &targets {
        opts.progress.note(&format!(
            "targets: the cache's FER+ votes under FERPlus's {} mode ({})",
            t.mode.name(),
            match t.mode {
                shard::votes::FerPlusMode::Probability =>
                    "a label drawn from the votes every epoch",
                shard::votes::FerPlusMode::MultiTarget => "any kept emotion counts as right",
                _ => "cross-entropy against the vote distribution",
            }
        ));
    }
    let plans = plan_folds(cfg, &infos)?;
    let m = cache.manifest();
    opts.progress.note(&format!(
        "cache {} (name {}, key {}, {} samples)",
        cache_dir.display(),
        m.name,
        m.short_key(),
        m.samples
    ));
    if m.extra.pointer("/notes/folds_by").and_then(|v| v.as_str()) == Some("image")
        && cfg.protocol == Protocol::Kfold
    {
        opts.progress.note(
            "WARNING: this cache's folds are image-level (no subject ids were given when it was \
             built): one person can be in training and test folds, so these are not \
             subject-independent numbers. Rebuild with --subject-regex or --subjects.",
        );
    }
    // The cache's crop settings, recorded in run.json: a run started from this one compares
    // them even when this cache is gone.
    let crops = crate::recipe::from_manifest_extra(&m.extra, &m.name)
        .ok()
        .and_then(|r| serde_json::to_value(r.crops).ok());
    let init = match &cfg.model.init_from {
        Some(spec) => {
            let mc = crate::model::ModelConfig::for_experiment(
                &cfg.model,
                layout.face,
                layout.parts,
                layout.frames(),
                classes.len(),
            );
            let here =
                crate::trained::Preprocessing::of(&mc, layout.face, layout.parts, crops.clone());
            let init = crate::transfer::InitWeights::resolve(spec, &mc, &here, &classes)?;
            let s = &init.source;
            opts.progress.note(&format!(
                "init_from {spec}: {}{}{}; {}",
                match &s.fold {
                    Some(f) => format!("fold {f}"),
                    None => "an export".into(),
                },
                match s.result {
                    Some((epoch, acc)) => format!(
                        ", epoch {epoch} ({} weights; test accuracy {:.2} %)",
                        match s.weights_of {
                            crate::trained::WeightsOf::LastEpoch => "the last epoch's",
                            _ => "the reported epoch's",
                        },
                        100.0 * acc
                    ),
                    None => String::new(),
                },
                match &s.cache {
                    Some((name, key)) =>
                        format!(", trained on cache {name} {}", shard::short_key(key)),
                    None => String::new(),
                },
                init.plan.summary()
            ));
            Some(init)
        }
        None => None,
    };
    let dir = match &opts.resume {
        Some(d) => d.clone(),
        None => {
            let name = opts.run_name.clone().unwrap_or_else(outputs::timestamp);
            cfg.runs_dir.join(&cfg.name).join(name)
        }
    };
    if let Some(names) = &opts.task_folds {
        let unknown: Vec<&String> = names
            .iter()
            .filter(|n| !plans.iter().any(|p| &p.name == *n))
            .collect();
        if !unknown.is_empty() {
            return Err(TrainError::Config(format!(
                "folds {unknown:?} are not planned by this experiment (planned: {})",
                plans
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let lock_mode = match opts.task_folds {
        Some(_) => shard::LockMode::Shared,
        None => shard::LockMode::Exclusive,
    };
    let run_dir = RunDir::take(
        dir,
        &cfg.to_toml()?,
        opts.resume.is_some(),
        &|text| opts.progress.note(text),
        lock_mode,
    )?;
    let dir = run_dir.dir.clone();
    opts.progress.note(&format!(
        "run directory {}; to continue it after an interruption: train run --resume {}",
        dir.display(),
        dir.display()
    ));
    let git_diff = run_dir::git_diff_blake3();
    let mut run_json = serde_json::json!({
        "experiment": cfg.name,
        "command": std::env::args().collect::<Vec<_>>(),
        "started_unix": run_dir::unix_now(),
        "finished_unix": null,
        "resumed": run_dir.resumed,
        "git_revision": opts.git_revision,
        "git_dirty": opts.git_revision.as_deref().is_some_and(|r| r.ends_with("-dirty")) || git_diff.is_some(),
        "git_diff_blake3": git_diff,
        "cache": cache_dir.display().to_string(),
        "cache_key": m.key,
        "cache_name": m.name,
        "device": format!("{device:?}"),
        "cuda": tch::Cuda::is_available(),
        "cudnn": tch::Cuda::cudnn_is_available(),
        "libtorch_threads": tch::get_num_threads(),
        // Another CPU's kernels round differently: a run is reproducible on the same kernel set.
        "cpu_capability": crate::torch_ext::cpu_capability().ok(),
        "tch": crate::TCH_VERSION,
        "tool": format!("train {}", env!("CARGO_PKG_VERSION")),
        "layout": {"face": layout.face, "parts": layout.parts, "frames": layout.use_slots},
        "classes": classes,
        "folds_planned": plans.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        "epochs_planned": t.epochs,
        "precision_effective": if device.is_cuda() { format!("{:?}", t.precision) } else { "Fp32 (CPU)".to_string() },
        "pretrained": cfg.model.pretrained.as_ref().map(|p| p.display().to_string()),
        "init_from": init.as_ref().map(|i| i.record()),
        "preprocessing": {"crops": crops},
        "init": cfg.model.init,
        "fusion": cfg.model.fusion,
        "fusion_weight": cfg.model.fusion_weight,
        "targets": targets.as_ref().map_or("labels", |t| t.mode.name()),
        "training": cfg.training_summary(),
        "overrides": opts.overrides.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
    });
    // Array tasks sharing the run write run.json once (the first); the finishing run rewrites it.
    if opts.task_folds.is_none() || !dir.join("run.json").exists() {
        run_dir.write_run_json(&run_json)?;
    }
    let runner = Runner {
        progress: opts.progress,
        targets,
        stop: opts.stop.clone(),
        sample_infos: Some(Arc::new(infos)),
        shared_run: opts.task_folds.is_some(),
        init: init.as_ref(),
        ..Runner::new(cfg, dir.clone(), cache, device)?
    };
    let mut results = Vec::new();
    if let Some(names) = &opts.task_folds {
        for p in plans.iter().filter(|p| names.contains(&p.name)) {
            let fold_dir = dir.join(format!("fold-{}", p.name));
            let _fold_lock = run_dir::lock_fold(&fold_dir)?;
            results.push(runner.run_fold(p)?);
        }
        return Ok(RunOutcome {
            dir,
            folds: results,
        });
    }
    for p in &plans {
        results.push(runner.run_fold(p)?);
    }
    outputs::write_metrics(&dir)?;
    outputs::write_summary(&dir, cfg, &classes, &results)?;
    run_json["finished_unix"] = serde_json::json!(run_dir::unix_now());
    run_dir.write_run_json(&run_json)?;
    Ok(RunOutcome {
        dir,
        folds: results,
    })
}
