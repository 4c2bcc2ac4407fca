//! The leaf table's arithmetic: adding a tree's leaf to the shape (scalar, AVX2, sums held in
//! registers) and prefetching leaves a few trees ahead.

/// `cur += leaf`, element by element. Each element is one IEEE addition whatever the vector
/// width, so the sums are the same bits as dlib's scalar loop.
#[inline(always)]
pub(super) fn add_floats(cur: &mut [f32], leaf: &[f32]) {
    for (cv, lv) in cur.iter_mut().zip(leaf) {
        *cv += *lv;
    }
}

/// [`add_floats`] compiled for AVX2 (8 lanes instead of baseline x86-64's 4): the leaf additions
/// are half of a batched prediction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn add_avx2(cur: &mut [f32], leaf: &[f32]) {
    add_floats(cur, leaf)
}

/// The shape size whose leaf sums [`sum_leaves_in_registers`] keeps in registers: 68 points.
pub(super) const SUMS_IN_REGISTERS: usize = 136;

/// `cur += table[at..at + 136]` for each offset in `leaf_at`, in order, with the 136 sums held in
/// 17 AVX2 registers across all the leaves instead of loaded and stored once per leaf; with
/// `ahead`, the whole leaf that many offsets on is prefetched. Each element still gets one IEEE
/// f32 addition per leaf in the same order (no FMA), so the sums are the bits of [`add_floats`]
/// leaf after leaf.
///
/// Why: one face at a time the additions wait on leaves coming from memory, and how many leaves
/// are in flight at once depends on how many trees' additions fit in the core's reorder window.
/// With the sums in registers a leaf costs 17 fused load-adds instead of 17 loads, adds and
/// stores: measured 6 % faster per face, same points. A batch adds a block of trees' leaves
/// (in cache) per face with it.
///
/// # Safety
/// The CPU must have AVX2. Panics (a bug, not bad data) if `cur` is not 136 long or an offset
/// leaves `table`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sum_leaves_in_registers(
    cur: &mut [f32],
    table: &[f32],
    leaf_at: &[usize],
    ahead: Option<usize>,
) {
    use std::arch::x86_64::*;
    pub(super) const VECS: usize = SUMS_IN_REGISTERS / 8;
    assert_eq!(cur.len(), SUMS_IN_REGISTERS, "shape size");
    let mut acc = [_mm256_setzero_ps(); VECS];
    for (v, a) in acc.iter_mut().enumerate() {
        // SAFETY: 8 · v + 8 ≤ 136 = cur.len().
        *a = unsafe { _mm256_loadu_ps(cur.as_ptr().add(8 * v)) };
    }
    for (k, &at) in leaf_at.iter().enumerate() {
        if let Some(&next) = ahead.and_then(|a| leaf_at.get(k + a)) {
            prefetch_floats(table, next, SUMS_IN_REGISTERS);
        }
        let leaf = &table[at..at + SUMS_IN_REGISTERS];
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: 8 · v + 8 ≤ 136 = leaf.len().
            *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(leaf.as_ptr().add(8 * v)) });
        }
    }
    for (v, a) in acc.iter().enumerate() {
        // SAFETY: 8 · v + 8 ≤ 136 = cur.len().
        unsafe { _mm256_storeu_ps(cur.as_mut_ptr().add(8 * v), *a) };
    }
}

/// Asks the CPU to start loading `len` floats at `v[at..]` (a leaf a few trees ahead): the leaves
/// are 65 MB, so each one is a cache miss the walk over the trees already knows about.
#[inline(always)]
pub(super) fn prefetch_floats(v: &[f32], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if at + len <= v.len() {
            let mut k = 0;
            while k < len {
                // SAFETY: the address is inside `v` (checked above); prefetch has no other effect.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(
                        v.as_ptr().add(at + k) as *const i8,
                        std::arch::x86_64::_MM_HINT_T0,
                    );
                }
                k += 16;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, at, len);
}
