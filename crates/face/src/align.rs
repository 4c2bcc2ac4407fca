//! Eye-level alignment and the MGLN face and part crops (`docs/specs/mgln.md`, "Preprocessing").
//!
//! Every crop is one bilinear resampling of the source image through an affine map (rotation,
//! scale, shift), so the aligned face is not resampled twice. Samples that fall outside the image
//! take the nearest edge pixel and the crop is reported as padded; nothing here can panic on a
//! box that leaves the image.

use crate::GrayImage;
use serde::{Deserialize, Serialize};

/// Output size of a crop, (height, width) as in the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropSize {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Which image the part crops are cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PartFrame {
    /// The unrotated image, as the authors' code does (default).
    #[default]
    Original,
    /// The eye-level aligned image.
    Aligned,
}

/// Crop geometry; defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropConfig {
    /// Face crop size (default 128×128).
    pub face: CropSize,
    /// Eyes and brows crop, points 17–26 and 36–47 (default 48×128).
    pub eyes: CropSize,
    /// Nose crop, points 27–35 (default 64×32).
    pub nose: CropSize,
    /// Mouth crop, points 48–67 (default 32×64).
    pub mouth: CropSize,
    /// Pixels added on each side of a part's landmark box (default 5).
    pub part_margin: f64,
    /// Fraction of the face box added on each side of the face crop (default 0: the paper's tight box).
    pub face_margin: f64,
    /// Rotate so that the eyes are level before cropping the face (default true).
    pub align: bool,
    /// Image the parts are cut from (default `original`).
    pub part_frame: PartFrame,
}

impl Default for CropConfig {
    fn default() -> Self {
        CropConfig {
            face: CropSize {
                height: 128,
                width: 128,
            },
            eyes: CropSize {
                height: 48,
                width: 128,
            },
            nose: CropSize {
                height: 64,
                width: 32,
            },
            mouth: CropSize {
                height: 32,
                width: 64,
            },
            part_margin: 5.0,
            face_margin: 0.0,
            align: true,
            part_frame: PartFrame::Original,
        }
    }
}

/// The four crops of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceCrops {
    /// Aligned face.
    pub face: GrayImage,
    /// Eyes and brows.
    pub eyes: GrayImage,
    /// Nose.
    pub nose: GrayImage,
    /// Mouth.
    pub mouth: GrayImage,
    /// Rotation applied to level the eyes, degrees (counter-clockwise positive in image coordinates).
    pub angle_deg: f64,
    /// True when some crop reached outside the image and was edge-padded.
    pub padded: bool,
}

/// Source-image affine map of output pixels: `src = [a b c; d e f] · [u v 1]`.
#[derive(Debug, Clone, Copy)]
struct Affine([f64; 6]);

impl Affine {
    #[inline]
    fn apply(&self, u: f64, v: f64) -> (f64, f64) {
        let m = &self.0;
        (m[0] * u + m[1] * v + m[2], m[3] * u + m[4] * v + m[5])
    }
}

/// Samples `size` output pixels through `map` with bilinear interpolation and edge replication.
/// Returns the crop and whether any sample fell outside the image.
fn sample(img: &GrayImage, size: CropSize, map: Affine) -> (GrayImage, bool) {
    let (w, h) = (img.width(), img.height());
    let src = img.data();
    let mut out = vec![0u8; size.width * size.height];
    let mut padded = false;
    if out.is_empty() {
        // A zero-sized crop (a configuration error caught elsewhere): nothing to sample.
        return (GrayImage::filled(1, 1, 0), false);
    }
    let mut edge = |x: f64, y: f64| {
        let (value, outside) = edge_sample(src, w, h, x, y);
        padded |= outside;
        value
    };
    for (v, row) in out.chunks_exact_mut(size.width).enumerate() {
        // Interior pixels (most of a crop that only grazes the border) take the fast arithmetic,
        // which equals the clamped one there.
        sample_row(img, &map, v, row, &mut edge);
    }
    let img =
        GrayImage::new(size.width, size.height, out).unwrap_or_else(|_| GrayImage::filled(1, 1, 0));
    (img, padded)
}

