//! One input → one encoded record (or one failure row): decode its frames, turn them into crops
//! with [`face::SampleCropper`] (the path `train predict` shares), encode the record.
//!
//! [`process_all`] runs inputs in parallel chunks and hands results back in input order, so the
//! cache is the same whatever the thread count and memory is bounded by the chunk size.

use crate::config::{BoxMode, PrepConfig};
use crate::inventory::{reason, FrameSource, InputItem};
use face::{
    FaceBox, FaceCrops, FacePipeline, FaceSource, FrameCrops, FrameFailure, GrayConversion,
    GrayImage, SampleCropper, SampleFrames,
};
use rayon::prelude::*;
use shard::{flags, EncodedRecord, FailureRow, SampleMeta};
use std::path::Path;

/// Everything a QA contact sheet needs about one sample (peak frame).
#[derive(Debug, Clone)]
pub struct QaSample {
    /// Sample id.
    pub sample_id: String,
    /// Class index.
    pub label: u16,
    /// The peak frame.
    pub frame: GrayImage,
    /// Its 68 landmarks.
    pub landmarks: Vec<[f32; 2]>,
    /// Its crops.
    pub crops: FaceCrops,
}

/// A processed input.
pub struct Processed {
    /// The record to store.
    pub record: EncodedRecord,
    /// Present when QA material was asked for.
    pub qa: Option<QaSample>,
}

/// Turns inputs into records with one face pipeline and one configuration.
pub struct Processor<'a> {
    /// Detector and predictor.
    pub faces: &'a FacePipeline,
    /// Prep configuration.
    pub config: &'a PrepConfig,
    /// Resolved box mode.
    pub box_mode: BoxMode,
    /// Directory frame paths are relative to.
    pub root: &'a Path,
    /// Dataset name stored in records.
    pub dataset: &'a str,
}

