//! `train predict`: classify new images or frame sequences with a trained run, through the same
//! detection / landmark / crop pipeline and prep configuration as the run's cache. Every fold's
//! final model votes (their fused softmax scores are averaged); inputs without a face are reported.

use crate::loader::{DeviceTransform, HostBatch, Layout};
use crate::model::Mgln;
use crate::{Result, TrainError};
use face::{crop_face_and_parts, FaceBox, GrayConversion, GrayImage};
use prep::{BoxMode, PrepConfig};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// The verdict on one input.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prediction {
    /// The input path.
    pub input: String,
    /// Class probabilities in class order (empty when no face was found).
    pub probabilities: Vec<f64>,
    /// The most probable class, or `None` with `error` set.
    pub class: Option<String>,
    /// Why there is no prediction.
    pub error: Option<String>,
    /// The face box of the first frame that was classified (left, top, right, bottom; inclusive,
    /// source pixels), so that a person can check which face it was.
    pub face_box: Option<[i64; 4]>,
    /// What found that box: the cascade's name, or `whole frame` for whole-image datasets.
    pub detector: Option<String>,
}

/// Folds of `run` that started training but have no `result.json` (an interrupted run): their
/// checkpoints are from the middle of the schedule. Sorted by name.
pub fn unfinished_folds(run: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(run)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("checkpoint.safetensors").exists() && !p.join("result.json").exists())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    out.sort();
    out
}

/// A trained run loaded for prediction.
pub struct Predictor {
    models: Vec<(nn::VarStore, Mgln)>,
    layout: Layout,
    transform: DeviceTransform,
    classes: Vec<String>,
    prep: PrepConfig,
    box_mode: BoxMode,
    fusion: crate::config::Fusion,
    fusion_weight: f64,
    faces: face::FacePipeline,
}

