//! `train predict` on a video file: every (`--every`-th) frame decoded in order by FFmpeg
//! ([`face::video::FrameStream`]), each frame's face found on its own (detection, 68 landmarks,
//! crops: the cache's recipe), and each frame with a face classified from a sliding window that
//! ends at it: the last `window` processed frames, of which those with a face form the sequence
//! that the recipe's frame positions pick the model's `k` slots from (the last slot is the
//! frame itself, the "peak" the network's face branch sees).
//!
//! Frames are processed in chunks: the chunk's faces in parallel (rayon), then its windows
//! scored in one batch per chunk, then (with an annotated video) its frames drawn and encoded.
//! The rows are in frame order whatever the thread count.

use super::video_rows::{FrameRow, VideoPrediction};
use super::{InputPreprocessor, Predictor};
use crate::Result;
use face::video::{self, FrameStream, VideoInfo};
use face::FrameCrops;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// How a video is predicted.
#[derive(Debug, Clone)]
pub struct VideoPredictOptions {
    /// Keep every N-th frame (default 1: every frame).
    pub every: usize,
    /// Frames per sliding window (default: the model's frame slots, `k`).
    pub window: Option<usize>,
    /// FFmpeg's decoder threads (0 = FFmpeg's choice).
    pub decoder_threads: usize,
    /// Also write the video with the box, landmarks and top class drawn on each frame.
    pub annotate: Option<PathBuf>,
    /// Frames per processing chunk (default 32).
    pub chunk: usize,
}

impl Default for VideoPredictOptions {
    fn default() -> Self {
        VideoPredictOptions {
            every: 1,
            window: None,
            decoder_threads: 0,
            annotate: None,
            chunk: 32,
        }
    }
}

/// One decoded and processed frame, waiting for its window's score.
struct Processed {
    index: usize,
    time: f64,
    rgb: Option<image::RgbImage>,
    crops: std::result::Result<FrameCrops, String>,
}

fn frame_row(p: &Processed) -> FrameRow {
    let (face_box, detector, landmarks, error) = match &p.crops {
        Ok(c) => (
            c.face_box.map(|b| [b.left, b.top, b.right, b.bottom]),
            Some(c.detector.clone()),
            Some(c.landmarks.clone()),
            None,
        ),
        Err(e) => (None, None, None, Some(e.clone())),
    };
    FrameRow {
        frame: p.index + 1,
        timestamp: p.time,
        success: p.crops.is_ok(),
        face_box,
        detector,
        landmarks,
        window: 0,
        probabilities: Vec::new(),
        class: None,
        error,
    }
}

fn crop_chunk(
    inputs: &InputPreprocessor,
    frames: Vec<video::DecodedFrame>,
    keep_rgb: bool,
) -> Vec<Processed> {
    use rayon::prelude::*;
    frames
        .into_par_iter()
        .map(|f| {
            let crops = video::rgb_to_gray_image(&f.rgb)
                .map_err(|e| e.to_string())
                .and_then(|g| inputs.crop_frame(g));
            Processed {
                index: f.index,
                time: f.time,
                rgb: keep_rgb.then_some(f.rgb),
                crops,
            }
        })
        .collect()
}

impl Predictor {
    /// Predicts every (`every`-th) frame of a video; `progress(done, total)` after each chunk.
    /// A video that cannot be opened, or stops decoding early, is a [`VideoPrediction`] with
    /// `error` set (and the rows read before), not an `Err`.
    ///
    /// Errors: libtorch errors; the annotated video cannot be written.
    pub fn predict_video(
        &self,
        path: &Path,
        opts: &VideoPredictOptions,
        progress: &dyn Fn(usize, usize),
    ) -> Result<VideoPrediction> {
        let start = std::time::Instant::now();
        let mut out = VideoPrediction {
            input: path.display().to_string(),
            frames: 0,
            frame_rate: 0.0,
            size: [0, 0],
            rows: Vec::new(),
            error: None,
            seconds: 0.0,
        };
        let info: VideoInfo = match video::probe(path) {
            Ok(i) => i,
            Err(e) => {
                out.error = Some(e.to_string());
                return Ok(out);
            }
        };
        out.frames = info.frames();
        out.frame_rate = info.frame_rate;
        out.size = [info.width, info.height];
        let mut stream = match FrameStream::open(&info, opts.every, opts.decoder_threads) {
            Ok(s) => s,
            Err(e) => {
                out.error = Some(e.to_string());
                return Ok(out);
            }
        };
        let total = stream.expected();
        let recipe = self.inputs.recipe();
        let window = opts.window.unwrap_or(recipe.slots()).max(1);
        let mut writer = match &opts.annotate {
            Some(p) => Some(super::annotate::Annotator::create(
                p,
                &info,
                opts.every,
                self.classes(),
            )?),
            None => None,
        };
        // The last `window` processed frames' crops (None: no face).
        let mut recent: VecDeque<Option<FrameCrops>> = VecDeque::with_capacity(window);
        let chunk = opts.chunk.max(1);
        loop {
            let mut frames = Vec::with_capacity(chunk);
            for r in stream.by_ref().take(chunk) {
                match r {
                    Ok(f) => frames.push(f),
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                }
            }
            if frames.is_empty() {
                break;
            }
            let processed = crop_chunk(&self.inputs, frames, writer.is_some());
            let first_row = out.rows.len();
            let mut windows: Vec<(usize, Vec<FrameCrops>)> = Vec::new();
            for p in &processed {
                if recent.len() == window {
                    recent.pop_front();
                }
                recent.push_back(p.crops.as_ref().ok().cloned());
                let mut row = frame_row(p);
                if p.crops.is_ok() {
                    let faced: Vec<&FrameCrops> = recent.iter().flatten().collect();
                    let slots: Vec<FrameCrops> = recipe
                        .frame_indices(faced.len())
                        .into_iter()
                        .map(|i| faced[i].clone())
                        .collect();
                    row.window = faced.len();
                    windows.push((out.rows.len(), slots));
                }
                out.rows.push(row);
            }
            let (rows, crops): (Vec<usize>, Vec<Vec<FrameCrops>>) = windows.into_iter().unzip();
            let scores = self.score_batch(&crops)?;
            for (r, probs) in rows.into_iter().zip(scores) {
                let best = probs
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| self.classes()[i].clone());
                out.rows[r].class = best;
                out.rows[r].probabilities = probs;
            }
            if let Some(w) = writer.as_mut() {
                for (p, row) in processed.into_iter().zip(&out.rows[first_row..]) {
                    if let Some(rgb) = p.rgb {
                        w.write(rgb, row)?;
                    }
                }
            }
            progress(out.rows.len(), total);
            if out.error.is_some() {
                break;
            }
        }
        if let Some(w) = writer {
            w.finish()?;
        }
        out.seconds = start.elapsed().as_secs_f64();
        Ok(out)
    }
}
