//! FER2013: the Kaggle csv (`emotion,pixels,Usage`), the FER+ relabelling (`fer2013new.csv`), and
//! the image-folder release (`train|test/<class>/*.jpg`).
//!
//! The csv is read line by line with a small quote-aware splitter rather than a dataframe reader:
//! every malformed row must become a failure row naming its line, while a dataframe reader either
//! rejects the whole file or turns a bad field into a silent null. Memory stays bounded by the
//! decoded pixels (2,304 bytes a row, 83 MB for the full 35,887 rows).

use super::walk;
use crate::inventory::{reason, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use serde::{Deserialize, Serialize};
use shard::Split;
use std::io::BufRead;
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

/// Splits one csv line into fields: commas separate, double quotes enclose fields that may hold
/// commas, `""` inside quotes is a quote. Errors name what is wrong.
pub fn split_csv_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
                _ => cur.push(c),
            }
        } else {
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut cur));
                    at_start = true;
                    continue;
                }
                '"' if at_start => quoted = true,
                '"' => return Err("a quote inside an unquoted field".into()),
                _ => cur.push(c),
            }
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Parses FER2013's space-separated pixel list: exactly `n` integers 0–255.
pub fn parse_pixels(text: &str, n: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(n);
    for tok in text.split_ascii_whitespace() {
        if out.len() == n {
            let extra = text.split_ascii_whitespace().count() - n;
            return Err(format!("{} values, expected {n}", n + extra));
        }
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

/// One line of a csv file: its 1-based number and text, or why it is not text.
type Line = (usize, std::result::Result<String, String>);

/// Reads a csv file line by line (CRLF and a UTF-8 BOM accepted); a line that is not UTF-8 is
/// returned as an error for that line only.
fn csv_lines(path: &Path) -> Result<(Vec<String>, impl Iterator<Item = Line>)> {
    let io = |e: std::io::Error| PrepError::Io {
        path: path.to_path_buf(),
        cause: e,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut first = Vec::new();
    if r.read_until(b'\n', &mut first).map_err(io)? == 0 {
        return Err(PrepError::parse(path, 1, "empty file: no header"));
    }
    let header =
        String::from_utf8(first).map_err(|_| PrepError::parse(path, 1, "header is not UTF-8"))?;
    let header = header
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n']);
    let names = split_csv_line(header)
        .map_err(|e| PrepError::parse(path, 1, format!("header: {e}")))?
        .into_iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut line_no = 1;
    let mut buf = Vec::new();
    let iter = std::iter::from_fn(move || loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                line_no += 1;
                return Some((line_no, Err(format!("read error: {e}"))));
            }
        }
        line_no += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Some((
            line_no,
            String::from_utf8(std::mem::take(&mut buf)).map_err(|_| "line is not UTF-8".into()),
        ));
    });
    Ok((names, iter))
}

fn column(names: &[String], want: &str, file: &Path) -> Result<usize> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(want))
        .ok_or_else(|| {
            // A file without a header has a data row here: name the columns, not 2,304 pixels.
            let shown: Vec<String> = names
                .iter()
                .take(4)
                .map(|n| {
                    if n.chars().count() > 24 {
                        format!("{}…", n.chars().take(24).collect::<String>())
                    } else {
                        n.clone()
                    }
                })
                .collect();
            let looks_like_data = names
                .first()
                .is_some_and(|n| n.trim().parse::<i64>().is_ok());
            PrepError::parse(
                file,
                1,
                format!(
                    "no {want:?} column in the header (line 1 holds {} fields: {shown:?}{}){}",
                    names.len(),
                    if names.len() > 4 { ", …" } else { "" },
                    if looks_like_data {
                        "; it looks like a data row: FER2013 csv files start with the header \
                         `emotion,pixels,Usage`"
                    } else {
                        ""
                    }
                ),
            )
        })
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
    let fields = split_csv_line(text).map_err(|e| err(reason::BAD_ROW, e))?;
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

/// How FER+'s ten vote counts (8 emotions, unknown, not-a-face) become a label, named as the
/// FERPlus project (microsoft/FERPlus, `ferplus.py`) names its training modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FerPlusMode {
    /// FERPlus's `majority` (the default): emotions with a single vote are dropped; a row is kept
    /// when its top emotion has more than half of the remaining votes and is neither unknown nor
    /// not-a-face. 25,060 / 3,199 / 3,153 Training / PublicTest / PrivateTest rows.
    #[default]
    Majority,
    /// FERPlus's `probability`: single votes dropped, the top one to three emotions taken until they
    /// hold ≥ 75 % of the votes; kept when they hold more than half and the first is an emotion.
    /// Label = the top emotion (FERPlus draws from the distribution each epoch; see `soft_targets`).
    Probability,
    /// FERPlus's `crossentropy`: the rows of `probability`, trained against the distribution.
    Crossentropy,
    /// FERPlus's `multi_target`: single votes dropped, every emotion with ≥ 30 % of the votes;
    /// kept when those hold more than half and the top one is an emotion.
    #[value(name = "multi_target")]
    MultiTarget,
    /// The rule before FERPlus's modes were built in: the unique largest count wins when it is an
    /// emotion (no vote dropped, ties excluded). 26,940 / 3,396 / 3,376 rows.
    Plurality,
}

