//! A confusion matrix and the figures papers report from it: accuracy, balanced accuracy (mean class
//! accuracy, the RAF-DB / AffectNet convention), macro-F1, per-class precision / recall / F1,
//! seeded bootstrap confidence intervals.
//!
//! Conventions follow scikit-learn, so that numbers compare with papers that used it:
//! * balanced accuracy averages the recall of the classes that have test samples
//!   (`balanced_accuracy_score`);
//! * macro-F1 averages F1 over the classes that occur as truth or as prediction
//!   (`f1_score(average="macro")`), a class never predicted and never true does not count;
//! * an undefined precision or recall (0 / 0) counts as 0 in F1 (`zero_division=0`); in
//!   [`ClassScores`] it is `None` (JSON `null`), so that a table can print "–".

use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bootstrap resamples per confidence interval.
pub const BOOTSTRAP_DRAWS: usize = 1000;

/// A confusion matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    /// counts[true][predicted].
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// Zeros for `n` classes.
    pub fn new(n: usize) -> Confusion {
        Confusion {
            counts: vec![vec![0; n]; n],
        }
    }

    /// Counts one prediction (out-of-range classes are ignored).
    pub fn add(&mut self, truth: usize, pred: usize) {
        if let Some(c) = self.counts.get_mut(truth).and_then(|r| r.get_mut(pred)) {
            *c += 1;
        }
    }

    /// Fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().flatten().sum();
        let diag: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        if total == 0 {
            0.0
        } else {
            diag as f64 / total as f64
        }
    }

    /// Recall per class (NaN for a class without samples).
    pub fn recalls(&self) -> Vec<f64> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let n: u64 = r.iter().sum();
                if n == 0 {
                    f64::NAN
                } else {
                    r[i] as f64 / n as f64
                }
            })
            .collect()
    }

    /// Writes `true\predicted` CSV with class names.
    pub fn write_csv(&self, path: &Path, classes: &[String]) -> Result<()> {
        let mut s = String::from("true\\predicted");
        for c in classes {
            s.push(',');
            s.push_str(c);
        }
        s.push('\n');
        for (i, row) in self.counts.iter().enumerate() {
            s.push_str(classes.get(i).map(String::as_str).unwrap_or("?"));
            for v in row {
                s.push_str(&format!(",{v}"));
            }
            s.push('\n');
        }
        shard::atomic_write(path, s.as_bytes())?;
        Ok(())
    }
}

/// Per-class precision, recall and F1 with their support.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClassScores {
    /// Of the samples predicted as the class, the share that are (`None`: never predicted).
    pub precision: Vec<Option<f64>>,
    /// Of the samples of the class, the share predicted as it (`None`: no samples).
    pub recall: Vec<Option<f64>>,
    /// Harmonic mean of precision and recall (0 when either is 0 or undefined; `None` when the
    /// class neither occurs nor is predicted).
    pub f1: Vec<Option<f64>>,
    /// Test samples of the class.
    pub support: Vec<u64>,
}

/// The figures of one evaluation (a fold, or a run's folds pooled), as fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    /// Samples scored.
    pub samples: u64,
    /// Share of samples predicted right.
    pub accuracy: f64,
    /// Mean recall over the classes with samples.
    pub balanced_accuracy: f64,
    /// Mean F1 over the classes that occur as truth or prediction.
    pub macro_f1: f64,
    /// 95 % percentile bootstrap interval of the accuracy ([`BOOTSTRAP_DRAWS`] seeded resamples
    /// of the scored samples).
    pub accuracy_ci: (f64, f64),
    /// 95 % percentile bootstrap interval of the macro-F1 (the same resamples).
    pub macro_f1_ci: (f64, f64),
    /// Per-class figures.
    pub classes: ClassScores,
}

