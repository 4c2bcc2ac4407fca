//! MGLN (`docs/specs/mgln.md`): a shared VGG16 trunk (SSM), the global face module (GFM) with
//! deformable sampling, the part-based module (PBM) of per-part conv + LSTM blocks over the
//! frames, and the part end.

use super::deform::{ConvOffset2D, DeformConv3x3};
use super::layers::{conv, normed, norms};
use super::lst::LstBlock;
use super::{ModelConfig, ModelInput, ModelOutput};
use crate::config::Deform;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// The ten convs of VGG16's `features` (conv1_1 … conv4_3) with their torchvision indices.
pub(super) const VGG_CONVS: [(usize, i64, i64); 10] = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
];

/// Max-pools follow these torchvision indices (a pool after conv1_2, conv2_2, conv3_3).
const VGG_POOL_AFTER: [usize; 3] = [2, 7, 14];

/// SSM: VGG16 conv1_1 … conv4_3 (stride 8). Variables are named `ssm.features.<i>.{weight,bias}`
/// so that torchvision's names map one to one.
#[derive(Debug)]
pub struct Ssm {
    convs: Vec<(usize, nn::Conv2D, Vec<nn::BatchNorm>)>,
}

impl Ssm {
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig) -> Ssm {
        let f = p / "features";
        let convs = VGG_CONVS
            .iter()
            .map(|&(i, cin, cout)| {
                let cin = if i == 0 { 3 } else { cfg.ch(cin) };
                let conv = nn::conv2d(
                    &f / i.to_string(),
                    cin,
                    cfg.ch(cout),
                    3,
                    nn::ConvConfig {
                        padding: 1,
                        ..Default::default()
                    },
                );
                let bn = if cfg.ssm_batchnorm {
                    STREAMS
                        .iter()
                        .map(|s| {
                            nn::batch_norm2d(
                                p / "bn" / *s / i.to_string(),
                                cfg.ch(cout),
                                Default::default(),
                            )
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (i, conv, bn)
            })
            .collect();
        Ssm { convs }
    }

    /// Output channels (512 × width).
    pub fn out_channels(cfg: &ModelConfig) -> i64 {
        cfg.ch(512)
    }
}

/// Input streams of the SSM (each has its own batch-norm statistics when enabled).
const STREAMS: [&str; 4] = ["face", "eyes", "nose", "mouth"];

impl Ssm {
    /// Features of `xs` from stream `stream` (0 face, 1 eyes, 2 nose, 3 mouth).
    pub fn forward_stream(&self, xs: &Tensor, stream: usize, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (i, conv, bn) in &self.convs {
            x = x.apply(conv);
            if let Some(bn) = bn.get(stream) {
                x = x.apply_t(bn, train);
            }
            // In place, as torchvision's VGG: neither the conv's nor batch norm's backward needs
            // the tensor it overwrites, and it saves a full activation of memory traffic.
            let _ = x.relu_();
            if VGG_POOL_AFTER.contains(i) {
                x = x.max_pool2d_default(2);
            }
        }
        x
    }
}

#[derive(Debug)]
enum GfmBlock {
    Channel(ConvOffset2D, nn::Conv2D),
    Dcn(DeformConv3x3),
    Plain(nn::Conv2D),
}

/// GFM: three [deformable sampling → conv3×3 + ReLU] blocks (512→256→128→64), conv1×1 64→32→16→C
/// + ReLU, global average pooling.
#[derive(Debug)]
pub struct Gfm {
    blocks: Vec<GfmBlock>,
    block_norms: Vec<nn::BatchNorm>,
    head: Vec<nn::Conv2D>,
    head_norms: Vec<nn::BatchNorm>,
    head_relu: bool,
}

impl Gfm {
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig) -> Gfm {
        let chans = [512, 256, 128, 64].map(|c| cfg.ch(c));
        let blocks = (0..3)
            .map(|i| {
                let (cin, cout) = (chans[i], chans[i + 1]);
                let q = p / format!("block{i}");
                match cfg.deform {
                    Deform::Channel => GfmBlock::Channel(
                        ConvOffset2D::new(&(&q / "deform"), cin),
                        conv(&q / "conv", cin, cout, 3),
                    ),
                    Deform::Dcn => GfmBlock::Dcn(DeformConv3x3::new(&(&q / "dcn"), cin, cout)),
                    Deform::None => GfmBlock::Plain(conv(&q / "conv", cin, cout, 3)),
                }
            })
            .collect();
        let (h0, h1) = cfg.head_channels();
        let hc = [chans[3], h0, h1, cfg.classes];
        let head = (0..3)
            .map(|i| conv(p / format!("head{i}"), hc[i], hc[i + 1], 1))
            .collect();
        Gfm {
            blocks,
            block_norms: norms(p, "block", &chans[1..], cfg.head_batchnorm),
            head,
            head_norms: norms(p, "head", &hc[1..3], cfg.head_batchnorm),
            head_relu: cfg.head_relu,
        }
    }

    /// Class scores [b, C] from SSM features; `train` switches the batch norms (when
    /// configured) between batch and running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for (k, b) in self.blocks.iter().enumerate() {
            x = match b {
                GfmBlock::Channel(d, c) => x.apply(d).apply(c),
                GfmBlock::Dcn(d) => x.apply(d),
                GfmBlock::Plain(c) => x.apply(c),
            };
            x = normed(x, &self.block_norms, k, train).relu();
        }
        let last = self.head.len() - 1;
        for (i, c) in self.head.iter().enumerate() {
            x = x.apply(c);
            if i < last {
                x = normed(x, &self.head_norms, i, train);
            }
            if i < last || self.head_relu {
                x = x.relu();
            }
        }
        x.mean_dim(&[2i64, 3][..], false, Kind::Float)
    }
}

