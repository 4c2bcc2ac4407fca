//! `prep export`: a cache's crops as PNG files in torchvision's ImageFolder layout,
//! `<out>/<split>/<class>/<id>.png`, for people who want files rather than shards.
//!
//! `<split>` is the record's split as the manifest counts it (`train`, `validation`, `test`,
//! `fold3`), `<class>` the manifest's class name, `<id>` the sample id with `/` replaced by `_`
//! (`S010/004` → `S010_004.png`). One plane per export (`face` by default; `eyes/2`, `mouth/0`, …
//! for the part crops). The folder appears whole or not at all: files are written into
//! `<out>.partial-<pid>` and renamed at the end.

use crate::{PrepError, Result};
use shard::Cache;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What an export wrote: files per split and class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Where the folder is.
    pub out: PathBuf,
    /// The plane exported.
    pub plane: String,
    /// split → class → files.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ExportSummary {
    /// Files written.
    pub fn files(&self) -> u64 {
        self.counts.values().flat_map(|c| c.values()).sum()
    }
}

/// A sample id as a file stem: `/` and `\` become `_` (ids are unique within a cache, and no
/// dataset's ids differ only there).
pub fn file_stem(sample_id: &str) -> String {
    sample_id.replace(['/', '\\'], "_")
}

fn io(path: &Path, cause: std::io::Error) -> PrepError {
    PrepError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes every record's `plane` of `cache` as a PNG under `out` (which must not exist), in
/// parallel on the rayon pool; `tick` is called once per record written.
///
/// Errors: `out` exists; a record that cannot be decoded or lacks the plane (named by sample id or
/// record number); a file that cannot be written. Nothing is left at `out` on error.
pub fn export_image_folders(
    cache: &Cache,
    out: &Path,
    plane: &str,
    tick: &(dyn Fn() + Sync),
) -> Result<ExportSummary> {
    if out.exists() {
        return Err(io(
            out,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the export folder exists; remove it or choose another",
            ),
        ));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let partial = out.with_file_name(format!("{name}.partial-{}", std::process::id()));
    let result = write_all(cache, &partial, plane, tick);
    match result {
        Ok(mut summary) => {
            std::fs::rename(&partial, out).map_err(|e| io(out, e))?;
            summary.out = out.to_path_buf();
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

fn write_all(
    cache: &Cache,
    dir: &Path,
    plane: &str,
    tick: &(dyn Fn() + Sync),
) -> Result<ExportSummary> {
    let classes = &cache.manifest().class_names;
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let indices: Vec<u64> = (0..cache.len()).collect();
    let written = cache.par_decode(&indices, |g, rec| -> Result<(String, String)> {
        let meta = &rec.meta;
        let (info, pixels) =
            rec.planes()
                .find(|(i, _)| i.name == plane)
                .ok_or_else(|| PrepError::Export {
                    record: format!("record {g} ({})", meta.sample_id),
                    reason: format!(
                        "no plane {plane:?}; it has {}",
                        meta.planes
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
        let class = classes
            .get(meta.label as usize)
            .cloned()
            .unwrap_or_else(|| format!("label{}", meta.label));
        let split = meta.split.to_string();
        let folder = dir.join(&split).join(&class);
        std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
        let file = folder.join(format!("{}.png", file_stem(&meta.sample_id)));
        let image =
            image::GrayImage::from_raw(info.width as u32, info.height as u32, pixels.to_vec())
                .ok_or_else(|| PrepError::Export {
                    record: format!("record {g} ({})", meta.sample_id),
                    reason: format!("plane {plane} is not {}×{} bytes", info.height, info.width),
                })?;
        image.save(&file).map_err(|e| PrepError::Export {
            record: format!("record {g} ({})", meta.sample_id),
            reason: format!("{}: {e}", file.display()),
        })?;
        tick();
        Ok((split, class))
    });
    let mut summary = ExportSummary {
        out: dir.to_path_buf(),
        plane: plane.to_string(),
        counts: BTreeMap::new(),
    };
    for w in written {
        let (split, class) = w??;
        *summary
            .counts
            .entry(split)
            .or_default()
            .entry(class)
            .or_default() += 1;
    }
    // No fsync of every file: the folder is a derived copy that `prep export` can write again;
    // the rename makes it appear whole.
    Ok(summary)
}
