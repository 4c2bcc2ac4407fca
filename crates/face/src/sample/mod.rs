//! The one path from decoded frames to the crops of a sample, shared by `prep build` (which caches
//! them) and `train predict` (which classifies new inputs with the cache's settings): find the
//! face of each frame (detect, track from the previous frame, take the whole frame, or use the
//! dataset's landmarks), predict 68 points, align, cut the face and part crops; slots that repeat
//! a frame repeat its crops.
//!
//! [`SampleRecipe`] holds every setting that decides those crops. `prep` records it in each
//! cache's manifest (`extra.recipe`) and `train` reads it back (`train::recipe`), so that both
//! sides cut the same bytes from the same frames (pinned by a byte-identity test over every
//! dataset layout).

use crate::{
    crop_face_and_parts, FaceBox, FaceCrops, FaceError, FacePipeline, GrayImage, Landmarks, Result,
};
use std::path::{Path, PathBuf};

mod models;
mod recipe;
pub use models::{cascade_file, ModelFiles};
pub use recipe::{frame_indices, is_image_name, BoxMode, SampleRecipe};

/// How the face of a frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSource {
    /// A cascade found it.
    Detected,
    /// Its box was fitted to the previous frame's landmarks.
    Tracked,
    /// The whole frame was the box (whole-frame datasets, or no face found in
    /// [`BoxMode::DetectOrWholeFrame`]).
    WholeFrame,
    /// The dataset's landmarks were used as they are.
    DatasetLandmarks,
    /// The predictor ran in the face box shipped with the dataset.
    DatasetBox,
}

/// The result of one frame slot.
#[derive(Debug, Clone)]
pub struct FrameCrops {
    /// The 68 landmarks (source pixels).
    pub landmarks: Vec<[f32; 2]>,
    /// The face and part crops.
    pub crops: FaceCrops,
    /// How the face was found.
    pub source: FaceSource,
    /// What found it: the cascade's name, `tracked`, `whole_frame` or `dataset_landmarks`.
    pub detector: String,
    /// The box the predictor ran on (inclusive; `None` for dataset landmarks).
    pub face_box: Option<FaceBox>,
    /// This slot repeats the previous slot's frame (a still image, a short sequence).
    pub repeated: bool,
}

/// The decoded frames of one input.
#[derive(Debug, Clone, Default)]
pub struct SampleFrames {
    /// Number of frame slots of the sample.
    pub slots: usize,
    /// The distinct frames, in slot order, as (first slot, image): the slots up to the next
    /// entry repeat this frame. The first entry is slot 0. An input whose frame failed to
    /// decode lists the frames before it.
    pub distinct: Vec<(usize, GrayImage)>,
    /// Landmarks shipped with the dataset, one set per slot, when the recipe uses them.
    pub landmarks: Option<Vec<Vec<[f32; 2]>>>,
    /// Face boxes shipped with the dataset, one per slot, when the recipe uses them: the
    /// predictor runs in them instead of in detected boxes.
    pub boxes: Option<Vec<FaceBox>>,
}

impl SampleFrames {
    /// One still image in every slot.
    pub fn still(img: GrayImage, slots: usize) -> SampleFrames {
        SampleFrames {
            slots,
            distinct: vec![(0, img)],
            landmarks: None,
            boxes: None,
        }
    }

    /// The per-slot results from the results of the distinct frames (as
    /// [`SampleCropper::crop`] returns them): repeated slots copy the previous result with
    /// `repeated` set. `None` when a slot has no frame before it (no frames at all).
    pub fn fill_slots(&self, distinct: Vec<FrameCrops>) -> Option<Vec<FrameCrops>> {
        let mut out: Vec<FrameCrops> = Vec::with_capacity(self.slots);
        let mut next = self
            .distinct
            .iter()
            .map(|(s, _)| *s)
            .zip(distinct)
            .peekable();
        for slot in 0..self.slots {
            match next.peek() {
                Some((s, _)) if *s == slot => out.push(next.next()?.1),
                _ => {
                    let mut r = out.last()?.clone();
                    r.repeated = true;
                    out.push(r);
                }
            }
        }
        Some(out)
    }
}

/// Why a frame gave no crops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameFailure {
    /// No cascade found a face of at least `min_face` px (before the 20 px floor).
    NoFace {
        /// The frame's slot.
        slot: usize,
        /// The smallest face searched for.
        min_face: i64,
    },
    /// The landmarks give no usable crop (degenerate geometry).
    NoUsableCrop {
        /// The frame's slot.
        slot: usize,
    },
}

