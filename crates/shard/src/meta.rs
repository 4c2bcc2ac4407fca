//! Record metadata, schema 1 (FORMAT.md section 5).

use serde::{Deserialize, Serialize};

/// Which part of the protocol a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Split {
    /// Training data (FER2013 `Training`).
    Train,
    /// Model-selection data (FER2013 `PublicTest`).
    Validation,
    /// Held-out test data (FER2013 `PrivateTest`).
    Test,
    /// Member of cross-validation fold `k` (CK+, Oulu-CASIA, class-folder datasets).
    Fold(u16),
}

impl Split {
    /// Short name used in tables and counts: `train`, `validation`, `test` or `fold`.
    pub fn kind(&self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
            Split::Fold(_) => "fold",
        }
    }

    /// The fold number, or `None` for fixed splits.
    pub fn fold(&self) -> Option<u16> {
        match self {
            Split::Fold(k) => Some(*k),
            _ => None,
        }
    }

    /// The split from its [`Split::kind`] and fold number (as `samples.parquet` stores them);
    /// `None` for an unknown kind or a fold kind without a fold number.
    pub fn from_kind(kind: &str, fold: Option<u16>) -> Option<Split> {
        match (kind, fold) {
            ("train", _) => Some(Split::Train),
            ("validation", _) => Some(Split::Validation),
            ("test", _) => Some(Split::Test),
            ("fold", Some(k)) => Some(Split::Fold(k)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Split::Fold(k) => write!(f, "fold{k}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Name and shape of one u8 plane stored after the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneInfo {
    /// `face`, `eyes/0`, `nose/2`, …
    pub name: String,
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

impl PlaneInfo {
    /// Convenience constructor.
    pub fn new(name: impl Into<String>, height: u16, width: u16) -> Self {
        PlaneInfo {
            name: name.into(),
            height,
            width,
        }
    }

    /// Number of bytes of the plane.
    pub fn len(&self) -> usize {
        self.height as usize * self.width as usize
    }

    /// True when the plane has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Flag bits of [`SampleMeta::flags`].
pub mod flags {
    /// The whole image was used as the face box (FER2013's pre-cropped 48×48 faces).
    pub const WHOLE_FRAME_BOX: u32 = 1 << 0;
    /// The face box was tracked from the previous frame's landmarks instead of detected.
    pub const TRACKED: u32 = 1 << 1;
    /// A static image fills several frame slots.
    pub const REPEATED_FRAME: u32 = 1 << 2;
    /// Landmarks shipped with the dataset were used instead of ours.
    pub const DATASET_LANDMARKS: u32 = 1 << 3;
    /// A crop reached outside the image and was padded.
    pub const PADDED: u32 = 1 << 4;
    /// The landmarks were predicted in a face box shipped with the dataset (format 1.1).
    pub const DATASET_BOX: u32 = 1 << 5;
    /// All bits defined (1.0: bits 0–4; 1.1 adds bit 5).
    pub const KNOWN: u32 = 0x3f;
}

/// What was found on one frame slot (format 1.1, FORMAT.md section 5.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameInfo {
    /// The face box the landmark predictor ran on, (left, top, right, bottom) inclusive integer
    /// source-image pixels as dlib rectangles are; `None` when the dataset's own landmarks were
    /// used (no box).
    pub face_box: Option<[i32; 4]>,
    /// What found the face on this slot (`haar_frontalface_default`, `tracked`, `whole_frame`,
    /// `dataset_landmarks`, …).
    pub detector: String,
    /// The [`flags`] bits of this slot alone ([`SampleMeta::flags`] is their union).
    pub flags: u32,
}

/// Metadata appended in format 1.1 after [`SampleMeta`]'s twelve fields, inside the same
/// `meta_len` region, so that 1.0 readers (which ignore the rest of the region) still read 1.1
/// records. Records written by 1.0 have none: it reads as empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaExt {
    /// Per frame slot, the face box, detector and flags (empty in 1.0 records).
    pub frames: Vec<FrameInfo>,
    /// Annotator vote counts when the dataset has them (FER+: 10 counts in FERPlus's column
    /// order neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown,
    /// not-a-face); empty otherwise.
    pub votes: Vec<u16>,
    /// Continuous affect annotated with the dataset (AffectNet: valence, arousal in [−1, 1]).
    pub valence_arousal: Option<[f32; 2]>,
}

impl MetaExt {
    /// True when nothing is set (what a 1.0 record reads as).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.votes.is_empty() && self.valence_arousal.is_none()
    }
}

/// Everything known about one sample, stored postcard-encoded at the start of its record.
///
/// Field order is part of the format (FORMAT.md section 5): append new fields only with a minor
/// bump and only where old readers can ignore them, otherwise bump the major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMeta {
    /// Unique within the cache and stable across runs.
    pub sample_id: String,
    /// Dataset name.
    pub dataset: String,
    /// Subject id; empty when the dataset has none.
    pub subject: String,
    /// Sequence id for video datasets.
    pub sequence: Option<String>,
    /// Input files relative to the dataset root, one per frame slot.
    pub source: Vec<String>,
    /// Frame number of each frame slot within its sequence.
    pub frame_indices: Vec<u32>,
    /// Class index into the manifest's `class_names`.
    pub label: u16,
    /// Protocol membership.
    pub split: Split,
    /// Per frame slot, 68 (x, y) landmarks in source-image pixels.
    pub landmarks: Vec<Vec<[f32; 2]>>,
    /// How the face box was found.
    pub detector: String,
    /// Bits from [`flags`].
    pub flags: u32,
    /// The planes that follow the metadata, in order.
    pub planes: Vec<PlaneInfo>,
    /// Fields appended in format 1.1 (encoded after the twelve above; not part of the serde
    /// derive, so that the first twelve keep their 1.0 encoding).
    #[serde(skip)]
    pub ext: MetaExt,
}

impl SampleMeta {
    /// Total bytes of all planes.
    pub fn planes_len(&self) -> usize {
        self.planes.iter().map(PlaneInfo::len).sum()
    }
}
