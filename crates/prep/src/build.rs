//! `prep build` as a library call: dataset → inventory → folds → cache key → (cache hit, or)
//! parallel processing into a shard cache with its tables, QA sheets and summary.

use crate::config::{BoxMode, PrepConfig};
use crate::datasets::{ckplus, fer2013, folders, oulu, walk};
use crate::folds::{normalise_oulu, FoldList};
use crate::inventory::{sort_failures, Inventory, STAGE_EXCLUDE};
use crate::pipeline::{process_all, Processor, QaSample};
use crate::qa;
use crate::splits::{apply_fold_list, subject_kfold, FoldCoverage};
use crate::{PrepError, Result};
use serde::{Deserialize, Serialize};
use shard::{CacheKey, CacheWriter, CacheWriterOptions, FailureRow, Manifest, SourceFingerprinter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The dataset layouts `prep build` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// `fer2013.csv` (emotion, pixels, Usage).
    Fer2013,
    /// `fer2013.csv` with FER+ majority labels from `fer2013new.csv` beside it.
    Ferplus,
    /// The Kaggle image-folder release `train|test/<class>/*.jpg`.
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
            _ => BoxMode::Detect,
        }
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

/// Counts of one build, stored in the manifest (`extra.summary`) and printed as the final table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Inputs the parser saw.
    pub seen: u64,
    /// Samples in the cache.
    pub cached: u64,
    /// Inputs left out by the protocol, by reason.
    pub excluded: BTreeMap<String, u64>,
    /// Inputs that failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Samples by split (or fold) and class.
    pub split_class: BTreeMap<String, BTreeMap<String, u64>>,
    /// Coverage of the authors' fold list, when one was used.
    pub folds: Option<FoldCoverage>,
}

impl Summary {
    /// Number of failed inputs.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Number of excluded inputs.
    pub fn excluded_total(&self) -> u64 {
        self.excluded.values().sum()
    }

    /// Failures over inputs that were meant to become samples (excluded inputs do not count).
    pub fn failure_rate(&self) -> f64 {
        let attempted = self.cached + self.failed_total();
        if attempted == 0 {
            0.0
        } else {
            self.failed_total() as f64 / attempted as f64
        }
    }

    /// seen = cached + excluded + failed.
    pub fn adds_up(&self) -> bool {
        self.seen == self.cached + self.excluded_total() + self.failed_total()
    }

    /// Why these counts fail `policy`, or None when they pass. A whole build (not a part of one)
    /// with no sample always fails.
    pub fn failure(&self, policy: &FailurePolicy, whole: bool) -> Option<String> {
        let failed = self.failed_total();
        if !self.adds_up() {
            return Some(format!(
                "inputs do not add up: seen {} ≠ cached {} + excluded {} + failed {failed}",
                self.seen,
                self.cached,
                self.excluded_total()
            ));
        }
        if whole && self.cached == 0 {
            return Some(format!(
                "no input became a sample ({} seen, {} excluded, {failed} failed)",
                self.seen,
                self.excluded_total()
            ));
        }
        if policy.strict && failed > 0 {
            return Some(format!("--strict: {failed} inputs failed"));
        }
        if self.failure_rate() > policy.max_failure_rate {
            return Some(format!(
                "{failed} of {} attempted inputs failed ({:.1} %), above the limit of {:.1} % \
                 (--max-failure-rate)",
                self.cached + failed,
                100.0 * self.failure_rate(),
                100.0 * policy.max_failure_rate
            ));
        }
        None
    }

    fn count_failure(&mut self, f: &FailureRow) {
        let m = if f.stage == STAGE_EXCLUDE {
            &mut self.excluded
        } else {
            &mut self.failed
        };
        *m.entry(f.reason.clone()).or_default() += 1;
    }

