//! RAF-DB basic (Li et al., CVPR 2017), in its two common layouts:
//!
//! * as distributed: `EmoLabel/list_patition_label.txt` (`train_00001.jpg 5`, labels 1–7 =
//!   surprise, fear, disgust, happiness, sadness, anger, neutral), `Image/original/*.jpg`,
//!   `Image/aligned/*_aligned.jpg` (100×100), `Annotation/boundingbox/*_boundingbox.txt`
//!   (`x1 y1 x2 y2`, pixels) and `Annotation/manual/*_manu_attri.txt` (5 landmarks and
//!   attributes, not used: the crops need 68). The original image is used, with the dataset's box
//!   when its file is there; without `Image/original` the aligned image is used.
//! * the common re-packaging `train/<1..7>/*.jpg`, `test/<1..7>/*.jpg` (usually the aligned images).
//!
//! Splits are the dataset's (train → `train`, test → `test`); RAF-DB has no subject ids.

use super::walk;
use crate::inventory::{is_image_name, reason, InputItem, Inventory};
use crate::{PrepError, Result};
use std::path::Path;

/// RAF-DB basic class names in label order (the list file's 1–7).
pub const RAFDB_CLASSES: [&str; 7] = [
    "surprise",
    "fear",
    "disgust",
    "happiness",
    "sadness",
    "anger",
    "neutral",
];

/// The list file of the distributed layout, relative to the root (the dataset's own spelling).
pub const LIST_FILE: &str = "EmoLabel/list_patition_label.txt";

/// Whether `root` holds the distributed layout (else the re-packaging is read).
pub fn is_distributed(root: &Path) -> bool {
    root.join(LIST_FILE).is_file()
}

/// Reads RAF-DB in either layout into an inventory (one slot per frame position, the image
/// repeated). Errors (whole dataset): neither layout found, an unreadable list file.
pub fn inventory(root: &Path, slots: usize) -> Result<Inventory> {
    if is_distributed(root) {
        distributed(root, slots)
    } else if root.join("train").is_dir() || root.join("test").is_dir() {
        repackaged(root, slots)
    } else {
        Err(PrepError::parse(
            root,
            0,
            format!("neither {LIST_FILE} nor train/<1..7>/ and test/<1..7>/ folders"),
        ))
    }
}

fn split_of(name: &str) -> Option<shard::Split> {
    if name.starts_with("train") {
        Some(shard::Split::Train)
    } else if name.starts_with("test") {
        Some(shard::Split::Test)
    } else {
        None
    }
}

/// A box file's `x1 y1 x2 y2` as an inclusive integer box.
pub fn parse_box(text: &str) -> std::result::Result<[i64; 4], String> {
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| format!("{t:?} is not a number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    if v.len() != 4 || v.iter().any(|x| !x.is_finite()) {
        return Err(format!("{} numbers, expected x1 y1 x2 y2", v.len()));
    }
    let b = [v[0], v[1], v[2], v[3]].map(|x| x.round() as i64);
    if b[2] <= b[0] || b[3] <= b[1] {
        return Err(format!("empty box {b:?}"));
    }
    Ok(b)
}

