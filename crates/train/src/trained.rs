//! A trained model on disk, as `model.init_from` and `train eval` name it: one fold of a run
//! directory (`runs/fer2013-cnn/<run>#split`) or a directory `train export` wrote. Either way:
//! the network's shape, its classes, how its inputs were made ([`Preprocessing`]), where its
//! cache came from and the weights its results were measured with.

use crate::config::{Fusion, ModelKind};
use crate::model::ModelConfig;
use crate::{Result, TrainError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What a network's inputs are, as far as its weights care: transferring weights between
/// networks whose inputs differ here would show them faces unlike those they learnt from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preprocessing {
    /// The network.
    pub kind: ModelKind,
    /// Face input (height, width) on the device.
    pub face_input: (i64, i64),
    /// Eyes, nose and mouth inputs on the device.
    pub part_inputs: [(i64, i64); 3],
    /// Frames fed to the PBM.
    pub frames: i64,
    /// The cache's face plane (height, width).
    pub face_plane: (usize, usize),
    /// The cache's part planes.
    pub part_planes: [(usize, usize); 3],
    /// The cache's crop settings (alignment, margins, part frame, sizes), when known.
    pub crops: Option<serde_json::Value>,
}

impl Preprocessing {
    /// The preprocessing of network `mc` on planes of these sizes and crop settings.
    pub fn of(
        mc: &ModelConfig,
        face_plane: (usize, usize),
        part_planes: [(usize, usize); 3],
        crops: Option<serde_json::Value>,
    ) -> Preprocessing {
        Preprocessing {
            kind: mc.kind,
            face_input: mc.face,
            part_inputs: mc.parts,
            frames: mc.frames,
            face_plane,
            part_planes,
            crops,
        }
    }

    /// What differs between `self` (the trained model's) and `here`, in words, each naming
    /// both values; empty when nothing does. The CNN sees the face alone, so parts and frames
    /// are compared for MGLN only; crop settings only when both are known.
    pub fn differences(&self, here: &Preprocessing) -> Vec<String> {
        let mut out = Vec::new();
        let size = |(h, w): (i64, i64)| format!("{h}×{w}");
        let plane = |(h, w): (usize, usize)| format!("{h}×{w}");
        if self.kind != here.kind {
            out.push(format!(
                "model.kind {:?} in the source, {:?} here",
                self.kind, here.kind
            ));
            return out;
        }
        if self.face_input != here.face_input {
            out.push(format!(
                "face input {} in the source, {} here (model.face_size)",
                size(self.face_input),
                size(here.face_input)
            ));
        }
        if self.face_plane != here.face_plane {
            out.push(format!(
                "the cache's face plane {} in the source, {} here",
                plane(self.face_plane),
                plane(here.face_plane)
            ));
        }
        if self.kind == ModelKind::Mgln {
            for (k, name) in ["eyes", "nose", "mouth"].iter().enumerate() {
                if self.part_inputs[k] != here.part_inputs[k] {
                    out.push(format!(
                        "{name} input {} in the source, {} here (model.part_scale)",
                        size(self.part_inputs[k]),
                        size(here.part_inputs[k])
                    ));
                }
                if self.part_planes[k] != here.part_planes[k] {
                    out.push(format!(
                        "the cache's {name} plane {} in the source, {} here",
                        plane(self.part_planes[k]),
                        plane(here.part_planes[k])
                    ));
                }
            }
            if self.frames != here.frames {
                out.push(format!(
                    "{} frames in the source, {} here (train.frames, the cache's slots)",
                    self.frames, here.frames
                ));
            }
        }
        if let (Some(a), Some(b)) = (&self.crops, &here.crops) {
            let keys: std::collections::BTreeSet<&String> = a
                .as_object()
                .into_iter()
                .chain(b.as_object())
                .flat_map(|o| o.keys())
                .collect();
            for k in keys {
                // Sizes are the planes, compared above by what the network reads.
                if ["face", "eyes", "nose", "mouth"].contains(&k.as_str()) {
                    continue;
                }
                if a.get(k) != b.get(k) {
                    out.push(format!(
                        "the cache's crops.{k} {} in the source, {} here",
                        a.get(k).unwrap_or(&serde_json::Value::Null),
                        b.get(k).unwrap_or(&serde_json::Value::Null)
                    ));
                }
            }
        }
        out
    }
}