/// Samples output row `v` into `row`: pixels whose source point is strictly inside the image
/// (0 ≤ x < width − 1, 0 ≤ y < height − 1) with [`interior_sample`]'s arithmetic, four at a
/// time with AVX2 where the CPU has it; any other pixel through `edge(x, y)`.
fn sample_row(
    img: &GrayImage,
    map: &Affine,
    v: usize,
    row: &mut [u8],
    edge: &mut impl FnMut(f64, f64) -> u8,
) {
    let (w, h) = (img.width(), img.height());
    if w < 2 || h < 2 {
        for (u, o) in row.iter_mut().enumerate() {
            let (x, y) = map.apply(u as f64, v as f64);
            *o = edge(x, y);
        }
        return;
    }
    let mut u = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::lanes::simd_enabled() {
        // SAFETY: the CPU has AVX2 (`simd_enabled` is false without it).
        u = unsafe { interior_row_avx2(img, map, v, row, edge) };
    }
    // The pixels the vector loop left: all of them without AVX2, else the row's tail.
    for (k, o) in row.iter_mut().enumerate().skip(u) {
        *o = scalar_pixel(img, map, k, v, edge);
    }
}

/// One output pixel, scalar: [`interior_sample`] when its point is strictly inside, else `edge`.
#[inline(always)]
fn scalar_pixel(
    img: &GrayImage,
    map: &Affine,
    u: usize,
    v: usize,
    edge: &mut impl FnMut(f64, f64) -> u8,
) -> u8 {
    let (xmax, ymax) = ((img.width() - 1) as f64, (img.height() - 1) as f64);
    let (x, y) = map.apply(u as f64, v as f64);
    if x >= 0.0 && y >= 0.0 && x < xmax && y < ymax {
        interior_sample(img.data(), img.width(), x, y)
    } else {
        edge(x, y)
    }
}

/// The vector part of [`sample_row`]: the row in groups of four pixels, a group whose four points
/// are all interior in AVX2 lanes, any other group pixel by pixel with [`scalar_pixel`]; returns
/// where the groups end (the caller does the tail). Each lane performs exactly the scalar
/// operations of [`interior_sample`] in the same order (no fused multiply-add), so the bytes are
/// identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn interior_row_avx2(
    img: &GrayImage,
    map: &Affine,
    v: usize,
    row: &mut [u8],
    edge: &mut impl FnMut(f64, f64) -> u8,
) -> usize {
    use std::arch::x86_64::*;
    let (w, h) = (img.width(), img.height());
    let src = img.data();
    let m = &map.0;
    let vv = _mm256_set1_pd(v as f64);
    // m[1]·v and m[4]·v are the same for the whole row.
    let (m0, m1v, m2) = (
        _mm256_set1_pd(m[0]),
        _mm256_mul_pd(_mm256_set1_pd(m[1]), vv),
        _mm256_set1_pd(m[2]),
    );
    let (m3, m4v, m5) = (
        _mm256_set1_pd(m[3]),
        _mm256_mul_pd(_mm256_set1_pd(m[4]), vv),
        _mm256_set1_pd(m[5]),
    );
    let (zero, one, c255, half) = (
        _mm256_setzero_pd(),
        _mm256_set1_pd(1.0),
        _mm256_set1_pd(255.0),
        _mm256_set1_pd(0.5),
    );
    let (xmax, ymax) = (
        _mm256_set1_pd((w - 1) as f64),
        _mm256_set1_pd((h - 1) as f64),
    );
    // The four source pixels of a lane are two 16-bit pairs: (x0, y0), (x0 + 1, y0) and the
    // same one row down. Each pair is read by a 32-bit gather (the two bytes after it are
    // ignored), so a gather may reach up to two bytes past the last pixel; groups whose lower
    // reads would do that (the image's last row) go pixel by pixel instead.
    if src.len() > i32::MAX as usize {
        // Indices would not fit the gathers' i32 lanes: all pixels go the scalar way.
        return 0;
    }
    let base = src.as_ptr().cast::<i32>();
    let last_read = _mm_set1_epi32(src.len() as i32 - 4);
    let (stride, byte) = (_mm_set1_epi32(w as i32), _mm_set1_epi32(0xff));
    let four = _mm256_set1_pd(4.0);
    // u as f64 for lanes u..u+4, stepped by adding 4.0 (exact for any row length).
    let mut uu = _mm256_set_pd(3.0, 2.0, 1.0, 0.0);
    let mut u = 0;
    while u + 4 <= row.len() {
        // (m0·u + m1·v) + m2, associated as the scalar `Affine::apply`.
        let x = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(m0, uu), m1v), m2);
        let y = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(m3, uu), m4v), m5);
        uu = _mm256_add_pd(uu, four);
        let inside = crate::lanes::inside_box(x, y, xmax, ymax);
        let (xi, yi) = (_mm256_cvttpd_epi32(x), _mm256_cvttpd_epi32(y));
        // In range for interior lanes: y0·w + x0 + w + 1 ≤ w·h − 1 < 2^31 (images are smaller).
        let top = _mm_add_epi32(_mm_mullo_epi32(yi, stride), xi);
        let bottom = _mm_add_epi32(top, stride);
        let overrun = _mm_movemask_epi8(_mm_cmpgt_epi32(bottom, last_read));
        if _mm256_movemask_pd(inside) != 0b1111 || overrun != 0 {
            for (k, o) in row.iter_mut().enumerate().skip(u).take(4) {
                *o = scalar_pixel(img, map, k, v, edge);
            }
            u += 4;
            continue;
        }
        let fx = _mm256_sub_pd(x, _mm256_cvtepi32_pd(xi));
        let fy = _mm256_sub_pd(y, _mm256_cvtepi32_pd(yi));
        // SAFETY: every lane reads 4 bytes at an index ≥ 0 (interior) and ≤ len − 4 (checked).
        let (t, b) = unsafe {
            (
                _mm_i32gather_epi32::<1>(base, top),
                _mm_i32gather_epi32::<1>(base, bottom),
            )
        };
        let p00 = _mm256_cvtepi32_pd(_mm_and_si128(t, byte));
        let p01 = _mm256_cvtepi32_pd(_mm_and_si128(_mm_srli_epi32::<8>(t), byte));
        let p10 = _mm256_cvtepi32_pd(_mm_and_si128(b, byte));
        let p11 = _mm256_cvtepi32_pd(_mm_and_si128(_mm_srli_epi32::<8>(b), byte));
        let omfx = _mm256_sub_pd(one, fx);
        let top = _mm256_add_pd(_mm256_mul_pd(p00, omfx), _mm256_mul_pd(p01, fx));
        let bot = _mm256_add_pd(_mm256_mul_pd(p10, omfx), _mm256_mul_pd(p11, fx));
        let val = _mm256_add_pd(
            _mm256_mul_pd(top, _mm256_sub_pd(one, fy)),
            _mm256_mul_pd(bot, fy),
        );
        // clamp(0, 255) + 0.5; values are finite here, where max/min equal `f64::clamp`.
        let val = _mm256_add_pd(_mm256_min_pd(_mm256_max_pd(val, zero), c255), half);
        // Truncated to i32 in [0, 255], so the saturating packs keep every value.
        let r = _mm256_cvttpd_epi32(val);
        let packed = _mm_packus_epi16(_mm_packus_epi32(r, r), _mm_setzero_si128());
        row[u..u + 4].copy_from_slice(&_mm_cvtsi128_si32(packed).to_le_bytes());
        u += 4;
    }
    u
}

