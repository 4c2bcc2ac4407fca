//! `train report`: runs read back from their directories and compared, and a sweep's ablation
//! table. Above the trainer: it reads what runs wrote ([`crate::outputs`]) and nothing calls it
//! but the `train` binary.
//!
//! * `runs` — runs read back from their directories ([`read_run`], [`RunRecord`]).
//! * `compare` — several runs side by side ([`compare`]), the paired comparison, the run and fold
//!   rows ([`RunRow`], [`FoldRow`]).
//! * `rows` — the figures every table's row shows, a run's or a sweep setting's alike
//!   ([`FigureRow`], [`PairedFigures`]), with their Markdown, HTML and table cells.
//! * `stats` — McNemar's exact test and the sign-flip permutation test.
//! * `ablation` — a sweep's ablation table: per setting over seeds and folds, paired with the
//!   baseline.
//! * `markdown`, `csv`, [`html`] — the renderings of those rows.

mod ablation;
mod compare;
mod csv;
mod html;
mod markdown;
mod rows;
mod runs;
mod stats;

pub use ablation::{ablation, is_sweep_dir, AblationReport, SettingRow};
pub use compare::{compare, paired, Comparison, FoldRow, PairedComparison, RunRow};
pub use html::{escape, html};
pub use rows::{FigureRow, PairedFigures};
pub use runs::{read_run, FoldStatus, RunRecord};
pub use stats::{mcnemar_exact_p, sign_flip_p, McNemar};
