//! From an experiment TOML to a checked configuration: the preset's defaults, the file's keys laid
//! over them, `--set` overrides, range checks, and the resolved TOML every run writes.

use super::overrides::Override;
use super::{ExperimentConfig, Preset};
use crate::{Result, TrainError};
use std::path::{Path, PathBuf};

/// Lays `top` over `base`: tables merge key by key, any other value replaces.
fn overlay(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => overlay(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl ExperimentConfig {
    /// Reads an experiment TOML.
    ///
    /// Errors: [`TrainError::Io`], [`TrainError::ConfigFile`] with the line of a bad key.
    pub fn load(path: &Path) -> Result<ExperimentConfig> {
        Self::load_with_overrides(path, &[])
    }

    /// Reads an experiment TOML with `--set` overrides laid over the file ([`Self::parse_with_overrides`]).
    ///
    /// Errors: as [`Self::load`], and [`TrainError::Override`].
    pub fn load_with_overrides(path: &Path, overrides: &[Override]) -> Result<ExperimentConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::parse_with_overrides(&text, path, overrides)
    }

    /// Parses TOML text; `file` names it in errors.
    /// The file's `preset` picks the defaults ([`Preset::base`]); every key the file sets is laid
    /// over them.
    pub fn parse(text: &str, file: &Path) -> Result<ExperimentConfig> {
        Self::parse_with_overrides(text, file, &[])
    }

    /// Parses TOML text and lays `overrides` over it, as if the file had set those keys: the
    /// same types, the same checks, and `preset` itself may be overridden.
    ///
    /// Errors: [`TrainError::ConfigFile`] for the file (with the line of a bad key);
    /// [`TrainError::Override`] naming the override that names no key (with the nearest
    /// keys), has a value of the wrong type, or fails a range check.
    pub fn parse_with_overrides(
        text: &str,
        file: &Path,
        overrides: &[Override],
    ) -> Result<ExperimentConfig> {
        let bad = |e: toml::de::Error| {
            // The 1-based line of the error's first byte.
            let line = e.span().map_or(1, |s| {
                1 + text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            });
            TrainError::ConfigFile {
                file: file.to_path_buf(),
                line,
                reason: e.message().to_string(),
            }
        };
        // Parsed once as written, for the line numbers of bad keys and values.
        toml::from_str::<ExperimentConfig>(text).map_err(bad)?;
        let mut user: toml::Table = toml::from_str(text).map_err(bad)?;
        renamed_keys(&mut user);
        for o in overrides {
            o.apply(&mut user)?;
            renamed_keys(&mut user);
            // One at a time, so that an error names the override that caused it.
            if let Err(e) = user.clone().try_into::<ExperimentConfig>() {
                let reason = e.message().to_string();
                let nearest = if reason.starts_with("unknown field") {
                    format!(
                        "; no such key (nearest: {})",
                        super::overrides::nearest_keys(&o.key, &Self::known_keys(), 3).join(", ")
                    )
                } else {
                    String::new()
                };
                return Err(o.error(&format!("{reason}{nearest}")));
            }
        }
        let written: ExperimentConfig = user
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| bad(e))?;
        let cfg = if written.preset == Preset::Paper {
            written
        } else {
            let mut merged = written.preset.base().to_toml_table()?;
            overlay(&mut merged, user);
            merged
                .try_into()
                .map_err(|e: toml::de::Error| TrainError::ConfigFile {
                    file: file.to_path_buf(),
                    line: 1,
                    reason: e.message().to_string(),
                })?
        };
        cfg.check().map_err(|reason| match overrides {
            [] => TrainError::ConfigFile {
                file: file.to_path_buf(),
                line: 1,
                reason,
            },
            _ => TrainError::Override {
                set: overrides
                    .iter()
                    .map(Override::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                reason: format!("{reason} (in {} with these overrides)", file.display()),
            },
        })?;
        Ok(cfg)
    }

    /// Every dotted key an experiment TOML may set (`name`, `model.branches`, `train.seed`, …),
    /// for "did you mean" lists: the field names serde's derive gives each table's
    /// deserialiser ([`super::fields::field_names`]), so the list cannot fall behind the structs.
    pub fn known_keys() -> Vec<String> {
        use super::fields::field_names;
        let mut keys = Vec::new();
        for top in field_names::<ExperimentConfig>() {
            match *top {
                "model" => keys.extend(
                    field_names::<super::ModelSection>()
                        .iter()
                        .map(|k| format!("model.{k}")),
                ),
                "train" => keys.extend(
                    field_names::<super::TrainSection>()
                        .iter()
                        .map(|k| format!("train.{k}")),
                ),
                other => keys.push(other.to_string()),
            }
        }
        keys
    }

    /// Range checks serde cannot do.
    pub fn check(&self) -> std::result::Result<(), String> {
        let t = &self.train;
        let m = &self.model;
        if self.cache.is_empty() {
            return Err("`cache` is required (a cache directory or a cache name)".into());
        }
        if t.epochs == 0 || t.batch == 0 {
            return Err("train.epochs and train.batch must be positive".into());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(t.lr) || !(0.0..=1.0).contains(&m.fusion_weight) || t.mixup_alpha < 0.0 {
            return Err("need lr > 0, 0 ≤ fusion_weight ≤ 1, mixup_alpha ≥ 0".into());
        }
        if m.head_channels.is_some_and(|(a, b)| a < 1 || b < 1) {
            return Err("need head_channels ≥ 1".into());
        }
        if !positive(m.width) || !positive(m.part_scale) || m.lstm_side < 1 || m.lstm_layers < 1 {
            return Err("need width > 0, part_scale > 0, lstm_side ≥ 1, lstm_layers ≥ 1".into());
        }
        if !(0.0..0.9).contains(&t.validation_share) || t.eval_every == 0 {
            return Err("need 0 ≤ validation_share < 0.9 and eval_every ≥ 1".into());
        }
        if !(0.0..1.0).contains(&t.label_smoothing) || !(0.0..1.0).contains(&t.momentum) {
            return Err("need 0 ≤ label_smoothing < 1 and 0 ≤ momentum < 1".into());
        }
        if !(t.grad_clip >= 0.0 && t.warmup_epochs >= 0.0 && t.weight_decay >= 0.0) {
            return Err("need grad_clip ≥ 0, warmup_epochs ≥ 0, weight_decay ≥ 0".into());
        }
        if !(0.0..=180.0).contains(&t.rotate) || !(0.0..1.0).contains(&t.scale) {
            return Err("need 0 ≤ rotate ≤ 180 (degrees) and 0 ≤ scale < 1".into());
        }
        if !(t.trunk_lr_factor.is_finite() && t.trunk_lr_factor >= 0.0) {
            return Err("need trunk_lr_factor ≥ 0".into());
        }
        if t.freeze_trunk_epochs >= t.epochs {
            return Err(format!(
                "freeze_trunk_epochs ({}) must be below epochs ({}): the trunk would never train",
                t.freeze_trunk_epochs, t.epochs
            ));
        }
        if m.init_from.is_some() && m.pretrained.is_some() {
            return Err(
                "model.init_from and model.pretrained are both set: a run starts from one".into(),
            );
        }
        if m.init_from.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err("model.init_from is empty: a run directory (#fold) or an export".into());
        }
        Ok(())
    }

    /// The resolved configuration as TOML (written into every run directory and compared on
    /// resume).
    ///
    /// Errors: [`TrainError::Serialize`] for a value TOML cannot hold, never an empty text (two
    /// different configurations must not compare equal).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| TrainError::serialize("experiment configuration", e))
    }

    /// The configuration as a TOML table (every key, the preset's defaults filled in).
    fn to_toml_table(&self) -> Result<toml::Table> {
        toml::Table::try_from(self)
            .map_err(|e| TrainError::serialize("experiment configuration", e))
    }

    /// The training settings as resolved, for `run.json` (`training`) and `model.json`: every
    /// option that shapes optimisation (the fine-tuning keys only when set).
    pub fn training_summary(&self) -> serde_json::Value {
        let t = &self.train;
        let mut v = serde_json::json!({
            "preset": self.preset,
            "model_kind": self.model.kind,
            "optimizer": t.optimizer,
            "lr": t.lr,
            "momentum": t.momentum,
            "schedule": t.schedule,
            "warmup_epochs": t.warmup_epochs,
            "lr_step_epoch": t.lr_step_epoch,
            "lr_gamma": t.lr_gamma,
            "weight_decay": t.weight_decay,
            "label_smoothing": t.label_smoothing,
            "class_balance": t.class_balance,
            "grad_clip": t.grad_clip,
            "mixup_alpha": t.mixup_alpha,
            "augment": {"shift": t.shift, "scale": t.scale, "rotate_degrees": t.rotate, "flip": t.flip},
            "tta_flip": t.tta_flip,
            "epochs": t.epochs,
            "batch": t.batch,
        });
        if self.model.init_from.is_some() || t.trunk_lr_factor != 1.0 || t.freeze_trunk_epochs > 0 {
            v["init_from"] = serde_json::json!(self.model.init_from);
            v["trunk_lr_factor"] = serde_json::json!(t.trunk_lr_factor);
            v["freeze_trunk_epochs"] = serde_json::json!(t.freeze_trunk_epochs);
        }
        v
    }

    /// The cache directory `cache` names: a cache directory, a cache name under `cache_dir`, or
    /// `name@keyprefix` (rules in [`shard::resolve_cache`]).
    ///
    /// Errors: [`TrainError::Cache`] with [`shard::ShardError::CacheRef`] when nothing matches,
    /// or when a bare name matches caches built from different sources (listed).
    pub fn resolve_cache(&self) -> Result<PathBuf> {
        Ok(shard::resolve_cache(&self.cache_dir, &self.cache)?)
    }
}

/// Writes the keys that were renamed under their current names, so that a file (or `--set`)
/// with an old name lays over the preset's table as the new name: `recipe` → `preset`.
fn renamed_keys(user: &mut toml::Table) {
    if let Some(v) = user.remove("recipe") {
        user.insert("preset".into(), v);
    }
}

/// Every value of a TOML table under its dotted key (`train.lr`), tables walked depth first in
/// the table's order: how `train report` lists settings and `train sweep` reads its axes and
/// cells.
pub fn flatten_toml(t: &toml::Table) -> Vec<(String, &toml::Value)> {
    fn walk<'t>(prefix: &str, t: &'t toml::Table, out: &mut Vec<(String, &'t toml::Value)>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                other => out.push((key, other)),
            }
        }
    }
    let mut out = Vec::new();
    walk("", t, &mut out);
    out
}
