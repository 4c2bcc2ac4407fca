//! `train predict`: classify new images or frame sequences with a trained run. Inputs become
//! crops through [`face::SampleCropper`], the path `prep build` cut the cache's samples with, under
//! the [`SampleRecipe`] the cache recorded and with the model files it was built with (checked by
//! content). Every fold's model (its reported epoch's weights) votes (their fused softmax scores are averaged); inputs
//! without a face are reported.

mod annotate;
mod video;
mod video_outputs;
mod video_rows;
pub use video::VideoPredictOptions;
pub use video_outputs::{write_video_outputs, VideoOutputs};
pub use video_rows::{FrameRow, VideoPrediction};

use crate::loader::{DeviceTransform, HostBatch, Layout};
use crate::model::{ModelInput, ModelOutput, Network};
use crate::{Result, TrainError};
use face::{FrameCrops, SampleCropper, SampleFrames, SampleRecipe};
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
    /// What found that box: the cascade's name, or `whole_frame` for whole-image datasets.
    pub detector: Option<String>,
    /// The 68 landmarks of that frame (x, y in source pixels; dlib's order), when found.
    pub landmarks: Option<Vec<[f32; 2]>>,
}

impl Prediction {
    /// A failed input.
    fn failed(input: String, error: String) -> Prediction {
        Prediction {
            input,
            probabilities: Vec::new(),
            class: None,
            error: Some(error),
            face_box: None,
            detector: None,
            landmarks: None,
        }
    }
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
    /// (fold name, variables, network) per fold model.
    models: Vec<(String, nn::VarStore, Network)>,
    layout: Layout,
    transform: DeviceTransform,
    classes: Vec<String>,
    inputs: InputPreprocessor,
    fusion: crate::config::Fusion,
    fusion_weight: f64,
    /// The run's `tta_flip`: each input's probabilities are averaged with its mirror image's,
    /// as the run's evaluation averaged them.
    tta_flip: bool,
}

/// The preprocessing of one cache, repeated for inputs from outside it: the cache's recorded
/// [`SampleRecipe`] and the face models it names, loaded and checked against the hashes the
/// cache key recorded.
pub struct InputPreprocessor {
    recipe: SampleRecipe,
    faces: face::FacePipeline,
}

impl InputPreprocessor {
    /// Reads `cache`'s recipe and loads its models (`shape_predictor`: the dlib model file on
    /// this machine; cascades by the names the recipe records).
    ///
    /// Errors: [`TrainError::Provenance`] for a manifest whose settings do not read back,
    /// [`TrainError::Unreproducible`] for settings a new input cannot follow or model files whose
    /// content differs from the cache's, model files that do not load.
    pub fn for_cache(cache: &shard::Cache, shape_predictor: PathBuf) -> Result<InputPreprocessor> {
        let m = cache.manifest();
        let label = format!("{} ({})", m.name, cache.dir().display());
        let recipe = crate::recipe::from_manifest_extra(&m.extra, &label)?;
        let refuse = |reason: String| TrainError::Unreproducible {
            cache: cache.dir().to_path_buf(),
            reason,
        };
        if let Some(why) = recipe.unreproducible() {
            return Err(refuse(why));
        }
        let files = recipe.model_files(shape_predictor);
        let recorded = &m.key_ingredients["models"];
        let mut check = vec![("shape_predictor", Some(&files.shape_predictor))];
        if recipe.box_mode != face::BoxMode::WholeFrame {
            check.push(("cascade", Some(&files.cascade)));
            check.push(("fallback_cascade", files.fallback.as_ref()));
        }
        for (name, file) in check {
            let want = recorded.get(name).and_then(|v| v.as_str());
            match (want, file) {
                (None, None) => {}
                (Some(want), Some(file)) => {
                    let have = shard::hash_file(file)?;
                    if have != want {
                        return Err(refuse(format!(
                            "{name} {} has blake3 {}…, the cache was built with {}…",
                            file.display(),
                            &have[..12],
                            &want[..want.len().min(12)]
                        )));
                    }
                }
                (None, Some(file)) => {
                    return Err(refuse(format!(
                        "the cache was built without a {name}, the recipe names {}",
                        file.display()
                    )))
                }
                (Some(_), None) => {
                    return Err(refuse(format!(
                        "the cache was built with a {name}, the recipe names none"
                    )))
                }
            }
        }
        let faces = files.load(recipe.reinitialise)?;
        Ok(InputPreprocessor { recipe, faces })
    }

