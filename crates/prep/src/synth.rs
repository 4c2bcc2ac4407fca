//! Synthetic expression datasets from one public-domain face (`prep synth`).
//!
//! The base face's 68 landmarks (found by our own predictor) are displaced by a small, documented,
//! FACS-inspired recipe per expression, scaled by an eased intensity from neutral (first frame) to
//! peak (last frame); the image follows through a piecewise-affine warp over a Delaunay
//! triangulation of the landmarks plus a ring of fixed points around the face and the canvas
//! border, so only the face moves. "Subjects" differ by a seeded identity morph of the geometry,
//! mirroring, a global similarity, brightness / contrast / gamma and sensor noise. Because the true
//! landmark positions of every frame are known, the generator also measures our detector on them.

use face::GrayImage;

/// Expressions in CK+ code order (1–7); 0 is neutral.
pub const EXPRESSIONS: [&str; 7] = [
    "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
];

/// Version of the generator's output; bump it whenever a recipe, the warp or a layout changes so
/// that `prep synth` regenerates instead of reusing older data.
pub const SYNTH_VERSION: u32 = 2;

/// Overall strength of the recipes below: 1.6 makes every peak expression plainly visible at
/// CK+ resolution while keeping the warp free of fold-overs.
pub const EXPRESSION_GAIN: f64 = 1.6;

/// Landmark displacement of one expression at full intensity, in inter-ocular units of the
/// face's own frame (x to the subject's left = image right, y down). Each recipe names the action
/// units it imitates.
pub fn expression_offsets(expr: &str) -> [[f64; 2]; 68] {
    let mut d = [[0.0f64; 2]; 68];
    let mut add = |idx: &[usize], dx: f64, dy: f64| {
        for &i in idx {
            d[i][0] += EXPRESSION_GAIN * dx;
            d[i][1] += EXPRESSION_GAIN * dy;
        }
    };
    let brows: Vec<usize> = (17..27).collect();
    let inner_brows = [20, 21, 22, 23];
    let upper_lids = [37, 38, 43, 44];
    let lower_lids = [40, 41, 46, 47];
    let upper_lip = [49, 50, 51, 52, 53, 61, 62, 63];
    let lower_lip = [55, 56, 57, 58, 59, 65, 66, 67];
    let chin: Vec<usize> = (5..12).collect();
    match expr {
        // AU6 + AU12: lip corners up and out, cheeks raise the lower lids, mouth opens a little.
        "happy" => {
            add(&[48, 60], -0.10, -0.10);
            add(&[54, 64], 0.10, -0.10);
            add(&[49, 59], -0.04, -0.05);
            add(&[53, 55], 0.04, -0.05);
            add(&lower_lids, 0.0, -0.035);
            add(&lower_lip, 0.0, 0.04);
        }
        // AU1 + AU2 + AU5 + AU26: brows up, eyes wider, jaw dropped.
        "surprise" => {
            add(&brows, 0.0, -0.13);
            add(&upper_lids, 0.0, -0.05);
            add(&lower_lip, 0.0, 0.30);
            add(&chin, 0.0, 0.22);
            add(&[48, 60], 0.03, 0.08);
            add(&[54, 64], -0.03, 0.08);
            add(&upper_lip, 0.0, 0.02);
        }
        // AU4 + AU5 + AU7 + AU23/24: brows down and together, lids tightened, lips pressed.
        "anger" => {
            add(&brows, 0.0, 0.07);
            add(&[21, 20], 0.05, 0.03);
            add(&[22, 23], -0.05, 0.03);
            add(&lower_lids, 0.0, -0.03);
            add(&upper_lip, 0.0, 0.03);
            add(&lower_lip, 0.0, -0.04);
            add(&[48, 60], 0.04, 0.0);
            add(&[54, 64], -0.04, 0.0);
        }
        // AU1 + AU4 + AU15: inner brows up, lip corners down.
        "sadness" => {
            add(&inner_brows, 0.0, -0.08);
            add(&[21], 0.02, 0.0);
            add(&[22], -0.02, 0.0);
            add(&[48, 54, 60, 64], 0.0, 0.10);
            add(&[57, 66], 0.0, -0.02);
        }
        // AU9 + AU10: nose wrinkled, upper lip raised, brows lowered a little.
        "disgust" => {
            add(&upper_lip, 0.0, -0.09);
            add(&[31, 32, 33, 34, 35], 0.0, -0.05);
            add(&[48, 54], 0.0, -0.04);
            add(&brows, 0.0, 0.04);
            add(&lower_lids, 0.0, -0.03);
        }
        // AU1 + AU2 + AU4 + AU5 + AU20: brows up and together, eyes wide, lips stretched.
        "fear" => {
            add(&brows, 0.0, -0.08);
            add(&[21, 20], 0.04, 0.0);
            add(&[22, 23], -0.04, 0.0);
            add(&upper_lids, 0.0, -0.05);
            add(&[48, 60], -0.10, 0.04);
            add(&[54, 64], 0.10, 0.04);
            add(&lower_lip, 0.0, 0.08);
        }
        // AU14 on one side: one lip corner up and out.
        "contempt" => {
            add(&[54, 64], 0.07, -0.07);
            add(&[53, 55], 0.03, -0.03);
        }
        _ => {}
    }
    d
}

