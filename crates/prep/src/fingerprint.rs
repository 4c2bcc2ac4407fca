//! What an input's pixels are, for finding duplicates: blake3 over every distinct decoded frame
//! (`exact`) and the 64-bit difference hash of the last (peak) frame (`dhash`), and the box
//! helpers that restrict both to a dataset's face box. A leaf: the inventory carries fingerprints
//! a parser already computed, and [`crate::dedup`] groups them.

use face::GrayImage;

/// The fingerprints of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// blake3 of every distinct decoded frame (slot, width, height, pixels).
    pub exact: [u8; 32],
    /// Difference hash of the last frame.
    pub dhash: u64,
}

/// The fingerprints of an input's distinct decoded frames (`(first slot, frame)`, in slot order).
pub fn fingerprint(distinct: &[(usize, GrayImage)]) -> Option<Fingerprint> {
    let last = &distinct.last()?.1;
    let mut h = blake3::Hasher::new();
    for (slot, img) in distinct {
        h.update(&(*slot as u64).to_le_bytes());
        h.update(&(img.width() as u64).to_le_bytes());
        h.update(&(img.height() as u64).to_le_bytes());
        h.update(img.data());
    }
    Some(Fingerprint {
        exact: *h.finalize().as_bytes(),
        dhash: dhash(last),
    })
}

/// The part of `img` inside the inclusive box `[left, top, right, bottom]`, clipped to the
/// image; the whole image when nothing of the box lies inside it (the build reports such a box).
pub fn cut_box(img: &GrayImage, b: [i64; 4]) -> GrayImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (l, t) = (b[0].clamp(0, w), b[1].clamp(0, h));
    let (r, btm) = ((b[2] + 1).clamp(0, w), (b[3] + 1).clamp(0, h));
    if r <= l || btm <= t {
        return img.clone();
    }
    let mut data = Vec::with_capacity(((r - l) * (btm - t)) as usize);
    for y in t..btm {
        let row = (y * w) as usize;
        data.extend_from_slice(&img.data()[row + l as usize..row + r as usize]);
    }
    GrayImage::new((r - l) as usize, (btm - t) as usize, data).unwrap_or_else(|_| img.clone())
}

/// The inclusive box `b` scaled by `factor` about its centre (not clipped).
pub fn widened(b: [i64; 4], factor: f64) -> [i64; 4] {
    let (cx, cy) = ((b[0] + b[2]) as f64 / 2.0, (b[1] + b[3]) as f64 / 2.0);
    let (hw, hh) = (
        (b[2] - b[0] + 1) as f64 * factor / 2.0,
        (b[3] - b[1] + 1) as f64 * factor / 2.0,
    );
    [
        (cx - hw + 0.5).round() as i64,
        (cy - hh + 0.5).round() as i64,
        (cx + hw - 0.5).round() as i64,
        (cy + hh - 0.5).round() as i64,
    ]
}

/// 64-bit difference hash: the image box-averaged to 9 columns × 8 rows; bit (8·row + col) is set
/// when cell (row, col) is brighter than cell (row, col + 1).
pub fn dhash(img: &GrayImage) -> u64 {
    let (w, h) = (img.width(), img.height());
    let data = img.data();
    let mut cells = [[0f64; 9]; 8];
    for (r, row) in cells.iter_mut().enumerate() {
        let (y0, y1) = (r * h / 8, ((r + 1) * h / 8).max(r * h / 8 + 1).min(h));
        for (c, cell) in row.iter_mut().enumerate() {
            let (x0, x1) = (c * w / 9, ((c + 1) * w / 9).max(c * w / 9 + 1).min(w));
            let mut sum = 0u64;
            let mut n = 0u64;
            for y in y0..y1 {
                for x in x0..x1 {
                    sum += data[y * w + x] as u64;
                    n += 1;
                }
            }
            *cell = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
        }
    }
    let mut bits = 0u64;
    for (r, row) in cells.iter().enumerate() {
        for c in 0..8 {
            if row[c] > row[c + 1] {
                bits |= 1 << (8 * r + c);
            }
        }
    }
    bits
}
