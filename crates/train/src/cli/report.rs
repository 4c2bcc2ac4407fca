//! `train report`: one run or a comparison, as Markdown, CSV and a self-contained HTML page.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run directories (runs/<experiment>/<run>); the first is the baseline of the paired
    /// comparison. Or one sweep directory (runs/<experiment>/<sweep>, holding sweep.json): its
    /// ablation table.
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Write the runs table (one row per run) as CSV to FILE, and the per-fold table (one row
    /// per run and fold) beside it as <FILE stem>.folds.csv [default: not written].
    #[arg(long, visible_alias = "out", value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the Markdown report to FILE [default: printed only].
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write one self-contained HTML page (tables, confusion matrices and curves as inline SVG;
    /// no network, no script) to FILE [default: not written]. Open it in any browser.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Writes `bytes` to `out` atomically and says so.
fn write(out: &std::path::Path, bytes: &[u8]) -> Result<()> {
    shard::atomic_write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("written: {}", out.display());
    Ok(())
}

/// A sweep directory's ablation table, in the same three forms.
fn ablation(a: &ReportArgs) -> Result<()> {
    let r = train::report::ablation(&a.runs[0])
        .with_context(|| format!("reading sweep {}", a.runs[0].display()))?;
    let md = r.markdown();
    println!("{md}");
    if let Some(out) = &a.csv {
        use polars::prelude::SerWriter;
        let mut df = r.table()?;
        let mut buf = Vec::new();
        polars::prelude::CsvWriter::new(&mut buf)
            .finish(&mut df)
            .with_context(|| format!("writing {}", out.display()))?;
        write(out, &buf)?;
    }
    if let Some(out) = &a.markdown {
        write(out, md.as_bytes())?;
    }
    if let Some(out) = &a.html {
        write(out, r.html().as_bytes())?;
    }
    Ok(())
}

pub fn report(a: ReportArgs) -> Result<()> {
    if a.runs.len() == 1 && train::report::is_sweep_dir(&a.runs[0]) {
        return ablation(&a);
    }
    let c = train::report::compare(&a.runs).context("reading the runs")?;
    let md = c.markdown();
    println!("{md}");
    if let Some(out) = &a.csv {
        use polars::prelude::SerWriter;
        let folds_out = out.with_file_name(format!(
            "{}.folds.csv",
            out.file_stem().unwrap_or_default().to_string_lossy()
        ));
        for (path, mut df) in [
            (out.clone(), c.runs_table()?),
            (folds_out, c.folds_table()?),
        ] {
            let mut buf = Vec::new();
            polars::prelude::CsvWriter::new(&mut buf)
                .finish(&mut df)
                .with_context(|| format!("writing {}", path.display()))?;
            shard::atomic_write(&path, &buf)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("written: {}", path.display());
        }
    }
    if let Some(out) = &a.markdown {
        shard::atomic_write(out, md.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        println!("written: {}", out.display());
    }
    if let Some(out) = &a.html {
        let page = train::report::html(&c).context("drawing the HTML report")?;
        shard::atomic_write(out, page.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        println!(
            "written: {} (open it in a browser: file://{})",
            out.display(),
            std::fs::canonicalize(out)
                .unwrap_or_else(|_| out.clone())
                .display()
        );
    }
    Ok(())
}