/// Where a trained model's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightsOf {
    /// A fold's reported epoch (`model.safetensors`).
    ReportedEpoch,
    /// A fold's last epoch (the checkpoint of a fold trained before the reported epoch's
    /// weights were kept).
    LastEpoch,
    /// A `train export` directory (the fold's weights as exported).
    Export,
}

/// One trained model: a fold of a run, or an export.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// As given (`runs/x/<run>#split`, `export/fold3`).
    pub spec: String,
    /// The run or export directory.
    pub dir: PathBuf,
    /// The fold (runs; an export's fold as model.json names it).
    pub fold: Option<String>,
    /// The weights file.
    pub weights: PathBuf,
    /// Which weights these are.
    pub weights_of: WeightsOf,
    /// The network.
    pub model: ModelConfig,
    /// Class names in the order of the network's scores.
    pub classes: Vec<String>,
    /// How the two branches' scores were fused.
    pub fusion: Fusion,
    /// The GFM's weight in the fusion.
    pub fusion_weight: f64,
    /// Whether its evaluation averaged each sample with its mirror image.
    pub tta_flip: bool,
    /// Its inputs.
    pub preprocessing: Preprocessing,
    /// The cache it was trained on: name and key, when recorded.
    pub cache: Option<(String, String)>,
    /// The run's resolved configuration (config.toml as JSON; an export's `run` record).
    pub config: serde_json::Value,
    /// The fold's reported epoch and its test accuracy, when it finished.
    pub result: Option<(usize, f64)>,
}

impl TrainedModel {
    /// Opens `spec`: `<run dir>`, `<run dir>#<fold>` or an export directory (one holding
    /// `model.json`).
    ///
    /// Errors: [`TrainError::SourceModel`] for a path that is neither, a run without trained
    /// folds, an unfinished or unknown fold, several trained folds and none named; unreadable
    /// records.
    pub fn open(spec: &str) -> Result<TrainedModel> {
        let (path, fold) = match spec.rsplit_once('#') {
            Some((p, f)) if !f.is_empty() => (p, Some(f)),
            _ => (spec, None),
        };
        let dir = PathBuf::from(path);
        let bad = |reason: String| TrainError::SourceModel {
            source_model: spec.to_string(),
            reason,
        };
        if dir.join("model.json").exists() {
            if fold.is_some() {
                return Err(bad(
                    "an export directory holds one fold: name it without #fold".into(),
                ));
            }
            return Self::open_export(spec, &dir);
        }
        if !dir.join("config.toml").exists() || !dir.join("run.json").exists() {
            return Err(bad(
                "neither a run directory (config.toml, run.json) nor a `train export` directory \
                 (model.json)"
                    .into(),
            ));
        }
        let trained = trained_folds(&dir);
        let fold = match fold {
            Some(f) => {
                let name = crate::outputs::fold_name(f);
                if !trained.contains(&name) {
                    return Err(bad(format!(
                        "no trained fold {name} (trained: {})",
                        list_or_none(&trained)
                    )));
                }
                name
            }
            None => match trained.as_slice() {
                [one] => one.clone(),
                [] => return Err(bad("no trained fold: has the run finished one?".into())),
                many => {
                    return Err(bad(format!(
                        "the run trained {} folds ({}): name one, as {path}#{}",
                        many.len(),
                        many.join(", "),
                        many[0]
                    )))
                }
            },
        };
        Self::open_run_fold(spec, &dir, &fold)
    }

