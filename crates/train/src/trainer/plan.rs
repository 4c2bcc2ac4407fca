//! Which records train, select and test in each fold: the k-fold and split protocols, the
//! validation hold-out, and the checks that a plan is usable and subject-disjoint.

use crate::config::{ExperimentConfig, Protocol, Selection};
use crate::loader::SampleInfo;
use crate::{Result, TrainError};
use shard::{KeyedRng, Split};
use std::collections::{BTreeMap, BTreeSet};

/// One evaluation unit: which records train, select and test.
#[derive(Debug, Clone)]
pub struct FoldPlan {
    /// Name (`fold3`, `split`).
    pub name: String,
    /// Fold number (for seeds); 0 for the split protocol.
    pub index: u64,
    /// Training records.
    pub train: Vec<u64>,
    /// Validation records (never the test set; empty when selection is `final`).
    pub validation: Vec<u64>,
    /// Test records.
    pub test: Vec<u64>,
    /// Training samples per class label (index = label; as long as the largest label seen in
    /// the cache + 1), for class-balanced losses.
    pub train_class_counts: Vec<usize>,
}

/// Plans the folds of an experiment from the cache's splits.
///
/// k-fold: every fold in turn is the test set (or those listed in `folds`); with
/// `selection = "validation"` a seeded, subject-disjoint share of the training subjects is held out.
/// split: train / validation / test as stored; with `selection = "validation"` and no validation
/// split in the cache (RAF-DB, AffectNet), a seeded share of the training data is held out.
///
/// Errors: no folds in the cache, an empty training or test set, a subject in both the training
/// (or validation) and the test records of a k-fold plan.
pub fn plan_folds(cfg: &ExperimentConfig, infos: &[SampleInfo]) -> Result<Vec<FoldPlan>> {
    let t = &cfg.train;
    let plans = match cfg.protocol {
        Protocol::Split => {
            let pick = |s: Split| -> Vec<u64> {
                infos
                    .iter()
                    .filter(|i| i.split == s)
                    .map(|i| i.record)
                    .collect()
            };
            let mut train = pick(Split::Train);
            let validation = match t.selection {
                Selection::Final => Vec::new(),
                Selection::Validation => {
                    let given = pick(Split::Validation);
                    if given.is_empty() {
                        let candidates = by_record(infos, &train);
                        let held =
                            hold_out(&candidates, &[t.seed, 0x5917_7a1d], t.validation_share);
                        train.retain(|r| !held.contains(r));
                        held.into_iter().collect()
                    } else {
                        given
                    }
                }
            };
            vec![FoldPlan {
                name: "split".into(),
                index: 0,
                train,
                validation,
                test: pick(Split::Test),
                train_class_counts: Vec::new(),
            }]
        }
        Protocol::Kfold => {
            let folds: BTreeSet<u16> = infos.iter().filter_map(|i| i.split.fold()).collect();
            if folds.len() < 2 {
                return Err(TrainError::EmptySplit {
                    fold: "*".into(),
                    reason:
                        "the cache has fewer than 2 folds (k-fold needs a cache built with folds; \
                             use protocol = \"split\" for FER2013)"
                            .into(),
                });
            }
            let wanted: Vec<u16> = match &cfg.folds {
                Some(f) => f.clone(),
                None => folds.iter().copied().collect(),
            };
            let mut plans = Vec::new();
            for k in wanted {
                if !folds.contains(&k) {
                    return Err(TrainError::EmptySplit {
                        fold: format!("fold{k}"),
                        reason: format!("not among the cache's folds {folds:?}"),
                    });
                }
                let test: Vec<u64> = infos
                    .iter()
                    .filter(|i| i.split == Split::Fold(k))
                    .map(|i| i.record)
                    .collect();
                let rest: Vec<&SampleInfo> = infos
                    .iter()
                    .filter(|i| i.split.fold().is_some_and(|f| f != k))
                    .collect();
                let held = match t.selection {
                    Selection::Final => BTreeSet::new(),
                    Selection::Validation => {
                        hold_out(&rest, &[t.seed, k as u64, 0x0_7a1d], t.validation_share)
                    }
                };
                let (validation, train): (Vec<&SampleInfo>, Vec<&SampleInfo>) =
                    rest.into_iter().partition(|i| held.contains(&i.record));
                plans.push(FoldPlan {
                    name: format!("fold{k}"),
                    index: k as u64,
                    train: train.iter().map(|i| i.record).collect(),
                    validation: validation.iter().map(|i| i.record).collect(),
                    test,
                    train_class_counts: Vec::new(),
                });
            }
            plans
        }
    };
    let mut plans = plans;
    let label_of: std::collections::HashMap<u64, i64> =
        infos.iter().map(|i| (i.record, i.label)).collect();
    let classes = infos
        .iter()
        .map(|i| i.label.max(0) as usize + 1)
        .max()
        .unwrap_or(0);
    for p in &mut plans {
        p.train_class_counts = vec![0; classes];
        for r in &p.train {
            if let Some(&l) = label_of.get(r) {
                if let Some(c) = p.train_class_counts.get_mut(l.max(0) as usize) {
                    *c += 1;
                }
            }
        }
    }
    for p in &plans {
        check_plan(p)?;
        if cfg.protocol == Protocol::Kfold {
            check_subject_disjoint(p, infos)?;
        }
    }
    Ok(plans)
}

