//! `prep build` as a library call: dataset → inventory → folds → cache key → (cache hit, or)
//! parallel processing into a shard cache with its tables, QA sheets and summary.
//!
//! * `key` — the cache key: what it is computed from, the source fingerprint, model hashes.
//! * `parse` — the dataset parsers and fold assignment behind one call.
//! * `summary` — the counts of a build and the failure policy that judges them.
//! * `merge` — merging the parts of a `--part i/N` build.

use crate::config::{BoxMode, PrepConfig};
use crate::datasets::{ckplus, fer2013, folders, oulu, walk};
use crate::folds::{normalise_oulu, FoldList};
use crate::inventory::{sort_failures, Inventory, STAGE_EXCLUDE};
use crate::pipeline::{process_all, Processor, QaSample};
use crate::qa;
use crate::splits::{apply_fold_list, subject_kfold, FoldCoverage};
use crate::{PrepError, Result};
use serde::{Deserialize, Serialize};
use shard::votes::FerPlusMode;
use shard::{CacheKey, CacheWriter, CacheWriterOptions, FailureRow, Manifest, SourceFingerprinter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod key;
mod merge;
mod parse;
mod summary;

pub use key::{cache_dir_for, compute_key};
pub use merge::merge_parts;
pub use parse::inventory;
pub use summary::{stored_summary, Summary};

/// The dataset layouts `prep build` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// `fer2013.csv` (emotion, pixels, Usage).
    Fer2013,
    /// `fer2013.csv` with FER+ majority labels from `fer2013new.csv` beside it.
    Ferplus,
    /// FER2013's image-folder releases: `train/`, `test/` (and `validation/`), each of
    /// `<class>/<Usage>_<n>.jpg`.
    Fer2013Folders,
    /// The CK+ tree (`cohn-kanade-images/`, `Emotion/`, `Landmarks/`).
    Ckplus,
    /// The Oulu-CASIA tree (`OriginalImg/…`).
    Oulu,
    /// CK+48: `<class>/Sxxx_yyy_nnnnnnnn.png`, frames grouped into sequences.
    Ckplus48,
    /// JAFFE: `KA.AN1.39.tiff`, class and subject from the name.
    Jaffe,
    /// Any `<class>/<image>` folder tree (every image its own subject).
    Folders,
    /// RAF-DB basic: `EmoLabel/list_patition_label.txt` + `Image/` + `Annotation/`, or
    /// `train|test/<1..7>/`.
    Rafdb,
    /// ExpW: `label/label.lst` (one face per line, with its box) + `image/origin/`.
    Expw,
    /// AffectNet's manually annotated part: `Manually_Annotated_file_lists/{training,validation}.csv`
    /// + `Manually_Annotated_Images/`.
    Affectnet,
    /// DFEW: `Clip/original/<id>.mp4` + `EmoLabel_DataSplit/{train,test}(single-labeled)/set_<k>.csv`
    /// (the official 5 folds).
    Dfew,
    /// AFEW: `Train|Val/<Class>/<clip>.avi`.
    Afew,
}

