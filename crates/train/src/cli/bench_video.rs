//! `train bench-video`: frames per second of `train predict` on a video, on one core and on two,
//! beside FFmpeg decoding the same video alone. Each core count runs in a child process pinned
//! with `taskset` (FFmpeg, the face threads and libtorch's threads all inherit the pinning), so
//! that "one core" means one core for everything.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchVideoArgs {
    /// A trained run (its first fold models are loaded as `train predict` loads them).
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// The video (e.g. `prep synth-video --out bench-out/video-640x480.mp4 --frames 300`).
    #[arg(long, value_name = "FILE")]
    pub video: PathBuf,
    /// Core counts to measure, each pinned to cores 0..N−1 with taskset.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub cores: Vec<usize>,
    /// Timed repetitions per cell; the median is reported, every repetition listed.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Device (auto, cpu, cuda, cuda:N).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Internal: measure in this process with N threads and print one JSON line.
    #[arg(long, hide = true)]
    pub worker: Option<usize>,
}

/// Median of the rates, and all of them.
fn median(mut v: Vec<f64>) -> (f64, Vec<f64>) {
    let all = v.clone();
    v.sort_by(f64::total_cmp);
    (v.get(v.len() / 2).copied().unwrap_or(0.0), all)
}

fn cell(m: &serde_json::Value) -> String {
    let med = m["median"].as_f64().unwrap_or(0.0);
    let all: Vec<String> = m["all"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_f64())
                .map(|v| format!("{v:.0}"))
                .collect()
        })
        .unwrap_or_default();
    format!("{med:.1} ({})", all.join(" "))
}

pub fn bench_video(a: BenchVideoArgs) -> Result<()> {
    if let Some(threads) = a.worker {
        return worker(&a, threads);
    }
    let info =
        face::video::probe(&a.video).with_context(|| format!("probing {}", a.video.display()))?;
    let exe = std::env::current_exe().context("finding the train binary")?;
    let version = face::video::Ffmpeg::find()?.version.clone();
    println!(
        "video {}: {}x{} {}, {} frames at {:.0} fps; run {}; FFmpeg {version}; median of {} (every repetition in brackets), frames/s",
        a.video.display(),
        info.width,
        info.height,
        info.codec,
        info.frames(),
        info.frame_rate,
        a.run.display(),
        a.repeats
    );
    println!(
        "{:<6} {:<28} {:<28} {:<28} {:<28}",
        "cores", "ffmpeg decode alone", "decode to rgb24 (ours)", "predict", "predict --annotate"
    );
    for &n in &a.cores {
        if n == 0 {
            bail!("--cores: 0 cores");
        }
        let cpus = (0..n).map(|c| c.to_string()).collect::<Vec<_>>().join(",");
        // FFmpeg alone: decode every frame and throw it away.
        let mut rates = Vec::new();
        for _ in 0..a.repeats.max(1) {
            let t = Instant::now();
            let ok = Command::new("taskset")
                .args(["-c", &cpus, "ffmpeg", "-nostdin", "-v", "error", "-threads"])
                .arg(n.to_string())
                .arg("-i")
                .arg(&a.video)
                .args(["-map", "0:v:0", "-f", "null", "-"])
                .status()
                .context("running taskset ffmpeg")?
                .success();
            if !ok {
                bail!("ffmpeg could not decode {}", a.video.display());
            }
            rates.push(info.frames() as f64 / t.elapsed().as_secs_f64());
        }
        let (m, all) = median(rates);
        let ffmpeg = serde_json::json!({"median": m, "all": all});
        let out = Command::new("taskset")
            .args(["-c", &cpus])
            .arg(&exe)
            .args(["bench-video", "--device", &a.device, "--repeats"])
            .arg(a.repeats.to_string())
            .arg("--run")
            .arg(&a.run)
            .arg("--video")
            .arg(&a.video)
            .args(["--worker", &n.to_string()])
            .output()
            .context("running the measuring child")?;
        if !out.status.success() {
            bail!(
                "the {n}-core measurement failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let w: serde_json::Value = serde_json::from_str(line.trim())
            .with_context(|| format!("reading the child's result {line:?}"))?;
        println!(
            "{:<6} {:<28} {:<28} {:<28} {:<28}",
            n,
            cell(&ffmpeg),
            cell(&w["decode"]),
            cell(&w["predict"]),
            cell(&w["annotate"])
        );
    }
    Ok(())
}

/// One core count's measurements, in this (pinned) process.
fn worker(a: &BenchVideoArgs, threads: usize) -> Result<()> {
    tch::set_num_threads(threads as i32);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("thread pool")?;
    let device = train::trainer::pick_device(&a.device)?;
    let p = train::predict::Predictor::load(&a.run, device, face::default_shape_model_path())
        .with_context(|| format!("loading {}", a.run.display()))?;
    let info = face::video::probe(&a.video)?;
    let frames = info.frames() as f64;
    let mut decode = Vec::new();
    for _ in 0..a.repeats.max(1) {
        let t = Instant::now();
        let mut n = 0usize;
        for f in face::video::FrameStream::open(&info, 1, threads)? {
            let f = f?;
            std::hint::black_box(&f.rgb);
            n += 1;
        }
        decode.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let run = |annotate: Option<PathBuf>| -> Result<f64> {
        let opts = train::predict::VideoPredictOptions {
            decoder_threads: threads,
            annotate,
            ..Default::default()
        };
        let v = p.predict_video(&a.video, &opts, &|_, _| {})?;
        if let Some(e) = v.error {
            bail!("{e}");
        }
        Ok(frames / v.seconds)
    };
    // One untimed pass (model and cascade warm-up, page cache).
    run(None)?;
    let mut predict = Vec::new();
    for _ in 0..a.repeats.max(1) {
        predict.push(run(None)?);
    }
    let scratch = tempfile_path()?;
    let mut annotate = Vec::new();
    for _ in 0..a.repeats.max(1) {
        annotate.push(run(Some(scratch.clone()))?);
    }
    let _ = std::fs::remove_file(&scratch);
    let j = |v: Vec<f64>| {
        let (m, all) = median(v);
        serde_json::json!({"median": m, "all": all})
    };
    println!(
        "{}",
        serde_json::json!({"threads": threads, "decode": j(decode), "predict": j(predict), "annotate": j(annotate)})
    );
    Ok(())
}

fn tempfile_path() -> Result<PathBuf> {
    Ok(std::env::temp_dir().join(format!("bench-video-{}.mp4", std::process::id())))
}
