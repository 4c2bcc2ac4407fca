//! FER2013's csv (`emotion,pixels,Usage`), optionally relabelled by FER+ ([`super::ferplus`]);
//! the pixel lists are read by [`super::pixels`], the image-folder releases by
//! [`super::fer2013_folders`].
//!
//! The csv is read line by line ([`super::csv`]) so that every malformed row becomes a failure row
//! naming its line. A row is kept as its place in the file (offset and length) and its pixels are
//! read again when its frame is decoded, so memory does not grow with the pixels.

use super::csv::{column, csv_fields, csv_lines};
use super::ferplus::{read_ferplus, FERPLUS_CLASSES};
use super::pixels::parse_pixels;
use crate::inventory::{reason, CsvPixels, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use rayon::prelude::*;
use shard::votes::FerPlusMode;
use shard::Split;
use std::path::Path;
use std::sync::Arc;

/// FER2013 class names in label order (0 Angry … 6 Neutral).
pub const FER2013_CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// The header line of `fer2013.csv`.
const FER2013_HEADER: &str = "emotion,pixels,Usage";

/// Side of a FER2013 image.
pub const FER2013_SIDE: usize = 48;

/// A FER2013 Usage value as a split.
pub fn usage_split(usage: &str) -> Option<Split> {
    match usage {
        "Training" => Some(Split::Train),
        "PublicTest" => Some(Split::Validation),
        "PrivateTest" => Some(Split::Test),
        _ => None,
    }
}

/// One good FER2013 csv row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fer2013Row {
    /// 1-based line in the file.
    pub line: usize,
    /// 0-based data row (the FER+ file follows the same row order).
    pub row: usize,
    /// Label 0–6.
    pub emotion: u8,
    /// 48×48 grey pixels.
    pub pixels: Vec<u8>,
    /// Training / PublicTest / PrivateTest.
    pub split: Split,
}

/// Why a FER2013 row was rejected: the reason code and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line.
    pub line: usize,
    /// 0-based data row.
    pub row: usize,
    /// A [`reason`] code.
    pub reason: &'static str,
    /// What was wrong.
    pub detail: String,
}

/// Parses one FER2013 data line given the column positions.
pub fn parse_fer2013_row(
    text: &str,
    cols: (usize, usize, usize),
    width: usize,
    line: usize,
    row: usize,
) -> std::result::Result<Fer2013Row, RowError> {
    let err = |reason: &'static str, detail: String| RowError {
        line,
        row,
        reason,
        detail,
    };
    let fields = csv_fields(text).map_err(|e| err(reason::BAD_ROW, e))?;
    if fields.len() != width {
        return Err(err(
            reason::BAD_ROW,
            format!("{} fields, the header has {width}", fields.len()),
        ));
    }
    let (ce, cp, cu) = cols;
    let e = fields[ce].trim();
    let emotion = e
        .parse::<u8>()
        .ok()
        .filter(|v| (*v as usize) < FER2013_CLASSES.len())
        .ok_or_else(|| err(reason::BAD_LABEL, format!("emotion {e:?} is not 0–6")))?;
    let usage = fields[cu].trim();
    let split = usage_split(usage).ok_or_else(|| {
        err(
            reason::BAD_USAGE,
            format!("Usage {usage:?} is not Training, PublicTest or PrivateTest"),
        )
    })?;
    let pixels = parse_pixels(&fields[cp], FER2013_SIDE * FER2013_SIDE)
        .map_err(|d| err(reason::BAD_PIXELS, d))?;
    Ok(Fer2013Row {
        line,
        row,
        emotion,
        pixels,
        split,
    })
}