impl DatasetKind {
    /// The cache name and `--dataset` spelling.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Fer2013 => "fer2013",
            DatasetKind::Ferplus => "ferplus",
            DatasetKind::Fer2013Folders => "fer2013-folders",
            DatasetKind::Ckplus => "ckplus",
            DatasetKind::Oulu => "oulu",
            DatasetKind::Ckplus48 => "ckplus48",
            DatasetKind::Jaffe => "jaffe",
            DatasetKind::Folders => "folders",
            DatasetKind::Rafdb => "rafdb",
            DatasetKind::Expw => "expw",
            DatasetKind::Affectnet => "affectnet",
            DatasetKind::Dfew => "dfew",
            DatasetKind::Afew => "afew",
        }
    }

    /// Parses the `--dataset` spelling.
    pub fn parse(s: &str) -> Option<DatasetKind> {
        [
            DatasetKind::Fer2013,
            DatasetKind::Ferplus,
            DatasetKind::Fer2013Folders,
            DatasetKind::Ckplus,
            DatasetKind::Oulu,
            DatasetKind::Ckplus48,
            DatasetKind::Jaffe,
            DatasetKind::Folders,
            DatasetKind::Rafdb,
            DatasetKind::Expw,
            DatasetKind::Affectnet,
            DatasetKind::Dfew,
            DatasetKind::Afew,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }

    /// The box mode used when the configuration does not set one: the whole image for datasets
    /// that are already 48×48 face crops, detection otherwise.
    pub fn default_box_mode(self) -> BoxMode {
        match self {
            DatasetKind::Fer2013
            | DatasetKind::Ferplus
            | DatasetKind::Fer2013Folders
            | DatasetKind::Ckplus48 => BoxMode::WholeFrame,
            // Dataset boxes where given; the aligned 100×100 faces are whole-frame crops.
            DatasetKind::Rafdb => BoxMode::DetectOrWholeFrame,
            _ => BoxMode::Detect,
        }
    }

    /// The version of this dataset's reader when it is past its first, as the cache key records
    /// it: a cache the old reader built from the same files must not be reused. 2 for
    /// `fer2013-folders`: splits from the names' Usage, every split folder read, augmented
    /// copies left out (version 1 took the split from the folder and cached the copies).
    pub fn reader_version(self) -> Option<u32> {
        match self {
            DatasetKind::Fer2013Folders => Some(2),
            _ => None,
        }
    }

    /// Whether the inputs are video files (their frames are decoded by FFmpeg, whose version and
    /// decoding rule the cache key records).
    pub fn is_video(self) -> bool {
        matches!(self, DatasetKind::Dfew | DatasetKind::Afew)
    }

    /// The authors' fold list for this dataset, relative to the project root.
    pub fn default_fold_list(self) -> Option<&'static str> {
        match self {
            DatasetKind::Ckplus => Some("manifests/folds/CK+_Ten_group.txt"),
            DatasetKind::Oulu => Some("manifests/folds/Oulu_CASIA_Ten_group.txt"),
            _ => None,
        }
    }
}

pub use face::ModelFiles;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Dataset layout.
    pub kind: DatasetKind,
    /// Dataset root (or the csv file for FER2013 / FER+).
    pub source: PathBuf,
    /// Directory holding caches.
    pub cache_dir: PathBuf,
    /// Cache name (default: the dataset name).
    pub name: Option<String>,
    /// Prep configuration.
    pub config: PrepConfig,
    /// Authors' fold list (CK+, Oulu); `None` = seeded subject k-fold.
    pub fold_list: Option<PathBuf>,
    /// FER+ `fer2013new.csv` (default: beside the csv).
    pub ferplus_labels: Option<PathBuf>,
    /// How FER+ votes become labels (default `majority`, FERPlus's default); part of the key of
    /// FER+ caches only.
    pub ferplus_mode: FerPlusMode,
    /// Build only part `i` of `n` (1-based).
    pub part: Option<(usize, usize)>,
    /// Model files.
    pub models: ModelFiles,
    /// Hash every source file even when size and mtime are unchanged.
    pub force_rehash: bool,
    /// Number of QA samples drawn (default 24; 0 = none).
    pub qa_samples: usize,
    /// Tool name and version for the manifest.
    pub tool: String,
    /// Git revision for the manifest.
    pub git_revision: Option<String>,
    /// Class folders: a csv mapping files to subjects (`--subjects`; its content is part of the
    /// cache key). Default none.
    pub subjects_file: Option<PathBuf>,
    /// When the build counts as failed and leaves no cache (default: only when nothing was
    /// cached).
    pub failure_policy: FailurePolicy,
}

/// When a build is a failure: then it writes no manifest (so no cache that a reference, `gc`
/// or `train` could take for a good one), only `failures.parquet` and
/// [`shard::BUILD_FAILED_FILE`], and returns [`PrepError::BuildFailed`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailurePolicy {
    /// Any failed input fails the build (excluded inputs do not count). Default false.
    pub strict: bool,
    /// Failed inputs over attempted ones (cached + failed) above this fail the build. Default 1
    /// (never); `prep build` passes its `--max-failure-rate` (default 0.05).
    pub max_failure_rate: f64,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            strict: false,
            max_failure_rate: 1.0,
        }
    }
}

/// Progress reporting hooks (the binary draws bars; tests pass [`NoProgress`]).
pub trait Progress: Sync {
    /// A stage starts; `total` items, 0 when unknown.
    fn stage(&self, name: &str, total: u64);
    /// `n` more items done in the current stage.
    fn advance(&self, n: u64);
    /// The current stage is done.
    fn done(&self);
    /// A message for the user (e.g. whom the build waits for). Default: ignored.
    fn note(&self, _text: &str) {}
}

/// Progress that reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn done(&self) {}
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The cache directory.
    pub dir: PathBuf,
    /// `true` when an existing cache with the same key was reused.
    pub hit: bool,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its counts.
    pub summary: Summary,
    /// Seconds spent.
    pub seconds: f64,
}

