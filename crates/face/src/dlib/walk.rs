//! One face's prediction: the similarity transform to the current shape, the feature pixels
//! (scalar and eight AVX2 lanes), the walk down each regression tree and the leaf additions.

use super::leaves::*;
use super::*;

impl ShapePredictor {
    /// Predicts the 68 landmarks of the face in `face` (a dlib-convention box), exactly as dlib's
    /// `shape_predictor::operator()` does.
    pub fn predict(&self, img: &GrayImage, face: FaceBox) -> Landmarks {
        let mut state = PredictState::new(self, face);
        let mut leaf_offsets = vec![0usize; self.trees];
        // Where in `leaves` each tree's chosen leaf starts.
        let mut leaf_at = vec![0usize; self.trees];
        for c in 0..self.cascades {
            state.features(self, img, c);
            let tree0 = c * self.trees;
            // Each leaf's first line is requested as soon as its tree is walked, so the leaf
            // loads start while the walk still keeps the core busy (measured a few per cent
            // faster than loading only after the walk). Requesting whole leaves here, or adding
            // the leaves of earlier trees during the walk, measured slower: the walk's own loads
            // then wait behind the misses.
            self.walk_trees_then(c, &state.feats, &mut leaf_offsets, |first, leaves| {
                for (k, &leaf) in leaves.iter().enumerate() {
                    let at = self.leaf_start(tree0 + first + k, leaf);
                    leaf_at[first + k] = at;
                    prefetch_floats(&self.leaves, at, 1);
                }
            });
            state.add_leaves(&self.leaves, &leaf_at, self.avx2, Some(6));
        }
        state.finish()
    }

    /// Where leaf `leaf` of tree `tree` (counted over all cascades) starts in `leaves`.
    #[inline(always)]
    pub(super) fn leaf_start(&self, tree: usize, leaf: usize) -> usize {
        (tree * self.leaves_per_tree + leaf) * self.initial.len()
    }

    /// Walks every tree of cascade `c` (they only read the feature pixels) and stores each tree's
    /// leaf index.
    pub(super) fn walk_trees(&self, c: usize, feats: &[i32], leaf_offsets: &mut [usize]) {
        self.walk_trees_then(c, feats, leaf_offsets, |_, _| {})
    }

    /// [`Self::walk_trees`], calling `walked(first, leaves)` as soon as each run of trees is
    /// walked (`first` counted within the cascade, `leaves` their leaf indices).
    #[inline(always)]
    pub(super) fn walk_trees_then(
        &self,
        c: usize,
        feats: &[i32],
        leaf_offsets: &mut [usize],
        mut walked: impl FnMut(usize, &[usize]),
    ) {
        let n = self.splits_per_tree;
        let tree0 = c * self.trees;
        assert!(
            feats.len() == self.features
                && leaf_offsets.len() <= self.trees
                && (tree0 + leaf_offsets.len()) * n <= self.splits.len(),
            "walk_trees: feature or tree count does not match the model"
        );
        let mut chunks = leaf_offsets.chunks_exact_mut(8);
        let mut t = tree0;
        // Eight trees side by side: each level of a walk waits on the last (split → pixels →
        // compare), so one tree at a time leaves the core idle between loads.
        for out in &mut chunks {
            let mut i = [0usize; 8];
            while i[0] < n {
                for (k, ik) in i.iter_mut().enumerate() {
                    // SAFETY: tree t + k < tree0 + leaf_offsets.len() and i < n, so the split is
                    // inside `splits` (asserted above); its feature indices are < `features`
                    // (checked when the model was loaded) = feats.len() (asserted above).
                    let left = unsafe {
                        let sp = *self.splits.get_unchecked((t + k) * n + *ik);
                        *feats.get_unchecked(sp.idx1()) - *feats.get_unchecked(sp.idx2())
                            > sp.thresh()
                    };
                    *ik = 2 * *ik + 2 - left as usize;
                }
            }
            for (o, ik) in out.iter_mut().zip(i) {
                *o = ik - n;
            }
            walked(t - tree0, out);
            t += 8;
        }
        for leaf_at in chunks.into_remainder() {
            *leaf_at = self.walk_tree(t, feats);
            walked(t - tree0, std::slice::from_ref(leaf_at));
            t += 1;
        }
    }

    /// The leaf index tree `tree` (counted over all cascades) sends a face with these feature
    /// pixels to; 0 for depth-0 trees.
    #[inline(always)]
    pub(super) fn walk_tree(&self, tree: usize, feats: &[i32]) -> usize {
        let n = self.splits_per_tree;
        let splits = &self.splits[tree * n..(tree + 1) * n];
        let mut i = 0usize;
        while i < n {
            let s = splits[i];
            // Branch-free: which child a face goes to is a coin toss for the branch predictor,
            // and a mispredict costs more than the whole comparison.
            let left = feats[s.idx1()] - feats[s.idx2()] > s.thresh();
            i = 2 * i + 2 - left as usize;
        }
        i - n
    }
}