impl FerPlusMode {
    /// The name in `fer2013new.csv`-world (`majority`, `multi_target`, …).
    pub fn name(self) -> &'static str {
        match self {
            FerPlusMode::Majority => "majority",
            FerPlusMode::Probability => "probability",
            FerPlusMode::Crossentropy => "crossentropy",
            FerPlusMode::MultiTarget => "multi_target",
            FerPlusMode::Plurality => "plurality",
        }
    }

    /// Whether FERPlus trains this mode against the vote distribution rather than one label
    /// (`probability` draws a label from it each epoch, `crossentropy` and `multi_target` use it
    /// as the target).
    pub fn soft_targets(self) -> bool {
        matches!(
            self,
            FerPlusMode::Probability | FerPlusMode::Crossentropy | FerPlusMode::MultiTarget
        )
    }
}

/// One row's FER+ target under a [`FerPlusMode`].
#[derive(Debug, Clone, PartialEq)]
pub struct FerPlusTarget {
    /// The class (index into [`FERPLUS_CLASSES`]): the largest share, the first on ties.
    pub label: u16,
    /// The votes the mode keeps, as shares of the 8 emotions (sums to 1).
    pub distribution: [f64; 8],
}

/// FER+ votes of one row under `mode`: the target, or why the row is excluded.
pub fn ferplus_target(
    votes: &[u32; 10],
    mode: FerPlusMode,
) -> std::result::Result<FerPlusTarget, &'static str> {
    if votes.iter().all(|&v| v == 0) {
        return Err("no votes");
    }
    if mode == FerPlusMode::Plurality {
        let max = *votes.iter().max().unwrap_or(&0);
        let winners: Vec<usize> = (0..10).filter(|&i| votes[i] == max).collect();
        return match winners.as_slice() {
            [w] if *w < 8 => Ok(target_of(votes, *w)),
            [8] => Err("plurality unknown"),
            [9] => Err("plurality not a face"),
            _ => Err("tied plurality"),
        };
    }
    // Outlier removal: a single vote is dropped.
    let raw: Vec<f64> = votes
        .iter()
        .map(|&v| if v <= 1 { 0.0 } else { v as f64 })
        .collect();
    let total: f64 = raw.iter().sum();
    let mut kept = [0.0f64; 10];
    let forced_unknown: Option<&'static str> = match mode {
        FerPlusMode::Majority => {
            let (top, max) = first_max(&raw);
            if max > 0.5 * total {
                kept[top] = max;
                None
            } else {
                Some("no emotion holds more than half of the votes")
            }
        }
        FerPlusMode::Probability | FerPlusMode::Crossentropy => {
            let mut left = raw.clone();
            let (mut sum_part, mut count, mut valid) = (0.0f64, 0usize, true);
            while sum_part < 0.75 * total && count < 3 && valid {
                let (_, max) = first_max(&left);
                for i in 0..10 {
                    if left[i] == max {
                        kept[i] = max;
                        left[i] = 0.0;
                        sum_part += max;
                        count += 1;
                        if i >= 8 {
                            // Unknown or not-a-face among the top: stop there, and drop it when
                            // emotions came before it.
                            valid = false;
                            if kept.iter().sum::<f64>() > max {
                                kept[i] = 0.0;
                                count -= 1;
                            }
                            break;
                        }
                    }
                }
            }
            if kept.iter().sum::<f64>() <= 0.5 * total || count > 3 {
                Some("the top emotions hold at most half of the votes")
            } else {
                None
            }
        }
        FerPlusMode::MultiTarget => {
            for i in 0..10 {
                if raw[i] >= 0.3 * total {
                    kept[i] = raw[i];
                }
            }
            if kept.iter().sum::<f64>() <= 0.5 * total {
                Some("the emotions with 30 % of the votes hold at most half of them")
            } else {
                None
            }
        }
        FerPlusMode::Plurality => None,
    };
    if let Some(why) = forced_unknown {
        return Err(why);
    }
    match first_max(&kept).0 {
        8 => Err("top vote unknown"),
        9 => Err("top vote not a face"),
        _ => {
            let emotions: f64 = kept[..8].iter().sum();
            let mut distribution = [0.0; 8];
            for (d, k) in distribution.iter_mut().zip(&kept) {
                *d = k / emotions;
            }
            Ok(FerPlusTarget {
                label: first_max(&kept).0 as u16,
                distribution,
            })
        }
    }
}

