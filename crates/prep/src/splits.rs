//! Folds: the authors' lists mapped onto our sample ids, and a seeded subject-stratified k-fold for
//! datasets without a list. Either way a subject never appears in two folds.

use crate::folds::FoldList;
use crate::inventory::{reason, Inventory};
use shard::Split;
use std::collections::{BTreeMap, BTreeSet};

/// How an authors' fold list covered the dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FoldCoverage {
    /// Items placed by their listed sequence.
    pub listed: usize,
    /// Items not listed whose subject the list places (they join that subject's fold).
    pub by_subject: usize,
    /// Items rejected: their subject is not in the list.
    pub not_in_folds: usize,
    /// Items rejected: their label disagrees with the list.
    pub label_mismatch: usize,
    /// Listed sequences that the dataset copy does not have (or that were rejected earlier).
    pub missing: Vec<String>,
}

/// Places items into the folds of an authors' list.
///
/// `key_of(listed_sequence)` maps a listed sequence directory to our sample id (`None` = not ours,
/// e.g. another Oulu illumination); `label_of(listed_label)` maps the list's label numbering to ours.
/// Fold numbers are renumbered from 0 in ascending order (CK+ lists 0–9, Oulu 1–10).
pub fn apply_fold_list(
    inv: &mut Inventory,
    list: &FoldList,
    key_of: &dyn Fn(&str) -> Option<String>,
    label_of: &dyn Fn(u16) -> Option<u16>,
) -> FoldCoverage {
    let fold_numbers: BTreeSet<u16> = list.sequences.iter().map(|s| s.fold).collect();
    let renumber: BTreeMap<u16, u16> = fold_numbers
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, i as u16))
        .collect();
    let mut by_key: BTreeMap<String, (u16, Option<u16>)> = BTreeMap::new();
    let mut by_subject: BTreeMap<String, u16> = BTreeMap::new();
    for s in &list.sequences {
        let Some(key) = key_of(&s.sequence) else {
            continue;
        };
        let fold = renumber[&s.fold];
        let subject = key.split('/').next().unwrap_or("").to_string();
        by_subject.entry(subject).or_insert(fold);
        by_key.insert(key, (fold, label_of(s.label)));
    }
    let mut cov = FoldCoverage::default();
    let mut seen_keys = BTreeSet::new();
    let items = std::mem::take(&mut inv.items);
    for mut item in items {
        if let Some(&(fold, label)) = by_key.get(&item.sample_id) {
            seen_keys.insert(item.sample_id.clone());
            if label != Some(item.label) {
                cov.label_mismatch += 1;
                inv.rejected.push(shard::FailureRow {
                    input: item.input.clone(),
                    stage: "folds".into(),
                    reason: reason::LABEL_MISMATCH.into(),
                    detail: format!(
                        "label {} ({}) but the fold list says {:?}",
                        item.label,
                        inv.class_names
                            .get(item.label as usize)
                            .map(String::as_str)
                            .unwrap_or("?"),
                        label.and_then(|l| inv.class_names.get(l as usize))
                    ),
                });
                continue;
            }
            item.split = Split::Fold(fold);
            cov.listed += 1;
        } else if let Some(&fold) = by_subject.get(&item.subject) {
            item.split = Split::Fold(fold);
            cov.by_subject += 1;
        } else {
            cov.not_in_folds += 1;
            inv.rejected.push(shard::FailureRow {
                input: item.input.clone(),
                stage: "folds".into(),
                reason: reason::NOT_IN_FOLDS.into(),
                detail: format!("subject {} is in no fold of the list", item.subject),
            });
            continue;
        }
        inv.items.push(item);
    }
    cov.missing = by_key
        .keys()
        .filter(|k| !seen_keys.contains(*k))
        .cloned()
        .collect();
    crate::inventory::sort_failures(&mut inv.rejected);
    cov
}

