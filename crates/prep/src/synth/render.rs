//! The base face, seeded subjects and the rendering of one frame.

use super::*;
use face::GrayImage;
use shard::KeyedRng;

/// The base face: image, its 68 landmarks, and its own frame (eye midpoint, inter-ocular
/// distance, eye-line angle).
#[derive(Debug, Clone)]
pub struct BaseFace {
    /// Grey image.
    pub image: GrayImage,
    /// 68 landmarks in image pixels.
    pub landmarks: Vec<[f64; 2]>,
    /// Midpoint of the eye centres.
    pub eye_mid: [f64; 2],
    /// Inter-ocular distance (between eye centres).
    pub iod: f64,
    /// Angle of the eye line.
    pub angle: f64,
}

impl BaseFace {
    /// From an image and its landmarks.
    pub fn new(image: GrayImage, landmarks: &[[f32; 2]]) -> BaseFace {
        let lm: Vec<[f64; 2]> = landmarks
            .iter()
            .map(|p| [p[0] as f64, p[1] as f64])
            .collect();
        let (l, r) = eye_centres(&lm);
        BaseFace {
            image,
            eye_mid: [(l[0] + r[0]) / 2.0, (l[1] + r[1]) / 2.0],
            iod: ((r[0] - l[0]).powi(2) + (r[1] - l[1]).powi(2)).sqrt(),
            angle: (r[1] - l[1]).atan2(r[0] - l[0]),
            landmarks: lm,
        }
    }
}

/// Centres of points 36–41 and 42–47.
pub fn eye_centres(lm: &[[f64; 2]]) -> ([f64; 2], [f64; 2]) {
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        let (sx, sy) = r.fold((0.0, 0.0), |a, i| (a.0 + lm[i][0], a.1 + lm[i][1]));
        [sx / n, sy / n]
    };
    (mean(36..42), mean(42..48))
}

/// A synthetic subject: identity morph, pose and photometry, all from one seed.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Per-landmark identity offsets (face units).
    pub identity: [[f64; 2]; 68],
    /// Mirror the face.
    pub mirror: bool,
    /// Extra scale, rotation (radians) and shift (fraction of the canvas).
    pub scale: f64,
    /// Rotation of the face on the canvas.
    pub angle: f64,
    /// Shift of the face on the canvas (fractions of width, height).
    pub shift: [f64; 2],
    /// Contrast, brightness (grey levels), gamma.
    pub contrast: f64,
    /// Additive brightness.
    pub brightness: f64,
    /// Gamma.
    pub gamma: f64,
    /// Noise standard deviation (grey levels).
    pub noise: f64,
    /// Seed of the per-frame noise.
    pub seed: u64,
}

impl Subject {
    /// Subject `index` of the seed `seed`.
    pub fn new(seed: u64, index: u64) -> Subject {
        let mut r = KeyedRng::in_domain(KeyedRng::SYNTH, &[seed, index, 0x5b]);
        let mut id = [[0.0f64; 2]; 68];
        let eye_spacing = r.range(-0.06, 0.06);
        let brow_height = r.range(-0.05, 0.05);
        let nose_length = r.range(-0.05, 0.05);
        let mouth_width = r.range(-0.07, 0.07);
        let jaw_width = r.range(-0.08, 0.08);
        let chin_drop = r.range(-0.08, 0.08);
        for (i, p) in id.iter_mut().enumerate() {
            let side = |left: bool| if left { -1.0 } else { 1.0 };
            match i {
                36..=41 => p[0] += side(true) * eye_spacing,
                42..=47 => p[0] += side(false) * eye_spacing,
                17..=26 => p[1] -= brow_height,
                30..=35 => p[1] += nose_length,
                48 | 60 => p[0] -= mouth_width,
                54 | 64 => p[0] += mouth_width,
                0..=16 => {
                    let k = (i as f64 - 8.0) / 8.0;
                    p[0] += k * jaw_width;
                    p[1] += (1.0 - k.abs()) * chin_drop;
                }
                _ => {}
            }
            p[0] += 0.01 * r.normal();
            p[1] += 0.01 * r.normal();
        }
        Subject {
            identity: id,
            mirror: r.uniform() < 0.5,
            scale: r.range(0.9, 1.1),
            angle: r.range(-6.0, 6.0).to_radians(),
            shift: [r.range(-0.04, 0.04), r.range(-0.04, 0.04)],
            contrast: r.range(0.8, 1.2),
            brightness: r.range(-20.0, 20.0),
            gamma: r.range(0.8, 1.25),
            noise: r.range(1.5, 4.0),
            seed: KeyedRng::in_domain(KeyedRng::SYNTH, &[seed, index, 0x0_a15e]).state(),
        }
    }
}

