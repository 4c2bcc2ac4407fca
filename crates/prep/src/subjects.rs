//! Subjects for class-folder datasets whose layout carries none (`--dataset folders`): from the
//! file names by a regular expression (`--subject-regex`), or from a csv that maps files to
//! subjects (`--subjects FILE`). Without either, every image is its own subject, the folds are
//! image-level, and prep and train say so loudly: one person can then sit in training and test
//! folds, and subject-independent numbers are not possible.

use crate::inventory::{reason, Inventory};
use crate::{PrepError, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The note (`notes.folds_by` in the manifest) that says what a fold keeps together.
pub const FOLDS_BY_NOTE: &str = "folds_by";

/// Where subjects come from.
#[derive(Debug, Clone)]
pub enum SubjectRule {
    /// The file name (not the folder) matched against a regular expression: the named group
    /// `subject` if the expression has one, else group 1, else the whole match.
    Regex(regex::Regex),
    /// A csv of `file,subject` rows (a `file,subject` header is optional; `#` lines are
    /// comments). `file` is the path under the dataset root (`happy/img_001.png`) or the bare
    /// file name when that is unique.
    Map {
        /// The csv file, for error messages.
        file: std::path::PathBuf,
        /// file → subject.
        subjects: BTreeMap<String, String>,
    },
}

impl SubjectRule {
    /// Compiles `--subject-regex`.
    ///
    /// Errors: [`PrepError::Parse`] naming the option when the expression does not compile.
    pub fn regex(expr: &str) -> Result<SubjectRule> {
        regex::Regex::new(expr)
            .map(SubjectRule::Regex)
            .map_err(|e| PrepError::parse(Path::new("--subject-regex"), 0, e.to_string()))
    }

    /// Reads a `--subjects` csv.
    ///
    /// Errors: [`PrepError::Io`]; [`PrepError::Parse`] with the line of a row without two
    /// non-empty fields or of a file listed twice with different subjects.
    pub fn load_map(path: &Path) -> Result<SubjectRule> {
        let text = std::fs::read_to_string(path).map_err(|e| PrepError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        let mut subjects = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') || (i == 0 && line == "file,subject") {
                continue;
            }
            let Some((file, subject)) = line.split_once(',') else {
                return Err(PrepError::parse(path, i + 1, "expected `file,subject`"));
            };
            let (file, subject) = (
                file.trim().trim_matches('"'),
                subject.trim().trim_matches('"'),
            );
            if file.is_empty() || subject.is_empty() {
                return Err(PrepError::parse(path, i + 1, "empty file or subject"));
            }
            if let Some(old) = subjects.insert(file.to_string(), subject.to_string()) {
                if old != subject {
                    return Err(PrepError::parse(
                        path,
                        i + 1,
                        format!("{file} is listed with two subjects, {old} and {subject}"),
                    ));
                }
            }
        }
        Ok(SubjectRule::Map {
            file: path.to_path_buf(),
            subjects,
        })
    }

    /// The subject of the input at `rel` (path under the dataset root), or why there is none.
    fn subject_of(&self, rel: &str) -> std::result::Result<String, String> {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        match self {
            SubjectRule::Regex(re) => {
                let caps = re.captures(name).ok_or_else(|| {
                    format!("{name} does not match --subject-regex {}", re.as_str())
                })?;
                let m = caps
                    .name("subject")
                    .or_else(|| caps.get(1))
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str())
                    .unwrap_or_default();
                if m.is_empty() {
                    return Err(format!(
                        "--subject-regex matched an empty subject in {name}"
                    ));
                }
                Ok(m.to_string())
            }
            SubjectRule::Map { file, subjects } => subjects
                .get(rel)
                .or_else(|| subjects.get(name))
                .cloned()
                .ok_or_else(|| format!("not listed in {}", file.display())),
        }
    }
}

/// Gives every item of `inv` its subject by `rule`, or, without a rule, marks the folds
/// image-level. Items the rule gives no subject are rejected (`bad_name` for the expression,
/// `no_subject` for the csv) so that the counts still add up.
pub fn assign(inv: &mut Inventory, rule: Option<&SubjectRule>) {
    let Some(rule) = rule else {
        inv.notes.insert(FOLDS_BY_NOTE.into(), "image".into());
        return;
    };
    let items = std::mem::take(&mut inv.items);
    let code = match rule {
        SubjectRule::Regex(_) => reason::BAD_NAME,
        SubjectRule::Map { .. } => reason::NO_SUBJECT,
    };
    for mut it in items {
        match rule.subject_of(&it.input) {
            Ok(s) => {
                it.subject = s;
                inv.items.push(it);
            }
            Err(why) => {
                // `reject` counts the input as seen; it was counted when it was pushed.
                inv.seen -= 1;
                inv.reject(it.input.clone(), "parse", code, why);
            }
        }
    }
    inv.notes.insert(FOLDS_BY_NOTE.into(), "subject".into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::InputItem;

    fn inv(files: &[&str]) -> Inventory {
        let mut inv = Inventory::new("folders", "/x".into(), &["a"]);
        for f in files {
            inv.push(InputItem::new(
                f.to_string(),
                0,
                shard::Split::Train,
                Vec::new(),
                f.to_string(),
            ));
        }
        inv
    }

    #[test]
    fn regex_takes_the_named_group_then_group_one() {
        let mut i = inv(&["happy/P07_smile_3.png", "sad/P12_x.png", "sad/nobody.png"]);
        assign(
            &mut i,
            Some(&SubjectRule::regex(r"^(?P<subject>P\d+)_").unwrap()),
        );
        let got: Vec<(&str, &str)> = i
            .items
            .iter()
            .map(|it| (it.input.as_str(), it.subject.as_str()))
            .collect();
        assert_eq!(
            got,
            [("happy/P07_smile_3.png", "P07"), ("sad/P12_x.png", "P12")]
        );
        assert_eq!(i.rejected.len(), 1);
        assert_eq!(i.rejected[0].reason, reason::BAD_NAME);
        assert_eq!(i.seen, 3, "a rejected input is counted once");
        assert_eq!(i.notes[FOLDS_BY_NOTE], "subject");
        let mut j = inv(&["a/KA.AN1.39.tiff"]);
        assign(&mut j, Some(&SubjectRule::regex(r"^([A-Z]{2})\.").unwrap()));
        assert_eq!(j.items[0].subject, "KA");
        assert!(SubjectRule::regex("(").is_err());
    }

    #[test]
    fn csv_maps_paths_or_bare_names_and_rejects_the_unlisted() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("subjects.csv");
        std::fs::write(&csv, "file,subject\nhappy/a.png,s1\nb.png,s2\n# comment\n").unwrap();
        let rule = SubjectRule::load_map(&csv).unwrap();
        let mut i = inv(&["happy/a.png", "sad/b.png", "sad/c.png"]);
        assign(&mut i, Some(&rule));
        let subjects: Vec<&str> = i.items.iter().map(|it| it.subject.as_str()).collect();
        assert_eq!(subjects, ["s1", "s2"]);
        assert_eq!(i.rejected[0].reason, reason::NO_SUBJECT);
        std::fs::write(&csv, "a.png,s1\na.png,s2\n").unwrap();
        let e = SubjectRule::load_map(&csv).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("two subjects"), "{e}");
    }

    #[test]
    fn without_a_rule_the_folds_are_marked_image_level() {
        let mut i = inv(&["a/x.png"]);
        assign(&mut i, None);
        assert_eq!(i.notes[FOLDS_BY_NOTE], "image");
        assert_eq!(i.items[0].subject, "");
    }
}
