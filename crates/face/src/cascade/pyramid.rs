//! The image pyramid: OpenCV's bit-exact `INTER_LINEAR_EXACT` resize and the integral images of
//! each level.

use super::*;

/// One pyramid level: the resized image and its integral images, reused across levels to avoid
/// reallocations. HAAR reads `sum`/`sqsum` (i64, as the variance needs); LBP reads `isum` (i32,
/// wrapping: block sums stay exact, see [`lbp_code`]) and, on step-2 levels of the vector scan,
/// `split` (the same values in [`IntegralLayout::Split`]).
#[derive(Default)]
pub(super) struct Level {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) pixels: Vec<u8>,
    pub(super) sum: Vec<i64>,
    pub(super) sqsum: Vec<i64>,
    pub(super) isum: Vec<i32>,
    pub(super) split: Vec<i32>,
}

impl Level {
    pub(super) fn build(
        &mut self,
        img: &GrayImage,
        w: usize,
        h: usize,
        kind: FeatureType,
        split: bool,
        haar_i32: bool,
    ) {
        self.w = w;
        self.h = h;
        resize_linear_exact(img, w, h, &mut self.pixels);
        let stride = w + 1;
        let len = stride * (h + 1);
        if kind == FeatureType::Haar {
            self.sum.clear();
            self.sum.resize(len, 0);
            self.sqsum.clear();
            self.sqsum.resize(len, 0);
            for y in 0..h {
                let (mut row, mut rowsq) = (0i64, 0i64);
                for x in 0..w {
                    let v = self.pixels[y * w + x] as i64;
                    row += v;
                    rowsq += v * v;
                    let at = (y + 1) * stride + x + 1;
                    self.sum[at] = self.sum[at - stride] + row;
                    self.sqsum[at] = self.sqsum[at - stride] + rowsq;
                }
            }
            if !haar_i32 {
                return;
            }
            // The vector HAAR scan reads the sums as i32: the same values modulo 2³², and a rect
            // sum taken in wrapping arithmetic is exact (at most 255 · window area < 2³¹).
            self.isum.clear();
            self.isum.extend(self.sum.iter().map(|&v| v as i32));
            self.isum.resize(len + 2 * LANES, 0);
            self.fill_split(split, stride, h);
            return;
        }
        // A batch of the vector scan reads up to LANES − 1 elements past the last window's corner
        // (lanes beyond the row are discarded), and split rows end with the odd half: pad so those
        // reads stay inside (`scan_level_lbp` checks the bound before each level).
        self.isum.clear();
        self.isum.resize(len + 2 * LANES, 0);
        for y in 0..h {
            let (above, below) = self.isum.split_at_mut((y + 1) * stride);
            let above = &above[y * stride + 1..];
            let below = &mut below[1..stride];
            let px = &self.pixels[y * w..(y + 1) * w];
            let mut row = 0i32;
            for ((o, a), &p) in below.iter_mut().zip(above).zip(px) {
                row = row.wrapping_add(p as i32);
                *o = a.wrapping_add(row);
            }
        }
        self.fill_split(split, stride, h);
    }

    /// `split`: `isum` in [`IntegralLayout::Split`] (when asked for).
    fn fill_split(&mut self, split: bool, stride: usize, h: usize) {
        if split {
            let layout = IntegralLayout::split(stride);
            self.split.clear();
            self.split.resize(stride * (h + 1) + 2 * LANES, 0);
            for r in 0..=h {
                for c in 0..stride {
                    self.split[layout.offset(r, c)] = self.isum[r * stride + c];
                }
            }
        }
    }
}

pub(super) fn round_half_even(v: f64) -> i64 {
    v.round_ties_even() as i64
}

pub(super) fn round_half_even_f32(v: f32) -> i64 {
    v.round_ties_even() as i64
}

