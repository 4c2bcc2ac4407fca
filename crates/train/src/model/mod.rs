//! The networks in tch: MGLN ([`mgln`], `docs/specs/mgln.md`) and the plain CNN baseline
//! ([`cnn`]), behind one [`Network`] whose shape comes from [`ModelConfig`] (defaults are the
//! paper's).
//!
//! * [`mgln`] — the SSM, GFM and PBM; [`deform`] and [`lst`] — their layers.
//! * [`cnn`] — the baseline.
//! * [`init`] — starting weights; [`weights`] — VGG16 weights and the channels_last layout.

pub mod cnn;
pub mod deform;
pub mod init;
mod layers;
pub mod lst;
pub mod mgln;
pub mod weights;

pub use cnn::PlainCnn;
pub use deform::{ConvOffset2D, DeformConv3x3};
pub use init::initialise;
pub use mgln::{Gfm, Mgln, Pbm, Ssm};
pub use weights::{channels_last, is_channels_last, load_vgg16, to_channels_last};

use crate::config::{Branches, Deform, ModelKind};
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Network shape: the paper's with `width = 1`, crop sizes 128² / 48×128 / 64×32 / 32×64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// MGLN or the plain CNN baseline (absent in configurations written before it existed: MGLN).
    #[serde(default)]
    pub kind: ModelKind,
    /// Number of classes.
    pub classes: i64,
    /// Frame slots fed to the PBM.
    pub frames: i64,
    /// Which branches exist.
    pub branches: Branches,
    /// GFM sampling variant.
    pub deform: Deform,
    /// Channel multiplier of every conv (1 = the paper; small values for CPU tests).
    pub width: f64,
    /// Face input (height, width).
    pub face: (i64, i64),
    /// Eyes, nose and mouth inputs (height, width).
    pub parts: [(i64, i64); 3],
    /// Side of the LSTM output square (hidden size = side², 16 in the paper).
    pub lstm_side: i64,
    /// LSTM layers (3 in the paper).
    pub lstm_layers: i64,
    /// ReLU after the last 1×1 conv of the GFM head and of the part end, before pooling, as in the
    /// authors' code (scores ≥ 0). Small, randomly initialised networks can die there, so it can
    /// be switched off.
    pub head_relu: bool,
    /// Batch normalisation after every SSM conv (not in the paper; makes small networks trainable
    /// from a random init, where the plain VGG trunk collapses). The convs stay shared, but each
    /// input stream (face, eyes, nose, mouth) keeps its own normalisation statistics: one set of
    /// running statistics over such different crops would fit none of them at test time.
    pub ssm_batchnorm: bool,
    /// Batch normalisation before the ReLU of every conv after the SSM: the GFM's three blocks
    /// and the first two 1×1 convs of its head, the LST blocks' three 1×1 convs (whose last has
    /// one channel: without it that single ReLU channel can die and silence the part), and the
    /// first two convs of the part end. Not in the paper (absent in older configurations: off).
    #[serde(default)]
    pub head_batchnorm: bool,
    /// Channels of the two hidden 1×1 convs of the GFM head and of the part end (the paper's
    /// 32 and 16, scaled by `width`, when `None`; absent in older configurations).
    #[serde(default)]
    pub head_channels: Option<(i64, i64)>,
}

impl ModelConfig {
    /// The network an experiment's `[model]` section asks for on a cache whose face plane is
    /// `face_plane` and part planes `part_planes` (height, width), with `frames` frame slots fed
    /// to the PBM and `classes` classes: the face resized to `face_size` when set, the parts
    /// scaled by `part_scale` (at least 8 pixels: the SSM's stride).
    pub fn for_experiment(
        m: &crate::config::ModelSection,
        face_plane: (usize, usize),
        part_planes: [(usize, usize); 3],
        frames: usize,
        classes: usize,
    ) -> ModelConfig {
        let face = m
            .face_size
            .unwrap_or((face_plane.0 as i64, face_plane.1 as i64));
        let s = m.part_scale;
        let part = |(h, w): (usize, usize)| {
            (
                ((h as f64 * s).round() as i64).max(8),
                ((w as f64 * s).round() as i64).max(8),
            )
        };
        ModelConfig {
            kind: m.kind,
            classes: classes as i64,
            frames: frames as i64,
            branches: m.branches,
            deform: m.deform,
            width: m.width,
            face,
            parts: part_planes.map(part),
            lstm_side: m.lstm_side,
            lstm_layers: m.lstm_layers,
            head_relu: m.head_relu,
            ssm_batchnorm: m.ssm_batchnorm,
            head_batchnorm: m.head_batchnorm,
            head_channels: m.head_channels,
        }
    }

