//! MGLN in tch (`docs/specs/mgln.md`): a shared VGG16 trunk (SSM), the global face module (GFM)
//! with deformable sampling, the part-based module (PBM) of per-part conv + LSTM blocks over the
//! frames, and the part end. All shapes come from [`ModelConfig`]; defaults are the paper's.

mod cnn;

pub use cnn::PlainCnn;

use crate::config::{Branches, Deform, InitScheme, ModelKind};
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, RNN};
use tch::{Kind, Tensor};

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

/// The ten convs of VGG16's `features` (conv1_1 … conv4_3) with their torchvision indices.
const VGG_CONVS: [(usize, i64, i64); 10] = [
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
    fn new(p: &nn::Path, cfg: &ModelConfig) -> Ssm {
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

/// The authors' ConvOffset2D: a 3×3 conv predicts an (x, y) offset per channel and pixel; the map
/// is resampled bilinearly there (clamped to the map, border padding). Offsets start near zero
/// (N(0, 0.01) weights, no bias), so the block starts as (almost) the identity.
#[derive(Debug)]
pub struct ConvOffset2D {
    offsets: nn::Conv2D,
}

impl ConvOffset2D {
    fn new(p: &nn::Path, c: i64) -> ConvOffset2D {
        let offsets = nn::conv2d(
            p / "offsets",
            c,
            2 * c,
            3,
            nn::ConvConfig {
                padding: 1,
                bias: false,
                ws_init: nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.01,
                },
                ..Default::default()
            },
        );
        ConvOffset2D { offsets }
    }

    /// Resamples `x` at the per-channel offsets `o` ([b, 2c, h, w], x then y per channel).
    pub fn resample(x: &Tensor, o: &Tensor) -> Tensor {
        let (b, c, h, w) = x.size4().unwrap_or((0, 0, 0, 0));
        // Positions in fp32 whatever the activations are: under bf16 autocast the offset conv
        // gives bf16, which on a 16-pixel map would round every position to 1/8 pixel.
        // grid_sample runs in fp32 under autocast anyway.
        let o = o.to_kind(Kind::Float).view([b, c, 2, h, w]);
        let opts = (Kind::Float, x.device());
        let ys = Tensor::arange(h, opts).view([1, 1, h, 1]);
        let xs = Tensor::arange(w, opts).view([1, 1, 1, w]);
        let norm = |v: Tensor, n: i64| {
            if n > 1 {
                v.clamp(0.0, (n - 1) as f64) / ((n - 1) as f64) * 2.0 - 1.0
            } else {
                v * 0.0
            }
        };
        let gx = norm(o.select(2, 0) + xs, w);
        let gy = norm(o.select(2, 1) + ys, h);
        let grid = Tensor::stack(&[gx, gy], -1).view([b * c, h, w, 2]);
        // interpolation 0 = bilinear, padding 1 = border, align_corners = true.
        x.reshape([b * c, 1, h, w])
            .grid_sampler(&grid, 0, 1, true)
            .view([b, c, h, w])
    }
}

impl Module for ConvOffset2D {
    fn forward(&self, x: &Tensor) -> Tensor {
        ConvOffset2D::resample(x, &x.apply(&self.offsets))
    }
}

/// A true deformable 3×3 convolution (DCN v1): a 3×3 conv predicts a (dx, dy) offset per tap and
/// pixel (18 channels, zero-initialised, so it starts as the plain conv); the input is sampled at
/// every tap's displaced position (bilinear, zero outside, as a conv's zero padding) and the nine
/// samples are combined by the conv weights.
#[derive(Debug)]
pub struct DeformConv3x3 {
    offsets: nn::Conv2D,
    weight: Tensor,
    bias: Tensor,
    cout: i64,
}

impl DeformConv3x3 {
    fn new(p: &nn::Path, cin: i64, cout: i64) -> DeformConv3x3 {
        let offsets = nn::conv2d(
            p / "offsets",
            cin,
            18,
            3,
            nn::ConvConfig {
                padding: 1,
                ws_init: nn::Init::Const(0.0),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        );
        let bound = 1.0 / ((cin * 9) as f64).sqrt();
        let weight = p.var(
            "weight",
            &[cout, cin, 3, 3],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        let bias = p.var(
            "bias",
            &[cout],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        DeformConv3x3 {
            offsets,
            weight,
            bias,
            cout,
        }
    }
}

impl Module for DeformConv3x3 {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, c, h, w) = x.size4().unwrap_or((0, 0, 0, 0));
        // Positions in fp32 (see ConvOffset2D::resample).
        let off = x
            .apply(&self.offsets)
            .to_kind(Kind::Float)
            .view([b, 9, 2, h, w]);
        let opts = (Kind::Float, x.device());
        let ys = Tensor::arange(h, opts).view([1, h, 1]);
        let xs = Tensor::arange(w, opts).view([1, 1, w]);
        let mut taps = Vec::with_capacity(9);
        for k in 0..9i64 {
            let (dy, dx) = ((k / 3 - 1) as f64, (k % 3 - 1) as f64);
            let px = off.select(1, k).select(1, 0) + &xs + dx;
            let py = off.select(1, k).select(1, 1) + &ys + dy;
            // align_corners = true: −1 and 1 are the centres of the first and last pixels.
            let gx = px * (2.0 / ((w - 1).max(1)) as f64) - 1.0;
            let gy = py * (2.0 / ((h - 1).max(1)) as f64) - 1.0;
            let grid = Tensor::stack(&[gx, gy], -1);
            taps.push(x.grid_sampler(&grid, 0, 0, true));
        }
        // [b, c, 9, h, w] → [b, c·9, h, w], matching the weight's (c, ky, kx) order.
        let cols = Tensor::stack(&taps, 2).view([b, c * 9, h, w]);
        let wt = self.weight.view([self.cout, c * 9, 1, 1]);
        cols.conv2d(&wt, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)
    }
}

/// Batch norms `norms[i]` (when `on`) for the `i`-th of `channels.len()` convs under `p`, named
/// `<name><i>_bn`.
fn norms(p: &nn::Path, name: &str, channels: &[i64], on: bool) -> Vec<nn::BatchNorm> {
    if !on {
        return Vec::new();
    }
    channels
        .iter()
        .enumerate()
        .map(|(i, &c)| nn::batch_norm2d(p / format!("{name}{i}_bn"), c, Default::default()))
        .collect()
}

/// `x` through batch norm `k` of `norms` when there is one.
fn normed(x: Tensor, norms: &[nn::BatchNorm], k: usize, train: bool) -> Tensor {
    match norms.get(k) {
        Some(bn) => x.apply_t(bn, train),
        None => x,
    }
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        k,
        nn::ConvConfig {
            padding: k / 2,
            ..Default::default()
        },
    )
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
    fn new(p: &nn::Path, cfg: &ModelConfig) -> Gfm {
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
    fn new(p: &nn::Path, cfg: &ModelConfig, feat_len: i64) -> LstBlock {
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
    fn forward(&self, feats: &Tensor, b: i64, frames: i64, train: bool) -> Tensor {
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
    fn new(p: &nn::Path, cfg: &ModelConfig) -> Pbm {
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
    Mgln {
        ssm: Ssm,
        gfm: Option<Gfm>,
        pbm: Option<Pbm>,
    },
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
            ModelKind::Mgln => Body::Mgln {
                ssm: Ssm::new(&(p / "ssm"), cfg),
                gfm: cfg
                    .branches
                    .has_global()
                    .then(|| Gfm::new(&(p / "gfm"), cfg)),
                pbm: cfg
                    .branches
                    .has_local()
                    .then(|| Pbm::new(&(p / "pbm"), cfg)),
            },
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
        let (ssm, gfm, pbm) = match &self.body {
            Body::Cnn(cnn) => {
                return ModelOutput {
                    global: Some(cnn.forward(&input.face, train)),
                    local: None,
                }
            }
            Body::Mgln { ssm, gfm, pbm } => (ssm, gfm, pbm),
        };
        let global = gfm
            .as_ref()
            .map(|g| g.forward_t(&ssm.forward_stream(&input.face, 0, train), train));
        let local = pbm.as_ref().map(|pbm| {
            let b = input.face.size()[0];
            let t = self.cfg.frames;
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

/// Sets the starting weights of a freshly built network by `scheme` (see [`InitScheme`]).
///
/// `authors` draws every value from the project's counter-based generator keyed by
/// (`seed`, the variable's name): the weights depend on the seed alone, never on libtorch's
/// process-global generator, on other threads (parallel runs and tests) or on the order the
/// variables are visited. [`InitScheme::Tch`] leaves tch's initialisation (libtorch's generator,
/// seeded by the trainer) as it is.
pub fn initialise(vs: &nn::VarStore, cfg: &ModelConfig, scheme: InitScheme, seed: u64) {
    if scheme == InitScheme::Tch {
        return;
    }
    let lstm_bound = 1.0 / ((cfg.lstm_side * cfg.lstm_side) as f64).sqrt();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let leaf = name.rsplit('.').next().unwrap_or("");
            let mut rng = shard::KeyedRng::new(&[seed, 0x1_0417, name_key(&name)]);
            let n = t.numel();
            let values: Option<Vec<f32>> = if name.contains(".offsets.") {
                // Offset convs start near zero, sampling on the grid: the per-channel offsets
                // N(0, 0.01) (oeway/pytorch-deform-conv), the DCN's offsets exactly 0.
                match (name.contains(".dcn."), leaf) {
                    (false, "weight") => {
                        Some((0..n).map(|_| (0.01 * rng.normal()) as f32).collect())
                    }
                    _ => Some(vec![0.0; n]),
                }
            } else if name.contains(".lstm.") {
                Some(
                    (0..n)
                        .map(|_| ((2.0 * rng.uniform() - 1.0) * lstm_bound) as f32)
                        .collect(),
                )
            } else if t.dim() == 1 && leaf == "weight" {
                // Batch norm scales (the only 1-d weights) start at 1, as PyTorch's (tch draws
                // them from U(0, 1)); running statistics keep their start (mean 0, variance 1).
                Some(vec![1.0; n])
            } else if leaf == "weight" && t.dim() == 4 {
                let s = t.size();
                let std = (2.0 / (s[0] * s[2] * s[3]) as f64).sqrt();
                Some((0..n).map(|_| (std * rng.normal()) as f32).collect())
            } else if leaf == "bias" {
                Some(vec![0.0; n])
            } else {
                None
            };
            if let Some(v) = values {
                let src = Tensor::from_slice(&v)
                    .view(t.size().as_slice())
                    .to_kind(t.kind())
                    .to_device(t.device());
                t.copy_(&src);
            }
        }
    });
}

/// Gives every 4-d variable (the conv weights) the channels_last memory layout (NHWC strides, the
/// same shape), so that cuDNN's NHWC kernels run on channels_last activations without converting
/// the weights at every step. Gradients and Adam's moments created afterwards follow the layout.
/// Call it before building the optimiser.
pub fn to_channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            if t.dim() == 4 {
                t.set_data(&channels_last(&t));
            }
        }
    });
}

/// A copy of a 4-d tensor in the channels_last layout: the same shape and values, NHWC strides
/// (tch has no memory-format argument, so the layout is made by permuting, copying and
/// permuting back).
pub fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether a 4-d tensor has the channels_last layout (channel stride 1).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dim() == 4 && t.stride().get(1) == Some(&1) && t.size()[1] > 1
}