/// One face's prediction in progress: the current normalised shape and the box geometry.
pub(super) struct PredictState {
    pub(super) cur: Vec<f32>,
    /// Grey level of each feature pixel of the current cascade, 0 outside the image (integers, so
    /// the splits compare them exactly with integer thresholds).
    pub(super) feats: Vec<i32>,
    /// Per feature of the current cascade: index of its pixel in the image data, `usize::MAX`
    /// when outside (set by [`PredictState::locate`], read by [`PredictState::read`]).
    pub(super) pixel_at: Vec<usize>,
    pub(super) l: f64,
    pub(super) t: f64,
    pub(super) sx: f64,
    pub(super) sy: f64,
    /// Mean of the initial shape and its centred squared norm (the same for every cascade).
    pub(super) mean_from: (f64, f64),
    pub(super) from_sq: f64,
}

impl PredictState {
    pub(super) fn new(sp: &ShapePredictor, face: FaceBox) -> PredictState {
        let n = sp.initial.len() / 2;
        let (mfx, mfy) = mean_xy(&sp.initial);
        let mut from_sq = 0f64;
        for k in 0..n {
            let fx = sp.initial[2 * k] as f64 - mfx;
            let fy = sp.initial[2 * k + 1] as f64 - mfy;
            from_sq += fx * fx + fy * fy;
        }
        PredictState {
            cur: sp.initial.clone(),
            feats: vec![0; sp.features],
            pixel_at: vec![usize::MAX; sp.features],
            l: face.left as f64,
            t: face.top as f64,
            sx: (face.right - face.left) as f64,
            sy: (face.bottom - face.top) as f64,
            mean_from: (mfx, mfy),
            from_sq,
        }
    }

    /// The feature pixels of cascade `c`: [`Self::locate`] then [`Self::read`].
    pub(super) fn features(&mut self, sp: &ShapePredictor, img: &GrayImage, c: usize) {
        self.locate(sp, img, c);
        self.read(img);
    }

    /// Where the feature pixels of cascade `c` are: anchors moved by the similarity initial →
    /// current (Umeyama without reflection, closed form), nearest pixel (`usize::MAX` outside the
    /// image), each one prefetched. Apart from [`Self::read`] so that a batch can locate the next
    /// face's pixels while it reads this one's: the image has usually left the cache since the
    /// previous cascade, and the reads are then cache misses.
    pub(super) fn locate(&mut self, sp: &ShapePredictor, img: &GrayImage, c: usize) {
        let n = sp.initial.len() / 2;
        let (mfx, mfy) = self.mean_from;
        let cur = &self.cur;
        let (mtx, mty) = mean_xy(cur);
        let (mut dot, mut cross) = (0f64, 0f64);
        for k in 0..n {
            let fx = sp.initial[2 * k] as f64 - mfx;
            let fy = sp.initial[2 * k + 1] as f64 - mfy;
            let tx = cur[2 * k] as f64 - mtx;
            let ty = cur[2 * k + 1] as f64 - mty;
            dot += fx * tx + fy * ty;
            cross += fx * ty - fy * tx;
        }
        let (a, b) = if self.from_sq != 0.0 {
            ((dot / self.from_sq) as f32, (cross / self.from_sq) as f32)
        } else {
            (1.0, 0.0)
        };
        let base = c * sp.features;
        let range = base..base + sp.features;
        let (dx, dy, anchors) = (
            &sp.delta_x[range.clone()],
            &sp.delta_y[range.clone()],
            &sp.anchors[range],
        );
        let geometry = [self.l, self.t, self.sx, self.sy];
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if sp.avx2 {
            // SAFETY: `avx2` is true only when the CPU reported AVX2, and the anchors are landmark
            // indices (both checked at model load); `cur` holds every landmark.
            done = unsafe {
                locate_pixels_avx2(
                    &mut self.pixel_at,
                    cur,
                    anchors,
                    dx,
                    dy,
                    (a, b),
                    geometry,
                    img,
                )
            };
        }
        for k in done..self.pixel_at.len() {
            let anchor = anchors[k] as usize;
            let ux = (a * dx[k] - b * dy[k]) + cur[2 * anchor];
            let uy = (b * dx[k] + a * dy[k]) + cur[2 * anchor + 1];
            self.pixel_at[k] = feature_pixel(img, geometry, ux, uy);
            prefetch_pixel(img.data(), self.pixel_at[k]);
        }
    }