impl Processor<'_> {
    fn fail(&self, item: &InputItem, stage: &str, reason: &str, detail: String) -> FailureRow {
        FailureRow {
            input: item.input.clone(),
            stage: stage.into(),
            reason: reason.into(),
            detail,
        }
    }

    /// The recipe of this configuration and box mode (what the manifest records).
    pub fn recipe(&self) -> face::SampleRecipe {
        self.config.recipe(self.box_mode)
    }

    /// Whether [`Processor::process_batch`] batches the landmark predictions
    /// ([`SampleCropper::batches`]).
    pub fn batches(&self) -> bool {
        SampleCropper::new(self.faces, &self.recipe()).batches()
    }

    /// Processes one input. `want_qa` keeps the peak frame and crops for a contact sheet.
    pub fn process(&self, item: &InputItem, want_qa: bool) -> Result<Processed, FailureRow> {
        let recipe = self.recipe();
        let (frames, decode_error) = self.decode_distinct(item);
        let cropped = SampleCropper::new(self.faces, &recipe).crop(&frames);
        self.finish(item, frames, cropped, decode_error, want_qa)
    }

    /// Processes several inputs; the results equal [`Processor::process`] on each, with the
    /// landmark predictions batched by [`SampleCropper::crop_batch`].
    pub fn process_batch(
        &self,
        items: &[InputItem],
        want_qa: &[bool],
    ) -> Vec<Result<Processed, FailureRow>> {
        let recipe = self.recipe();
        let decoded: Vec<_> = items.iter().map(|i| self.decode_distinct(i)).collect();
        let inputs: Vec<&SampleFrames> = decoded.iter().map(|(f, _)| f).collect();
        let cropped = SampleCropper::new(self.faces, &recipe).crop_batch(&inputs);
        items
            .iter()
            .zip(decoded)
            .zip(cropped)
            .zip(want_qa)
            .map(|(((item, (frames, decode_error)), c), &qa)| {
                self.finish(item, frames, c, decode_error, qa)
            })
            .collect()
    }

    /// An input's distinct frames (a static image fills all slots but is decoded once),
    /// decoded in slot order up to the first that fails, and that failure (`no_frames` for an
    /// input without frames).
    fn decode_distinct(&self, item: &InputItem) -> (SampleFrames, Option<FailureRow>) {
        let mut frames = SampleFrames {
            slots: item.frames.len(),
            distinct: Vec::new(),
            landmarks: item.dataset_landmarks.clone(),
            boxes: item
                .dataset_boxes
                .as_ref()
                .filter(|_| self.config.dataset_boxes)
                .map(|b| {
                    b.iter()
                        .map(|&[l, t, r, bo]| FaceBox::ltrb(l, t, r, bo))
                        .collect()
                }),
        };
        if item.frames.is_empty() {
            let e = self.fail(item, "parse", reason::NO_FRAMES, "no frames".into());
            return (frames, Some(e));
        }
        for (slot, decoded) in decode_slots(self.root, item) {
            match decoded {
                Ok(img) => frames.distinct.push((slot, img)),
                Err((stage, why, detail)) => {
                    return (frames, Some(self.fail(item, stage, why, detail)))
                }
            }
        }
        (frames, None)
    }

    /// The outcome of one input: its first failure in slot order (a frame without crops comes
    /// before the later frame that failed to decode), else its record.
    fn finish(
        &self,
        item: &InputItem,
        mut frames: SampleFrames,
        cropped: Result<Vec<FrameCrops>, FrameFailure>,
        decode_error: Option<FailureRow>,
        want_qa: bool,
    ) -> Result<Processed, FailureRow> {
        let distinct = cropped.map_err(|f| self.frame_failure(item, &f))?;
        if let Some(e) = decode_error {
            return Err(e);
        }
        let slots = frames
            .fill_slots(distinct)
            .ok_or_else(|| self.fail(item, "parse", reason::NO_FRAMES, "no frames".into()))?;
        let last_img = frames.distinct.pop().map(|(_, img)| img);
        self.assemble(item, slots, last_img, want_qa)
    }

    /// The failure row of a frame that gave no crops.
    fn frame_failure(&self, item: &InputItem, f: &FrameFailure) -> FailureRow {
        match *f {
            FrameFailure::NoFace { slot, min_face } => self.fail(
                item,
                "detect",
                reason::NO_FACE,
                format!(
                    "slot {slot} ({}): no face of at least {min_face} px",
                    item.frames[slot].name(&item.input)
                ),
            ),
            FrameFailure::NoUsableCrop { slot } => self.fail(
                item,
                "crop",
                reason::CROP_FAILED,
                format!("slot {slot}: landmarks give no usable crop"),
            ),
        }
    }

    /// The record (and QA material) of one input from its per-slot results.
    fn assemble(
        &self,
        item: &InputItem,
        results: Vec<FrameCrops>,
        last_img: Option<GrayImage>,
        want_qa: bool,
    ) -> Result<Processed, FailureRow> {
        let slots = results.len();
        if slots == 0 {
            return Err(self.fail(item, "parse", reason::NO_FRAMES, "no frames".into()));
        }
        let detector = results[0].detector.clone();
        let flags_all = results.iter().fold(0u32, |acc, r| acc | record_flags(r));
        let c = &self.config.crops;
        let peak = &results[slots - 1];
        let size = |s: face::CropSize| (s.height as u16, s.width as u16);
        let planes = shard::planes::sample_planes(
            size(c.face),
            [size(c.eyes), size(c.nose), size(c.mouth)],
            results.len(),
        );
        // In the order of `planes`: the face, then each slot's parts.
        let mut data: Vec<&[u8]> = vec![peak.crops.face.data()];
        for r in &results {
            data.extend([
                r.crops.eyes.data(),
                r.crops.nose.data(),
                r.crops.mouth.data(),
            ]);
        }
        let meta = SampleMeta {
            sample_id: item.sample_id.clone(),
            dataset: self.dataset.to_string(),
            subject: item.subject.clone(),
            sequence: item.sequence.clone(),
            source: item.frames.iter().map(|f| f.name(&item.input)).collect(),
            frame_indices: item.frames.iter().map(FrameSource::index).collect(),
            label: item.label,
            split: item.split,
            landmarks: results.iter().map(|r| r.landmarks.clone()).collect(),
            detector,
            flags: flags_all,
            planes,
            ext: shard::MetaExt {
                frames: results
                    .iter()
                    .map(|r| shard::FrameInfo {
                        face_box: r
                            .face_box
                            .map(|b| [b.left, b.top, b.right, b.bottom].map(clamp_i32)),
                        detector: r.detector.clone(),
                        flags: record_flags(r),
                    })
                    .collect(),
                votes: item.votes.clone(),
                valence_arousal: item.valence_arousal,
            },
        };
        let record = EncodedRecord::encode(meta, &data, self.config.zstd_level)
            .map_err(|e| self.fail(item, "encode", "encode_error", e.to_string()))?;
        let qa = match (want_qa, last_img) {
            (true, Some(frame)) => Some(QaSample {
                sample_id: item.sample_id.clone(),
                label: item.label,
                frame,
                landmarks: peak.landmarks.clone(),
                crops: peak.crops.clone(),
            }),
            _ => None,
        };
        Ok(Processed { record, qa })
    }
}

