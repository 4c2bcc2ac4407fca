//! Annotator votes stored with samples (FORMAT.md section 5.1, `votes`) and the rules that turn
//! them into training targets. The rules live beside the format, not in `prep` or `train`, so
//! that the label a cache was built with and the target a run trains against come from one
//! definition: FER+'s ten vote counts (FERPlus's columns neutral, happiness, surprise, sadness,
//! anger, disgust, fear, contempt, unknown, not-a-face) under the modes the FERPlus project
//! (microsoft/FERPlus, `ferplus.py`) names.

use serde::{Deserialize, Serialize};

/// How FER+'s ten vote counts (8 emotions, unknown, not-a-face) become a label, named as the
/// FERPlus project (microsoft/FERPlus, `ferplus.py`) names its training modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    /// The class (index into the 8 emotions, FERPlus's column order): the largest share, the first
    /// on ties.
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

impl std::str::FromStr for FerPlusMode {
    type Err = String;

    /// Parses the names [`FerPlusMode::name`] gives.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        FerPlusMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown FER+ mode {s:?} (one of {})",
                    FerPlusMode::ALL.map(FerPlusMode::name).join(", ")
                )
            })
    }
}

impl FerPlusMode {
    /// Every mode, in documentation order.
    pub const ALL: [FerPlusMode; 5] = [
        FerPlusMode::Majority,
        FerPlusMode::Probability,
        FerPlusMode::Crossentropy,
        FerPlusMode::MultiTarget,
        FerPlusMode::Plurality,
    ];
}

/// The votes of a record as `ferplus_target` takes them.
///
/// Errors: not exactly 10 counts (a record without votes, or not from FER+).
pub fn vote_array(votes: &[u16]) -> std::result::Result<[u32; 10], String> {
    if votes.len() != 10 {
        return Err(format!("{} vote counts stored, FER+ has 10", votes.len()));
    }
    let mut a = [0u32; 10];
    for (d, &v) in a.iter_mut().zip(votes) {
        *d = v as u32;
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

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
