//! `train predict` on video files: a progress bar per video, the per-frame outputs written under
//! `--out-dir`, and one summary row per video for the table (its majority class, the mean
//! probabilities over the frames with a face, how many frames had one).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use train::predict::{Prediction, Predictor, VideoPredictOptions};

/// What the command line asks of the videos.
pub struct VideoRequest<'a> {
    /// `--out-dir`.
    pub out_dir: &'a Path,
    /// `--every`.
    pub every: usize,
    /// `--window`.
    pub window: Option<usize>,
    /// `--annotate`.
    pub annotate: bool,
}

/// Predicts each video; returns one summary [`Prediction`] per video, `error` set for a video
/// that could not be read to its end or had no face in any frame.
pub fn predict_videos(
    p: &Predictor,
    videos: &[PathBuf],
    a: &VideoRequest,
) -> Result<Vec<Prediction>> {
    let mut out = Vec::new();
    for video in videos {
        let stem = video
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".into());
        let opts = VideoPredictOptions {
            every: a.every,
            window: a.window,
            annotate: a
                .annotate
                .then(|| a.out_dir.join(format!("{stem}_annotated.mp4"))),
            ..Default::default()
        };
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} frames, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(stem.clone());
        let v = p
            .predict_video(video, &opts, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .with_context(|| format!("predicting {}", video.display()))?;
        bar.finish_and_clear();
        let classes = p.classes();
        let (class, faced) = v.majority(classes);
        if v.frames > 0 {
            let files = train::predict::write_video_outputs(a.out_dir, &v, classes)
                .with_context(|| format!("writing the outputs of {}", video.display()))?;
            eprintln!(
                "{}: {} frames ({} with a face) in {:.1} s = {:.1} frames/s; written: {}, {}{}{}",
                video.display(),
                v.rows.len(),
                faced,
                v.seconds,
                v.rows.len() as f64 / v.seconds.max(1e-9),
                files.csv.display(),
                files.jsonl.display(),
                files
                    .plot
                    .map(|f| format!(", {}", f.display()))
                    .unwrap_or_default(),
                opts.annotate
                    .map(|f| format!(", {}", f.display()))
                    .unwrap_or_default(),
            );
        }
        let mut mean = vec![0.0; classes.len()];
        for r in v
            .rows
            .iter()
            .filter(|r| r.probabilities.len() == classes.len())
        {
            for (m, q) in mean.iter_mut().zip(&r.probabilities) {
                *m += q / faced.max(1) as f64;
            }
        }
        let error = match (&v.error, faced) {
            (Some(e), _) => Some(e.clone()),
            (None, 0) => Some(format!("no face in any of {} frames", v.rows.len())),
            (None, _) => None,
        };
        out.push(Prediction {
            input: v.input.clone(),
            probabilities: if faced > 0 { mean } else { Vec::new() },
            class,
            error,
            face_box: None,
            detector: Some(format!("{faced}/{} frames", v.rows.len())),
            landmarks: None,
        });
    }
    Ok(out)
}