/// The 68-point index of each point's mirror image (left ↔ right).
pub fn mirror_index() -> [usize; 68] {
    let mut m: [usize; 68] = std::array::from_fn(|i| i);
    let pairs: &[(usize, usize)] = &[
        (0, 16),
        (1, 15),
        (2, 14),
        (3, 13),
        (4, 12),
        (5, 11),
        (6, 10),
        (7, 9),
        (17, 26),
        (18, 25),
        (19, 24),
        (20, 23),
        (21, 22),
        (31, 35),
        (32, 34),
        (36, 45),
        (37, 44),
        (38, 43),
        (39, 42),
        (40, 47),
        (41, 46),
        (48, 54),
        (49, 53),
        (50, 52),
        (55, 59),
        (56, 58),
        (60, 64),
        (61, 63),
        (65, 67),
    ];
    for &(a, b) in pairs {
        m[a] = b;
        m[b] = a;
    }
    m
}

/// Smoothstep easing of a sequence position in [0, 1].
pub fn ease(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Delaunay triangulation (Bowyer–Watson) of `pts`; triangles as index triples.
pub fn delaunay(pts: &[[f64; 2]]) -> Vec<[usize; 3]> {
    let n = pts.len();
    if n < 3 {
        return Vec::new();
    }
    let (mut minx, mut miny, mut maxx, mut maxy) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in pts {
        minx = minx.min(p[0]);
        miny = miny.min(p[1]);
        maxx = maxx.max(p[0]);
        maxy = maxy.max(p[1]);
    }
    let d = (maxx - minx).max(maxy - miny).max(1.0) * 20.0;
    let (cx, cy) = ((minx + maxx) / 2.0, (miny + maxy) / 2.0);
    let mut all: Vec<[f64; 2]> = pts.to_vec();
    all.push([cx - d, cy - d]);
    all.push([cx + d, cy - d]);
    all.push([cx, cy + d]);
    let mut tris: Vec<[usize; 3]> = vec![[n, n + 1, n + 2]];
    let circum = |t: &[usize; 3], all: &[[f64; 2]]| {
        let (a, b, c) = (all[t[0]], all[t[1]], all[t[2]]);
        let dd = 2.0 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]));
        if dd.abs() < 1e-12 {
            return ([0.0, 0.0], f64::INFINITY);
        }
        let sq = |p: [f64; 2]| p[0] * p[0] + p[1] * p[1];
        let ux = (sq(a) * (b[1] - c[1]) + sq(b) * (c[1] - a[1]) + sq(c) * (a[1] - b[1])) / dd;
        let uy = (sq(a) * (c[0] - b[0]) + sq(b) * (a[0] - c[0]) + sq(c) * (b[0] - a[0])) / dd;
        ([ux, uy], (a[0] - ux).powi(2) + (a[1] - uy).powi(2))
    };
    for i in 0..n {
        let p = all[i];
        let mut bad = Vec::new();
        for (k, t) in tris.iter().enumerate() {
            let (c, r2) = circum(t, &all);
            if (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) < r2 {
                bad.push(k);
            }
        }
        let mut edges: Vec<[usize; 2]> = Vec::new();
        for &k in &bad {
            let t = tris[k];
            for e in [[t[0], t[1]], [t[1], t[2]], [t[2], t[0]]] {
                let shared = bad.iter().any(|&o| {
                    o != k && {
                        let u = tris[o];
                        u.contains(&e[0]) && u.contains(&e[1])
                    }
                });
                if !shared {
                    edges.push(e);
                }
            }
        }
        for &k in bad.iter().rev() {
            tris.swap_remove(k);
        }
        for e in edges {
            tris.push([e[0], e[1], i]);
        }
    }
    tris.retain(|t| t.iter().all(|&v| v < n));
    tris
}