/// Indices of the QA sample: the `n` items with the smallest seeded hash of their sample id
/// (independent of thread count and of how the inputs were listed).
pub fn qa_indices(inv: &Inventory, seed: u64, n: usize) -> Vec<usize> {
    let mut ranked: Vec<(u64, usize)> = inv
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut h = blake3::Hasher::new();
            h.update(&seed.to_le_bytes());
            h.update(it.sample_id.as_bytes());
            let b = h.finalize();
            (
                u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8])),
                i,
            )
        })
        .collect();
    ranked.sort();
    let mut v: Vec<usize> = ranked.into_iter().take(n).map(|(_, i)| i).collect();
    v.sort();
    v
}

/// The complete cache of `key` in `dir`, as a cache hit.
fn existing_cache(dir: &Path, key: &CacheKey, start: std::time::Instant) -> Option<BuildOutcome> {
    let cache = shard::Cache::open(dir).ok()?;
    let m = cache.manifest().clone();
    if m.key != key.hex() {
        return None;
    }
    let summary = stored_summary(&m).unwrap_or_default();
    Some(BuildOutcome {
        dir: dir.to_path_buf(),
        hit: true,
        manifest: m,
        summary,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Builds (or reuses) the cache of a request.
///
/// Concurrent builds of one key are serialised by the key directory's lock
/// ([`shard::DirLock`]): the second waits (saying for whom, through [`Progress::note`]) and
/// ends as a cache hit.
///
/// Errors: unreadable dataset roots, fold lists or models, and cache I/O. Per-input problems are
/// failure rows, not errors.
pub fn build(req: &BuildRequest, progress: &dyn Progress) -> Result<BuildOutcome> {
    let start = std::time::Instant::now();
    req.config
        .check()
        .map_err(|r| PrepError::parse(Path::new("<prep config>"), 1, r))?;
    if let Some((i, n)) = req.part {
        if n == 0 || i == 0 || i > n {
            return Err(PrepError::parse(
                Path::new("--part"),
                0,
                format!("{i}/{n}: expected i/N with 1 ≤ i ≤ N"),
            ));
        }
    }
    progress.stage("fingerprint", 0);
    let (key, root, ferplus) = compute_key(req)?;
    progress.done();
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| req.kind.name().to_string());
    let dir = cache_dir_for(&req.cache_dir, &name, &key, req.part);
    if let Some(hit) = existing_cache(&dir, &key, start) {
        return Ok(hit);
    }
    // One build per key directory at a time: a second build of the same key waits here and then
    // finds the first one's cache. The kernel releases the lock of a killed build.
    let _lock = shard::DirLock::acquire(&dir, shard::LockMode::Exclusive, &mut |holder| {
        progress.note(&format!(
            "{} is being built by {}; waiting for it to finish",
            dir.display(),
            shard::lock::describe_holder(holder)
        ))
    })?;
    if let Some(hit) = existing_cache(&dir, &key, start) {
        return Ok(hit);
    }
    // The models load on their own thread while the dataset is parsed and deduplicated (a
    // quarter of a second of dlib model parsing that used to come after the parse).
    let loading = {
        let (models, reinitialise) = (req.models.clone(), req.config.reinitialise);
        std::thread::spawn(move || models.load(reinitialise))
    };
    progress.stage("parse", 0);
    let mut inv = inventory(req, &root, ferplus.as_deref())?;
    progress.done();
    // Duplicates over the whole inventory (every part of a split build finds the same ones and
    // drops the same inputs), before any face processing.
    progress.stage("duplicates", inv.items.len() as u64);
    let fingerprints: Vec<_> = {
        use rayon::prelude::*;
        inv.items
            .par_iter()
            .map(|it| {
                let f = it
                    .fingerprint
                    .or_else(|| crate::pipeline::input_fingerprint(&inv.root, it));
                progress.advance(1);
                f
            })
            .collect()
    };
    let pairs = crate::dedup::find_pairs(&fingerprints, req.config.near_duplicate_bits);
    let dedup = crate::dedup::plan(&inv.items, pairs, req.config.dedup);
    progress.done();
    // What the recipe records and the duplicates table need from the whole inventory, taken
    // before the drops and the part split (no copy of the inventory kept for them).
    let used_boxes = inv.items.iter().any(|i| i.dataset_boxes.is_some());
    let used_landmarks = inv.items.iter().any(|i| i.dataset_landmarks.is_some());
    std::fs::create_dir_all(&dir).map_err(|e| PrepError::Io {
        path: dir.clone(),
        cause: e,
    })?;
    crate::dedup::write_table(
        &dir.join("duplicates.parquet"),
        &inv.items,
        &dedup,
        &inv.class_names,
    )?;
    if !dedup.drops.is_empty() {
        let items = std::mem::take(&mut inv.items);
        for (k, it) in items.into_iter().enumerate() {
            match dedup.drops.get(&k) {
                Some((why, detail)) => {
                    // Not a new input: `exclude` counts one, so take it back from `seen`.
                    inv.exclude(it.input.clone(), why, detail.clone());
                    inv.seen -= 1;
                }
                None => inv.items.push(it),
            }
        }
    }
    if let Some((i, n)) = req.part {
        inv.keep_part(i, n);
    }
    let box_mode = req.config.box_mode.unwrap_or(req.kind.default_box_mode());
    progress.stage("load models", 0);
    let faces = match loading.join() {
        Ok(loaded) => loaded?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    progress.done();
    let processor = Processor {
        faces: &faces,
        config: &req.config,
        box_mode,
        root: &inv.root,
        dataset: &inv.dataset,
    };
    let qa_set = qa_indices(&inv, req.config.seed, req.qa_samples);
    let want_qa = |i: usize| qa_set.binary_search(&i).is_ok();
    let mut writer = CacheWriter::create(
        &dir,
        &name,
        &key,
        inv.class_names.clone(),
        CacheWriterOptions {
            tool: req.tool.clone(),
            git_revision: req.git_revision.clone(),
            ..Default::default()
        },
    )?;
    let mut summary = Summary {
        seen: inv.seen,
        duplicates: dedup.counts.clone(),
        ..Default::default()
    };
    let mut failures = inv.rejected.clone();
    let mut qa_samples: Vec<QaSample> = Vec::new();
    let class_names = inv.class_names.clone();
    progress.stage("process", inv.items.len() as u64);
    let chunk = 256 * rayon::current_num_threads().max(1);
    process_all(&processor, &inv.items, chunk, &want_qa, |_, r| {
        progress.advance(1);
        match r {
            Ok(p) => {
                let class = class_names
                    .get(p.record.meta.label as usize)
                    .cloned()
                    .unwrap_or_default();
                *summary
                    .split_class
                    .entry(p.record.meta.split.to_string())
                    .or_default()
                    .entry(class)
                    .or_default() += 1;
                writer.push(&p.record)?;
                summary.cached += 1;
                if let Some(q) = p.qa {
                    qa_samples.push(q);
                }
            }
            Err(f) => failures.push(f),
        }
        Ok::<(), PrepError>(())
    })?;
    progress.done();
    if req.part.is_some() {
        // A part sees its share of the items; the parser's rejections travel with part 1.
        summary.seen = summary.cached + failures.len() as u64;
    }
    sort_failures(&mut failures);
    for f in &failures {
        summary.count_failure(f);
        writer.push_failure(f.clone());
    }
    if let Some(cov) = inv.notes.get("fold_list") {
        summary.folds = serde_json::from_value(cov.clone()).ok();
    }
    if !qa_samples.is_empty() {
        progress.stage("qa sheets", 0);
        qa::write_sheets(&dir.join("qa"), &qa_samples, &class_names)?;
        progress.done();
    }
    shard::atomic_write(
        &dir.join("prep-config.toml"),
        req.config.to_toml()?.as_bytes(),
    )?;
    let extra = serde_json::json!({
        "summary": summary,
        "config": req.config,
        "box_mode": box_mode,
        "recipe": face::SampleRecipe {
            dataset_boxes: req.config.dataset_boxes
                && used_boxes,
            // Set by the config (CK+'s landmark files) or by a dataset that ships them (AffectNet).
            dataset_landmarks: req.config.dataset_landmarks
                || used_landmarks,
            ..req.config.recipe(box_mode)
        },
        "dataset": req.kind.name(),
        "source": req.source.display().to_string(),
        "part": req.part.map(|(i, n)| format!("{i}/{n}")),
        "notes": inv.notes,
    });
    if let Some(reason) = summary.failure(&req.failure_policy, req.part.is_none()) {
        writer.abandon(&reason, extra)?;
        return Err(PrepError::BuildFailed {
            cache: dir,
            reason,
            summary: Box::new(summary),
        });
    }
    let manifest = writer.finish(extra)?;
    Ok(BuildOutcome {
        dir,
        hit: false,
        manifest,
        summary,
        seconds: start.elapsed().as_secs_f64(),
    })
}
