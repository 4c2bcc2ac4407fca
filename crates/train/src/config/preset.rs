//! Named sets of defaults (`preset = "paper" | "tuned"`): what every key the experiment file leaves
//! out is set to.

use super::{ExperimentConfig, OptimizerKind, Schedule};
use serde::{Deserialize, Serialize};

/// A named set of defaults for everything the experiment file does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The paper's and the authors' code's settings (default): Adam at 1e-4, a step at epoch 80,
    /// mixup α = 1, small shift/scale jitter and flips, the plain VGG trunk. Pinned by the PyTorch
    /// oracle tests.
    #[default]
    Paper,
    /// What won on held-out subjects on this project's CPU experiments (`docs/BENCHMARKS.md`,
    /// "Training presets"): AdamW (weight decay 1e-4), one-cycle to lr 3e-3, label smoothing 0.1,
    /// no mixup, rotation ±10°, scale ±10 %, shift ±10 % with flips, flip averaging at test,
    /// gradient clipping at norm 5, batch norm in the SSM and behind it, no ReLU on the scores.
    Tuned,
}

impl Preset {
    /// The full configuration this preset gives before the experiment file's keys are laid over
    /// it (every key of the file still wins).
    pub fn base(self) -> ExperimentConfig {
        let mut cfg = ExperimentConfig {
            preset: self,
            ..ExperimentConfig::default()
        };
        if self == Preset::Tuned {
            let (m, t) = (&mut cfg.model, &mut cfg.train);
            m.ssm_batchnorm = true;
            m.head_batchnorm = true;
            m.head_relu = false;
            t.optimizer = OptimizerKind::Adamw;
            t.lr = 3e-3;
            t.weight_decay = 1e-4;
            t.schedule = Schedule::Onecycle;
            t.label_smoothing = 0.1;
            t.mixup_alpha = 0.0;
            t.rotate = 10.0;
            t.scale = 0.1;
            t.shift = 0.1;
            t.tta_flip = true;
            t.grad_clip = 5.0;
        }
        cfg
    }
}
