//! A sweep as written and as planned (a leaf below the runs and the report): an experiment
//! TOML's `[sweep]` table expanded into cells, and `sweep.json`, what a started sweep is pinned
//! to. Ablation sweeps over one cache: an experiment TOML's `[sweep]` table expanded into cells (one
//! run directory each, under `runs/<experiment>/<sweep>/<cell>/`), all pinned to the cache the
//! base experiment resolves to, and the (cell, fold) tasks a job array runs.
//!
//! ```toml
//! [sweep]
//! name = "ablation"          # the directory under runs/<experiment>/ (default: the file's stem)
//! seeds = [1, 2, 3]          # train.seed of each repetition (default: the file's train.seed)
//! "model.branches" = ["both", "gfm", "pbm"]   # a grid axis: every key with a list of values
//!
//! [[sweep.cells]]            # and/or named cells: the rows of a paper's ablation table
//! name = "no-mixup"
//! set = { "train.mixup_alpha" = 0.0 }
//! ```
//!
//! The settings are the named cells (or the file as written when there are none) × every
//! combination of the grid's values; each is repeated for every seed. A cell's name says its
//! settings: `<named cell>_<axis>-<value>…` and `.seed-<n>`, e.g. `branches-gfm.seed-2`. The first
//! setting is the baseline of the report's paired comparisons.

use crate::config::overrides::Override;
use crate::config::ExperimentConfig;
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One run of a sweep: a setting under one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepCell {
    /// The run directory's name: `<setting>.seed-<n>`.
    pub name: String,
    /// The setting's name (the cells of one setting differ only in their seed).
    pub setting: String,
    /// `train.seed`.
    pub seed: u64,
    /// What the cell changes from the file, in order (the seed last).
    pub overrides: Vec<Override>,
}

/// An expanded sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep's name (its directory under `runs/<experiment>/`).
    pub name: String,
    /// The experiment TOML.
    pub file: PathBuf,
    /// The file's text (each cell's configuration is this text with the cell's overrides).
    pub text: String,
    /// The experiment as written (the `[sweep]` table ignored).
    pub base: ExperimentConfig,
    /// Every cell, settings in order, seeds within each setting.
    pub cells: Vec<SweepCell>,
}

/// `sweep.json` in the sweep directory: what the sweep is and the cache it is pinned to, so that
/// every array task and every later invocation trains on the same cache and the same cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// Sweep name.
    pub name: String,
    /// Experiment name.
    pub experiment: String,
    /// The experiment TOML it was expanded from.
    pub config_file: PathBuf,
    /// The cache directory every cell trains on.
    pub cache: PathBuf,
    /// Its full key.
    pub cache_key: String,
    /// The settings in order (the first is the baseline).
    pub settings: Vec<String>,
    /// Every cell.
    pub cells: Vec<SweepCell>,
    /// The planned folds of every cell (the same for all: the cache and protocol are shared).
    pub folds: Vec<String>,
}

impl SweepPlan {
    /// The job-array tasks: task `i` trains fold `folds[i % folds.len()]` of cell
    /// `cells[i / folds.len()]`.
    pub fn tasks(&self) -> usize {
        self.cells.len() * self.folds.len()
    }

    /// The (cell, fold) of task `i`.
    ///
    /// Errors: [`TrainError::Config`] for an index beyond the tasks.
    pub fn task(&self, i: usize) -> Result<(&SweepCell, &str)> {
        let n = self.folds.len().max(1);
        match (self.cells.get(i / n), self.folds.get(i % n)) {
            (Some(c), Some(f)) if i < self.tasks() => Ok((c, f.as_str())),
            _ => Err(TrainError::Config(format!(
                "task {i}: this sweep has tasks 0 … {} ({} cells × {} folds)",
                self.tasks().saturating_sub(1),
                self.cells.len(),
                self.folds.len()
            ))),
        }
    }