/// Index and value of the largest entry, the first on ties (numpy's argmax).
fn first_max(v: &[f64]) -> (usize, f64) {
    v.iter().enumerate().fold(
        (0, f64::MIN),
        |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
    )
}

/// The plurality target: the winner, the emotions' raw shares.
fn target_of(votes: &[u32; 10], label: usize) -> FerPlusTarget {
    let emotions: f64 = votes[..8].iter().map(|&v| v as f64).sum::<f64>().max(1.0);
    let mut distribution = [0.0; 8];
    for (d, &v) in distribution.iter_mut().zip(votes.iter()) {
        *d = v as f64 / emotions;
    }
    FerPlusTarget {
        label: label as u16,
        distribution,
    }
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
        .map(|c| column(&names, c, path))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (line, text) in lines {
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
        column(&names, "emotion", csv)?,
        column(&names, "pixels", csv)?,
        column(&names, "Usage", csv)?,
    );
    let plus = ferplus.map(|(p, m)| read_ferplus(p, m)).transpose()?;
    let (dataset, classes): (&str, &[&str]) = if plus.is_some() {
        ("ferplus", &FERPLUS_CLASSES)
    } else {
        ("fer2013", &FER2013_CLASSES)
    };
    let mut inv = Inventory::new(dataset, root, classes);
    let mut row = 0usize;
    for (line, text) in lines {
        let input = format!("{file}:{line}");
        let mut votes = Vec::new();
        let parsed = text
            .map_err(|d| RowError {
                line,
                row,
                reason: reason::BAD_ROW,
                detail: d,
            })
            .and_then(|t| parse_fer2013_row(&t, cols, names.len(), line, row));
        let this_row = row;
        row += 1;
        let r = match parsed {
            Ok(r) => r,
            Err(e) => {
                inv.reject(input, "parse", e.reason, e.detail);
                continue;
            }
        };
        let label = match &plus {
            None => r.emotion as u16,
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
                    continue;
                }
                None => {
                    inv.reject(
                        input,
                        "parse",
                        reason::BAD_LABEL,
                        format!("the FER+ file has no row {}", this_row + 1),
                    );
                    continue;
                }
            },
        };
        let pixels = Arc::new(r.pixels);
        let frame = FrameSource::Pixels {
            width: FER2013_SIDE,
            height: FER2013_SIDE,
            pixels,
            index: 0,
        };
        inv.push(InputItem {
            sample_id: format!("{dataset}/r{this_row:06}"),
            subject: String::new(),
            sequence: None,
            label,
            split: r.split,
            frames: vec![frame; frames],
            dataset_landmarks: None,
            input,
            votes,
        });
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

