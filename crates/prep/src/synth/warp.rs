//! Delaunay triangulation, the piecewise-affine warp and 2-d similarities.

use face::GrayImage;

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
