//! The FER+ relabelling of FER2013 (`fer2013new.csv`): ten annotators' votes per row, in the
//! csv's row order, turned into labels by a FERPlus mode.

use super::csv::{column, csv_lines, split_csv_line};
use crate::inventory::reason;
use crate::Result;
use shard::votes::{ferplus_target, FerPlusMode};
use std::path::Path;

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

/// The first columns of `fer2013new.csv`'s header (then the ten vote columns).
const FERPLUS_HEADER: &str = "Usage,Image name,neutral,happiness,…";

/// FER+ labels by data row: `Ok((label, the 10 vote counts))`, `Err((reason, detail))` for
/// excluded or bad rows.
pub(super) type FerPlusLabels = Vec<std::result::Result<(u16, Vec<u16>), (&'static str, String)>>;

pub(super) fn read_ferplus(path: &Path, mode: FerPlusMode) -> Result<FerPlusLabels> {
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
