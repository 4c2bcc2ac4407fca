//! `train eval`: a trained model scored on another cache (cross-dataset evaluation: a FER2013
//! model on CK+48 or JAFFE). Classes are matched by name ([`crate::classes`]); what to do with
//! the classes only one side has is the caller's choice ([`Unshared`]). The samples stream
//! through the loader as in training's evaluation (with the model's flip averaging), never held
//! in memory as a whole.

use crate::classes::ClassMatch;
use crate::loader::{self, SampleInfo};
use crate::outputs::{Confusion, Metrics, ScoredSample};
use crate::trained::{Preprocessing, TrainedModel};
use crate::trainer::Runner;
use crate::{ExperimentConfig, Result, TrainError};
use serde::Serialize;
use shard::{Cache, Split};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What happens to the classes only one side has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unshared {
    /// Samples of classes the model does not know are left out, and the model chooses among
    /// the shared classes only (its other classes' probabilities dropped, the rest renormalised):
    /// the figure of a model asked the question the cache can answer.
    LeaveOut,
    /// Every sample is scored and the model chooses among all its classes: samples of classes
    /// it does not know always count as wrong, and so does any choice of a class the cache does
    /// not have.
    Score,
}

impl std::str::FromStr for Unshared {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "leave-out" => Ok(Unshared::LeaveOut),
            "score" => Ok(Unshared::Score),
            _ => Err(format!("{s:?}: expected leave-out or score")),
        }
    }
}

/// Which samples of the cache are scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EvalSplit {
    /// Every sample.
    All,
    /// One split or fold (`train`, `validation`, `test`, `fold3`).
    Only(Split),
}

impl std::str::FromStr for EvalSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "all" {
            return Ok(EvalSplit::All);
        }
        match s {
            "train" => Ok(EvalSplit::Only(Split::Train)),
            "validation" => Ok(EvalSplit::Only(Split::Validation)),
            "test" => Ok(EvalSplit::Only(Split::Test)),
            f => f
                .strip_prefix("fold")
                .and_then(|k| k.parse().ok())
                .map(|k| EvalSplit::Only(Split::Fold(k)))
                .ok_or_else(|| format!("{s:?}: expected all, train, validation, test or foldK")),
        }
    }
}

impl EvalSplit {
    fn admits(&self, s: Split) -> bool {
        match self {
            EvalSplit::All => true,
            EvalSplit::Only(x) => *x == s,
        }
    }
}

/// Options of [`evaluate`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Which samples.
    pub split: EvalSplit,
    /// The classes only one side has.
    pub unshared: Unshared,
    /// Samples per forward pass.
    pub batch: usize,
    /// The device.
    pub device: tch::Device,
    /// Seed of the bootstrap intervals.
    pub seed: u64,
}

/// One model's figures on the cache.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEval {
    /// The model (`run#fold` or an export).
    pub model: String,
    /// Its fold.
    pub fold: Option<String>,
    /// Samples scored.
    pub scored: u64,
    /// Samples left out (classes the model does not know, under [`Unshared::LeaveOut`]).
    pub left_out: u64,
    /// Accuracy, balanced accuracy, macro-F1, per-class scores and bootstrap intervals over
    /// [`EvalReport::classes`].
    pub metrics: Metrics,
    /// counts[true][predicted] over [`EvalReport::classes`].
    pub confusion: Vec<Vec<u64>>,
    /// Every scored sample, in [`EvalReport::classes`] (for `predictions-<fold>.parquet`).
    #[serde(skip)]
    pub predictions: Vec<ScoredSample>,
}

/// What `train eval` found.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The cache scored.
    pub cache: String,
    /// Its name and key.
    pub cache_name: String,
    /// Its key.
    pub cache_key: String,
    /// The samples scored.
    pub split: String,
    /// The rule for unshared classes.
    pub unshared: Unshared,
    /// The classes of the figures: the shared ones (leave-out), or the cache's followed by
    /// those only the model has (score).
    pub classes: Vec<String>,
    /// Classes only the model has.
    pub only_model: Vec<String>,
    /// Classes only the cache has.
    pub only_cache: Vec<String>,
    /// Each model's figures.
    pub models: Vec<ModelEval>,
}

