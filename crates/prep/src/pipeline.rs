//! One input → one encoded record (or one failure row): decode every frame, find the face (detect,
//! track, whole frame or the dataset's landmarks), 68 landmarks, alignment, face and part crops.
//!
//! [`process_all`] runs inputs in parallel chunks and hands results back in input order, so the
//! cache is the same whatever the thread count and memory is bounded by the chunk size.

use crate::config::{BoxMode, PrepConfig};
use crate::inventory::{reason, FrameSource, InputItem};
use face::{crop_face_and_parts, FaceBox, FaceCrops, FacePipeline, GrayConversion, GrayImage};
use rayon::prelude::*;
use shard::{flags, EncodedRecord, FailureRow, PlaneInfo, SampleMeta};
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

struct FrameResult {
    landmarks: Vec<[f32; 2]>,
    crops: FaceCrops,
    flags: u32,
    detector: String,
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

    fn decode(&self, item: &InputItem, src: &FrameSource) -> Result<GrayImage, FailureRow> {
        match src {
            FrameSource::Pixels {
                width,
                height,
                pixels,
                ..
            } => GrayImage::new(*width, *height, pixels.to_vec())
                .map_err(|e| self.fail(item, "decode", reason::DECODE_ERROR, e.to_string())),
            FrameSource::File { path, .. } => {
                let full = self.root.join(path);
                let bytes = std::fs::read(&full).map_err(|e| {
                    self.fail(item, "read", reason::UNREADABLE, format!("{path}: {e}"))
                })?;
                GrayImage::decode(&bytes, GrayConversion::PilLuma).map_err(|e| {
                    self.fail(item, "decode", reason::DECODE_ERROR, format!("{path}: {e}"))
                })
            }
        }
    }

    fn whole_frame(&self, img: &GrayImage) -> (Vec<[f32; 2]>, u32, String) {
        let lm = self.faces.predictor().predict(img, whole_frame_box(img));
        (lm.precise, flags::WHOLE_FRAME_BOX, "whole_frame".into())
    }

    fn frame(
        &self,
        item: &InputItem,
        slot: usize,
        img: &GrayImage,
        previous: Option<&face::Landmarks>,
    ) -> Result<(FrameResult, Option<face::Landmarks>), FailureRow> {
        let (landmarks, fl, detector, keep) = if let Some(given) = &item.dataset_landmarks {
            let lm = given.get(slot).cloned().unwrap_or_default();
            (
                lm,
                flags::DATASET_LANDMARKS,
                "dataset_landmarks".into(),
                None,
            )
        } else {
            match self.box_mode {
                BoxMode::WholeFrame => {
                    let (lm, f, d) = self.whole_frame(img);
                    (lm, f, d, None)
                }
                BoxMode::Detect | BoxMode::DetectOrWholeFrame => {
                    let tracked = previous
                        .filter(|_| !self.config.detect_every_frame)
                        .map(|p| self.faces.track(img, p));
                    match tracked {
                        Some(t) => (
                            t.landmarks.precise.clone(),
                            flags::TRACKED,
                            t.detector,
                            Some(t.landmarks),
                        ),
                        None => {
                            let min_face = self.min_face(img);
                            let found = self.faces.detect(img, Some(min_face.max(20)));
                            match found.into_iter().next() {
                                Some(f) => (
                                    f.landmarks.precise.clone(),
                                    0,
                                    f.detector,
                                    Some(f.landmarks),
                                ),
                                None if self.box_mode == BoxMode::DetectOrWholeFrame => {
                                    let (lm, f, d) = self.whole_frame(img);
                                    (lm, f, d, None)
                                }
                                None => return Err(self.no_face(item, slot, min_face)),
                            }
                        }
                    }
                }
            }
        };
        Ok((
            self.crop_frame(item, slot, img, landmarks, fl, detector)?,
            keep,
        ))
    }

    /// Smallest face searched in `img`: the configured fraction of its shorter side.
    fn min_face(&self, img: &GrayImage) -> i64 {
        let short = img.width().min(img.height()) as f64;
        (self.config.min_face_fraction * short) as i64
    }

    fn no_face(&self, item: &InputItem, slot: usize, min_face: i64) -> FailureRow {
        self.fail(
            item,
            "detect",
            reason::NO_FACE,
            format!(
                "slot {slot} ({}): no face of at least {min_face} px",
                item.frames[slot].name(&item.input)
            ),
        )
    }

    /// Processes one input. `want_qa` keeps the peak frame and crops for a contact sheet.
    pub fn process(&self, item: &InputItem, want_qa: bool) -> Result<Processed, FailureRow> {
        let (results, last_img, flags_all) = self.frames_of(item)?;
        self.assemble(item, results, last_img, flags_all, want_qa)
    }

