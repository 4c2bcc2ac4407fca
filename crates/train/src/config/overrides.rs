//! `--set key=value`: dotted keys laid over an experiment TOML before it is resolved, with the
//! file's types and checks, and the nearest keys named when a key does not exist.
//!
//! The value is read as a TOML value (`2`, `1e-3`, `true`, `[0, 1]`, `"text"`); anything that is
//! not one is taken as a bare string, so `--set model.branches=gfm` needs no quotes.

use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// One `key=value` override of an experiment configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// Dotted key, e.g. `model.branches` or `train.seed`.
    pub key: String,
    /// The value as given on the command line.
    pub text: String,
}

impl Override {
    /// The override `key = value` (the value as TOML text, or a bare string).
    pub fn new(key: impl Into<String>, text: impl Into<String>) -> Override {
        Override {
            key: key.into(),
            text: text.into(),
        }
    }

    /// The value: TOML when `text` parses as a TOML value, else the text as a string.
    pub fn value(&self) -> toml::Value {
        toml::from_str::<toml::Table>(&format!("v = {}", self.text))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(self.text.clone()))
    }

    /// Lays the value into `table` at the dotted key, creating tables on the way.
    ///
    /// Errors: [`TrainError::Override`] for an empty key part, or a part that is a value where
    /// a table is needed (`train.lr.x`).
    pub fn apply(&self, table: &mut toml::Table) -> Result<()> {
        let parts: Vec<&str> = self.key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(self.error("a key is dotted names, e.g. model.branches or train.seed"));
        }
        let (last, path) = parts.split_last().ok_or_else(|| self.error("empty key"))?;
        let mut t = table;
        for (i, p) in path.iter().enumerate() {
            let entry = t
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(self.error(&format!(
                        "`{}` is a value, not a table",
                        parts[..=i].join(".")
                    )))
                }
            };
        }
        t.insert(last.to_string(), self.value());
        Ok(())
    }

    /// An error about this override.
    pub(crate) fn error(&self, reason: &str) -> TrainError {
        TrainError::Override {
            set: self.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.text)
    }
}

impl FromStr for Override {
    type Err = String;

    /// Parses `key=value` (the first `=` splits).
    fn from_str(s: &str) -> std::result::Result<Override, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected KEY=VALUE, e.g. model.branches=gfm"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("{s:?}: the key before `=` is empty"));
        }
        Ok(Override::new(k, v.trim()))
    }
}

/// The `n` known keys closest to `key` by edit distance (ties in key order).
pub fn nearest_keys(key: &str, known: &[String], n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .map(|k| {
            // Compare with the full key and, so that `branchs` finds `model.branches`, with its
            // last part.
            let last = k.rsplit('.').next().unwrap_or(k);
            let key_last = key.rsplit('.').next().unwrap_or(key);
            (
                edit_distance(key, k).min(edit_distance(key_last, last) + 1),
                k,
            )
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, k)| k.clone()).collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_or_bare_strings() {
        let v = |s: &str| s.parse::<Override>().unwrap().value();
        assert_eq!(v("train.seed=2"), toml::Value::Integer(2));
        assert_eq!(v("train.lr=1e-3"), toml::Value::Float(1e-3));
        assert_eq!(v("train.flip=false"), toml::Value::Boolean(false));
        assert_eq!(v("model.branches=gfm"), toml::Value::String("gfm".into()));
        assert_eq!(
            v("model.branches=\"gfm\""),
            toml::Value::String("gfm".into())
        );
        assert_eq!(
            v("folds=[0, 1]"),
            toml::Value::Array(vec![toml::Value::Integer(0), toml::Value::Integer(1)])
        );
        // The first `=` splits: the value may hold more.
        assert_eq!(v("name=a=b"), toml::Value::String("a=b".into()));
        assert!("no-equals".parse::<Override>().is_err());
        assert!("=3".parse::<Override>().is_err());
    }

    #[test]
    fn apply_creates_tables_and_refuses_values_as_tables() {
        let mut t: toml::Table = toml::from_str("[train]\nlr = 0.1\n").unwrap();
        Override::new("model.width", "0.5").apply(&mut t).unwrap();
        Override::new("train.seed", "3").apply(&mut t).unwrap();
        assert_eq!(t["model"]["width"].as_float(), Some(0.5));
        assert_eq!(t["train"]["seed"].as_integer(), Some(3));
        assert_eq!(t["train"]["lr"].as_float(), Some(0.1));
        let e = Override::new("train.lr.x", "1").apply(&mut t).unwrap_err();
        assert!(e.to_string().contains("`train.lr` is a value"), "{e}");
        assert!(Override::new("train..x", "1").apply(&mut t).is_err());
    }

    #[test]
    fn nearest_keys_by_edit_distance() {
        let known: Vec<String> = [
            "model.branches",
            "model.deform",
            "train.seed",
            "train.epochs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(nearest_keys("model.branchs", &known, 1), ["model.branches"]);
        assert_eq!(nearest_keys("branches", &known, 1), ["model.branches"]);
        assert_eq!(nearest_keys("train.sed", &known, 2)[0], "train.seed");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