impl Confusion {
    /// Per-class precision, recall, F1 and support.
    pub fn class_scores(&self) -> ClassScores {
        let n = self.counts.len();
        let support: Vec<u64> = self.counts.iter().map(|r| r.iter().sum()).collect();
        let predicted: Vec<u64> = (0..n)
            .map(|j| {
                self.counts
                    .iter()
                    .map(|r| r.get(j).copied().unwrap_or(0))
                    .sum()
            })
            .collect();
        let mut s = ClassScores {
            support: support.clone(),
            ..ClassScores::default()
        };
        for i in 0..n {
            let tp = self.counts[i].get(i).copied().unwrap_or(0) as f64;
            let p = ratio(tp, predicted[i] as f64);
            let r = ratio(tp, support[i] as f64);
            let f = (support[i] + predicted[i] > 0)
                // 2·tp / (support + predicted) is the harmonic mean, and 0 when tp is.
                .then(|| 2.0 * tp / (support[i] + predicted[i]) as f64);
            s.precision.push(p);
            s.recall.push(r);
            s.f1.push(f);
        }
        s
    }

    /// Mean recall over the classes with samples (0 when there are none).
    pub fn balanced_accuracy(&self) -> f64 {
        mean_defined(&self.class_scores().recall)
    }

    /// Mean F1 over the classes that occur as truth or prediction (0 when none do).
    pub fn macro_f1(&self) -> f64 {
        mean_defined(&self.class_scores().f1)
    }

    /// Every figure of [`Metrics`], with bootstrap intervals from the stream named by `seed`.
    pub fn metrics(&self, seed: &[u64]) -> Metrics {
        let (accuracy_ci, macro_f1_ci) = self.bootstrap(seed, BOOTSTRAP_DRAWS);
        Metrics {
            samples: self.counts.iter().flatten().sum(),
            accuracy: self.accuracy(),
            balanced_accuracy: self.balanced_accuracy(),
            macro_f1: self.macro_f1(),
            accuracy_ci,
            macro_f1_ci,
            classes: self.class_scores(),
        }
    }

    /// 95 % percentile bootstrap intervals of accuracy and macro-F1: `draws` resamples (with
    /// replacement) of the scored samples, each as many as there are. Order-free, so the counts
    /// are all it needs. Deterministic for a given `seed`.
    pub fn bootstrap(&self, seed: &[u64], draws: usize) -> ((f64, f64), (f64, f64)) {
        let n = self.counts.len();
        // Cells with samples and their cumulative counts: a draw is a binary search.
        let cells: Vec<(usize, usize, u64)> = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter_map(|(i, j)| {
                let c = self.counts[i].get(j).copied().unwrap_or(0);
                (c > 0).then_some((i, j, c))
            })
            .collect();
        let total: u64 = cells.iter().map(|c| c.2).sum();
        if total == 0 || draws == 0 {
            return ((0.0, 0.0), (0.0, 0.0));
        }
        let mut cumulative = Vec::with_capacity(cells.len());
        let mut acc = 0u64;
        for c in &cells {
            acc += c.2;
            cumulative.push(acc);
        }
        let mut rng = shard::KeyedRng::in_domain(BOOTSTRAP_DOMAIN, seed);
        let mut accs = Vec::with_capacity(draws);
        let mut f1s = Vec::with_capacity(draws);
        let mut resample = Confusion::new(n);
        for _ in 0..draws {
            for row in &mut resample.counts {
                row.iter_mut().for_each(|v| *v = 0);
            }
            for _ in 0..total {
                let u = rng.below(total as usize) as u64;
                let k = cumulative.partition_point(|&c| c <= u);
                let (i, j, _) = cells[k];
                resample.counts[i][j] += 1;
            }
            accs.push(resample.accuracy());
            f1s.push(resample.macro_f1());
        }
        (
            percentile_interval(&mut accs),
            percentile_interval(&mut f1s),
        )
    }
}

/// The random stream domain of bootstrap resampling (unrelated to training's streams).
const BOOTSTRAP_DOMAIN: u64 = 0xb007_5742_a9c1;

/// a / b, `None` for 0 / 0.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// Mean of the defined values (0 when there are none).
fn mean_defined(v: &[Option<f64>]) -> f64 {
    let d: Vec<f64> = v.iter().flatten().copied().collect();
    if d.is_empty() {
        0.0
    } else {
        d.iter().sum::<f64>() / d.len() as f64
    }
}

