//! `train bench`: training-step throughput per precision and batch size.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use train::config::Precision;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    pub batch: Vec<i64>,
    /// Precisions (fp32, tf32, bf16; tf32 and bf16 need CUDA).
    #[arg(long, value_delimiter = ',', default_value = "fp32")]
    pub precision: Vec<String>,
    /// Timed steps (median reported) after 3 warm-up steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Channel multiplier of the network (1 = the paper).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Device (auto, cpu, cuda, cuda:N).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Also stream from this cache through the real loader.
    #[arg(long, value_name = "CACHE")]
    pub cache: Option<PathBuf>,
    /// The optimiser settings of this experiment TOML (optimizer, lr, weight decay, fused Adam,
    /// gradient clipping) for the timed step [default: the paper preset's: Adam at 1e-4, the
    /// fused kernel, no clipping]. The network is still the paper's at --width.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let device = train::trainer::pick_device(&a.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let train_settings = match &a.config {
        Some(f) => {
            train::config::ExperimentConfig::load(f)
                .with_context(|| format!("reading {}", f.display()))?
                .train
        }
        None => train::config::TrainSection::default(),
    };
    let mut rows = Vec::new();
    for p in &a.precision {
        let precision = match p.as_str() {
            "fp32" => Precision::Fp32,
            "tf32" => Precision::Tf32,
            "bf16" => Precision::Bf16,
            other => bail!("precision {other:?}: expected fp32, tf32 or bf16"),
        };
        for &b in &a.batch {
            let mc = train::bench::paper_config(7, a.width);
            let (input, y) = train::bench::synthetic_input(&mc, b, device);
            let ms = train::bench::time_steps(
                &mc,
                &train_settings,
                device,
                precision,
                b,
                3,
                a.steps,
                &mut || {
                    Ok((
                        train::model::ModelInput {
                            face: input.face.shallow_clone(),
                            parts: [
                                input.parts[0].shallow_clone(),
                                input.parts[1].shallow_clone(),
                                input.parts[2].shallow_clone(),
                            ],
                        },
                        y.shallow_clone(),
                    ))
                },
            )?;
            rows.push(train::bench::BenchRow::new("synthetic", p, b, ms));
            if let Some(c) = &a.cache {
                let (mut mc2, mut next) = train::bench::cache_inputs(c, b as usize, device)?;
                mc2.width = a.width;
                let ms = train::bench::time_steps(
                    &mc2,
                    &train_settings,
                    device,
                    precision,
                    b,
                    3,
                    a.steps,
                    &mut *next,
                )?;
                rows.push(train::bench::BenchRow::new("cache", p, b, ms));
            }
        }
    }
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!(
            "device {device:?}, width {}, {:?} at lr {}, median of {} steps",
            a.width, train_settings.optimizer, train_settings.lr, a.steps
        );
        println!(
            "{:<10} {:<9} {:>6} {:>10} {:>12}",
            "input", "precision", "batch", "ms/step", "samples/s"
        );
        for r in &rows {
            println!(
                "{:<10} {:<9} {:>6} {:>10.1} {:>12.1}",
                r.input, r.precision, r.batch, r.median_ms, r.samples_per_s
            );
        }
    }
    Ok(())
}