/// Warps `src` so that `src_pts[i]` lands on `dst_pts[i]`, affinely inside each triangle of
/// `tris` (indices into both point lists), into a `w`×`h` image. Pixels outside every triangle and
/// samples outside the source take `fill`.
pub fn warp_piecewise(
    src: &GrayImage,
    src_pts: &[[f64; 2]],
    dst_pts: &[[f64; 2]],
    tris: &[[usize; 3]],
    w: usize,
    h: usize,
    fill: u8,
) -> GrayImage {
    let mut out = GrayImage::filled(w, h, fill);
    let (sw, sh) = (src.width() as f64, src.height() as f64);
    for t in tris {
        let (a, b, c) = (dst_pts[t[0]], dst_pts[t[1]], dst_pts[t[2]]);
        let det = (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1]);
        if det.abs() < 1e-9 {
            continue;
        }
        let (sa, sb, sc) = (src_pts[t[0]], src_pts[t[1]], src_pts[t[2]]);
        let x0 = a[0].min(b[0]).min(c[0]).floor().max(0.0) as usize;
        let x1 = (a[0].max(b[0]).max(c[0]).ceil() as i64).clamp(0, w as i64 - 1) as usize;
        let y0 = a[1].min(b[1]).min(c[1]).floor().max(0.0) as usize;
        let y1 = (a[1].max(b[1]).max(c[1]).ceil() as i64).clamp(0, h as i64 - 1) as usize;
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (px, py) = (x as f64, y as f64);
                let l1 = ((b[1] - c[1]) * (px - c[0]) + (c[0] - b[0]) * (py - c[1])) / det;
                let l2 = ((c[1] - a[1]) * (px - c[0]) + (a[0] - c[0]) * (py - c[1])) / det;
                let l3 = 1.0 - l1 - l2;
                let eps = -1e-9;
                if l1 < eps || l2 < eps || l3 < eps {
                    continue;
                }
                let sx = l1 * sa[0] + l2 * sb[0] + l3 * sc[0];
                let sy = l1 * sa[1] + l2 * sb[1] + l3 * sc[1];
                let v = if sx < 0.0 || sy < 0.0 || sx > sw - 1.0 || sy > sh - 1.0 {
                    fill
                } else {
                    let (ix, iy) = (sx as usize, sy as usize);
                    let (fx, fy) = (sx - ix as f64, sy - iy as f64);
                    let g = |xx: usize, yy: usize| {
                        src.at(xx.min(src.width() - 1), yy.min(src.height() - 1)) as f64
                    };
                    let top = g(ix, iy) * (1.0 - fx) + g(ix + 1, iy) * fx;
                    let bot = g(ix, iy + 1) * (1.0 - fx) + g(ix + 1, iy + 1) * fx;
                    (top * (1.0 - fy) + bot * fy + 0.5).clamp(0.0, 255.0) as u8
                };
                out.data_mut()[y * w + x] = v;
            }
        }
    }
    out
}

