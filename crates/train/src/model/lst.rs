//! The PBM's LST block: per-frame 1×1 convs, then a multi-layer LSTM over the frames.

use super::layers::{conv, normed, norms};
use super::ModelConfig;
use tch::nn::{self, RNN};
use tch::Tensor;

/// One LST block: conv1×1 512→256→128→1 + ReLU per frame, flattened, a multi-layer LSTM over the
/// frames, the last step reshaped to 1×side×side.
#[derive(Debug)]
pub struct LstBlock {
    convs: Vec<nn::Conv2D>,
    conv_norms: Vec<nn::BatchNorm>,
    lstm: nn::LSTM,
    side: i64,
}

impl LstBlock {
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig, feat_len: i64) -> LstBlock {
        let ch = [cfg.ch(512), cfg.ch(256), cfg.ch(128), 1];
        let convs = (0..3)
            .map(|i| conv(p / format!("conv{i}"), ch[i], ch[i + 1], 1))
            .collect();
        let lstm = nn::lstm(
            p / "lstm",
            feat_len,
            cfg.lstm_side * cfg.lstm_side,
            nn::RNNConfig {
                num_layers: cfg.lstm_layers,
                batch_first: true,
                ..Default::default()
            },
        );
        LstBlock {
            convs,
            conv_norms: norms(p, "conv", &ch[1..], cfg.head_batchnorm),
            lstm,
            side: cfg.lstm_side,
        }
    }

    /// `feats`: SSM features of every frame, [b·T, c, h, w] → [b, 1, side, side]; or of one
    /// frame that stands for all `frames` ([b, c, h, w], a still image), whose per-frame
    /// features are computed once and repeated into the sequence.
    pub(super) fn forward(&self, feats: &Tensor, b: i64, frames: i64, train: bool) -> Tensor {
        let mut x = feats.shallow_clone();
        for (k, c) in self.convs.iter().enumerate() {
            x = normed(x.apply(c), &self.conv_norms, k, train).relu();
        }
        let given = x.size()[0] / b.max(1);
        let seq = x.flatten(1, -1).view([b, given, -1]);
        let seq = if given == frames {
            seq
        } else {
            seq.expand([b, frames, -1], false)
        };
        let (out, _) = self.lstm.seq(&seq);
        out.select(1, frames - 1).view([b, 1, self.side, self.side])
    }
}