/// Reads the Kaggle image-folder release: `<root>/{train,test}/<class>/<name>.jpg`. The split is
/// taken from a `Training_` / `PublicTest_` / `PrivateTest_` name prefix when present, otherwise
/// `train` → Train and `test` → Test.
pub fn inventory_folders(root: &Path, frames: usize) -> Result<Inventory> {
    let mut inv = Inventory::new("fer2013-folders", root.to_path_buf(), &FER2013_CLASSES);
    let tops = walk::list(root, "", &mut inv);
    if !tops
        .iter()
        .any(|e| e.is_dir && (e.name == "train" || e.name == "test"))
    {
        return Err(PrepError::parse(
            root,
            0,
            "expected train/ and test/ folders (the Kaggle image-folder release)",
        ));
    }
    for top in tops {
        let default_split = match (top.is_dir, top.name.as_str()) {
            (true, "train") => Split::Train,
            (true, "test") => Split::Test,
            _ => {
                inv.exclude(&top.name, reason::BAD_NAME, "not train/ or test/");
                continue;
            }
        };
        for class in walk::list(&top.path, &top.name, &mut inv) {
            let crel = walk::join(&top.name, &class.name);
            let Some(label) = FER2013_CLASSES.iter().position(|c| *c == class.name) else {
                inv.reject(&crel, "parse", reason::UNKNOWN_CLASS, "not a FER2013 class");
                continue;
            };
            if !class.is_dir {
                inv.exclude(
                    &crel,
                    reason::NOT_AN_IMAGE,
                    "a file where class folders are",
                );
                continue;
            }
            for f in walk::list(&class.path, &crel, &mut inv) {
                let rel = walk::join(&crel, &f.name);
                if f.is_dir || !crate::inventory::is_image_name(&f.name) {
                    inv.exclude(&rel, reason::NOT_AN_IMAGE, "not an image file");
                    continue;
                }
                let stem = f.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f.name);
                let split = stem
                    .split_once('_')
                    .and_then(|(p, _)| usage_split(p))
                    .unwrap_or(default_split);
                let frame = FrameSource::File {
                    path: rel.clone(),
                    index: 0,
                };
                inv.push(InputItem {
                    sample_id: format!("{}/{}", crel, stem),
                    subject: String::new(),
                    sequence: None,
                    label: label as u16,
                    split,
                    frames: vec![frame; frames],
                    dataset_landmarks: None,
                    input: rel,
                    votes: Vec::new(),
                });
            }
        }
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
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

    #[test]
    fn ferplus_votes() {
        let p = |v: [u32; 10]| ferplus_target(&v, FerPlusMode::Plurality).map(|t| t.label);
        assert_eq!(p([0, 9, 1, 0, 0, 0, 0, 0, 0, 0]), Ok(1));
        assert_eq!(p([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]), Err("tied plurality"));
        assert_eq!(p([1, 0, 0, 0, 0, 0, 0, 0, 9, 0]), Err("plurality unknown"));
        assert_eq!(
            p([1, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            Err("plurality not a face")
        );
        assert_eq!(p([0; 10]), Err("no votes"));
    }

    /// Known answers of each FERPlus mode, worked by hand from FERPlus's `_process_data`.
    #[test]
    fn ferplus_modes_known_answers() {
        use FerPlusMode::*;
        let t = |v: [u32; 10], m| ferplus_target(&v, m);
        // 4 neutral, 3 anger, 2 disgust, 1 sadness: the single vote goes (9 left); majority
        // needs > 4.5, neutral has 4: excluded. Plurality keeps neutral.
        let row = [4, 0, 0, 1, 3, 2, 0, 0, 0, 0];
        assert!(t(row, Majority).is_err());
        assert_eq!(t(row, Plurality).unwrap().label, 0);
        // probability: neutral (4), anger (3) → 7 ≥ 0.75·9 = 6.75: kept, 4/7 and 3/7.
        let pr = t(row, Probability).unwrap();
        assert_eq!(pr.label, 0);
        assert!((pr.distribution[0] - 4.0 / 7.0).abs() < 1e-12);
        assert!((pr.distribution[4] - 3.0 / 7.0).abs() < 1e-12);
        assert_eq!(t(row, Crossentropy), Ok(pr));
        // multi_target: ≥ 0.3·9 = 2.7: neutral and anger, 7 > 4.5: kept.
        let mt = t(row, MultiTarget).unwrap();
        assert_eq!((mt.label, mt.distribution[5]), (0, 0.0));
        // 6 neutral, 1 surprise, 1 sadness, 2 unknown: 6 of 8 after the singles: all keep neutral.
        let row = [6, 0, 1, 1, 0, 0, 0, 0, 2, 0];
        for m in [Majority, Probability, Crossentropy, MultiTarget, Plurality] {
            assert_eq!(t(row, m).map(|x| x.label), Ok(0), "{m:?}");
        }
        // Not a face on top: excluded by every mode.
        let row = [0, 2, 0, 0, 0, 0, 0, 0, 0, 8];
        for m in [Majority, Probability, Crossentropy, MultiTarget] {
            assert_eq!(
                t(row, m).map(|x| x.label),
                Err("top vote not a face"),
                "{m:?}"
            );
        }
        // A 5–5 tie: majority (needs > 5) excludes; probability takes both (first = neutral).
        let row = [5, 5, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(t(row, Majority).is_err());
        let pr = t(row, Probability).unwrap();
        assert_eq!(
            (pr.label, pr.distribution[0], pr.distribution[1]),
            (0, 0.5, 0.5)
        );
        // Emotions before unknown at the same count: unknown is dropped again.
        // 4 happiness, 4 unknown, 2 fear: the loop takes happiness (4), then at count 4 both…
        // happiness first (index 1), then unknown (index 8) stops it and is removed: 4 of 10 ≤ 5.
        let row = [0, 4, 0, 0, 0, 0, 2, 0, 4, 0];
        assert!(t(row, Probability).is_err());
        // Only single votes: nothing left.
        let row = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        assert!(t(row, Majority).is_err());
        assert!(t(row, MultiTarget).is_err());
        // Soft targets are what probability, crossentropy and multi_target train on.
        assert!(!Majority.soft_targets() && !Plurality.soft_targets());
        assert!(Crossentropy.soft_targets() && MultiTarget.soft_targets());
    }
}
