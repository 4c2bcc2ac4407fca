//! A run's `summary.md` and `summary.json`: per fold and over folds, and every test sample
//! pooled.

use super::confusion::{Confusion, Metrics};
use super::records::FoldResult;
use crate::config::ExperimentConfig;
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Machine-readable summary of a run (`summary.json`), read by `train report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// Experiment name.
    pub experiment: String,
    /// Per-fold results.
    pub folds: Vec<FoldResult>,
    /// Mean test accuracy over folds.
    pub mean: f64,
    /// Sample standard deviation over folds (0 for one fold).
    pub std: f64,
    /// Mean of the per-fold oracle accuracies (optimistic; labelled).
    pub oracle_mean: f64,
    /// Per-class recall from the summed confusion matrices.
    pub recall: Vec<f64>,
    /// Class names.
    pub classes: Vec<String>,
    /// Mean and sample std over folds of the balanced accuracy (mean class accuracy).
    #[serde(default)]
    pub balanced_accuracy: (f64, f64),
    /// Mean and sample std over folds of the macro-F1.
    #[serde(default)]
    pub macro_f1: (f64, f64),
    /// Every figure of the folds' test samples pooled (the summed confusion matrices), with
    /// bootstrap intervals over those samples.
    #[serde(default)]
    pub pooled: Metrics,
}

/// The per-fold confusion matrices of `folds` summed.
pub fn pooled_confusion(classes: usize, folds: &[&FoldResult]) -> Confusion {
    let mut total = Confusion::new(classes);
    for f in folds {
        for (i, row) in f.confusion.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if let Some(c) = total.counts.get_mut(i).and_then(|r| r.get_mut(j)) {
                    *c += v;
                }
            }
        }
    }
    total
}

/// The seed of a run's pooled bootstrap (a fixed stream: the interval is a property of the
/// predictions, not of a training seed).
pub const POOLED_BOOTSTRAP_KEY: u64 = 0x0090_01ed;

/// Mean and std over folds of a figure computed from each fold's confusion matrix.
pub fn fold_mean_std(folds: &[&FoldResult], figure: impl Fn(&Confusion) -> f64) -> (f64, f64) {
    let v: Vec<f64> = folds
        .iter()
        .filter(|f| !f.confusion.is_empty())
        .map(|f| {
            figure(&Confusion {
                counts: f.confusion.clone(),
            })
        })
        .collect();
    mean_std(&v)
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    (m, s)
}

/// The headline figures: mean ± sample std over folds, or the one fold's figures without a
/// spread (a single split has none to show).
pub fn headline(
    folds: usize,
    accuracy: (f64, f64),
    balanced_accuracy: (f64, f64),
    macro_f1: (f64, f64),
) -> String {
    if folds > 1 {
        format!(
            "**Accuracy: {:.2} ± {:.2} %** (mean ± sample std over {folds} folds). Balanced \
             accuracy (mean class accuracy) {:.2} ± {:.2} %, macro-F1 {:.2} ± {:.2} %.",
            100.0 * accuracy.0,
            100.0 * accuracy.1,
            100.0 * balanced_accuracy.0,
            100.0 * balanced_accuracy.1,
            100.0 * macro_f1.0,
            100.0 * macro_f1.1
        )
    } else {
        format!(
            "**Accuracy: {:.2} %**. Balanced accuracy (mean class accuracy) {:.2} %, macro-F1 \
             {:.2} %.",
            100.0 * accuracy.0,
            100.0 * balanced_accuracy.0,
            100.0 * macro_f1.0
        )
    }
}

/// The summary's one line about the network and where its weights started: only the settings
/// that apply to the model kind (a CNN has no branches, deformation or fusion).
fn network_line(cfg: &ExperimentConfig) -> String {
    let m = &cfg.model;
    let face = m
        .face_size
        .map(|(h, w)| format!("face {h}×{w}"))
        .unwrap_or_else(|| "the cache's face size".to_string());
    let start = match (&m.init_from, &m.pretrained) {
        (Some(src), _) => format!("started from {src}"),
        (None, Some(p)) => format!("SSM from {}", p.display()),
        (None, None) => "random init".to_string(),
    };
    match m.kind {
        crate::config::ModelKind::Cnn => format!(
            "Plain CNN, width {}, {face}, {start}.",
            m.width
        ),
        crate::config::ModelKind::Mgln => format!(
            "MGLN, branches {:?}, deform {:?}, fusion weight {}, mixup α {}, width {}, {face}, {start}.",
            m.branches,
            m.deform,
            m.fusion_weight,
            cfg.train.mixup_alpha,
            m.width
        ),
    }
}

/// Writes `summary.md` and `summary.json`.
pub fn write_summary(
    run: &Path,
    cfg: &ExperimentConfig,
    classes: &[String],
    folds: &[FoldResult],
) -> Result<RunSummary> {
    let accs: Vec<f64> = folds.iter().map(|f| f.accuracy).collect();
    let (mean, std) = mean_std(&accs);
    let oracle_mean = mean_std(&folds.iter().map(|f| f.oracle_accuracy).collect::<Vec<_>>()).0;
    let refs: Vec<&FoldResult> = folds.iter().collect();
    let total = pooled_confusion(classes.len(), &refs);
    let recall = total.recalls();
    let pooled = total.metrics(&[POOLED_BOOTSTRAP_KEY]);
    let balanced_accuracy = fold_mean_std(&refs, Confusion::balanced_accuracy);
    let macro_f1 = fold_mean_std(&refs, Confusion::macro_f1);
    let mut md = format!(
        "# {}\n\nProtocol {:?}, {} fold(s), selection: {}. {}\n\n| fold | accuracy | balanced accuracy | macro-F1 | accuracy 95 % CI | epoch | oracle (best test epoch, optimistic) |\n|---|---|---|---|---|---|---|\n",
        cfg.name,
        cfg.protocol,
        folds.len(),
        folds.first().map(|f| f.selection.as_str()).unwrap_or("-"),
        network_line(cfg),
    );
    for f in folds {
        let m = f.metrics.clone().unwrap_or_default();
        md.push_str(&format!(
            "| {} | {:.2} % | {:.2} % | {:.2} % | {:.1}–{:.1} % | {} | {:.2} % |\n",
            f.fold,
            100.0 * f.accuracy,
            100.0 * m.balanced_accuracy,
            100.0 * m.macro_f1,
            100.0 * m.accuracy_ci.0,
            100.0 * m.accuracy_ci.1,
            f.epoch,
            100.0 * f.oracle_accuracy
        ));
    }
    md.push_str(&format!(
        "\n{} Oracle {} {:.2} % — selected on the test data, shown only for comparison with the \
         authors' code.\n\n\
         All {} test samples pooled: accuracy {:.2} % (95 % bootstrap CI {:.2}–{:.2} %), \
         balanced accuracy {:.2} %, macro-F1 {:.2} % (CI {:.2}–{:.2} %).\n\n\
         | class | precision | recall | F1 | support |\n|---|---|---|---|---|\n",
        headline(folds.len(), (mean, std), balanced_accuracy, macro_f1),
        if folds.len() > 1 { "mean" } else { "accuracy" },
        100.0 * oracle_mean,
        pooled.samples,
        100.0 * pooled.accuracy,
        100.0 * pooled.accuracy_ci.0,
        100.0 * pooled.accuracy_ci.1,
        100.0 * pooled.balanced_accuracy,
        100.0 * pooled.macro_f1,
        100.0 * pooled.macro_f1_ci.0,
        100.0 * pooled.macro_f1_ci.1,
    ));
    let pc = &pooled.classes;
    for (i, c) in classes.iter().enumerate() {
        let pct = |v: Option<&Option<f64>>| match v {
            Some(Some(x)) => format!("{:.1} %", 100.0 * x),
            _ => "–".into(),
        };
        md.push_str(&format!(
            "| {c} | {} | {} | {} | {} |\n",
            pct(pc.precision.get(i)),
            pct(pc.recall.get(i)),
            pct(pc.f1.get(i)),
            pc.support.get(i).copied().unwrap_or(0)
        ));
    }
    md.push_str(
        "\nFigures per fold (PNG and SVG): `fold-*/confusion.png` (rows true class, columns \
         predicted, counts and row percentages at the reported epoch), `fold-*/curves.png` (losses, \
         accuracies and learning rate per epoch, the reported epoch dashed). TensorBoard: \
         `tensorboard --logdir <this directory>`.\n",
    );
    shard::atomic_write(&run.join("summary.md"), md.as_bytes())?;
    let s = RunSummary {
        experiment: cfg.name.clone(),
        folds: folds.to_vec(),
        mean,
        std,
        oracle_mean,
        recall,
        classes: classes.to_vec(),
        balanced_accuracy,
        macro_f1,
        pooled,
    };
    shard::atomic_write(
        &run.join("summary.json"),
        &serde_json::to_vec_pretty(&s).map_err(|e| TrainError::serialize("summary.json", e))?,
    )?;
    Ok(s)
}