    /// Whether [`Processor::process_batch`] batches the landmark predictions: always, except with
    /// the re-initialisation pass (a second prediction from the first one's box).
    pub fn batches(&self) -> bool {
        self.box_mode == BoxMode::WholeFrame || !self.faces.options().reinitialise
    }

    /// Processes several inputs; the results equal [`Processor::process`] on each. The landmarks
    /// of their frames are predicted together in [`face::ShapePredictor::predict_batch`] calls,
    /// which read each tree's leaves once per batch instead of once per face: with whole-frame
    /// boxes all frames in one call, with detection one call per frame step (every input's first
    /// frame, then every input's second, … since a tracked frame needs the previous one's
    /// landmarks).
    pub fn process_batch(
        &self,
        items: &[InputItem],
        want_qa: &[bool],
    ) -> Vec<Result<Processed, FailureRow>> {
        if !self.batches() || items.iter().any(|i| i.dataset_landmarks.is_some()) {
            return items
                .iter()
                .zip(want_qa)
                .map(|(i, q)| self.process(i, *q))
                .collect();
        }
        if self.box_mode != BoxMode::WholeFrame {
            return self.process_batch_detect(items, want_qa);
        }
        let decoded: Vec<_> = items.iter().map(|i| self.decode_distinct(i)).collect();
        let boxes: Vec<(&GrayImage, FaceBox)> = decoded
            .iter()
            .flat_map(|(frames, _)| frames)
            .map(|(_, img)| (img, whole_frame_box(img)))
            .collect();
        let mut predicted = self.faces.predictor().predict_batch(&boxes).into_iter();
        let mut out = Vec::with_capacity(items.len());
        for ((item, (frames, decode_error)), &qa) in items.iter().zip(decoded).zip(want_qa) {
            // Consume this item's predictions even if a crop fails, to stay aligned.
            let lms: Vec<face::Landmarks> =
                frames.iter().filter_map(|_| predicted.next()).collect();
            out.push(self.assemble_whole_frame(item, frames, lms, decode_error, qa));
        }
        out
    }

    /// An input's distinct frames (slot, image; a static image fills all slots but is decoded
    /// once), decoded in slot order up to the first that fails, and that failure (`no_frames`
    /// for an input without frames).
    fn decode_distinct(&self, item: &InputItem) -> (Vec<(usize, GrayImage)>, Option<FailureRow>) {
        if item.frames.is_empty() {
            let e = self.fail(item, "parse", reason::NO_FRAMES, "no frames".into());
            return (Vec::new(), Some(e));
        }
        let mut frames = Vec::new();
        for slot in 0..item.frames.len() {
            if slot > 0 && same_frame(&item.frames[slot - 1], &item.frames[slot]) {
                continue;
            }
            match self.decode(item, &item.frames[slot]) {
                Ok(img) => frames.push((slot, img)),
                Err(e) => return (frames, Some(e)),
            }
        }
        (frames, None)
    }

