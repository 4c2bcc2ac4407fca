//! QA contact sheets: for a seeded sample of the cache, the peak frame around the face with its 68
//! landmarks drawn, then the face, eyes, nose and mouth crops side by side, one sample per row, so
//! a person can check a cache at a glance. `index.csv` names the sample and class of each row.

use crate::draw;
use crate::pipeline::QaSample;
use crate::{PrepError, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

/// Rows per sheet.
pub const ROWS_PER_SHEET: usize = 12;

/// The frame region around the landmarks (their box plus 30 %), scaled to `side`×`side` by nearest
/// neighbour, with the landmarks drawn in green.
pub fn landmark_tile(q: &QaSample, side: u32) -> RgbImage {
    let (mut l, mut t, mut r, mut b) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in &q.landmarks {
        l = l.min(p[0]);
        t = t.min(p[1]);
        r = r.max(p[0]);
        b = b.max(p[1]);
    }
    let size = (r - l).max(b - t).max(8.0) * 1.3;
    let (cx, cy) = ((l + r) / 2.0, (t + b) / 2.0);
    let (x0, y0) = (cx - size / 2.0, cy - size / 2.0);
    let scale = size / side as f32;
    let mut tile = RgbImage::new(side, side);
    for y in 0..side {
        for x in 0..side {
            let sx = (x0 + (x as f32 + 0.5) * scale).floor() as i64;
            let sy = (y0 + (y as f32 + 0.5) * scale).floor() as i64;
            let v = q.frame.get(sx, sy).unwrap_or(0);
            tile.put_pixel(x, y, Rgb([v, v, v]));
        }
    }
    for p in &q.landmarks {
        let x = ((p[0] - x0) / scale) as i64;
        let y = ((p[1] - y0) / scale) as i64;
        draw::cross(&mut tile, x, y, [0, 255, 0]);
    }
    tile
}

/// Writes `sheet-NN.png` and `index.csv` into `dir` (created if missing).
pub fn write_sheets(dir: &Path, samples: &[QaSample], class_names: &[String]) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| PrepError::Io {
        path: p.to_path_buf(),
        cause: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut index = String::from("sheet,row,sample_id,class\n");
    for (s, group) in samples.chunks(ROWS_PER_SHEET).enumerate() {
        let rows: Vec<RgbImage> = group
            .iter()
            .map(|q| {
                let strip = draw::crop_strip(&[
                    &q.crops.face,
                    &q.crops.eyes,
                    &q.crops.nose,
                    &q.crops.mouth,
                ]);
                let side = strip.height().saturating_sub(8).max(32);
                let tile = landmark_tile(q, side);
                let mut row = RgbImage::from_pixel(
                    tile.width() + 4 + strip.width(),
                    strip.height().max(tile.height() + 8),
                    Rgb([32, 32, 48]),
                );
                image::imageops::overlay(&mut row, &tile, 4, 4);
                image::imageops::overlay(&mut row, &strip, tile.width() as i64 + 4, 0);
                row
            })
            .collect();
        let w = rows.iter().map(|r| r.width()).max().unwrap_or(1);
        let h: u32 = rows.iter().map(|r| r.height()).sum();
        let mut sheet = RgbImage::from_pixel(w, h.max(1), Rgb([32, 32, 48]));
        let mut y = 0;
        for (k, (row, q)) in rows.iter().zip(group).enumerate() {
            image::imageops::overlay(&mut sheet, row, 0, y as i64);
            y += row.height();
            let class = class_names
                .get(q.label as usize)
                .map(String::as_str)
                .unwrap_or("?");
            index.push_str(&format!("{},{},{},{}\n", s + 1, k + 1, q.sample_id, class));
        }
        let path = dir.join(format!("sheet-{:02}.png", s + 1));
        let mut png = Vec::new();
        sheet
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| io(&path, std::io::Error::other(e.to_string())))?;
        shard::atomic_write(&path, &png)?;
    }
    shard::atomic_write(&dir.join("index.csv"), index.as_bytes())?;
    Ok(())
}
