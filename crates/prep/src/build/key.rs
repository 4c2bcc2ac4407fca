//! The cache key of a request: dataset, prep config and box mode, model and list hashes, and the
//! source fingerprint (FORMAT.md section 7).

use super::*;

/// What the key is computed from besides model hashes and the source fingerprint.
#[derive(Serialize)]
pub(super) struct KeyConfig<'a> {
    dataset: &'a str,
    config: &'a PrepConfig,
    box_mode: BoxMode,
    /// FER+ caches only, so that every other key stays what it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    ferplus_mode: Option<FerPlusMode>,
    /// The version of a dataset reader whose reading of the same files changed
    /// ([`DatasetKind::reader_version`]); absent for readers still at their first, so that
    /// their keys stay what they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    reader: Option<u32>,
    /// Video datasets only: FFmpeg's version and how frames are decoded and picked
    /// ([`face::video::VIDEO_DECODING`]), so that another decoder builds another cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    decoder: Option<String>,
}

pub(super) fn source_files(kind: DatasetKind, root: &Path, cfg: &PrepConfig) -> Vec<String> {
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
        DatasetKind::Affectnet => {
            let mut v = under("Manually_Annotated_file_lists", 1);
            v.extend(under(crate::datasets::affectnet::IMAGES, 2));
            v
        }
        DatasetKind::Expw => {
            let mut v = under("label", 1);
            v.extend(under("image/origin", 1));
            v
        }
        DatasetKind::Dfew => {
            let mut v = under(crate::datasets::clips::DFEW_CLIPS, 1);
            v.extend(under(crate::datasets::clips::DFEW_SPLITS, 2));
            v
        }
        DatasetKind::Afew => {
            let mut v = under("Train", 2);
            v.extend(under("Val", 2));
            v
        }
        DatasetKind::Rafdb => {
            if crate::datasets::rafdb::is_distributed(root) {
                // The label list, the images read and the boxes (not the manual annotations).
                let mut v = under("EmoLabel", 1);
                v.extend(under("Image", 2));
                if cfg.dataset_boxes {
                    v.extend(under("Annotation/boundingbox", 1));
                }
                v
            } else {
                let mut v = under("train", 2);
                v.extend(under("test", 2));
                v
            }
        }
    }
}

pub(super) fn file_name(p: &Path) -> String {
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
            ferplus_mode: ferplus.as_ref().map(|_| req.ferplus_mode),
            reader: req.kind.reader_version(),
            decoder: match req.kind.is_video() {
                true => Some(format!(
                    "ffmpeg {}; {}",
                    face::video::Ffmpeg::find()?.version,
                    face::video::VIDEO_DECODING
                )),
                false => None,
            },
        },
        &models,
        &source,
    )?;
    Ok((key, root, ferplus))
}
