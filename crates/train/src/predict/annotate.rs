//! The annotated copy of a video (`train predict --annotate`): each frame's face box, 68
//! landmarks, top class with its probability, and the frame's number and time drawn on it.

use super::video_rows::FrameRow;
use crate::outputs::figures::{ensure_font, FONT};
use crate::{Result, TrainError};
use face::video::{VideoCodec, VideoInfo, VideoWriter};
use plotters::prelude::*;
use std::path::Path;

fn fig_err<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> TrainError {
    move |e| TrainError::Figure {
        what: what.to_string(),
        reason: format!("{e:?}"),
    }
}

/// Draws each frame's face box, landmarks and top class, and encodes the frames.
pub(super) struct Annotator {
    writer: VideoWriter,
    classes: Vec<String>,
    size: (u32, u32),
}

impl Annotator {
    /// An annotated copy of `info`'s video at `path` (`.avi`: MPEG-4 part 2, else H.264), at
    /// the frame rate of the kept frames.
    ///
    /// Errors: no font (the labels need one), FFmpeg missing.
    pub(super) fn create(
        path: &Path,
        info: &VideoInfo,
        every: usize,
        classes: &[String],
    ) -> Result<Annotator> {
        ensure_font()?;
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| TrainError::io(d, e))?;
        }
        let rate = if info.frame_rate > 0.0 {
            info.frame_rate
        } else {
            25.0
        };
        let fps = rate / every.max(1) as f64;
        let writer = VideoWriter::create(
            path,
            info.width,
            info.height,
            fps,
            true,
            VideoCodec::for_path(path),
            (fps.round() as usize).max(1) * 2,
        )?;
        Ok(Annotator {
            writer,
            classes: classes.to_vec(),
            size: (info.width as u32, info.height as u32),
        })
    }

    pub(super) fn write(&mut self, mut rgb: image::RgbImage, row: &FrameRow) -> Result<()> {
        let e = fig_err("annotated frame");
        {
            let root = BitMapBackend::with_buffer(rgb.as_mut(), self.size).into_drawing_area();
            let green = RGBColor(40, 220, 90);
            let text_size = (self.size.1 as f64 / 24.0).clamp(12.0, 40.0) as u32;
            if let Some(b) = row.face_box {
                let (l, t, r, bo) = (b[0] as i32, b[1] as i32, b[2] as i32, b[3] as i32);
                root.draw(&Rectangle::new([(l, t), (r, bo)], green.stroke_width(2)))
                    .map_err(&e)?;
                if let Some(lm) = &row.landmarks {
                    for p in lm {
                        root.draw(&Circle::new(
                            (p[0].round() as i32, p[1].round() as i32),
                            2,
                            RGBColor(255, 60, 60).filled(),
                        ))
                        .map_err(&e)?;
                    }
                }
                if let Some(c) = &row.class {
                    let i = self.classes.iter().position(|x| x == c).unwrap_or(0);
                    let p = row.probabilities.get(i).copied().unwrap_or(0.0);
                    let label = format!("{c} {:.0}%", 100.0 * p);
                    let y = (t - text_size as i32 - 6).max(0);
                    // A dark band behind the label, so it reads on any background.
                    let width = (label.chars().count() as f64 * text_size as f64 * 0.6) as i32;
                    root.draw(&Rectangle::new(
                        [
                            (l.max(0) - 2, y - 2),
                            (l.max(0) + width, y + text_size as i32 + 2),
                        ],
                        BLACK.mix(0.6).filled(),
                    ))
                    .map_err(&e)?;
                    root.draw(&Text::new(
                        label,
                        (l.max(0), y),
                        (FONT, text_size).into_font().color(&green),
                    ))
                    .map_err(&e)?;
                }
            } else {
                root.draw(&Text::new(
                    "no face",
                    (8, 8),
                    (FONT, text_size).into_font().color(&RGBColor(255, 200, 0)),
                ))
                .map_err(&e)?;
            }
            root.draw(&Text::new(
                format!("frame {} · {:.2} s", row.frame, row.timestamp),
                (8, self.size.1 as i32 - text_size as i32 - 8),
                (FONT, text_size).into_font().color(&WHITE),
            ))
            .map_err(&e)?;
            root.present().map_err(&e)?;
        }
        self.writer.write(rgb.as_raw())?;
        Ok(())
    }

    pub(super) fn finish(self) -> Result<()> {
        self.writer.finish()?;
        Ok(())
    }
}
