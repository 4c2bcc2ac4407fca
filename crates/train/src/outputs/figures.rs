//! Figures that stand alone: confusion matrices (class names, counts, row-normalised percentages,
//! axis titles) and training curves (loss, accuracies and learning rate against the epoch, with a
//! legend and the reported epoch marked), drawn once with plotters and written as PNG and SVG.
//! The HTML report inlines the same SVG.
//!
//! Text is rendered with ab_glyph from a TrueType font found on the system (DejaVu Sans from
//! Debian's `fonts-dejavu-core`, or Liberation Sans, or the file `FER_FONT` names): plotters needs
//! the font to lay out labels for SVG as well as to rasterise PNG.

use super::{Confusion, EpochRecord};
use crate::{Result, TrainError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Fonts tried in order when `FER_FONT` is not set.
pub const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// The family name the registered font is drawn under.
pub const FONT: &str = "sans-serif";

/// Registers the system font with plotters once per process.
///
/// Errors: [`TrainError::Figure`] when no font is found or it does not parse (the message says
/// which files were tried).
pub fn ensure_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    let r = REGISTERED.get_or_init(|| {
        let candidates: Vec<PathBuf> = match std::env::var_os("FER_FONT") {
            Some(p) => vec![PathBuf::from(p)],
            None => FONT_CANDIDATES.iter().map(PathBuf::from).collect(),
        };
        for p in &candidates {
            if let Ok(bytes) = std::fs::read(p) {
                // plotters keeps &'static font data; one font per process, so leaking is bounded.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                    return Ok(p.clone());
                }
            }
        }
        Err(format!(
            "no usable TrueType font (tried {}; install Debian's fonts-dejavu-core or set FER_FONT)",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    });
    r.as_ref().map(|_| ()).map_err(|reason| TrainError::Figure {
        what: "font".into(),
        reason: reason.clone(),
    })
}

fn fig_err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> TrainError + '_ {
    move |e| TrainError::Figure {
        what: what.to_string(),
        reason: format!("{e:?}"),
    }
}

/// A figure drawn by `draw` as SVG text.
pub fn svg_string<F>(size: (u32, u32), draw: F) -> Result<String>
where
    F: FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
{
    ensure_font()?;
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(fig_err("svg"))?;
    }
    Ok(s)
}

/// A figure drawn by `draw` as PNG bytes.
pub fn png_bytes<F>(size: (u32, u32), draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
{
    ensure_font()?;
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(fig_err("png"))?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf).ok_or_else(|| TrainError::Figure {
        what: "png".into(),
        reason: "buffer size".into(),
    })?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(fig_err("png"))?;
    Ok(png)
}

/// Writes `<stem>.png` and `<stem>.svg`.
fn write_pair(stem: &Path, png: Vec<u8>, svg: String) -> Result<()> {
    shard::atomic_write(&stem.with_extension("png"), &png)?;
    shard::atomic_write(&stem.with_extension("svg"), svg.as_bytes())?;
    Ok(())
}

/// Pixel size of a confusion figure for `n` classes.
pub fn confusion_size(n: usize) -> (u32, u32) {
    let cell = 72;
    // At least 620 px wide: the title names experiment, fold, epoch, selection and accuracy.
    (
        (150 + cell * n as u32 + 30).max(620),
        70 + cell * n as u32 + 80,
    )
}

/// Pixel size of a curves figure.
pub const CURVES_SIZE: (u32, u32) = (760, 820);

/// The colour of a row-normalised fraction (white at 0 to dark blue at 1).
fn cell_colour(f: f64) -> RGBColor {
    let f = f.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

/// Draws the confusion matrix: rows = true class (top to bottom in class order), columns =
/// predicted class, each cell with its count and its share of the row; colour = that share.
pub fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Confusion,
    classes: &[String],
    title: &str,
) -> Result<()> {
    let e = fig_err("confusion matrix");
    let n = c.counts.len().max(2) as i32;
    root.fill(&WHITE).map_err(&e)?;
    // Square cells: the room a long title needs beyond the matrix goes to the right margin.
    let natural = 150 + 72 * n as u32 + 30;
    let extra = root.dim_in_pixel().0.saturating_sub(natural);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 17))
        .margin(12)
        .margin_right(12 + extra)
        .x_label_area_size(60)
        .y_label_area_size(120)
        // An i32 range is inclusive of its end for plotters, so 0..n-1 gives n segments.
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(&e)?;
    let name = |k: i32| {
        usize::try_from(k)
            .ok()
            .filter(|&k| k < c.counts.len())
            .map(|k| classes.get(k).cloned().unwrap_or_else(|| k.to_string()))
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n as usize)
        .y_labels(n as usize)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) => name(*k),
            _ => String::new(),
        })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) => name(n - 1 - *k),
            _ => String::new(),
        })
        .x_desc("predicted class")
        .y_desc("true class")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(&e)?;
    for (i, row) in c.counts.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let y = n - 1 - i as i32;
        for (j, &v) in row.iter().enumerate() {
            let j = j as i32;
            let f = if total == 0 {
                0.0
            } else {
                v as f64 / total as f64
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(j), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(j + 1), SegmentValue::Exact(y + 1)),
                    ],
                    cell_colour(f).filled(),
                )))
                .map_err(&e)?;
            let ink = if f > 0.5 { WHITE } else { BLACK };
            let style = TextStyle::from((FONT, 15).into_font()).color(&ink).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            let pct = if total == 0 {
                "–".to_string()
            } else {
                format!("{:.0} %", 100.0 * f)
            };
            let (cx, cy) =
                chart.backend_coord(&(SegmentValue::CenterOf(j), SegmentValue::CenterOf(y)));
            root.draw(&Text::new(v.to_string(), (cx, cy - 9), style.clone()))
                .map_err(&e)?;
            root.draw(&Text::new(pct, (cx, cy + 10), style.clone()))
                .map_err(&e)?;
        }
    }
    // The diagonal's frames last, so that no neighbouring cell paints over them.
    for i in 0..c.counts.len() as i32 {
        let y = n - 1 - i;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [
                    (SegmentValue::Exact(i), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(i + 1), SegmentValue::Exact(y + 1)),
                ],
                ShapeStyle::from(&RGBColor(0, 150, 60)).stroke_width(2),
            )))
            .map_err(&e)?;
    }
    Ok(())
}