/// A 2-d similarity (scale·rotation, translation) with an optional mirror, p ↦ A p + t.
#[derive(Debug, Clone, Copy)]
pub struct Similarity {
    a: [[f64; 2]; 2],
    t: [f64; 2],
}

impl Similarity {
    /// Maps the base face's eye midpoint `from_mid` to `to_mid`, scales by `scale`, rotates by
    /// `angle` radians, mirrors x when asked.
    pub fn new(from_mid: [f64; 2], to_mid: [f64; 2], scale: f64, angle: f64, mirror: bool) -> Self {
        let (c, s) = (angle.cos() * scale, angle.sin() * scale);
        let m = if mirror { -1.0 } else { 1.0 };
        let a = [[c * m, -s], [s * m, c]];
        let t = [
            to_mid[0] - (a[0][0] * from_mid[0] + a[0][1] * from_mid[1]),
            to_mid[1] - (a[1][0] * from_mid[0] + a[1][1] * from_mid[1]),
        ];
        Similarity { a, t }
    }

    /// Applies the map.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a[0][0] * p[0] + self.a[0][1] * p[1] + self.t[0],
            self.a[1][0] * p[0] + self.a[1][1] * p[1] + self.t[1],
        ]
    }

    /// The inverse map.
    pub fn inverse(&self) -> Similarity {
        let [[a, b], [c, d]] = self.a;
        let det = a * d - b * c;
        let inv = [[d / det, -b / det], [-c / det, a / det]];
        let t = [
            -(inv[0][0] * self.t[0] + inv[0][1] * self.t[1]),
            -(inv[1][0] * self.t[0] + inv[1][1] * self.t[1]),
        ];
        Similarity { a: inv, t }
    }
}

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

/// SplitMix64 stream for the generator.
pub struct SynthRng(u64);

