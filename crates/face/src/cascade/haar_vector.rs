//! The eight-lane AVX2 scan of all-stump HAAR cascades (haarcascade_frontalface_default, _alt):
//! eight windows of a row per batch, variance normalisation per lane, the step rule and the
//! stage loop of the window-by-window scan, with the same arithmetic in every lane.

use super::scan::{
    norm_rect, scan_lanes, variance_norm, vector_extent, vector_sums, CompiledStump, LANES,
};
use super::*;

impl CascadeDetector {
    /// The HAAR stumps of every weak classifier with rect corners at one level's layout.
    pub(super) fn compile_haar(&self, layout: IntegralLayout) -> Vec<CompiledStump> {
        self.weaks
            .iter()
            .map(|w| {
                let n = self.nodes[w.nodes.start as usize];
                let rs = &self.features[n.feature as usize];
                let mut off = [[0u32; 4]; 3];
                for (k, r) in rs.iter().enumerate().take(3) {
                    let (x, y, rw, rh) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                    off[k] = [
                        layout.offset(y, x) as u32,
                        layout.offset(y, x + rw) as u32,
                        layout.offset(y + rh, x) as u32,
                        layout.offset(y + rh, x + rw) as u32,
                    ];
                }
                CompiledStump {
                    off,
                    weight: [rs[0].weight, rs[1].weight, rs[2].weight],
                    threshold: n.threshold,
                    leaf: self.stump_leaves(w, &n),
                }
            })
            .collect()
    }

    /// One pyramid level of an all-stump HAAR cascade, eight windows at a time in AVX2 lanes:
    /// the windows OpenCV visits, accepted as the scalar scan accepts them, in the same order.
    /// Returns false (nothing scanned) when a batch could read past the level's sums; the
    /// caller then scans window by window.
    pub(super) fn scan_level_haar_vector(
        &self,
        lv: &Level,
        scale: f32,
        step: usize,
        out: &mut Vec<Rect>,
    ) -> bool {
        let (ww, wh) = (self.width as usize, self.height as usize);
        let stride = lv.w + 1;
        let (data, layout) = vector_sums(lv, step);
        let prog = self.compile_haar(layout);
        let reach = prog
            .iter()
            .flat_map(|c| c.off.iter().flatten())
            .copied()
            .max()
            .unwrap_or(0) as usize;
        let Some((positions, rows)) = vector_extent(lv, (ww, wh), step, reach, data) else {
            return false;
        };
        let (norm, area) = norm_rect((ww, wh), stride);
        // SAFETY: `vector_scan` is set only on CPUs with AVX2, and every load of the scan lies
        // inside `data` (`vector_extent`).
        unsafe {
            self.scan_haar_avx2(
                data,
                &prog,
                positions,
                rows,
                step,
                stride,
                |y, p0, vnf| {
                    // Variance normalisation per lane, as the scalar scan computes it.
                    let mut bad = 0u32;
                    for (j, v) in vnf.iter_mut().enumerate() {
                        if p0 + j >= positions {
                            continue;
                        }
                        let base = y * stride + (p0 + j) * step;
                        match variance_norm(lv, base, &norm, area) {
                            Some(f) => *v = f,
                            None => bad |= 1 << j,
                        }
                    }
                    bad
                },
                |x, y| out.push(self.window_rect(x, y, scale)),
            )
        };
        true
    }

    /// The window scan of [`Self::scan_level_haar_vector`]: lane `j` of a batch is the window at
    /// position `p0 + j` of a row; [`scan_lanes`] runs the stages and the step rule.
    /// `variance(y, p0, vnf)` fills the lanes' normalisation factors and returns the lanes
    /// without one (OpenCV's result −1: not evaluated, and not a stage-0 rejection for the step
    /// rule).
    ///
    /// # Safety
    /// AVX2, and `data` holding the eight elements from `r · step · stride + p0 + o` for every
    /// row `r < rows`, batch start `p0 < positions` and corner offset `o` of `prog`.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn scan_haar_avx2(
        &self,
        data: &[i32],
        prog: &[CompiledStump],
        positions: usize,
        rows: usize,
        step: usize,
        stride: usize,
        mut variance: impl FnMut(usize, usize, &mut [f32; LANES]) -> u32,
        accept: impl FnMut(usize, usize),
    ) {
        scan_lanes(
            positions,
            rows,
            step,
            self.stages.len(),
            |y, p0| {
                let mut vnf = [0f32; LANES];
                let bad = variance(y, p0, &mut vnf);
                // SAFETY: in bounds by the caller's contract.
                ((unsafe { data.as_ptr().add(y * stride + p0) }, vnf), bad)
            },
            |(at, vnf), k| {
                let st = &self.stages[k];
                let weaks = &prog[st.weaks.start as usize..st.weaks.end as usize];
                // SAFETY: AVX2 and loads within bounds (this fn's contract).
                unsafe { haar_stage_avx2(*at, weaks, st.threshold as f64, vnf) }
            },
            accept,
        )
    }
}

/// One stage of HAAR stumps on eight windows at once; `at` points at lane 0's window origin and
/// lane `j` reads `at + j`. Each lane computes the scalar scan's expression in the same order
/// and precision — i32 rect sums (exact in wrapping arithmetic), converted to f32, weighted,
/// summed left to right, times the lane's factor, compared with the threshold, the leaf summed
/// in f64 — so it decides as [`CascadeDetector::run_haar_stumps`] does. Returns the lanes whose
/// stage sum is not below `threshold`.
///
/// # Safety
/// AVX2, and the eight elements from `at + offset` readable for every offset of `prog`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn haar_stage_avx2(
    at: *const i32,
    prog: &[CompiledStump],
    threshold: f64,
    vnf: &[f32; LANES],
) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: `vnf` is exactly eight f32.
    let factor = unsafe { _mm256_loadu_ps(vnf.as_ptr()) };
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for c in prog {
        // SAFETY: readable by the caller's contract.
        let load = |o: u32| unsafe { _mm256_loadu_si256(at.add(o as usize).cast()) };
        let rect = |o: &[u32; 4]| {
            _mm256_cvtepi32_ps(_mm256_add_epi32(
                _mm256_sub_epi32(_mm256_sub_epi32(load(o[0]), load(o[1])), load(o[2])),
                load(o[3]),
            ))
        };
        let weighted = |k: usize| _mm256_mul_ps(_mm256_set1_ps(c.weight[k]), rect(&c.off[k]));
        // (w0·r0 + w1·r1) + w2·r2, then × factor: separate roundings, no fused multiply-add.
        let v = _mm256_mul_ps(
            _mm256_add_ps(_mm256_add_ps(weighted(0), weighted(1)), weighted(2)),
            factor,
        );
        let below = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_set1_ps(c.threshold));
        let leaf = _mm256_blendv_ps(_mm256_set1_ps(c.leaf[1]), _mm256_set1_ps(c.leaf[0]), below);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(leaf)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(leaf)));
    }
    let t = _mm256_set1_pd(threshold);
    let below = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(lo, t))
        | _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(hi, t)) << 4;
    !(below as u32) & 0xff
}
