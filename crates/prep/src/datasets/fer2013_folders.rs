//! FER2013's image-folder releases: `<root>/<folder>/<class>/<Usage>_<n>.jpg`.
//!
//! Two arrangements are in circulation, and copies of both carry files that are not FER2013:
//!
//! * Kaggle's: `train/` (Training) and `test/` (PublicTest and PrivateTest together);
//! * a three-folder one: `train/`, `validation/` (PublicTest) and `test/` (PrivateTest).
//!
//! The split of an image comes from its name's Usage prefix, never from the folder, because
//! Kaggle's `test/` holds two splits; the folder only has to agree ([`folder_usages`]), and a
//! disagreement is a failure row. Everything else under the root ends in a row of its own:
//! augmented copies (`Training_7.jpg3.jpg`, made by whoever published the copy), names that are
//! not `<Usage>_<n>.<ext>`, an image name twice in one class (from two split folders), unknown
//! class folders, unknown
//! top-level folders and stray files (a `.csv` that is a Git LFS pointer, a notebook).

use super::fer2013::{usage_split, FER2013_CLASSES};
use super::walk::{self, Entry};
use crate::inventory::{reason, InputItem, Inventory};
use crate::{PrepError, Result};
use shard::Split;
use std::collections::BTreeMap;
use std::path::Path;

/// FER2013's official image counts by Usage, for the manifest's note.
pub const OFFICIAL_COUNTS: [(&str, u64); 3] = [
    ("Training", 28_709),
    ("PublicTest", 3_589),
    ("PrivateTest", 3_589),
];

/// The Usage prefixes an image in the split folder `folder` may carry, or `None` for a folder
/// that is not part of a release. `validation/` (and `val/`) hold PublicTest; `test/` holds
/// PrivateTest, and in Kaggle's arrangement PublicTest as well.
pub fn folder_usages(folder: &str) -> Option<&'static [&'static str]> {
    match folder {
        "train" => Some(&["Training"]),
        "test" => Some(&["PublicTest", "PrivateTest"]),
        "validation" | "val" => Some(&["PublicTest"]),
        _ => None,
    }
}

/// What a file name in a class folder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseName<'a> {
    /// `<Usage>_<n>.<image extension>`: one FER2013 image (`id` is `<Usage>_<n>`).
    Image {
        /// `Training`, `PublicTest` or `PrivateTest`.
        usage: &'a str,
        /// The name without its extension.
        id: &'a str,
    },
    /// `<Usage>_<n>.jpg<k>.jpg` and the like: a copy that a publisher derived from the image
    /// `of` (an image name); not part of FER2013.
    AugmentedCopy {
        /// The image it was made from.
        of: &'a str,
    },
    /// An image file whose name does not follow the release's convention.
    BadName,
    /// Not an image file at all.
    NotAnImage,
}

/// Reads a class folder's file name.
pub fn parse_release_name(name: &str) -> ReleaseName<'_> {
    if !crate::inventory::is_image_name(name) {
        return ReleaseName::NotAnImage;
    }
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return ReleaseName::BadName;
    };
    let id_of = |s: &'_ str| -> bool {
        s.split_once('_').is_some_and(|(usage, n)| {
            usage_split(usage).is_some() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
    };
    if id_of(stem) {
        let usage = stem.split_once('_').map_or("", |(u, _)| u);
        return ReleaseName::Image { usage, id: stem };
    }
    // `Training_7.jpg3` as a stem: an image name with digits appended after its extension.
    if let Some((inner, tail)) = stem.rsplit_once('.') {
        let ext = tail.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = &tail[ext.len()..];
        if !digits.is_empty()
            && id_of(inner)
            && crate::inventory::is_image_name(&format!("x.{ext}"))
        {
            return ReleaseName::AugmentedCopy {
                of: &stem[..inner.len() + 1 + ext.len()],
            };
        }
    }
    ReleaseName::BadName
}

