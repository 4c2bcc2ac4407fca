//! Synthetic video datasets: the expression sequences of the other layouts, encoded with FFmpeg
//! into a DFEW tree (H.264 `.mp4`, the official split files) and an AFEW tree (MPEG-4 part 2
//! `.avi` in class folders), with planted files a real copy can hold (a corrupt clip, one cut
//! short, one with sound only, an unlabelled one, stray files), and one longer test video with its
//! ground truth for `train predict` ([`synth_video`]).

use super::files::{io_err, write_file};
use super::*;
use face::video::{VideoCodec, VideoWriter};
use face::GrayImage;
use std::path::{Path, PathBuf};

/// What [`generate_clips`] writes.
#[derive(Debug, Clone)]
pub struct ClipOptions {
    /// Output root (`dfew/` and `afew/` are created under it).
    pub out: PathBuf,
    /// Subjects (default 20); each shows every class once per layout.
    pub subjects: usize,
    /// Seed of the identities and noise.
    pub seed: u64,
    /// Frames per clip (default 16): neutral for the first quarter, rising to the peak by three
    /// quarters, peak to the end.
    pub frames: usize,
    /// Frames per second (default 25).
    pub fps: f64,
}

/// Counts of a clip generation.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClipReport {
    /// DFEW clips listed in the fold lists with a readable video.
    pub dfew_clips: usize,
    /// AFEW clips (Train + Val) with a readable video.
    pub afew_clips: usize,
    /// Planted inputs and the reason code a build gives them, (path under the layout, reason).
    pub planted: Vec<(String, String)>,
    /// Frames per clip.
    pub frames: usize,
}

/// DFEW classes (label codes 1–7) and the expression that shows them ("" = neutral).
const DFEW: [(&str, &str); 7] = [
    ("happy", "happy"),
    ("sad", "sadness"),
    ("neutral", ""),
    ("angry", "anger"),
    ("surprise", "surprise"),
    ("disgust", "disgust"),
    ("fear", "fear"),
];

/// AFEW class folders and their expressions.
const AFEW: [(&str, &str); 7] = [
    ("Angry", "anger"),
    ("Disgust", "disgust"),
    ("Fear", "fear"),
    ("Happy", "happy"),
    ("Neutral", ""),
    ("Sad", "sadness"),
    ("Surprise", "surprise"),
];

const CLIP_CANVAS: Canvas = Canvas {
    width: 320,
    height: 240,
    eye_mid: [0.5, 0.4],
    iod: 52.0,
    fill: 70,
};

/// Intensity of clip frame `f` of `n`: neutral, rise, peak (so the peak is the last frame, as
/// the recipe's position 1 expects, and the first frame is neutral).
fn clip_intensity(f: usize, n: usize) -> f64 {
    let t = f as f64 / (n.max(2) - 1) as f64;
    ease((t - 0.25) / 0.5)
}

/// Renders and encodes one clip.
fn write_clip(
    base: &BaseFace,
    subject: &Subject,
    expr: &str,
    opts: &ClipOptions,
    key: u64,
    path: &Path,
) -> crate::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    let c = &CLIP_CANVAS;
    let mut w = VideoWriter::create(
        path,
        c.width,
        c.height,
        opts.fps,
        false,
        VideoCodec::for_path(path),
        12,
    )?;
    for f in 0..opts.frames {
        let fr = render(
            base,
            subject,
            expr,
            clip_intensity(f, opts.frames),
            c,
            key * 1000 + f as u64,
        );
        w.write(fr.image.data())?;
    }
    w.finish()?;
    Ok(())
}

/// Writes a sound-only file (no video stream) with FFmpeg.
fn write_sound_only(path: &Path) -> crate::Result<()> {
    let ok = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:duration=1")
        .args(["-c:a", "pcm_s16le", "-fflags", "+bitexact"])
        .arg(path)
        .status()
        .map_err(|e| io_err(path, e))?
        .success();
    if !ok {
        return Err(io_err(
            path,
            std::io::Error::other("ffmpeg could not write a sound-only file"),
        ));
    }
    Ok(())
}

