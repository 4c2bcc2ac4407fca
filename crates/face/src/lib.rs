//! Face geometry: detection, 68-point landmarks, alignment and crops.
//!
//! Owns the readers of the two model files (dlib's `shape_predictor_68_face_landmarks.dat`, OpenCV's
//! cascade XML) and the algorithms that use them, written from `docs/specs/face-models.md`.
//! Must not depend on `shard`, `prep` or `tch`: it maps images to boxes, points and u8 planes.
//!
//! * [`ShapePredictor`] — dlib's ERT landmarks, bit-compatible with dlib.
//! * [`CascadeDetector`] — OpenCV's HAAR/LBP `detectMultiScale`, box for box.
//! * [`crop_face_and_parts`] — eye-level alignment and the MGLN face/eyes/nose/mouth crops.
//! * [`GrayImage`] — decoding and grey conversion as the reference tools do it.
//! * [`SampleCropper`] — the one frames → crops path of `prep build` and `train predict`, with
//!   the [`SampleRecipe`] a cache records and the [`ModelFiles`] it names.
//! * [`video`] — video files through FFmpeg: probe, seek, stream, write.

#![warn(missing_docs)]

mod align;
mod cascade;
mod dlib;
mod error;
mod gray;
mod lanes;
mod pipeline;
mod sample;
mod tiff_palette;
pub mod video;

pub use align::{crop_face_and_parts, groups, CropConfig, CropSize, FaceCrops, PartFrame};
pub use cascade::{
    cascade_path, group_rectangles, resize_linear_exact, CascadeDetector, DetectParams, Rect,
    OPENCV_DATA_DIR,
};
pub use dlib::{default_shape_model_path, FaceBox, Landmarks, ShapePredictor, DEFAULT_SHAPE_MODEL};
pub use error::{FaceError, Result};
pub use gray::{rgb_to_gray, GrayConversion, GrayImage, MAX_DIMENSION};
pub use lanes::{simd_description, simd_enabled, SIMD_ENV};
pub use pipeline::{BoxCalibration, DetectedFace, FacePipeline, FoundBox, PipelineOptions};
pub use sample::{
    cascade_file, frame_indices, is_image_name, read_input_frames, video_sample_frames,
    whole_frame_box, BoxMode, FaceSource, FrameCrops, FrameFailure, ModelFiles, SampleCropper,
    SampleFrames, SampleRecipe,
};
