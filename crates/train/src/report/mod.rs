//! What a run leaves for people to read, and `train report`'s view of one or several runs.
//!
//! * `run` — a run's outputs: `metrics.jsonl` ([`EpochRecord`]), per fold `result.json`
//!   ([`FoldResult`]) and `confusion.csv` ([`Confusion`]), `summary.md` / `summary.json`.
//! * `compare` — runs read back from their directories ([`read_run`], [`compare`]), the paired
//!   comparison, and the one row model every rendering uses ([`RunRow`], [`FoldRow`]).
//! * `markdown`, `csv`, [`html`] — the renderings of those rows.
//! * [`figures`] — confusion matrices and training curves (PNG, SVG, inline SVG).
//! * [`tensorboard`] — TensorBoard event files per fold.

mod compare;
mod csv;
pub mod figures;
mod html;
mod markdown;
mod run;
pub mod tensorboard;

pub use compare::{
    compare, paired, read_run, sign_flip_p, Comparison, FoldRow, FoldStatus, PairedComparison,
    RunRecord, RunRow,
};
pub use html::{escape, html};
pub use run::{
    fold_result, mean_std, read_metrics, timestamp, write_metrics, write_summary, Confusion,
    EpochRecord, FoldResult, RunSummary,
};
