//! What a dataset parser produces: the inputs to process, and the inputs it already rejected.
//!
//! Every input a parser sees ends in exactly one of three places: [`Inventory::items`] (to be
//! processed into samples), or [`Inventory::rejected`] as a row that is either *excluded* by the
//! protocol (an unlabelled CK+ sequence, a FER+ row whose majority is "unknown") or *failed* (a
//! malformed row, an unreadable label file). The summary adds them up: seen = cached + excluded +
//! failed.

use shard::{FailureRow, Split};
use std::path::PathBuf;
use std::sync::Arc;

/// The stage name of rows excluded by the protocol (not errors; not counted in failure rates).
pub const STAGE_EXCLUDE: &str = "exclude";

/// Reason codes of failure and exclusion rows (README lists them with their meaning).
pub mod reason {
    /// A FER2013 csv row that does not have the expected fields.
    pub const BAD_ROW: &str = "bad_row";
    /// A pixel list with the wrong count or values outside 0–255.
    pub const BAD_PIXELS: &str = "bad_pixels";
    /// A label that is missing, not a number, or outside the dataset's classes.
    pub const BAD_LABEL: &str = "bad_label";
    /// A FER2013 Usage value other than Training / PublicTest / PrivateTest.
    pub const BAD_USAGE: &str = "bad_usage";
    /// A file that exists but cannot be read (permissions, I/O error, not UTF-8 where text is needed).
    pub const UNREADABLE: &str = "unreadable";
    /// An image that cannot be decoded (truncated, zero bytes, unsupported, too large).
    pub const DECODE_ERROR: &str = "decode_error";
    /// No face found by either cascade.
    pub const NO_FACE: &str = "no_face";
    /// Landmarks that do not give usable crops (degenerate geometry).
    pub const CROP_FAILED: &str = "crop_failed";
    /// A sequence directory without frames.
    pub const NO_FRAMES: &str = "no_frames";
    /// CK+: a labelled sequence whose Emotion file does not parse.
    pub const BAD_EMOTION: &str = "bad_emotion";
    /// CK+: a Landmarks file that is missing or does not hold 68 points.
    pub const BAD_LANDMARKS: &str = "bad_landmarks";
    /// A file or folder name that does not follow the dataset's convention.
    pub const BAD_NAME: &str = "bad_name";
    /// A class folder or name code that is not one of the dataset's classes.
    pub const UNKNOWN_CLASS: &str = "unknown_class";
    /// A class-folder input that the `--subjects` csv does not list.
    pub const NO_SUBJECT: &str = "no_subject";
    /// A label that disagrees with the authors' fold list.
    pub const LABEL_MISMATCH: &str = "label_mismatch";
    /// A sequence whose subject the authors' fold list does not place in any fold.
    pub const NOT_IN_FOLDS: &str = "not_in_folds";
    /// Excluded: a CK+ sequence without an Emotion file (the dataset labels only some sequences).
    pub const UNLABELLED: &str = "unlabelled";
    /// Excluded: the neutral class when the protocol leaves it out.
    pub const NEUTRAL_EXCLUDED: &str = "neutral_excluded";
    /// Excluded: a FER+ row whose majority vote is "unknown" or "not a face", or a tie.
    pub const FERPLUS_NO_MAJORITY: &str = "ferplus_no_majority";
    /// Excluded: AffectNet expression 8 (None).
    pub const AFFECTNET_NONE: &str = "affectnet_none";
    /// Excluded: AffectNet expression 9 (Uncertain).
    pub const AFFECTNET_UNCERTAIN: &str = "affectnet_uncertain";
    /// Excluded: AffectNet expression 10 (No-Face).
    pub const AFFECTNET_NO_FACE: &str = "affectnet_no_face";
    /// Excluded: contempt under a 7-class protocol (AffectNet `affectnet_classes = 7`).
    pub const CONTEMPT_EXCLUDED: &str = "contempt_excluded";
    /// A face box file of the dataset that does not parse (RAF-DB's `*_boundingbox.txt`).
    pub const BAD_BOX: &str = "bad_box";
    /// Excluded: a file that is not an image (README, thumbs.db) in an image folder.
    pub const NOT_AN_IMAGE: &str = "not_an_image";
    /// Excluded: a file derived from a dataset image by whoever published a copy
    /// (`Training_7.jpg3.jpg` in FER2013's image-folder releases); not part of the dataset.
    pub const AUGMENTED_COPY: &str = "augmented_copy";
    /// An image whose name gives another split than the folder it is in (FER2013 folders).
    pub const SPLIT_MISMATCH: &str = "split_mismatch";
    /// A second image of the same name in one release (the first is kept).
    pub const DUPLICATE_NAME: &str = "duplicate_name";
    /// A folder at the top of a dataset root that is not part of the layout (its files are not
    /// read).
    pub const UNKNOWN_FOLDER: &str = "unknown_folder";
    /// A video file that FFmpeg cannot read (corrupt, empty, cut before its index).
    pub const NOT_A_VIDEO: &str = "not_a_video";
    /// A video file without a video stream (sound only).
    pub const NO_VIDEO_STREAM: &str = "no_video_stream";
    /// A video file with fewer frames than its container lists.
    pub const TRUNCATED: &str = "truncated";
    /// Excluded: a file that is not a video (by extension) where clips are.
    pub const NOT_A_VIDEO_FILE: &str = "not_a_video_file";
    /// Excluded (`dedup = "drop-from-train"`): a training-side copy of an input in another split.
    pub const DUPLICATE_ACROSS_SPLITS: &str = "duplicate_across_splits";
    /// Excluded (`dedup = "drop-conflicting"`): a member of a duplicate group with different labels.
    pub const CONFLICTING_DUPLICATE: &str = "conflicting_duplicate";
}

