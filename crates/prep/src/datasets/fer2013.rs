//! FER2013: the Kaggle csv (`emotion,pixels,Usage`) and the FER+ relabelling (`fer2013new.csv`);
//! the image-folder releases are read by [`super::fer2013_folders`].
//!
//! The csv is read line by line ([`super::csv`]) so that every malformed row becomes a failure row
//! naming its line. A row is kept as its place in the file (offset and length) and its pixels are
//! read again when its frame is decoded, so memory does not grow with the pixels.

use super::csv::{column, csv_fields, csv_lines, split_csv_line};
use crate::inventory::{reason, CsvPixels, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use rayon::prelude::*;
use shard::votes::{ferplus_target, FerPlusMode};
use shard::Split;
use std::path::Path;
use std::sync::Arc;

/// FER2013 class names in label order (0 Angry … 6 Neutral).
pub const FER2013_CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// FER+ class names in label order (the first eight vote columns of `fer2013new.csv`).
pub const FERPLUS_CLASSES: [&str; 8] = [
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
];

/// The header line of `fer2013.csv`.
const FER2013_HEADER: &str = "emotion,pixels,Usage";

/// The first columns of `fer2013new.csv`'s header (then the ten vote columns).
const FERPLUS_HEADER: &str = "Usage,Image name,neutral,happiness,…";

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

/// Parses FER2013's space-separated pixel list: exactly `n` integers 0–255.
///
/// Rows are parsed at inventory time and again whenever their frame is decoded, so the common
/// token (1–3 digits) is read byte by byte; anything else goes through `str::parse`, which gives
/// the error its wording.
pub fn parse_pixels(text: &str, n: usize) -> std::result::Result<Vec<u8>, String> {
    if let Some(pixels) = parse_plain_pixels(text.as_bytes(), n) {
        return Ok(pixels);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        let mut v = 0u32;
        let mut plain = true;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            let b = bytes[i];
            plain &= b.is_ascii_digit() && i - start < 3;
            v = v.wrapping_mul(10).wrapping_add(b.wrapping_sub(b'0') as u32);
            i += 1;
        }
        if out.len() == n {
            let extra = text[start..].split_ascii_whitespace().count();
            return Err(format!("{} values, expected {n}", n + extra));
        }
        if plain && v <= 255 {
            out.push(v as u8);
            continue;
        }
        // Token boundaries are ASCII whitespace, so `start..i` is a char boundary range.
        let tok = &text[start..i];
        let v: u32 = tok
            .parse()
            .map_err(|_| format!("pixel {} is {tok:?}, not an integer", out.len()))?;
        if v > 255 {
            return Err(format!("pixel {} is {v}, above 255", out.len()));
        }
        out.push(v as u8);
    }
    if out.len() != n {
        return Err(format!("{} values, expected {n}", out.len()));
    }
    Ok(out)
}

/// The form every row of the distributed FER2013 csv has, read with the fewest checks: exactly
/// `n` tokens of 1–3 ASCII digits (value ≤ 255) separated by single spaces, nothing before or
/// after. `None` for anything else, errors included, which [`parse_pixels`] then reads token by
/// token (and words the error); the two agree on every text this accepts.
fn parse_plain_pixels(bytes: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    loop {
        let first = bytes.get(i)?.wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        let mut v = first as u32;
        i += 1;
        for _ in 0..2 {
            match bytes.get(i) {
                Some(&b) if b.is_ascii_digit() => {
                    v = v * 10 + (b - b'0') as u32;
                    i += 1;
                }
                _ => break,
            }
        }
        if v > 255 || out.len() == n {
            return None;
        }
        out.push(v as u8);
        match bytes.get(i) {
            None => return (out.len() == n).then_some(out),
            Some(b' ') => i += 1,
            // A fourth digit, another separator, a stray character: the careful reading.
            Some(_) => return None,
        }
    }
}

