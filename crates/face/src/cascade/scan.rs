//! Scanning one pyramid level: the window step, variance normalisation, the stage loop over
//! compiled stump programs (HAAR, LBP) and the eight-lane AVX2 LBP and HAAR scans.

use super::*;

impl CascadeDetector {
    pub(super) fn scan_level(&self, lv: &Level, scale: f32, step: usize, out: &mut Vec<Rect>) {
        let stride = lv.w + 1;
        let (ww, wh) = (self.width as usize, self.height as usize);
        if lv.w < ww || lv.h < wh {
            return;
        }
        if self.kind == FeatureType::Lbp && self.all_stumps {
            self.scan_level_lbp(lv, scale, step, out);
            return;
        }
        // All-stump HAAR cascades eight windows at a time when the CPU has AVX2 (the level then
        // carries i32 sums); the window-by-window scan below otherwise.
        #[cfg(target_arch = "x86_64")]
        if self.kind == FeatureType::Haar
            && self.all_stumps
            && self.vector_scan
            && !lv.isum.is_empty()
            && self.scan_level_haar_vector(lv, scale, step, out)
        {
            return;
        }
        // Corner offsets of every feature rect relative to the window origin at this stride.
        let offs: Vec<[[usize; 4]; 3]> = self
            .features
            .iter()
            .map(|rs| {
                let mut o = [[0usize; 4]; 3];
                for (k, r) in rs.iter().enumerate() {
                    let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                    o[k] = [
                        y * stride + x,
                        y * stride + x + w,
                        (y + h) * stride + x,
                        (y + h) * stride + x + w,
                    ];
                }
                o
            })
            .collect();
        // All-stump HAAR cascades (frontalface_default, _alt) get a flat per-level program.
        let stumps: Vec<CompiledStump> = if self.kind == FeatureType::Haar && self.all_stumps {
            self.weaks
                .iter()
                .map(|w| {
                    let n = self.nodes[w.nodes.start as usize];
                    let rs = &self.features[n.feature as usize];
                    let o = &offs[n.feature as usize];
                    CompiledStump {
                        off: o.map(|c| c.map(|v| v as u32)),
                        weight: [rs[0].weight, rs[1].weight, rs[2].weight],
                        threshold: n.threshold,
                        leaf: self.stump_leaves(w, &n),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let (norm, area) = norm_rect((ww, wh), stride);
        let mut y = 0usize;
        while y + wh <= lv.h {
            let mut x = 0usize;
            while x + ww <= lv.w {
                let base = y * stride + x;
                let result = match self.kind {
                    FeatureType::Haar if !stumps.is_empty() => {
                        match variance_norm(lv, base, &norm, area) {
                            Some(vnf) => self.run_haar_stumps(lv, base, &stumps, vnf),
                            None => -1,
                        }
                    }
                    FeatureType::Haar => match variance_norm(lv, base, &norm, area) {
                        Some(vnf) => self.run_haar(lv, base, &offs, vnf),
                        None => -1,
                    },
                    FeatureType::Lbp => self.run_lbp(lv, base, stride),
                };
                if result == 1 {
                    out.push(self.window_rect(x, y, scale));
                }
                x += if result == 0 { 2 * step } else { step };
            }
            y += step;
        }
    }

    /// [`Self::run_haar`] for all-stump cascades over the per-level compiled program.
    #[inline]
    pub(super) fn run_haar_stumps(
        &self,
        lv: &Level,
        base: usize,
        prog: &[CompiledStump],
        vnf: f32,
    ) -> i32 {
        let s = &lv.sum[base..];
        let rect = |o: &[u32; 4]| -> f32 {
            (s[o[0] as usize] - s[o[1] as usize] - s[o[2] as usize] + s[o[3] as usize]) as f32
        };
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for c in &prog[st.weaks.start as usize..st.weaks.end as usize] {
                // A third rect with weight 0 adds exactly 0.0, as OpenCV's skipped term would.
                let v = (c.weight[0] * rect(&c.off[0])
                    + c.weight[1] * rect(&c.off[1])
                    + c.weight[2] * rect(&c.off[2]))
                    * vnf;
                sum += if v < c.threshold {
                    c.leaf[0]
                } else {
                    c.leaf[1]
                } as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
    }

    /// 1 = accepted, −k = rejected at stage k (0 means stage 0, which triggers the step skip).
    #[inline]
    pub(super) fn run_haar(
        &self,
        lv: &Level,
        base: usize,
        offs: &[[[usize; 4]; 3]],
        vnf: f32,
    ) -> i32 {
        let s = &lv.sum;
        let eval = |f: usize| -> f32 {
            let rs = &self.features[f];
            let o = &offs[f];
            let rsum = |k: usize| -> f32 {
                (s[base + o[k][0]] - s[base + o[k][1]] - s[base + o[k][2]] + s[base + o[k][3]])
                    as f32
            };
            let mut v = rs[0].weight * rsum(0) + rs[1].weight * rsum(1);
            if rs[2].weight != 0.0 {
                v += rs[2].weight * rsum(2);
            }
            v * vnf
        };
        self.run_trees(|n| eval(n.feature as usize) < n.threshold)
    }

    /// The (left, right) leaf values of a single-node weak classifier.
    pub(super) fn stump_leaves(&self, w: &Weak, n: &Node) -> [f32; 2] {
        let leaf = |child: i32| self.leaves[(w.leaves.start as i32 - child) as usize];
        [leaf(n.left), leaf(n.right)]
    }

    /// The boosted-tree stages of any cascade: `go_left` decides each node. Returns 1 when every
    /// stage passes, −k when stage k rejects (0 for stage 0, which triggers the step skip).
    #[inline]
    pub(super) fn run_trees(&self, go_left: impl Fn(&Node) -> bool) -> i32 {
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for w in &self.weaks[st.weaks.start as usize..st.weaks.end as usize] {
                let nodes = &self.nodes[w.nodes.start as usize..w.nodes.end as usize];
                let mut idx = 0i32;
                loop {
                    let n = &nodes[idx as usize];
                    idx = if go_left(n) { n.left } else { n.right };
                    if idx <= 0 {
                        break;
                    }
                }
                sum += self.leaves[(w.leaves.start as i32 - idx) as usize] as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
    }

    #[inline]
    pub(super) fn run_lbp(&self, lv: &Level, base: usize, stride: usize) -> i32 {
        let s = &lv.isum;
        self.run_trees(|n| {
            let r = self.features[n.feature as usize][0];
            let (x, y, cw, ch) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
            let mut v = [0i32; 16];
            for (k, d) in v.iter_mut().enumerate() {
                *d = s[base + (y + (k / 4) * ch) * stride + x + (k % 4) * cw];
            }
            let code = lbp_code(&v);
            (self.subsets[n.subset as usize + (code >> 5)] >> (code & 31)) & 1 != 0
        })
    }

    /// The LBP stumps of every weak classifier, with corner offsets for one level's layout.
    pub(super) fn compile_lbp(&self, layout: IntegralLayout) -> Vec<CompiledLbp> {
        self.weaks
            .iter()
            .map(|w| {
                let n = self.nodes[w.nodes.start as usize];
                let r = self.features[n.feature as usize][0];
                let (x, y, cw, ch) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                let mut corners = [0u32; 16];
                for (k, c) in corners.iter_mut().enumerate() {
                    *c = layout.offset(y + (k / 4) * ch, x + (k % 4) * cw) as u32;
                }
                let mut subset = [0i32; 8];
                let words =
                    &self.subsets[n.subset as usize..n.subset as usize + self.subset_words.min(8)];
                subset[..words.len()].copy_from_slice(words);
                CompiledLbp {
                    corners,
                    subset,
                    leaf: self.stump_leaves(w, &n),
                }
            })
            .collect()
    }

    /// The source-image rect of the window at level position (`x`, `y`) of a level scaled by
    /// `scale`: OpenCV's `cvRound` (half to even) of position and window size times the scale.
    #[inline]
    pub(super) fn window_rect(&self, x: usize, y: usize, scale: f32) -> Rect {
        Rect {
            x: round_half_even_f32(x as f32 * scale),
            y: round_half_even_f32(y as f32 * scale),
            w: round_half_even_f32(self.width as f32 * scale),
            h: round_half_even_f32(self.height as f32 * scale),
        }
    }

    /// One pyramid level of an all-stump LBP cascade: eight windows at a time in AVX2 lanes when
    /// the CPU has it, else window by window. Both visit the windows OpenCV visits and accept the
    /// same ones, in the same order.
    pub(super) fn scan_level_lbp(&self, lv: &Level, scale: f32, step: usize, out: &mut Vec<Rect>) {
        let (ww, wh) = (self.width as usize, self.height as usize);
        let rect_at = |x: usize, y: usize| self.window_rect(x, y, scale);
        #[cfg(target_arch = "x86_64")]
        if self.vector_scan {
            let (data, layout) = vector_sums(lv, step);
            let prog = self.compile_lbp(layout);
            let reach = prog.iter().flat_map(|c| c.corners).max().unwrap_or(0) as usize;
            if let Some((positions, rows)) = vector_extent(lv, (ww, wh), step, reach, data) {
                // SAFETY: the CPU has AVX2 (`vector_scan`), and every load the scan makes lies
                // inside `data` (`vector_extent`).
                unsafe {
                    self.scan_lbp_avx2(data, &prog, positions, rows, step, lv.w + 1, |x, y| {
                        out.push(rect_at(x, y))
                    })
                };
                return;
            }
        }
        let prog = self.compile_lbp(IntegralLayout::Plain { stride: lv.w + 1 });
        let stride = lv.w + 1;
        let mut y = 0usize;
        while y + wh <= lv.h {
            let mut x = 0usize;
            while x + ww <= lv.w {
                let result = self.run_lbp_stumps(&lv.isum[y * stride + x..], &prog);
                if result == 1 {
                    out.push(rect_at(x, y));
                }
                x += if result == 0 { 2 * step } else { step };
            }
            y += step;
        }
    }

    /// [`Self::run_lbp`] for all-stump LBP cascades over the per-level compiled program; `s`
    /// starts at the window's origin in the plain integral image.
    #[inline]
    pub(super) fn run_lbp_stumps(&self, s: &[i32], prog: &[CompiledLbp]) -> i32 {
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for c in &prog[st.weaks.start as usize..st.weaks.end as usize] {
                // A plain loop: `array::map` was not inlined here and cost a fifth of detection.
                let mut v = [0i32; 16];
                for (d, &o) in v.iter_mut().zip(&c.corners) {
                    *d = s[o as usize];
                }
                let code = lbp_code(&v);
                let bit = (c.subset[code >> 5] >> (code & 31)) & 1;
                sum += c.leaf[(bit == 0) as usize] as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
    }

    /// The window scan of [`Self::scan_level_lbp`] in AVX2: lane `j` of a batch is the window at
    /// position `p0 + j` of a row (x = position · step); [`scan_lanes`] runs the stages and the
    /// step rule. `accept` gets (x, y) of each accepted window in scan order.
    ///
    /// # Safety
    /// The CPU must have AVX2, and `data` must hold every element the scan reads: for each row
    /// `r < rows`, batch start `p0 < positions` (a multiple of 8) and corner `c`, the eight
    /// elements from `r · step · stride + p0 + c`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn scan_lbp_avx2(
        &self,
        data: &[i32],
        prog: &[CompiledLbp],
        positions: usize,
        rows: usize,
        step: usize,
        stride: usize,
        accept: impl FnMut(usize, usize),
    ) {
        scan_lanes(
            positions,
            rows,
            step,
            self.stages.len(),
            // SAFETY: in bounds by the caller's contract.
            |y, p0| (unsafe { data.as_ptr().add(y * stride + p0) }, 0),
            |&at, k| {
                let st = &self.stages[k];
                let weaks = &prog[st.weaks.start as usize..st.weaks.end as usize];
                // SAFETY: the CPU has AVX2 (this fn's contract), and every corner offset of the
                // stage's features from `at` stays within `data` (the caller's contract).
                unsafe { lbp_stage_avx2(at, weaks, st.threshold as f64) }
            },
            accept,
        )
    }
}

/// The row and batch loop of the vector cascade scans (LBP and HAAR), OpenCV's visiting order in
/// eight lanes. For each row y (`r · step`, `r < rows`) and batch of eight positions from `p0`:
/// `batch(y, p0)` gives the batch's context and the lanes that are skipped without evaluation
/// (HAAR windows without a variance factor: OpenCV's result −1, which steps on like an accepted
/// window); `stage(context, k)` gives the lanes whose stage `k` passes. Stage 0 runs on all
/// lanes; the step rule (skip the next position after a stage-0 rejection) picks the lanes
/// OpenCV visits, carrying into the next batch; later stages run while any visited lane
/// survives; `accept(x, y)` gets each accepted window in scan order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn scan_lanes<B>(
    positions: usize,
    rows: usize,
    step: usize,
    stages: usize,
    mut batch: impl FnMut(usize, usize) -> (B, u32),
    stage: impl Fn(&B, usize) -> u32,
    mut accept: impl FnMut(usize, usize),
) {
    if stages == 0 {
        return;
    }
    for r in 0..rows {
        let y = r * step;
        // Position (relative to the batch) of the next window the step rule visits.
        let mut next = 0usize;
        let mut p0 = 0usize;
        while p0 < positions {
            let valid = if positions - p0 >= LANES {
                0xff
            } else {
                (1u32 << (positions - p0)) - 1
            };
            let (context, skipped) = batch(y, p0);
            let pass0 = stage(&context, 0);
            let steps_on = pass0 | skipped;
            let mut visited = 0u32;
            let mut pos = next;
            while pos < LANES {
                visited |= 1 << pos;
                pos += if steps_on >> pos & 1 == 1 { 1 } else { 2 };
            }
            next = pos - LANES;
            let mut alive = visited & pass0 & !skipped & valid;
            let mut k = 1;
            while alive != 0 && k < stages {
                alive &= stage(&context, k);
                k += 1;
            }
            while alive != 0 {
                let j = alive.trailing_zeros() as usize;
                accept((p0 + j) * step, y);
                alive &= alive - 1;
            }
            p0 += LANES;
        }
    }
}

/// A HAAR stump with its rect corners resolved to integral-image offsets at one level's stride.
#[derive(Debug, Clone, Copy)]
pub(super) struct CompiledStump {
    pub(super) off: [[u32; 4]; 3],
    pub(super) weight: [f32; 3],
    pub(super) threshold: f32,
    pub(super) leaf: [f32; 2],
}

/// An LBP stump with the 4×4 corner grid of its 3×3 blocks resolved to integral-image offsets.
#[derive(Debug, Clone, Copy)]
pub(super) struct CompiledLbp {
    pub(super) corners: [u32; 16],
    pub(super) subset: [i32; 8],
    /// Leaf taken when the code's subset bit is set, and when it is clear.
    pub(super) leaf: [f32; 2],
}

/// Windows per batch of the vector LBP scan (eight i32 lanes of an AVX2 register).
pub(super) const LANES: usize = 8;

/// Where integral-image element (row, column) lives in the array a scan reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum IntegralLayout {
    /// Row-major with `stride` = width + 1.
    Plain { stride: usize },
    /// Each row holds its even columns, then its odd ones (`even` of them first), so that windows
    /// two columns apart — the step-2 levels — read adjacent elements.
    Split { stride: usize, even: usize },
}

impl IntegralLayout {
    pub(super) fn split(stride: usize) -> IntegralLayout {
        IntegralLayout::Split {
            stride,
            even: stride.div_ceil(2),
        }
    }

    pub(super) fn offset(self, row: usize, col: usize) -> usize {
        match self {
            IntegralLayout::Plain { stride } => row * stride + col,
            IntegralLayout::Split { stride, even } => row * stride + (col & 1) * even + (col >> 1),
        }
    }
}

/// The 8-bit LBP code of a 3×3 block grid from its 4×4 integral corners (row-major): bit set when
/// the neighbour block's sum is ≥ the centre's, weights 128…1 clockwise from the top-left. The
/// integral is i32 and wraps on large images; a block sum taken in wrapping arithmetic is still
/// exact, as it is at most 255 · (block area) < 2³¹.
#[inline(always)]
pub(super) fn lbp_code(v: &[i32; 16]) -> usize {
    let block = |bx: usize, by: usize| {
        let k = by * 4 + bx;
        v[k].wrapping_sub(v[k + 1])
            .wrapping_sub(v[k + 4])
            .wrapping_add(v[k + 5])
    };
    let centre = block(1, 1);
    ((block(0, 0) >= centre) as usize) << 7
        | ((block(1, 0) >= centre) as usize) << 6
        | ((block(2, 0) >= centre) as usize) << 5
        | ((block(2, 1) >= centre) as usize) << 4
        | ((block(2, 2) >= centre) as usize) << 3
        | ((block(1, 2) >= centre) as usize) << 2
        | ((block(0, 2) >= centre) as usize) << 1
        | (block(0, 1) >= centre) as usize
}

/// One stage of LBP stumps on eight windows at once; `at` points at lane 0's window origin and
/// lane `j` reads `at + j`. Returns the lanes whose stage sum is not below `threshold`. Each lane
/// does [`lbp_code`] and the scalar f64 summation in the same order, so it decides as
/// [`CascadeDetector::run_lbp_stumps`] does.
///
/// # Safety
/// AVX2, and the eight elements from `at + corner` readable for every corner of `prog`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn lbp_stage_avx2(at: *const i32, prog: &[CompiledLbp], threshold: f64) -> u32 {
    use std::arch::x86_64::*;
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (c31, c255) = (_mm256_set1_epi32(31), _mm256_set1_epi32(255));
    for c in prog {
        // SAFETY: readable by the caller's contract.
        let load = |k: usize| unsafe { _mm256_loadu_si256(at.add(c.corners[k] as usize).cast()) };
        // d[r][x] = corner(r, x) − corner(r, x + 1); block(bx, by) = d[by][bx] − d[by + 1][bx].
        let mut d = [[_mm256_setzero_si256(); 3]; 4];
        for (r, dr) in d.iter_mut().enumerate() {
            let row = [
                load(4 * r),
                load(4 * r + 1),
                load(4 * r + 2),
                load(4 * r + 3),
            ];
            for (x, dv) in dr.iter_mut().enumerate() {
                *dv = _mm256_sub_epi32(row[x], row[x + 1]);
            }
        }
        let block = |bx: usize, by: usize| _mm256_sub_epi32(d[by][bx], d[by + 1][bx]);
        let centre = block(1, 1);
        // A clear bit is `centre > block`; collect those and invert.
        let clear = |bx: usize, by: usize, weight: i32| {
            _mm256_and_si256(
                _mm256_cmpgt_epi32(centre, block(bx, by)),
                _mm256_set1_epi32(weight),
            )
        };
        let inverted = _mm256_or_si256(
            _mm256_or_si256(
                _mm256_or_si256(clear(0, 0, 128), clear(1, 0, 64)),
                _mm256_or_si256(clear(2, 0, 32), clear(2, 1, 16)),
            ),
            _mm256_or_si256(
                _mm256_or_si256(clear(2, 2, 8), clear(1, 2, 4)),
                _mm256_or_si256(clear(0, 2, 2), clear(0, 1, 1)),
            ),
        );
        let code = _mm256_xor_si256(inverted, c255);
        // subset[code >> 5] by a lane permute, then its bit (code & 31) moved to the sign bit,
        // which is what blendv reads: 31 − k = 31 ^ k for k in 0..32.
        // SAFETY: `subset` is [i32; 8], exactly the 32 bytes one unaligned load reads.
        let subset = unsafe { _mm256_loadu_si256(c.subset.as_ptr().cast()) };
        let word = _mm256_permutevar8x32_epi32(subset, _mm256_srli_epi32::<5>(code));
        let bit_at_sign =
            _mm256_sllv_epi32(word, _mm256_xor_si256(_mm256_and_si256(code, c31), c31));
        let leaf = _mm256_blendv_ps(
            _mm256_set1_ps(c.leaf[1]),
            _mm256_set1_ps(c.leaf[0]),
            _mm256_castsi256_ps(bit_at_sign),
        );
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(leaf)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(leaf)));
    }
    let t = _mm256_set1_pd(threshold);
    let below = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(lo, t))
        | _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(hi, t)) << 4;
    !(below as u32) & 0xff
}