/// Writes `dfew/` and `afew/` under `opts.out`.
///
/// Errors: I/O under `out`, FFmpeg missing or failing.
pub fn generate_clips(base: &BaseFace, opts: &ClipOptions) -> crate::Result<ClipReport> {
    use rayon::prelude::*;
    let opts = ClipOptions {
        frames: opts.frames.max(2),
        ..opts.clone()
    };
    let subjects: Vec<Subject> = (0..opts.subjects)
        .map(|i| Subject::new(opts.seed ^ 0xc11b, i as u64))
        .collect();
    let mut report = ClipReport {
        frames: opts.frames,
        ..Default::default()
    };
    // DFEW: clip ids in subject-major order; fold = subject mod 5.
    let dfew = opts.out.join("dfew");
    let clips = dfew.join(crate::datasets::clips::DFEW_CLIPS);
    let jobs: Vec<(usize, usize, usize)> = (0..subjects.len())
        .flat_map(|s| (0..DFEW.len()).map(move |c| (s, c)))
        .enumerate()
        .map(|(i, (s, c))| (i + 1, s, c))
        .collect();
    jobs.par_iter()
        .map(|&(id, s, c)| {
            write_clip(
                base,
                &subjects[s],
                DFEW[c].1,
                &opts,
                id as u64,
                &clips.join(format!("{id:05}.mp4")),
            )
        })
        .collect::<crate::Result<Vec<()>>>()?;
    // One more clip that no single-label list names (DFEW's multi-labelled clips).
    let extra = jobs.len() + 1;
    write_clip(
        base,
        &subjects[0],
        "happy",
        &opts,
        extra as u64,
        &clips.join(format!("{extra:05}.mp4")),
    )?;
    report
        .planted
        .push((format!("Clip/original/{extra:05}.mp4"), "unlabelled".into()));
    // A listed clip that is not a video, and one cut in half (its index says 16 frames).
    let corrupt = jobs.len() + 2;
    write_file(
        &clips.join(format!("{corrupt:05}.mp4")),
        &b"\x00\x00\x00\x18ftypmp42 not really a video".repeat(40),
    )?;
    report.planted.push((
        format!("Clip/original/{corrupt:05}.mp4"),
        "not_a_video".into(),
    ));
    let cut = jobs.len() + 3;
    let cut_path = clips.join(format!("{cut:05}.mp4"));
    write_clip(base, &subjects[1], "fear", &opts, cut as u64, &cut_path)?;
    let bytes = std::fs::read(&cut_path).map_err(|e| io_err(&cut_path, e))?;
    write_file(&cut_path, &bytes[..bytes.len() * 2 / 3])?;
    report
        .planted
        .push((format!("Clip/original/{cut:05}.mp4"), "truncated".into()));
    write_file(
        &clips.join("README.txt"),
        b"Synthetic DFEW-style clips written by `prep synth`.\n",
    )?;
    report
        .planted
        .push(("Clip/original/README.txt".into(), "not_a_video_file".into()));
    let mut tests = vec![String::from("video_name,label\n"); 5];
    let mut trains = tests.clone();
    let mut listed: Vec<(usize, usize, usize)> = jobs.clone();
    listed.push((corrupt, 2, 0));
    listed.push((cut, 1, 6));
    for &(id, s, c) in &listed {
        let fold = s % 5;
        for (k, (test, train)) in tests.iter_mut().zip(trains.iter_mut()).enumerate() {
            let row = format!("{id:05},{}\n", c + 1);
            if k == fold {
                test.push_str(&row);
            } else {
                train.push_str(&row);
            }
        }
    }
    for k in 0..5 {
        let dir = dfew.join(crate::datasets::clips::DFEW_SPLITS);
        write_file(
            &dir.join("test(single-labeled)")
                .join(format!("set_{}.csv", k + 1)),
            tests[k].as_bytes(),
        )?;
        write_file(
            &dir.join("train(single-labeled)")
                .join(format!("set_{}.csv", k + 1)),
            trains[k].as_bytes(),
        )?;
    }
    report.dfew_clips = jobs.len();

    // AFEW: subjects with s mod 4 = 3 in Val, the others in Train.
    let afew = opts.out.join("afew");
    let ajobs: Vec<(usize, usize)> = (0..subjects.len())
        .flat_map(|s| (0..AFEW.len()).map(move |c| (s, c)))
        .collect();
    ajobs
        .par_iter()
        .map(|&(s, c)| {
            let split = if s % 4 == 3 { "Val" } else { "Train" };
            let key = 100_000 + (s * AFEW.len() + c) as u64;
            write_clip(
                base,
                &subjects[s],
                AFEW[c].1,
                &opts,
                key,
                &afew
                    .join(split)
                    .join(AFEW[c].0)
                    .join(format!("{:09}.avi", key)),
            )
        })
        .collect::<crate::Result<Vec<()>>>()?;
    report.afew_clips = ajobs.len();
    write_file(
        &afew.join("Train/Happy/000000001.avi"),
        &b"an .avi name, but no AVI inside".repeat(30),
    )?;
    report
        .planted
        .push(("Train/Happy/000000001.avi".into(), "not_a_video".into()));
    let sound = afew.join("Val/Sad/000000002.avi");
    write_sound_only(&sound)?;
    report
        .planted
        .push(("Val/Sad/000000002.avi".into(), "no_video_stream".into()));
    write_clip(
        base,
        &subjects[0],
        "",
        &opts,
        900_000,
        &afew.join("Test/000000003.avi"),
    )?;
    report.planted.push(("Test".into(), "unlabelled".into()));
    Ok(report)
}