/// A box coordinate as stored (dlib's rectangles are `long`; images are far smaller than i32).
fn clamp_i32(v: i64) -> i32 {
    v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Decodes one frame source (files relative to `root`) as every stage reads it: grey by PIL's
/// luma rule. Errors: (stage, reason code, detail).
pub fn decode_source(
    root: &Path,
    src: &FrameSource,
) -> Result<GrayImage, (&'static str, &'static str, String)> {
    match src {
        FrameSource::CsvRow {
            file, offset, len, ..
        } => crate::datasets::pixels::read_csv_pixels(file, *offset, *len)
            .map_err(|e| ("decode", reason::DECODE_ERROR, e)),
        FrameSource::Video {
            path,
            seek,
            width,
            height,
            ..
        } => face::video::decode_frame(&root.join(path), *seek, *width as usize, *height as usize)
            .and_then(|rgb| face::video::rgb_to_gray_image(&rgb))
            .map_err(|e| match &e {
                face::FaceError::Video { fault, .. } => ("decode", fault.code(), e.to_string()),
                _ => ("decode", reason::DECODE_ERROR, e.to_string()),
            }),
        FrameSource::File { path, .. } => {
            let bytes = std::fs::read(root.join(path))
                .map_err(|e| ("read", reason::UNREADABLE, format!("{path}: {e}")))?;
            GrayImage::decode(&bytes, GrayConversion::PilLuma)
                .map_err(|e| ("decode", reason::DECODE_ERROR, format!("{path}: {e}")))
        }
    }
}

/// A decoded frame or why not: (stage, reason code, detail).
type Decoded = Result<GrayImage, (&'static str, &'static str, String)>;

/// An input's distinct frames (slots that repeat the previous slot's frame are left out), in
/// slot order, decoded up to and including the first that fails. The frames of one video clip
/// are decoded by one FFmpeg process ([`face::video::decode_frames`]), which gives the frames
/// that seeking to each one does; when that fails, each frame is decoded alone to name the
/// failing one.
fn decode_slots(root: &Path, item: &InputItem) -> Vec<(usize, Decoded)> {
    let slots: Vec<usize> = (0..item.frames.len())
        .filter(|&s| s == 0 || !same_frame(&item.frames[s - 1], &item.frames[s]))
        .collect();
    // (path, seek, width, height) of each slot's frame when all are frames of videos.
    type VideoFrameRef<'a> = (&'a String, Option<f64>, u32, u32);
    let video: Option<Vec<VideoFrameRef>> = slots
        .iter()
        .map(|&s| match &item.frames[s] {
            FrameSource::Video {
                path,
                seek,
                width,
                height,
                ..
            } => Some((path, *seek, *width, *height)),
            _ => None,
        })
        .collect();
    if let Some(v) = video.filter(|v| v.len() > 1 && v.iter().all(|f| f.0 == v[0].0)) {
        let seeks: Vec<Option<f64>> = v.iter().map(|f| f.1).collect();
        let (w, h) = (v[0].2 as usize, v[0].3 as usize);
        if let Ok(frames) = face::video::decode_frames(&root.join(v[0].0), &seeks, w, h) {
            let grey: Option<Vec<GrayImage>> = frames
                .iter()
                .map(|f| face::video::rgb_to_gray_image(f).ok())
                .collect();
            if let Some(grey) = grey {
                return slots.into_iter().zip(grey.into_iter().map(Ok)).collect();
            }
        }
    }
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        let d = decode_source(root, &item.frames[slot]);
        let failed = d.is_err();
        out.push((slot, d));
        if failed {
            break;
        }
    }
    out
}

