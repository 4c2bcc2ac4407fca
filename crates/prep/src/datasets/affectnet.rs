//! AffectNet (Mollahosseini et al., 2017), the manually annotated part:
//! `Manually_Annotated_file_lists/training.csv` and `validation.csv` with the columns
//! `subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
//! expression, valence, arousal`, images under `Manually_Annotated_Images/`. Expressions 0–7 =
//! neutral, happy, sad, surprise, fear, disgust, anger, contempt; 8 (None), 9 (Uncertain) and
//! 10 (No-Face) are excluded with their own reasons; the 7-class protocol also excludes contempt.
//! The dataset's 68 landmarks (`x;y;x;y;…`) are used as they are, its face box is recorded, and
//! valence / arousal are kept in the record. training.csv is the training split; validation.csv
//! is the test split by convention (the official test set is not public).

use super::csv::{column, csv_lines, split_csv_line};
use crate::inventory::{reason, InputItem, Inventory};
use crate::{PrepError, Result};
use std::path::Path;

/// AffectNet's eight expression classes in label order.
pub const AFFECTNET_CLASSES: [&str; 8] = [
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
];

/// The file lists, relative to the root, with the split each one is.
pub const LISTS: [(&str, shard::Split); 2] = [
    (
        "Manually_Annotated_file_lists/training.csv",
        shard::Split::Train,
    ),
    (
        "Manually_Annotated_file_lists/validation.csv",
        shard::Split::Test,
    ),
];

/// Where the images are, relative to the root.
pub const IMAGES: &str = "Manually_Annotated_Images";

/// One parsed row.
#[derive(Debug, Clone, PartialEq)]
pub struct AffectNetRow {
    /// Image path under `Manually_Annotated_Images/`.
    pub path: String,
    /// (left, top, right, bottom), inclusive.
    pub face_box: [i64; 4],
    /// The 68 landmarks.
    pub landmarks: Vec<[f32; 2]>,
    /// Expression 0–10.
    pub expression: u16,
    /// Valence and arousal.
    pub valence_arousal: [f32; 2],
}

/// Parses one data row given the column positions (path, x, y, w, h, landmarks, expression,
/// valence, arousal).
pub fn parse_row(
    fields: &[String],
    cols: &[usize; 9],
) -> std::result::Result<AffectNetRow, (&'static str, String)> {
    let get = |k: usize| fields.get(cols[k]).map(|s| s.trim()).unwrap_or("");
    let num = |k: usize, what: &'static str| -> std::result::Result<f64, (&'static str, String)> {
        get(k)
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| (what, format!("{:?} is not a number", get(k))))
    };
    let (x, y, w, h) = (
        num(1, reason::BAD_BOX)?,
        num(2, reason::BAD_BOX)?,
        num(3, reason::BAD_BOX)?,
        num(4, reason::BAD_BOX)?,
    );
    if w < 1.0 || h < 1.0 || x < 0.0 || y < 0.0 {
        return Err((reason::BAD_BOX, format!("face box {x},{y} {w}×{h}")));
    }
    let v: Vec<f32> = get(5)
        .split(';')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse::<f32>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            (
                reason::BAD_LANDMARKS,
                "a landmark is not a number".to_string(),
            )
        })?;
    if v.len() != 136 {
        return Err((
            reason::BAD_LANDMARKS,
            format!("{} landmark values, expected 136 (68 x;y pairs)", v.len()),
        ));
    }
    let expression = get(6)
        .parse::<u16>()
        .ok()
        .filter(|e| *e <= 10)
        .ok_or_else(|| {
            (
                reason::BAD_LABEL,
                format!("expression {:?} is not 0–10", get(6)),
            )
        })?;
    let va = [
        num(7, reason::BAD_LABEL)? as f32,
        num(8, reason::BAD_LABEL)? as f32,
    ];
    Ok(AffectNetRow {
        path: get(0).to_string(),
        face_box: [
            x.round() as i64,
            y.round() as i64,
            (x + w).round() as i64 - 1,
            (y + h).round() as i64 - 1,
        ],
        landmarks: v.chunks(2).map(|p| [p[0], p[1]]).collect(),
        expression,
        valence_arousal: va,
    })
}

