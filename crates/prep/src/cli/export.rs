//! `prep export`: a cache's crops as PNG folders (torchvision ImageFolder layout).

use anyhow::{Context, Result};
use clap::Args;
use prep::build::Progress;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Cache directory (holding manifest.json); it is verified as it is read.
    #[arg(value_name = "CACHE")]
    pub cache: PathBuf,
    /// Folder to create (it must not exist): <out>/<split>/<class>/<id>.png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which crop: face, or a part crop of one frame slot (eyes/0, nose/1, mouth/2, …).
    #[arg(long, default_value = "face", value_name = "PLANE")]
    pub plane: String,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let cache = shard::Cache::open_shared(&a.cache, &mut |holder| {
        eprintln!(
            "note: {} is being written by {}; waiting",
            a.cache.display(),
            shard::lock::describe_holder(holder)
        )
    })
    .with_context(|| format!("{}", a.cache.display()))?;
    let bars = crate::cli::progress::Bars::new();
    bars.stage("export", cache.len());
    let summary = prep::export::export_image_folders(&cache, &a.out, &a.plane, &|| bars.advance(1))
        .with_context(|| format!("{} → {}", a.cache.display(), a.out.display()))?;
    bars.done();
    let classes: Vec<&String> = {
        let mut c: Vec<&String> = summary.counts.values().flat_map(|m| m.keys()).collect();
        c.sort();
        c.dedup();
        c
    };
    println!(
        "{} ({}): {} PNG files",
        summary.out.display(),
        summary.plane,
        summary.files()
    );
    print!("{:<12}", "split");
    for c in &classes {
        print!(" {:>10}", truncate(c, 10));
    }
    println!(" {:>8}", "total");
    for (split, by_class) in &summary.counts {
        print!("{split:<12}");
        for c in &classes {
            print!(" {:>10}", by_class.get(*c).copied().unwrap_or(0));
        }
        println!(" {:>8}", by_class.values().sum::<u64>());
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