    /// The tasks whose fold has no `result.json` yet under `sweep_dir` (the sweep's directory):
    /// what a job array still has to train after some tasks failed or were cancelled.
    pub fn missing_tasks(&self, sweep_dir: &Path) -> Vec<usize> {
        (0..self.tasks())
            .filter(|&i| match self.task(i) {
                Ok((c, f)) => !sweep_dir
                    .join(&c.name)
                    .join(format!("fold-{f}"))
                    .join("result.json")
                    .exists(),
                Err(_) => false,
            })
            .collect()
    }
}

/// Task indexes as a Slurm `--array` list: runs of consecutive indexes as `a-b`, joined by
/// commas (`[0, 1, 2, 5, 7, 8]` → `0-2,5,7-8`); empty for none.
pub fn array_spec(tasks: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i;
        while j + 1 < tasks.len() && tasks[j + 1] == tasks[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            tasks[i].to_string()
        } else {
            format!("{}-{}", tasks[i], tasks[j])
        });
        i = j + 1;
    }
    out.join(",")
}

impl Sweep {
    /// Reads an experiment TOML with a `[sweep]` table and expands it. Every cell's
    /// configuration is resolved here, so a bad key or value fails before anything runs.
    ///
    /// Errors: I/O, the file's errors, [`TrainError::Config`] for a malformed `[sweep]` table
    /// (no table, an axis without a list of values, a cell without a name, duplicate cell
    /// names), [`TrainError::Override`] for a key or value a cell cannot set.
    pub fn load(file: &Path) -> Result<Sweep> {
        let text = std::fs::read_to_string(file).map_err(|e| TrainError::io(file, e))?;
        let base = ExperimentConfig::parse(&text, file)?;
        let table = base.sweep.clone().ok_or_else(|| {
            TrainError::Config(format!(
                "{}: no [sweep] table (see docs/REPRODUCE.md for its keys); `train run` runs \
                 a single experiment",
                file.display()
            ))
        })?;
        let bad = |why: String| TrainError::Config(format!("{} [sweep]: {why}", file.display()));
        let mut name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        let mut seeds = vec![base.train.seed];
        let mut named: Vec<(String, Vec<Override>)> = Vec::new();
        let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
        for (k, v) in &table {
            match (k.as_str(), v) {
                ("name", toml::Value::String(s)) => name = s.clone(),
                ("seeds", toml::Value::Array(a)) => {
                    seeds = a
                        .iter()
                        .map(|x| x.as_integer().and_then(|i| u64::try_from(i).ok()))
                        .collect::<Option<Vec<u64>>>()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            bad("seeds must be a non-empty list of integers ≥ 0".into())
                        })?;
                }
                ("cells", toml::Value::Array(a)) => {
                    for (i, c) in a.iter().enumerate() {
                        let t = c
                            .as_table()
                            .ok_or_else(|| bad(format!("cells[{i}] is not a table")))?;
                        let cell_name = t
                            .get("name")
                            .and_then(|n| n.as_str())
                            .ok_or_else(|| bad(format!("cells[{i}] needs a name")))?;
                        if let Some(extra) = t.keys().find(|k| *k != "name" && *k != "set") {
                            return Err(bad(format!(
                                "cells[{i}]: unknown key `{extra}` (a cell has `name` and `set`)"
                            )));
                        }
                        let mut set = Vec::new();
                        if let Some(s) = t.get("set") {
                            let s = s
                                .as_table()
                                .ok_or_else(|| bad(format!("cells[{i}].set is not a table")))?;
                            for (k, v) in crate::config::flatten_toml(s) {
                                set.push(Override::new(k, v.to_string()));
                            }
                        }
                        named.push((sanitise(cell_name), set));
                    }
                }
                ("name" | "seeds" | "cells", _) => {
                    return Err(bad(format!("`{k}` has the wrong type")));
                }
                _ => {
                    let mut err = None;
                    let axis = toml::Table::from_iter([(k.clone(), v.clone())]);
                    for (key, v) in crate::config::flatten_toml(&axis) {
                        match v {
                            toml::Value::Array(vals) if !vals.is_empty() => {
                                axes.push((key, vals.clone()))
                            }
                            _ => {
                                err.get_or_insert(bad(format!(
                                    "`{key}`: a grid axis needs a non-empty list of values"
                                )));
                            }
                        }
                    }
                    if let Some(e) = err {
                        return Err(e);
                    }
                }
            }
        }
        if named.is_empty() {
            named.push((String::new(), Vec::new()));
        }
        // Settings: named cells × the grid's combinations, in order.
        let mut settings: Vec<(String, Vec<Override>)> = Vec::new();
        for (cell_name, set) in &named {
            let mut combos: Vec<(Vec<String>, Vec<Override>)> = vec![(Vec::new(), set.clone())];
            for (key, vals) in &axes {
                let short = key.rsplit('.').next().unwrap_or(key);
                combos = combos
                    .into_iter()
                    .flat_map(|(parts, ovs)| {
                        vals.iter().map(move |v| {
                            let mut parts = parts.clone();
                            let shown = match v {
                                toml::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            parts.push(format!("{short}-{}", sanitise(&shown)));
                            let mut ovs = ovs.clone();
                            ovs.push(Override::new(key.clone(), v.to_string()));
                            (parts, ovs)
                        })
                    })
                    .collect();
            }
            for (parts, ovs) in combos {
                let mut label: Vec<String> = Vec::new();
                if !cell_name.is_empty() {
                    label.push(cell_name.clone());
                }
                label.extend(parts);
                let label = if label.is_empty() {
                    "base".to_string()
                } else {
                    label.join("_")
                };
                settings.push((label, ovs));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (s, _) in &settings {
            if !seen.insert(s.clone()) {
                return Err(bad(format!("two cells are both named `{s}`")));
            }
        }
        let mut cells = Vec::new();
        for (setting, ovs) in settings {
            for &seed in &seeds {
                let mut overrides = ovs.clone();
                overrides.push(Override::new("train.seed", seed.to_string()));
                cells.push(SweepCell {
                    name: format!("{setting}.seed-{seed}"),
                    setting: setting.clone(),
                    seed,
                    overrides,
                });
            }
        }
        let sweep = Sweep {
            name: sanitise(&name),
            file: file.to_path_buf(),
            text,
            base,
            cells,
        };
        for c in &sweep.cells {
            sweep.cell_config(c, None)?;
        }
        Ok(sweep)
    }

    /// The configuration of `cell`: the file with the cell's overrides, and the cache pinned to
    /// `cache` (a directory) when given.
    ///
    /// Errors: as [`ExperimentConfig::parse_with_overrides`].
    pub fn cell_config(&self, cell: &SweepCell, cache: Option<&Path>) -> Result<ExperimentConfig> {
        let mut overrides = cell.overrides.clone();
        if let Some(dir) = cache {
            overrides.push(Override::new(
                "cache",
                toml::Value::String(dir.display().to_string()).to_string(),
            ));
        }
        ExperimentConfig::parse_with_overrides(&self.text, &self.file, &overrides)
    }

    /// The sweep directory: `<runs_dir>/<experiment>/<sweep name>`.
    pub fn dir(&self) -> PathBuf {
        self.base.runs_dir.join(&self.base.name).join(&self.name)
    }

    /// The run name of `cell` for [`crate::trainer::RunOptions::run_name`] (the run lands in
    /// `<sweep dir>/<cell>`).
    pub fn run_name(&self, cell: &SweepCell) -> String {
        format!("{}/{}", self.name, cell.name)
    }

    /// The settings in order, each once.
    pub fn settings(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.cells {
            if !out.contains(&c.setting) {
                out.push(c.setting.clone());
            }
        }
        out
    }
}

/// Reads `sweep.json` from a sweep directory.
///
/// Errors: I/O, [`TrainError::RunFile`] for JSON that is not a sweep plan.
pub fn read_plan(dir: &Path) -> Result<SweepPlan> {
    let path = dir.join("sweep.json");
    let bytes = std::fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::RunFile {
        path,
        reason: e.to_string(),
    })
}

