use super::pyramid::linear_coeffs;
use super::*;

/// The compiled stump programs must decide exactly as the generic tree walk they replace.
#[test]
fn compiled_programs_match_the_generic_walk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png");
    let Ok(img) = GrayImage::open(&root, crate::GrayConversion::PilLuma) else {
        panic!("astronaut.png missing");
    };
    for name in ["haarcascade_frontalface_default", "lbpcascade_frontalface"] {
        let path = cascade_path(name);
        if !testkit::files_present("compiled_programs_match_the_generic_walk", &[&path]) {
            continue;
        }
        let fast = CascadeDetector::load(&path).expect("the installed cascade loads");
        assert!(fast.all_stumps, "{name}");
        let mut generic = fast.clone();
        generic.all_stumps = false;
        let p = DetectParams::default();
        let (a, b) = (fast.detect(&img, &p), generic.detect(&img, &p));
        assert!(!a.is_empty(), "{name}");
        assert_eq!(a, b, "{name}");
    }
}

/// The horizontal-then-vertical formulation of OpenCV's `resize_bitExact` (the code before
/// the vertical-first rewrite), kept as the reference it must equal.
fn resize_reference(img: &GrayImage, dw: usize, dh: usize) -> Vec<u8> {
    let (sw, sh) = (img.width(), img.height());
    let src = img.data();
    let mut out = vec![0u8; dw * dh];
    let (xo, xc, x0, x1) = linear_coeffs(sw, dw);
    let (yo, yc, y0, y1) = linear_coeffs(sh, dh);
    let hline = |row: usize, buf: &mut [i64]| {
        let r = &src[row * sw..(row + 1) * sw];
        for (d, b) in buf.iter_mut().enumerate() {
            *b = if d < x0 {
                (r[0] as i64) << 8
            } else if d >= x1 {
                (r[xo[dw - 1]] as i64) << 8
            } else {
                (256 - xc[d]) * r[xo[d]] as i64 + xc[d] * r[xo[d] + 1] as i64
            };
        }
    };
    let mut r0 = vec![0i64; dw];
    let mut r1 = vec![0i64; dw];
    let mut cached = (usize::MAX, usize::MAX);
    for y in 0..dh {
        let dst = &mut out[y * dw..(y + 1) * dw];
        if y < y0 || y >= y1 {
            let row = if y < y0 { 0 } else { sh - 1 };
            hline(row, &mut r0);
            cached = (usize::MAX, usize::MAX);
            for (o, v) in dst.iter_mut().zip(&r0) {
                *o = ((v + 128) >> 8) as u8;
            }
        } else {
            let (a, b) = (yo[y], yo[y] + 1);
            if cached != (a, b) {
                if cached.1 == a {
                    std::mem::swap(&mut r0, &mut r1);
                } else {
                    hline(a, &mut r0);
                }
                hline(b, &mut r1);
                cached = (a, b);
            }
            let c = yc[y];
            for ((o, p), q) in dst.iter_mut().zip(&r0).zip(&r1) {
                *o = (((256 - c) * p + c * q + (1 << 15)) >> 16) as u8;
            }
        }
    }
    out
}

/// The vertical-first resize equals the horizontal-first one on random images, for down-
/// and up-scales, odd sizes, one-pixel sources and the identity.
#[test]
fn resize_vertical_first_equals_horizontal_first() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let one = GrayImage::new(3, 3, vec![7; 9]).expect("3x3");
    for (dw, dh) in [(0, 0), (0, 5), (5, 0)] {
        let mut out = vec![1];
        resize_linear_exact(&one, dw, dh, &mut out);
        assert!(out.is_empty(), "an empty output size gives an empty plane");
    }
    let sizes = [
        (1, 1),
        (1, 7),
        (7, 1),
        (2, 3),
        (24, 24),
        (31, 17),
        (256, 256),
        (97, 203),
    ];
    for &(sw, sh) in &sizes {
        let data: Vec<u8> = (0..sw * sh).map(|_| next() as u8).collect();
        let img = GrayImage::new(sw, sh, data).expect("sizes match");
        for &(dw, dh) in sizes.iter().chain(&[(90, 90), (35, 61), (3, 2), (640, 5)]) {
            if dw * 2 == sw && dh * 2 == sh {
                continue; // the INTER_AREA path, unchanged
            }
            let mut fast = Vec::new();
            resize_linear_exact(&img, dw, dh, &mut fast);
            let expected = if (dw, dh) == (sw, sh) {
                img.data().to_vec()
            } else {
                resize_reference(&img, dw, dh)
            };
            assert_eq!(fast, expected, "{sw}x{sh} -> {dw}x{dh}");
        }
    }
}

/// A xorshift64 stream: reproducible random test inputs without a dependency.
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// A grey image of `w`×`h` cut from `img` at (`x0`, `y0`), wrapping around its edges.
fn cut(img: &GrayImage, x0: usize, y0: usize, w: usize, h: usize) -> GrayImage {
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = ((x0 + x) % img.width(), (y0 + y) % img.height());
            data.push(img.data()[sy * img.width() + sx]);
        }
    }
    GrayImage::new(w, h, data).expect("sizes match")
}