impl std::fmt::Display for FrameFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameFailure::NoFace { min_face, .. } => {
                write!(f, "no face of at least {min_face} px")
            }
            FrameFailure::NoUsableCrop { .. } => write!(f, "landmarks give no usable crop"),
        }
    }
}

/// Where a frame's landmarks come from, before they are predicted.
struct Located {
    landmarks: Vec<[f32; 2]>,
    source: FaceSource,
    detector: String,
    face_box: Option<FaceBox>,
}

/// Turns [`SampleFrames`] into per-frame crops with one face pipeline and one recipe.
pub struct SampleCropper<'a> {
    faces: &'a FacePipeline,
    recipe: &'a SampleRecipe,
}

impl<'a> SampleCropper<'a> {
    /// A cropper; `faces` should be loaded from `recipe`'s model files.
    pub fn new(faces: &'a FacePipeline, recipe: &'a SampleRecipe) -> Self {
        SampleCropper { faces, recipe }
    }

    /// The recipe in force.
    pub fn recipe(&self) -> &SampleRecipe {
        self.recipe
    }

    /// Whether [`Self::crop_batch`] batches the landmark predictions: always, except with the
    /// re-initialisation pass (a second prediction from the first one's box).
    pub fn batches(&self) -> bool {
        self.recipe.box_mode == BoxMode::WholeFrame || !self.faces.options().reinitialise
    }

    /// The crops of an input's distinct frames, in order (see [`SampleFrames::fill_slots`]
    /// for the slots), or the first frame in slot order that gave none. Sequences are tracked:
    /// the first frame is detected, the next ones fitted to the previous landmarks.
    pub fn crop(
        &self,
        frames: &SampleFrames,
    ) -> std::result::Result<Vec<FrameCrops>, FrameFailure> {
        let mut previous: Option<Landmarks> = None;
        let mut out = Vec::with_capacity(frames.distinct.len());
        for (slot, img) in &frames.distinct {
            let (located, keep) = self.locate(frames, *slot, img, previous.as_ref())?;
            out.push(self.cut(*slot, img, located)?);
            previous = keep;
        }
        Ok(out)
    }

    /// [`Self::crop`] of several inputs; the results are equal, but the landmarks of their
    /// frames are predicted together in [`crate::ShapePredictor::predict_batch`] calls, which read
    /// each tree's leaves once per batch instead of once per face: with whole-frame boxes all
    /// frames in one call, with detection one call per frame step (every input's first frame,
    /// then every input's second, … since a tracked frame needs the previous one's landmarks).
    pub fn crop_batch(
        &self,
        inputs: &[&SampleFrames],
    ) -> Vec<std::result::Result<Vec<FrameCrops>, FrameFailure>> {
        if !self.batches()
            || inputs
                .iter()
                .any(|i| i.landmarks.is_some() || i.boxes.is_some())
        {
            return inputs.iter().map(|i| self.crop(i)).collect();
        }
        if self.recipe.box_mode != BoxMode::WholeFrame {
            return self.crop_batch_detect(inputs);
        }
        let boxes: Vec<(&GrayImage, FaceBox)> = inputs
            .iter()
            .flat_map(|i| &i.distinct)
            .map(|(_, img)| (img, whole_frame_box(img)))
            .collect();
        let mut predicted = self.faces.predictor().predict_batch(&boxes).into_iter();
        inputs
            .iter()
            .map(|input| {
                // Consume this input's predictions even if a crop fails, to stay aligned.
                let lms: Vec<Landmarks> = input
                    .distinct
                    .iter()
                    .filter_map(|_| predicted.next())
                    .collect();
                input
                    .distinct
                    .iter()
                    .zip(lms)
                    .map(|((slot, img), lm)| self.cut(*slot, img, whole_frame(img, lm)))
                    .collect()
            })
            .collect()
    }