/// The duplicate fingerprints of an input ([`crate::fingerprint::fingerprint`] of its distinct
/// decoded frames); `None` when a frame does not decode (the build reports that input's failure).
///
/// An input with dataset boxes is the face in its box, not the photo: ExpW lists several faces
/// of one photo, and fingerprinting the whole photo made them exact duplicates of each other
/// (with different labels, "conflicting"). So the exact hash covers each frame cut to its slot's
/// box, and the difference hash the peak frame's box widened to twice its size: a tight face box
/// box-averaged to 9×8 looks alike for different people (different synthetic faces came out
/// 0–2 bits apart), while the face with its surroundings tells two photos apart.
pub fn input_fingerprint(root: &Path, item: &InputItem) -> Option<crate::fingerprint::Fingerprint> {
    use crate::dedup::{cut_box, dhash, widened};
    let mut distinct = Vec::new();
    let mut context = None;
    for (slot, decoded) in decode_slots(root, item) {
        let img = decoded.ok()?;
        match item.dataset_boxes.as_ref().and_then(|b| b.get(slot)) {
            Some(b) => {
                context = Some(cut_box(&img, widened(*b, 2.0)));
                distinct.push((slot, cut_box(&img, *b)));
            }
            None => {
                context = None;
                distinct.push((slot, img));
            }
        }
    }
    let mut f = crate::fingerprint::fingerprint(&distinct)?;
    if let Some(c) = context {
        f.dhash = dhash(&c);
    }
    Some(f)
}

/// The record flags of one slot's result.
fn record_flags(r: &FrameCrops) -> u32 {
    let source = match r.source {
        FaceSource::Detected => 0,
        FaceSource::Tracked => flags::TRACKED,
        FaceSource::WholeFrame => flags::WHOLE_FRAME_BOX,
        FaceSource::DatasetLandmarks => flags::DATASET_LANDMARKS,
        FaceSource::DatasetBox => flags::DATASET_BOX,
    };
    let padded = if r.crops.padded { flags::PADDED } else { 0 };
    let repeated = if r.repeated { flags::REPEATED_FRAME } else { 0 };
    source | padded | repeated
}

fn same_frame(a: &FrameSource, b: &FrameSource) -> bool {
    match (a, b) {
        (FrameSource::File { path: p, .. }, FrameSource::File { path: q, .. }) => p == q,
        (
            FrameSource::Video {
                path: p, index: i, ..
            },
            FrameSource::Video {
                path: q, index: j, ..
            },
        ) => p == q && i == j,
        (
            FrameSource::CsvRow {
                file: f, offset: a, ..
            },
            FrameSource::CsvRow {
                file: g, offset: b, ..
            },
        ) => a == b && std::sync::Arc::ptr_eq(f, g),
        _ => false,
    }
}

/// Processes `items` in parallel chunks of `chunk`, calling `sink(index, result)` in input order.
/// `want_qa(index)` says which inputs keep QA material. Stops at the first error `sink` returns.
///
/// The chunks are computed on a helper thread (which drives the rayon pool) while this thread
/// sinks the previous chunk, so the serial part of a build (shard writes, hashing, the streamed
/// tables) overlaps the face work instead of leaving the pool idle between chunks. One chunk is
/// computed ahead at most, which bounds the memory held to two chunks of results. The helper
/// thread uses rayon's global pool (the one `prep build -j` sizes); call this from outside that
/// pool's workers, since the calling thread blocks while the helper's work runs there.
pub fn process_all<E>(
    processor: &Processor<'_>,
    items: &[InputItem],
    chunk: usize,
    want_qa: &(dyn Fn(usize) -> bool + Sync),
    mut sink: impl FnMut(usize, Result<Processed, FailureRow>) -> Result<(), E>,
) -> Result<(), E> {
    let chunk = chunk.max(1);
    // Batches share landmark passes: 128 whole-frame inputs (48×48 rows), 32 inputs with
    // detection (full-size frames, all decoded at once); without batching one by one.
    let batch = match (processor.batches(), processor.box_mode) {
        (false, _) => 1,
        (true, BoxMode::WholeFrame) => 256,
        (true, _) => 32,
    };
    let compute = |c: usize, part: &[InputItem]| -> Vec<Result<Processed, FailureRow>> {
        let base = c * chunk;
        part.par_chunks(batch)
            .enumerate()
            .flat_map_iter(|(b, group)| {
                let qa: Vec<bool> = (0..group.len())
                    .map(|i| want_qa(base + b * batch + i))
                    .collect();
                processor.process_batch(group, &qa)
            })
            .collect()
    };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(0);
        let worker = scope.spawn(move || {
            for (c, part) in items.chunks(chunk).enumerate() {
                // A closed channel means the sink failed: stop computing.
                if tx.send((c, compute(c, part))).is_err() {
                    break;
                }
            }
        });
        let mut result = Ok(());
        for (c, out) in rx.iter() {
            let base = c * chunk;
            result = out
                .into_iter()
                .enumerate()
                .try_for_each(|(i, r)| sink(base + i, r));
            if result.is_err() {
                break;
            }
        }
        drop(rx);
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
        result
    })
}
