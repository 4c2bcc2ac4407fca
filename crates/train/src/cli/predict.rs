//! `train predict`: classify images or frame folders with a trained run.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The run directory (runs/<experiment>/<run>).
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Image files (a still image fills every frame slot), folders of frames (a sequence;
    /// with --each-image, a folder of separate images), or video files (.mp4, .avi, .mkv, .mov,
    /// .webm, …: every frame predicted, see --out-dir).
    #[arg(required = true, value_name = "PATH")]
    pub inputs: Vec<PathBuf>,
    /// Videos: where each video's per-frame table (<stem>.csv, <stem>.jsonl), probability plot
    /// (<stem>_probabilities.png/.svg) and, with --annotate, annotated video go.
    #[arg(long, default_value = "processed", value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Videos: predict every N-th frame only (frames 1, N+1, 2N+1, …).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub every: usize,
    /// Videos: frames per sliding window; the model's frame slots are picked from the frames
    /// with a face in the window ending at each frame, at the cache's frame positions
    /// [default: the model's number of frame slots].
    #[arg(long, value_name = "W")]
    pub window: Option<usize>,
    /// Videos: also write <stem>_annotated.mp4 with each frame's box, landmarks and top class.
    #[arg(long)]
    pub annotate: bool,
    /// CPU threads for face processing and libtorch [default: every core].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Treat each folder as a set of separate images (every .png/.jpg/.jpeg/.bmp/.tif/.pgm
    /// file in it, sorted) instead of the frames of one sequence [default: a folder is a
    /// sequence].
    #[arg(long)]
    pub each_image: bool,
    /// Only these fold models vote (comma-separated, fold3 or 3) [default: every fold].
    #[arg(long, value_delimiter = ',', value_name = "K,…")]
    pub fold: Option<Vec<String>>,
    /// Also write one CSV row per input to FILE: input, class, error, the face box, the
    /// detector, p_<class> per class, and the 68 landmarks as x0,y0 … x67,y67 (source pixels)
    /// [default: not written].
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Also write one JSON object per line and input to FILE (the fields of --json's
    /// predictions, with the landmarks) [default: not written].
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Write, per input i, DIR/<i>/: the crops as PNG, the exact network inputs
    /// (inputs.safetensors: face, eyes, nose, mouth, normalised), every fold's scores
    /// (outputs.safetensors) and input.json — what an exported model needs to reproduce this
    /// prediction outside Rust [default: not written].
    #[arg(long, value_name = "DIR")]
    pub dump_crops: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device (auto, cpu, cuda, cuda:N).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// dlib 68-point model [default: /usr/share/dlib/shape_predictor_68_face_landmarks.dat].
    #[arg(long, value_name = "FILE")]
    pub shape_model: Option<PathBuf>,
    /// Predict with a run whose folds did not all finish (their models are from mid-schedule)
    /// [default: refuse such runs].
    #[arg(long)]
    pub allow_partial: bool,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    if let Some(n) = a.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        tch::set_num_threads(n as i32);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    anyhow::ensure!(a.every > 0, "--every must be at least 1");
    let device = train::trainer::pick_device(&a.device)?;
    let unfinished = train::predict::unfinished_folds(&a.run);
    if !unfinished.is_empty() && !a.allow_partial {
        bail!(
            "run {} has unfinished folds ({}): their models stopped mid-schedule. Finish it with \
             `train run --resume {}`, or pass --allow-partial",
            a.run.display(),
            unfinished.join(", "),
            a.run.display()
        );
    }
    let p = train::predict::Predictor::load_folds(
        &a.run,
        device,
        a.shape_model
            .clone()
            .unwrap_or_else(face::default_shape_model_path),
        a.fold.as_deref(),
    )
    .with_context(|| format!("loading run {}", a.run.display()))?;
    if !unfinished.is_empty() {
        eprintln!(
            "warning: predicting with unfinished folds {} (--allow-partial)",
            unfinished.join(", ")
        );
    }
    let inputs = expand_inputs(&a.inputs, a.each_image)?;
    let (videos, stills): (Vec<PathBuf>, Vec<PathBuf>) = inputs.into_iter().partition(|p| {
        !p.is_dir()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(face::video::is_video_name)
    });
    let mut out = p.predict_dumping(&stills, a.dump_crops.as_deref())?;
    out.extend(super::predict_video::predict_videos(
        &p,
        &videos,
        &super::predict_video::VideoRequest {
            out_dir: &a.out_dir,
            every: a.every,
            window: a.window,
            annotate: a.annotate,
        },
    )?);
    if let Some(f) = &a.csv {
        write_csv(f, p.classes(), &out)?;
        eprintln!("written: {}", f.display());
    }
    if let Some(f) = &a.jsonl {
        let mut text = String::new();
        for r in &out {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        shard::atomic_write(f, text.as_bytes())
            .with_context(|| format!("writing {}", f.display()))?;
        eprintln!("written: {}", f.display());
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"classes": p.classes(), "predictions": out})
            )?
        );
    } else {
        print!(
            "{:<40} {:<12} {:<22} {:<24}",
            "input", "class", "face box (l,t,r,b)", "found by"
        );
        for c in p.classes() {
            print!(" {:>9}", c.chars().take(9).collect::<String>());
        }
        println!();
        for r in &out {
            let bx = r
                .face_box
                .map(|b| format!("{},{},{},{}", b[0], b[1], b[2], b[3]))
                .unwrap_or_else(|| "-".into());
            print!(
                "{:<40} {:<12} {:<22} {:<24}",
                r.input,
                r.class.as_deref().unwrap_or("-"),
                bx,
                r.detector.as_deref().unwrap_or("-")
            );
            match &r.error {
                Some(e) => println!(" error: {e}"),
                None => {
                    for v in &r.probabilities {
                        print!(" {:>9.3}", v);
                    }
                    println!();
                }
            }
        }
    }
    let failed: Vec<&str> = out
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.input.as_str())
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} inputs could not be classified: {}",
        failed.len(),
        out.len(),
        failed.join(", ")
    );
    Ok(())
}