/// A name safe as one path component: letters, digits, `.`, `-` and `_` kept, others `-`.
fn sanitise(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let out = out.trim_matches('.').to_string();
    if out.is_empty() {
        "cell".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep_of(text: &str) -> Result<Sweep> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ablation.toml");
        std::fs::write(&p, text).unwrap();
        Sweep::load(&p)
    }

    const BASE: &str = "name = \"x\"\ncache = \"somewhere\"\n";

    #[test]
    fn array_spec_joins_runs_of_consecutive_tasks() {
        assert_eq!(array_spec(&[]), "");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(array_spec(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(array_spec(&[1, 3, 5]), "1,3,5");
    }

    #[test]
    fn a_grid_and_seeds_expand_to_named_cells() {
        let s = sweep_of(&format!(
            "{BASE}[sweep]\nseeds = [1, 2]\n\"model.branches\" = [\"both\", \"gfm\", \"pbm\"]\n"
        ))
        .unwrap();
        assert_eq!(s.name, "ablation");
        let names: Vec<&str> = s.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "branches-both.seed-1",
                "branches-both.seed-2",
                "branches-gfm.seed-1",
                "branches-gfm.seed-2",
                "branches-pbm.seed-1",
                "branches-pbm.seed-2"
            ]
        );
        let c = s.cell_config(&s.cells[3], None).unwrap();
        assert_eq!(c.model.branches, crate::config::Branches::Gfm);
        assert_eq!(c.train.seed, 2);
        assert_eq!(
            s.settings(),
            ["branches-both", "branches-gfm", "branches-pbm"]
        );
    }

    #[test]
    fn named_cells_are_the_rows_and_combine_with_the_grid() {
        let s = sweep_of(&format!(
            "{BASE}[sweep]\nname = \"rows\"\n\"model.fusion_weight\" = [0.5, 0.7]\n\
             [[sweep.cells]]\nname = \"full\"\n[[sweep.cells]]\nname = \"no mixup\"\n\
             set = {{ \"train.mixup_alpha\" = 0.0, model = {{ deform = \"none\" }} }}\n"
        ))
        .unwrap();
        assert_eq!(
            s.settings(),
            [
                "full_fusion_weight-0.5",
                "full_fusion_weight-0.7",
                "no-mixup_fusion_weight-0.5",
                "no-mixup_fusion_weight-0.7"
            ]
        );
        let c = s.cell_config(&s.cells[3], None).unwrap();
        assert_eq!(c.train.mixup_alpha, 0.0);
        assert_eq!(c.model.deform, crate::config::Deform::None);
        assert_eq!(c.model.fusion_weight, 0.7);
    }

    #[test]
    fn bad_sweeps_are_refused_before_anything_runs() {
        let e = |t: &str| sweep_of(&format!("{BASE}{t}")).unwrap_err().to_string();
        assert!(e("").contains("no [sweep] table"));
        assert!(e("[sweep]\n\"model.branches\" = \"gfm\"\n").contains("needs a non-empty list"));
        let unknown = e("[sweep]\n\"model.branchs\" = [\"gfm\"]\n");
        assert!(
            unknown.contains("model.branchs") && unknown.contains("model.branches"),
            "{unknown}"
        );
        assert!(e("[sweep]\n\"model.branches\" = [\"gfm\", \"nope\"]\n").contains("nope"));
        assert!(e("[[sweep.cells]]\nset = {}\n").contains("needs a name"));
        assert!(e("[sweep]\nseeds = []\n").contains("seeds"));
    }

    #[test]
    fn plans_map_tasks_to_cell_and_fold() {
        let plan = SweepPlan {
            name: "s".into(),
            experiment: "x".into(),
            config_file: "x.toml".into(),
            cache: "c".into(),
            cache_key: "k".into(),
            settings: vec!["a".into()],
            cells: ["a.seed-1", "a.seed-2"]
                .iter()
                .map(|n| SweepCell {
                    name: n.to_string(),
                    setting: "a".into(),
                    seed: 1,
                    overrides: vec![],
                })
                .collect(),
            folds: vec!["fold0".into(), "fold1".into(), "fold2".into()],
        };
        assert_eq!(plan.tasks(), 6);
        let (c, f) = plan.task(4).unwrap();
        assert_eq!((c.name.as_str(), f), ("a.seed-2", "fold1"));
        assert!(plan.task(6).is_err());
    }
}
