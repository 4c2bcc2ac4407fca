//! Oulu-CASIA: `OriginalImg/{VL,NI}/{Strong,Weak,Dark}/P001..P080/{Anger,…}/NNN.jpeg`.

use super::walk;
use crate::inventory::{reason, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use std::path::Path;

/// Emotion folder names in label order.
pub const OULU_FOLDERS: [&str; 6] = [
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
];

/// Class names in label order.
pub const OULU_CLASSES: [&str; 6] = [
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
];

/// The authors' fold-list labels {1, 3, 4, 5, 6, 7} (CK+ codes without contempt) → our 0..5.
pub fn label_from_fold_list(code: u16) -> Option<u16> {
    match code {
        1 => Some(0),
        3..=7 => Some(code - 2),
        _ => None,
    }
}

/// The sample id `P001/Anger` of a fold-list sequence `OriginalImg/VL/Strong/P001/Anger`, when it
/// belongs to the chosen modality and illumination.
pub fn sample_id_from_fold_list(seq: &str, modality: &str, illumination: &str) -> Option<String> {
    let prefix = format!("OriginalImg/{modality}/{illumination}/");
    seq.strip_prefix(&prefix).map(str::to_string)
}

/// Reads the chosen modality/illumination of an Oulu-CASIA tree. `root` is the folder that holds
/// `OriginalImg/`. Sample ids are `Pnnn/<Emotion>`.
///
/// Errors: the `OriginalImg/<modality>/<illumination>` folder does not exist.
pub fn inventory(
    root: &Path,
    modality: &str,
    illumination: &str,
    frame_indices: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Inventory> {
    let base_rel = format!("OriginalImg/{modality}/{illumination}");
    let base = root.join(&base_rel);
    if !base.is_dir() {
        return Err(PrepError::parse(
            root,
            0,
            format!("no {base_rel}/ folder: is this the Oulu-CASIA root?"),
        ));
    }
    let mut inv = Inventory::new("oulu", root.to_path_buf(), &OULU_CLASSES);
    for (person, prel) in walk::subdirs(&base, &base_rel, "subject", &mut inv) {
        for (emo, rel) in walk::subdirs(&person.path, &prel, "emotion", &mut inv) {
            let Some(label) = OULU_FOLDERS.iter().position(|f| *f == emo.name) else {
                inv.reject(
                    &rel,
                    "parse",
                    reason::UNKNOWN_CLASS,
                    format!("{:?} is not one of {OULU_FOLDERS:?}", emo.name),
                );
                continue;
            };
            let Some(mut frames) = walk::sequence_frames(&emo.path, &rel, &mut inv) else {
                continue;
            };
            let number = |n: &str| n.split('.').next().and_then(|s| s.parse::<u32>().ok());
            frames.sort_by_key(|n| (number(n), n.clone()));
            let sources = frame_indices(frames.len())
                .into_iter()
                .map(|i| FrameSource::File {
                    path: walk::join(&rel, &frames[i]),
                    index: number(&frames[i]).unwrap_or(i as u32),
                })
                .collect();
            inv.push(InputItem::sequence(
                format!("{}/{}", person.name, emo.name),
                person.name.clone(),
                emo.name.clone(),
                label as u16,
                sources,
                rel,
            ));
        }
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_list_mapping() {
        assert_eq!(label_from_fold_list(1), Some(0));
        assert_eq!(label_from_fold_list(2), None);
        assert_eq!(label_from_fold_list(7), Some(5));
        assert_eq!(
            sample_id_from_fold_list("OriginalImg/VL/Strong/P001/Anger", "VL", "Strong"),
            Some("P001/Anger".into())
        );
        assert_eq!(
            sample_id_from_fold_list("OriginalImg/NI/Strong/P001/Anger", "VL", "Strong"),
            None
        );
    }
}