impl Module for Gfm {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_t(x, false)
    }
}

/// PBM: an LST block per part (eyes, nose, mouth) and the part end (conv1×1 3→32→16→C + ReLU,
/// global average pooling).
#[derive(Debug)]
pub struct Pbm {
    parts: Vec<LstBlock>,
    end: Vec<nn::Conv2D>,
    end_norms: Vec<nn::BatchNorm>,
    head_relu: bool,
}

impl Pbm {
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig) -> Pbm {
        let names = ["eyes", "nose", "mouth"];
        let parts = cfg
            .parts
            .iter()
            .zip(names)
            .map(|(&(h, w), n)| LstBlock::new(&(p / n), cfg, (h / 8) * (w / 8)))
            .collect();
        let (h0, h1) = cfg.head_channels();
        let ec = [3, h0, h1, cfg.classes];
        let end = (0..3)
            .map(|i| conv(p / format!("end{i}"), ec[i], ec[i + 1], 1))
            .collect();
        Pbm {
            parts,
            end,
            end_norms: norms(p, "end", &ec[1..3], cfg.head_batchnorm),
            head_relu: cfg.head_relu,
        }
    }
}

/// The MGLN body: the SSM and the branches the configuration keeps.
#[derive(Debug)]
pub struct Mgln {
    ssm: Ssm,
    gfm: Option<Gfm>,
    pbm: Option<Pbm>,
    frames: i64,
}

impl Mgln {
    /// Builds `ssm.*`, and `gfm.*` and `pbm.*` as `cfg.branches` asks, under `p`.
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig) -> Mgln {
        Mgln {
            ssm: Ssm::new(&(p / "ssm"), cfg),
            gfm: cfg
                .branches
                .has_global()
                .then(|| Gfm::new(&(p / "gfm"), cfg)),
            pbm: cfg
                .branches
                .has_local()
                .then(|| Pbm::new(&(p / "pbm"), cfg)),
            frames: cfg.frames,
        }
    }

    /// The two branches' scores ([`super::Network::forward`]).
    pub(super) fn forward(&self, input: &ModelInput, train: bool) -> ModelOutput {
        let (ssm, gfm, pbm, frames) = (&self.ssm, &self.gfm, &self.pbm, self.frames);
        let global = gfm
            .as_ref()
            .map(|g| g.forward_t(&ssm.forward_stream(&input.face, 0, train), train));
        let local = pbm.as_ref().map(|pbm| {
            let b = input.face.size()[0];
            let t = frames;
            let maps: Vec<Tensor> = pbm
                .parts
                .iter()
                .zip(&input.parts)
                .enumerate()
                .map(|(k, (block, x))| {
                    // One SSM pass over all frames of a part (one frame of a still image).
                    let feats = ssm.forward_stream(&x.flatten(0, 1), k + 1, train);
                    block.forward(&feats, b, t, train)
                })
                .collect();
            let mut y = Tensor::cat(&maps, 1);
            let last = pbm.end.len() - 1;
            for (i, c) in pbm.end.iter().enumerate() {
                y = y.apply(c);
                if i < last {
                    y = normed(y, &pbm.end_norms, i, train);
                }
                if i < last || pbm.head_relu {
                    y = y.relu();
                }
            }
            y.mean_dim(&[2i64, 3][..], false, Kind::Float)
        });
        ModelOutput { global, local }
    }
}