/// A sample whose point may lie outside the image: clamped to it (edge replication). Returns the
/// value and whether the point is more than half a pixel outside (the crop is then padded).
fn edge_sample(src: &[u8], w: usize, h: usize, x: f64, y: f64) -> (u8, bool) {
    let (w, h) = (w as i64, h as i64);
    let outside = !(x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5);
    let x = if x.is_finite() {
        x.clamp(0.0, (w - 1) as f64)
    } else {
        0.0
    };
    let y = if y.is_finite() {
        y.clamp(0.0, (h - 1) as f64)
    } else {
        0.0
    };
    // x and y are clamped to ≥ 0, where truncation is floor.
    let (x0, y0) = (x as i64, y as i64);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let p = |xx: i64, yy: i64| src[(yy * w + xx) as usize] as f64;
    let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
    let bot = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
    let value = ((top * (1.0 - fy) + bot * fy).clamp(0.0, 255.0) + 0.5) as u8;
    (value, outside)
}

/// Bilinear sample at (x, y) with 0 ≤ x < width − 1 and 0 ≤ y < height − 1 (callers check), so
/// truncation is floor and the right and lower neighbours exist.
#[inline(always)]
fn interior_sample(src: &[u8], w: usize, x: f64, y: f64) -> u8 {
    // Through i32: the same truncation for 0 ≤ x < 2^31, but one instruction, where `as usize`
    // needs a dozen on x86-64 to saturate (it was a fifth of the sampling time).
    let (x0, y0) = (x as i32 as usize, y as i32 as usize);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let i = y0 * w + x0;
    // One bounds check for the four neighbours.
    let q = &src[i..i + w + 2];
    let (p00, p01) = (q[0] as f64, q[1] as f64);
    let (p10, p11) = (q[w] as f64, q[w + 1] as f64);
    let top = p00 * (1.0 - fx) + p01 * fx;
    let bot = p10 * (1.0 - fx) + p11 * fx;
    // In [0.5, 255.5]: truncating through i32 equals the saturating `as u8`.
    ((top * (1.0 - fy) + bot * fy).clamp(0.0, 255.0) + 0.5) as i32 as u8
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    /// The sampling definition, written plainly: every point clamped to the image, scalar
    /// bilinear; returns the bytes and whether any point is more than half a pixel outside.
    fn reference_crop(img: &GrayImage, size: CropSize, map: &Affine) -> (Vec<u8>, bool) {
        let (w, h) = (img.width() as i64, img.height() as i64);
        let mut out = vec![0u8; size.width * size.height];
        let mut padded = false;
        for v in 0..size.height {
            for u in 0..size.width {
                let (x, y) = map.apply(u as f64, v as f64);
                padded |= !(x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5);
                let x = x.clamp(0.0, (w - 1) as f64);
                let y = y.clamp(0.0, (h - 1) as f64);
                let (x0, y0) = (x as i64, y as i64);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (fx, fy) = (x - x0 as f64, y - y0 as f64);
                let p = |xx: i64, yy: i64| img.data()[(yy * w + xx) as usize] as f64;
                let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
                let bot = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
                out[v * size.width + u] =
                    ((top * (1.0 - fy) + bot * fy).clamp(0.0, 255.0) + 0.5) as u8;
            }
        }
        (out, padded)
    }

    /// Crops whose every point is inside (the vector path throughout) give the reference bytes.
    #[test]
    fn interior_crop_equals_reference() {
        let img =
            GrayImage::new(64, 48, (0..64 * 48).map(|i| (i * 37 % 256) as u8).collect()).unwrap();
        let size = CropSize {
            height: 20,
            width: 30,
        };
        for k in 0..50 {
            let a = 0.02 * k as f64;
            let (c, s) = (a.cos() * 0.9, a.sin() * 0.9);
            let map = Affine([c, -s, 20.0 + 0.1 * k as f64, s, c, 10.0 + 0.07 * k as f64]);
            let (fast, padded) = sample(&img, size, map);
            assert!(!padded, "rotation {a}");
            let (want, _) = reference_crop(&img, size, &map);
            assert_eq!(fast.data(), &want[..], "rotation {a}");
        }
        // Interior points in the last interior row and columns, where a 32-bit read of the
        // lower pixel pair would run past the image (the vector loop must not read there).
        let corner = Affine([0.9, 0.0, 60.2, 0.0, 0.5, 46.1]);
        let small = CropSize {
            height: 2,
            width: 4,
        };
        let (fast, padded) = sample(&img, small, corner);
        assert!(!padded);
        assert_eq!(fast.data(), &reference_crop(&img, small, &corner).0[..]);
        // A map that leaves the image is padded.
        assert!(sample(&img, size, Affine([1.0, 0.0, -3.0, 0.0, 1.0, 0.0])).1);
    }

    /// Crops that straddle the border (FER2013's whole-frame faces): the general path, which
    /// samples interior pixels without clamps, gives the fully clamped loop's bytes and flags.
    #[test]
    fn border_crop_equals_fully_clamped_loop() {
        let img =
            GrayImage::new(48, 48, (0..48 * 48).map(|i| (i * 53 % 251) as u8).collect()).unwrap();
        let size = CropSize {
            height: 40,
            width: 56,
        };
        for k in 0..60 {
            let a = 0.03 * k as f64 - 0.9;
            let z = 0.5 + 0.02 * k as f64;
            let (c, s) = (a.cos() * z, a.sin() * z);
            let map = Affine([c, -s, -6.0 + 0.4 * k as f64, s, c, -4.0 + 0.3 * k as f64]);
            let (got, padded) = sample(&img, size, map);
            let (want, want_padded) = reference_crop(&img, size, &map);
            assert_eq!(got.data(), &want[..], "map {k}");
            assert_eq!(padded, want_padded, "map {k}");
        }
    }
}