    /// Name prefixes of the layers that turn features into class scores (one row per class):
    /// the CNN's linear layer, the GFM head's last 1×1 conv, the part end's last 1×1 conv.
    /// Everything else is the trunk (`train.trunk_lr_factor`, `train.freeze_trunk_epochs`), and
    /// these are what `model.init_from` re-initialises when the class sets differ.
    pub fn class_head_prefixes(&self) -> Vec<&'static str> {
        match self.kind {
            ModelKind::Cnn => vec!["cnn.head."],
            ModelKind::Mgln => {
                let mut v = Vec::new();
                if self.branches.has_global() {
                    v.push("gfm.head2.");
                }
                if self.branches.has_local() {
                    v.push("pbm.end2.");
                }
                v
            }
        }
    }

    /// Whether the variable `name` belongs to a class head ([`Self::class_head_prefixes`]).
    pub fn is_class_head(&self, name: &str) -> bool {
        self.class_head_prefixes()
            .iter()
            .any(|p| name.starts_with(p))
    }

    /// The two hidden widths of the GFM head and the part end.
    pub fn head_channels(&self) -> (i64, i64) {
        self.head_channels
            .unwrap_or_else(|| (self.ch(32), self.ch(16)))
    }

    /// Channels of a layer with `c` in the paper: scaled by `width`, at least 8 (1- or 2-channel
    /// ReLU layers of very thin networks die at initialisation).
    fn ch(&self, c: i64) -> i64 {
        if self.width == 1.0 {
            c
        } else {
            ((c as f64 * self.width).round() as i64).max(8.min(c))
        }
    }
}

/// Inputs of one forward pass, on the model's device, normalised, 3 channels.
pub struct ModelInput {
    /// Peak faces [b, 3, H, W].
    pub face: Tensor,
    /// Part crops per part, [b, T, 3, h, w]; or [b, 1, 3, h, w] when every sample's T frames
    /// are one still image (the loader sends it once: the PBM computes its features once and
    /// repeats them over the T steps, the same result at a third of the cost for T = 3).
    pub parts: [Tensor; 3],
}

/// Scores of the two branches ([b, C] each, `None` when the branch is switched off).
pub struct ModelOutput {
    /// GFM scores.
    pub global: Option<Tensor>,
    /// PBM scores.
    pub local: Option<Tensor>,
}

/// The whole network: MGLN, or the plain CNN baseline ([`ModelKind`]).
#[derive(Debug)]
pub struct Network {
    cfg: ModelConfig,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Mgln(Mgln),
    Cnn(PlainCnn),
}

impl Network {
    /// Builds the network's variables under `p` (`ssm.*`, `gfm.*`, `pbm.*` for MGLN, `cnn.*`
    /// for the baseline).
    ///
    /// Errors: an input smaller than 8 pixels on a side (the SSM's stride; the CNN's three
    /// pools need 8 as well).
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Result<Network> {
        for (h, w) in std::iter::once(cfg.face).chain(cfg.parts) {
            if h < 8 || w < 8 {
                return Err(TrainError::Config(format!(
                    "input {h}×{w} is below the SSM's stride of 8"
                )));
            }
        }
        let body = match cfg.kind {
            ModelKind::Cnn => Body::Cnn(PlainCnn::new(&(p / "cnn"), cfg)),
            ModelKind::Mgln => Body::Mgln(Mgln::new(p, cfg)),
        };
        Ok(Network {
            cfg: cfg.clone(),
            body,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Forward pass; `face` may be a mixup of two faces (the parts never are). `train` switches
    /// batch normalisation (when configured) between batch and running statistics, and the
    /// CNN's dropout. The CNN's scores are returned as `global` (it sees the face alone).
    pub fn forward(&self, input: &ModelInput, train: bool) -> ModelOutput {
        match &self.body {
            Body::Cnn(cnn) => ModelOutput {
                global: Some(cnn.forward(&input.face, train)),
                local: None,
            },
            Body::Mgln(m) => m.forward(input, train),
        }
    }
}
