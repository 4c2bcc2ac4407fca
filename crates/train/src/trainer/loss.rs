//! The loss of one training step (the one definition the epoch loop, the bench and the PyTorch
//! oracle test use) and the fused prediction of the two branches.

use super::targets::SoftTarget;
use crate::config::Fusion;
use crate::model::{ModelInput, ModelOutput, Network};
use crate::{Result, TrainError};
use tch::{Device, Kind, Tensor};

/// Mixup of one batch (Zhang et al. 2018), as the authors apply it: the peak face becomes
/// λ·face + (1−λ)·face[perm]; the part crops stay unmixed.
pub struct Mixup {
    /// Weight λ of the batch's own faces.
    pub lambda: f64,
    /// Partner of each sample, [b] int64 on the model's device.
    pub perm: Tensor,
}

/// How the cross-entropy against labels is taken (soft FER+ targets are used as they are).
#[derive(Default)]
pub struct LabelLoss {
    /// Label smoothing ε: targets (1 − ε)·onehot + ε/C (0 = plain cross-entropy).
    pub smoothing: f64,
    /// Per-class weights [C] on the model's device (a weighted mean, as
    /// `torch.nn.CrossEntropyLoss(weight=…)`); `None` weighs every sample the same.
    pub class_weights: Option<Tensor>,
}

impl LabelLoss {
    /// Class-balancing weights w_c = N / (C · n_c) from the training labels' class counts
    /// (a class without samples gets weight 0: it never appears as a target). No counts at all
    /// give every class weight 1.
    pub fn balanced_weights(counts: &[usize]) -> Vec<f32> {
        let n: usize = counts.iter().sum();
        if n == 0 {
            return vec![1.0; counts.len()];
        }
        let c = counts.len().max(1);
        counts
            .iter()
            .map(|&k| {
                if k == 0 {
                    0.0
                } else {
                    (n as f64 / (c as f64 * k as f64)) as f32
                }
            })
            .collect()
    }
}

/// The losses of one training step and the scores they came from.
pub struct StepLoss {
    /// What is minimised: `global + local` (equal weights, as the authors), or the one branch.
    pub total: Tensor,
    /// GFM loss: cross-entropy, mixed as the face was (λ·CE(g, y) + (1−λ)·CE(g, y[perm])).
    pub global: Option<Tensor>,
    /// PBM loss: cross-entropy against the batch's own labels (its inputs are never mixed).
    pub local: Option<Tensor>,
    /// The scores.
    pub output: ModelOutput,
}

/// Forward pass in training mode and the MGLN loss of one batch: the one definition the epoch
/// loop runs and the PyTorch oracle test (`tests/train/oracle.rs`) pins. `amp` runs the forward
/// pass under bf16 autocast for the input's device type (CPU or CUDA; the trainer asks for it on
/// CUDA only); the losses are computed in fp32 either way.
///
/// Errors: a model with neither branch.
pub fn mgln_loss(
    model: &Network,
    input: ModelInput,
    labels: &Tensor,
    soft: Option<&SoftTarget>,
    mix: Option<&Mixup>,
    label_loss: &LabelLoss,
    amp: bool,
) -> Result<StepLoss> {
    let input = match mix {
        Some(m) => ModelInput {
            face: &input.face * m.lambda + input.face.index_select(0, &m.perm) * (1.0 - m.lambda),
            parts: input.parts,
        },
        None => input,
    };
    let output =
        crate::torch_ext::autocast_bf16(input.face.device(), amp, || model.forward(&input, true))?;
    // The loss of scores against the batch's targets (the labels, or the soft targets when
    // given), the targets taken in mixup-partner order with `perm`.
    let ce = |s: &Tensor, perm: Option<&Tensor>| match soft {
        Some(t) => t.loss_of(s, perm),
        None => {
            let y = match perm {
                Some(p) => labels.index_select(0, p),
                None => labels.shallow_clone(),
            };
            let s = s.to_kind(Kind::Float);
            if label_loss.smoothing == 0.0 && label_loss.class_weights.is_none() {
                s.cross_entropy_for_logits(&y)
            } else {
                s.cross_entropy_loss(
                    &y,
                    label_loss.class_weights.as_ref(),
                    tch::Reduction::Mean,
                    -100,
                    label_loss.smoothing,
                )
            }
        }
    };
    let global = output.global.as_ref().map(|g| match mix {
        Some(m) => ce(g, None) * m.lambda + ce(g, Some(&m.perm)) * (1.0 - m.lambda),
        None => ce(g, None),
    });
    let local = output.local.as_ref().map(|p| ce(p, None));
    let total = match (&global, &local) {
        (Some(a), Some(b)) => a + b,
        (Some(a), None) => a.shallow_clone(),
        (None, Some(b)) => b.shallow_clone(),
        (None, None) => return Err(TrainError::Config("no branch".into())),
    };
    Ok(StepLoss {
        total,
        global,
        local,
        output,
    })
}

/// Class probabilities of the fused prediction, [b, C]: for [`Fusion::Sum`]
/// softmax(w·GFM + (1−w)·PBM), whose arg-max is the authors' arg-max of the raw score sum; for
/// [`Fusion::SoftmaxAverage`] w·softmax(GFM) + (1−w)·softmax(PBM). One branch alone: its softmax.
pub fn fuse(g: &Option<Tensor>, p: &Option<Tensor>, fusion: Fusion, w: f64) -> Tensor {
    let sm = |x: &Tensor| x.softmax(-1, Kind::Float);
    let f = |x: &Tensor| x.to_kind(Kind::Float);
    match (g, p) {
        (Some(g), Some(p)) => match fusion {
            Fusion::Sum => sm(&(f(g) * w + f(p) * (1.0 - w))),
            Fusion::SoftmaxAverage => sm(&f(g)) * w + sm(&f(p)) * (1.0 - w),
        },
        (Some(g), None) => sm(&f(g)),
        (None, Some(p)) => sm(&f(p)),
        (None, None) => Tensor::zeros([0, 0], (Kind::Float, Device::Cpu)),
    }
}