/// Map from output pixels of a `size` crop to the axis-aligned box [x0, x1) × [y0, y1) of a frame
/// that is rotated by `angle` about `center` relative to the source image.
fn box_map(size: CropSize, bx: [f64; 4], angle: f64, center: (f64, f64)) -> Affine {
    let [x0, y0, x1, y1] = bx;
    let sx = (x1 - x0) / size.width as f64;
    let sy = (y1 - y0) / size.height as f64;
    // Output pixel centre (u + ½) maps to the box frame, then back through the rotation.
    let (c, s) = (angle.cos(), angle.sin());
    let (cx, cy) = center;
    // q = (x0 + (u+½)·sx − ½, y0 + (v+½)·sy − ½); p = R(angle)(q − c) + c.
    let qx0 = x0 + 0.5 * sx - 0.5 - cx;
    let qy0 = y0 + 0.5 * sy - 0.5 - cy;
    Affine([
        c * sx,
        -s * sy,
        c * qx0 - s * qy0 + cx,
        s * sx,
        c * sy,
        s * qx0 + c * qy0 + cy,
    ])
}

fn bbox(points: impl Iterator<Item = (f64, f64)>) -> [f64; 4] {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for (x, y) in points {
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x);
        b[3] = b[3].max(y);
    }
    b
}

