//! The MGLN authors' fold lists (`manifests/folds/CK+_Ten_group.txt`,
//! `manifests/folds/Oulu_CASIA_Ten_group.txt`): one line per listed frame,
//! `fold <TAB> relative/path/to/frame <TAB> label`.
//!
//! Frames are grouped into sequences by their directory (`S010/002`, `OriginalImg/VL/Strong/P001/Anger`).
//! A sequence must sit in exactly one fold with one label; anything else is an error naming the file.

use crate::{PrepError, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One listed sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldSequence {
    /// Directory of the frames, relative to the dataset root (`S010/002`).
    pub sequence: String,
    /// Fold number as written in the file.
    pub fold: u16,
    /// Label as written in the file (dataset-specific numbering; see the dataset parsers).
    pub label: u16,
    /// Listed frame paths, in file order.
    pub frames: Vec<String>,
    /// 1-based line of the sequence's first frame.
    pub line: usize,
}

/// A parsed fold list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldList {
    /// Sequences in order of first appearance.
    pub sequences: Vec<FoldSequence>,
}

impl FoldList {
    /// Reads and parses a fold-list file.
    pub fn load(path: &Path) -> Result<FoldList> {
        let text = std::fs::read_to_string(path).map_err(|e| PrepError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        Self::parse(&text, path)
    }

    /// Parses fold-list text; `file` names the source in errors. Blank lines are skipped; CRLF and
    /// a UTF-8 byte-order mark are accepted.
    pub fn parse(text: &str, file: &Path) -> Result<FoldList> {
        Self::parse_with(text, file, &|p: &str| p.to_string())
    }

    /// Like [`FoldList::parse`], rewriting every path with `normalise` first (see [`normalise_oulu`]).
    pub fn parse_with(
        text: &str,
        file: &Path,
        normalise: &dyn Fn(&str) -> String,
    ) -> Result<FoldList> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut sequences: Vec<FoldSequence> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.trim_end_matches('\r');
            if raw.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = raw.split('\t').map(str::trim).collect();
            let [fold, path, label] = fields.as_slice() else {
                return Err(PrepError::parse(
                    file,
                    line,
                    format!("expected 3 tab-separated fields, found {}", fields.len()),
                ));
            };
            let fold: u16 = fold.parse().map_err(|_| {
                PrepError::parse(file, line, format!("fold {fold:?} is not a number"))
            })?;
            let label: u16 = label.parse().map_err(|_| {
                PrepError::parse(file, line, format!("label {label:?} is not a number"))
            })?;
            let path = normalise(&path.replace('\\', "/"));
            let Some((dir, name)) = path.rsplit_once('/') else {
                return Err(PrepError::parse(
                    file,
                    line,
                    format!("path {path:?} has no directory"),
                ));
            };
            if name.is_empty() || dir.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(PrepError::parse(
                    file,
                    line,
                    format!("path {path:?} is not a plain relative path"),
                ));
            }
            match index.get(dir) {
                Some(&k) => {
                    let s = &mut sequences[k];
                    if s.fold != fold || s.label != label {
                        return Err(PrepError::Folds {
                            file: file.to_path_buf(),
                            reason: format!(
                                "line {line}: sequence {dir} listed with fold {fold} label {label}, \
                                 but line {} says fold {} label {}",
                                s.line, s.fold, s.label
                            ),
                        });
                    }
                    if s.frames.iter().any(|f| f == &path) {
                        return Err(PrepError::parse(file, line, format!("{path} listed twice")));
                    }
                    s.frames.push(path.clone());
                }
                None => {
                    index.insert(dir.to_string(), sequences.len());
                    sequences.push(FoldSequence {
                        sequence: dir.to_string(),
                        fold,
                        label,
                        frames: vec![path.clone()],
                        line,
                    });
                }
            }
        }
        Ok(FoldList { sequences })
    }

    /// Sequence count per fold.
    pub fn fold_sizes(&self) -> BTreeMap<u16, usize> {
        let mut m = BTreeMap::new();
        for s in &self.sequences {
            *m.entry(s.fold).or_default() += 1;
        }
        m
    }
}