    fn open_run_fold(spec: &str, run: &Path, fold: &str) -> Result<TrainedModel> {
        let bad = |reason: String| TrainError::SourceModel {
            source_model: spec.to_string(),
            reason,
        };
        let cfg = crate::ExperimentConfig::load(&run.join("config.toml"))?;
        let (run_json, cache_dir) = crate::outputs::read_run_json(run)?;
        let fold_dir = run.join(format!("fold-{fold}"));
        let result: Option<crate::outputs::FoldResult> =
            std::fs::read(fold_dir.join("result.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(result) = result else {
            return Err(bad(format!(
                "fold {fold} did not finish (no result.json): its weights stopped mid-schedule; \
                 finish it with `train run --resume {}`",
                run.display()
            )));
        };
        let w = crate::outputs::fold_weights(&fold_dir)
            .ok_or_else(|| bad(format!("fold {fold} has no weights")))?;
        let layout = &run_json["layout"];
        let face_plane =
            plane_size(&layout["face"]).ok_or_else(|| bad("run.json has no layout.face".into()))?;
        let mut part_planes = [(0, 0); 3];
        for (k, p) in part_planes.iter_mut().enumerate() {
            *p = plane_size(&layout["parts"][k])
                .ok_or_else(|| bad(format!("run.json has no layout.parts[{k}]")))?;
        }
        let frames = layout["frames"]
            .as_array()
            .map(|f| f.len())
            .ok_or_else(|| bad("run.json has no layout.frames".into()))?;
        let classes: Vec<String> = serde_json::from_value(run_json["classes"].clone())
            .map_err(|e| bad(format!("run.json classes: {e}")))?;
        let model =
            ModelConfig::for_experiment(&cfg.model, face_plane, part_planes, frames, classes.len());
        // Runs record their cache's crop settings; for older runs, the cache itself (if it is
        // still there) says.
        let crops = run_json
            .pointer("/preprocessing/crops")
            .cloned()
            .or_else(|| cache_crops(&cache_dir));
        let config_text = std::fs::read_to_string(run.join("config.toml"))
            .map_err(|e| TrainError::io(&run.join("config.toml"), e))?;
        let config = toml::from_str::<toml::Value>(&config_text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_default();
        Ok(TrainedModel {
            spec: spec.to_string(),
            dir: run.to_path_buf(),
            fold: Some(fold.to_string()),
            weights: w.file,
            weights_of: if w.reported_epoch {
                WeightsOf::ReportedEpoch
            } else {
                WeightsOf::LastEpoch
            },
            preprocessing: Preprocessing::of(&model, face_plane, part_planes, crops),
            model,
            classes,
            fusion: cfg.model.fusion,
            fusion_weight: cfg.model.fusion_weight,
            tta_flip: cfg.train.tta_flip,
            cache: run_json["cache_name"]
                .as_str()
                .zip(run_json["cache_key"].as_str())
                .map(|(n, k)| (n.to_string(), k.to_string())),
            config,
            result: Some((result.epoch, result.accuracy)),
        })
    }

    fn open_export(spec: &str, dir: &Path) -> Result<TrainedModel> {
        let bad = |reason: String| TrainError::SourceModel {
            source_model: spec.to_string(),
            reason,
        };
        let path = dir.join("model.json");
        let meta: serde_json::Value = std::fs::read(&path)
            .map_err(|e| TrainError::io(&path, e))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| bad(format!("model.json: {e}")))
            })?;
        let get = |field: &str| -> Result<serde_json::Value> {
            meta.pointer(field)
                .cloned()
                .ok_or_else(|| bad(format!("model.json has no {field}")))
        };
        let model: ModelConfig = serde_json::from_value(get("/model")?)
            .map_err(|e| bad(format!("model.json model: {e}")))?;
        let classes: Vec<String> = serde_json::from_value(get("/classes")?)
            .map_err(|e| bad(format!("model.json classes: {e}")))?;
        let sizes = get("/input/cache_crop_sizes")?;
        let pair = |k: &str| -> Result<(usize, usize)> {
            plane_size(&sizes[k])
                .ok_or_else(|| bad(format!("model.json input.cache_crop_sizes.{k}")))
        };
        let face_plane = pair("face")?;
        let part_planes = [pair("eyes")?, pair("nose")?, pair("mouth")?];
        let crops = meta.pointer("/preprocessing/crops").cloned();
        let fusion: Fusion = serde_json::from_value(get("/fusion")?)
            .map_err(|e| bad(format!("model.json fusion: {e}")))?;
        Ok(TrainedModel {
            spec: spec.to_string(),
            dir: dir.to_path_buf(),
            fold: meta["fold"]["name"].as_str().map(String::from),
            weights: dir.join(meta["weights"].as_str().unwrap_or("weights.safetensors")),
            weights_of: WeightsOf::Export,
            preprocessing: Preprocessing::of(&model, face_plane, part_planes, crops),
            model,
            classes,
            fusion,
            fusion_weight: meta["fusion_weight"].as_f64().unwrap_or(0.5),
            tta_flip: meta["tta_flip"].as_bool().unwrap_or(false),
            cache: meta["cache"]["name"]
                .as_str()
                .zip(meta["cache"]["key"].as_str())
                .map(|(n, k)| (n.to_string(), k.to_string())),
            config: meta["run"].clone(),
            result: meta["fold"]["result"]["epoch"]
                .as_u64()
                .zip(meta["fold"]["result"]["accuracy"].as_f64())
                .map(|(e, a)| (e as usize, a)),
        })
    }

    /// The weights as (variable name, tensor) on the CPU, named as the network's variables
    /// (a run's `model.` prefix removed).
    ///
    /// Errors: an unreadable or damaged file.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let named = Tensor::read_safetensors(&self.weights).map_err(|e| TrainError::Weights {
            file: self.weights.clone(),
            reason: e.to_string(),
        })?;
        Ok(named
            .into_iter()
            .filter_map(|(n, t)| match self.weights_of {
                WeightsOf::Export => Some((n, t)),
                // A run's files name the model's tensors `model.*` (the checkpoint holds the
                // optimiser's state beside them).
                _ => n.strip_prefix("model.").map(|s| (s.to_string(), t)),
            })
            .collect())
    }

    /// A JSON record of where the model came from, for run.json and reports.
    pub fn provenance(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.spec,
            "directory": self.dir.display().to_string(),
            "fold": self.fold,
            "weights": self.weights.display().to_string(),
            "weights_blake3": shard::hash_file(&self.weights).ok(),
            "weights_of": self.weights_of,
            "reported_epoch": self.result.map(|r| r.0),
            "reported_accuracy": self.result.map(|r| r.1),
            "classes": self.classes,
            "cache_name": self.cache.as_ref().map(|c| c.0.clone()),
            "cache_key": self.cache.as_ref().map(|c| c.1.clone()),
            "preprocessing": self.preprocessing,
            "config": self.config,
        })
    }
}

/// The folds of a run that have weights (`fold-*/model.safetensors` or a checkpoint), in name
/// order; none when the directory cannot be read.
pub fn trained_folds(run: &Path) -> Vec<String> {
    crate::outputs::trained_folds(run).unwrap_or_default()
}

/// The crop settings a cache recorded (`extra.recipe.crops`), if the cache opens.
pub fn cache_crops(cache_dir: &Path) -> Option<serde_json::Value> {
    let cache = shard::Cache::open(cache_dir).ok()?;
    let m = cache.manifest();
    let recipe = crate::recipe::from_manifest_extra(&m.extra, &m.name).ok()?;
    serde_json::to_value(recipe.crops).ok()
}

/// A `[height, width]` pair as run.json and model.json record plane sizes.
fn plane_size(v: &serde_json::Value) -> Option<(usize, usize)> {
    Some((v.get(0)?.as_u64()? as usize, v.get(1)?.as_u64()? as usize))
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
