//! Video clip datasets, read through FFmpeg ([`face::video`]):
//!
//! * **DFEW**: `Clip/original/<id>.mp4` and the official 5-fold split
//!   `EmoLabel_DataSplit/{train,test}(single-labeled)/set_<k>.csv` (`video_name,label`, labels
//!   1–7 = happy, sad, neutral, angry, surprise, disgust, fear). A clip in `test(...)/set_k.csv`
//!   is in fold `k − 1`; the train lists must give it the same label. Clips no list names (DFEW's
//!   multi-labelled ones) are excluded as `unlabelled`.
//! * **AFEW**: `Train/<Class>/<clip>.avi` and `Val/<Class>/<clip>.avi`, classes Angry, Disgust,
//!   Fear, Happy, Neutral, Sad, Surprise. AFEW's test labels are withheld, so papers report Val:
//!   Train → train, Val → test (the held-out split; settings are chosen on a share of Train, never
//!   on Val); a `Test/` folder (no labels) is excluded.
//!
//! Every clip is probed (in parallel) for its frame timestamps; the recipe's frame positions
//! pick `round(p × (n − 1))` of its `n` frames, which the build decodes by seeking. A clip FFmpeg
//! cannot read, without a video stream or cut short is a failure row with FFmpeg's reason.

use super::walk::{self, Entry};
use crate::inventory::{reason, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use face::video::{self, VideoInfo};
use shard::Split;
use std::collections::BTreeMap;
use std::path::Path;

/// DFEW class names in label order (label file codes 1–7).
pub const DFEW_CLASSES: [&str; 7] = [
    "happy", "sad", "neutral", "angry", "surprise", "disgust", "fear",
];

/// AFEW class folders in label order.
pub const AFEW_FOLDERS: [&str; 7] = [
    "Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise",
];

/// AFEW class names in label order.
pub const AFEW_CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
];

/// DFEW's clip folder and split folder, relative to the root.
pub const DFEW_CLIPS: &str = "Clip/original";
/// DFEW's split folder.
pub const DFEW_SPLITS: &str = "EmoLabel_DataSplit";
/// DFEW's number of folds.
pub const DFEW_FOLDS: usize = 5;

/// A clip to probe: its relative path, sample id, label, split.
struct Candidate {
    rel: String,
    sample_id: String,
    subject: String,
    label: u16,
    split: Split,
}

/// Probes every candidate in parallel (order kept) and adds each as an input or a failure row.
fn add_probed(
    inv: &mut Inventory,
    root: &Path,
    candidates: Vec<Candidate>,
    frame_indices: &dyn Fn(usize) -> Vec<usize>,
) {
    use rayon::prelude::*;
    let probes: Vec<face::Result<VideoInfo>> = candidates
        .par_iter()
        .map(|c| video::probe(&root.join(&c.rel)))
        .collect();
    for (c, probe) in candidates.into_iter().zip(probes) {
        match probe {
            Ok(info) => {
                let frames = frame_indices(info.frames())
                    .into_iter()
                    .map(|i| FrameSource::Video {
                        path: c.rel.clone(),
                        index: i as u32,
                        seek: info.seek_time(i),
                        width: info.width as u32,
                        height: info.height as u32,
                    })
                    .collect();
                let stem = c.sample_id.clone();
                inv.push(InputItem {
                    subject: c.subject,
                    sequence: Some(stem),
                    ..InputItem::new(c.sample_id, c.label, c.split, frames, c.rel)
                });
            }
            Err(face::FaceError::Video { fault, reason, .. }) => {
                inv.reject(&c.rel, "decode", fault.code(), reason)
            }
            Err(e) => inv.reject(&c.rel, "decode", reason::DECODE_ERROR, e.to_string()),
        }
    }
}

/// Excludes a top-level entry that is not part of the layout (its files are not read).
fn exclude_other(inv: &mut Inventory, e: &Entry, rel: &str, layout: &str) {
    let what = if e.is_dir { "folder" } else { "file" };
    inv.exclude(
        rel,
        reason::UNKNOWN_FOLDER,
        format!("a {what} that is not part of the {layout} layout read here; not read"),
    );
}

/// One DFEW split list: clip name → (label code, line).
fn read_split_list(path: &Path, inv: &mut Inventory, rel: &str) -> BTreeMap<String, u16> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            inv.reject(rel, "read", reason::UNREADABLE, e.to_string());
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.to_ascii_lowercase().starts_with("video_name")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let label = fields.get(1).and_then(|l| l.parse::<u16>().ok());
        match (fields.as_slice(), label) {
            ([name, _], Some(code @ 1..=7)) => {
                out.insert(clip_key(name), code);
            }
            _ => inv.reject(
                format!("{rel}:{}", n + 1),
                "parse",
                reason::BAD_ROW,
                format!("{line:?}: not `video_name,label` with a label 1–7"),
            ),
        }
    }
    out
}