/// A stable 64-bit key of a variable name (FNV-1a), so that each tensor has its own stream.
fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Copies torchvision VGG16 weights (`features.{0,2,…,21}.{weight,bias}`, e.g. converted from
/// `vgg16-397923af.pth` to safetensors) into the SSM. Returns how many tensors were loaded.
///
/// Errors: unreadable file, a missing tensor, a shape that differs (a `width` other than 1).
pub fn load_vgg16(vs: &mut nn::VarStore, path: &std::path::Path) -> Result<usize> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| TrainError::Weights {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let by_name: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
    let mut vars = vs.variables();
    let mut loaded = 0;
    tch::no_grad(|| -> Result<()> {
        for (i, _, _) in VGG_CONVS {
            for what in ["weight", "bias"] {
                let key = format!("features.{i}.{what}");
                let src = by_name.get(&key).ok_or_else(|| TrainError::Weights {
                    file: path.to_path_buf(),
                    reason: format!("no tensor {key}"),
                })?;
                let dst = vars
                    .get_mut(&format!("ssm.{key}"))
                    .ok_or_else(|| TrainError::Config(format!("model has no ssm.{key}")))?;
                if dst.size() != src.size() {
                    return Err(TrainError::Weights {
                        file: path.to_path_buf(),
                        reason: format!(
                            "{key}: file {:?}, model {:?} (pretrained weights need width = 1)",
                            src.size(),
                            dst.size()
                        ),
                    });
                }
                dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
                loaded += 1;
            }
        }
        Ok(())
    })?;
    Ok(loaded)
}