/// Repairs a defect of the authors' Oulu-CASIA list: 17 lines write `oulu/Strong/…` where all
/// others write `OriginalImg/VL/Strong/…` (so three sequences would be split in two). Other paths are
/// returned unchanged.
pub fn normalise_oulu(path: &str) -> String {
    match path.strip_prefix("oulu/") {
        Some(rest) => format!("OriginalImg/VL/{rest}"),
        None => path.to_string(),
    }
}

/// The subject of a sequence path: its first component after any `OriginalImg/<modality>/<light>/`
/// prefix (`S010/002` → `S010`, `OriginalImg/VL/Strong/P001/Anger` → `P001`).
pub fn subject_of(sequence: &str) -> &str {
    let parts: Vec<&str> = sequence.split('/').collect();
    match parts.as_slice() {
        ["OriginalImg", _, _, subject, ..] => subject,
        [first, ..] => first,
        [] => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("folds.txt")
    }

    #[test]
    fn groups_frames_into_sequences() {
        let text = "0\tS010/002/a.png\t7\r\n0\tS010/002/b.png\t7\n\n1\tS011/001/a.png\t1";
        let f = FoldList::parse(text, p()).unwrap();
        assert_eq!(f.sequences.len(), 2);
        assert_eq!(f.sequences[0].frames, ["S010/002/a.png", "S010/002/b.png"]);
        assert_eq!(
            (
                f.sequences[1].fold,
                f.sequences[1].label,
                f.sequences[1].line
            ),
            (1, 1, 4)
        );
        assert_eq!(subject_of(&f.sequences[0].sequence), "S010");
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for (text, line) in [
            ("0\tS010/002/a.png\n", 1),
            ("0\tS010/002/a.png\t7\nx\tS010/002/b.png\t7\n", 2),
            ("0\tS010/002/a.png\t7\n0\tS010/002/a.png\tseven\n", 2),
            ("0\ta.png\t7\n", 1),
            ("0\t../etc/a.png\t7\n", 1),
            ("0\tS010/002/a.png\t7\n0\tS010/002/a.png\t7\n", 2),
        ] {
            let e = FoldList::parse(text, p()).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("folds.txt:{line}:")),
                "{text:?} -> {e}"
            );
        }
    }

    #[test]
    fn a_sequence_in_two_folds_is_an_error() {
        let e = FoldList::parse("0\tS010/002/a.png\t7\n1\tS010/002/b.png\t7\n", p()).unwrap_err();
        assert!(matches!(e, PrepError::Folds { .. }), "{e}");
    }

    #[test]
    fn regression_oulu_list_mixes_two_path_prefixes() {
        let text = "1\toulu/Strong/P005/Fear/000.jpeg\t4\n1\tOriginalImg/VL/Strong/P005/Fear/011.jpeg\t4\n";
        assert_eq!(FoldList::parse(text, p()).unwrap().sequences.len(), 2);
        let f = FoldList::parse_with(text, p(), &normalise_oulu).unwrap();
        assert_eq!(f.sequences.len(), 1);
        assert_eq!(f.sequences[0].sequence, "OriginalImg/VL/Strong/P005/Fear");
    }

    #[test]
    fn oulu_subjects() {
        assert_eq!(subject_of("OriginalImg/VL/Strong/P001/Anger"), "P001");
    }

    #[test]
    fn committed_fold_lists_parse_and_are_subject_independent() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/folds");
        for (file, sequences, folds) in [
            ("CK+_Ten_group.txt", 327, 10),
            ("Oulu_CASIA_Ten_group.txt", 480, 10),
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let f = FoldList::parse_with(&text, Path::new(file), &normalise_oulu).unwrap();
            assert_eq!(f.sequences.len(), sequences, "{file}");
            assert_eq!(f.fold_sizes().len(), folds, "{file}");
            assert!(
                f.sequences.iter().all(|s| s.frames.len() == 3),
                "{file}: three frames per sequence"
            );
            // No subject in two folds.
            let mut subject_fold = BTreeMap::new();
            for s in &f.sequences {
                let prev = subject_fold.insert(subject_of(&s.sequence).to_string(), s.fold);
                assert!(
                    prev.is_none() || prev == Some(s.fold),
                    "{file}: {} in two folds",
                    s.sequence
                );
            }
        }
    }
}
