//! Expression classes matched by name across datasets: FER2013 says `angry` and `sad`, CK+ and
//! JAFFE say `anger` and `sadness`, AffectNet and Oulu-CASIA `happy` and `happiness`. One
//! canonical spelling per expression lets a model trained on one cache start or score runs on
//! another ([`crate::transfer`], `train eval`).

use serde::Serialize;

/// The canonical spelling of an expression class name: lower case, and the one word of each
/// synonym group (`angry` → `anger`, `sad` → `sadness`, `happiness` → `happy`, `surprised` →
/// `surprise`, `disgusted` → `disgust`, `fearful`/`scared` → `fear`, `contemptuous` →
/// `contempt`). Names outside these groups stay as they are, lower-cased.
pub fn canonical(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let same = match lower.as_str() {
        "angry" | "anger" => "anger",
        "sad" | "sadness" => "sadness",
        "happy" | "happiness" => "happy",
        "surprise" | "surprised" => "surprise",
        "disgust" | "disgusted" => "disgust",
        "fear" | "fearful" | "scared" => "fear",
        "contempt" | "contemptuous" => "contempt",
        "neutral" | "neutrality" => "neutral",
        other => return other.to_string(),
    };
    same.to_string()
}

/// How two class lists correspond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassMatch {
    /// Classes both have, as (index in the first list, index in the second, canonical name), in
    /// the second list's order.
    pub shared: Vec<(usize, usize, String)>,
    /// Classes only the first list has (its own spelling).
    pub only_first: Vec<String>,
    /// Classes only the second list has (its own spelling).
    pub only_second: Vec<String>,
}

impl ClassMatch {
    /// Matches `first` and `second` by [`canonical`] name.
    pub fn between(first: &[String], second: &[String]) -> ClassMatch {
        let a: Vec<String> = first.iter().map(|c| canonical(c)).collect();
        let b: Vec<String> = second.iter().map(|c| canonical(c)).collect();
        let shared = b
            .iter()
            .enumerate()
            .filter_map(|(j, name)| {
                a.iter()
                    .position(|x| x == name)
                    .map(|i| (i, j, name.clone()))
            })
            .collect();
        ClassMatch {
            shared,
            only_first: first
                .iter()
                .zip(&a)
                .filter(|(_, n)| !b.contains(n))
                .map(|(c, _)| c.clone())
                .collect(),
            only_second: second
                .iter()
                .zip(&b)
                .filter(|(_, n)| !a.contains(n))
                .map(|(c, _)| c.clone())
                .collect(),
        }
    }

    /// Both lists hold the same classes (in any order).
    pub fn same_set(&self) -> bool {
        self.only_first.is_empty() && self.only_second.is_empty()
    }

    /// Both lists hold the same classes in the same order.
    pub fn identical(&self) -> bool {
        self.same_set() && self.shared.iter().all(|(i, j, _)| i == j)
    }

    /// For lists of the same set: the first list's index of each of the second's classes.
    pub fn permutation(&self) -> Option<Vec<usize>> {
        self.same_set()
            .then(|| self.shared.iter().map(|(i, _, _)| *i).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// FER2013 against CK+ and JAFFE, as the caches spell them.
    #[test]
    fn fer2013_classes_against_ckplus_and_jaffe() {
        let fer = names(&[
            "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
        ]);
        let ck = names(&[
            "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
        ]);
        let jaffe = names(&[
            "anger", "disgust", "fear", "happy", "neutral", "sadness", "surprise",
        ]);
        let m = ClassMatch::between(&fer, &ck);
        assert_eq!(m.only_first, ["neutral"]);
        assert_eq!(m.only_second, ["contempt"]);
        assert_eq!(m.shared.len(), 6);
        assert_eq!(m.shared[0], (0, 0, "anger".to_string()));
        assert_eq!(m.shared[4], (4, 5, "sadness".to_string()));
        assert!(!m.same_set() && m.permutation().is_none());
        let j = ClassMatch::between(&fer, &jaffe);
        assert!(j.same_set() && !j.identical());
        // JAFFE's neutral (its index 4) is FER2013's 6, its sadness (5) FER2013's 4.
        assert_eq!(j.permutation().unwrap(), vec![0, 1, 2, 3, 6, 4, 5]);
        assert!(ClassMatch::between(&ck, &ck).identical());
        assert_eq!(canonical(" Happiness"), "happy");
        assert_eq!(canonical("Other"), "other");
    }
}