    /// The recipe in force.
    pub fn recipe(&self) -> &SampleRecipe {
        &self.recipe
    }

    /// The crops of every slot of an input (an image file, or a folder of frames: see
    /// [`face::read_input_frames`]), tracked from the first detection as `prep build` does.
    /// Errors are a sentence for the prediction table.
    pub fn preprocess(&self, input: &Path) -> std::result::Result<Vec<FrameCrops>, String> {
        let frames = face::read_input_frames(input, &self.recipe).map_err(|e| e.to_string())?;
        self.crop(&frames)
    }

    /// The crops of one video frame: detection on the frame itself (a face may leave the picture
    /// and come back, so frames are not tracked from one another), then the recipe's landmarks,
    /// alignment and crops. Errors are a sentence for the per-frame table.
    pub fn crop_frame(&self, img: face::GrayImage) -> std::result::Result<FrameCrops, String> {
        let single = SampleRecipe {
            frame_positions: vec![1.0],
            detect_every_frame: true,
            ..self.recipe.clone()
        };
        let mut crops = SampleCropper::new(&self.faces, &single)
            .crop(&SampleFrames::still(img, 1))
            .map_err(|f| match f {
                face::FrameFailure::NoFace { .. } => "no face found".to_string(),
                other => other.to_string(),
            })?;
        crops.pop().ok_or_else(|| "no frame".into())
    }

    /// The crops of every slot of already decoded frames.
    pub fn crop(&self, frames: &SampleFrames) -> std::result::Result<Vec<FrameCrops>, String> {
        let distinct = SampleCropper::new(&self.faces, &self.recipe)
            .crop(frames)
            .map_err(|f| match f {
                face::FrameFailure::NoFace { .. } => "no face found".to_string(),
                other => other.to_string(),
            })?;
        frames.fill_slots(distinct).ok_or_else(|| "no frame".into())
    }
}

impl Predictor {
    /// Loads every fold model of `run` (the weights of each fold's reported epoch,
    /// [`crate::outputs::fold_weights`]) and the
    /// preprocessing of its cache ([`InputPreprocessor::for_cache`]; `shape_predictor` is the dlib
    /// model file on this machine).
    ///
    /// Errors: a run without checkpoints, a cache that moved, settings or model files that
    /// cannot repeat the cache's preprocessing.
    pub fn load(run: &Path, device: Device, shape_predictor: PathBuf) -> Result<Predictor> {
        Self::load_folds(run, device, shape_predictor, None)
    }