/// Reads `fer2013.csv` into an inventory. With `ferplus`, labels come from that `fer2013new.csv`
/// (same row order) under the given [`FerPlusMode`], and rows the mode excludes are excluded
/// (reason `ferplus_no_majority`, the rule and why in the detail).
///
/// Errors (whole file): unreadable, empty, a header without the three columns. Row problems are
/// rejection rows.
pub fn inventory(
    csv: &Path,
    ferplus: Option<(&Path, FerPlusMode)>,
    frames: usize,
) -> Result<Inventory> {
    let root = csv.parent().unwrap_or(Path::new(".")).to_path_buf();
    let file = csv
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fer2013.csv".into());
    let (names, lines) = csv_lines(csv)?;
    let cols = (
        column(&names, "emotion", csv, FER2013_HEADER)?,
        column(&names, "pixels", csv, FER2013_HEADER)?,
        column(&names, "Usage", csv, FER2013_HEADER)?,
    );
    let plus = ferplus.map(|(p, m)| read_ferplus(p, m)).transpose()?;
    let (dataset, classes): (&str, &[&str]) = if plus.is_some() {
        ("ferplus", &FERPLUS_CLASSES)
    } else {
        ("fer2013", &FER2013_CLASSES)
    };
    let mut inv = Inventory::new(dataset, root, classes);
    let source = Arc::new(CsvPixels {
        path: csv.to_path_buf(),
        column: cols.1,
        columns: names.len(),
        width: FER2013_SIDE,
        height: FER2013_SIDE,
    });
    // One parsed row into the inventory: a rejection, a FER+ exclusion, or an input.
    let mut push_row = |line: usize,
                        (offset, len): (u64, u32),
                        this_row: usize,
                        parsed: std::result::Result<
        (u8, Split, Option<crate::fingerprint::Fingerprint>),
        RowError,
    >| {
        let input = format!("{file}:{line}");
        let (emotion, split, fingerprint) = match parsed {
            Ok(r) => r,
            Err(e) => {
                inv.reject(input, "parse", e.reason, e.detail);
                return;
            }
        };
        let mut votes = Vec::new();
        let label = match &plus {
            None => emotion as u16,
            Some(p) => match p.get(this_row) {
                Some(Ok((l, v))) => {
                    votes = v.clone();
                    *l
                }
                Some(Err((why, detail))) => {
                    if *why == reason::FERPLUS_NO_MAJORITY {
                        inv.exclude(input, why, detail.clone());
                    } else {
                        inv.reject(input, "parse", why, detail.clone());
                    }
                    return;
                }
                None => {
                    inv.reject(
                        input,
                        "parse",
                        reason::BAD_LABEL,
                        format!("the FER+ file has no row {}", this_row + 1),
                    );
                    return;
                }
            },
        };
        // The row parsed (so a bad row is a rejection now); its pixels are read again when needed.
        let frame = FrameSource::CsvRow {
            file: source.clone(),
            offset,
            len,
            index: 0,
        };
        inv.push(InputItem {
            votes,
            fingerprint,
            ..InputItem::new(
                format!("{dataset}/r{this_row:06}"),
                label,
                split,
                vec![frame; frames],
                input,
            )
        });
    };
    // Rows are parsed, and their pixels fingerprinted for the duplicate search, in parallel over
    // batches of lines read in file order (a batch is ~2 MB of text); the inventory then takes
    // them in order, so the result is the serial one.
    const PARSE_BATCH: usize = 256;
    let mut lines = lines;
    let mut row = 0usize;
    loop {
        let batch: Vec<_> = lines.by_ref().take(PARSE_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let first_row = row;
        row += batch.len();
        let parsed: Vec<_> = batch
            .into_par_iter()
            .enumerate()
            .map(|(k, (line, span, text))| {
                let this_row = first_row + k;
                let parsed = text
                    .map_err(|d| RowError {
                        line,
                        row: this_row,
                        reason: reason::BAD_ROW,
                        detail: d,
                    })
                    .and_then(|t| parse_fer2013_row(&t, cols, names.len(), line, this_row))
                    .map(|r| {
                        // What `input_fingerprint` computes for the row's one distinct frame.
                        let fingerprint =
                            face::GrayImage::new(FER2013_SIDE, FER2013_SIDE, r.pixels)
                                .ok()
                                .and_then(|img| crate::fingerprint::fingerprint(&[(0, img)]));
                        (r.emotion, r.split, fingerprint)
                    });
                (line, span, this_row, parsed)
            })
            .collect();
        for (line, (offset, len), this_row, parsed) in parsed {
            push_row(line, (offset, len), this_row, parsed);
        }
    }
    if row == 0 {
        return Err(PrepError::parse(csv, 1, "no data rows after the header"));
    }
    if let Some(p) = &plus {
        if p.len() != row {
            inv.notes.insert(
                "ferplus_row_mismatch".into(),
                format!("fer2013.csv has {row} data rows, the FER+ file {}", p.len()).into(),
            );
        }
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(csv, 1, reason))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::pixels::read_csv_pixels;

    fn px(n: usize, v: &str) -> String {
        vec![v; n].join(" ")
    }

    #[test]
    fn rows() {
        let good = format!("3,{},PrivateTest", px(2304, "9"));
        let r = parse_fer2013_row(&good, (0, 1, 2), 3, 2, 0).unwrap();
        assert_eq!((r.emotion, r.split, r.pixels.len()), (3, Split::Test, 2304));
        let quoted = format!("3,\"{}\",Training", px(2304, "9"));
        assert!(parse_fer2013_row(&quoted, (0, 1, 2), 3, 2, 0).is_ok());
        let cases = [
            (format!("7,{},Training", px(2304, "1")), reason::BAD_LABEL),
            (format!(",{},Training", px(2304, "1")), reason::BAD_LABEL),
            (format!("1,{},Train", px(2304, "1")), reason::BAD_USAGE),
            (format!("1,{},Training", px(2303, "1")), reason::BAD_PIXELS),
            (format!("1,{},Training", px(2305, "1")), reason::BAD_PIXELS),
            (
                format!("1,{},Training", px(2304, "300")),
                reason::BAD_PIXELS,
            ),
            (format!("1,{}", px(2304, "1")), reason::BAD_ROW),
            (format!("1,{},Training,x", px(2304, "1")), reason::BAD_ROW),
        ];
        for (text, want) in cases {
            let e = parse_fer2013_row(&text, (0, 1, 2), 3, 5, 3).unwrap_err();
            assert_eq!(e.reason, want, "{}", e.detail);
            assert_eq!((e.line, e.row), (5, 3));
        }
    }

    /// The inventory keeps where each row is, not its pixels: reading the rows back (a BOM, CRLF
    /// and LF endings, a quoted pixel field, a bad row skipped) gives each row's pixels, and a
    /// file changed after the inventory is an error for that row, not a panic.
    #[test]
    fn csv_rows_are_read_back_from_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fer2013.csv");
        let row = |v: u8| px(2304, &v.to_string());
        let text = format!(
            "\u{feff}emotion,pixels,Usage\r\n3,{},Training\r\n1,bad,Training\n\n0,\"{}\",PublicTest\n5,{},PrivateTest",
            row(7),
            row(200),
            row(0)
        );
        std::fs::write(&path, text).unwrap();
        let inv = inventory(&path, None, 2).unwrap();
        assert_eq!(inv.items.len(), 3);
        let want = [7u8, 200, 0];
        for (item, v) in inv.items.iter().zip(want) {
            let FrameSource::CsvRow {
                file, offset, len, ..
            } = &item.frames[1]
            else {
                panic!("{:?}", item.frames[1]);
            };
            let img = read_csv_pixels(file, *offset, *len).unwrap();
            assert_eq!((img.width(), img.height()), (48, 48));
            assert!(img.data().iter().all(|&p| p == v), "{}", item.sample_id);
        }
        // The file rewritten under the build: the row no longer parses where it was.
        std::fs::write(&path, "emotion,pixels,Usage\n").unwrap();
        let FrameSource::CsvRow {
            file, offset, len, ..
        } = &inv.items[2].frames[0]
        else {
            unreachable!()
        };
        assert!(read_csv_pixels(file, *offset, *len).is_err());
    }
}