    /// Finds the landmarks of one frame, and the landmarks later frames track from.
    fn locate(
        &self,
        frames: &SampleFrames,
        slot: usize,
        img: &GrayImage,
        previous: Option<&Landmarks>,
    ) -> std::result::Result<(Located, Option<Landmarks>), FrameFailure> {
        if let Some(given) = &frames.landmarks {
            let located = Located {
                landmarks: given.get(slot).cloned().unwrap_or_default(),
                source: FaceSource::DatasetLandmarks,
                detector: "dataset_landmarks".into(),
                // The dataset's box, when it ships one too (AffectNet), is recorded.
                face_box: frames.boxes.as_ref().and_then(|b| b.get(slot)).copied(),
            };
            return Ok((located, None));
        }
        if let Some(b) = frames.boxes.as_ref().and_then(|b| b.get(slot)) {
            let lm = self.faces.predictor().predict(img, *b);
            let located = Located {
                landmarks: lm.precise.clone(),
                source: FaceSource::DatasetBox,
                detector: "dataset_box".into(),
                face_box: Some(*b),
            };
            return Ok((located, None));
        }
        let whole = || {
            let b = whole_frame_box(img);
            whole_frame(img, self.faces.predictor().predict(img, b))
        };
        if self.recipe.box_mode == BoxMode::WholeFrame {
            return Ok((whole(), None));
        }
        if let Some(p) = previous.filter(|_| !self.recipe.detect_every_frame) {
            let t = self.faces.track(img, p);
            let located = Located {
                landmarks: t.landmarks.precise.clone(),
                source: FaceSource::Tracked,
                detector: t.detector,
                face_box: Some(t.face_box),
            };
            return Ok((located, Some(t.landmarks)));
        }
        let min_face = self.recipe.min_face(img);
        match self
            .faces
            .detect(img, Some(min_face.max(20)))
            .into_iter()
            .next()
        {
            Some(f) => {
                let located = Located {
                    landmarks: f.landmarks.precise.clone(),
                    source: FaceSource::Detected,
                    detector: f.detector,
                    face_box: Some(f.face_box),
                };
                Ok((located, Some(f.landmarks)))
            }
            None if self.recipe.box_mode == BoxMode::DetectOrWholeFrame => Ok((whole(), None)),
            None => Err(FrameFailure::NoFace { slot, min_face }),
        }
    }

    /// Aligns and cuts the crops of one frame at its landmarks.
    fn cut(
        &self,
        slot: usize,
        img: &GrayImage,
        located: Located,
    ) -> std::result::Result<FrameCrops, FrameFailure> {
        let crops = crop_face_and_parts(img, &located.landmarks, &self.recipe.crops)
            .ok_or(FrameFailure::NoUsableCrop { slot })?;
        Ok(FrameCrops {
            landmarks: located.landmarks,
            crops,
            source: located.source,
            detector: located.detector,
            face_box: located.face_box,
            repeated: false,
        })
    }

    /// [`Self::crop_batch`] with detection and tracking, in lock step over the inputs' distinct
    /// frames. Each frame goes through the decisions of [`Self::locate`] (track from the
    /// previous landmarks, else detect, else the whole frame or a failure), and each input's
    /// first failure in slot order is its result, as in [`Self::crop`].
    fn crop_batch_detect(
        &self,
        inputs: &[&SampleFrames],
    ) -> Vec<std::result::Result<Vec<FrameCrops>, FrameFailure>> {
        /// One input's progress: the results so far, the landmarks to track from, its failure.
        #[derive(Default)]
        struct Progress {
            results: Vec<FrameCrops>,
            previous: Option<Landmarks>,
            failed: Option<FrameFailure>,
        }
        /// A landmark prediction to make: for which input, in which box, found how, and
        /// whether later frames track from its landmarks.
        struct Request {
            input: usize,
            face_box: FaceBox,
            source: FaceSource,
            detector: String,
            track_from: bool,
        }
        let mut progress: Vec<Progress> = inputs.iter().map(|_| Progress::default()).collect();
        let steps = inputs.iter().map(|i| i.distinct.len()).max().unwrap_or(0);
        for step in 0..steps {
            let mut requests: Vec<Request> = Vec::new();
            for (i, (input, p)) in inputs.iter().zip(&mut progress).enumerate() {
                if p.failed.is_some() || step >= input.distinct.len() {
                    continue;
                }
                let (slot, img) = &input.distinct[step];
                let tracked = p
                    .previous
                    .as_ref()
                    .filter(|_| !self.recipe.detect_every_frame);
                if let Some(prev) = tracked {
                    requests.push(Request {
                        input: i,
                        face_box: self.faces.predictor().box_from_landmarks(&prev.precise),
                        source: FaceSource::Tracked,
                        detector: "tracked".into(),
                        track_from: true,
                    });
                    continue;
                }
                let min_face = self.recipe.min_face(img);
                match self.faces.detect_boxes(img, Some(min_face.max(20))).first() {
                    Some(found) => requests.push(Request {
                        input: i,
                        face_box: found.face_box,
                        source: FaceSource::Detected,
                        detector: found.detector.to_string(),
                        track_from: true,
                    }),
                    None if self.recipe.box_mode == BoxMode::DetectOrWholeFrame => {
                        requests.push(Request {
                            input: i,
                            face_box: whole_frame_box(img),
                            source: FaceSource::WholeFrame,
                            detector: "whole_frame".into(),
                            track_from: false,
                        })
                    }
                    None => {
                        p.failed = Some(FrameFailure::NoFace {
                            slot: *slot,
                            min_face,
                        })
                    }
                }
            }
            let boxes: Vec<(&GrayImage, FaceBox)> = requests
                .iter()
                .map(|r| (&inputs[r.input].distinct[step].1, r.face_box))
                .collect();
            let predicted = self.faces.predictor().predict_batch(&boxes);
            for (r, lm) in requests.into_iter().zip(predicted) {
                let (slot, img) = &inputs[r.input].distinct[step];
                let located = Located {
                    landmarks: lm.precise.clone(),
                    source: r.source,
                    detector: r.detector,
                    face_box: Some(r.face_box),
                };
                let p = &mut progress[r.input];
                match self.cut(*slot, img, located) {
                    Ok(c) => {
                        p.results.push(c);
                        p.previous = r.track_from.then_some(lm);
                    }
                    Err(e) => p.failed = Some(e),
                }
            }
        }
        progress
            .into_iter()
            .map(|p| match p.failed {
                Some(e) => Err(e),
                None => Ok(p.results),
            })
            .collect()
    }
}

