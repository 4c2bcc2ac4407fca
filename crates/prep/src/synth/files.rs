//! Writing the synthetic datasets' files: every layout goes through these, so that an I/O error
//! names its path the same way everywhere.

use face::GrayImage;

pub(crate) fn io_err(p: &std::path::Path, e: std::io::Error) -> crate::PrepError {
    crate::PrepError::Io {
        path: p.to_path_buf(),
        cause: e,
    }
}

pub(crate) fn write_file(p: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    std::fs::write(p, bytes).map_err(|e| io_err(p, e))
}

pub(crate) fn encode(img: &GrayImage, format: image::ImageFormat) -> Vec<u8> {
    let buf =
        image::GrayImage::from_raw(img.width() as u32, img.height() as u32, img.data().to_vec())
            .unwrap_or_default();
    let mut out = Vec::new();
    let _ = buf.write_to(&mut std::io::Cursor::new(&mut out), format);
    out
}