fn distributed(root: &Path, slots: usize) -> Result<Inventory> {
    let list = root.join(LIST_FILE);
    let text = std::fs::read(&list).map_err(|e| PrepError::Io {
        path: list.clone(),
        cause: e,
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut inv = Inventory::new("rafdb", root.to_path_buf(), &RAFDB_CLASSES);
    let original = root.join("Image/original").is_dir();
    let (mut with_box, mut without_box) = (0u64, 0u64);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let input = format!("{LIST_FILE}:{line_no}");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(label), None) = (fields.next(), fields.next(), fields.next()) else {
            inv.reject(
                input,
                "parse",
                reason::BAD_ROW,
                format!("{line:?}: expected `<image> <label>`"),
            );
            continue;
        };
        let label = match label.parse::<u16>() {
            Ok(l @ 1..=7) => l - 1,
            _ => {
                inv.reject(
                    input,
                    "parse",
                    reason::BAD_LABEL,
                    format!("{label:?} is not a label 1–7"),
                );
                continue;
            }
        };
        let Some(split) = split_of(name) else {
            inv.reject(
                input,
                "parse",
                reason::BAD_NAME,
                format!("{name:?} is neither train_* nor test_*"),
            );
            continue;
        };
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        let (rel, dataset_box) = if original {
            let rel = format!("Image/original/{name}");
            let box_rel = format!("Annotation/boundingbox/{stem}_boundingbox.txt");
            let b = match std::fs::read_to_string(root.join(&box_rel)) {
                Ok(t) => match parse_box(&t) {
                    Ok(b) => Some(b),
                    Err(why) => {
                        inv.reject(box_rel, "parse", reason::BAD_BOX, why);
                        continue;
                    }
                },
                Err(_) => None,
            };
            (rel, b)
        } else {
            (format!("Image/aligned/{stem}_aligned.jpg"), None)
        };
        if !root.join(&rel).is_file() {
            inv.reject(
                &rel,
                "read",
                reason::UNREADABLE,
                "listed in the label file, not on disk",
            );
            continue;
        }
        if dataset_box.is_some() {
            with_box += 1;
        } else {
            without_box += 1;
        }
        inv.push(InputItem {
            dataset_boxes: dataset_box.map(|b| vec![b; slots]),
            ..InputItem::still_file(format!("rafdb/{stem}"), label, split, rel, slots)
        });
    }
    inv.notes.insert(
        "rafdb".into(),
        serde_json::json!({
            "layout": "distributed",
            "images": if original { "original" } else { "aligned" },
            "with_dataset_box": with_box,
            "detected_box": without_box,
        }),
    );
    inv.finish().map_err(|e| PrepError::parse(&list, 0, e))?;
    Ok(inv)
}

fn repackaged(root: &Path, slots: usize) -> Result<Inventory> {
    let mut inv = Inventory::new("rafdb", root.to_path_buf(), &RAFDB_CLASSES);
    for top in walk::list(root, "", &mut inv) {
        let Some(split) = split_of(&top.name).filter(|_| top.is_dir) else {
            inv.exclude(
                &top.name,
                reason::NOT_AN_IMAGE,
                "not a train/ or test/ folder",
            );
            continue;
        };
        for class in walk::list(&top.path, &top.name, &mut inv) {
            let rel_class = walk::join(&top.name, &class.name);
            let label = match class.name.parse::<u16>() {
                Ok(l @ 1..=7) if class.is_dir => l - 1,
                _ => {
                    inv.reject(
                        &rel_class,
                        "parse",
                        reason::UNKNOWN_CLASS,
                        "class folders are 1–7",
                    );
                    continue;
                }
            };
            for f in walk::list(&class.path, &rel_class, &mut inv) {
                let rel = walk::join(&rel_class, &f.name);
                if f.is_dir || !is_image_name(&f.name) {
                    inv.exclude(&rel, reason::NOT_AN_IMAGE, "not an image file");
                    continue;
                }
                let stem = f.name.rsplit_once('.').map_or(f.name.as_str(), |(s, _)| s);
                let id = format!("rafdb/{}/{stem}", top.name);
                inv.push(InputItem::still_file(id, label, split, rel, slots));
            }
        }
    }
    inv.notes.insert(
        "rafdb".into(),
        serde_json::json!({"layout": "train/<1..7>, test/<1..7>"}),
    );
    inv.finish().map_err(|e| PrepError::parse(root, 0, e))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_files() {
        assert_eq!(
            parse_box("129.02 146.5 425.0 442.4\n"),
            Ok([129, 147, 425, 442])
        );
        assert!(parse_box("1 2 3").is_err());
        assert!(parse_box("10 10 5 20").is_err());
        assert!(parse_box("a b c d").is_err());
    }
}