/// A clip name as the lists and the folder agree on it: the stem without leading zeros
/// (`00042.mp4`, `00042` and `42` are one clip).
fn clip_key(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let trimmed = stem.trim_start_matches('0');
    if trimmed.is_empty() && !stem.is_empty() {
        "0".into()
    } else {
        trimmed.to_string()
    }
}

/// Reads a DFEW tree.
///
/// Errors: no `Clip/original/` or `EmoLabel_DataSplit/` folder.
pub fn inventory_dfew(
    root: &Path,
    frame_indices: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Inventory> {
    for need in [DFEW_CLIPS, DFEW_SPLITS] {
        if !root.join(need).is_dir() {
            return Err(PrepError::parse(
                root,
                0,
                format!("no {need}/ folder: is this the DFEW root?"),
            ));
        }
    }
    let mut inv = Inventory::new("dfew", root.to_path_buf(), &DFEW_CLASSES);
    for e in walk::list(root, "", &mut inv) {
        if e.name != "Clip" && e.name != DFEW_SPLITS {
            exclude_other(&mut inv, &e, &e.name, "DFEW");
        }
    }
    for e in walk::list(&root.join("Clip"), "Clip", &mut inv) {
        if e.name != "original" {
            exclude_other(&mut inv, &e, &walk::join("Clip", &e.name), "DFEW");
        }
    }
    // Fold k's test list gives the fold and label; the train lists must agree on the label.
    let mut fold_of: BTreeMap<String, (usize, u16)> = BTreeMap::new();
    let mut conflicts: BTreeMap<String, String> = BTreeMap::new();
    let mut train_labels: Vec<(String, u16, String)> = Vec::new();
    let mut listed_files = std::collections::BTreeSet::new();
    for k in 1..=DFEW_FOLDS {
        for (part, is_test) in [
            ("test(single-labeled)", true),
            ("train(single-labeled)", false),
        ] {
            let rel = format!("{DFEW_SPLITS}/{part}/set_{k}.csv");
            listed_files.insert(rel.clone());
            let path = root.join(&rel);
            if !path.is_file() {
                inv.reject(&rel, "read", reason::UNREADABLE, "missing fold list");
                continue;
            }
            for (clip, code) in read_split_list(&path, &mut inv, &rel) {
                if is_test {
                    if let Some((other, _)) = fold_of.insert(clip.clone(), (k - 1, code)) {
                        conflicts.insert(
                            clip,
                            format!("in the test lists of folds {} and {k}", other + 1),
                        );
                    }
                } else {
                    train_labels.push((clip, code, rel.clone()));
                }
            }
        }
    }
    for (clip, code, rel) in train_labels {
        match fold_of.get(&clip) {
            Some(&(_, c)) if c != code => {
                conflicts.insert(clip, format!("label {code} in {rel}, {c} in its test list"));
            }
            _ => {}
        }
    }
    // Everything else under the split folder is not read.
    for part in walk::list(&root.join(DFEW_SPLITS), DFEW_SPLITS, &mut inv) {
        let prel = walk::join(DFEW_SPLITS, &part.name);
        if !part.is_dir {
            exclude_other(&mut inv, &part, &prel, "DFEW");
            continue;
        }
        for f in walk::list(&part.path, &prel, &mut inv) {
            let frel = walk::join(&prel, &f.name);
            if !listed_files.contains(&frel) {
                exclude_other(&mut inv, &f, &frel, "DFEW");
            }
        }
    }
    let mut candidates = Vec::new();
    let mut seen_clips = std::collections::BTreeSet::new();
    for f in walk::list(&root.join(DFEW_CLIPS), DFEW_CLIPS, &mut inv) {
        let rel = walk::join(DFEW_CLIPS, &f.name);
        if f.is_dir || !video::is_video_name(&f.name) {
            inv.exclude(&rel, reason::NOT_A_VIDEO_FILE, "not a video file");
            continue;
        }
        let clip = clip_key(&f.name);
        seen_clips.insert(clip.clone());
        if let Some(why) = conflicts.get(&clip) {
            inv.reject(&rel, "parse", reason::LABEL_MISMATCH, why.clone());
            continue;
        }
        let Some(&(fold, code)) = fold_of.get(&clip) else {
            inv.exclude(&rel, reason::UNLABELLED, "in no single-labelled fold list");
            continue;
        };
        let sample_id = f.name.rsplit_once('.').map_or(f.name.as_str(), |(s, _)| s);
        candidates.push(Candidate {
            rel,
            sample_id: sample_id.to_string(),
            subject: String::new(),
            label: code - 1,
            split: Split::Fold(fold as u16),
        });
    }
    for clip in fold_of.keys().filter(|c| !seen_clips.contains(*c)) {
        inv.reject(
            format!("{DFEW_CLIPS}/{clip}"),
            "read",
            reason::UNREADABLE,
            "listed in the fold lists but not in Clip/original/",
        );
    }
    add_probed(&mut inv, root, candidates, frame_indices);
    inv.notes.insert(
        "folds".into(),
        serde_json::json!({"source": "EmoLabel_DataSplit test(single-labeled)/set_k.csv", "folds": DFEW_FOLDS}),
    );
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}

/// Reads an AFEW tree (`Train/`, `Val/`, and an unlabelled `Test/` that is excluded).
///
/// Errors: neither `Train/` nor `Val/` exists.
pub fn inventory_afew(
    root: &Path,
    frame_indices: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Inventory> {
    if !root.join("Train").is_dir() && !root.join("Val").is_dir() {
        return Err(PrepError::parse(
            root,
            0,
            "no Train/ or Val/ folder: is this the AFEW root?",
        ));
    }
    let mut inv = Inventory::new("afew", root.to_path_buf(), &AFEW_CLASSES);
    let mut candidates = Vec::new();
    for top in walk::list(root, "", &mut inv) {
        let split = match top.name.as_str() {
            "Train" if top.is_dir => Split::Train,
            "Val" if top.is_dir => Split::Test,
            "Test" if top.is_dir => {
                inv.exclude(
                    &top.name,
                    reason::UNLABELLED,
                    "AFEW's test clips carry no labels; not read",
                );
                continue;
            }
            _ => {
                exclude_other(&mut inv, &top, &top.name, "AFEW");
                continue;
            }
        };
        for (class, crel) in walk::subdirs(&top.path, &top.name, "class", &mut inv) {
            let Some(label) = AFEW_FOLDERS.iter().position(|f| *f == class.name) else {
                inv.reject(
                    &crel,
                    "parse",
                    reason::UNKNOWN_CLASS,
                    format!("{:?} is not one of {AFEW_FOLDERS:?}", class.name),
                );
                continue;
            };
            for f in walk::list(&class.path, &crel, &mut inv) {
                let rel = walk::join(&crel, &f.name);
                if f.is_dir || !video::is_video_name(&f.name) {
                    inv.exclude(&rel, reason::NOT_A_VIDEO_FILE, "not a video file");
                    continue;
                }
                let stem = f.name.rsplit_once('.').map_or(f.name.as_str(), |(s, _)| s);
                candidates.push(Candidate {
                    sample_id: format!("{}/{}/{stem}", top.name, class.name),
                    rel,
                    subject: String::new(),
                    label: label as u16,
                    split,
                });
            }
        }
    }
    add_probed(&mut inv, root, candidates, frame_indices);
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_names_match_across_lists_and_folder() {
        assert_eq!(clip_key("00042.mp4"), "42");
        assert_eq!(clip_key("00042"), "42");
        assert_eq!(clip_key("42"), "42");
        assert_eq!(clip_key("000.mp4"), "0");
        assert_eq!(clip_key("a01"), "a01");
    }

    /// A tiny test-pattern clip (no face: the parsers only probe).
    fn clip(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let ok = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc=size=64x48:rate=10:duration=0.5")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn rows(inv: &Inventory) -> BTreeMap<String, (String, String)> {
        inv.rejected
            .iter()
            .map(|r| (r.input.clone(), (r.reason.clone(), r.detail.clone())))
            .collect()
    }

    /// Every way a DFEW copy can disagree with its lists ends in a row naming it: a label the
    /// train lists contradict, a clip in two test lists, a listed clip missing, a missing list,
    /// folders the layout does not read; list names without leading zeros match the files.
    #[test]
    fn dfew_disagreements_are_rows() {
        if video::Ffmpeg::find().is_err() {
            testkit::unavailable("dfew_disagreements_are_rows", "ffmpeg not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for id in 1..=5 {
            clip(&root.join(format!("{DFEW_CLIPS}/{id:05}.mp4")));
        }
        std::fs::create_dir_all(root.join("Annotation")).unwrap();
        let list = |part: &str, k: usize, rows: &str| {
            let p = root.join(format!("{DFEW_SPLITS}/{part}(single-labeled)/set_{k}.csv"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("video_name,label\n{rows}")).unwrap();
        };
        // 1: fold 0, label 1 (train list of fold 2 agrees); 2: test label 2, train says 5;
        // 3: in the test lists of folds 1 and 2; 4: fold 3; 5: in no list; 9: listed, no file.
        list("test", 1, "1,1\n2,2\n3,3\n");
        list("train", 1, "4,4\n");
        list("test", 2, "3,3\n9,6\n");
        list("train", 2, "1,1\n2,5\n");
        list("test", 3, "00004,4\n");
        list("train", 3, "");
        list("test", 4, "");
        list("train", 4, "");
        list("train", 5, "");
        let inv = inventory_dfew(root, &|n| {
            crate::config::PrepConfig::default().frame_indices(n)
        })
        .unwrap();
        let r = rows(&inv);
        let ids: Vec<(&str, u16, Split)> = inv
            .items
            .iter()
            .map(|i| (i.sample_id.as_str(), i.label, i.split))
            .collect();
        assert_eq!(
            ids,
            [("00001", 0, Split::Fold(0)), ("00004", 3, Split::Fold(2))]
        );
        assert_eq!(r["Clip/original/00002.mp4"].0, reason::LABEL_MISMATCH);
        assert!(r["Clip/original/00002.mp4"].1.contains("label 5"), "{r:?}");
        assert_eq!(r["Clip/original/00003.mp4"].0, reason::LABEL_MISMATCH);
        assert!(
            r["Clip/original/00003.mp4"].1.contains("folds 1 and 2"),
            "{r:?}"
        );
        assert_eq!(r["Clip/original/00005.mp4"].0, reason::UNLABELLED);
        assert_eq!(r["Clip/original/9"].0, reason::UNREADABLE);
        let missing = format!("{DFEW_SPLITS}/test(single-labeled)/set_5.csv");
        assert_eq!(r[&missing].1, "missing fold list");
        assert_eq!(r["Annotation"].0, reason::UNKNOWN_FOLDER);
        // Every file and folder seen is an item or a row.
        assert_eq!(inv.seen as usize, inv.items.len() + inv.rejected.len());
        // Each item holds the recipe's three frames of its 5-frame clip.
        let idx: Vec<u32> = inv.items[0].frames.iter().map(|f| f.index()).collect();
        assert_eq!(idx, [0, 2, 4]);
    }

    /// AFEW: a class folder that is not one of the seven, a file where class folders are, and a
    /// non-video file among the clips are rows; Val is the reported (test) split.
    #[test]
    fn afew_layout_rows_and_splits() {
        if video::Ffmpeg::find().is_err() {
            testkit::unavailable("afew_layout_rows_and_splits", "ffmpeg not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        clip(&root.join("Train/Happy/001.avi"));
        clip(&root.join("Val/Sad/002.avi"));
        clip(&root.join("Train/Contempt/003.avi"));
        std::fs::write(root.join("Train/notes.txt"), "x").unwrap();
        std::fs::write(root.join("Train/Happy/thumbs.db"), "x").unwrap();
        let inv = inventory_afew(root, &|n| {
            crate::config::PrepConfig::default().frame_indices(n)
        })
        .unwrap();
        let ids: Vec<(&str, Split)> = inv
            .items
            .iter()
            .map(|i| (i.sample_id.as_str(), i.split))
            .collect();
        assert_eq!(
            ids,
            [
                ("Train/Happy/001", Split::Train),
                ("Val/Sad/002", Split::Test)
            ]
        );
        let r = rows(&inv);
        assert_eq!(r["Train/Contempt"].0, reason::UNKNOWN_CLASS);
        assert_eq!(r["Train/Happy/thumbs.db"].0, reason::NOT_A_VIDEO_FILE);
        assert_eq!(r["Train/notes.txt"].0, reason::NOT_AN_IMAGE);
        assert_eq!(inv.seen as usize, inv.items.len() + inv.rejected.len());
    }

    #[test]
    fn split_lists_report_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("set_1.csv");
        std::fs::write(&f, "video_name,label\n00001,3\n2,9\nthree\n00004,7\n").unwrap();
        let mut inv = Inventory::new("dfew", dir.path().into(), &DFEW_CLASSES);
        let got = read_split_list(&f, &mut inv, "set_1.csv");
        assert_eq!(got.len(), 2);
        assert_eq!(got["1"], 3);
        assert_eq!(got["4"], 7);
        assert_eq!(inv.rejected.len(), 2);
        assert!(inv.rejected.iter().all(|r| r.reason == reason::BAD_ROW));
    }
}