/// One frame of an input.
#[derive(Debug, Clone)]
pub enum FrameSource {
    /// An image file, path relative to the dataset root, with its frame number in its sequence.
    File {
        /// Relative to the dataset root.
        path: String,
        /// Its frame number in its sequence (0 for a still image).
        index: u32,
    },
    /// Grey pixels in a row of a FER2013-style csv, read again (and parsed as at inventory time)
    /// when the frame is needed: the inventory holds where the row is, not its 2,304 pixels, so a
    /// build's memory does not grow by the csv's size.
    CsvRow {
        /// The csv and its layout.
        file: Arc<CsvPixels>,
        /// Byte offset of the row's line in the file.
        offset: u64,
        /// Bytes of the line (with its line end).
        len: u32,
        /// Frame number (0: a still image).
        index: u32,
    },
    /// A frame of a video file (DFEW, AFEW), found by seeking ([`face::video::decode_frame`]).
    Video {
        /// The video, relative to the dataset root.
        path: String,
        /// The frame's index among the video's frames.
        index: u32,
        /// Where FFmpeg seeks to for it ([`face::video::VideoInfo::seek_time`]; `None`: frame 0).
        seek: Option<f64>,
        /// Frame size, from the probe.
        width: u32,
        /// Frame height.
        height: u32,
    },
}

/// A csv whose rows hold grey images as a space-separated pixel column (FER2013, FER+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvPixels {
    /// The csv file.
    pub path: std::path::PathBuf,
    /// Column of the pixels.
    pub column: usize,
    /// Columns of the header (a row with another count is malformed).
    pub columns: usize,
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
}

impl FrameSource {
    /// The name stored in the record's `source` list.
    pub fn name(&self, input: &str) -> String {
        match self {
            FrameSource::File { path, .. } | FrameSource::Video { path, .. } => path.clone(),
            FrameSource::CsvRow { .. } => input.to_string(),
        }
    }

    /// Frame number within the sequence.
    pub fn index(&self) -> u32 {
        match self {
            FrameSource::File { index, .. }
            | FrameSource::CsvRow { index, .. }
            | FrameSource::Video { index, .. } => *index,
        }
    }
}

/// One input that should become a sample.
#[derive(Debug, Clone)]
pub struct InputItem {
    /// Unique, stable id (`S010/002`, `fer2013/r000001`, `anger/S010_004`); items are processed and
    /// stored in the order of these ids, which makes caches independent of thread count.
    pub sample_id: String,
    /// Subject id ("" when the dataset has none, as in FER2013).
    pub subject: String,
    /// Sequence id within the subject, for sequence datasets.
    pub sequence: Option<String>,
    /// Class index into [`Inventory::class_names`].
    pub label: u16,
    /// Train/validation/test or fold.
    pub split: Split,
    /// One frame per slot (a static image is repeated in every slot).
    pub frames: Vec<FrameSource>,
    /// Landmarks shipped with the dataset, one set per slot, when configured.
    pub dataset_landmarks: Option<Vec<Vec<[f32; 2]>>>,
    /// Face boxes shipped with the dataset, (left, top, right, bottom) inclusive, one per slot
    /// (RAF-DB, ExpW, AffectNet); used unless the config turns `dataset_boxes` off.
    pub dataset_boxes: Option<Vec<[i64; 4]>>,
    /// The name used in failure rows (a file path or `file.csv:row`).
    pub input: String,
    /// Annotator vote counts stored with the sample (FER+: FERPlus's 10 columns); empty when the
    /// dataset has none.
    pub votes: Vec<u16>,
    /// Valence and arousal annotated with the input (AffectNet), stored with the sample.
    pub valence_arousal: Option<[f32; 2]>,
    /// The duplicate fingerprints, when the parser already had the decoded frames in hand (FER2013
    /// rows): what [`crate::pipeline::input_fingerprint`] would compute, without reading the
    /// input a second time. `None`: computed by the duplicates stage.
    pub fingerprint: Option<crate::fingerprint::Fingerprint>,
}

