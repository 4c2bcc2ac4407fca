//! The GFM's deformable sampling: the authors' per-channel ConvOffset2D and a true deformable
//! 3×3 convolution (DCN v1).

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// The authors' ConvOffset2D: a 3×3 conv predicts an (x, y) offset per channel and pixel; the map
/// is resampled bilinearly there (clamped to the map, border padding). Offsets start near zero
/// (N(0, 0.01) weights, no bias), so the block starts as (almost) the identity.
#[derive(Debug)]
pub struct ConvOffset2D {
    offsets: nn::Conv2D,
}

impl ConvOffset2D {
    pub(super) fn new(p: &nn::Path, c: i64) -> ConvOffset2D {
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
    pub(super) fn new(p: &nn::Path, cin: i64, cout: i64) -> DeformConv3x3 {
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