/// Scores each of `models` (folds of one run, or exports with the same classes) on `cache`.
///
/// Errors: a model whose preprocessing differs from the cache's
/// ([`TrainError::PreprocessingMismatch`]), a cache with no sample to score, models without a
/// shared class with the cache, cache and libtorch errors.
pub fn evaluate(
    models: &[TrainedModel],
    cache: Arc<Cache>,
    opts: &EvalOptions,
    on_model: &mut dyn FnMut(&ModelEval),
) -> Result<EvalReport> {
    let Some(first) = models.first() else {
        return Err(TrainError::Config("no model to evaluate".into()));
    };
    let m = cache.manifest().clone();
    let cache_classes = m.class_names.clone();
    let matched = ClassMatch::between(&first.classes, &cache_classes);
    if matched.shared.is_empty() {
        return Err(TrainError::SourceModel {
            source_model: first.spec.clone(),
            reason: format!(
                "no class in common with cache {} (the model: {}; the cache: {})",
                m.name,
                first.classes.join(", "),
                cache_classes.join(", ")
            ),
        });
    }
    let (classes, space) = class_space(&matched, &first.classes, &cache_classes, opts.unshared);
    let infos = loader::sample_infos(&cache)?;
    let records: Vec<u64> = infos
        .iter()
        .filter(|i| opts.split.admits(i.split))
        .filter(|i| opts.unshared == Unshared::Score || space.truth[i.label as usize].is_some())
        .map(|i| i.record)
        .collect();
    let in_split = infos.iter().filter(|i| opts.split.admits(i.split)).count() as u64;
    if records.is_empty() {
        return Err(TrainError::Config(format!(
            "cache {}: no sample of {:?} to score{}",
            m.name,
            opts.split,
            if in_split > 0 {
                " in the classes the model knows"
            } else {
                ""
            }
        )));
    }
    let crops = crate::trained::cache_crops(cache.dir());
    let mut out = Vec::new();
    for model in models {
        let cfg = scoring_config(model, &cache, opts);
        let runner = Runner::new(&cfg, PathBuf::new(), cache.clone(), opts.device)?;
        let layout = &runner.layout;
        let here = Preprocessing::of(&model.model, layout.face, layout.parts, crops.clone());
        let mismatches = model.preprocessing.differences(&here);
        if !mismatches.is_empty() {
            return Err(TrainError::PreprocessingMismatch {
                source_model: model.spec.clone(),
                target: format!("cache {}", m.name),
                mismatches,
            });
        }
        if model.classes != first.classes {
            return Err(TrainError::SourceModel {
                source_model: model.spec.clone(),
                reason: format!("its classes differ from {}'s", first.spec),
            });
        }
        let vs = tch::nn::VarStore::new(opts.device);
        let net = crate::model::Network::new(&vs.root(), &model.model)?;
        load_into(&vs, model)?;
        let tf = runner.transform(&model.model);
        let scored = runner.score(&net, &tf, &records)?;
        let remapped = remap(&scored, &space);
        let mut conf = Confusion::new(classes.len());
        for s in &remapped {
            conf.add(s.label as usize, s.predicted as usize);
        }
        let eval = ModelEval {
            model: model.spec.clone(),
            fold: model.fold.clone(),
            scored: remapped.len() as u64,
            left_out: in_split - records.len() as u64,
            metrics: conf.metrics(&[opts.seed, 0xe7a1]),
            confusion: conf.counts.clone(),
            predictions: remapped,
        };
        on_model(&eval);
        out.push(eval);
    }
    Ok(EvalReport {
        cache: cache.dir().display().to_string(),
        cache_name: m.name.clone(),
        cache_key: m.key.clone(),
        split: match &opts.split {
            EvalSplit::All => "all".into(),
            EvalSplit::Only(s) => s.to_string(),
        },
        unshared: opts.unshared,
        classes,
        only_model: matched.only_first.clone(),
        only_cache: matched.only_second.clone(),
        models: out,
    })
}

/// How model outputs and cache labels map into the figures' classes.
struct ClassSpace {
    /// Figure class of each cache label (`None`: left out).
    truth: Vec<Option<usize>>,
    /// Figure class of each model output (`None`: not chosen under leave-out).
    output: Vec<Option<usize>>,
}

/// The figures' classes and the mapping into them: under leave-out the shared classes (in the
/// cache's order); under score the cache's classes followed by those only the model has.
fn class_space(
    matched: &ClassMatch,
    model_classes: &[String],
    cache_classes: &[String],
    unshared: Unshared,
) -> (Vec<String>, ClassSpace) {
    let mut output = vec![None; model_classes.len()];
    match unshared {
        Unshared::LeaveOut => {
            let mut truth = vec![None; cache_classes.len()];
            let mut names = Vec::new();
            for (k, (i, j, _)) in matched.shared.iter().enumerate() {
                truth[*j] = Some(k);
                output[*i] = Some(k);
                names.push(cache_classes[*j].clone());
            }
            (names, ClassSpace { truth, output })
        }
        Unshared::Score => {
            let mut names: Vec<String> = cache_classes.to_vec();
            for (i, j, _) in &matched.shared {
                output[*i] = Some(*j);
            }
            for (i, slot) in output.iter_mut().enumerate() {
                if slot.is_none() {
                    *slot = Some(names.len());
                    names.push(model_classes[i].clone());
                }
            }
            let truth = (0..cache_classes.len()).map(Some).collect();
            (names, ClassSpace { truth, output })
        }
    }
}

