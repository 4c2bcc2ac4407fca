//! `train export`: a trained fold as a self-describing model directory that runs without this
//! project — `weights.safetensors` under the names of the PyTorch module `fer_shard.mgln`,
//! `model.json` (network, classes, inputs, normalisation, the cache's preprocessing recipe) and a
//! `MODEL_CARD.md`.

use crate::{Result, TrainError};
use serde_json::json;
use std::path::{Path, PathBuf};
use tch::nn;

/// The format tag of `model.json`.
pub const MODEL_FORMAT: &str = "fer-mgln-model/1";

/// The input normalisation `model.json` records: the loader's own constants, so that the two
/// cannot drift apart.
pub use crate::loader::{NORMALISATION_MEAN, NORMALISATION_STD};

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The fold (`fold3` or `3`); `None`: every fold, each into `<out>/<fold>/`.
    pub fold: Option<String>,
    /// Export folds that did not finish (their weights are from mid-schedule).
    pub allow_partial: bool,
    /// The licence of the training data as the user declares it (for the model card).
    pub data_licence: Option<String>,
    /// Where to write.
    pub out: PathBuf,
}

/// One exported model directory.
#[derive(Debug, Clone)]
pub struct ExportedModel {
    /// The fold.
    pub fold: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Tensors written.
    pub tensors: usize,
}

