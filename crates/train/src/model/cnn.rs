//! The baseline of every ablation table: a plain batch-normalised CNN on the face crop, the model
//! a researcher writes in sixty lines of PyTorch before trusting anything fancier.

use super::ModelConfig;
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// Channels of the four blocks at `width = 1`.
const CHANNELS: [i64; 4] = [32, 64, 128, 256];

/// Dropout before the linear layer (applies in training mode only).
const DROPOUT: f64 = 0.3;

/// Four blocks of (3×3 conv, batch norm, ReLU) × 2 and a 2×2 max-pool, global average pooling,
/// dropout 0.3 and a linear layer. Convolutions carry no bias (the batch norm's shift does that
/// job). Pools round up, so that any input of at least 8×8 keeps a non-empty map.
#[derive(Debug)]
pub struct PlainCnn {
    /// (conv, batch norm) pairs, two per block.
    layers: Vec<(nn::Conv2D, nn::BatchNorm)>,
    head: nn::Linear,
}

impl PlainCnn {
    /// Builds `cnn.block<i>.conv<j>`, `cnn.block<i>.bn<j>` and `cnn.head` under `p`, with the
    /// channels scaled by `cfg.width` and `cfg.classes` outputs.
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> PlainCnn {
        let conv_cfg = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let mut layers = Vec::with_capacity(8);
        let mut c_in = 3;
        for (i, &c) in CHANNELS.iter().enumerate() {
            let c = cfg.ch(c);
            let block = p / format!("block{i}");
            for j in 0..2 {
                let conv = nn::conv2d(&block / format!("conv{j}"), c_in, c, 3, conv_cfg);
                let bn = nn::batch_norm2d(&block / format!("bn{j}"), c, Default::default());
                layers.push((conv, bn));
                c_in = c;
            }
        }
        let head = nn::linear(p / "head", c_in, cfg.classes, Default::default());
        PlainCnn { layers, head }
    }

    /// Class scores [b, C] of faces [b, 3, H, W].
    pub fn forward(&self, face: &Tensor, train: bool) -> Tensor {
        let mut x = face.shallow_clone();
        for (k, (conv, bn)) in self.layers.iter().enumerate() {
            x = x.apply(conv).apply_t(bn, train).relu();
            if k % 2 == 1 {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], true);
            }
        }
        x.mean_dim(&[2i64, 3][..], false, Kind::Float)
            .dropout(DROPOUT, train)
            .apply(&self.head)
    }
}

impl ModuleT for PlainCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward(xs, train)
    }
}