impl SynthRng {
    /// A stream for a tuple of keys.
    pub fn new(keys: &[u64]) -> SynthRng {
        let mut s = 0x0005_7e70_5eed_u64;
        for k in keys {
            s = Self::mix(s ^ Self::mix(*k));
        }
        SynthRng(s)
    }
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        (Self::mix(self.0) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [a, b).
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }
    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

impl Subject {
    /// Subject `index` of the seed `seed`.
    pub fn new(seed: u64, index: u64) -> Subject {
        let mut r = SynthRng::new(&[seed, index, 0x5b]);
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
            seed: SynthRng::new(&[seed, index, 0x0_a15e]).0,
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
    let mut r = SynthRng::new(&[subject.seed, frame_key]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delaunay_of_a_grid_covers_it() {
        let pts: Vec<[f64; 2]> = (0..16).map(|i| [(i % 4) as f64, (i / 4) as f64]).collect();
        let t = delaunay(&pts);
        // A 4×4 grid of points has 9 cells = 18 triangles; total area 9.
        assert_eq!(t.len(), 18);
        let area: f64 = t
            .iter()
            .map(|t| {
                let (a, b, c) = (pts[t[0]], pts[t[1]], pts[t[2]]);
                ((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])).abs() / 2.0
            })
            .sum();
        assert!((area - 9.0).abs() < 1e-9);
    }

    #[test]
    fn identity_warp_keeps_the_image() {
        let img = GrayImage::new(20, 10, (0..200).map(|i| (i % 251) as u8).collect()).unwrap();
        let pts = vec![[0.0, 0.0], [19.0, 0.0], [0.0, 9.0], [19.0, 9.0], [7.0, 4.0]];
        let tris = delaunay(&pts);
        let out = warp_piecewise(&img, &pts, &pts, &tris, 20, 10, 0);
        assert_eq!(out.data(), img.data());
    }

    #[test]
    fn mirror_index_is_an_involution() {
        let m = mirror_index();
        for i in 0..68 {
            assert_eq!(m[m[i]], i);
        }
        assert_eq!(m[36], 45);
        assert_eq!(m[30], 30);
    }

    #[test]
    fn similarity_inverse() {
        let s = Similarity::new([10.0, 20.0], [100.0, 50.0], 1.7, 0.3, true);
        let p = [3.0, -4.0];
        let q = s.inverse().apply(s.apply(p));
        assert!((q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9);
        assert_eq!(s.apply([10.0, 20.0]), [100.0, 50.0]);
    }
}

/// What `prep synth` writes and how.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Output root (`ckplus/`, `oulu/`, `fer2013/` are created under it).
    pub out: std::path::PathBuf,
    /// Number of subjects (default 20; folds = subject mod 10).
    pub subjects: usize,
    /// Seed (default 0).
    pub seed: u64,
    /// Frames per sequence, neutral to peak (default 6).
    pub frames: usize,
}

/// Landmark error of our pipeline on the generated faces, in inter-ocular units.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LandmarkCheck {
    /// Frames checked.
    pub frames: usize,
    /// Frames where a face was found.
    pub found: usize,
    /// Mean error over found frames (mean over the 68 points / true inter-ocular distance).
    pub mean: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Counts of a generation.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SynthReport {
    /// CK+ labelled sequences (plus one unlabelled per subject).
    pub ckplus_sequences: usize,
    /// CK+ frames written.
    pub ckplus_frames: usize,
    /// Oulu-CASIA sequences.
    pub oulu_sequences: usize,
    /// FER2013 rows.
    pub fer2013_rows: usize,
    /// Our detector and predictor on the CK+ peak frames.
    pub landmarks: LandmarkCheck,
}

fn io_err(p: &std::path::Path, e: std::io::Error) -> crate::PrepError {
    crate::PrepError::Io {
        path: p.to_path_buf(),
        cause: e,
    }
}

fn write_file(p: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    std::fs::write(p, bytes).map_err(|e| io_err(p, e))
}

fn encode(img: &GrayImage, format: image::ImageFormat) -> Vec<u8> {
    let buf =
        image::GrayImage::from_raw(img.width() as u32, img.height() as u32, img.data().to_vec())
            .unwrap_or_default();
    let mut out = Vec::new();
    let _ = buf.write_to(&mut std::io::Cursor::new(&mut out), format);
    out
}

/// Oulu-CASIA folder names in label order with the authors' fold-list codes.
const OULU: [(&str, &str, u16); 6] = [
    ("Anger", "anger", 1),
    ("Disgust", "disgust", 3),
    ("Fear", "fear", 4),
    ("Happiness", "happy", 5),
    ("Sadness", "sadness", 6),
    ("Surprise", "surprise", 7),
];

/// FER2013 labels 0–6 and the expression that shows them ("" = neutral).
const FER: [&str; 7] = [
    "anger", "disgust", "fear", "happy", "sadness", "surprise", "",
];

/// Writes the three demo datasets and fold lists, and measures `faces` on the CK+ peak frames.
///
/// Errors: I/O under `out`.
pub fn generate(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
) -> crate::Result<SynthReport> {
    use rayon::prelude::*;
    let frames = opts.frames.max(2);
    let subjects: Vec<Subject> = (0..opts.subjects)
        .map(|i| Subject::new(opts.seed, i as u64))
        .collect();
    let mut report = SynthReport::default();
    let ck = opts.out.join("ckplus");
    let ck_canvas = Canvas {
        width: 640,
        height: 490,
        eye_mid: [0.5, 0.4],
        iod: 105.0,
        fill: 96,
    };
    // (subject, sequence, code) — code 0 = unlabelled neutral sequence.
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    for s in 0..subjects.len() {
        for (k, _) in EXPRESSIONS.iter().enumerate() {
            jobs.push((s, k + 1, k + 1));
        }
        jobs.push((s, EXPRESSIONS.len() + 1, 0));
    }
    let middle = ((frames - 1) as f64 * 0.5 + 0.5).floor() as usize + 1;
    // Per sequence: frames written, and (error, face found) of its peak frame.
    type SequenceChecks = (usize, Vec<(f64, bool)>);
    let results: Vec<crate::Result<SequenceChecks>> = jobs
        .par_iter()
        .map(|&(s, q, code)| {
            let subj = format!("S{:03}", 501 + s);
            let seq = format!("{q:03}");
            let expr = if code == 0 { "" } else { EXPRESSIONS[code - 1] };
            let n = if code == 0 { 3 } else { frames };
            let mut checks = Vec::new();
            for f in 1..=n {
                let t = ease((f - 1) as f64 / (n - 1) as f64);
                let fr = render(
                    base,
                    &subjects[s],
                    expr,
                    t,
                    &ck_canvas,
                    (q * 1000 + f) as u64,
                );
                let stem = format!("{subj}_{seq}_{f:08}");
                write_file(
                    &ck.join("cohn-kanade-images")
                        .join(&subj)
                        .join(&seq)
                        .join(format!("{stem}.png")),
                    &encode(&fr.image, image::ImageFormat::Png),
                )?;
                let lm: String = fr
                    .landmarks
                    .iter()
                    .map(|p| format!("   {:.7e}   {:.7e}\n", p[0], p[1]))
                    .collect();
                write_file(
                    &ck.join("Landmarks")
                        .join(&subj)
                        .join(&seq)
                        .join(format!("{stem}_landmarks.txt")),
                    lm.as_bytes(),
                )?;
                if f == n && code != 0 {
                    write_file(
                        &ck.join("Emotion")
                            .join(&subj)
                            .join(&seq)
                            .join(format!("{stem}_emotion.txt")),
                        format!("   {:.7e}\n", code as f64).as_bytes(),
                    )?;
                    checks.push(landmark_error(faces, &fr));
                }
            }
            Ok((n, checks.into_iter().flatten().collect()))
        })
        .collect();
    let mut errors = Vec::new();
    for r in results {
        let (n, c) = r?;
        report.ckplus_frames += n;
        report.landmarks.frames += c.len();
        for (e, found) in c {
            if found {
                report.landmarks.found += 1;
                errors.push(e);
            }
        }
    }
    report.ckplus_sequences = subjects.len() * EXPRESSIONS.len();
    errors.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if !errors.is_empty() {
        report.landmarks.mean = errors.iter().sum::<f64>() / errors.len() as f64;
        report.landmarks.p95 =
            errors[((errors.len() as f64 * 0.95).ceil() as usize).clamp(1, errors.len()) - 1];
    }
    let mut ck_folds = String::new();
    for s in 0..subjects.len() {
        for (k, _) in EXPRESSIONS.iter().enumerate() {
            let (subj, seq) = (format!("S{:03}", 501 + s), format!("{:03}", k + 1));
            for f in [1, middle, frames] {
                ck_folds.push_str(&format!(
                    "{}\t{subj}/{seq}/{subj}_{seq}_{f:08}.png\t{}\n",
                    s % 10,
                    k + 1
                ));
            }
        }
    }
    write_file(&ck.join("folds.txt"), ck_folds.as_bytes())?;

    // Oulu-CASIA: VL/Strong, 320×240 JPEG.
    let ou = opts.out.join("oulu");
    let ou_canvas = Canvas {
        width: 320,
        height: 240,
        eye_mid: [0.5, 0.4],
        iod: 52.0,
        fill: 70,
    };
    let ou_jobs: Vec<(usize, usize)> = (0..subjects.len())
        .flat_map(|s| (0..OULU.len()).map(move |e| (s, e)))
        .collect();
    ou_jobs
        .par_iter()
        .map(|&(s, e)| -> crate::Result<()> {
            let (folder, expr, _) = OULU[e];
            for f in 0..frames {
                let t = ease(f as f64 / (frames - 1) as f64);
                let fr = render(
                    base,
                    &subjects[s],
                    expr,
                    t,
                    &ou_canvas,
                    (50_000 + e * 100 + f) as u64,
                );
                write_file(
                    &ou.join("OriginalImg/VL/Strong")
                        .join(format!("P{:03}", s + 1))
                        .join(folder)
                        .join(format!("{f:03}.jpeg")),
                    &encode(&fr.image, image::ImageFormat::Jpeg),
                )?;
            }
            Ok(())
        })
        .collect::<crate::Result<Vec<()>>>()?;
    report.oulu_sequences = ou_jobs.len();
    let ou_mid = ((frames - 1) as f64 * 0.5 + 0.5).floor() as usize;
    let mut ou_folds = String::new();
    for s in 0..subjects.len() {
        for (folder, _, code) in OULU {
            for f in [0, ou_mid, frames - 1] {
                ou_folds.push_str(&format!(
                    "{}\tOriginalImg/VL/Strong/P{:03}/{folder}/{f:03}.jpeg\t{code}\n",
                    s % 10 + 1,
                    s + 1
                ));
            }
        }
    }
    write_file(&ou.join("folds.txt"), ou_folds.as_bytes())?;

    // FER2013: 48×48 peak frames, two variants per subject and class; Usage by subject.
    let fer_canvas = Canvas {
        width: 48,
        height: 48,
        eye_mid: [0.5, 0.38],
        iod: 17.0,
        fill: 110,
    };
    let rows: Vec<String> = (0..subjects.len())
        .flat_map(|s| (0..FER.len()).flat_map(move |l| (0..2).map(move |v| (s, l, v))))
        .collect::<Vec<_>>()
        .par_iter()
        .map(|&(s, l, v)| {
            let t = if FER[l].is_empty() {
                0.0
            } else {
                [0.8, 1.0][v]
            };
            let fr = render(
                base,
                &subjects[s],
                FER[l],
                t,
                &fer_canvas,
                (90_000 + l * 10 + v) as u64,
            );
            let px: Vec<String> = fr.image.data().iter().map(|p| p.to_string()).collect();
            let usage = match s % 10 {
                0..=6 => "Training",
                7 => "PublicTest",
                _ => "PrivateTest",
            };
            format!("{l},{},{usage}\n", px.join(" "))
        })
        .collect();
    report.fer2013_rows = rows.len();
    let mut csv = String::from("emotion,pixels,Usage\n");
    csv.extend(rows);
    write_file(
        &opts.out.join("fer2013").join("fer2013.csv"),
        csv.as_bytes(),
    )?;
    write_file(
        &opts.out.join("README.txt"),
        format!(
            "Synthetic demo datasets made by `prep synth` (seed {}, {} subjects, {} frames) from the\n\
             public-domain astronaut photograph (data/faces/NOTICE). Not real expressions: for demos and tests.\n",
            opts.seed, opts.subjects, frames
        )
        .as_bytes(),
    )?;
    Ok(report)
}

/// Mean point error / true inter-ocular distance of our pipeline on a rendered frame, and whether a
/// face was found at all.
fn landmark_error(faces: &face::FacePipeline, fr: &Frame) -> Option<(f64, bool)> {
    let short = fr.image.width().min(fr.image.height()) as f64;
    let found = faces
        .detect(&fr.image, Some((0.2 * short) as i64))
        .into_iter()
        .next();
    let Some(f) = found else {
        return Some((f64::NAN, false));
    };
    let (l, r) = eye_centres(&fr.landmarks);
    let iod = ((r[0] - l[0]).powi(2) + (r[1] - l[1]).powi(2))
        .sqrt()
        .max(1e-9);
    let e: f64 = f
        .landmarks
        .precise
        .iter()
        .zip(&fr.landmarks)
        .map(|(p, t)| ((p[0] as f64 - t[0]).powi(2) + (p[1] as f64 - t[1]).powi(2)).sqrt())
        .sum::<f64>()
        / 68.0;
    Some((e / iod, true))
}