/// Seeded subject-stratified k-fold: every subject goes to one fold; subjects are placed largest
/// first (ties in a seeded order) into the fold where their classes are rarest so far, which
/// balances both fold sizes and class proportions. Items without a subject are their own subject.
pub fn subject_kfold(inv: &mut Inventory, k: u16, seed: u64) {
    let classes = inv.class_names.len().max(1);
    let mut per_subject: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for it in &inv.items {
        let s = subject_key(&it.subject, &it.sample_id);
        per_subject
            .entry(s.to_string())
            .or_insert_with(|| vec![0; classes])[(it.label as usize).min(classes - 1)] += 1;
    }
    let mut order: Vec<(&String, &Vec<u32>)> = per_subject.iter().collect();
    let rank = |s: &str| {
        let mut h = blake3::Hasher::new();
        h.update(&seed.to_le_bytes());
        h.update(s.as_bytes());
        let b = h.finalize();
        u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    };
    order.sort_by_key(|(s, c)| (std::cmp::Reverse(c.iter().sum::<u32>()), rank(s)));
    let k = k as usize;
    let mut fold_counts = vec![vec![0u64; classes]; k];
    let mut fold_of: BTreeMap<&str, u16> = BTreeMap::new();
    for (subject, counts) in order {
        let cost = |f: usize| {
            let clash: u64 = (0..classes)
                .map(|c| counts[c] as u64 * fold_counts[f][c])
                .sum();
            let total: u64 = fold_counts[f].iter().sum();
            (clash, total, f)
        };
        let best = (0..k).min_by_key(|&f| cost(f)).unwrap_or(0);
        for c in 0..classes {
            fold_counts[best][c] += counts[c] as u64;
        }
        fold_of.insert(subject, best as u16);
    }
    for it in &mut inv.items {
        let s = subject_key(&it.subject, &it.sample_id);
        it.split = Split::Fold(fold_of.get(s).copied().unwrap_or(0));
    }
}

fn subject_key<'a>(subject: &'a str, sample_id: &'a str) -> &'a str {
    if subject.is_empty() {
        sample_id
    } else {
        subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::InputItem;

    fn item(id: &str, subject: &str, label: u16) -> InputItem {
        InputItem {
            subject: subject.into(),
            ..InputItem::still_file(id.into(), label, Split::Train, id.into(), 1)
        }
    }

    fn folds_of_subjects(inv: &Inventory) -> BTreeMap<String, BTreeSet<u16>> {
        let mut m: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for it in &inv.items {
            m.entry(it.subject.clone())
                .or_default()
                .insert(it.split.fold().unwrap());
        }
        m
    }

    #[test]
    fn subject_kfold_keeps_subjects_together_and_balances() {
        let mut inv = Inventory::new("t", ".".into(), &["a", "b", "c"]);
        for s in 0..37 {
            for j in 0..(1 + s % 5) {
                inv.push(item(
                    &format!("S{s:03}/{j}"),
                    &format!("S{s:03}"),
                    (j % 3) as u16,
                ));
            }
        }
        let mut a = inv.clone();
        subject_kfold(&mut a, 10, 1);
        for (subject, folds) in folds_of_subjects(&a) {
            assert_eq!(folds.len(), 1, "{subject} in {folds:?}");
        }
        let mut sizes = [0usize; 10];
        for it in &a.items {
            sizes[it.split.fold().unwrap() as usize] += 1;
        }
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 5, "{sizes:?}");
        // Same seed, same folds; another seed, another assignment.
        let mut b = inv.clone();
        subject_kfold(&mut b, 10, 1);
        let mut c = inv.clone();
        subject_kfold(&mut c, 10, 2);
        let splits = |i: &Inventory| i.items.iter().map(|t| t.split).collect::<Vec<_>>();
        assert_eq!(splits(&a), splits(&b));
        assert_ne!(splits(&a), splits(&c));
    }

    #[test]
    fn fold_list_mapping() {
        let text = "0\tS010/002/a.png\t7\n0\tS010/002/b.png\t7\n1\tS011/001/a.png\t1\n\
                    1\tS012/001/a.png\t2\n";
        let list = FoldList::parse(text, std::path::Path::new("folds.txt")).unwrap();
        let mut inv = Inventory::new(
            "t",
            ".".into(),
            &["anger", "contempt", "x", "x", "x", "x", "surprise"],
        );
        inv.push(item("S010/002", "S010", 6)); // listed
        inv.push(item("S010/005", "S010", 0)); // unlisted, subject listed
        inv.push(item("S011/001", "S011", 3)); // label mismatch
        inv.push(item("S099/001", "S099", 0)); // subject unknown
        let cov = apply_fold_list(
            &mut inv,
            &list,
            &|s: &str| Some(s.to_string()),
            &|l: u16| l.checked_sub(1),
        );
        assert_eq!(
            (
                cov.listed,
                cov.by_subject,
                cov.label_mismatch,
                cov.not_in_folds
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(cov.missing, vec!["S012/001".to_string()]);
        assert_eq!(inv.items.len(), 2);
        assert!(inv.items.iter().all(|i| i.split == Split::Fold(0)));
        let reasons: Vec<&str> = inv.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, vec![reason::LABEL_MISMATCH, reason::NOT_IN_FOLDS]);
    }
}