/// The infos of `records`, in their order.
fn by_record<'a>(infos: &'a [SampleInfo], records: &[u64]) -> Vec<&'a SampleInfo> {
    let index: std::collections::HashMap<u64, &SampleInfo> =
        infos.iter().map(|i| (i.record, i)).collect();
    records
        .iter()
        .filter_map(|r| index.get(r).copied())
        .collect()
}

/// The validation hold-out of both protocols: a seeded `share` (at least one group) of the
/// `candidates`' groups — whole subjects when the samples name one, single samples otherwise —
/// drawn by the generator keyed by `keys`. Depends only on the keys and the cache, never on
/// thread count. Returns the held-out records.
fn hold_out(candidates: &[&SampleInfo], keys: &[u64], share: f64) -> BTreeSet<u64> {
    let group = |i: &SampleInfo| {
        if i.subject.is_empty() {
            format!("r:{}", i.record)
        } else {
            format!("s:{}", i.subject)
        }
    };
    let mut groups: Vec<String> = candidates
        .iter()
        .map(|i| group(i))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    KeyedRng::new(keys).shuffle(&mut groups);
    let n = ((groups.len() as f64) * share).ceil() as usize;
    let held: BTreeSet<String> = groups.into_iter().take(n.max(1)).collect();
    candidates
        .iter()
        .filter(|i| held.contains(&group(i)))
        .map(|i| i.record)
        .collect()
}

fn check_plan(p: &FoldPlan) -> Result<()> {
    if p.train.is_empty() || p.test.is_empty() {
        return Err(TrainError::EmptySplit {
            fold: p.name.clone(),
            reason: format!(
                "{} training and {} test samples",
                p.train.len(),
                p.test.len()
            ),
        });
    }
    Ok(())
}

/// No named subject of the test records is among the training or validation records.
fn check_subject_disjoint(p: &FoldPlan, infos: &[SampleInfo]) -> Result<()> {
    let subject_of: BTreeMap<u64, &str> = infos
        .iter()
        .map(|i| (i.record, i.subject.as_str()))
        .collect();
    let test: BTreeSet<&str> = p.test.iter().map(|r| subject_of[r]).collect();
    match p
        .train
        .iter()
        .chain(&p.validation)
        .map(|r| subject_of[r])
        .find(|s| !s.is_empty() && test.contains(s))
    {
        Some(s) => Err(TrainError::EmptySplit {
            fold: p.name.clone(),
            reason: format!("subject {s} is in both training and test data"),
        }),
        None => Ok(()),
    }
}
