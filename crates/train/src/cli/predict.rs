//! `train predict`: classify images or frame folders with a trained run.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The run directory (runs/<experiment>/<run>).
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Image files (a still image fills every frame slot) or folders of frames (a sequence).
    #[arg(required = true, value_name = "PATH")]
    pub inputs: Vec<PathBuf>,
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
    let p = train::predict::Predictor::load(
        &a.run,
        device,
        a.shape_model
            .clone()
            .unwrap_or_else(face::default_shape_model_path),
    )
    .with_context(|| format!("loading run {}", a.run.display()))?;
    if !unfinished.is_empty() {
        eprintln!(
            "warning: predicting with unfinished folds {} (--allow-partial)",
            unfinished.join(", ")
        );
    }
    let out = p.predict(&a.inputs)?;
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
