//! What `train predict` writes for a video: the per-frame table as CSV (OpenFace's column names
//! where OpenFace has the quantity: `frame`, `face_id`, `timestamp`, `success`, `x_0…x_67`,
//! `y_0…y_67`) and JSON lines, and the class probabilities over time as PNG and SVG.

use super::video_rows::{FrameRow, VideoPrediction};
use crate::outputs::figures::{ensure_font, png_bytes, svg_string, FONT};
use crate::{Result, TrainError};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

fn fig_err<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> TrainError {
    move |e| TrainError::Figure {
        what: what.to_string(),
        reason: format!("{e:?}"),
    }
}

/// The files written for one video.
#[derive(Debug, Clone)]
pub struct VideoOutputs {
    /// `<stem>.csv`.
    pub csv: PathBuf,
    /// `<stem>.jsonl`.
    pub jsonl: PathBuf,
    /// `<stem>_probabilities.png` and `.svg` (the PNG's path), when a font was found.
    pub plot: Option<PathBuf>,
}

/// The CSV header for `classes`.
pub fn csv_header(classes: &[String]) -> Vec<String> {
    let mut head: Vec<String> = [
        "frame",
        "face_id",
        "timestamp",
        "success",
        "face_left",
        "face_top",
        "face_right",
        "face_bottom",
        "detector",
        "window",
        "class",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    head.extend(classes.iter().map(|c| format!("p_{c}")));
    head.extend((0..68).map(|i| format!("x_{i}")));
    head.extend((0..68).map(|i| format!("y_{i}")));
    head
}

fn csv_row(r: &FrameRow, classes: usize) -> String {
    let mut f: Vec<String> = vec![
        r.frame.to_string(),
        "0".into(),
        format!("{:.6}", r.timestamp),
        (r.success as u8).to_string(),
    ];
    match r.face_box {
        Some(b) => f.extend(b.iter().map(|v| v.to_string())),
        None => f.extend(std::iter::repeat_n(String::new(), 4)),
    }
    f.push(r.detector.clone().unwrap_or_default());
    f.push(r.window.to_string());
    f.push(r.class.clone().unwrap_or_default());
    if r.probabilities.len() == classes {
        f.extend(r.probabilities.iter().map(|p| format!("{p:.6}")));
    } else {
        f.extend(std::iter::repeat_n(String::new(), classes));
    }
    match &r.landmarks {
        Some(lm) if lm.len() == 68 => {
            f.extend(lm.iter().map(|p| format!("{:.2}", p[0])));
            f.extend(lm.iter().map(|p| format!("{:.2}", p[1])));
        }
        _ => f.extend(std::iter::repeat_n(String::new(), 136)),
    }
    f.join(",")
}

/// Writes `<dir>/<stem>.csv`, `<stem>.jsonl` and the probability plot of one video (the plot is
/// skipped with a warning when no font is installed).
///
/// Errors: files that cannot be written, a drawing error.
pub fn write_video_outputs(
    dir: &Path,
    v: &VideoPrediction,
    classes: &[String],
) -> Result<VideoOutputs> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let stem = Path::new(&v.input)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into());
    let mut text = csv_header(classes).join(",");
    text.push('\n');
    let mut jsonl = String::new();
    for r in &v.rows {
        text.push_str(&csv_row(r, classes.len()));
        text.push('\n');
        jsonl.push_str(
            &serde_json::to_string(r).map_err(|e| TrainError::serialize("video row", e))?,
        );
        jsonl.push('\n');
    }
    let csv = dir.join(format!("{stem}.csv"));
    shard::atomic_write(&csv, text.as_bytes())?;
    let jsonl_path = dir.join(format!("{stem}.jsonl"));
    shard::atomic_write(&jsonl_path, jsonl.as_bytes())?;
    let plot = match ensure_font() {
        Ok(()) => {
            let title = format!("{stem}: class probabilities per frame");
            let size = (1000, 420);
            let png = png_bytes(size, |root| draw_probabilities(root, v, classes, &title))?;
            let svg = svg_string(size, |root| draw_probabilities(root, v, classes, &title))?;
            let p = dir.join(format!("{stem}_probabilities.png"));
            shard::atomic_write(&p, &png)?;
            shard::atomic_write(&p.with_extension("svg"), svg.as_bytes())?;
            Some(p)
        }
        Err(e) => {
            eprintln!("warning: probability plot not written: {e}");
            None
        }
    };
    Ok(VideoOutputs {
        csv,
        jsonl: jsonl_path,
        plot,
    })
}

/// Class colours: plotters' 99-colour palette, the first ones far apart.
fn class_colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Probabilities against time, one line per class, broken where no face was found (those
/// stretches shaded grey).
fn draw_probabilities<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    v: &VideoPrediction,
    classes: &[String],
    title: &str,
) -> Result<()> {
    let e = fig_err("probability plot");
    root.fill(&WHITE).map_err(&e)?;
    let root = root.titled(title, (FONT, 18)).map_err(&e)?;
    let end = v.rows.last().map(|r| r.timestamp).unwrap_or(1.0).max(1e-3);
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .right_y_label_area_size(0)
        .build_cartesian_2d(0.0..end, 0.0..1.0)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("probability")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(&e)?;
    // Shade frames without a face.
    let step = if v.rows.len() > 1 {
        (end / (v.rows.len() - 1) as f64).max(1e-6)
    } else {
        end
    };
    chart
        .draw_series(
            v.rows
                .iter()
                .filter(|r| r.probabilities.is_empty())
                .map(|r| {
                    Rectangle::new(
                        [
                            (r.timestamp - step / 2.0, 0.0),
                            (r.timestamp + step / 2.0, 1.0),
                        ],
                        RGBColor(225, 225, 225).filled(),
                    )
                }),
        )
        .map_err(&e)?
        .label("no face")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 14, y + 5)],
                RGBColor(225, 225, 225).filled(),
            )
        });
    for (i, name) in classes.iter().enumerate() {
        let colour = class_colour(i);
        let style = ShapeStyle::from(&colour).stroke_width(2);
        // One path per run of frames with probabilities.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for r in &v.rows {
            match r.probabilities.get(i) {
                Some(&p) => runs
                    .last_mut()
                    .map(|run| run.push((r.timestamp, p)))
                    .unwrap_or(()),
                None if runs.last().is_some_and(|l| !l.is_empty()) => runs.push(Vec::new()),
                None => {}
            }
        }
        let mut first = true;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let s = chart.draw_series(LineSeries::new(run, style)).map_err(&e)?;
            if first {
                s.label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                first = false;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(&e)?;
    Ok(())
}