    fn add(&mut self, other: &Summary) {
        self.seen += other.seen;
        self.cached += other.cached;
        for (k, v) in &other.excluded {
            *self.excluded.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += v;
        }
        for (s, m) in &other.split_class {
            for (c, v) in m {
                *self
                    .split_class
                    .entry(s.clone())
                    .or_default()
                    .entry(c.clone())
                    .or_default() += v;
            }
        }
        if self.folds.is_none() {
            self.folds.clone_from(&other.folds);
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

/// What the key is computed from besides model hashes and the source fingerprint.
#[derive(Serialize)]
struct KeyConfig<'a> {
    dataset: &'a str,
    config: &'a PrepConfig,
    box_mode: BoxMode,
}

fn source_files(kind: DatasetKind, root: &Path, cfg: &PrepConfig) -> Vec<String> {
    let under = |sub: &str, depth: usize| -> Vec<String> {
        walk::files_for_fingerprint(&root.join(sub), depth)
            .into_iter()
            .map(|f| walk::join(sub, &f))
            .collect()
    };
    match kind {
        DatasetKind::Fer2013 | DatasetKind::Ferplus => Vec::new(),
        DatasetKind::Fer2013Folders => walk::files_for_fingerprint(root, 3),
        DatasetKind::Ckplus => {
            let mut v = under("cohn-kanade-images", 3);
            v.extend(under("Emotion", 3));
            if cfg.dataset_landmarks {
                v.extend(under("Landmarks", 3));
            }
            v
        }
        DatasetKind::Oulu => under(
            &format!(
                "OriginalImg/{}/{}",
                cfg.oulu_modality, cfg.oulu_illumination
            ),
            3,
        ),
        DatasetKind::Ckplus48 | DatasetKind::Jaffe | DatasetKind::Folders => {
            walk::files_for_fingerprint(root, 2)
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// The directory of a cache (or of one part of it).
pub fn cache_dir_for(
    cache_dir: &Path,
    name: &str,
    key: &CacheKey,
    part: Option<(usize, usize)>,
) -> PathBuf {
    let base = shard::cache_dir_name(name, key);
    match part {
        Some((i, n)) => cache_dir.join(format!("{base}.part-{i}-of-{n}")),
        None => cache_dir.join(base),
    }
}

/// Computes the cache key of a request (cheap: file listing and a stat cache).
pub fn compute_key(req: &BuildRequest) -> Result<(CacheKey, PathBuf, Option<PathBuf>)> {
    let cfg = &req.config;
    let (root, extra_files): (PathBuf, Vec<String>) = match req.kind {
        DatasetKind::Fer2013 | DatasetKind::Ferplus => (
            req.source.parent().unwrap_or(Path::new(".")).to_path_buf(),
            vec![file_name(&req.source)],
        ),
        _ => (req.source.clone(), Vec::new()),
    };
    if !req.source.exists() {
        return Err(PrepError::Io {
            path: req.source.clone(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "dataset source not found"),
        });
    }
    let mut files = source_files(req.kind, &root, cfg);
    files.extend(extra_files);
    let ferplus = match req.kind {
        DatasetKind::Ferplus => Some(
            req.ferplus_labels
                .clone()
                .unwrap_or_else(|| root.join("fer2013new.csv")),
        ),
        _ => None,
    };
    let stat_id = blake3::hash(
        format!(
            "{}|{}",
            req.kind.name(),
            std::fs::canonicalize(&root)
                .unwrap_or(root.clone())
                .display()
        )
        .as_bytes(),
    );
    let stat_cache = req
        .cache_dir
        .join(".stat-cache")
        .join(format!("{}.json", &stat_id.to_hex()[..16]));
    if let Some(p) = stat_cache.parent() {
        std::fs::create_dir_all(p).map_err(|e| PrepError::Io {
            path: p.to_path_buf(),
            cause: e,
        })?;
    }
    let source = SourceFingerprinter::new()
        .with_stat_cache(stat_cache)
        .force_rehash(req.force_rehash)
        .fingerprint(&root, &files)?;
    let mut models = BTreeMap::new();
    models.insert(
        "shape_predictor".to_string(),
        shard::hash_file(&req.models.shape_predictor)?,
    );
    let box_mode = cfg.box_mode.unwrap_or(req.kind.default_box_mode());
    if box_mode != BoxMode::WholeFrame && !cfg.dataset_landmarks {
        models.insert("cascade".into(), shard::hash_file(&req.models.cascade)?);
        if let Some(f) = &req.models.fallback {
            models.insert("fallback_cascade".into(), shard::hash_file(f)?);
        }
    }
    if let Some(f) = &req.fold_list {
        models.insert("fold_list".into(), shard::hash_file(f)?);
    }
    if let Some(f) = &ferplus {
        models.insert("ferplus_labels".into(), shard::hash_file(f)?);
    }
    if let Some(f) = &req.subjects_file {
        models.insert("subjects_file".into(), shard::hash_file(f)?);
    }
    let key = CacheKey::compute(
        &KeyConfig {
            dataset: req.kind.name(),
            config: cfg,
            box_mode,
        },
        &models,
        &source,
    )?;
    Ok((key, root, ferplus))
}

/// Reads the dataset and assigns splits.
pub fn inventory(req: &BuildRequest, root: &Path, ferplus: Option<&Path>) -> Result<Inventory> {
    let cfg = &req.config;
    let fi = |n: usize| cfg.frame_indices(n);
    let slots = cfg.slots();
    let mut inv = match req.kind {
        DatasetKind::Fer2013 | DatasetKind::Ferplus => {
            fer2013::inventory(&req.source, ferplus, slots)?
        }
        DatasetKind::Fer2013Folders => fer2013::inventory_folders(root, slots)?,
        DatasetKind::Ckplus => ckplus::inventory(
            root,
            ckplus::CkPlusOptions {
                frame_indices: &fi,
                include_neutral: cfg.include_neutral,
                dataset_landmarks: cfg.dataset_landmarks,
            },
        )?,
        DatasetKind::Oulu => {
            oulu::inventory(root, &cfg.oulu_modality, &cfg.oulu_illumination, &fi)?
        }
        DatasetKind::Ckplus48 => folders::inventory(
            root,
            "ckplus48",
            Some(&ckplus::CKPLUS_CLASSES),
            folders::NameStyle::CkPlus,
            &fi,
            slots,
        )?,
        DatasetKind::Jaffe => folders::inventory_jaffe(root, slots)?,
        DatasetKind::Folders => {
            folders::inventory(root, "folders", None, folders::NameStyle::Plain, &fi, slots)?
        }
    };
    let rule = match (&cfg.subject_regex, &req.subjects_file) {
        (Some(_), Some(_)) => {
            return Err(PrepError::parse(
                Path::new("--subjects"),
                0,
                "give --subject-regex or --subjects, not both",
            ))
        }
        (Some(re), None) => Some(crate::subjects::SubjectRule::regex(re)?),
        (None, Some(f)) => Some(crate::subjects::SubjectRule::load_map(f)?),
        (None, None) => None,
    };
    if req.kind == DatasetKind::Folders {
        crate::subjects::assign(&mut inv, rule.as_ref());
    } else if rule.is_some() {
        return Err(PrepError::parse(
            Path::new("--subjects"),
            0,
            format!(
                "--subject-regex and --subjects are for --dataset folders; {} names its subjects itself",
                req.kind.name()
            ),
        ));
    }
    let uses_usage = matches!(
        req.kind,
        DatasetKind::Fer2013 | DatasetKind::Ferplus | DatasetKind::Fer2013Folders
    );
    if !uses_usage {
        let list = match (&req.fold_list, cfg.authors_folds) {
            (Some(p), true) => Some(match req.kind {
                DatasetKind::Oulu => {
                    let text = std::fs::read_to_string(p).map_err(|e| PrepError::Io {
                        path: p.clone(),
                        cause: e,
                    })?;
                    FoldList::parse_with(&text, p, &normalise_oulu)?
                }
                _ => FoldList::load(p)?,
            }),
            _ => None,
        };
        match (list, req.kind) {
            (Some(list), DatasetKind::Oulu) => {
                let (m, i) = (cfg.oulu_modality.clone(), cfg.oulu_illumination.clone());
                let cov = apply_fold_list(
                    &mut inv,
                    &list,
                    &|s: &str| oulu::sample_id_from_fold_list(s, &m, &i),
                    &oulu::label_from_fold_list,
                );
                inv.notes.insert(
                    "fold_list".into(),
                    serde_json::to_value(&cov).unwrap_or_default(),
                );
            }
            (Some(list), _) => {
                let neutral = cfg.include_neutral;
                let cov = apply_fold_list(
                    &mut inv,
                    &list,
                    &|s: &str| Some(s.to_string()),
                    &move |code: u16| {
                        if neutral {
                            Some(code)
                        } else {
                            code.checked_sub(1)
                        }
                    },
                );
                inv.notes.insert(
                    "fold_list".into(),
                    serde_json::to_value(&cov).unwrap_or_default(),
                );
            }
            (None, _) => subject_kfold(&mut inv, cfg.folds, cfg.seed),
        }
    }
    Ok(inv)
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

/// Summary stored in a manifest by an earlier build.
pub fn stored_summary(m: &Manifest) -> Option<Summary> {
    serde_json::from_value(m.extra.get("summary")?.clone()).ok()
}

/// Builds (or reuses) the cache of a request.
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
    if let Ok(cache) = shard::Cache::open(&dir) {
        let m = cache.manifest().clone();
        if m.key == key.hex() {
            let summary = stored_summary(&m).unwrap_or_default();
            return Ok(BuildOutcome {
                dir,
                hit: true,
                manifest: m,
                summary,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
    }
    progress.stage("parse", 0);
    let mut inv = inventory(req, &root, ferplus.as_deref())?;
    progress.done();
    if let Some((i, n)) = req.part {
        inv.keep_part(i, n);
    }
    let box_mode = req.config.box_mode.unwrap_or(req.kind.default_box_mode());
    let faces = req.models.load(req.config.reinitialise)?;
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
        req.config.to_toml().as_bytes(),
    )?;
    let extra = serde_json::json!({
        "summary": summary,
        "config": req.config,
        "box_mode": box_mode,
        "recipe": req.config.recipe(box_mode),
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

/// Merges part caches built with `--part i/N` into the cache a single run would have written
/// (same key, same samples in the same order, same failure rows), in `cache_dir`.
///
/// Errors: parts with different keys, a missing or repeated part, damaged parts.
pub fn merge_parts(
    parts: &[PathBuf],
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<BuildOutcome> {
    let start = std::time::Instant::now();
    let bad = |reason: String| PrepError::parse(Path::new("prep cache merge"), 0, reason);
    let mut caches = Vec::new();
    for p in parts {
        caches.push(shard::Cache::open(p)?);
    }
    let Some(first) = caches.first() else {
        return Err(bad("no parts given".into()));
    };
    let m0 = first.manifest().clone();
    let part_of = |m: &Manifest| -> Option<(usize, usize)> {
        let s = m.extra.get("part")?.as_str()?;
        let (i, n) = s.split_once('/')?;
        Some((i.parse().ok()?, n.parse().ok()?))
    };
    let n = part_of(&m0)
        .ok_or_else(|| bad(format!("{} is not a part cache", parts[0].display())))?
        .1;
    let mut have = vec![false; n + 1];
    for (c, p) in caches.iter().zip(parts) {
        let m = c.manifest();
        if m.key != m0.key || m.class_names != m0.class_names {
            return Err(bad(format!(
                "{} has another key or classes than {}",
                p.display(),
                parts[0].display()
            )));
        }
        let (i, pn) =
            part_of(m).ok_or_else(|| bad(format!("{} is not a part cache", p.display())))?;
        if pn != n || i == 0 || i > n || have[i] {
            return Err(bad(format!(
                "{}: part {i}/{pn} repeated or out of range",
                p.display()
            )));
        }
        have[i] = true;
    }
    if let Some(missing) = (1..=n).find(|&i| !have[i]) {
        return Err(bad(format!("part {missing}/{n} is missing")));
    }
    let config: PrepConfig = m0
        .extra
        .get("config")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .ok_or_else(|| bad("part manifest has no prep config".into()))?;
    let key = CacheKey::from_manifest(&m0);
    let dir = cache_dir.join(shard::cache_dir_name(&m0.name, &key));
    let mut order: Vec<(String, usize, u64)> = Vec::new();
    for (ci, c) in caches.iter().enumerate() {
        let rows = shard::tables::read_sample_ids(&c.dir().join("samples.parquet"))?;
        for (g, id) in rows.into_iter().enumerate() {
            order.push((id, ci, g as u64));
        }
    }
    order.sort();
    let mut writer = CacheWriter::create(
        &dir,
        &m0.name,
        &key,
        m0.class_names.clone(),
        CacheWriterOptions {
            tool: m0.tool.clone(),
            git_revision: m0.git_revision.clone(),
            ..Default::default()
        },
    )?;
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for c in &caches {
        if let Some(s) = stored_summary(c.manifest()) {
            summary.add(&s);
        }
        failures.extend(shard::tables::read_failures(
            &c.dir().join("failures.parquet"),
        )?);
    }
    progress.stage("merge", order.len() as u64);
    let mut readers = caches
        .iter()
        .map(|c| c.reader())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (_, ci, g) in &order {
        let rec = readers[*ci].read(*g)?;
        let planes: Vec<&[u8]> = rec.planes().map(|(_, d)| d).collect();
        let enc = shard::EncodedRecord::encode(rec.meta.clone(), &planes, config.zstd_level)?;
        writer.push(&enc)?;
        progress.advance(1);
    }
    progress.done();
    sort_failures(&mut failures);
    for f in failures {
        writer.push_failure(f);
    }
    for (c, p) in caches.iter().zip(parts) {
        let qa = c.dir().join("qa");
        if qa.is_dir() {
            let (i, _) = part_of(c.manifest()).unwrap_or((0, 0));
            let to = dir.join("qa").join(format!("part-{i}-of-{n}"));
            std::fs::create_dir_all(&to).map_err(|e| PrepError::Io {
                path: to.clone(),
                cause: e,
            })?;
            for e in std::fs::read_dir(&qa)
                .map_err(|e| PrepError::Io {
                    path: qa.clone(),
                    cause: e,
                })?
                .flatten()
            {
                let _ = std::fs::copy(e.path(), to.join(e.file_name()));
            }
            let _ = p;
        }
    }
    shard::atomic_write(&dir.join("prep-config.toml"), config.to_toml().as_bytes())?;
    let mut extra = m0.extra.clone();
    if let Some(o) = extra.as_object_mut() {
        o.insert(
            "summary".into(),
            serde_json::to_value(&summary).unwrap_or_default(),
        );
        o.insert("part".into(), serde_json::Value::Null);
        o.insert("merged_from".into(), serde_json::json!(n));
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