/// The integral image a vector scan of `lv` at `step` reads, and its layout: at step 2 the split
/// layout, where the eight windows of a batch (two columns apart) read adjacent elements.
pub(super) fn vector_sums(lv: &Level, step: usize) -> (&[i32], IntegralLayout) {
    let stride = lv.w + 1;
    if step == 2 {
        (&lv.split, IntegralLayout::split(stride))
    } else {
        (&lv.isum, IntegralLayout::Plain { stride })
    }
}

/// The window positions per row and the rows of a `ww`×`wh` window scan of `lv` at `step`, when
/// every eight-lane batch's loads up to `reach` elements past a window's origin lie inside
/// `data` (the last row's last batch, its last lane, the furthest corner); `None` otherwise, and
/// the caller scans window by window.
pub(super) fn vector_extent(
    lv: &Level,
    (ww, wh): (usize, usize),
    step: usize,
    reach: usize,
    data: &[i32],
) -> Option<(usize, usize)> {
    let positions = (lv.w - ww) / step + 1;
    let rows = (lv.h - wh) / step + 1;
    let last_batch = (positions - 1) / LANES * LANES;
    let furthest = (rows - 1) * step * (lv.w + 1) + last_batch + LANES - 1 + reach;
    (furthest < data.len()).then_some((positions, rows))
}

