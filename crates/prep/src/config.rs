//! The prep configuration: everything that decides a cache's content besides the raw files and the
//! model files. It is written as TOML, defaults are the paper's, and its canonical JSON is part of
//! the cache key, so changing any field builds a new cache instead of silently reusing an old one.

use crate::{PrepError, Result};
use face::CropConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use face::BoxMode;

/// Prep configuration. Every field has the paper's default; unknown fields are an error so that a
/// typo cannot silently fall back to a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepConfig {
    /// Crop sizes, margins and alignment (defaults: face 128×128, eyes 48×128, nose 64×32,
    /// mouth 32×64, margin 5 px, eye-level alignment on).
    pub crops: CropConfig,
    /// Frame positions within a sequence as fractions of its length, 0 = first, 1 = last (peak);
    /// frame index = round(p × (n − 1)). Default `[0.0, 0.5, 1.0]`: first, middle, peak, as in the
    /// authors' fold lists. Static images fill every slot.
    pub frame_positions: Vec<f64>,
    /// How face boxes are found; `None` = the dataset's default (whole frame for FER2013 and
    /// CK+48, detection otherwise).
    pub box_mode: Option<BoxMode>,
    /// Primary cascade (a name under /usr/share/opencv4 or a path). Default `lbpcascade_frontalface`.
    pub cascade: String,
    /// Cascade tried when the primary finds nothing; "none" disables. Default
    /// `haarcascade_frontalface_default`.
    pub fallback_cascade: String,
    /// Smallest face searched for, as a fraction of the image's shorter side (default 0.2): skips
    /// the fine pyramid levels, which cost most and only find background on CK+/Oulu frames.
    pub min_face_fraction: f64,
    /// Detect on every selected frame instead of tracking from the first (default false).
    pub detect_every_frame: bool,
    /// Re-fit the box to the first landmarks and predict again (default false: it did not improve
    /// agreement with dlib's detector on the reference faces; see README).
    pub reinitialise: bool,
    /// CK+: use the landmarks shipped in `Landmarks/` instead of ours (default false).
    pub dataset_landmarks: bool,
    /// CK+: keep the neutral code 0 as a class (default false: the paper's 7 classes).
    pub include_neutral: bool,
    /// Oulu-CASIA modality, `VL` or `NI` (default `VL`).
    pub oulu_modality: String,
    /// Oulu-CASIA illumination, `Strong`, `Weak` or `Dark` (default `Strong`).
    pub oulu_illumination: String,
    /// Use the authors' fold lists for CK+ and Oulu-CASIA when the sequences match (default true);
    /// otherwise, and for class-folder datasets, seeded subject-stratified k-fold.
    pub authors_folds: bool,
    /// Number of folds of the seeded subject-stratified split (default 10).
    pub folds: u16,
    /// Seed of the subject-stratified split and of the QA sample (default 0).
    pub seed: u64,
    /// zstd level of the shard records (default 3).
    pub zstd_level: i32,
    /// Class folders (`--dataset folders`): a regular expression on each file name whose named
    /// group `subject` (else group 1) is the subject, so that folds keep a person's images
    /// together (default none: folds are image-level). Left out of the key when unset, so caches
    /// built before the option existed keep their keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_regex: Option<String>,
    /// Duplicate inputs (the same decoded pixels; near ones with `near_duplicate_bits`): `report`
    /// (default: listed in duplicates.parquet and the summary, nothing dropped, so published
    /// protocols stay reproducible), `drop-from-train` or `drop-conflicting` (see
    /// [`crate::dedup::DedupMode`]). Left out of the key when `report`.
    #[serde(skip_serializing_if = "is_report")]
    pub dedup: crate::dedup::DedupMode,
    /// Also find near duplicates: inputs whose peak frames' 64-bit difference hashes differ in at
    /// most this many bits, 0–7 (default none). Left out of the key when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_duplicate_bits: Option<u32>,
    /// Predict landmarks in the face boxes a dataset ships (RAF-DB, ExpW, AffectNet) instead of
    /// detecting faces (default true). Left out of the key when true.
    #[serde(skip_serializing_if = "is_true")]
    pub dataset_boxes: bool,
    /// AffectNet's protocol: 8 classes (contempt kept, the default) or 7 (contempt excluded).
    /// Left out of the key when 8.
    #[serde(skip_serializing_if = "is_eight")]
    pub affectnet_classes: u8,
}