/// The whole image as the face box (FER2013, CK+48, and the fallback when no face is found):
/// `0, 0, width − 1, height − 1`, inclusive.
pub fn whole_frame_box(img: &GrayImage) -> FaceBox {
    FaceBox::ltrb(0, 0, img.width() as i64 - 1, img.height() as i64 - 1)
}

fn whole_frame(img: &GrayImage, lm: Landmarks) -> Located {
    Located {
        landmarks: lm.precise,
        source: FaceSource::WholeFrame,
        detector: "whole_frame".into(),
        face_box: Some(whole_frame_box(img)),
    }
}

/// Reads the frames of a file or folder the way a cache's inputs were read, for inputs that
/// are not part of a dataset (`train predict`): an image file is a still image in every slot;
/// a folder is a sequence of the images in it sorted by name, of which the recipe's frame
/// positions are taken (consecutive equal indices are one distinct frame).
///
/// A video file (by extension, [`crate::video::is_video_name`]) is a sequence of its frames,
/// of which the recipe's positions are taken ([`video_sample_frames`]).
///
/// Errors: an unreadable folder, a folder without images, an image that does not decode, a
/// video FFmpeg cannot read.
pub fn read_input_frames(input: &Path, recipe: &SampleRecipe) -> Result<SampleFrames> {
    let open = |p: &Path| GrayImage::open(p, crate::GrayConversion::PilLuma);
    let slots = recipe.slots();
    let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !input.is_dir() && crate::video::is_video_name(name) {
        return video_sample_frames(&crate::video::probe(input)?, recipe);
    }
    if !input.is_dir() {
        return Ok(SampleFrames::still(open(input)?, slots));
    }
    let io = |e| FaceError::Io {
        path: input.to_path_buf(),
        cause: e,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(input).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_image_name)
        {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "folder without images",
        )));
    }
    let indices = recipe.frame_indices(files.len());
    let mut distinct = Vec::new();
    for (slot, &i) in indices.iter().enumerate() {
        if slot > 0 && indices[slot - 1] == i {
            continue;
        }
        distinct.push((slot, open(&files[i])?));
    }
    Ok(SampleFrames {
        slots,
        distinct,
        landmarks: None,
        boxes: None,
    })
}

/// The frames of a video the recipe's positions pick (frame index = round(p × (n − 1)) over
/// its `n` frames; consecutive equal indices are one distinct frame), each decoded by seeking.
///
/// Errors: a frame that does not decode.
pub fn video_sample_frames(
    info: &crate::video::VideoInfo,
    recipe: &SampleRecipe,
) -> Result<SampleFrames> {
    let indices = recipe.frame_indices(info.frames());
    let slots: Vec<usize> = (0..indices.len())
        .filter(|&s| s == 0 || indices[s - 1] != indices[s])
        .collect();
    let seeks: Vec<Option<f64>> = slots.iter().map(|&s| info.seek_time(indices[s])).collect();
    let frames = crate::video::decode_frames(&info.path, &seeks, info.width, info.height)?;
    let mut distinct = Vec::new();
    for (slot, rgb) in slots.into_iter().zip(frames) {
        distinct.push((slot, crate::video::rgb_to_gray_image(&rgb)?));
    }
    Ok(SampleFrames {
        slots: recipe.slots(),
        distinct,
        landmarks: None,
        boxes: None,
    })
}

#[cfg(test)]
mod tests;
