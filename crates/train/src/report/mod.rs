//! What a run leaves for people to read, and `train report`'s view of one or several runs.
//!
//! * `run` — a run's outputs: `metrics.jsonl` ([`EpochRecord`]), per fold `result.json`
//!   ([`FoldResult`]) and `confusion.csv` ([`Confusion`]), `summary.md` / `summary.json`.
//! * `compare` — runs read back from their directories ([`read_run`], [`compare`]), the paired
//!   comparison, and the one row model every rendering uses ([`RunRow`], [`FoldRow`]).
//! * `metrics` — balanced accuracy, macro-F1, per-class scores, bootstrap intervals, McNemar.
//! * `predictions` — `fold-*/predictions.parquet`, one row per test sample.
//! * `ablation` — a sweep's ablation table: per setting over seeds and folds, paired with the
//!   baseline.
//! * `markdown`, `csv`, [`html`] — the renderings of those rows.
//! * [`figures`] — confusion matrices and training curves (PNG, SVG, inline SVG).
//! * [`tensorboard`] — TensorBoard event files per fold.

mod ablation;
mod compare;
mod csv;
pub mod figures;
mod html;
mod markdown;
mod metrics;
mod predictions;
mod run;
pub mod tensorboard;

pub use ablation::{ablation, is_sweep_dir, AblationReport, SettingPair, SettingRow};
pub use compare::{
    compare, paired, read_run, sign_flip_p, Comparison, FoldRow, FoldStatus, PairedComparison,
    RunRecord, RunRow,
};
pub use html::{escape, html};
pub use metrics::{mcnemar_exact_p, name_key, ClassScores, McNemar, Metrics, BOOTSTRAP_DRAWS};
pub use predictions::{read_predictions, write_predictions, PredictionRow};
pub use run::{
    fold_mean_std, fold_result, mean_std, pooled_confusion, read_metrics, timestamp, write_metrics,
    write_summary, Confusion, EpochRecord, FoldResult, RunSummary, POOLED_BOOTSTRAP_KEY,
};
