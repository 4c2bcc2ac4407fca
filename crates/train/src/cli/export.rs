//! `train export`: a trained fold as a model directory for PyTorch and ONNX Runtime.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The run directory (runs/<experiment>/<run>).
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// The fold to export (fold3 or 3) into OUT itself [default: every trained fold, each
    /// into OUT/<fold>/].
    #[arg(long, value_name = "K")]
    pub fold: Option<String>,
    /// Where to write weights.safetensors, model.json and MODEL_CARD.md.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The licence of the training data, as you declare it, for the model card (e.g. "CK+:
    /// non-commercial research, see the dataset's agreement") [default: "not declared"].
    #[arg(long, value_name = "TEXT")]
    pub data_licence: Option<String>,
    /// Export folds that did not finish (weights from mid-schedule) [default: refuse].
    #[arg(long)]
    pub allow_partial: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let models = train::export::export(
        &a.run,
        &train::export::ExportOptions {
            fold: a.fold.clone(),
            allow_partial: a.allow_partial,
            data_licence: a.data_licence.clone(),
            out: a.out.clone(),
        },
    )
    .with_context(|| format!("exporting {}", a.run.display()))?;
    println!("| fold | tensors | directory |\n|---|---|---|");
    for m in &models {
        println!("| {} | {} | {} |", m.fold, m.tensors, m.dir.display());
    }
    println!(
        "\nPyTorch: from fer_shard import mgln; model, meta = mgln.load(\"{}\")\n\
         ONNX:    make export-onnx RUN={}{}",
        models[0].dir.display(),
        a.run.display(),
        a.fold
            .as_ref()
            .map(|f| format!(" FOLD={f}"))
            .unwrap_or_default()
    );
    Ok(())
}
