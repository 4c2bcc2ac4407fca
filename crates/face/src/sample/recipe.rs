//! The recipe of a sample's crops ([`SampleRecipe`]): every setting that decides how frames
//! become crops, which a cache records and `train predict` repeats.

use super::ModelFiles;
use crate::{CropConfig, GrayImage};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the face box of a frame is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoxMode {
    /// Cascade detection (with the fallback cascade), tracking within sequences.
    Detect,
    /// The whole image is the face box (FER2013 and CK+48 are already face crops).
    WholeFrame,
    /// Detection, and the whole image when no face is found.
    DetectOrWholeFrame,
}

/// Every setting that decides how a sample's frames become crops: what `train predict` must
/// repeat to classify a new input the way the cache's samples were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRecipe {
    /// How face boxes are found (resolved: never the dataset's default).
    pub box_mode: BoxMode,
    /// Crop sizes, margins and alignment.
    pub crops: CropConfig,
    /// Frame positions within a sequence as fractions of its length (0 = first, 1 = last); one
    /// per slot.
    pub frame_positions: Vec<f64>,
    /// Primary cascade: a name under the OpenCV data directory or a path ending in `.xml`.
    pub cascade: String,
    /// Cascade tried when the primary finds nothing; `none`, empty or the primary's name = none.
    pub fallback_cascade: String,
    /// Smallest face searched for, as a fraction of the image's shorter side (at least 20 px).
    pub min_face_fraction: f64,
    /// Detect on every frame instead of tracking from the first.
    pub detect_every_frame: bool,
    /// Predict a second time from the box fitted to the first landmarks.
    pub reinitialise: bool,
    /// The landmarks came from the dataset's files, not from the predictor.
    pub dataset_landmarks: bool,
    /// The predictor ran in face boxes shipped with the dataset (RAF-DB's, ExpW's, AffectNet's)
    /// instead of detected ones. Absent in recipes written before it existed (= false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dataset_boxes: bool,
}

impl Default for SampleRecipe {
    /// The paper's preprocessing as `prep build` does it by default: cascade detection (LBP, the
    /// Haar cascade as fallback) on faces of at least a fifth of the shorter side, tracking within
    /// sequences, the first, middle and last frames, the paper's crop sizes.
    fn default() -> Self {
        SampleRecipe {
            box_mode: BoxMode::Detect,
            crops: CropConfig::default(),
            frame_positions: vec![0.0, 0.5, 1.0],
            cascade: "lbpcascade_frontalface".into(),
            fallback_cascade: "haarcascade_frontalface_default".into(),
            min_face_fraction: 0.2,
            detect_every_frame: false,
            reinitialise: false,
            dataset_landmarks: false,
            dataset_boxes: false,
        }
    }
}

impl SampleRecipe {
    /// Number of frame slots per sample.
    pub fn slots(&self) -> usize {
        self.frame_positions.len()
    }

    /// The frame indices chosen from a sequence of `n ≥ 1` frames, one per slot:
    /// round(p × (n − 1)), halves up.
    pub fn frame_indices(&self, n: usize) -> Vec<usize> {
        frame_indices(&self.frame_positions, n)
    }

    /// The smallest face searched for in `img`, in pixels, before the 20 px floor.
    pub fn min_face(&self, img: &GrayImage) -> i64 {
        let short = img.width().min(img.height()) as f64;
        (self.min_face_fraction * short) as i64
    }

    /// The model files this recipe names, with `shape_predictor` as the dlib model (see
    /// [`ModelFiles::resolve`]).
    pub fn model_files(&self, shape_predictor: PathBuf) -> ModelFiles {
        ModelFiles::resolve(shape_predictor, &self.cascade, &self.fallback_cascade)
    }

    /// Why a new input cannot be turned into crops the way this recipe made the cache's, or
    /// `None` when it can: the crops of a cache built from the dataset's own landmark files
    /// depend on files a new image does not have.
    pub fn unreproducible(&self) -> Option<String> {
        if self.dataset_landmarks {
            return Some(
                "its crops were cut at the landmarks shipped with the dataset (dataset_landmarks \
                 = true), which a new image does not have; rebuild the cache without that option \
                 to predict"
                    .to_string(),
            );
        }
        self.dataset_boxes.then(|| {
            "its landmarks were predicted in the face boxes shipped with the dataset \
             (dataset_boxes = true), which a new image does not have; rebuild the cache with \
             dataset_boxes = false to predict"
                .to_string()
        })
    }
}

/// round(p × (n − 1)) for each position, halves up, clamped to the last frame.
pub fn frame_indices(positions: &[f64], n: usize) -> Vec<usize> {
    let last = n.saturating_sub(1) as f64;
    positions
        .iter()
        .map(|p| ((p * last + 0.5).floor() as usize).min(n.saturating_sub(1)))
        .collect()
}

/// Whether a file name has an image extension that the decoder reads (case-insensitive).
pub fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".gif",
    ]
    .iter()
    .any(|e| lower.ends_with(e))
}
