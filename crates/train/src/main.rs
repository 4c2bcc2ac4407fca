//! `train`: MGLN experiments on a shard cache.

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Train and evaluate MGLN (multi-task global-local network) on caches built by `prep`.
#[derive(Parser, Debug)]
#[command(name = "train", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report what libtorch sees: CUDA, cuDNN, device count, CPU threads.
    Env {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Env { json } => {
            let r = train::device_report();
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("tch          {}", r.tch);
                println!("cuda         {} ({} devices)", r.cuda, r.cuda_devices);
                println!("cudnn        {}", r.cudnn);
                println!("cpu threads  {}", r.cpu_threads);
            }
        }
    }
    Ok(())
}
