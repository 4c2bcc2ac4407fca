//! Synthetic expression datasets from one public-domain face (`prep synth`).
//!
//! The base face's 68 landmarks (found by our own predictor) are displaced by a small, documented,
//! FACS-inspired recipe per expression, scaled by an eased intensity from neutral (first frame) to
//! peak (last frame); the image follows through a piecewise-affine warp over a Delaunay
//! triangulation of the landmarks plus a ring of fixed points around the face and the canvas
//! border, so only the face moves. "Subjects" differ by a seeded identity morph of the geometry,
//! mirroring, a global similarity, brightness / contrast / gamma and sensor noise. Because the true
//! landmark positions of every frame are known, the generator also measures our detector on them.

//!
//! * `expressions` — the per-expression landmark recipes, mirroring and easing.
//! * `warp` — Delaunay triangulation, the piecewise-affine warp, similarities.
//! * `render` — base face, subjects and one rendered frame.
//! * `layouts` — the CK+, Oulu-CASIA and FER2013 trees and fold lists written to disk.
//! * `fer_folders` — FER2013's two image-folder releases, with the extras real copies carry.
//! * `files` — writing a layout's files (one wording of I/O errors).
//! * `wild` — the FER+, RAF-DB, AffectNet and ExpW layouts, with planted duplicates.
//! * `clips` — the DFEW and AFEW video layouts and a test video with its truth (FFmpeg).
//! * `scale` — a cache of any size (AffectNet's ≈ 290,000 records) re-encoded from a small one.

mod clips;
mod expressions;
mod fer_folders;
pub(crate) mod files;
mod layouts;
mod render;
mod scale;
#[cfg(test)]
mod tests;
mod warp;
mod wild;

pub use clips::*;
pub use expressions::*;
pub use fer_folders::*;
pub use layouts::*;
pub use render::*;
pub use scale::*;
pub use warp::*;
pub use wild::*;

/// Expressions in CK+ code order (1–7); 0 is neutral.
pub const EXPRESSIONS: [&str; 7] = [
    "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
];

/// Version of the generator's output; bump it whenever a recipe, the warp or a layout changes so
/// that `prep synth` regenerates instead of reusing older data.
pub const SYNTH_VERSION: u32 = 4;

/// Overall strength of the recipes below: 1.6 makes every peak expression plainly visible at
/// CK+ resolution while keeping the warp free of fold-overs.
pub const EXPRESSION_GAIN: f64 = 1.6;
