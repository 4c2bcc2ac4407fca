//! OpenCV cascade face detection (new-format XML, HAAR and LBP), reproducing
//! `CascadeClassifier::detectMultiScale` of OpenCV 4.x: bit-exact bilinear pyramid
//! (`INTER_LINEAR_EXACT`), integral images, variance normalisation, the step rule and
//! `groupRectangles`. Written from `docs/specs/face-models.md` section 2.

//!
//! * `xml` — the model file: XML → stages, weak classifiers, nodes, features.
//! * `pyramid` — the resize and integral images of each scale.
//! * `scan` — windows of one level through the stages (compiled stumps, AVX2 LBP lanes).
//! * `haar_vector` — the AVX2 lanes of all-stump HAAR cascades.
//! * `group` — `groupRectangles`.

use crate::{FaceError, GrayImage, Result};
use std::path::{Path, PathBuf};

mod group;
#[cfg(target_arch = "x86_64")]
mod haar_vector;
mod pyramid;
mod scan;
#[cfg(test)]
pub(crate) mod tests;
mod xml;

pub use group::group_rectangles;
pub use pyramid::resize_linear_exact;
use pyramid::{round_half_even, round_half_even_f32, Level};
use scan::*;

/// An axis-aligned box in OpenCV's convention (`x, y, width, height`, exclusive size).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Rect {
    /// Left column.
    pub x: i64,
    /// Top row.
    pub y: i64,
    /// Width.
    pub w: i64,
    /// Height.
    pub h: i64,
}

/// Parameters of [`CascadeDetector::detect`], with OpenCV's names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    /// Pyramid step (default 1.1).
    pub scale_factor: f64,
    /// Groups with this many or fewer members are dropped (default 3); 0 disables grouping.
    pub min_neighbors: usize,
    /// Smallest window (width, height) considered (default 20×20). Raising it skips the fine
    /// pyramid levels, the expensive ones: CK+/Oulu faces are large.
    pub min_size: (i64, i64),
    /// Largest window (default: the image size).
    pub max_size: Option<(i64, i64)>,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            scale_factor: 1.1,
            min_neighbors: 3,
            min_size: (20, 20),
            max_size: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeatureType {
    Haar,
    Lbp,
}

#[derive(Debug, Clone, Copy)]
struct WeightedRect {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    weight: f32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
    feature: u32,
    threshold: f32,
    /// LBP: offset of this node's category words in `subsets`.
    subset: u32,
}

#[derive(Debug, Clone)]
struct Weak {
    nodes: std::ops::Range<u32>,
    leaves: std::ops::Range<u32>,
}

#[derive(Debug, Clone)]
struct Stage {
    threshold: f32,
    weaks: std::ops::Range<u32>,
}

/// A boosted cascade loaded from OpenCV's XML.
#[derive(Debug, Clone)]
pub struct CascadeDetector {
    name: String,
    kind: FeatureType,
    width: i64,
    height: i64,
    stages: Vec<Stage>,
    weaks: Vec<Weak>,
    nodes: Vec<Node>,
    leaves: Vec<f32>,
    subsets: Vec<i32>,
    subset_words: usize,
    /// Every weak classifier is a single-node stump (enables the compiled fast path).
    all_stumps: bool,
    /// LBP stump cascades scan eight windows at a time in AVX2 lanes (the CPU has it).
    vector_scan: bool,
    /// HAAR: up to three weighted rects per feature; LBP: the one cell rect (weight unused).
    features: Vec<[WeightedRect; 3]>,
}

/// Directory where Debian's `opencv-data` installs the cascades.
pub const OPENCV_DATA_DIR: &str = "/usr/share/opencv4";

/// Path of a cascade shipped by `opencv-data`, e.g. `haarcascade_frontalface_default` or
/// `lbpcascade_frontalface`; `$FER_OPENCV_DATA` overrides the directory.
pub fn cascade_path(name: &str) -> PathBuf {
    let root = std::env::var_os("FER_OPENCV_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(OPENCV_DATA_DIR));
    let sub = if name.starts_with("lbp") {
        "lbpcascades"
    } else {
        "haarcascades"
    };
    root.join(sub).join(format!("{name}.xml"))
}

impl CascadeDetector {
    /// The cascade's name (file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The detection window (width, height).
    pub fn window(&self) -> (i64, i64) {
        (self.width, self.height)
    }

    /// Runs the detector on a grey image, as OpenCV's `detectMultiScale`. Boxes are sorted.
    pub fn detect(&self, img: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let candidates = self.candidates(img, p);
        let mut out = group_rectangles(&candidates, p.min_neighbors, 0.2);
        for r in &mut out {
            let x0 = r.x.max(0);
            let y0 = r.y.max(0);
            let x1 = (r.x + r.w).min(iw);
            let y1 = (r.y + r.h).min(ih);
            *r = Rect {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
            };
        }
        out.sort();
        out
    }

    /// Every window the cascade accepts, over all pyramid levels, in scan order (level, row,
    /// column), before grouping.
    fn candidates(&self, img: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let (max_w, max_h) = p.max_size.unwrap_or((iw, ih));
        let mut scales = Vec::new();
        let mut factor = 1.0f64;
        if p.scale_factor > 1.0 {
            loop {
                let ww = round_half_even(self.width as f64 * factor);
                let wh = round_half_even(self.height as f64 * factor);
                if ww > max_w || wh > max_h || ww > iw || wh > ih {
                    break;
                }
                if ww >= p.min_size.0 && wh >= p.min_size.1 {
                    scales.push(factor as f32);
                }
                factor *= p.scale_factor;
            }
        }
        let mut candidates = Vec::new();
        let mut level = Level::default();
        for &scale in &scales {
            let sw = round_half_even_f32(iw as f32 / scale);
            let sh = round_half_even_f32(ih as f32 / scale);
            if sw < self.width || sh < self.height {
                continue;
            }
            // OpenCV's window step: every pixel from scale 2 on, every other pixel below.
            let step = if scale >= 2.0 { 1 } else { 2 };
            // The vector scans (all-stump LBP and HAAR) read i32 sums, in the split layout at
            // step 2 so that the windows of a batch are adjacent.
            let haar_i32 = self.kind == FeatureType::Haar && self.all_stumps && self.vector_scan;
            let split =
                (self.kind == FeatureType::Lbp || haar_i32) && self.vector_scan && step == 2;
            level.build(img, sw as usize, sh as usize, self.kind, split, haar_i32);
            self.scan_level(&level, scale, step, &mut candidates);
        }
        candidates
    }

    /// The subset words per LBP node (0 for HAAR); exposed for diagnostics.
    pub fn subset_words(&self) -> usize {
        self.subset_words
    }
}