/// Scored samples in the figures' classes: label and prediction mapped, probabilities over the
/// figures' classes (renormalised over the shared ones under leave-out).
fn remap(scored: &[ScoredSample], space: &ClassSpace) -> Vec<ScoredSample> {
    let n = space
        .truth
        .iter()
        .chain(&space.output)
        .flatten()
        .max()
        .map_or(0, |m| m + 1);
    scored
        .iter()
        .filter_map(|s| {
            let label = space.truth.get(s.label as usize).copied().flatten()?;
            let mut p = vec![0f32; n];
            for (i, &q) in s.probabilities.iter().enumerate() {
                if let Some(Some(k)) = space.output.get(i) {
                    p[*k] += q;
                }
            }
            let total: f32 = p.iter().sum();
            if total > 0.0 {
                for q in &mut p {
                    *q /= total;
                }
            }
            // The first of equal maxima, as libtorch's argmax.
            let predicted = p
                .iter()
                .enumerate()
                .fold(
                    (0usize, f32::MIN),
                    |best, (k, &q)| {
                        if q > best.1 {
                            (k, q)
                        } else {
                            best
                        }
                    },
                )
                .0;
            Some(ScoredSample {
                record: s.record,
                label: label as i64,
                predicted: predicted as i64,
                probabilities: p,
            })
        })
        .collect()
}

/// The experiment settings scoring needs, from the model: fusion, flip averaging, its frames.
fn scoring_config(model: &TrainedModel, cache: &Cache, opts: &EvalOptions) -> ExperimentConfig {
    let mut cfg = ExperimentConfig {
        name: "eval".into(),
        cache: cache.dir().display().to_string(),
        ..ExperimentConfig::default()
    };
    cfg.model.kind = model.model.kind;
    cfg.model.fusion = model.fusion;
    cfg.model.fusion_weight = model.fusion_weight;
    cfg.train.tta_flip = model.tta_flip;
    cfg.train.batch = opts.batch;
    cfg.train.frames = Some(model.model.frames as usize);
    cfg
}

/// Loads a trained model's weights into every variable of `vs`.
fn load_into(vs: &tch::nn::VarStore, model: &TrainedModel) -> Result<()> {
    let tensors = model.tensors()?;
    let mut vars = vs.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vars.iter_mut() {
            let src = tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| TrainError::Weights {
                    file: model.weights.clone(),
                    reason: format!("no {name}"),
                })?;
            if src.size() != var.size() {
                return Err(TrainError::Weights {
                    file: model.weights.clone(),
                    reason: format!(
                        "{name}: shape {:?}, the network's {:?}",
                        src.size(),
                        var.size()
                    ),
                });
            }
            var.copy_(&src.to_device(var.device()));
        }
        Ok(())
    })
}

/// Writes `eval.json`, `eval.md` and each model's `predictions-<fold>.parquet` into `dir`.
///
/// Errors: I/O, serialisation.
pub fn write_outputs(dir: &Path, report: &EvalReport, infos: &[SampleInfo]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    shard::atomic_write(
        &dir.join("eval.json"),
        &serde_json::to_vec_pretty(report).map_err(|e| TrainError::serialize("eval.json", e))?,
    )?;
    shard::atomic_write(&dir.join("eval.md"), markdown(report).as_bytes())?;
    for m in &report.models {
        let file = format!(
            "predictions-{}.parquet",
            m.fold.as_deref().unwrap_or("model")
        );
        crate::outputs::write_predictions(&dir.join(file), &report.classes, &m.predictions, infos)?;
    }
    Ok(())
}

/// The report as Markdown: the class match, then one row per model and their mean.
pub fn markdown(r: &EvalReport) -> String {
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    let mut s = format!(
        "# Cross-dataset evaluation on {} ({})\n\nSamples: {}; classes only the model has: {}; \
         only the cache has: {}; unshared classes: {}.\n\n\
         | model | fold | scored | left out | accuracy [95 % CI] | balanced accuracy | macro-F1 |\n\
         |---|---|---|---|---|---|---|\n",
        r.cache_name,
        shard::short_key(&r.cache_key),
        r.split,
        none_or(&r.only_model),
        none_or(&r.only_cache),
        match r.unshared {
            Unshared::LeaveOut => "left out (the model chooses among the shared classes)",
            Unshared::Score => "scored (always wrong)",
        }
    );
    for m in &r.models {
        let x = &m.metrics;
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} [{:.1}–{:.1}] | {} | {} |\n",
            m.model,
            m.fold.as_deref().unwrap_or("–"),
            m.scored,
            m.left_out,
            pct(x.accuracy),
            100.0 * x.accuracy_ci.0,
            100.0 * x.accuracy_ci.1,
            pct(x.balanced_accuracy),
            pct(x.macro_f1)
        ));
    }
    if r.models.len() > 1 {
        let (mean, std) = crate::outputs::mean_std(
            &r.models
                .iter()
                .map(|m| m.metrics.accuracy)
                .collect::<Vec<_>>(),
        );
        s.push_str(&format!(
            "\nMean accuracy over the {} models: {:.2} ± {:.2} % (sample std).\n",
            r.models.len(),
            100.0 * mean,
            100.0 * std
        ));
    }
    s
}

fn none_or(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
