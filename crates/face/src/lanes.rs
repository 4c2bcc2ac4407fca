//! What the AVX2 paths share (crop sampling, landmark features and leaf sums, the LBP window
//! scan): the CPU check, the `FER_SIMD` kill switch and the in-image test of four points.

use std::sync::OnceLock;

/// The environment variable that switches every vector path off: `FER_SIMD=off` (or `0`,
/// `false`, `scalar`) forces the scalar code, which gives the same bytes and points. Read once,
/// when a path first asks. Like polars' `POLARS_DISABLE_AVX512`: to test the scalar paths on a CPU
/// that has AVX2, and to rule the vector code out when hunting a difference.
pub const SIMD_ENV: &str = "FER_SIMD";

/// Whether this CPU has AVX2 (false off x86-64), whatever `FER_SIMD` says. Tests that compare the
/// vector path with the scalar one use this to force the vector path on.
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

/// Whether `value` (of `FER_SIMD`) switches the vector paths off.
fn switched_off(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "off" | "0" | "false" | "no" | "scalar"
    )
}

/// Whether the vector paths run: the CPU has AVX2 and `FER_SIMD` does not switch them off.
/// Every path that has an AVX2 variant decides through this one function.
pub fn simd_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let off = std::env::var(SIMD_ENV).is_ok_and(|v| switched_off(&v));
        cpu_has_avx2() && !off
    })
}

/// One line for `prep detect`, `train env` and run records: which paths run and why.
pub fn simd_description() -> String {
    let var = std::env::var(SIMD_ENV).ok();
    match (cpu_has_avx2(), simd_enabled()) {
        (true, true) => "AVX2".to_string(),
        (true, false) => format!("scalar ({SIMD_ENV}={})", var.unwrap_or_default()),
        (false, _) => "scalar (no AVX2 on this CPU)".to_string(),
    }
}

/// Whether a test comparing the AVX2 paths with the scalar ones can run: on a CPU without AVX2
/// it prints a "skipped" line (never a failure: no set-up gives a CPU instructions it lacks).
#[cfg(test)]
pub(crate) fn avx2_or_skip(test: &str) -> bool {
    if cpu_has_avx2() {
        return true;
    }
    testkit::not_applicable(
        test,
        "this CPU has no AVX2, so there is no vector path to compare",
    );
    false
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

#[cfg(test)]
mod tests {
    #[test]
    fn simd_switch_values() {
        for v in ["off", "OFF", " 0", "false", "no", "scalar"] {
            assert!(super::switched_off(v), "{v}");
        }
        for v in ["on", "1", "avx2", ""] {
            assert!(!super::switched_off(v), "{v}");
        }
    }
}