    /// [`Predictor::load`] with only the fold models named in `folds` (`fold3` or `3`; all
    /// when `None`).
    ///
    /// Errors: as [`Predictor::load`], and a fold the run has not trained.
    pub fn load_folds(
        run: &Path,
        device: Device,
        shape_predictor: PathBuf,
        folds: Option<&[String]>,
    ) -> Result<Predictor> {
        let cfg = crate::ExperimentConfig::load(&run.join("config.toml"))?;
        let (_, cache_dir) = crate::outputs::read_run_json(run)?;
        let cache = shard::Cache::open(&cache_dir)?;
        let inputs = InputPreprocessor::for_cache(&cache, shape_predictor)?;
        let runner = crate::trainer::Runner::new(
            &cfg,
            run.to_path_buf(),
            std::sync::Arc::new(cache),
            device,
        )?;
        let (layout, classes) = (runner.layout.clone(), runner.classes.clone());
        let mc = runner.model_config();
        // Every part crop, also for networks that see the face alone: `--dump-crops` writes
        // the inputs an exported model takes.
        let transform = DeviceTransform {
            parts: true,
            ..runner.transform(&mc)
        };
        let mut fold_dirs: Vec<PathBuf> = std::fs::read_dir(run)
            .map_err(|e| TrainError::io(run, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| crate::outputs::fold_weights(p).is_some())
            .collect();
        fold_dirs.sort();
        if let Some(want) = folds {
            let names: Vec<String> = want
                .iter()
                .map(|f| format!("fold-{}", crate::outputs::fold_name(f)))
                .collect();
            let have: Vec<String> = fold_dirs
                .iter()
                .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            if let Some(missing) = names.iter().find(|n| !have.contains(n)) {
                return Err(TrainError::Config(format!(
                    "run {} has no trained {missing} (trained: {})",
                    run.display(),
                    have.join(", ")
                )));
            }
            fold_dirs.retain(|d| {
                d.file_name()
                    .is_some_and(|n| names.contains(&n.to_string_lossy().into_owned()))
            });
        }
        if fold_dirs.is_empty() {
            return Err(TrainError::RunFile {
                path: run.to_path_buf(),
                reason: "no fold-*/checkpoint.safetensors: has the run trained?".into(),
            });
        }
        let mut loaded = Vec::new();
        for d in fold_dirs {
            let vs = nn::VarStore::new(device);
            let m = Network::new(&vs.root(), &mc)?;
            crate::outputs::load_fold_weights(&vs, &d)?;
            let fold = d
                .file_name()
                .map(|n| n.to_string_lossy().trim_start_matches("fold-").to_string())
                .unwrap_or_default();
            loaded.push((fold, vs, m));
        }
        Ok(Predictor {
            models: loaded,
            layout,
            transform,
            classes,
            inputs,
            fusion: cfg.model.fusion,
            fusion_weight: cfg.model.fusion_weight,
            tta_flip: cfg.train.tta_flip,
        })
    }

    /// Class names.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The preprocessing of the run's cache.
    pub fn inputs(&self) -> &InputPreprocessor {
        &self.inputs
    }

    /// The fold models' names, in order.
    pub fn folds(&self) -> Vec<&str> {
        self.models.iter().map(|(f, _, _)| f.as_str()).collect()
    }

    /// The run's probabilities for several inputs at once, each given as its per-slot crops (as
    /// [`InputPreprocessor::crop`] returns them): every fold model's fused scores (averaged with
    /// the mirror image's for a `tta_flip` run), averaged over the folds, in class order.
    ///
    /// Errors: libtorch errors.
    pub fn score_batch(&self, inputs: &[Vec<FrameCrops>]) -> Result<Vec<Vec<f64>>> {
        let n = inputs.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (x, mirrored) = self.network_inputs(inputs);
        let classes = self.classes.len() as i64;
        let mut sum = Tensor::zeros([n as i64, classes], (Kind::Float, Device::Cpu));
        tch::no_grad(|| {
            for (_, _, m) in &self.models {
                let (p, _, _) = self.fold_probabilities(m, &x, mirrored.as_ref());
                sum += p.to_device(Device::Cpu);
            }
        });
        let mean = (sum / self.models.len() as f64).contiguous();
        let flat: Vec<f32> = Vec::<f32>::try_from(&mean.view([-1]))?;
        Ok(flat
            .chunks(self.classes.len().max(1))
            .map(|c| c.iter().map(|&v| f64::from(v)).collect())
            .collect())
    }

    /// The network inputs of several inputs, each given as its per-slot crops: the last slot's
    /// face, the parts of the layout's slots; and, for a `tta_flip` run, their mirror images
    /// (face and parts flipped together).
    fn network_inputs(&self, inputs: &[Vec<FrameCrops>]) -> (ModelInput, Option<ModelInput>) {
        let n = inputs.len();
        let mut hb = HostBatch {
            n,
            records: (0..n as u64).collect(),
            face: Vec::new(),
            parts: Default::default(),
            labels: vec![0; n],
            skipped: Vec::new(),
        };
        for crops in inputs {
            let last = crops.len().saturating_sub(1);
            hb.face.extend_from_slice(crops[last].crops.face.data());
            for &k in &self.layout.use_slots {
                let c = &crops[k.min(last)].crops;
                hb.parts[0].extend_from_slice(c.eyes.data());
                hb.parts[1].extend_from_slice(c.nose.data());
                hb.parts[2].extend_from_slice(c.mouth.data());
            }
        }
        let (x, _) = self.transform.apply(&hb, &self.layout, None);
        let mirrored = self.tta_flip.then(|| {
            let flip = vec![crate::loader::Augment::mirror(true); n];
            self.transform.apply(&hb, &self.layout, Some(&flip)).0
        });
        (x, mirrored)
    }

    /// One fold model's fused probabilities `[n, classes]` (averaged with the mirror image's
    /// for a `tta_flip` run, in the evaluation's order of operations, `FoldRunner::score`),
    /// with the model's outputs on the inputs and on their mirror images.
    fn fold_probabilities(
        &self,
        m: &Network,
        x: &ModelInput,
        mirrored: Option<&ModelInput>,
    ) -> (Tensor, ModelOutput, Option<ModelOutput>) {
        let fuse = |o: &ModelOutput| {
            crate::trainer::fuse(&o.global, &o.local, self.fusion, self.fusion_weight)
        };
        let o = m.forward(x, false);
        let om = mirrored.map(|xm| m.forward(xm, false));
        let p = match &om {
            Some(om) => (fuse(&o) + fuse(om)) * 0.5,
            None => fuse(&o),
        };
        (p, o, om)
    }

    /// Classifies every input; inputs that fail are returned with `error`, never skipped.
    ///
    /// Errors: libtorch errors (an input without a face is a [`Prediction`] with `error`).
    pub fn predict(&self, inputs: &[PathBuf]) -> Result<Vec<Prediction>> {
        self.predict_dumping(inputs, None)
    }

    /// [`Predictor::predict`], and with `dump`, per input `i` (in order) a directory
    /// `dump/<i>/` holding what the network saw and said: `inputs.safetensors` (the network
    /// inputs `face`, `eyes`, `nose`, `mouth`, normalised as in training), `outputs.safetensors`
    /// (`probabilities`, and per fold `<fold>.probabilities`, `<fold>.global`, `<fold>.local`;
    /// for a `tta_flip` run also `<fold>.global_mirrored` and `<fold>.local_mirrored`, the
    /// branches' scores of the mirror image, whose probabilities are averaged in),
    /// the crops as PNG (`face.png`, `<part>-<slot>.png`) and `input.json` (the input, face
    /// box, detector, landmarks, fold names). Inputs that failed get `input.json` only.
    ///
    /// Errors: libtorch errors; the dump directory cannot be written.
    pub fn predict_dumping(
        &self,
        inputs: &[PathBuf],
        dump: Option<&Path>,
    ) -> Result<Vec<Prediction>> {
        let mut out = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let name = input.display().to_string();
            let dir = dump.map(|d| d.join(i.to_string()));
            if let Some(d) = &dir {
                std::fs::create_dir_all(d).map_err(|e| TrainError::io(d, e))?;
            }
            let crops = match self.inputs.preprocess(input) {
                Ok(c) => c,
                Err(e) => {
                    let p = Prediction::failed(name, e);
                    if let Some(d) = &dir {
                        write_json(&d.join("input.json"), &serde_json::json!(p))?;
                    }
                    out.push(p);
                    continue;
                }
            };
            let first = &crops[0];
            let face_box = first.face_box.map(|b| [b.left, b.top, b.right, b.bottom]);
            let detector = Some(first.detector.clone());
            let landmarks = (!first.landmarks.is_empty()).then(|| first.landmarks.clone());
            let peak = &crops[crops.len() - 1].crops;
            let (x, mirrored) = self.network_inputs(std::slice::from_ref(&crops));
            let mut sum = Tensor::zeros([self.classes.len() as i64], (Kind::Float, Device::Cpu));
            let mut dumped: Vec<(String, Tensor)> = Vec::new();
            tch::no_grad(|| {
                for (fold, _, m) in &self.models {
                    let (p, o, om) = self.fold_probabilities(m, &x, mirrored.as_ref());
                    let p = p.to_device(Device::Cpu).squeeze_dim(0);
                    if dir.is_some() {
                        dumped.push((format!("{fold}.probabilities"), p.copy()));
                        let mut branches = vec![("global", &o.global), ("local", &o.local)];
                        if let Some(om) = &om {
                            branches.push(("global_mirrored", &om.global));
                            branches.push(("local_mirrored", &om.local));
                        }
                        for (what, t) in branches {
                            if let Some(t) = t {
                                dumped.push((
                                    format!("{fold}.{what}"),
                                    t.to_device(Device::Cpu).squeeze_dim(0),
                                ));
                            }
                        }
                    }
                    sum += p;
                }
            });
            let mean = sum / self.models.len() as f64;
            let probs: Vec<f64> = Vec::<f32>::try_from(&mean)?
                .into_iter()
                .map(f64::from)
                .collect();
            let best = probs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.partial_cmp(b.1).unwrap_or(std::cmp::Ordering::Equal))
                .map(|(i, _)| self.classes[i].clone());
            let p = Prediction {
                input: name,
                probabilities: probs,
                class: best,
                error: None,
                face_box,
                detector,
                landmarks,
            };
            if let Some(d) = &dir {
                let cpu = |t: &Tensor| t.to_device(Device::Cpu).contiguous();
                // Every frame slot, as an exported model takes them (a still image's one frame
                // repeated).
                let frames = |t: &Tensor| {
                    let s = t.size();
                    cpu(&t.expand([s[0], self.layout.frames() as i64, s[2], s[3], s[4]], false))
                };
                let named = [
                    ("face", cpu(&x.face)),
                    ("eyes", frames(&x.parts[0])),
                    ("nose", frames(&x.parts[1])),
                    ("mouth", frames(&x.parts[2])),
                ];
                Tensor::write_safetensors(&named, d.join("inputs.safetensors"))?;
                dumped.push(("probabilities".into(), mean));
                Tensor::write_safetensors(&dumped, d.join("outputs.safetensors"))?;
                peak.face
                    .save_png(&d.join("face.png"))
                    .map_err(|e| TrainError::io(&d.join("face.png"), std::io::Error::other(e)))?;
                for &k in &self.layout.use_slots {
                    let c = &crops[k.min(crops.len() - 1)].crops;
                    for (part, img) in [("eyes", &c.eyes), ("nose", &c.nose), ("mouth", &c.mouth)] {
                        let f = d.join(format!("{part}-{k}.png"));
                        img.save_png(&f)
                            .map_err(|e| TrainError::io(&f, std::io::Error::other(e)))?;
                    }
                }
                let mut j = serde_json::json!(p);
                j["folds"] = serde_json::json!(self.folds());
                j["classes"] = serde_json::json!(self.classes);
                j["tta_flip"] = serde_json::json!(self.tta_flip);
                write_json(&d.join("input.json"), &j)?;
            }
            out.push(p);
        }
        Ok(out)
    }
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| TrainError::serialize("input.json", e))?;
    shard::atomic_write(path, &bytes)?;
    Ok(())
}
