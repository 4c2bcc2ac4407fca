//! The paired tests of a comparison: McNemar's exact test over the samples two models were both
//! scored on, and the sign-flip permutation test over paired per-fold differences.

use serde::{Deserialize, Serialize};

/// McNemar's exact test of two models scored on the same samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Samples both were scored on.
    pub samples: u64,
    /// Right in the first (baseline), wrong in the second.
    pub only_first: u64,
    /// Wrong in the first, right in the second.
    pub only_second: u64,
    /// Two-sided exact p value: under "no difference", the discordant samples split as
    /// Binomial(b + c, ½); p = min(1, 2·P(X ≤ min(b, c))). 1 with no discordant samples.
    pub p: f64,
}

impl McNemar {
    /// The test from the discordant counts `b` (only the first right) and `c` (only the
    /// second right) among `samples`.
    pub fn from_counts(samples: u64, b: u64, c: u64) -> McNemar {
        McNemar {
            samples,
            only_first: b,
            only_second: c,
            p: mcnemar_exact_p(b, c),
        }
    }

    /// The test from per-sample correctness of the two models, in the same sample order.
    pub fn from_outcomes(first: &[bool], second: &[bool]) -> McNemar {
        let b = first
            .iter()
            .zip(second)
            .filter(|(a, b)| **a && !**b)
            .count() as u64;
        let c = first
            .iter()
            .zip(second)
            .filter(|(a, b)| !**a && **b)
            .count() as u64;
        Self::from_counts(first.len().min(second.len()) as u64, b, c)
    }
}

/// min(1, 2·P(X ≤ min(b, c))) for X ~ Binomial(b + c, ½), summed in log space (exact to f64
/// rounding for any n, where 2⁻ⁿ alone would underflow).
pub fn mcnemar_exact_p(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // ln C(n, i) built up term by term; ln 2ⁿ subtracted from each.
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose - ln2n);
    }
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = top.exp() * terms.iter().map(|t| (t - top).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// Two-sided sign-flip permutation p value of the mean of `d`: the share of sign patterns whose
/// |mean| is at least the observed one (exact up to 20 values).
pub fn sign_flip_p(d: &[f64]) -> f64 {
    let n = d.len();
    if n == 0 {
        return 1.0;
    }
    let observed = d.iter().sum::<f64>().abs();
    // Ties within rounding count as "at least as extreme".
    let tol = 1e-12 * d.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
    let extreme = |signs: u64| {
        let s: f64 = d
            .iter()
            .enumerate()
            .map(|(i, x)| if signs >> i & 1 == 1 { -x } else { *x })
            .sum();
        s.abs() >= observed - tol
    };
    if n <= 20 {
        let total = 1u64 << n;
        let hits = (0..total).filter(|&s| extreme(s)).count();
        hits as f64 / total as f64
    } else {
        let mut rng = shard::KeyedRng::new(&[0x5eed_f1b5, n as u64]);
        let draws = 100_000;
        let mut hits = 1; // the observed pattern itself
        for _ in 0..draws {
            let mut s: f64 = 0.0;
            for x in d {
                s += if rng.next_u64() & 1 == 1 { -x } else { *x };
            }
            if s.abs() >= observed - tol {
                hits += 1;
            }
        }
        hits as f64 / (draws + 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_exact_known_answers() {
        // b = 0, c = 5: 2·(1/32) = 0.0625.
        assert!((mcnemar_exact_p(0, 5) - 0.0625).abs() < 1e-12);
        // b = 1, c = 9: 2·(1 + 10)/1024 = 0.021484375 (exact).
        assert!((mcnemar_exact_p(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert!((mcnemar_exact_p(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
        // Balanced discordance: p = 1.
        assert_eq!(mcnemar_exact_p(4, 4), 1.0);
        assert_eq!(mcnemar_exact_p(0, 0), 1.0);
        // Large n in log space: b = 100, c = 300; Python's exact integers give
        // 2·Σ_{i≤100} C(400, i) / 2⁴⁰⁰ = 2.5918869069720767e-24.
        let p = mcnemar_exact_p(100, 300);
        assert!((p / 2.591_886_906_972_076_7e-24 - 1.0).abs() < 1e-9, "{p}");
        let m = McNemar::from_outcomes(&[true, true, false, false], &[true, false, true, true]);
        assert_eq!((m.samples, m.only_first, m.only_second), (4, 1, 2));
        assert_eq!(m.p, 1.0);
    }
}
