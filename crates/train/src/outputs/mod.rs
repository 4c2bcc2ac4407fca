//! What a run writes while it runs, below the trainer: per epoch `metrics.jsonl`
//! ([`EpochRecord`]), per fold `result.json` ([`FoldResult`]), the confusion matrix and the
//! figures papers report from it ([`Confusion`], [`Metrics`]), `predictions.parquet`, the
//! figures, TensorBoard events, the reported epoch's weights, and at the end `summary.md` /
//! `summary.json`; and the readers of those files for whoever reads a run back (`train report`,
//! `train predict`, `train export`, `model.init_from`, `train eval`).
//!
//! * [`records`] — `metrics.jsonl` and `result.json`; [`summary`] — the run's summary;
//! * [`confusion`] — accuracy, balanced accuracy, macro-F1, per-class scores, bootstrap intervals;
//! * [`predictions`] — one row per test sample; [`weights`] — the reported epoch's weights;
//! * [`figures`] — confusion matrices and curves; [`tensorboard`] — event files;
//! * [`run_files`] — `run.json` and fold names read back.

pub mod confusion;
pub mod figures;
pub mod predictions;
pub mod records;
pub mod run_files;
pub mod summary;
pub mod tensorboard;
pub mod weights;

pub use confusion::{ClassScores, Confusion, Metrics, BOOTSTRAP_DRAWS};
pub use predictions::{read_predictions, write_predictions, PredictionRow, ScoredSample};
pub use records::{fold_result, read_metrics, timestamp, write_metrics, EpochRecord, FoldResult};
pub use run_files::{fold_name, read_run_json, trained_folds};
pub use summary::{
    fold_mean_std, mean_std, pooled_confusion, write_summary, RunSummary, POOLED_BOOTSTRAP_KEY,
};
pub use weights::{
    fold_weights, load_fold_weights, load_model_vars, FoldWeights, REPORTED_WEIGHTS,
};