    /// [`Self::process_batch`] with detection and tracking, in lock step over the inputs' distinct
    /// frames. Each frame goes through the decisions of [`Self::frame`] (track from the previous
    /// landmarks, else detect, else the whole frame or a `no_face` failure), and each input's
    /// first failure in slot order is its result, as in [`Self::process`].
    fn process_batch_detect(
        &self,
        items: &[InputItem],
        want_qa: &[bool],
    ) -> Vec<Result<Processed, FailureRow>> {
        /// One input's progress: its distinct frames (slot, image) up to the first that failed to
        /// decode, that failure, the results so far and the landmarks to track from.
        struct Progress {
            frames: Vec<(usize, GrayImage)>,
            decode_error: Option<FailureRow>,
            results: Vec<FrameResult>,
            previous: Option<face::Landmarks>,
            failed: Option<FailureRow>,
        }
        let mut progress: Vec<Progress> = items
            .iter()
            .map(|item| {
                let (frames, decode_error) = self.decode_distinct(item);
                Progress {
                    frames,
                    decode_error,
                    results: Vec::new(),
                    previous: None,
                    failed: None,
                }
            })
            .collect();
        let steps = progress.iter().map(|p| p.frames.len()).max().unwrap_or(0);
        for step in 0..steps {
            // (input, box, flags, detector, whether later frames track from these landmarks)
            let mut requests: Vec<(usize, FaceBox, u32, String, bool)> = Vec::new();
            for (i, (item, p)) in items.iter().zip(&mut progress).enumerate() {
                if p.failed.is_some() || step >= p.frames.len() {
                    continue;
                }
                let (slot, img) = &p.frames[step];
                let tracked = p
                    .previous
                    .as_ref()
                    .filter(|_| !self.config.detect_every_frame);
                if let Some(prev) = tracked {
                    let b = self.faces.predictor().box_from_landmarks(&prev.precise);
                    requests.push((i, b, flags::TRACKED, "tracked".into(), true));
                    continue;
                }
                let min_face = self.min_face(img);
                match self.faces.detect_boxes(img, Some(min_face.max(20))).first() {
                    Some(found) => {
                        requests.push((i, found.face_box, 0, found.detector.to_string(), true))
                    }
                    None if self.box_mode == BoxMode::DetectOrWholeFrame => {
                        let b = whole_frame_box(img);
                        requests.push((i, b, flags::WHOLE_FRAME_BOX, "whole_frame".into(), false));
                    }
                    None => p.failed = Some(self.no_face(item, *slot, min_face)),
                }
            }
            let boxes: Vec<(&GrayImage, FaceBox)> = requests
                .iter()
                .map(|&(i, b, ..)| (&progress[i].frames[step].1, b))
                .collect();
            let predicted = self.faces.predictor().predict_batch(&boxes);
            for ((i, _, fl, detector, keep), lm) in requests.into_iter().zip(predicted) {
                let p = &mut progress[i];
                let (slot, img) = &p.frames[step];
                match self.crop_frame(&items[i], *slot, img, lm.precise.clone(), fl, detector) {
                    Ok(r) => {
                        p.results.push(r);
                        p.previous = keep.then_some(lm);
                    }
                    Err(e) => p.failed = Some(e),
                }
            }
        }
        items
            .iter()
            .zip(progress)
            .zip(want_qa)
            .map(|((item, p), &qa)| {
                if let Some(e) = p.failed.or(p.decode_error) {
                    return Err(e);
                }
                let distinct = p
                    .frames
                    .into_iter()
                    .zip(p.results)
                    .map(|((slot, img), r)| (slot, img, r))
                    .collect();
                self.assemble_distinct(item, distinct, qa)
            })
            .collect()
    }

    fn assemble_whole_frame(
        &self,
        item: &InputItem,
        frames: Vec<(usize, GrayImage)>,
        lms: Vec<face::Landmarks>,
        decode_error: Option<FailureRow>,
        want_qa: bool,
    ) -> Result<Processed, FailureRow> {
        let mut distinct = Vec::with_capacity(frames.len());
        for ((slot, img), lm) in frames.into_iter().zip(lms) {
            let r = self.crop_frame(
                item,
                slot,
                &img,
                lm.precise,
                flags::WHOLE_FRAME_BOX,
                "whole_frame".into(),
            )?;
            distinct.push((slot, img, r));
        }
        // After the frames decoded before it, as one by one.
        if let Some(e) = decode_error {
            return Err(e);
        }
        self.assemble_distinct(item, distinct, want_qa)
    }

    /// The record of one input from the results of its distinct frames (slot, image, result):
    /// slots that repeat the previous frame copy its result and set `REPEATED_FRAME`.
    fn assemble_distinct(
        &self,
        item: &InputItem,
        distinct: Vec<(usize, GrayImage, FrameResult)>,
        want_qa: bool,
    ) -> Result<Processed, FailureRow> {
        let slots = item.frames.len();
        let mut results: Vec<FrameResult> = Vec::with_capacity(slots);
        let mut flags_all = 0u32;
        let mut last_img = None;
        let mut distinct = distinct.into_iter().peekable();
        for slot in 0..slots {
            match distinct.peek() {
                Some((s, _, _)) if *s == slot => {
                    let Some((_, img, r)) = distinct.next() else {
                        unreachable!("peeked above")
                    };
                    results.push(r);
                    last_img = Some(img);
                }
                _ => {
                    let Some(r) = results.last() else {
                        return Err(self.fail(
                            item,
                            "parse",
                            reason::NO_FRAMES,
                            "no frames".into(),
                        ));
                    };
                    results.push(FrameResult {
                        landmarks: r.landmarks.clone(),
                        crops: r.crops.clone(),
                        flags: r.flags,
                        detector: r.detector.clone(),
                    });
                    flags_all |= flags::REPEATED_FRAME;
                }
            }
        }
        self.assemble(item, results, last_img, flags_all, want_qa)
    }