/// Reads the pixels of the csv line at `offset` (`len` bytes) of `file` again, checking them as
/// the inventory did. Errors: the detail (unreadable file, changed line, bad pixels).
pub fn read_csv_pixels(
    file: &CsvPixels,
    offset: u64,
    len: u32,
) -> std::result::Result<face::GrayImage, String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(&file.path).map_err(|e| format!("{}: {e}", file.path.display()))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| format!("{} at byte {offset}: {e}", file.path.display()))?;
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    let text = std::str::from_utf8(&buf).map_err(|_| "line is not UTF-8".to_string())?;
    let changed = |n: usize| {
        format!(
            "{n} fields at byte {offset}, the header has {} (the file changed during the build?)",
            file.columns
        )
    };
    let fields = csv_fields(text)?;
    if fields.len() != file.columns {
        return Err(changed(fields.len()));
    }
    let px = parse_pixels(&fields[file.column], file.width * file.height)?;
    face::GrayImage::new(file.width, file.height, px).map_err(|e| e.to_string())
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

/// FER+ labels by data row: `Ok((label, the 10 vote counts))`, `Err((reason, detail))` for
/// excluded or bad rows.
type FerPlusLabels = Vec<std::result::Result<(u16, Vec<u16>), (&'static str, String)>>;

fn read_ferplus(path: &Path, mode: FerPlusMode) -> Result<FerPlusLabels> {
    let (names, lines) = csv_lines(path)?;
    let cols: Vec<usize> = FERPLUS_CLASSES
        .iter()
        .copied()
        .chain(["unknown", "NF"])
        .map(|c| column(&names, c, path, FERPLUS_HEADER))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (line, _, text) in lines {
        let parsed = text.and_then(|t| {
            let f = split_csv_line(&t)?;
            if f.len() != names.len() {
                return Err(format!(
                    "{} fields, the header has {}",
                    f.len(),
                    names.len()
                ));
            }
            let mut votes = [0u32; 10];
            for (v, &c) in votes.iter_mut().zip(&cols) {
                *v = f[c]
                    .trim()
                    .parse()
                    .map_err(|_| format!("vote {:?} is not a count", f[c]))?;
            }
            Ok(votes)
        });
        out.push(match parsed {
            Ok(votes) => ferplus_target(&votes, mode)
                .map(|t| {
                    // Stored as u16: FER+ has 10 annotators per image.
                    let stored = votes
                        .iter()
                        .map(|&v| v.min(u16::MAX as u32) as u16)
                        .collect();
                    (t.label, stored)
                })
                .map_err(|why| {
                    (
                        reason::FERPLUS_NO_MAJORITY,
                        format!("line {line}: {} rule: {why}", mode.name()),
                    )
                }),
            Err(d) => Err((reason::BAD_LABEL, format!("{}:{line}: {d}", path.display()))),
        });
    }
    Ok(out)
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

    fn px(n: usize, v: &str) -> String {
        vec![v; n].join(" ")
    }

    #[test]
    fn csv_splitting() {
        assert_eq!(split_csv_line("a,b,c").unwrap(), ["a", "b", "c"]);
        // Without quotes the fields are borrowed, with them split; either way the same fields.
        for line in ["a,b,,c", "\"a,b\",c", ",", "x"] {
            let fields: Vec<String> = csv_fields(line)
                .unwrap()
                .into_iter()
                .map(|f| f.into_owned())
                .collect();
            assert_eq!(fields, split_csv_line(line).unwrap(), "{line}");
        }
        assert!(csv_fields("a\"b").is_err());
        assert_eq!(split_csv_line("\"a,b\",c").unwrap(), ["a,b", "c"]);
        assert_eq!(split_csv_line("\"a\"\"b\",").unwrap(), ["a\"b", ""]);
        assert!(split_csv_line("\"abc").is_err());
        assert!(split_csv_line("\"a\"b,c").is_err());
        assert!(split_csv_line("a\"b").is_err());
    }

    #[test]
    fn pixel_lists() {
        assert_eq!(parse_pixels("0 255  7", 3).unwrap(), vec![0, 255, 7]);
        assert!(parse_pixels("0 256 7", 3)
            .unwrap_err()
            .contains("above 255"));
        assert!(parse_pixels("0 1", 3).unwrap_err().contains("2 values"));
        assert!(parse_pixels("0 1 2 3", 3).unwrap_err().contains("4 values"));
        assert!(parse_pixels("0 x 2", 3).unwrap_err().contains("\"x\""));
        assert!(parse_pixels("0 -1 2", 3).is_err());
        // The byte-wise fast path and str::parse agree on every token shape.
        assert_eq!(
            parse_pixels("007 +5 255\t\n1", 4).unwrap(),
            vec![7, 5, 255, 1]
        );
        assert!(parse_pixels("0 1000 2", 3)
            .unwrap_err()
            .contains("pixel 1 is 1000, above 255"));
        assert!(parse_pixels("0 99999999999 2", 3)
            .unwrap_err()
            .contains("not an integer"));
        assert!(parse_pixels("0 1é 2", 3).unwrap_err().contains("\"1é\""));
    }

    /// The fast reading at its edges: one, two and three digits, 255 and 256, leading zeros,
    /// a fourth digit, and separators other than one space.
    #[test]
    fn plain_pixel_reading_at_its_edges() {
        for v in ["0", "9", "10", "99", "100", "199", "255", "007", "000"] {
            let text = format!("1 {v} 2");
            let want = vec![1, v.parse::<u8>().unwrap(), 2];
            assert_eq!(
                parse_plain_pixels(text.as_bytes(), 3),
                Some(want.clone()),
                "{text}"
            );
            assert_eq!(parse_pixels(&text, 3), Ok(want));
        }
        for text in [
            "1 256 2", "1 999 2", "1 0255 2", "1  2 3", " 1 2 3", "1 2 3 ", "1\t2 3",
        ] {
            assert_eq!(parse_plain_pixels(text.as_bytes(), 3), None, "{text:?}");
        }
        assert!(parse_pixels("1 256 2", 3)
            .unwrap_err()
            .contains("above 255"));
        // Leading or doubled spaces are still pixels, through the careful reading.
        assert_eq!(parse_pixels(" 1  2 3 ", 3), Ok(vec![1, 2, 3]));
        assert_eq!(parse_plain_pixels(b"1 2 3", 2), None);
        assert_eq!(parse_plain_pixels(b"1 2 3", 4), None);
    }

    proptest::proptest! {
        /// The distributed form (single spaces), sometimes with one token damaged or a wrong
        /// count: the fast reading gives what the general one gives.
        #[test]
        fn plain_pixel_lists_read_as_the_token_by_token_reading(
            vals in proptest::collection::vec(0u32..262, 1..12),
            damage in proptest::option::weighted(
                0.3,
                (0usize..12, "(0[0-9]{3}|[0-9]{4}|-1|1a| |\t|)"),
            ),
            n_delta in proptest::prop_oneof![4 => proptest::strategy::Just(0i64), 1 => -1i64..2],
        ) {
            let mut toks: Vec<String> = vals.iter().map(u32::to_string).collect();
            if let Some((k, t)) = damage {
                let k = k % toks.len();
                toks[k] = t;
            }
            let text = toks.join(" ");
            let n = (vals.len() as i64 + n_delta).max(0) as usize;
            let slow: Option<Vec<u8>> = text
                .split_ascii_whitespace()
                .map(|t| t.parse::<u32>().ok().filter(|v| *v <= 255).map(|v| v as u8))
                .collect::<Option<Vec<u8>>>()
                .filter(|v| v.len() == n);
            proptest::prop_assert_eq!(parse_pixels(&text, n).ok(), slow.clone());
            if let Some(fast) = parse_plain_pixels(text.as_bytes(), n) {
                proptest::prop_assert_eq!(Some(fast), slow);
            }
        }

        /// Any list of 0–999 tokens with any whitespace parses as the per-token `str::parse`
        /// reading would: the same pixels or an error.
        #[test]
        fn pixel_parser_equals_the_token_by_token_reading(
            vals in proptest::collection::vec(0u32..1000, 0..8),
            seps in proptest::collection::vec("[ \t]{1,3}", 8),
        ) {
            let mut text = String::new();
            for (k, v) in vals.iter().enumerate() {
                text.push_str(&seps[k]);
                text.push_str(&v.to_string());
            }
            let slow: Option<Vec<u8>> = text
                .split_ascii_whitespace()
                .map(|t| t.parse::<u32>().ok().filter(|v| *v <= 255).map(|v| v as u8))
                .collect();
            let fast = parse_pixels(&text, vals.len()).ok();
            proptest::prop_assert_eq!(fast, slow);
        }
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