/// The AVX2 LBP scan must accept exactly the windows of the window-by-window scan, in the same
/// order, and both those of the generic tree walk: on step-1 and step-2 levels, and on widths
/// that leave partial batches of every length at the end of a row.
#[test]
fn vector_lbp_scan_accepts_the_windows_of_the_scalar_scan() {
    vector_scan_accepts_the_windows_of_the_scalar_scan(
        "vector_lbp_scan_accepts_the_windows_of_the_scalar_scan",
        &["lbpcascade_frontalface", "lbpcascade_frontalface_improved"],
    );
}

/// The same for the AVX2 HAAR scan of the all-stump HAAR cascades (variance normalisation per
/// lane, windows without one skipped but not counted as stage-0 rejections).
#[test]
fn vector_haar_scan_accepts_the_windows_of_the_scalar_scan() {
    vector_scan_accepts_the_windows_of_the_scalar_scan(
        "vector_haar_scan_accepts_the_windows_of_the_scalar_scan",
        &[
            "haarcascade_frontalface_default",
            "haarcascade_frontalface_alt",
        ],
    );
}

fn vector_scan_accepts_the_windows_of_the_scalar_scan(test: &str, cascades: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png");
    let Ok(img) = GrayImage::open(&root, crate::GrayConversion::PilLuma) else {
        panic!("astronaut.png missing");
    };
    if !crate::lanes::avx2_or_skip(test) {
        return;
    }
    for &name in cascades {
        let path = cascade_path(name);
        if !testkit::files_present(test, &[&path]) {
            continue;
        }
        let vector = CascadeDetector::load(&path).expect("the installed cascade loads");
        assert!(vector.all_stumps, "{name}");
        // Forced on: under FER_SIMD=off the cascade loads scalar, and this test still compares.
        let mut vector = vector;
        vector.vector_scan = true;
        let mut scalar = vector.clone();
        scalar.vector_scan = false;
        let mut generic = scalar.clone();
        generic.all_stumps = false;
        let mut hits = 0;
        let images = [
            img.clone(),
            cut(&img, 90, 10, 201, 177),
            cut(&img, 101, 33, 163, 150),
            cut(&img, 7, 300, 97, 61),
            cut(&img, 130, 40, 130, 130),
        ];
        for (k, im) in images.iter().enumerate() {
            for p in [
                DetectParams::default(),
                DetectParams {
                    scale_factor: 1.05,
                    min_size: (1, 1),
                    ..DetectParams::default()
                },
            ] {
                let v = vector.candidates(im, &p);
                assert_eq!(v, scalar.candidates(im, &p), "{name}, image {k}, {p:?}");
                assert_eq!(v, generic.candidates(im, &p), "{name}, image {k}, {p:?}");
                hits += v.len();
            }
        }
        assert!(
            hits > 0,
            "{name}: no window accepted anywhere, the test tests nothing"
        );
    }
}

/// LBP block sums come from an i32 integral image that wraps on large images; the code must be
/// that of the true block sums whatever the corners' wrapped values.
#[test]
fn lbp_code_is_exact_on_wrapped_integrals() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        // True block sums up to 255 · 2²³ (a block of 8 M pixels), and arbitrary wrapped
        // contributions from above and left of the grid.
        let mut blocks = [[0i64; 3]; 3];
        for b in blocks.iter_mut().flatten() {
            *b = (next() % (255 << 23)) as i64;
            if next().is_multiple_of(4) {
                *b = blocks_equal_value(&mut next);
            }
        }
        let (above, left) = ([0; 4].map(|_| next() as i32), [0; 4].map(|_| next() as i32));
        let mut corners = [0i32; 16];
        for r in 0..4 {
            for c in 0..4 {
                let inside: i64 = (0..r)
                    .flat_map(|i| (0..c).map(move |j| (i, j)))
                    .map(|(i, j)| blocks[i][j])
                    .sum();
                corners[r * 4 + c] = above[r].wrapping_add(left[c]).wrapping_add(inside as i32);
            }
        }
        let centre = blocks[1][1];
        let neighbours = [
            (0, 0),
            (1, 0),
            (2, 0),
            (2, 1),
            (2, 2),
            (1, 2),
            (0, 2),
            (0, 1),
        ];
        let expected = neighbours.iter().fold(0usize, |code, &(bx, by)| {
            code << 1 | (blocks[by][bx] >= centre) as usize
        });
        assert_eq!(lbp_code(&corners), expected, "{blocks:?}");
    }
}

/// Ties between neighbour and centre must be exercised: a small set of values.
fn blocks_equal_value(next: &mut impl FnMut() -> u64) -> i64 {
    [0, 1, 1000, 255 << 20][(next() % 4) as usize]
}