    fn crop_frame(
        &self,
        item: &InputItem,
        slot: usize,
        img: &GrayImage,
        landmarks: Vec<[f32; 2]>,
        fl: u32,
        detector: String,
    ) -> Result<FrameResult, FailureRow> {
        let crops = crop_face_and_parts(img, &landmarks, &self.config.crops).ok_or_else(|| {
            self.fail(
                item,
                "crop",
                reason::CROP_FAILED,
                format!("slot {slot}: landmarks give no usable crop"),
            )
        })?;
        let fl = fl | if crops.padded { flags::PADDED } else { 0 };
        Ok(FrameResult {
            landmarks,
            crops,
            flags: fl,
            detector,
        })
    }

    /// Decodes and processes the frames of one input, slot by slot.
    fn frames_of(
        &self,
        item: &InputItem,
    ) -> Result<(Vec<FrameResult>, Option<GrayImage>, u32), FailureRow> {
        let slots = item.frames.len();
        if slots == 0 {
            return Err(self.fail(item, "parse", reason::NO_FRAMES, "no frames".into()));
        }
        let mut results: Vec<FrameResult> = Vec::with_capacity(slots);
        let mut previous: Option<face::Landmarks> = None;
        let mut last_img: Option<GrayImage> = None;
        let mut flags_all = 0u32;
        for slot in 0..slots {
            let same = slot > 0 && same_frame(&item.frames[slot - 1], &item.frames[slot]);
            if same {
                let r = &results[slot - 1];
                results.push(FrameResult {
                    landmarks: r.landmarks.clone(),
                    crops: r.crops.clone(),
                    flags: r.flags,
                    detector: r.detector.clone(),
                });
                flags_all |= flags::REPEATED_FRAME;
                continue;
            }
            let img = self.decode(item, &item.frames[slot])?;
            let (r, keep) = self.frame(item, slot, &img, previous.as_ref())?;
            previous = keep;
            last_img = Some(img);
            results.push(r);
        }
        Ok((results, last_img, flags_all))
    }

    /// The record (and QA material) of one input from its per-slot results.
    fn assemble(
        &self,
        item: &InputItem,
        results: Vec<FrameResult>,
        last_img: Option<GrayImage>,
        mut flags_all: u32,
        want_qa: bool,
    ) -> Result<Processed, FailureRow> {
        let slots = results.len();
        if slots == 0 {
            return Err(self.fail(item, "parse", reason::NO_FRAMES, "no frames".into()));
        }
        let detector = results[0].detector.clone();
        for r in &results {
            flags_all |= r.flags;
        }
        let c = &self.config.crops;
        let peak = &results[slots - 1];
        let mut planes = vec![PlaneInfo::new(
            "face",
            c.face.height as u16,
            c.face.width as u16,
        )];
        let mut data: Vec<&[u8]> = vec![peak.crops.face.data()];
        for (k, r) in results.iter().enumerate() {
            for (name, img, size) in [
                ("eyes", &r.crops.eyes, c.eyes),
                ("nose", &r.crops.nose, c.nose),
                ("mouth", &r.crops.mouth, c.mouth),
            ] {
                planes.push(PlaneInfo::new(
                    format!("{name}/{k}"),
                    size.height as u16,
                    size.width as u16,
                ));
                data.push(img.data());
            }
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

/// The whole image as the face box (FER2013, CK+48, and the fallback when no face is found).
fn whole_frame_box(img: &GrayImage) -> FaceBox {
    FaceBox::ltrb(0, 0, img.width() as i64 - 1, img.height() as i64 - 1)
}

fn same_frame(a: &FrameSource, b: &FrameSource) -> bool {
    match (a, b) {
        (FrameSource::File { path: p, .. }, FrameSource::File { path: q, .. }) => p == q,
        (FrameSource::Pixels { pixels: p, .. }, FrameSource::Pixels { pixels: q, .. }) => {
            std::sync::Arc::ptr_eq(p, q)
        }
        _ => false,
    }
}

/// Processes `items` in parallel chunks of `chunk`, calling `sink(index, result)` in input order.
/// `want_qa(index)` says which inputs keep QA material. Stops at the first error `sink` returns.
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
        (true, BoxMode::WholeFrame) => 128,
        (true, _) => 32,
    };
    for (c, part) in items.chunks(chunk).enumerate() {
        let base = c * chunk;
        let out: Vec<Result<Processed, FailureRow>> = part
            .par_chunks(batch)
            .enumerate()
            .flat_map_iter(|(b, group)| {
                let qa: Vec<bool> = (0..group.len())
                    .map(|i| want_qa(base + b * batch + i))
                    .collect();
                processor.process_batch(group, &qa)
            })
            .collect();
        for (i, r) in out.into_iter().enumerate() {
            sink(base + i, r)?;
        }
    }
    Ok(())
}
