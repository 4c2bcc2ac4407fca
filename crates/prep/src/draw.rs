//! Minimal drawing for overlays and contact sheets (boxes, landmark crosses, crop strips).

use face::GrayImage;
use image::{Rgb, RgbImage};

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

/// Outline of the inclusive box (l, t)–(r, b), clipped to the image.
pub fn rect(img: &mut RgbImage, l: i64, t: i64, r: i64, b: i64, c: [u8; 3]) {
    for x in l..=r {
        put(img, x, t, c);
        put(img, x, b, c);
    }
    for y in t..=b {
        put(img, l, y, c);
        put(img, r, y, c);
    }
}

/// A small "+" at (x, y).
pub fn cross(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    for d in -1..=1 {
        put(img, x + d, y, c);
        put(img, x, y + d, c);
    }
}

/// Grey crops side by side on a dark background, top-aligned, 4 px apart.
pub fn crop_strip(crops: &[&GrayImage]) -> RgbImage {
    let w: usize = crops.iter().map(|c| c.width() + 4).sum::<usize>() + 4;
    let h = crops.iter().map(|c| c.height()).max().unwrap_or(1) + 8;
    let mut out = RgbImage::from_pixel(w as u32, h as u32, Rgb([32, 32, 48]));
    let mut x0 = 4;
    for c in crops {
        for y in 0..c.height() {
            for x in 0..c.width() {
                let v = c.at(x, y);
                out.put_pixel((x0 + x) as u32, (4 + y) as u32, Rgb([v, v, v]));
            }
        }
        x0 += c.width() + 4;
    }
    out
}