    /// The grey values at the located pixels, 0 outside the image.
    pub(super) fn read(&mut self, img: &GrayImage) {
        let data = img.data();
        for (f, &at) in self.feats.iter_mut().zip(&self.pixel_at) {
            *f = data.get(at).map_or(0, |&v| i32::from(v));
        }
    }

    /// Adds the leaves starting at `leaf_at` (offsets into `table`), in order; with `ahead`, each
    /// whole leaf is prefetched that many leaves before its turn (one face at a time the leaves
    /// come from memory; a batch has them in cache already).
    #[inline(always)]
    pub(super) fn add_leaves(
        &mut self,
        table: &[f32],
        leaf_at: &[usize],
        avx2: bool,
        ahead: Option<usize>,
    ) {
        let dims = self.cur.len();
        if let Some(ahead) = ahead {
            for &at in leaf_at.iter().take(ahead) {
                prefetch_floats(table, at, dims);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if avx2 && dims == SUMS_IN_REGISTERS {
            // SAFETY: `avx2` is true only when the CPU reported AVX2 (checked at model load).
            unsafe { sum_leaves_in_registers(&mut self.cur, table, leaf_at, ahead) };
            return;
        }
        for (k, &at) in leaf_at.iter().enumerate() {
            if let Some(&next) = ahead.and_then(|a| leaf_at.get(k + a)) {
                prefetch_floats(table, next, dims);
            }
            self.add_leaf(&table[at..at + dims], avx2);
        }
    }

    #[inline(always)]
    pub(super) fn add_leaf(&mut self, leaf: &[f32], avx2: bool) {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` is true only when the CPU reported AVX2 (checked at model load).
            unsafe { add_avx2(&mut self.cur, leaf) };
            return;
        }
        let _ = avx2;
        add_floats(&mut self.cur, leaf);
    }

    pub(super) fn finish(self) -> Landmarks {
        let n = self.cur.len() / 2;
        let mut points = Vec::with_capacity(n);
        let mut precise = Vec::with_capacity(n);
        for k in 0..n {
            let x = self.l + self.cur[2 * k] as f64 * self.sx;
            let y = self.t + self.cur[2 * k + 1] as f64 * self.sy;
            points.push([(x + 0.5).floor() as i64, (y + 0.5).floor() as i64]);
            precise.push([x as f32, y as f32]);
        }
        Landmarks { points, precise }
    }
}

/// Index in the image data of the pixel at the point (`ux`, `uy`) of the face box's unit frame,
/// `geometry` = (left, top, width span, height span) of the box: nearest pixel by floor(x + 0.5)
/// as dlib rounds; `usize::MAX` outside the image (dlib reads 0 there). A NaN coordinate (only a
/// corrupt model makes one) is outside, as in the vector path.
#[inline(always)]
pub(super) fn feature_pixel(img: &GrayImage, geometry: [f64; 4], ux: f32, uy: f32) -> usize {
    let [l, t, sx, sy] = geometry;
    let (vx, vy) = (l + ux as f64 * sx + 0.5, t + uy as f64 * sy + 0.5);
    if vx.is_nan() || vy.is_nan() {
        return usize::MAX;
    }
    let (x, y) = (floor_to_i64(vx), floor_to_i64(vy));
    if x >= 0 && y >= 0 && (x as usize) < img.width() && (y as usize) < img.height() {
        y as usize * img.width() + x as usize
    } else {
        usize::MAX
    }
}

/// Asks the CPU to start loading the cache line of `data[at]` (nothing when `at` is outside).
#[inline(always)]
pub(super) fn prefetch_pixel(data: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < data.len() {
        // SAFETY: the address is inside `data` (checked above); prefetch has no other effect.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                data.as_ptr().add(at) as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}

/// [`PredictState::locate`]'s per-feature loop for eight features at a time: the same f32
/// similarity transform and f64 pixel arithmetic as [`feature_pixel`], operation for operation (no
/// fused multiply-add), giving the same indices (`usize::MAX` outside), each prefetched. Returns
/// how many features it did (a multiple of eight); the caller does the rest.
///
/// # Safety
/// The CPU must have AVX2, and every anchor must be a landmark of `cur` (2 · anchor + 1 <
/// `cur.len()`; the model loader refuses anchors that are not landmark indices).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn locate_pixels_avx2(
    pixel_at: &mut [usize],
    cur: &[f32],
    anchors: &[u32],
    dx: &[f32],
    dy: &[f32],
    (a, b): (f32, f32),
    geometry: [f64; 4],
    img: &GrayImage,
) -> usize {
    use std::arch::x86_64::*;
    let n = pixel_at.len();
    if anchors.len() != n || dx.len() != n || dy.len() != n {
        return 0;
    }
    let (va, vb) = (_mm256_set1_ps(a), _mm256_set1_ps(b));
    let [l, t, sx, sy] = [
        _mm256_set1_pd(geometry[0]),
        _mm256_set1_pd(geometry[1]),
        _mm256_set1_pd(geometry[2]),
        _mm256_set1_pd(geometry[3]),
    ];
    let half = _mm256_set1_pd(0.5);
    let (w, h) = (img.width(), img.height());
    let (wf, hf) = (_mm256_set1_pd(w as f64), _mm256_set1_pd(h as f64));
    let data = img.data();
    if data.is_empty() || data.len() > i32::MAX as usize {
        return 0;
    }
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: k + 8 <= n = the length of all four slices (checked above).
        let (anc, d0, d1) = unsafe {
            (
                _mm256_loadu_si256(anchors.as_ptr().add(k).cast()),
                _mm256_loadu_ps(dx.as_ptr().add(k)),
                _mm256_loadu_ps(dy.as_ptr().add(k)),
            )
        };
        let ix = _mm256_slli_epi32::<1>(anc);
        let iy = _mm256_add_epi32(ix, _mm256_set1_epi32(1));
        // SAFETY: every 2·anchor + 1 is inside `cur` (the caller's contract).
        let (cx, cy) = unsafe {
            (
                _mm256_i32gather_ps::<4>(cur.as_ptr(), ix),
                _mm256_i32gather_ps::<4>(cur.as_ptr(), iy),
            )
        };
        let ux = _mm256_add_ps(
            _mm256_sub_ps(_mm256_mul_ps(va, d0), _mm256_mul_ps(vb, d1)),
            cx,
        );
        let uy = _mm256_add_ps(
            _mm256_add_ps(_mm256_mul_ps(vb, d0), _mm256_mul_ps(va, d1)),
            cy,
        );
        let halves = [
            (_mm256_castps256_ps128(ux), _mm256_castps256_ps128(uy)),
            (
                _mm256_extractf128_ps::<1>(ux),
                _mm256_extractf128_ps::<1>(uy),
            ),
        ];
        // Per half: the pixel index y·w + x (exact in f64, < 2³¹ checked above) widened to 64
        // bits, all ones (usize::MAX) in lanes outside.
        for (j, (hx, hy)) in halves.into_iter().enumerate() {
            let fx = _mm256_floor_pd(_mm256_add_pd(
                _mm256_add_pd(l, _mm256_mul_pd(_mm256_cvtps_pd(hx), sx)),
                half,
            ));
            let fy = _mm256_floor_pd(_mm256_add_pd(
                _mm256_add_pd(t, _mm256_mul_pd(_mm256_cvtps_pd(hy), sy)),
                half,
            ));
            let inside = crate::lanes::inside_box(fx, fy, wf, hf);
            let at = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(_mm256_add_pd(
                _mm256_mul_pd(fy, wf),
                fx,
            )));
            let at = _mm256_or_si256(
                _mm256_and_si256(at, _mm256_castpd_si256(inside)),
                _mm256_andnot_si256(_mm256_castpd_si256(inside), _mm256_set1_epi64x(-1)),
            );
            let out = &mut pixel_at[k + 4 * j..k + 4 * j + 4];
            // The store writes four 64-bit lanes into four usizes: true on x86-64 except the x32
            // ABI (x86_64 with 32-bit pointers), which this refuses to compile for.
            const _: () = assert!(
                usize::BITS == 64,
                "the AVX2 pixel index store needs 64-bit usize"
            );
            // SAFETY: four u64 into a four-element slice of 64-bit usizes (asserted just above).
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), at) };
            for &p in out.iter() {
                prefetch_pixel(data, p);
            }
        }
        k += 8;
    }
    k
}

/// `v.floor() as i64` without a libm call (baseline x86-64 has no SSE4.1 `roundsd`); exact for
/// every finite value in i64 range, and saturating like `as` beyond it.
#[inline(always)]
pub(crate) fn floor_to_i64(v: f64) -> i64 {
    let t = v as i64;
    // Saturating: below i64::MIN, `t` is already i64::MIN and still compares greater than `v`
    // (found by fuzzing a model whose leaves send points to -1e30: an overflow panic in debug
    // builds and i64::MAX in release).
    t.saturating_sub(((t as f64) > v) as i64)
}

pub(super) fn mean_xy(v: &[f32]) -> (f64, f64) {
    let n = (v.len() / 2) as f64;
    let (mut x, mut y) = (0f64, 0f64);
    for p in v.chunks_exact(2) {
        x += p[0] as f64;
        y += p[1] as f64;
    }
    (x / n, y / n)
}