/// Per destination index: source index and the u8.8 weight of the next source pixel, computed with
/// exact rational arithmetic (`src/dst · (d + ½) − ½`), as OpenCV's `resize_bitExact`.
pub(super) fn linear_coeffs(src: usize, dst: usize) -> (Vec<usize>, Vec<i64>, usize, usize) {
    let mut ofs = vec![0usize; dst];
    let mut c1 = vec![0i64; dst];
    let (mut lo, mut hi) = (0usize, dst);
    let (s, d) = (src as i64, dst as i64);
    for k in 0..dst {
        // f = (s(2k+1) − d) / (2d)
        let num = s * (2 * k as i64 + 1) - d;
        let den = 2 * d;
        let i = num.div_euclid(den);
        if i >= 0 && src > 1 {
            if i < s - 1 {
                ofs[k] = i as usize;
                let r = 256 * (num - i * den);
                let (q, rem) = (r / den, r % den);
                c1[k] = if 2 * rem > den || (2 * rem == den && q % 2 == 1) {
                    q + 1
                } else {
                    q
                };
            } else {
                ofs[k] = src - 1;
                hi = hi.min(k);
            }
        } else {
            lo = lo.max(k + 1);
        }
    }
    (ofs, c1, lo, hi)
}

/// OpenCV's `INTER_LINEAR_EXACT` resize of an 8-bit grey image (exact 2× downscales use
/// `INTER_AREA`, as OpenCV does).
pub fn resize_linear_exact(img: &GrayImage, dw: usize, dh: usize, out: &mut Vec<u8>) {
    let (sw, sh) = (img.width(), img.height());
    let src = img.data();
    out.clear();
    out.resize(dw * dh, 0);
    if dw == 0 || dh == 0 {
        return;
    }
    if dw == sw && dh == sh {
        out.copy_from_slice(src);
        return;
    }
    if dw * 2 == sw && dh * 2 == sh {
        for y in 0..dh {
            for x in 0..dw {
                let a = src[2 * y * sw + 2 * x] as u32 + src[2 * y * sw + 2 * x + 1] as u32;
                let b =
                    src[(2 * y + 1) * sw + 2 * x] as u32 + src[(2 * y + 1) * sw + 2 * x + 1] as u32;
                out[y * dw + x] = ((a + b + 2) >> 2) as u8;
            }
        }
        return;
    }
    // OpenCV interpolates each row horizontally, then the two rows vertically, all in exact
    // integers: out = ((256 − c)·(h·row a) + c·(h·row b) + 2¹⁵) >> 16 with h the horizontal
    // weights. The sum is bilinear, so the vertical blend may come first, over the source row,
    // where it is contiguous u16 arithmetic the compiler vectorises; the result is the same.
    // Borders fold in as weight 0 on the edge pixel (256·p, as OpenCV's border rows and
    // columns): vertically (a, 0), horizontally (index 0 or the last, weight 0).
    let (xo, xc, x0, x1) = linear_coeffs(sw, dw);
    let (yo, yc, y0, y1) = linear_coeffs(sh, dh);
    let cols: Vec<(u32, u32)> = (0..dw)
        .map(|d| {
            if d < x0 {
                (0, 0)
            } else if d >= x1 {
                (xo[dw - 1] as u32, 0)
            } else {
                (xo[d] as u32, xc[d] as u32)
            }
        })
        .collect();
    // One extra element: a weight-0 column on the last pixel reads v[sw].
    let mut v = vec![0u16; sw + 1];
    for (y, dst) in out.chunks_exact_mut(dw).enumerate() {
        let (a, b, c) = if y < y0 {
            (0, 0, 0u16)
        } else if y >= y1 {
            (sh - 1, sh - 1, 0)
        } else {
            (yo[y], yo[y] + 1, yc[y] as u16)
        };
        let (ra, rb) = (&src[a * sw..(a + 1) * sw], &src[b * sw..(b + 1) * sw]);
        // (256 − c)·p + c·q ≤ 256·255 fits u16.
        for ((o, &p), &q) in v.iter_mut().zip(ra).zip(rb) {
            *o = (256 - c) * p as u16 + c * q as u16;
        }
        for (o, &(x, w)) in dst.iter_mut().zip(&cols) {
            let x = x as usize;
            let (p, q) = (v[x] as u32, v[x + 1] as u32);
            // ≤ 256 · 65280 < 2³².
            *o = (((256 - w) * p + w * q + (1 << 15)) >> 16) as u8;
        }
    }
}
