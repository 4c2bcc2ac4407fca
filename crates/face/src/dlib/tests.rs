use super::walk::floor_to_i64;
use crate::{FaceBox, GrayConversion, GrayImage, ShapePredictor};
use proptest::prelude::*;
use std::path::Path;

/// The AVX2 paths (eight features in lanes, gathers, floor in f64 lanes; one face's leaf sums
/// held in registers) must give the scalar path's landmarks bit for bit, also for boxes whose
/// feature points leave the image on every side (the outside test runs in the lanes).
#[test]
fn vector_features_give_the_scalar_landmarks() {
    if !crate::lanes::avx2_or_skip("vector_features_give_the_scalar_landmarks") {
        return;
    }
    let path = super::default_shape_model_path();
    if !testkit::files_present("vector_features_give_the_scalar_landmarks", &[&path]) {
        return;
    }
    let vector = ShapePredictor::load(&path).expect("the installed shape model loads");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png");
    let Ok(img) = GrayImage::open(&root, GrayConversion::PilLuma) else {
        panic!("astronaut.png missing");
    };
    // Forced on: under FER_SIMD=off the model loads scalar, and this test still compares.
    let mut vector = vector;
    vector.avx2 = true;
    let mut scalar = vector.clone();
    scalar.avx2 = false;
    let boxes = [
        FaceBox::ltrb(175, 76, 265, 166),
        FaceBox::ltrb(-60, -40, 40, 60),
        FaceBox::ltrb(450, 470, 560, 580),
        FaceBox::ltrb(-100, -100, 700, 700),
        FaceBox::ltrb(200, 100, 206, 106),
    ];
    for b in boxes {
        let (v, s) = (vector.predict(&img, b), scalar.predict(&img, b));
        assert_eq!(v.points, s.points, "{b:?}");
        let bits = |p: &[[f32; 2]]| p.iter().map(|q| q.map(f32::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(&v.precise), bits(&s.precise), "{b:?}");
    }
    let faces: Vec<_> = boxes.iter().map(|b| (&img, *b)).collect();
    let (v, s) = (vector.predict_batch(&faces), scalar.predict_batch(&faces));
    assert_eq!(v, s);
}

/// The packed split's integer threshold must send every possible pixel difference (−255 to
/// 255) the way dlib's f32 `difference > thresh` does: thresholds on, near and between
/// integers, beyond the difference range, ±0, infinities, NaN and 200,000 arbitrary bit
/// patterns (subnormals and NaN payloads included).
#[test]
fn integer_split_threshold_decides_as_the_float_test() {
    let mut thresholds = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        254.5,
        255.0,
        255.5,
        256.0,
        -255.0,
        -255.5,
        -256.0,
        -256.5,
        1e30,
        -1e30,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
    ];
    for k in -300..=300 {
        let v = k as f32;
        thresholds.extend([v, v.next_up(), v.next_down(), v + 0.25]);
    }
    let mut next = crate::cascade::tests::xorshift(0x2545_f491_4f6c_dd1d);
    thresholds.extend((0..200_000).map(|_| f32::from_bits(next() as u32)));
    for thresh in thresholds {
        let s = super::Split::new(2047, 1, thresh);
        assert_eq!((s.idx1(), s.idx2()), (2047, 1));
        for d in -255i32..=255 {
            assert_eq!(
                d > s.thresh(),
                d as f32 > thresh,
                "difference {d}, threshold {thresh:e} ({:#x})",
                thresh.to_bits()
            );
        }
    }
}

/// dlib's integer encoding, as the model file has it (for the hand-built models below).
fn dlib_int(out: &mut Vec<u8>, v: i64) {
    let bytes: Vec<u8> = v.unsigned_abs().to_le_bytes().into_iter().collect();
    let n = bytes.iter().rposition(|&b| b != 0).map_or(1, |k| k + 1);
    out.push(n as u8 | if v < 0 { 0x80 } else { 0 });
    out.extend_from_slice(&bytes[..n]);
}

/// A split naming feature 2,048 cannot be packed: the model is refused at that split's
/// offset, and 2,047 still gets past the split reader.
#[test]
fn split_feature_beyond_the_packed_range_is_refused_at_its_offset() {
    let model = |feature: i64| {
        let mut b = Vec::new();
        dlib_int(&mut b, 1); // version
        dlib_int(&mut b, -2); // initial shape: 2 rows, 1 column
        dlib_int(&mut b, -1);
        for _ in 0..2 {
            dlib_int(&mut b, 1); // mantissa 1, exponent -1: 0.5
            dlib_int(&mut b, -1);
        }
        dlib_int(&mut b, 1); // one cascade of one tree with one split
        dlib_int(&mut b, 1);
        dlib_int(&mut b, 1);
        let split_at = b.len();
        dlib_int(&mut b, feature);
        dlib_int(&mut b, 0);
        dlib_int(&mut b, 0);
        dlib_int(&mut b, 0);
        (b, split_at)
    };
    let (bytes, split_at) = model(2048);
    let msg = ShapePredictor::from_bytes(&bytes, Path::new("wide.dat"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2048") && msg.contains(&format!("byte {split_at}")),
        "{msg}"
    );
    let (bytes, _) = model(2047);
    let msg = ShapePredictor::from_bytes(&bytes, Path::new("ok.dat"))
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("2048"), "{msg}");
}

proptest! {
    #[test]
    fn floor_to_i64_equals_floor(v in -1e15f64..1e15) {
        prop_assert_eq!(floor_to_i64(v), v.floor() as i64);
    }
}

#[test]
fn pow2_is_exact() {
    for e in -1022..=1023 {
        assert_eq!(super::model::pow2(e), 2f64.powi(e), "2^{e}");
    }
    assert_eq!(super::model::pow2(-1074), f64::from_bits(1));
    assert_eq!(super::model::pow2(-1023), f64::from_bits(1 << 51));
    assert_eq!(super::model::pow2(-1100), 0.0);
    assert_eq!(super::model::pow2(1024), f64::INFINITY);
    assert_eq!(super::model::pow2(i32::MIN), 0.0);
    assert_eq!(super::model::pow2(i32::MAX), f64::INFINITY);
}

#[test]
fn floor_to_i64_edges() {
    for v in [-0.5, -1.0, -0.0, 0.0, 0.5, 1.0, -1.5, 2.999_999, -2.000_001] {
        assert_eq!(floor_to_i64(v), v.floor() as i64, "{v}");
    }
}

/// Regression (fuzzing, fuzz/regressions/dlib_model/point_far_below_i64_overflows): beyond
/// i64's range the result saturates like `as` instead of overflowing.
#[test]
fn floor_to_i64_saturates_out_of_range() {
    for v in [
        -1e30,
        -9.3e18,
        f64::NEG_INFINITY,
        1e30,
        f64::INFINITY,
        f64::NAN,
    ] {
        assert_eq!(floor_to_i64(v), v.floor() as i64, "{v}");
    }
}
