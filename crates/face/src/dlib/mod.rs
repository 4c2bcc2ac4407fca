//! dlib's ERT shape predictor (`shape_predictor_68_face_landmarks.dat`): reader and inference.
//!
//! The serialisation and the algorithm follow `docs/specs/face-models.md` section 1 (verified
//! against dlib 20.0.1). The model is stored in flat arrays: per cascade, the 500 anchors and
//! deltas; per tree, 15 packed splits; all leaves in one contiguous `f32` array, so that inference
//! walks memory forward.

//!
//! * `model` — reading the `.dat` file into those arrays.
//! * `walk` — one face: feature pixels, the tree walk, the leaf sums.
//! * `leaves` — adding leaves (scalar, AVX2, in registers) and prefetching them.
//! * `batch` — many faces at once, each leaf read once per batch.

use crate::{FaceError, GrayImage, Result};
use std::path::{Path, PathBuf};

mod batch;
mod leaves;
mod model;
#[cfg(test)]
mod tests;
mod walk;

use model::Split;

/// A face box in dlib's inclusive convention: `right = left + width − 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FaceBox {
    /// Left column.
    pub left: i64,
    /// Top row.
    pub top: i64,
    /// Right column (inclusive).
    pub right: i64,
    /// Bottom row (inclusive).
    pub bottom: i64,
}

impl FaceBox {
    /// From inclusive corners.
    pub fn ltrb(left: i64, top: i64, right: i64, bottom: i64) -> FaceBox {
        FaceBox {
            left,
            top,
            right,
            bottom,
        }
    }

    /// From OpenCV's `x, y, w, h` (exclusive size).
    pub fn xywh(x: i64, y: i64, w: i64, h: i64) -> FaceBox {
        FaceBox::ltrb(x, y, x + w - 1, y + h - 1)
    }

    /// Width in pixels (`right − left + 1`).
    pub fn width(&self) -> i64 {
        self.right - self.left + 1
    }

    /// Height in pixels.
    pub fn height(&self) -> i64 {
        self.bottom - self.top + 1
    }

    /// Centre (x, y).
    pub fn center(&self) -> (f64, f64) {
        (
            (self.left + self.right) as f64 / 2.0,
            (self.top + self.bottom) as f64 / 2.0,
        )
    }

    /// Intersection over union with another box.
    pub fn iou(&self, o: &FaceBox) -> f64 {
        let l = self.left.max(o.left);
        let t = self.top.max(o.top);
        let r = self.right.min(o.right);
        let b = self.bottom.min(o.bottom);
        let inter = ((r - l + 1).max(0) * (b - t + 1).max(0)) as f64;
        let union = (self.width() * self.height() + o.width() * o.height()) as f64 - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// 68 landmarks as dlib returns them: integer pixels (rounded with `floor(v + 0.5)`) and the
/// unrounded `f32` positions they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmarks {
    /// Rounded points, exactly dlib's `full_object_detection` parts.
    pub points: Vec<[i64; 2]>,
    /// Unrounded points in image pixels.
    pub precise: Vec<[f32; 2]>,
}

impl Landmarks {
    /// Mean of points `range` (precise coordinates).
    pub fn mean(&self, range: std::ops::Range<usize>) -> [f64; 2] {
        let n = range.len() as f64;
        let (mut x, mut y) = (0.0, 0.0);
        for p in &self.precise[range] {
            x += p[0] as f64;
            y += p[1] as f64;
        }
        [x / n, y / n]
    }

    /// Distance between the eye centres (points 36–41 and 42–47).
    pub fn inter_ocular(&self) -> f64 {
        let l = self.mean(36..42);
        let r = self.mean(42..48);
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }
}

/// dlib's 68-point ERT landmark model, loaded into flat arrays.
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    /// Normalised mean shape, x0 y0 x1 y1 …
    initial: Vec<f32>,
    cascades: usize,
    trees: usize,
    /// splits per tree (2^depth − 1) and leaves per tree (2^depth).
    splits_per_tree: usize,
    leaves_per_tree: usize,
    features: usize,
    splits: Vec<Split>,
    leaves: Vec<f32>,
    anchors: Vec<u32>,
    /// Per feature, the offset from its anchor in the mean shape's frame, x and y apart (the
    /// vector feature path loads eight of each at once).
    delta_x: Vec<f32>,
    delta_y: Vec<f32>,
    /// The CPU has AVX2 (leaf additions use 8 lanes).
    avx2: bool,
}

impl ShapePredictor {
    /// The normalised mean shape (box coordinates in 0..1), one (x, y) per landmark.
    pub fn initial_shape(&self) -> Vec<[f32; 2]> {
        self.initial.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
    }

    /// Number of landmarks (68 for the standard model).
    pub fn num_parts(&self) -> usize {
        self.initial.len() / 2
    }

    /// (cascades, trees per cascade, leaves per tree, feature pixels per cascade).
    pub fn dimensions(&self) -> (usize, usize, usize, usize) {
        (
            self.cascades,
            self.trees,
            self.leaves_per_tree,
            self.features,
        )
    }
}

/// Where Debian's `libdlib-data` installs the 68-point model.
pub const DEFAULT_SHAPE_MODEL: &str = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

/// The model path: `$FER_SHAPE_MODEL` when set, else [`DEFAULT_SHAPE_MODEL`].
pub fn default_shape_model_path() -> PathBuf {
    std::env::var_os("FER_SHAPE_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SHAPE_MODEL))
}