/// Image files in the order given; with `each_image`, a folder becomes its image files, sorted.
fn expand_inputs(inputs: &[PathBuf], each_image: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if each_image && p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("listing {}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.extension().is_some_and(|x| {
                        matches!(
                            x.to_string_lossy().to_ascii_lowercase().as_str(),
                            "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff" | "pgm"
                        )
                    })
                })
                .collect();
            files.sort();
            anyhow::ensure!(
                !files.is_empty(),
                "{}: no images in the folder",
                p.display()
            );
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// One CSV row per prediction (RFC 4180 quoting).
fn write_csv(
    path: &std::path::Path,
    classes: &[String],
    out: &[train::predict::Prediction],
) -> Result<()> {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut head = vec![
        "input".to_string(),
        "class".into(),
        "error".into(),
        "face_left".into(),
        "face_top".into(),
        "face_right".into(),
        "face_bottom".into(),
        "detector".into(),
    ];
    head.extend(classes.iter().map(|c| q(&format!("p_{c}"))));
    head.extend((0..68).flat_map(|i| [format!("x{i}"), format!("y{i}")]));
    let mut text = head.join(",");
    text.push('\n');
    for r in out {
        let mut row = vec![
            q(&r.input),
            q(r.class.as_deref().unwrap_or("")),
            q(r.error.as_deref().unwrap_or("")),
        ];
        match r.face_box {
            Some(b) => row.extend(b.iter().map(|v| v.to_string())),
            None => row.extend(std::iter::repeat_n(String::new(), 4)),
        }
        row.push(q(r.detector.as_deref().unwrap_or("")));
        if r.probabilities.len() == classes.len() {
            row.extend(r.probabilities.iter().map(|p| format!("{p:.6}")));
        } else {
            row.extend(std::iter::repeat_n(String::new(), classes.len()));
        }
        match &r.landmarks {
            Some(l) if l.len() == 68 => row.extend(
                l.iter()
                    .flat_map(|p| [format!("{:.2}", p[0]), format!("{:.2}", p[1])]),
            ),
            _ => row.extend(std::iter::repeat_n(String::new(), 136)),
        }
        text.push_str(&row.join(","));
        text.push('\n');
    }
    shard::atomic_write(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