fn is_eight(n: &u8) -> bool {
    *n == 8
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_report(m: &crate::dedup::DedupMode) -> bool {
    *m == crate::dedup::DedupMode::Report
}

impl Default for PrepConfig {
    fn default() -> Self {
        // The recipe's settings are the face crate's defaults (the paper's preprocessing).
        let r = face::SampleRecipe::default();
        PrepConfig {
            crops: r.crops,
            frame_positions: r.frame_positions,
            box_mode: None,
            cascade: r.cascade,
            fallback_cascade: r.fallback_cascade,
            min_face_fraction: r.min_face_fraction,
            detect_every_frame: r.detect_every_frame,
            reinitialise: r.reinitialise,
            dataset_landmarks: r.dataset_landmarks,
            include_neutral: false,
            oulu_modality: "VL".into(),
            oulu_illumination: "Strong".into(),
            authors_folds: true,
            folds: 10,
            seed: 0,
            zstd_level: 3,
            subject_regex: None,
            dedup: crate::dedup::DedupMode::Report,
            near_duplicate_bits: None,
            dataset_boxes: true,
            affectnet_classes: 8,
        }
    }
}

impl PrepConfig {
    /// Reads a TOML file; missing fields take their defaults.
    ///
    /// Errors: [`PrepError::Io`], or [`PrepError::Parse`] naming the line of a bad field.
    pub fn load(path: &Path) -> Result<PrepConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| PrepError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text (see [`PrepConfig::load`]) and checks it.
    pub fn parse(text: &str, file: &Path) -> Result<PrepConfig> {
        let cfg: PrepConfig = toml::from_str(text).map_err(|e| {
            // The 1-based line of the error's first byte.
            let line = e.span().map_or(1, |s| {
                1 + text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            });
            PrepError::parse(file, line, e.message().to_string())
        })?;
        cfg.check()
            .map_err(|reason| PrepError::parse(file, 1, reason))?;
        Ok(cfg)
    }

    /// Checks ranges that serde cannot: returns the first problem found.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.frame_positions.is_empty() || self.frame_positions.len() > 64 {
            return Err("frame_positions must list 1 to 64 positions".into());
        }
        if self
            .frame_positions
            .iter()
            .any(|p| !(0.0..=1.0).contains(p))
        {
            return Err("frame_positions must lie in [0, 1]".into());
        }
        if !(0.0..1.0).contains(&self.min_face_fraction) {
            return Err("min_face_fraction must lie in [0, 1)".into());
        }
        if self.folds < 2 {
            return Err("folds must be at least 2".into());
        }
        if self.affectnet_classes != 7 && self.affectnet_classes != 8 {
            return Err("affectnet_classes must be 7 or 8".into());
        }
        if self.near_duplicate_bits.is_some_and(|b| b > 7) {
            return Err("near_duplicate_bits must lie in 0..=7".into());
        }
        if !(1..=19).contains(&self.zstd_level) {
            return Err("zstd_level must lie in 1..=19".into());
        }
        let c = &self.crops;
        for (name, s) in [
            ("face", c.face),
            ("eyes", c.eyes),
            ("nose", c.nose),
            ("mouth", c.mouth),
        ] {
            if s.height == 0 || s.width == 0 || s.height > 1024 || s.width > 1024 {
                return Err(format!("crops.{name} must be 1..=1024 on each side"));
            }
        }
        if !matches!(self.oulu_modality.as_str(), "VL" | "NI") {
            return Err("oulu_modality must be VL or NI".into());
        }
        if !matches!(self.oulu_illumination.as_str(), "Strong" | "Weak" | "Dark") {
            return Err("oulu_illumination must be Strong, Weak or Dark".into());
        }
        Ok(())
    }

    /// The resolved configuration as TOML (written beside each cache).
    ///
    /// Errors: [`PrepError::Serialize`] for a value TOML cannot hold (e.g. a NaN margin).
    pub fn to_toml(&self) -> crate::Result<String> {
        toml::to_string_pretty(self).map_err(|e| crate::PrepError::Serialize {
            what: "prep configuration".into(),
            reason: e.to_string(),
        })
    }

    /// Number of frame slots per sample.
    pub fn slots(&self) -> usize {
        self.frame_positions.len()
    }

    /// The frame indices chosen from a sequence of `n ≥ 1` frames, one per slot
    /// ([`face::frame_indices`]).
    pub fn frame_indices(&self, n: usize) -> Vec<usize> {
        face::frame_indices(&self.frame_positions, n)
    }

    /// The settings that decide how frames become crops, with the resolved box mode: what the
    /// manifest records as `extra.recipe` and `train predict` repeats.
    pub fn recipe(&self, box_mode: BoxMode) -> face::SampleRecipe {
        face::SampleRecipe {
            box_mode,
            crops: self.crops.clone(),
            frame_positions: self.frame_positions.clone(),
            cascade: self.cascade.clone(),
            fallback_cascade: self.fallback_cascade.clone(),
            min_face_fraction: self.min_face_fraction,
            detect_every_frame: self.detect_every_frame,
            reinitialise: self.reinitialise,
            dataset_landmarks: self.dataset_landmarks,
            // Set by the build when the dataset's boxes were actually used.
            dataset_boxes: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_errors() {
        let c = PrepConfig::default();
        let back = PrepConfig::parse(&c.to_toml().unwrap(), Path::new("x.toml")).unwrap();
        assert_eq!(back, c);
        let partial =
            PrepConfig::parse("seed = 7\n[crops]\npart_margin = 3.0\n", Path::new("p")).unwrap();
        assert_eq!(partial.seed, 7);
        assert_eq!(partial.crops.part_margin, 3.0);
        assert_eq!(partial.crops.face.height, 128);
        let e = PrepConfig::parse("seed = 1\nsede = 2\n", Path::new("typo.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo.toml:2"), "{e}");
        assert!(PrepConfig::parse("folds = 1", Path::new("f")).is_err());
        assert!(PrepConfig::parse("frame_positions = [1.5]", Path::new("f")).is_err());
    }
}