impl InputItem {
    /// An input of `frames` (one per slot), named `input` in failure rows, with no subject,
    /// sequence or dataset annotations: what every dataset starts from and adds to
    /// (`InputItem { subject, ..InputItem::new(…) }`).
    pub fn new(
        sample_id: String,
        label: u16,
        split: Split,
        frames: Vec<FrameSource>,
        input: String,
    ) -> InputItem {
        InputItem {
            sample_id,
            subject: String::new(),
            sequence: None,
            label,
            split,
            frames,
            dataset_landmarks: None,
            dataset_boxes: None,
            input,
            votes: Vec::new(),
            valence_arousal: None,
            fingerprint: None,
        }
    }

    /// An input whose one image file (`path`, relative to the dataset root; also its failure-row
    /// name) fills every one of `slots` frame slots: the still-image datasets' common case.
    pub fn still_file(
        sample_id: String,
        label: u16,
        split: Split,
        path: String,
        slots: usize,
    ) -> InputItem {
        let frame = FrameSource::File {
            path: path.clone(),
            index: 0,
        };
        InputItem::new(sample_id, label, split, vec![frame; slots], path)
    }

    /// Sequence `sequence` of `subject` (CK+, Oulu-CASIA, grouped CK+48 frames): its `frames` at
    /// the recipe's slot positions, in the training split until the folds are assigned.
    pub fn sequence(
        sample_id: String,
        subject: String,
        sequence: String,
        label: u16,
        frames: Vec<FrameSource>,
        input: String,
    ) -> InputItem {
        InputItem {
            subject,
            sequence: Some(sequence),
            ..InputItem::new(sample_id, label, Split::Train, frames, input)
        }
    }
}

/// A parsed dataset.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Dataset name stored in every record (`ckplus`, `fer2013`, …).
    pub dataset: String,
    /// Directory that frame paths are relative to.
    pub root: PathBuf,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// Inputs to process, sorted by sample id.
    pub items: Vec<InputItem>,
    /// Inputs excluded or failed while parsing.
    pub rejected: Vec<FailureRow>,
    /// Inputs seen by the parser (= items + rejected).
    pub seen: u64,
    /// Notes for the manifest (fold-list coverage, FER+ counts, …).
    pub notes: serde_json::Map<String, serde_json::Value>,
}

impl Inventory {
    /// An empty inventory of `dataset` rooted at `root`.
    pub fn new(dataset: &str, root: PathBuf, class_names: &[&str]) -> Inventory {
        Inventory {
            dataset: dataset.into(),
            root,
            class_names: class_names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Records a rejected input.
    pub fn reject(
        &mut self,
        input: impl Into<String>,
        stage: &str,
        reason: &str,
        detail: impl Into<String>,
    ) {
        self.seen += 1;
        self.rejected.push(FailureRow {
            input: input.into(),
            stage: stage.into(),
            reason: reason.into(),
            detail: detail.into(),
        });
    }

    /// Records an excluded input (stage [`STAGE_EXCLUDE`]).
    pub fn exclude(&mut self, input: impl Into<String>, reason: &str, detail: impl Into<String>) {
        self.reject(input, STAGE_EXCLUDE, reason, detail);
    }

    /// Adds an input to process.
    pub fn push(&mut self, item: InputItem) {
        self.seen += 1;
        self.items.push(item);
    }

    /// Sorts items by sample id and rejected rows by input; fails on a duplicated sample id.
    pub fn finish(&mut self) -> std::result::Result<(), String> {
        self.items.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
        if let Some(w) = self
            .items
            .windows(2)
            .find(|w| w[0].sample_id == w[1].sample_id)
        {
            return Err(format!(
                "two inputs map to sample id {:?}: {} and {}",
                w[0].sample_id, w[0].input, w[1].input
            ));
        }
        sort_failures(&mut self.rejected);
        Ok(())
    }

    /// Keeps the items of part `i` of `n` (1-based): every n-th item in sample-id order, so each
    /// part gets a deterministic, balanced share. Rejected rows stay with part 1.
    pub fn keep_part(&mut self, i: usize, n: usize) {
        let items = std::mem::take(&mut self.items);
        self.items = items
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == i - 1)
            .map(|(_, it)| it)
            .collect();
        if i != 1 {
            self.rejected.clear();
        }
    }
}

/// The canonical order of failure rows: by input, then stage and reason.
pub fn sort_failures(rows: &mut [FailureRow]) {
    rows.sort_by(|a, b| (&a.input, &a.stage, &a.reason).cmp(&(&b.input, &b.stage, &b.reason)));
}

pub use face::is_image_name;