/// The 2.5th and 97.5th percentiles (linear interpolation between order statistics, numpy's
/// default).
fn percentile_interval(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (quantile(v, 0.025), quantile(v, 0.975))
}

/// The q-quantile of sorted `v` (numpy's `linear` method).
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(counts: &[&[u64]]) -> Confusion {
        Confusion {
            counts: counts.iter().map(|r| r.to_vec()).collect(),
        }
    }

    #[test]
    fn per_class_scores_known_answer() {
        // truth 0: 8 right, 2 as class 1; truth 1: 3 right, 1 as 0; class 2 never occurs but is
        // predicted once (from class 1).
        let c = conf(&[&[8, 2, 0], &[1, 3, 1], &[0, 0, 0]]);
        let s = c.class_scores();
        assert_eq!(s.support, [10, 5, 0]);
        let close = |v: Option<f64>, want: f64| v.is_some_and(|x| (x - want).abs() < 1e-12);
        assert!(close(s.precision[0], 8.0 / 9.0));
        assert!(close(s.recall[0], 0.8));
        assert!(close(s.f1[0], 2.0 * 8.0 / 19.0));
        assert!(close(s.precision[1], 0.6));
        assert!(close(s.recall[1], 0.6));
        assert_eq!(
            (s.precision[2], s.recall[2], s.f1[2]),
            (Some(0.0), None, Some(0.0))
        );
        // Balanced accuracy: the two classes with samples, (0.8 + 0.6) / 2.
        assert!((c.balanced_accuracy() - 0.7).abs() < 1e-12);
        // Macro-F1 over the three classes that occur as truth or prediction (sklearn's labels).
        let expect = (16.0 / 19.0 + 0.6 + 0.0) / 3.0;
        assert!((c.macro_f1() - expect).abs() < 1e-12);
        assert!((c.accuracy() - 11.0 / 15.0).abs() < 1e-12);
    }

    #[test]
    fn a_class_neither_true_nor_predicted_does_not_count() {
        let c = conf(&[&[5, 0, 0], &[0, 5, 0], &[0, 0, 0]]);
        assert_eq!(c.macro_f1(), 1.0);
        assert_eq!(c.balanced_accuracy(), 1.0);
        assert_eq!(c.class_scores().f1[2], None);
    }

    #[test]
    fn balanced_accuracy_differs_from_accuracy_on_imbalanced_classes() {
        // 90 of class 0 all right, 10 of class 1 all wrong: accuracy 0.9, balanced 0.5.
        let c = conf(&[&[90, 0], &[10, 0]]);
        assert!((c.accuracy() - 0.9).abs() < 1e-12);
        assert!((c.balanced_accuracy() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let c = conf(&[&[40, 10], &[15, 35]]);
        let (a1, f1) = c.bootstrap(&[7], 500);
        let (a2, f2) = c.bootstrap(&[7], 500);
        assert_eq!((a1, f1), (a2, f2), "same seed, same interval");
        assert_ne!(c.bootstrap(&[8], 500).0, a1, "another seed, another draw");
        assert!(a1.0 < 0.75 && 0.75 < a1.1, "{a1:?} brackets 0.75");
        assert!(f1.0 < c.macro_f1() && c.macro_f1() < f1.1);
        // The normal approximation's half-width for p = 0.75, n = 100 is 1.96·√(p(1−p)/n) =
        // 0.085; the percentile interval is within a third of that.
        let half = (a1.1 - a1.0) / 2.0;
        assert!((half - 0.085).abs() < 0.03, "half-width {half}");
        // A perfect classifier has a degenerate interval.
        let p = conf(&[&[5, 0], &[0, 5]]);
        assert_eq!(p.bootstrap(&[1], 100), ((1.0, 1.0), (1.0, 1.0)));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.025) - 1.1).abs() < 1e-12);
        assert!((quantile(&v, 0.975) - 4.9).abs() < 1e-12);
    }
}
