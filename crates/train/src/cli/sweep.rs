//! `train sweep`: every cell of an experiment's `[sweep]` table on one pinned cache — all of
//! them in this process (resumable), or one (cell, fold) task of a job array.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use train::sweep::{Sweep, SweepOptions};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Experiment TOML with a [sweep] table (see docs/REPRODUCE.md), e.g.
    /// manifests/experiments/ckplus-ablation.toml.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print the cells and the job-array tasks (index → cell, fold), and exit.
    #[arg(long, conflicts_with = "task")]
    pub list: bool,
    /// Print only the number of job-array tasks (cells × folds), and exit.
    #[arg(long, conflicts_with_all = ["task", "list"])]
    pub count: bool,
    /// Print the tasks whose fold has no result yet, as a Slurm `--array` list (`0-2,5`; an
    /// empty line when every fold is trained), and exit. `scripts/slurm/submit-sweep.sh` submits
    /// only these, so a resubmission after a cancelled or failed task trains only what is missing.
    #[arg(long, conflicts_with_all = ["task", "list", "count"])]
    pub missing: bool,
    /// Train only job-array task I (0-based: cell I / folds, fold I % folds) into the cell's
    /// shared run directory, and exit [default: every cell and fold, then the ablation table].
    #[arg(long, value_name = "I")]
    pub task: Option<usize>,
    /// Override train.device for every cell (auto, cpu, cuda, cuda:N) [default: the file's].
    #[arg(long)]
    pub device: Option<String>,
}

pub fn sweep(a: SweepArgs) -> Result<()> {
    let sweep =
        Sweep::load(&a.config).with_context(|| format!("reading {}", a.config.display()))?;
    let plan = sweep
        .plan()
        .with_context(|| format!("planning sweep {}", sweep.dir().display()))?;
    if a.count {
        println!("{}", plan.tasks());
        return Ok(());
    }
    if a.missing {
        println!(
            "{}",
            train::sweep::array_spec(&plan.missing_tasks(&sweep.dir()))
        );
        return Ok(());
    }
    if a.list {
        println!(
            "sweep {} ({}): {} cells × {} folds = {} tasks on cache {} (key {})",
            plan.name,
            sweep.dir().display(),
            plan.cells.len(),
            plan.folds.len(),
            plan.tasks(),
            plan.cache.display(),
            shard::short_key(&plan.cache_key)
        );
        println!("\n| task | cell | fold | sets |\n|---|---|---|---|");
        for i in 0..plan.tasks() {
            let (c, f) = plan.task(i)?;
            let sets: Vec<String> = c.overrides.iter().map(|o| o.to_string()).collect();
            println!("| {i} | {} | {f} | {} |", c.name, sets.join(" "));
        }
        return Ok(());
    }
    let bars = super::run::Bars::new();
    let opts = SweepOptions {
        progress: &bars,
        stop: super::run::install_stop_handler(),
        device: a.device.clone(),
        git_revision: train::trainer::git_revision(),
    };
    if let Some(i) = a.task {
        let (cell, fold) = plan.task(i)?;
        println!(
            "task {i} of {}: cell {}, fold {fold}",
            plan.tasks(),
            cell.name
        );
        let out = train::sweep::run_task(&sweep, &plan, i, &opts)
            .with_context(|| format!("sweep {} task {i}", plan.name))?;
        println!(
            "fold {fold} of {} finished: {}",
            cell.name,
            out.dir.display()
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    train::sweep::run_all(&sweep, &plan, &opts).map_err(|e| match e {
        // Kept as the error's source, so that main's exit status says "stopped".
        e @ train::TrainError::Stopped { .. } => anyhow::Error::new(e).context(format!(
            "the sweep continues where it stopped with the same command: train sweep --config {}",
            a.config.display()
        )),
        e => anyhow::anyhow!(e).context(format!("sweep {}", plan.name)),
    })?;
    let report = train::report::ablation(&sweep.dir())
        .with_context(|| format!("the ablation table of {}", sweep.dir().display()))?;
    let md = report.markdown();
    println!("\n{md}");
    let dir = sweep.dir();
    shard::atomic_write(&dir.join("ablation.md"), md.as_bytes())?;
    shard::atomic_write(&dir.join("ablation.html"), report.html().as_bytes())?;
    let mut df = report.table()?;
    let mut buf = Vec::new();
    use polars::prelude::SerWriter;
    polars::prelude::CsvWriter::new(&mut buf).finish(&mut df)?;
    shard::atomic_write(&dir.join("ablation.csv"), &buf)?;
    println!(
        "sweep finished in {:.0} s: {} (ablation.md, ablation.csv, ablation.html; \
         `train report {}` reprints it)",
        started.elapsed().as_secs_f64(),
        dir.display(),
        dir.display()
    );
    Ok(())
}
