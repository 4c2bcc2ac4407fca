//! ExpW (Expression in-the-Wild; Zhang et al., IJCV 2018): `label/label.lst` lists one face per
//! line — `image_name face_id top left right bottom confidence label` (labels 0–6 = angry,
//! disgust, fear, happy, sad, surprise, neutral) — with the photos under `image/origin/`. Every
//! listed face is one sample, cut in its listed box. ExpW has no official split: folds are
//! drawn by photo (the photo is the "subject"), so faces of one photo never straddle a fold.

use crate::inventory::{reason, InputItem, Inventory};
use crate::{PrepError, Result};
use std::path::Path;

/// ExpW class names in label order.
pub const EXPW_CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// The label list, relative to the root.
pub const LABEL_FILE: &str = "label/label.lst";

/// One face of `label.lst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFace {
    /// Photo file name under `image/origin/`.
    pub image: String,
    /// The face's number within the photo.
    pub face: u32,
    /// (left, top, right, bottom), pixels.
    pub face_box: [i64; 4],
    /// Class 0–6.
    pub label: u16,
}

/// Parses one `label.lst` line, or says why it is bad (reason code, detail).
pub fn parse_line(line: &str) -> std::result::Result<ListedFace, (&'static str, String)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 8 {
        return Err((reason::BAD_ROW, format!("{} fields, expected 8", f.len())));
    }
    let int = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| (reason::BAD_BOX, format!("{s:?} is not an integer")))
    };
    let face = f[1]
        .parse::<u32>()
        .map_err(|_| (reason::BAD_ROW, format!("face id {:?}", f[1])))?;
    let (top, left, right, bottom) = (int(f[2])?, int(f[3])?, int(f[4])?, int(f[5])?);
    if right <= left || bottom <= top || left < 0 || top < 0 {
        return Err((
            reason::BAD_BOX,
            format!("box top {top} left {left} right {right} bottom {bottom}"),
        ));
    }
    let label = match f[7].parse::<u16>() {
        Ok(l @ 0..=6) => l,
        _ => return Err((reason::BAD_LABEL, format!("{:?} is not a label 0–6", f[7]))),
    };
    Ok(ListedFace {
        image: f[0].to_string(),
        face,
        face_box: [left, top, right, bottom],
        label,
    })
}

/// Reads ExpW into an inventory (one slot per frame position, the photo repeated).
///
/// Errors (whole dataset): no `label/label.lst`.
pub fn inventory(root: &Path, slots: usize) -> Result<Inventory> {
    let list = root.join(LABEL_FILE);
    let bytes = std::fs::read(&list).map_err(|e| PrepError::Io {
        path: list.clone(),
        cause: e,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut inv = Inventory::new("expw", root.to_path_buf(), &EXPW_CLASSES);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let input = format!("{LABEL_FILE}:{}", i + 1);
        let ListedFace {
            image,
            face,
            face_box: b,
            label,
        } = match parse_line(line) {
            Ok(v) => v,
            Err((why, detail)) => {
                inv.reject(input, "parse", why, detail);
                continue;
            }
        };
        let rel = format!("image/origin/{image}");
        if !root.join(&rel).is_file() {
            inv.reject(
                input,
                "read",
                reason::UNREADABLE,
                format!("{rel} is not on disk"),
            );
            continue;
        }
        let stem = image.rsplit_once('.').map_or(image.as_str(), |(s, _)| s);
        let id = format!("expw/{stem}/{face}");
        inv.push(InputItem {
            subject: stem.to_string(),
            dataset_boxes: Some(vec![b; slots]),
            // Failure rows name the list line: one photo holds several listed faces.
            input,
            ..InputItem::still_file(id, label, shard::Split::Train, rel, slots)
        });
    }
    inv.finish().map_err(|e| PrepError::parse(&list, 0, e))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lines() {
        assert_eq!(
            parse_line("afraid_African_214.jpg 0 28 113 226 311 40.0 2"),
            Ok(ListedFace {
                image: "afraid_African_214.jpg".into(),
                face: 0,
                face_box: [113, 28, 226, 311],
                label: 2
            })
        );
        assert_eq!(parse_line("a.jpg 0 1 2 3").unwrap_err().0, reason::BAD_ROW);
        assert_eq!(
            parse_line("a.jpg 0 50 10 5 60 1.0 2").unwrap_err().0,
            reason::BAD_BOX
        );
        assert_eq!(
            parse_line("a.jpg 0 5 10 50 60 1.0 7").unwrap_err().0,
            reason::BAD_LABEL
        );
    }
}