/// Reads an image-folder release into an inventory; every file under `root` ends in it as an
/// input or a row (hidden names aside, as everywhere). Sample ids are the class folder and the
/// image name (`angry/Training_7`: Kaggle's release gives two different images one name, in
/// different classes), labels come from the class folder, splits from the Usage prefix. The
/// manifest's notes get the images found per Usage and per folder beside FER2013's official
/// counts.
///
/// Errors (whole dataset): an unreadable root, a root without a `train/` folder.
pub fn inventory_folders(root: &Path, frames: usize) -> Result<Inventory> {
    let mut inv = Inventory::new("fer2013-folders", root.to_path_buf(), &FER2013_CLASSES);
    let tops = walk::list(root, "", &mut inv);
    if !tops.iter().any(|e| e.is_dir && e.name == "train") {
        return Err(PrepError::parse(
            root,
            0,
            "expected a train/ folder beside test/ (and validation/): the FER2013 image-folder \
             release (for fer2013.csv use --dataset fer2013)",
        ));
    }
    // Sample id (class/name) → its path: the first is kept, a second is a failure.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    // Image name → its path, for the names that two images share (as in Kaggle's release).
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut shared_names: Vec<String> = Vec::new();
    let mut by_usage: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_folder: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for top in tops {
        let Some(allowed) = folder_usages(&top.name).filter(|_| top.is_dir) else {
            report_top_level(&top, &mut inv);
            continue;
        };
        for class in walk::list(&top.path, &top.name, &mut inv) {
            let crel = walk::join(&top.name, &class.name);
            if !class.is_dir {
                inv.exclude(
                    &crel,
                    reason::NOT_AN_IMAGE,
                    "a file where class folders are",
                );
                continue;
            }
            let lower = class.name.to_ascii_lowercase();
            let Some(label) = FER2013_CLASSES.iter().position(|c| *c == lower) else {
                inv.reject(
                    &crel,
                    "parse",
                    reason::UNKNOWN_CLASS,
                    format!(
                        "not a FER2013 class ({}); its {} files were not read",
                        FER2013_CLASSES.join(", "),
                        count_files(&class.path)
                    ),
                );
                continue;
            };
            for f in walk::list(&class.path, &crel, &mut inv) {
                let rel = walk::join(&crel, &f.name);
                if f.is_dir {
                    inv.reject(
                        &rel,
                        "parse",
                        reason::BAD_NAME,
                        format!(
                            "a folder inside a class folder; its {} files were not read",
                            count_files(&f.path)
                        ),
                    );
                    continue;
                }
                let (usage, id) = match parse_release_name(&f.name) {
                    ReleaseName::Image { usage, id } => (usage, id),
                    ReleaseName::AugmentedCopy { of } => {
                        inv.exclude(
                            &rel,
                            reason::AUGMENTED_COPY,
                            format!(
                                "a copy derived from {of} by whoever published this release, \
                                 not a FER2013 image"
                            ),
                        );
                        continue;
                    }
                    ReleaseName::BadName => {
                        inv.reject(
                            &rel,
                            "parse",
                            reason::BAD_NAME,
                            "not <Usage>_<n>.<ext> with Usage Training, PublicTest or PrivateTest",
                        );
                        continue;
                    }
                    ReleaseName::NotAnImage => {
                        inv.exclude(&rel, reason::NOT_AN_IMAGE, "not an image file");
                        continue;
                    }
                };
                if !allowed.contains(&usage) {
                    inv.reject(
                        &rel,
                        "parse",
                        reason::SPLIT_MISMATCH,
                        format!(
                            "the name says {usage}, but {}/ holds {}",
                            top.name,
                            allowed.join(" and ")
                        ),
                    );
                    continue;
                }
                // Kaggle's own release names two pairs of different Training images alike
                // (in different class folders), so an image is its class and name; the same
                // image name twice in one class can only come from two split folders.
                let sample_id = format!("{}/{id}", FER2013_CLASSES[label]);
                if let Some(first) = seen.get(&sample_id) {
                    inv.reject(
                        &rel,
                        "parse",
                        reason::DUPLICATE_NAME,
                        format!("{id} is also {first}; the first is kept"),
                    );
                    continue;
                }
                seen.insert(sample_id.clone(), rel.clone());
                if let Some(other) = names.insert(id.to_string(), rel.clone()) {
                    shared_names.push(format!("{other} and {rel}"));
                }
                // The prefix parsed (`parse_release_name` checked it against `usage_split`).
                let split = usage_split(usage).unwrap_or(Split::Train);
                *by_usage.entry(usage.to_string()).or_default() += 1;
                *by_folder
                    .entry(top.name.clone())
                    .or_default()
                    .entry(usage.to_string())
                    .or_default() += 1;
                inv.push(InputItem::still_file(
                    sample_id,
                    label as u16,
                    split,
                    rel,
                    frames,
                ));
            }
        }
    }
    inv.notes.insert(
        "fer2013_images".into(),
        serde_json::json!({
            "by_usage": by_usage,
            "by_folder": by_folder,
            "official": OFFICIAL_COUNTS.iter().map(|(u, n)| (u.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "matches_official": OFFICIAL_COUNTS.iter().all(|(u, n)| by_usage.get(*u) == Some(n)),
            "names_in_two_classes": shared_names,
        }),
    );
    if !by_usage.contains_key("PublicTest") {
        inv.notes.insert(
            "no_public_test".into(),
            "no PublicTest image was found: the cache has no validation split, so epochs cannot be \
             selected on PublicTest"
                .into(),
        );
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}

/// The row of a top-level entry that is not a split folder: an unknown folder is a failure (its
/// files are not read, so a mistyped or unexpected folder is seen, not skipped); a file is
/// excluded with what it most likely is.
fn report_top_level(top: &Entry, inv: &mut Inventory) {
    if top.is_dir {
        inv.reject(
            &top.name,
            "parse",
            reason::UNKNOWN_FOLDER,
            format!(
                "not a folder of the FER2013 release (train/, test/, validation/); its {} files \
                 were not read",
                count_files(&top.path)
            ),
        );
        return;
    }
    let what = if is_lfs_pointer(&top.path) {
        "a Git LFS pointer, not data (the file itself was never fetched)".to_string()
    } else if top.name.ends_with(".csv") {
        "a csv beside the image folders (a FER2013 csv is read with --dataset fer2013)".to_string()
    } else {
        "a file beside the release's split folders".to_string()
    };
    inv.exclude(&top.name, reason::NOT_AN_IMAGE, what);
}

/// Whether `path` starts like a Git LFS pointer file.
fn is_lfs_pointer(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 40];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"version https://git-lfs.github.com/spec/")
}

/// Regular files below `dir` (any depth up to 8, hidden names skipped), for the detail of a
/// folder that is reported instead of read.
fn count_files(dir: &Path) -> usize {
    walk::files_for_fingerprint(dir, 8).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names() {
        use ReleaseName::*;
        let cases = [
            (
                "Training_10118.jpg",
                Image {
                    usage: "Training",
                    id: "Training_10118",
                },
            ),
            (
                "PublicTest_7.png",
                Image {
                    usage: "PublicTest",
                    id: "PublicTest_7",
                },
            ),
            (
                "PrivateTest_0.jpeg",
                Image {
                    usage: "PrivateTest",
                    id: "PrivateTest_0",
                },
            ),
            (
                "Training_10118.jpg3.jpg",
                AugmentedCopy {
                    of: "Training_10118.jpg",
                },
            ),
            (
                "PublicTest_5.jpg12.jpg",
                AugmentedCopy {
                    of: "PublicTest_5.jpg",
                },
            ),
            (
                "Training_1.png7.png",
                AugmentedCopy {
                    of: "Training_1.png",
                },
            ),
            ("Training_.jpg", BadName),
            ("Training_12a.jpg", BadName),
            ("Train_12.jpg", BadName),
            ("im0001.jpg", BadName),
            ("Training_1.jpgx.jpg", BadName),
            ("Other_1.jpg3.jpg", BadName),
            ("notes.txt", NotAnImage),
            ("Training_1.jpg.txt", NotAnImage),
        ];
        for (name, want) in cases {
            assert_eq!(parse_release_name(name), want, "{name}");
        }
    }

    #[test]
    fn folders_and_their_usages() {
        assert_eq!(folder_usages("train"), Some(&["Training"][..]));
        assert!(folder_usages("test").unwrap().contains(&"PublicTest"));
        assert!(folder_usages("test").unwrap().contains(&"PrivateTest"));
        assert_eq!(folder_usages("validation"), Some(&["PublicTest"][..]));
        assert_eq!(folder_usages("Train"), None);
        assert_eq!(folder_usages("augmented"), None);
    }
}