/// Exports folds of `run` ([`ExportOptions`]).
///
/// Errors: a run without finished folds, an unknown fold, an unfinished fold without
/// `allow_partial`, a cache that is gone (its recipe and layout are part of the model), I/O.
pub fn export(run: &Path, opts: &ExportOptions) -> Result<Vec<ExportedModel>> {
    let cfg = crate::ExperimentConfig::load(&run.join("config.toml"))?;
    let read_json = |p: PathBuf| -> Option<serde_json::Value> {
        std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let (run_json, cache_dir) = crate::outputs::read_run_json(run)?;
    let cache = shard::Cache::open(&cache_dir)?;
    let manifest = cache.manifest().clone();
    let recipe = crate::recipe::from_manifest_extra(&manifest.extra, &manifest.name)?;
    let runner = crate::trainer::Runner::new(
        &cfg,
        run.to_path_buf(),
        std::sync::Arc::new(cache),
        tch::Device::Cpu,
    )?;
    let mc = runner.model_config();
    let mut folds = crate::outputs::trained_folds(run)?;
    if let Some(want) = &opts.fold {
        let name = crate::outputs::fold_name(want);
        if !folds.contains(&name) {
            return Err(TrainError::Config(format!(
                "run {} has no trained fold {want:?} (trained: {})",
                run.display(),
                folds.join(", ")
            )));
        }
        folds = vec![name];
    }
    if folds.is_empty() {
        return Err(TrainError::RunFile {
            path: run.to_path_buf(),
            reason: "no fold-*/checkpoint.safetensors: has the run trained?".into(),
        });
    }
    let summary = read_json(run.join("summary.json"));
    let mut out = Vec::new();
    for fold in &folds {
        let fold_dir = run.join(format!("fold-{fold}"));
        let result = read_json(fold_dir.join("result.json"));
        if result.is_none() && !opts.allow_partial {
            return Err(TrainError::Config(format!(
                "fold {fold} of {} did not finish: its weights stopped mid-schedule. Finish it \
                 with `train run --resume {}`, or pass --allow-partial",
                run.display(),
                run.display()
            )));
        }
        let dir = if opts.fold.is_some() {
            opts.out.clone()
        } else {
            opts.out.join(fold)
        };
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        // Built and loaded first: every variable of the network must come from the checkpoint.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _net = crate::model::Network::new(&vs.root(), &mc)?;
        let source = crate::outputs::load_fold_weights(&vs, &fold_dir)?;
        let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let weights = dir.join("weights.safetensors");
        let tmp = dir.join("weights.safetensors.tmp");
        tch::Tensor::write_safetensors(&named, &tmp)?;
        std::fs::rename(&tmp, &weights).map_err(|e| TrainError::io(&weights, e))?;
        let layout = &runner.layout;
        let t = layout.frames();
        let meta = json!({
            "format": MODEL_FORMAT,
            "weights": "weights.safetensors",
            "model": mc,
            "classes": runner.classes,
            "fusion": cfg.model.fusion,
            "fusion_weight": cfg.model.fusion_weight,
            // The run's evaluation averaged each sample's probabilities with its mirror image's
            // (face and part crops flipped left-right); so do train predict and fer_shard.mgln.
            "tta_flip": cfg.train.tta_flip,
            "outputs": {
                "probabilities": "the fused class probabilities [b, C] (what train predict reports per fold)",
                "global": "GFM scores [b, C] (the CNN's scores for model.kind = cnn)",
                "local": "PBM scores [b, C] (MGLN with a PBM only)",
            },
            "input": {
                "face": [3, mc.face.0, mc.face.1],
                "eyes": [t, 3, mc.parts[0].0, mc.parts[0].1],
                "nose": [t, 3, mc.parts[1].0, mc.parts[1].1],
                "mouth": [t, 3, mc.parts[2].0, mc.parts[2].1],
                "frames": t,
                "frame_slots": layout.use_slots,
                "cache_crop_sizes": {
                    "face": [layout.face.0, layout.face.1],
                    "eyes": [layout.parts[0].0, layout.parts[0].1],
                    "nose": [layout.parts[1].0, layout.parts[1].1],
                    "mouth": [layout.parts[2].0, layout.parts[2].1],
                },
                "pixels": "grey crops as u8, divided by 255, resized bilinearly (align_corners) from the cache's crop size to the input size, repeated to 3 channels, then (x - mean) / std per channel",
                "mean": NORMALISATION_MEAN,
                "std": NORMALISATION_STD,
                "face_frame": "the peak (last) frame; a still image fills every frame slot",
            },
            "preprocessing": recipe,
            "cache": {"name": manifest.name, "key": manifest.key, "dataset": manifest.extra.pointer("/dataset").cloned()},
            "run": {
                "directory": run.display().to_string(),
                "experiment": cfg.name,
                "git_revision": run_json["git_revision"],
                "training": cfg.training_summary(),
                "protocol": cfg.protocol,
                "selection": cfg.train.selection,
            },
            "fold": {
                "name": fold,
                "finished": result.is_some(),
                "result": result,
                // The reported epoch's weights, or the last epoch's for folds trained before
                // those were kept.
                "weights_of": if source.reported_epoch { "the reported epoch" } else { "the last epoch" },
            },
        });
        shard::atomic_write(
            &dir.join("model.json"),
            &serde_json::to_vec_pretty(&meta)
                .map_err(|e| TrainError::serialize("model.json", e))?,
        )?;
        let card = model_card(&cfg, &meta, summary.as_ref(), opts.data_licence.as_deref());
        shard::atomic_write(&dir.join("MODEL_CARD.md"), card.as_bytes())?;
        out.push(ExportedModel {
            fold: fold.clone(),
            dir,
            tensors: named.len(),
        });
    }
    Ok(out)
}

/// The model card: what the model is, what it was trained and tested on, how well it did, and
/// what it must not be used for.
fn model_card(
    cfg: &crate::ExperimentConfig,
    meta: &serde_json::Value,
    summary: Option<&serde_json::Value>,
    licence: Option<&str>,
) -> String {
    let pct = |v: &serde_json::Value| {
        v.as_f64()
            .map(|x| format!("{:.2} %", 100.0 * x))
            .unwrap_or_else(|| "–".into())
    };
    let fold = &meta["fold"];
    let result = &fold["result"];
    let metrics = &result["metrics"];
    let classes: Vec<String> = meta["classes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!(
        "# Model card: {} ({}), fold {}\n\n\
         ## Model\n\n\
         - Network: {} (`model.json` → `model`), {} classes: {}.\n\
         - Fusion of the two branches: {} with weight {}.{}\n\
         - Weights: `weights.safetensors`; load with `fer_shard.mgln.load(\"<this directory>\")` \
         (PyTorch), or export to ONNX with `make export-onnx`.\n\
         - Trained by `train` (git revision {}), recipe: `{}`.\n\n\
         ## Data\n\n\
         - Cache `{}` (key `{}`), built by `prep` from the {} dataset; preprocessing recipe in \
         `model.json` → `preprocessing` (face detector, landmarks, alignment, crop sizes).\n\
         - Licence of the training data, as declared by the user who exported this model: {}.\n\
         The model inherits the data's terms: many FER datasets (CK+, Oulu-CASIA, RAF-DB, \
         AffectNet, FER2013) are for non-commercial research only.\n\n\
         ## Protocol and selection\n\n\
         - Protocol: {:?}; this model is fold `{}`, tested on data it was not trained on{}.\n\
         - Reported epoch: {} ({}).\n\n\
         ## Metrics (test set of this fold)\n\n\
         | figure | value |\n|---|---|\n\
         | accuracy | {} (95 % bootstrap CI {}–{}) |\n\
         | balanced accuracy (mean class accuracy) | {} |\n\
         | macro-F1 | {} (CI {}–{}) |\n\
         | test samples | {} |\n",
        cfg.name,
        meta["run"]["directory"].as_str().unwrap_or("?"),
        fold["name"].as_str().unwrap_or("?"),
        meta["model"]["kind"]
            .as_str()
            .unwrap_or("mgln")
            .to_uppercase(),
        classes.len(),
        classes.join(", "),
        meta["fusion"].as_str().unwrap_or("sum"),
        meta["fusion_weight"],
        if meta["tta_flip"].as_bool() == Some(true) {
            " Predictions average the probabilities of the input and its mirror image \
             (`tta_flip`), as the evaluation did; `fer_shard.mgln`'s `predict` does this."
        } else {
            ""
        },
        meta["run"]["git_revision"].as_str().unwrap_or("unknown"),
        meta["run"]["training"]["preset"]
            .as_str()
            .unwrap_or("paper"),
        meta["cache"]["name"].as_str().unwrap_or("?"),
        meta["cache"]["key"]
            .as_str()
            .map(shard::short_key)
            .unwrap_or("?"),
        meta["cache"]["dataset"].as_str().unwrap_or("named"),
        licence.unwrap_or("not declared (pass --data-licence to record it)"),
        cfg.protocol,
        fold["name"].as_str().unwrap_or("?"),
        if cfg.protocol == crate::config::Protocol::Kfold {
            " (subject-independent folds when the cache has subject ids)"
        } else {
            ""
        },
        result["epoch"],
        result["selection"].as_str().unwrap_or("unfinished"),
        pct(&result["accuracy"]),
        pct(&metrics["accuracy_ci"][0]),
        pct(&metrics["accuracy_ci"][1]),
        pct(&metrics["balanced_accuracy"]),
        pct(&metrics["macro_f1"]),
        pct(&metrics["macro_f1_ci"][0]),
        pct(&metrics["macro_f1_ci"][1]),
        metrics["samples"],
    );
    if let Some(sm) = summary {
        s.push_str(&format!(
            "\nOver all {} folds of the run: accuracy {} ± {} (mean ± std), balanced accuracy {}, \
             macro-F1 {}.\n\n| fold | accuracy |\n|---|---|\n",
            sm["folds"].as_array().map_or(0, |a| a.len()),
            pct(&sm["mean"]),
            pct(&sm["std"]),
            pct(&sm["balanced_accuracy"][0]),
            pct(&sm["macro_f1"][0]),
        ));
        for f in sm["folds"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "| {} | {} |\n",
                f["fold"].as_str().unwrap_or("?"),
                pct(&f["accuracy"])
            ));
        }
    }
    s.push_str(
        "\n## Intended use and limits\n\n\
         - Intended use: research on facial expression classification, on crops made by the \
         same preprocessing recipe (face detection, 68 landmarks, alignment, crop sizes in \
         `model.json`). Crops made any other way are out of distribution.\n\
         - It classifies the visible facial configuration into the classes above. It does not \
         identify people, and an expression label is not a person's emotion: posed expressions \
         (CK+, Oulu-CASIA) and annotators' labels of web images (FER2013, RAF-DB, AffectNet) are \
         not ground truth about anyone's inner state.\n\
         - Not for decisions about people (hiring, policing, health, education): accuracy on \
         the lab or web data above says little about other populations, cameras or cultures, \
         and per-class recall can differ widely (see the run's summary).\n",
    );
    s
}