/// OpenCV's variance-normalisation rect (the `ww`×`wh` window less one pixel on every side) as
/// corner offsets from the window's origin at `stride`, and its area.
pub(super) fn norm_rect((ww, wh): (usize, usize), stride: usize) -> ([usize; 4], f64) {
    let (nx, ny, nw, nh) = (1usize, 1usize, ww - 2, wh - 2);
    let norm = [
        ny * stride + nx,
        ny * stride + nx + nw,
        (ny + nh) * stride + nx,
        (ny + nh) * stride + nx + nw,
    ];
    (norm, (nw * nh) as f64)
}

/// OpenCV's variance normalisation: `Some(1/σ·area)` factor when the window is evaluated at all.
#[inline]
pub(super) fn variance_norm(lv: &Level, base: usize, norm: &[usize; 4], area: f64) -> Option<f32> {
    let s = lv.sum[base + norm[0]] - lv.sum[base + norm[1]] - lv.sum[base + norm[2]]
        + lv.sum[base + norm[3]];
    let q = lv.sqsum[base + norm[0]] - lv.sqsum[base + norm[1]] - lv.sqsum[base + norm[2]]
        + lv.sqsum[base + norm[3]];
    // OpenCV reads the squared sum as unsigned 32-bit.
    let nf = area * (q as u32) as f64 - (s as f64) * (s as f64);
    if nf > 0.0 {
        let vnf = (1.0 / nf.sqrt()) as f32;
        (area * (vnf as f64) < 0.1).then_some(vnf)
    } else {
        None
    }
}
