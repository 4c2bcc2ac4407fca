//! Running an ablation sweep: every cell on the pinned cache, one process (`train sweep`) or one
//! (cell, fold) task of a job array at a time. What a sweep is lives in [`plan`].

pub mod plan;

pub use plan::{array_spec, read_plan, Sweep, SweepCell, SweepPlan};

use crate::config::overrides::Override;
use crate::{Result, TrainError};

impl Sweep {
    /// Resolves the cache once, plans the folds, and writes (or checks) `sweep.json`: a sweep
    /// directory stays pinned to the cache and cells it started with.
    ///
    /// Errors: cache errors; [`TrainError::Config`] when `sweep.json` exists with other cells,
    /// another cache key or other folds (the file or the cache changed since the sweep began).
    pub fn plan(&self) -> Result<SweepPlan> {
        let cache_dir = self.base.resolve_cache()?;
        let cache_dir = std::fs::canonicalize(&cache_dir).unwrap_or(cache_dir);
        let first = self.cell_config(&self.cells[0], Some(&cache_dir))?;
        let (key, folds) = crate::trainer::planned_folds(&first)?;
        let plan = SweepPlan {
            name: self.name.clone(),
            experiment: self.base.name.clone(),
            config_file: self.file.clone(),
            cache: cache_dir,
            cache_key: key,
            settings: self.settings(),
            cells: self.cells.clone(),
            folds,
        };
        let path = self.dir().join("sweep.json");
        if let Ok(bytes) = std::fs::read(&path) {
            let old: SweepPlan =
                serde_json::from_slice(&bytes).map_err(|e| TrainError::RunFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let same = old.cells == plan.cells
                && old.cache_key == plan.cache_key
                && old.folds == plan.folds;
            if !same {
                return Err(TrainError::Config(format!(
                    "{} was planned with other cells, folds or cache (key {} then, {} now): \
                     the sweep file or the cache changed since this sweep began. Give the \
                     sweep another `name`, or remove {}",
                    path.display(),
                    shard::short_key(&old.cache_key),
                    shard::short_key(&plan.cache_key),
                    self.dir().display()
                )));
            }
            return Ok(old);
        }
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        shard::atomic_write(
            &path,
            &serde_json::to_vec_pretty(&plan)
                .map_err(|e| TrainError::serialize("sweep.json", e))?,
        )?;
        Ok(plan)
    }
}

/// How [`run_all`] and [`run_task`] run cells.
pub struct SweepOptions<'a> {
    /// Progress hooks (every cell's epochs).
    pub progress: &'a dyn crate::trainer::TrainProgress,
    /// Tripped to stop between training steps; the interrupted cell resumes on the next call.
    pub stop: crate::trainer::StopToken,
    /// `train.device` for every cell instead of the file's.
    pub device: Option<String>,
    /// Git revision for each cell's run.json.
    pub git_revision: Option<String>,
}

impl Sweep {
    /// Runs `cell` on the pinned cache: every fold (`folds = None`) or, as a job-array task,
    /// only `folds` of its shared run directory.
    fn run_cell(
        &self,
        plan: &SweepPlan,
        cell: &SweepCell,
        folds: Option<Vec<String>>,
        opts: &SweepOptions<'_>,
    ) -> Result<crate::trainer::RunOutcome> {
        let mut cfg = self.cell_config(cell, Some(&plan.cache))?;
        if let Some(d) = &opts.device {
            cfg.train.device = d.clone();
        }
        let mut overrides = cell.overrides.clone();
        overrides.push(Override::new(
            "cache",
            toml::Value::String(plan.cache.display().to_string()).to_string(),
        ));
        crate::trainer::run_experiment(
            &cfg,
            crate::trainer::RunOptions {
                resume: None,
                run_name: Some(self.run_name(cell)),
                git_revision: opts.git_revision.clone(),
                progress: opts.progress,
                stop: opts.stop.clone(),
                overrides,
                task_folds: folds,
            },
        )
    }
}

/// Runs every cell of the sweep in order, each to its summary (the ablation table is then
/// [`crate::report::ablation`]'s, called by the binary).
/// Finished cells (a summary and the same configuration on disk) are kept without opening the
/// cache; a cell interrupted earlier, or whose folds job-array tasks trained, continues from its
/// checkpoints and finished folds. Safe to call again after an interruption.
///
/// Errors: as [`crate::trainer::run_experiment`] ([`TrainError::Stopped`] when `opts.stop`
/// trips), and reading the cells back.
pub fn run_all(sweep: &Sweep, plan: &SweepPlan, opts: &SweepOptions<'_>) -> Result<()> {
    for (k, cell) in plan.cells.iter().enumerate() {
        let dir = sweep.dir().join(&cell.name);
        if dir.join("summary.json").exists() {
            let cfg = sweep.cell_config(cell, Some(&plan.cache))?;
            let on_disk = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
            if on_disk == cfg.to_toml()? {
                opts.progress.note(&format!(
                    "cell {}/{}: {} finished, kept",
                    k + 1,
                    plan.cells.len(),
                    cell.name
                ));
                continue;
            }
        }
        opts.progress.note(&format!(
            "cell {}/{}: {}",
            k + 1,
            plan.cells.len(),
            cell.name
        ));
        sweep.run_cell(plan, cell, None, opts)?;
    }
    Ok(())
}

/// Runs job-array task `task` (one fold of one cell, [`SweepPlan::task`]) into the cell's run
/// directory, which other tasks share. A finished fold is kept; an interrupted one resumes.
///
/// Errors: an index beyond the tasks; as [`crate::trainer::run_experiment`]; the fold being
/// trained by another process ([`TrainError::RunInUse`]).
pub fn run_task(
    sweep: &Sweep,
    plan: &SweepPlan,
    task: usize,
    opts: &SweepOptions<'_>,
) -> Result<crate::trainer::RunOutcome> {
    let (cell, fold) = plan.task(task)?;
    sweep.run_cell(plan, cell, Some(vec![fold.to_string()]), opts)
}