/// Point groups of the 68-point scheme used by the part crops.
pub mod groups {
    /// Brows 17–26 and eyes 36–47.
    pub fn eyes() -> impl Iterator<Item = usize> {
        (17..27).chain(36..48)
    }
    /// Nose 27–35.
    pub fn nose() -> impl Iterator<Item = usize> {
        27..36
    }
    /// Mouth 48–67.
    pub fn mouth() -> impl Iterator<Item = usize> {
        48..68
    }
}

/// Cuts the aligned face and the three part crops from `img` given 68 landmarks in image pixels.
///
/// Returns `None` when fewer than 68 points are given or they are not finite.
pub fn crop_face_and_parts(
    img: &GrayImage,
    lm: &[[f32; 2]],
    cfg: &CropConfig,
) -> Option<FaceCrops> {
    if lm.len() < 68 || lm.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return None;
    }
    let pt = |i: usize| (lm[i][0] as f64, lm[i][1] as f64);
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        let (sx, sy) = r.map(pt).fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        (sx / n, sy / n)
    };
    let (le, re) = (mean(36..42), mean(42..48));
    let angle = if cfg.align {
        (re.1 - le.1).atan2(re.0 - le.0)
    } else {
        0.0
    };
    // Landmarks in the aligned frame: rotate by −angle about the left eye centre.
    let (c, s) = (angle.cos(), angle.sin());
    let to_aligned = |p: (f64, f64)| {
        let (dx, dy) = (p.0 - le.0, p.1 - le.1);
        (c * dx + s * dy + le.0, -s * dx + c * dy + le.1)
    };
    let aligned: Vec<(f64, f64)> = (0..68).map(|i| to_aligned(pt(i))).collect();

    // Face: x over points 17–66, y from the brows to halfway between point 57 and the chin (8).
    let fb = bbox((17..67).map(|i| aligned[i]));
    let bottom = (aligned[57].1 + aligned[8].1) / 2.0;
    let (mut x0, mut y0, mut x1, mut y1) = (fb[0], fb[1], fb[2] + 1.0, bottom + 1.0);
    let (mw, mh) = ((x1 - x0) * cfg.face_margin, (y1 - y0) * cfg.face_margin);
    x0 -= mw;
    x1 += mw;
    y0 -= mh;
    y1 += mh;
    if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
        return None;
    }
    let (face, p0) = sample(
        img,
        cfg.face,
        box_map(cfg.face, [x0, y0, x1, y1], angle, le),
    );

    let part = |idx: &mut dyn Iterator<Item = usize>, size: CropSize| {
        let (pts, ang): (Vec<(f64, f64)>, f64) = match cfg.part_frame {
            PartFrame::Original => (idx.map(pt).collect(), 0.0),
            PartFrame::Aligned => (idx.map(|i| aligned[i]).collect(), angle),
        };
        let b = bbox(pts.into_iter());
        let m = cfg.part_margin;
        sample(
            img,
            size,
            box_map(
                size,
                [b[0] - m, b[1] - m, b[2] + m + 1.0, b[3] + m + 1.0],
                ang,
                le,
            ),
        )
    };
    let (eyes, p1) = part(&mut groups::eyes(), cfg.eyes);
    let (nose, p2) = part(&mut groups::nose(), cfg.nose);
    let (mouth, p3) = part(&mut groups::mouth(), cfg.mouth);
    Some(FaceCrops {
        face,
        eyes,
        nose,
        mouth,
        angle_deg: angle.to_degrees(),
        padded: p0 || p1 || p2 || p3,
    })
}