/// Where and how big the face sits on a canvas.
#[derive(Debug, Clone, Copy)]
pub struct Canvas {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Eye midpoint (fractions of width and height).
    pub eye_mid: [f64; 2],
    /// Inter-ocular distance in canvas pixels.
    pub iod: f64,
    /// Background grey.
    pub fill: u8,
}

/// One rendered frame with its true landmarks.
pub struct Frame {
    /// The image.
    pub image: GrayImage,
    /// True landmarks in canvas pixels, semantically indexed (mirrored faces re-indexed).
    pub landmarks: Vec<[f64; 2]>,
}

/// Renders `subject` showing `expr` at `intensity` (0 neutral … 1 peak) on `canvas`.
/// `frame_key` varies the sensor noise between frames.
pub fn render(
    base: &BaseFace,
    subject: &Subject,
    expr: &str,
    intensity: f64,
    canvas: &Canvas,
    frame_key: u64,
) -> Frame {
    let off = expression_offsets(expr);
    // Face frame → base image: rotate by the base angle, scale by its IOD.
    let (c, s) = (base.angle.cos(), base.angle.sin());
    let to_base = |d: [f64; 2]| {
        [
            base.iod * (c * d[0] - s * d[1]),
            base.iod * (s * d[0] + c * d[1]),
        ]
    };
    let moved: Vec<[f64; 2]> = (0..68)
        .map(|i| {
            let d = [
                subject.identity[i][0] + intensity * off[i][0],
                subject.identity[i][1] + intensity * off[i][1],
            ];
            let v = to_base(d);
            [base.landmarks[i][0] + v[0], base.landmarks[i][1] + v[1]]
        })
        .collect();
    let scale = canvas.iod * subject.scale / base.iod;
    let to_mid = [
        canvas.width as f64 * (canvas.eye_mid[0] + subject.shift[0]),
        canvas.height as f64 * (canvas.eye_mid[1] + subject.shift[1]),
    ];
    // Level the base face's eyes, then the subject's own tilt.
    let sim = Similarity::new(
        base.eye_mid,
        to_mid,
        scale,
        subject.angle - base.angle,
        subject.mirror,
    );
    let inv = sim.inverse();
    // Source points: landmarks, a ring of fixed points around the face, the canvas border.
    let mut src: Vec<[f64; 2]> = base.landmarks.clone();
    let mut dst: Vec<[f64; 2]> = moved.iter().map(|p| sim.apply(*p)).collect();
    let centre = base.landmarks[30];
    let radius = 1.9 * base.iod;
    for k in 0..16 {
        let a = k as f64 * std::f64::consts::PI / 8.0;
        let p = [
            centre[0] + radius * a.cos(),
            centre[1] + 1.15 * radius * a.sin(),
        ];
        src.push(p);
        dst.push(sim.apply(p));
    }
    let (w, h) = (canvas.width as f64 - 1.0, canvas.height as f64 - 1.0);
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        for q in [[f * w, 0.0], [f * w, h], [0.0, f * h], [w, f * h]] {
            dst.push(q);
            src.push(inv.apply(q));
        }
    }
    let tris = delaunay(&dst);
    let mut img = warp_piecewise(
        &base.image,
        &src,
        &dst,
        &tris,
        canvas.width,
        canvas.height,
        canvas.fill,
    );
    let mut r = KeyedRng::in_domain(KeyedRng::SYNTH, &[subject.seed, frame_key]);
    for v in img.data_mut() {
        let x = *v as f64 / 255.0;
        let y = 255.0 * x.powf(subject.gamma) * subject.contrast
            + subject.brightness
            + subject.noise * r.normal();
        *v = y.round().clamp(0.0, 255.0) as u8;
    }
    let mi = mirror_index();
    let landmarks = (0..68)
        .map(|i| dst[if subject.mirror { mi[i] } else { i }])
        .collect();
    Frame {
        image: img,
        landmarks,
    }
}
