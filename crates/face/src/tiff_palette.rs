//! Fallback reader for uncompressed 8-bit palette-colour TIFFs, which the `tiff` crate does not
//! decode and which occur in JAFFE (e.g. `KA.AN1.39.tiff`). The colour map's 16-bit entries are
//! reduced with `>> 8`, as Pillow does, before the grey conversion.

use crate::{rgb_to_gray, GrayConversion, GrayImage};

struct Ifd<'a> {
    b: &'a [u8],
    le: bool,
}

impl Ifd<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let s = self.b.get(at..at + 2)?;
        Some(if self.le {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    }
    /// Values of a SHORT or LONG tag (inline when they fit in 4 bytes).
    fn values(&self, entry: usize) -> Option<Vec<u32>> {
        let typ = self.u16(entry + 2)?;
        let count = self.u32(entry + 4)? as usize;
        let size = match typ {
            3 => 2,
            4 => 4,
            _ => return None,
        };
        if count > 1 << 20 {
            return None;
        }
        let at = if size * count <= 4 {
            entry + 8
        } else {
            self.u32(entry + 8)? as usize
        };
        (0..count)
            .map(|i| {
                if size == 2 {
                    self.u16(at + 2 * i).map(u32::from)
                } else {
                    self.u32(at + 4 * i)
                }
            })
            .collect()
    }
}

/// Decodes `bytes` if they are an uncompressed, single-sample, 8-bit palette TIFF; `None` otherwise.
pub(crate) fn decode(bytes: &[u8], conv: GrayConversion) -> Option<GrayImage> {
    let le = match bytes.get(0..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let t = Ifd { b: bytes, le };
    let ifd = t.u32(4)? as usize;
    let n = t.u16(ifd)? as usize;
    let mut tags = std::collections::HashMap::new();
    for i in 0..n {
        let e = ifd + 2 + 12 * i;
        tags.insert(t.u16(e)?, e);
    }
    let one = |tag: u16| -> Option<u32> { t.values(*tags.get(&tag)?)?.first().copied() };
    let (w, h) = (one(256)? as usize, one(257)? as usize);
    if one(258)? != 8 || one(259).unwrap_or(1) != 1 || one(262)? != 3 || one(277).unwrap_or(1) != 1
    {
        return None;
    }
    if w == 0 || h == 0 || w > crate::MAX_DIMENSION as usize || h > crate::MAX_DIMENSION as usize {
        return None;
    }
    let offsets = t.values(*tags.get(&273)?)?;
    let counts = t.values(*tags.get(&279)?)?;
    let map = t.values(*tags.get(&320)?)?;
    if map.len() != 768 || offsets.len() != counts.len() {
        return None;
    }
    let mut idx = Vec::with_capacity(w * h);
    for (o, c) in offsets.iter().zip(&counts) {
        idx.extend_from_slice(bytes.get(*o as usize..(*o as usize).checked_add(*c as usize)?)?);
    }
    if idx.len() < w * h {
        return None;
    }
    let lut: Vec<u8> = (0..256)
        .map(|i| {
            rgb_to_gray(
                (map[i] >> 8) as u8,
                (map[256 + i] >> 8) as u8,
                (map[512 + i] >> 8) as u8,
                conv,
            )
        })
        .collect();
    GrayImage::new(
        w,
        h,
        idx[..w * h].iter().map(|&v| lut[v as usize]).collect(),
    )
    .ok()
}
