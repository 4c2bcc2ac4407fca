//! `fold-*/predictions.parquet`: every test sample of a fold at the reported epoch, with the
//! fused class probabilities — what McNemar's test, error analysis and ensembles need.
//!
//! Columns: `record` (u64, the cache's global record number), `sample_id`, `subject`, `label`
//! (i64), `label_name`, `predicted` (i64), `predicted_name`, `correct` (bool), then one f32
//! column `p_<class name>` per class in label order.

use crate::loader::SampleInfo;
use crate::{Result, TrainError};
use polars::prelude::*;
use std::path::Path;

/// One evaluated sample: its record, label, the fused prediction and its class probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSample {
    /// Global record number in the cache.
    pub record: u64,
    /// The record's label.
    pub label: i64,
    /// The arg-max of `probabilities` (the first on ties, as libtorch's argmax).
    pub predicted: i64,
    /// The fused class probabilities (sum 1).
    pub probabilities: Vec<f32>,
}

/// One row of `predictions.parquet` as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// Global record number in the cache.
    pub record: u64,
    /// The sample's id in the cache.
    pub sample_id: String,
    /// The sample's subject.
    pub subject: String,
    /// True class.
    pub label: i64,
    /// Predicted class.
    pub predicted: i64,
    /// Class probabilities in label order.
    pub probabilities: Vec<f32>,
}

impl PredictionRow {
    /// Whether the prediction is right.
    pub fn correct(&self) -> bool {
        self.label == self.predicted
    }
}

fn table_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::RunFile {
        path: path.to_path_buf(),
        reason: format!("predictions table: {e}"),
    }
}

/// Writes `path` atomically from scored samples; `infos` (indexed by record) gives sample ids
/// and subjects (empty strings when a record is not in it).
///
/// Errors: [`TrainError::Checkpoint`] when the table cannot be built, I/O.
pub fn write_predictions(
    path: &Path,
    classes: &[String],
    scored: &[ScoredSample],
    infos: &[SampleInfo],
) -> Result<()> {
    let info = |r: u64| infos.get(r as usize).filter(|i| i.record == r);
    let name = |c: i64| {
        usize::try_from(c)
            .ok()
            .and_then(|c| classes.get(c))
            .map_or("?", String::as_str)
    };
    let mut cols = vec![
        Column::new(
            "record".into(),
            scored.iter().map(|s| s.record).collect::<Vec<u64>>(),
        ),
        Column::new(
            "sample_id".into(),
            scored
                .iter()
                .map(|s| info(s.record).map_or("", |i| i.sample_id.as_str()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "subject".into(),
            scored
                .iter()
                .map(|s| info(s.record).map_or("", |i| i.subject.as_str()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            scored.iter().map(|s| s.label).collect::<Vec<i64>>(),
        ),
        Column::new(
            "label_name".into(),
            scored.iter().map(|s| name(s.label)).collect::<Vec<_>>(),
        ),
        Column::new(
            "predicted".into(),
            scored.iter().map(|s| s.predicted).collect::<Vec<i64>>(),
        ),
        Column::new(
            "predicted_name".into(),
            scored.iter().map(|s| name(s.predicted)).collect::<Vec<_>>(),
        ),
        Column::new(
            "correct".into(),
            scored
                .iter()
                .map(|s| s.label == s.predicted)
                .collect::<Vec<bool>>(),
        ),
    ];
    for (k, c) in classes.iter().enumerate() {
        cols.push(Column::new(
            format!("p_{c}").into(),
            scored
                .iter()
                .map(|s| s.probabilities.get(k).copied().unwrap_or(f32::NAN))
                .collect::<Vec<f32>>(),
        ));
    }
    let mut df = DataFrame::new(scored.len(), cols).map_err(|e| table_err(path, e))?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(&mut df)
        .map_err(|e| table_err(path, e))?;
    shard::atomic_write(path, &buf)?;
    Ok(())
}

/// Reads `predictions.parquet` (the class probabilities from the `p_*` columns, in column
/// order).
///
/// Errors: [`TrainError::Io`] for a missing file, [`TrainError::Checkpoint`] for a table without
/// the columns above.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionRow>> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| table_err(path, e))?;
    let col = |n: &str| df.column(n).map_err(|e| table_err(path, e));
    let records = col("record")?
        .u64()
        .map_err(|e| table_err(path, e))?
        .clone();
    let ids = col("sample_id")?
        .str()
        .map_err(|e| table_err(path, e))?
        .clone();
    let subjects = col("subject")?
        .str()
        .map_err(|e| table_err(path, e))?
        .clone();
    let labels = col("label")?.i64().map_err(|e| table_err(path, e))?.clone();
    let predicted = col("predicted")?
        .i64()
        .map_err(|e| table_err(path, e))?
        .clone();
    let probs: Vec<Float32Chunked> = df
        .get_column_names()
        .into_iter()
        .filter(|n| n.starts_with("p_"))
        .map(|n| {
            df.column(n)
                .and_then(|c| c.f32().cloned())
                .map_err(|e| table_err(path, e))
        })
        .collect::<Result<_>>()?;
    let missing = |what: &str, i: usize| table_err(path, format!("row {i}: no {what}"));
    (0..df.height())
        .map(|i| {
            Ok(PredictionRow {
                record: records.get(i).ok_or_else(|| missing("record", i))?,
                sample_id: ids.get(i).unwrap_or_default().to_string(),
                subject: subjects.get(i).unwrap_or_default().to_string(),
                label: labels.get(i).ok_or_else(|| missing("label", i))?,
                predicted: predicted.get(i).ok_or_else(|| missing("predicted", i))?,
                probabilities: probs.iter().map(|p| p.get(i).unwrap_or(f32::NAN)).collect(),
            })
        })
        .collect()
}
