//! `train eval`: score a trained run (or an exported model) on another cache.

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use train::eval::{EvalOptions, EvalSplit, Unshared};
use train::trained::TrainedModel;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The trained model: a run directory (every trained fold is scored), `<run dir>#<fold>`
    /// for one fold, or a directory `train export` wrote.
    #[arg(long, value_name = "RUN_DIR[#FOLD]")]
    pub run: String,
    /// The cache to score on: a cache directory, a cache name under --cache-dir, or
    /// name@keyprefix.
    #[arg(long, value_name = "CACHE")]
    pub cache: String,
    /// Where named caches live.
    #[arg(long, default_value = "data/cache", value_name = "DIR")]
    pub cache_dir: PathBuf,
    /// Which of the cache's samples: all, train, validation, test or foldK.
    #[arg(long, default_value = "all", value_name = "SPLIT")]
    pub split: EvalSplit,
    /// Samples of classes the model does not know: `leave-out` (they are not scored, and the
    /// model chooses among the classes both have) or `score` (every sample is scored and the
    /// model chooses among all its classes, so those samples are always wrong).
    #[arg(long, default_value = "leave-out", value_name = "RULE")]
    pub unshared: Unshared,
    /// Only these folds of the run (comma-separated, fold3 or 3) [default: every trained fold].
    #[arg(long, value_delimiter = ',', value_name = "K,…")]
    pub fold: Option<Vec<String>>,
    /// Where eval.json, eval.md and predictions-<fold>.parquet go [default:
    /// <run dir>/eval/<cache name>-<key>/, or beside an export].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Device (auto, cpu, cuda, cuda:N).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seed of the bootstrap intervals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print eval.json instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let device = train::trainer::pick_device(&a.device)?;
    let cache_dir = shard::resolve_cache(&a.cache_dir, &a.cache)
        .with_context(|| format!("cache {}", a.cache))?;
    let cache = Arc::new(
        shard::Cache::open_shared(&cache_dir, &mut |_| {})
            .with_context(|| format!("opening {}", cache_dir.display()))?,
    );
    let models = open_models(&a)?;
    let infos = train::loader::sample_infos(&cache)?;
    let bar = ProgressBar::new(models.len() as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} models, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("eval");
    let opts = EvalOptions {
        split: a.split.clone(),
        unshared: a.unshared,
        batch: a.batch,
        device,
        seed: a.seed,
    };
    let report = train::eval::evaluate(&models, cache.clone(), &opts, &mut |_| bar.inc(1))
        .with_context(|| format!("scoring {} on {}", a.run, cache_dir.display()))?;
    bar.finish_and_clear();
    let m = cache.manifest();
    let out = a.out.clone().unwrap_or_else(|| {
        models[0]
            .dir
            .join("eval")
            .join(format!("{}-{}", m.name, m.short_key()))
    });
    train::eval::write_outputs(&out, &report, &infos)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", train::eval::markdown(&report));
        println!(
            "written: {}/eval.json, eval.md, predictions-*.parquet",
            out.display()
        );
    }
    Ok(())
}

/// The models `--run` and `--fold` name.
fn open_models(a: &EvalArgs) -> Result<Vec<TrainedModel>> {
    let (path, fold) = match a.run.rsplit_once('#') {
        Some((p, f)) => (p.to_string(), Some(f.to_string())),
        None => (a.run.clone(), None),
    };
    let dir = PathBuf::from(&path);
    if fold.is_some() || dir.join("model.json").exists() {
        if a.fold.is_some() {
            bail!("--fold and {} both name a fold: give one", a.run);
        }
        return Ok(vec![TrainedModel::open(&a.run)?]);
    }
    let trained = train::trained::trained_folds(&dir);
    let folds: Vec<String> = match &a.fold {
        Some(f) => f.iter().map(|f| train::outputs::fold_name(f)).collect(),
        None => trained.clone(),
    };
    if folds.is_empty() {
        bail!("{}: no trained fold", dir.display());
    }
    folds
        .iter()
        .map(|f| TrainedModel::open(&format!("{path}#{f}")).map_err(anyhow::Error::from))
        .collect()
}
