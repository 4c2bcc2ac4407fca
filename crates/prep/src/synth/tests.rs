use super::*;
use face::GrayImage;

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