impl Predictor {
    /// Loads every fold model of `run` (its `fold-*/checkpoint.safetensors`) and the prep setup of
    /// its cache.
    ///
    /// Errors: a run without checkpoints, a cache that moved, unreadable model files.
    pub fn load(run: &Path, device: Device, models: &prep::ModelFiles) -> Result<Predictor> {
        let cfg = crate::ExperimentConfig::load(&run.join("config.toml"))?;
        let run_json: serde_json::Value = std::fs::read(run.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| TrainError::Checkpoint {
                path: run.join("run.json"),
                reason: "missing or unreadable".into(),
            })?;
        let cache_dir = PathBuf::from(run_json["cache"].as_str().unwrap_or_default());
        let cache = shard::Cache::open(&cache_dir)?;
        let layout = Layout::from_cache(&cache, cfg.train.frames)?;
        let classes = cache.manifest().class_names.clone();
        let extra = &cache.manifest().extra;
        let prep: PrepConfig = extra
            .get("config")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        let box_mode: BoxMode = extra
            .get("box_mode")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or(BoxMode::Detect);
        let runner = crate::trainer::Runner {
            cfg: &cfg,
            dir: run.to_path_buf(),
            cache: std::sync::Arc::new(cache),
            layout: layout.clone(),
            classes: classes.clone(),
            device,
            progress: &crate::trainer::Quiet,
        };
        let mc = runner.model_config();
        let transform = runner.transform(&mc);
        let mut fold_dirs: Vec<PathBuf> = std::fs::read_dir(run)
            .map_err(|e| TrainError::io(run, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("checkpoint.safetensors").exists())
            .collect();
        fold_dirs.sort();
        if fold_dirs.is_empty() {
            return Err(TrainError::Checkpoint {
                path: run.to_path_buf(),
                reason: "no fold-*/checkpoint.safetensors: has the run trained?".into(),
            });
        }
        let mut loaded = Vec::new();
        for d in fold_dirs {
            let vs = nn::VarStore::new(device);
            let m = Mgln::new(&vs.root(), &mc)?;
            let file = d.join("checkpoint.safetensors");
            crate::trainer::load_model_vars(&vs, &file)?;
            loaded.push((vs, m));
        }
        let faces = prep::build::load_faces(models, &prep)
            .map_err(|e| TrainError::Config(format!("loading the face models: {e}")))?;
        Ok(Predictor {
            models: loaded,
            layout,
            transform,
            classes,
            prep,
            box_mode,
            fusion: cfg.model.fusion,
            fusion_weight: cfg.model.fusion_weight,
            faces,
        })
    }

    /// Class names.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The frames of an input: an image file (it fills every slot) or a folder of frames (sorted by
    /// name; slots at the prep configuration's positions).
    fn frames(&self, input: &Path) -> std::result::Result<Vec<GrayImage>, String> {
        let open =
            |p: &Path| GrayImage::open(p, GrayConversion::PilLuma).map_err(|e| e.to_string());
        let slots = self.layout.slots;
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(prep::inventory::is_image_name)
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err("folder without images".into());
            }
            self.prep
                .frame_indices(files.len())
                .into_iter()
                .take(slots)
                .map(|i| open(&files[i]))
                .collect()
        } else {
            let img = open(input)?;
            Ok(vec![img; slots])
        }
    }

    /// Crops of every slot, tracking from the first detection like `prep build`, and the first
    /// frame's box with what found it.
    fn crops(
        &self,
        frames: &[GrayImage],
    ) -> std::result::Result<(Vec<face::FaceCrops>, [i64; 4], String), String> {
        let mut previous: Option<face::Landmarks> = None;
        let mut out = Vec::new();
        let mut first: Option<([i64; 4], String)> = None;
        let ltrb = |b: FaceBox| [b.left, b.top, b.right, b.bottom];
        for img in frames {
            let lm = match (self.box_mode, &previous) {
                (BoxMode::WholeFrame, _) => {
                    let b = FaceBox::ltrb(0, 0, img.width() as i64 - 1, img.height() as i64 - 1);
                    first.get_or_insert((ltrb(b), "whole frame".into()));
                    self.faces.predictor().predict(img, b)
                }
                (_, Some(p)) => self.faces.track(img, p).landmarks,
                (_, None) => {
                    let short = img.width().min(img.height()) as f64;
                    let min_face = ((self.prep.min_face_fraction * short) as i64).max(20);
                    match self.faces.detect(img, Some(min_face)).into_iter().next() {
                        Some(f) => {
                            first.get_or_insert((ltrb(f.face_box), f.detector.clone()));
                            f.landmarks
                        }
                        None => return Err("no face found".into()),
                    }
                }
            };
            let c = crop_face_and_parts(img, &lm.precise, &self.prep.crops)
                .ok_or("landmarks give no usable crop")?;
            out.push(c);
            if self.box_mode != BoxMode::WholeFrame {
                previous = Some(lm);
            }
        }
        let (face_box, detector) = first.ok_or("no frame")?;
        Ok((out, face_box, detector))
    }

    /// Classifies every input; inputs that fail are returned with `error`, never skipped.
    pub fn predict(&self, inputs: &[PathBuf]) -> Result<Vec<Prediction>> {
        let mut out = Vec::new();
        for input in inputs {
            let name = input.display().to_string();
            let crops = self.frames(input).and_then(|f| self.crops(&f));
            let (crops, face_box, detector) = match crops {
                Ok(c) => c,
                Err(e) => {
                    out.push(Prediction {
                        input: name,
                        probabilities: Vec::new(),
                        class: None,
                        error: Some(e),
                        face_box: None,
                        detector: None,
                    });
                    continue;
                }
            };
            let peak = &crops[crops.len() - 1];
            let mut hb = HostBatch {
                n: 1,
                records: vec![0],
                face: peak.face.data().to_vec(),
                parts: Default::default(),
                labels: vec![0],
                skipped: Vec::new(),
            };
            for &k in &self.layout.use_slots {
                let c = &crops[k.min(crops.len() - 1)];
                hb.parts[0].extend_from_slice(c.eyes.data());
                hb.parts[1].extend_from_slice(c.nose.data());
                hb.parts[2].extend_from_slice(c.mouth.data());
            }
            let (x, _) = self.transform.apply(&hb, &self.layout, None);
            let mut sum = Tensor::zeros([self.classes.len() as i64], (Kind::Float, Device::Cpu));
            tch::no_grad(|| {
                for (_, m) in &self.models {
                    let o = m.forward(&x, false);
                    let p =
                        crate::trainer::fuse(&o.global, &o.local, self.fusion, self.fusion_weight)
                            .to_device(Device::Cpu)
                            .squeeze_dim(0);
                    sum += p;
                }
            });
            let probs: Vec<f64> = Vec::<f32>::try_from(&(sum / self.models.len() as f64))?
                .into_iter()
                .map(f64::from)
                .collect();
            let best = probs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.partial_cmp(b.1).unwrap_or(std::cmp::Ordering::Equal))
                .map(|(i, _)| self.classes[i].clone());
            out.push(Prediction {
                input: name,
                probabilities: probs,
                class: best,
                error: None,
                face_box: Some(face_box),
                detector: Some(detector),
            });
        }
        Ok(out)
    }
}