/// What [`synth_video`] writes.
#[derive(Debug, Clone)]
pub struct VideoOptions {
    /// The video file (its extension picks the codec: `.avi` MPEG-4, else H.264).
    pub out: PathBuf,
    /// Frame width (default 640).
    pub width: usize,
    /// Frame height (default 480).
    pub height: usize,
    /// Frames (default 150).
    pub frames: usize,
    /// Frames per second (default 30).
    pub fps: f64,
    /// Seed of the identity and noise.
    pub seed: u64,
}

/// The truth of one frame of a synthetic video.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FrameTruth {
    /// Frame index (0-based).
    pub frame: usize,
    /// Whether a face is drawn.
    pub face: bool,
    /// The true landmarks' bounding box (left, top, right, bottom), when a face is drawn.
    pub landmark_box: Option<[f64; 4]>,
    /// The expression shown ("" neutral) and its intensity.
    pub expression: String,
    /// Intensity 0–1.
    pub intensity: f64,
}

/// A test video: one synthetic person moving left to right across the frame, going from
/// neutral to a smile and back, then (after a stretch of frames without a face, the middle
/// tenth) to surprise; and the truth of every frame, also written to `<out>.truth.csv`.
///
/// Errors: I/O, FFmpeg missing or failing.
pub fn synth_video(base: &BaseFace, opts: &VideoOptions) -> crate::Result<Vec<FrameTruth>> {
    let subject = Subject::new(opts.seed ^ 0x71de0, 0);
    let n = opts.frames.max(10);
    if let Some(d) = opts.out.parent() {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    let mut w = VideoWriter::create(
        &opts.out,
        opts.width,
        opts.height,
        opts.fps,
        false,
        VideoCodec::for_path(&opts.out),
        (opts.fps.round() as usize).max(1),
    )?;
    let (gap_start, gap_end) = (n * 45 / 100, n * 55 / 100);
    let mut truth = Vec::with_capacity(n);
    let mut csv = String::from("frame,face,left,top,right,bottom,expression,intensity\n");
    for f in 0..n {
        let t = f as f64 / (n - 1) as f64;
        let canvas = Canvas {
            width: opts.width,
            height: opts.height,
            eye_mid: [0.3 + 0.4 * t, 0.42],
            iod: opts.height as f64 * 0.13,
            fill: 90,
        };
        let (expr, intensity) = if f < gap_start {
            (
                "happy",
                (std::f64::consts::PI * f as f64 / gap_start as f64).sin(),
            )
        } else {
            let u = (f - gap_end.min(f)) as f64 / (n - gap_end).max(1) as f64;
            ("surprise", ease(u * 1.5))
        };
        let row = if (gap_start..gap_end).contains(&f) {
            // No face: the background with the same sensor noise.
            let blank = GrayImage::filled(opts.width, opts.height, canvas.fill);
            let noisy = add_noise(blank, opts.seed, f as u64);
            w.write(noisy.data())?;
            FrameTruth {
                frame: f,
                face: false,
                landmark_box: None,
                expression: String::new(),
                intensity: 0.0,
            }
        } else {
            let fr = render(
                base,
                &subject,
                expr,
                intensity,
                &canvas,
                7_000_000 + f as u64,
            );
            w.write(fr.image.data())?;
            let (xs, ys): (Vec<f64>, Vec<f64>) = fr.landmarks.iter().map(|p| (p[0], p[1])).unzip();
            let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            FrameTruth {
                frame: f,
                face: true,
                landmark_box: Some([min(&xs), min(&ys), max(&xs), max(&ys)]),
                expression: expr.to_string(),
                intensity,
            }
        };
        let b = row.landmark_box.unwrap_or([f64::NAN; 4]);
        csv.push_str(&format!(
            "{},{},{:.1},{:.1},{:.1},{:.1},{},{:.3}\n",
            f, row.face as u8, b[0], b[1], b[2], b[3], row.expression, row.intensity
        ));
        truth.push(row);
    }
    w.finish()?;
    let mut truth_path = opts.out.clone().into_os_string();
    truth_path.push(".truth.csv");
    write_file(Path::new(&truth_path), csv.as_bytes())?;
    Ok(truth)
}

/// Sensor-like noise on a blank frame (so an empty frame is not a flat one).
fn add_noise(mut img: GrayImage, seed: u64, key: u64) -> GrayImage {
    let mut r = shard::rng::KeyedRng::in_domain(shard::rng::KeyedRng::SYNTH, &[seed, key, 0xb1]);
    for v in img.data_mut() {
        *v = (*v as f64 + 2.0 * r.normal()).round().clamp(0.0, 255.0) as u8;
    }
    img
}
