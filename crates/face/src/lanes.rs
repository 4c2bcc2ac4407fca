//! What the AVX2 paths share (crop sampling, landmark features and leaf sums, the LBP window
//! scan): the CPU check and the in-image test of four points.

/// Whether the vector paths may use AVX2 on this CPU (false off x86-64).
pub(crate) fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// All-ones in the lanes whose point (`x`, `y`) lies in [0, `x_end`) × [0, `y_end`), zero
/// elsewhere. Ordered comparisons: a NaN coordinate is outside.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn inside_box(
    x: std::arch::x86_64::__m256d,
    y: std::arch::x86_64::__m256d,
    x_end: std::arch::x86_64::__m256d,
    y_end: std::arch::x86_64::__m256d,
) -> std::arch::x86_64::__m256d {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_pd();
    _mm256_and_pd(
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(x, zero),
            _mm256_cmp_pd::<_CMP_LT_OQ>(x, x_end),
        ),
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(y, zero),
            _mm256_cmp_pd::<_CMP_LT_OQ>(y, y_end),
        ),
    )
}