/// Reads AffectNet's file lists into an inventory with `classes` = 8 (contempt kept) or 7.
///
/// Errors (whole dataset): a missing list file or a header without the columns.
pub fn inventory(root: &Path, classes: u8, slots: usize) -> Result<Inventory> {
    if classes != 7 && classes != 8 {
        return Err(PrepError::parse(
            Path::new("affectnet_classes"),
            0,
            format!("{classes}: AffectNet protocols use 7 or 8 classes"),
        ));
    }
    let names = &AFFECTNET_CLASSES[..classes as usize];
    let mut inv = Inventory::new("affectnet", root.to_path_buf(), names);
    for (list, split) in LISTS {
        let path = root.join(list);
        let (header, lines) = csv_lines(&path)?;
        let want = [
            "subDirectory_filePath",
            "face_x",
            "face_y",
            "face_width",
            "face_height",
            "facial_landmarks",
            "expression",
            "valence",
            "arousal",
        ];
        let mut cols = [0usize; 9];
        for (c, name) in cols.iter_mut().zip(want) {
            *c = column(&header, name, &path, &want.join(","))?;
        }
        for (line, _, text) in lines {
            let input = format!("{list}:{line}");
            let fields = match text.and_then(|t| split_csv_line(&t)) {
                Ok(f) => f,
                Err(e) => {
                    inv.reject(input, "parse", reason::BAD_ROW, e);
                    continue;
                }
            };
            if fields.len() != header.len() {
                inv.reject(
                    input,
                    "parse",
                    reason::BAD_ROW,
                    format!("{} fields, the header has {}", fields.len(), header.len()),
                );
                continue;
            }
            let row = match parse_row(&fields, &cols) {
                Ok(r) => r,
                Err((why, detail)) => {
                    inv.reject(input, "parse", why, detail);
                    continue;
                }
            };
            let excluded = match row.expression {
                8 => Some((reason::AFFECTNET_NONE, "expression 8 (None)")),
                9 => Some((reason::AFFECTNET_UNCERTAIN, "expression 9 (Uncertain)")),
                10 => Some((reason::AFFECTNET_NO_FACE, "expression 10 (No-Face)")),
                7 if classes == 7 => Some((
                    reason::CONTEMPT_EXCLUDED,
                    "contempt, outside the 7-class protocol",
                )),
                _ => None,
            };
            if let Some((why, detail)) = excluded {
                inv.exclude(input, why, detail);
                continue;
            }
            let rel = format!("{IMAGES}/{}", row.path);
            let stem = row
                .path
                .rsplit_once('.')
                .map_or(row.path.as_str(), |(s, _)| s);
            inv.push(InputItem {
                dataset_landmarks: Some(vec![row.landmarks.clone(); slots]),
                dataset_boxes: Some(vec![row.face_box; slots]),
                valence_arousal: Some(row.valence_arousal),
                ..InputItem::still_file(
                    format!("affectnet/{stem}"),
                    row.expression,
                    split,
                    rel,
                    slots,
                )
            });
        }
    }
    inv.finish()
        .map_err(|e| PrepError::parse(&root.join(LISTS[0].0), 0, e))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> Vec<String> {
        split_csv_line(s).unwrap()
    }

    #[test]
    fn rows() {
        let lm: Vec<String> = (0..68)
            .flat_map(|k| [format!("{k}.5"), format!("{}", 2 * k)])
            .collect();
        let cols = [0, 1, 2, 3, 4, 5, 6, 7, 8];
        let r = parse_row(
            &fields(&format!(
                "689/a.jpg,10,20,100,120,{},3,0.5,-0.25",
                lm.join(";")
            )),
            &cols,
        )
        .unwrap();
        assert_eq!(r.face_box, [10, 20, 109, 139]);
        assert_eq!(r.landmarks.len(), 68);
        assert_eq!(r.landmarks[1], [1.5, 2.0]);
        assert_eq!((r.expression, r.valence_arousal), (3, [0.5, -0.25]));
        let short = parse_row(&fields("a.jpg,10,20,100,120,1;2;3,3,0,0"), &cols).unwrap_err();
        assert_eq!(short.0, reason::BAD_LANDMARKS);
        let bad = parse_row(
            &fields(&format!("a.jpg,10,20,0,120,{},3,0,0", lm.join(";"))),
            &cols,
        )
        .unwrap_err();
        assert_eq!(bad.0, reason::BAD_BOX);
        let label = parse_row(
            &fields(&format!("a.jpg,10,20,10,120,{},11,0,0", lm.join(";"))),
            &cols,
        )
        .unwrap_err();
        assert_eq!(label.0, reason::BAD_LABEL);
    }
}
