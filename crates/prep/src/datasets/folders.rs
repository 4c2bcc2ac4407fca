//! Class-folder datasets: `<root>/<class>/<file>` (CK+48 and similar), and JAFFE's flat folder
//! whose file names carry subject and class (`KA.AN1.39.tiff`). Subjects come from the file names
//! so that the k-fold split can keep each subject in one fold.

use super::names::{parse_ckplus_name, parse_jaffe_name, JAFFE_CLASSES};
use super::walk;
use crate::inventory::{is_image_name, reason, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// How subject (and sequence) are read from file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStyle {
    /// `S010_004_00000017.png`: frames of one sequence are grouped into one sample.
    CkPlus,
    /// No convention: every image is a sample; its subject comes from `--subject-regex` or
    /// `--subjects` (crate::subjects), else it is its own subject and the folds are image-level.
    Plain,
}

/// Reads `<root>/<class>/<file>`. `classes` fixes the class order (folders outside it are
/// rejected as `unknown_class`); `None` takes the sorted folder names.
pub fn inventory(
    root: &Path,
    dataset: &str,
    classes: Option<&[&str]>,
    style: NameStyle,
    frame_indices: &dyn Fn(usize) -> Vec<usize>,
    slots: usize,
) -> Result<Inventory> {
    let mut scratch = Inventory::default();
    let tops = walk::list(root, "", &mut scratch);
    let folder_names: Vec<String> = tops
        .iter()
        .filter(|e| e.is_dir)
        .map(|e| e.name.clone())
        .collect();
    if folder_names.is_empty() {
        return Err(PrepError::parse(
            root,
            0,
            "no class folders (<root>/<class>/<image>)",
        ));
    }
    let class_names: Vec<&str> = match classes {
        Some(c) => c.to_vec(),
        None => folder_names.iter().map(String::as_str).collect(),
    };
    let mut inv = Inventory::new(dataset, root.to_path_buf(), &class_names);
    inv.seen += scratch.seen;
    inv.rejected.append(&mut scratch.rejected);
    // (class, subject, sequence) -> frames (frame number, relative path)
    let mut groups: BTreeMap<(u16, String, String), Vec<(u32, String)>> = BTreeMap::new();
    for top in &tops {
        if !top.is_dir {
            inv.exclude(
                &top.name,
                reason::NOT_AN_IMAGE,
                "a file where class folders are",
            );
            continue;
        }
        let Some(label) = class_names.iter().position(|c| *c == top.name) else {
            inv.reject(
                &top.name,
                "parse",
                reason::UNKNOWN_CLASS,
                format!("{:?} is not one of {class_names:?}", top.name),
            );
            continue;
        };
        for f in walk::list(&top.path, &top.name, &mut inv) {
            let rel = walk::join(&top.name, &f.name);
            if f.is_dir || !is_image_name(&f.name) {
                inv.exclude(&rel, reason::NOT_AN_IMAGE, "not an image file");
                continue;
            }
            let stem = f.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f.name);
            match style {
                NameStyle::CkPlus => match parse_ckplus_name(&f.name) {
                    Some(n) => groups
                        .entry((
                            label as u16,
                            n.subject.clone(),
                            n.sequence.clone().unwrap_or_default(),
                        ))
                        .or_default()
                        .push((n.frame.unwrap_or(0), rel)),
                    None => inv.reject(
                        &rel,
                        "parse",
                        reason::BAD_NAME,
                        "expected Sxxx_yyy_nnnnnnnn.<ext>",
                    ),
                },
                NameStyle::Plain => {
                    let frame = FrameSource::File {
                        path: rel.clone(),
                        index: 0,
                    };
                    inv.push(InputItem::new(
                        format!("{}/{}", top.name, stem),
                        label as u16,
                        shard::Split::Train,
                        vec![frame; slots],
                        rel,
                    ));
                }
            }
        }
    }
    // Plain names carry no subject: `subjects::assign` gives them one (or marks the folds
    // image-level) before the split.
    // The unit of account is the sequence (one input, one sample); the file count goes to notes.
    let mut grouped = 0u64;
    let files_grouped = &mut grouped;
    for ((label, subject, sequence), mut frames) in groups {
        frames.sort();
        let chosen = frame_indices(frames.len());
        let sources = chosen
            .iter()
            .map(|&i| FrameSource::File {
                path: frames[i].1.clone(),
                index: frames[i].0,
            })
            .collect();
        let input = frames
            .iter()
            .map(|f| f.1.as_str())
            .collect::<Vec<_>>()
            .join(",");
        *files_grouped += frames.len() as u64;
        inv.push(InputItem::sequence(
            format!("{}/{}_{}", class_names[label as usize], subject, sequence),
            subject,
            sequence,
            label,
            sources,
            input,
        ));
    }
    if style == NameStyle::CkPlus {
        inv.notes.insert(
            "grouped_files".into(),
            format!("{grouped} image files grouped into sequences").into(),
        );
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}

/// Reads JAFFE: image files named `KA.AN1.39.tiff` in `root` (or in class folders under it).
/// Seven classes including neutral, as in the JAFFE literature.
pub fn inventory_jaffe(root: &Path, slots: usize) -> Result<Inventory> {
    let classes: Vec<&str> = JAFFE_CLASSES.iter().map(|(_, n)| *n).collect();
    let mut inv = Inventory::new("jaffe", root.to_path_buf(), &classes);
    let mut files = Vec::new();
    for e in walk::list(root, "", &mut inv) {
        if e.is_dir {
            for f in walk::list(&e.path, &e.name, &mut inv) {
                files.push((walk::join(&e.name, &f.name), f));
            }
        } else {
            files.push((e.name.clone(), e));
        }
    }
    for (rel, f) in files {
        if f.is_dir || !is_image_name(&f.name) {
            inv.exclude(&rel, reason::NOT_AN_IMAGE, "not an image file");
            continue;
        }
        let Some(n) = parse_jaffe_name(&f.name) else {
            inv.reject(
                &rel,
                "parse",
                reason::BAD_NAME,
                "expected XX.CCn.nnn.<ext> (JAFFE)",
            );
            continue;
        };
        let code = n.class_code.unwrap_or_default();
        let Some(label) = JAFFE_CLASSES.iter().position(|(c, _)| *c == code) else {
            inv.reject(
                &rel,
                "parse",
                reason::UNKNOWN_CLASS,
                format!("class code {code:?}"),
            );
            continue;
        };
        let stem = f.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f.name);
        let frame = FrameSource::File {
            path: rel.clone(),
            index: 0,
        };
        inv.push(InputItem {
            subject: n.subject,
            sequence: n.sequence,
            ..InputItem::new(
                stem.to_string(),
                label as u16,
                shard::Split::Train,
                vec![frame; slots],
                rel,
            )
        });
    }
    if inv.items.is_empty() && inv.rejected.is_empty() {
        return Err(PrepError::parse(root, 0, "no JAFFE images found"));
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}
