//! 8-bit grey images and decoding, with the conversions the reference tools use.

use crate::{FaceError, Result};
use std::path::Path;

/// A row-major 8-bit grey image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

/// How colour images become grey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrayConversion {
    /// ITU-R 601 luma with Pillow's integer rounding,
    /// `(19595 R + 38470 G + 7471 B + 32768) >> 16` — what the reference outputs were made with
    /// (`PIL.Image.convert("L")`). Default.
    #[default]
    PilLuma,
    /// dlib's `rgb_pixel` intensity, `(R + G + B) / 3` in integers.
    DlibMean,
}

/// Largest width or height accepted when decoding (decode-bomb guard): 16384.
pub const MAX_DIMENSION: u32 = 16384;

impl GrayImage {
    /// Wraps a plane; errors if `data.len() != width * height` or the image is empty.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<GrayImage> {
        if width == 0 || height == 0 || data.len() != width * height {
            return Err(FaceError::BadImage {
                width,
                height,
                len: data.len(),
                reason: "plane size must be width × height and non-zero".into(),
            });
        }
        Ok(GrayImage {
            width,
            height,
            data,
        })
    }

    /// A constant image.
    pub fn filled(width: usize, height: usize, value: u8) -> GrayImage {
        GrayImage {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major pixels.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Mutable pixels.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Consumes the image, returning its pixels.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Pixel at (x, y); caller guarantees bounds.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }

    /// Pixel at (x, y) or `None` outside the image.
    #[inline]
    pub fn get(&self, x: i64, y: i64) -> Option<u8> {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            Some(self.data[y as usize * self.width + x as usize])
        } else {
            None
        }
    }

    /// Converts a decoded image. 16-bit images are scaled to 8 bits, alpha is dropped.
    pub fn from_dynamic(img: &image::DynamicImage, conv: GrayConversion) -> GrayImage {
        use image::DynamicImage as D;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let data = match img {
            D::ImageLuma8(g) => g.as_raw().clone(),
            D::ImageLumaA8(_) | D::ImageLuma16(_) | D::ImageLumaA16(_) => img.to_luma8().into_raw(),
            _ => {
                let rgb = img.to_rgb8();
                rgb.as_raw()
                    .chunks_exact(3)
                    .map(|p| rgb_to_gray(p[0], p[1], p[2], conv))
                    .collect()
            }
        };
        GrayImage {
            width: w,
            height: h,
            data,
        }
    }

    /// Decodes an image file (PNG, JPEG, TIFF) into grey, refusing images larger than
    /// [`MAX_DIMENSION`] on a side before allocating them.
    pub fn open(path: &Path, conv: GrayConversion) -> Result<GrayImage> {
        let bytes = std::fs::read(path).map_err(|e| FaceError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        Self::decode(&bytes, conv).map_err(|reason| FaceError::Decode {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Decodes image bytes; the error is a human-readable reason.
    pub fn decode(bytes: &[u8], conv: GrayConversion) -> std::result::Result<GrayImage, String> {
        if bytes.is_empty() {
            return Err("empty file".into());
        }
        if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            if let Some(img) = decode_jpeg_libjpeg(bytes, conv) {
                return Ok(img);
            }
        }
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| e.to_string())?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_DIMENSION);
        limits.max_image_height = Some(MAX_DIMENSION);
        limits.max_alloc = Some(1 << 30);
        reader.limits(limits);
        let img = match reader.decode() {
            Ok(img) => img,
            Err(e) => {
                return crate::tiff_palette::decode(bytes, conv).ok_or_else(|| e.to_string());
            }
        };
        if img.width() == 0 || img.height() == 0 {
            return Err("image has no pixels".into());
        }
        Ok(Self::from_dynamic(&img, conv))
    }

    /// Saves as PNG.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        image::save_buffer(
            path,
            &self.data,
            self.width as u32,
            self.height as u32,
            image::ExtendedColorType::L8,
        )
        .map_err(|e| FaceError::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::other(e.to_string()),
        })
    }
}

/// One RGB pixel to grey with the given conversion.
#[inline]
pub fn rgb_to_gray(r: u8, g: u8, b: u8, conv: GrayConversion) -> u8 {
    match conv {
        GrayConversion::PilLuma => {
            ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
        }
        GrayConversion::DlibMean => ((r as u32 + g as u32 + b as u32) / 3) as u8,
    }
}

/// Decodes a JPEG with libjpeg-turbo's decoder (through `mozjpeg`): integer IDCT and fancy
/// upsampling, the decoder Pillow and OpenCV use, so that pixels (and hence landmarks) match the
/// reference tools exactly. `None` on any failure or oversized image (the caller then tries the
/// `image` crate, whose error message is reported).
fn decode_jpeg_libjpeg(bytes: &[u8], conv: GrayConversion) -> Option<GrayImage> {
    // libjpeg reports corrupt data by unwinding; catch it so a bad file is an error, not a crash.
    let result = std::panic::catch_unwind(|| -> Option<GrayImage> {
        let d = mozjpeg::Decompress::new_mem(bytes).ok()?;
        let (w, h) = (d.width(), d.height());
        if w == 0 || h == 0 || w > MAX_DIMENSION as usize || h > MAX_DIMENSION as usize {
            return None;
        }
        let mut started = d.rgb().ok()?;
        let rgb: Vec<u8> = started.read_scanlines::<u8>().ok()?;
        started.finish().ok()?;
        if rgb.len() != w * h * 3 {
            return None;
        }
        let data = rgb
            .chunks_exact(3)
            .map(|p| rgb_to_gray(p[0], p[1], p[2], conv))
            .collect();
        GrayImage::new(w, h, data).ok()
    });
    result.ok().flatten()
}