/// Draws three panels against the epoch: losses (total, GFM, PBM), accuracies in % (training,
/// test, validation where evaluated) and the learning rate; a dashed line marks `selected` (the
/// reported epoch, 0 = none).
pub fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &[EpochRecord],
    selected: usize,
    title: &str,
) -> Result<()> {
    let e = fig_err("curves");
    root.fill(&WHITE).map_err(&e)?;
    let root = root.titled(title, (FONT, 18)).map_err(&e)?;
    let panels = root.split_evenly((3, 1));
    let last = history.iter().map(|r| r.epoch).max().unwrap_or(1).max(2) as f64;
    // Half an epoch of room each side, so that a line at the first or last epoch shows.
    let x_range = 0.5..last + 0.5;
    let epoch_ticks = (last as usize).min(12);
    type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);
    let panel = |area: &DrawingArea<DB, Shift>,
                 y_desc: &str,
                 y_range: std::ops::Range<f64>,
                 legend_at: SeriesLabelPosition,
                 series: Vec<Series>|
     -> Result<()> {
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range.clone(), y_range.clone())
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .x_labels(epoch_ticks)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| tick_label(*y))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&e)?;
        if selected > 0 {
            let grey = RGBColor(120, 120, 120);
            let (lo, hi) = (y_range.start, y_range.end);
            let steps = 24;
            let pts: Vec<(f64, f64)> = (0..=steps)
                .map(|k| (selected as f64, lo + (hi - lo) * k as f64 / steps as f64))
                .collect();
            // Dashes: every other segment of the vertical line.
            chart
                .draw_series(pts.chunks(2).map(|p| PathElement::new(p.to_vec(), grey)))
                .map_err(&e)?
                .label(format!("reported epoch {selected}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
        }
        for (name, colour, pts) in series {
            if pts.is_empty() {
                continue;
            }
            let style = ShapeStyle::from(&colour).stroke_width(2);
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(&e)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            if pts.len() < history.len() {
                // Sparse series (evaluated every few epochs): show the points themselves.
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(&e)?;
            }
        }
        chart
            .configure_series_labels()
            .position(legend_at)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(&e)?;
        Ok(())
    };
    let pts = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let max_loss = history
        .iter()
        .flat_map(|r| [r.loss, r.loss_global, r.loss_local])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    panel(
        &panels[0],
        "loss (cross-entropy)",
        0.0..(max_loss * 1.1).max(1e-3),
        SeriesLabelPosition::UpperRight,
        vec![
            ("total", RGBColor(200, 30, 30), pts(&|r| Some(r.loss))),
            (
                "GFM (global)",
                RGBColor(230, 140, 20),
                pts(&|r| Some(r.loss_global)),
            ),
            (
                "PBM (local)",
                RGBColor(150, 60, 170),
                pts(&|r| Some(r.loss_local)),
            ),
        ],
    )?;
    panel(
        &panels[1],
        "accuracy (%)",
        0.0..100.0,
        SeriesLabelPosition::LowerRight,
        vec![
            (
                "training",
                RGBColor(30, 90, 200),
                pts(&|r| Some(100.0 * r.train_accuracy)),
            ),
            (
                "test",
                RGBColor(20, 150, 60),
                pts(&|r| r.test_accuracy.map(|a| 100.0 * a)),
            ),
            (
                "validation",
                RGBColor(0, 160, 170),
                pts(&|r| r.validation_accuracy.map(|a| 100.0 * a)),
            ),
        ],
    )?;
    let max_lr = history.iter().map(|r| r.lr).fold(0.0, f64::max);
    panel(
        &panels[2],
        "learning rate",
        0.0..(max_lr * 1.15).max(1e-9),
        SeriesLabelPosition::LowerLeft,
        vec![("lr", RGBColor(60, 60, 60), pts(&|r| Some(r.lr)))],
    )?;
    Ok(())
}

/// A tick value without float noise (`0.30000000000000004` → `0.3`, `100.0` → `100`).
fn tick_label(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Writes `confusion.png` + `confusion.svg` of one fold into `dir` (one drawing, two backends).
///
/// Errors: no font, a drawing error, or a file that cannot be written.
pub fn write_confusion(dir: &Path, c: &Confusion, classes: &[String], title: &str) -> Result<()> {
    let size = confusion_size(c.counts.len());
    write_pair(
        &dir.join("confusion"),
        png_bytes(size, |root| draw_confusion(root, c, classes, title))?,
        svg_string(size, |root| draw_confusion(root, c, classes, title))?,
    )
}

/// Writes `curves.png` + `curves.svg` of one fold into `dir` (one drawing, two backends).
///
/// Errors: as [`write_confusion`].
pub fn write_curves(
    dir: &Path,
    history: &[EpochRecord],
    selected: usize,
    title: &str,
) -> Result<()> {
    write_pair(
        &dir.join("curves"),
        png_bytes(CURVES_SIZE, |root| {
            draw_curves(root, history, selected, title)
        })?,
        svg_string(CURVES_SIZE, |root| {
            draw_curves(root, history, selected, title)
        })?,
    )
}
