//! What a FER+ cache built under a soft FERPlus mode trains against: labels drawn from the votes
//! (`probability`) or the vote distribution itself (`crossentropy`, `multi_target`), and the
//! losses against a distribution.

use crate::loader::{self, SampleInfo};
use crate::{Result, TrainError};
use shard::{Cache, KeyedRng};
use tch::{Device, Kind, Tensor};

/// How a FER+ cache's stored votes become training targets, by the FERPlus mode the cache was
/// built under (`key_ingredients.config.ferplus_mode`):
/// `probability`: a label drawn from the kept-vote distribution for every sample in every epoch
/// (keyed by seed, fold, epoch and record, so resume repeats it); `crossentropy`: cross-entropy
/// against the distribution; `multi_target`: FERPlus's −log max_k(t_k·p_k) with
/// t = (1−ε)·[kept > 0] + ε, ε = 0.001 (any kept emotion counts as right). The record's label
/// (the distribution's first maximum) is what accuracies are measured against.
#[derive(Debug, Clone)]
pub struct VoteTargets {
    /// The mode.
    pub mode: shard::votes::FerPlusMode,
    /// Per record (global index), the mode's distribution over the classes.
    pub distribution: std::collections::HashMap<u64, Vec<f32>>,
}

impl VoteTargets {
    /// The targets of a cache, or `None` when it trains on labels (not FER+, or a mode with one
    /// label per sample: majority, plurality).
    ///
    /// Errors: a soft mode whose records carry no votes (built before format 1.1: rebuild), a
    /// class count other than FER+'s 8, votes that the mode would have excluded.
    pub fn for_cache(cache: &Cache, infos: &[SampleInfo]) -> Result<Option<VoteTargets>> {
        let m = cache.manifest();
        let Some(name) = m
            .key_ingredients
            .pointer("/config/ferplus_mode")
            .and_then(|v| v.as_str())
        else {
            return Ok(None);
        };
        let mode: shard::votes::FerPlusMode = name.parse().map_err(TrainError::Config)?;
        if !mode.soft_targets() {
            return Ok(None);
        }
        let bad = |record: u64, reason: String| TrainError::Record {
            cache: cache.dir().to_path_buf(),
            record,
            reason,
        };
        if m.class_names.len() != 8 {
            return Err(TrainError::Config(format!(
                "cache {}: FER+ mode {name} needs FER+'s 8 classes, the cache has {}",
                cache.dir().display(),
                m.class_names.len()
            )));
        }
        let mut distribution = std::collections::HashMap::with_capacity(infos.len());
        for i in infos {
            let votes = shard::votes::vote_array(&i.votes).map_err(|e| {
                bad(
                    i.record,
                    format!(
                        "{e}: the cache was built under FER+ mode {name}, which trains on the                          votes, before records stored them (format 1.0); rebuild it with this prep"
                    ),
                )
            })?;
            let t = shard::votes::ferplus_target(&votes, mode)
                .map_err(|why| bad(i.record, format!("votes excluded by {name}: {why}")))?;
            distribution.insert(i.record, t.distribution.iter().map(|&d| d as f32).collect());
        }
        Ok(Some(VoteTargets { mode, distribution }))
    }

    /// The batch's targets: hard labels drawn from the distributions (`probability`, keyed by
    /// `keys` and the record) or a soft target tensor [n, C] on `device`.
    pub fn batch(&self, records: &[u64], keys: [u64; 3], device: Device) -> Result<BatchTarget> {
        use shard::votes::FerPlusMode;
        let dist = |r: &u64| {
            self.distribution
                .get(r)
                .ok_or_else(|| TrainError::Config(format!("record {r} has no vote distribution")))
        };
        match self.mode {
            FerPlusMode::Probability => {
                let mut labels = Vec::with_capacity(records.len());
                for r in records {
                    let d = dist(r)?;
                    let mut rng = KeyedRng::new(&[keys[0], keys[1], keys[2], *r, 0x9b_0b]);
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    let mut acc = 0.0f64;
                    let mut pick = d.iter().rposition(|&x| x > 0.0).unwrap_or(0);
                    for (k, &p) in d.iter().enumerate() {
                        acc += p as f64;
                        if u < acc && p > 0.0 {
                            pick = k;
                            break;
                        }
                    }
                    labels.push(pick as i64);
                }
                Ok(BatchTarget::Labels(loader::upload(
                    Tensor::from_slice(&labels),
                    device,
                )))
            }
            FerPlusMode::Crossentropy | FerPlusMode::MultiTarget => {
                let c = self.distribution.values().next().map_or(0, Vec::len);
                let mut t = Vec::with_capacity(records.len() * c);
                for r in records {
                    let d = dist(r)?;
                    if self.mode == FerPlusMode::MultiTarget {
                        const EPS: f32 = 0.001;
                        t.extend(
                            d.iter()
                                .map(|&x| (1.0 - EPS) * if x > 0.0 { 1.0 } else { 0.0 } + EPS),
                        );
                    } else {
                        t.extend_from_slice(d);
                    }
                }
                let target = loader::upload(Tensor::from_slice(&t), device)
                    .view([records.len() as i64, c as i64]);
                Ok(BatchTarget::Soft(SoftTarget {
                    loss: if self.mode == FerPlusMode::MultiTarget {
                        SoftLoss::MaxProduct
                    } else {
                        SoftLoss::CrossEntropy
                    },
                    target,
                }))
            }
            _ => Err(TrainError::Config(format!(
                "FER+ mode {} trains on labels",
                self.mode.name()
            ))),
        }
    }
}

/// What one batch trains against beyond its labels.
pub enum BatchTarget {
    /// Labels that replace the records' (drawn for `probability`).
    Labels(Tensor),
    /// A target distribution per sample.
    Soft(SoftTarget),
}

/// The loss against a per-sample target distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftLoss {
    /// −Σ_k t_k · log softmax(s)_k (FERPlus's `crossentropy`).
    CrossEntropy,
    /// −log max_k (t_k · softmax(s)_k) (FERPlus's `multi_target`).
    MaxProduct,
}

/// Target distributions [b, C] (f32, on the scores' device) and the loss they train with.
pub struct SoftTarget {
    /// Which loss.
    pub loss: SoftLoss,
    /// [b, C].
    pub target: Tensor,
}

impl SoftTarget {
    /// The batch-mean loss of `scores` [b, C] against the targets, the targets reordered by
    /// `perm` when given (mixup's partners).
    pub fn loss_of(&self, scores: &Tensor, perm: Option<&Tensor>) -> Tensor {
        let t = match perm {
            Some(p) => self.target.index_select(0, p),
            None => self.target.shallow_clone(),
        };
        let s = scores.to_kind(Kind::Float);
        let per_sample = match self.loss {
            SoftLoss::CrossEntropy => -(t * s.log_softmax(-1, Kind::Float)).sum_dim_intlist(
                Some(&[-1i64][..]),
                false,
                Kind::Float,
            ),
            SoftLoss::MaxProduct => -(t * s.softmax(-1, Kind::Float))
                .amax(&[-1i64][..], false)
                .log(),
        };
        per_sample.mean(Kind::Float)
    }
}
