//! `samples.parquet` and `failures.parquet` (FORMAT.md section 6), written with polars so that
//! pandas, polars and DuckDB users can query a cache without this crate.

use crate::{Result, ShardError};
use polars::prelude::*;
use std::path::Path;

/// One row of `samples.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRow {
    /// Global record number.
    pub global_index: u64,
    /// Sample id.
    pub sample_id: String,
    /// Dataset name.
    pub dataset: String,
    /// Subject id.
    pub subject: String,
    /// Class index.
    pub label: u16,
    /// Class name.
    pub class_name: String,
    /// `train`, `validation`, `test` or `fold`.
    pub split: String,
    /// Fold number, −1 when none.
    pub fold: i32,
    /// Shard position.
    pub shard: u32,
    /// Record within the shard.
    pub index: u32,
    /// Flag bits.
    pub flags: u32,
}

/// One row of `failures.parquet`: an input that did not become a sample, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    /// The input (file, or file and row), relative to the dataset root.
    pub input: String,
    /// Pipeline stage that failed: `parse`, `decode`, `detect`, `landmarks`, `crop`, `encode`, …
    pub stage: String,
    /// Reason code (see README, "Reason codes").
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
}

fn table_err(path: &Path, e: impl std::fmt::Display) -> ShardError {
    ShardError::Table {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn write_parquet(path: &Path, mut df: DataFrame) -> Result<()> {
    let tmp = crate::fsutil::tmp_path(path);
    let file = std::fs::File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
    ParquetWriter::new(&file)
        .finish(&mut df)
        .map_err(|e| table_err(path, e))?;
    file.sync_all().map_err(|e| ShardError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| ShardError::io(path, e))?;
    if let Some(dir) = path.parent() {
        crate::fsync_dir(dir)?;
    }
    Ok(())
}

/// Writes `samples.parquet` atomically.
pub fn write_samples(path: &Path, rows: &[SampleRow]) -> Result<()> {
    let df = samples_frame(rows).map_err(|e| table_err(path, e))?;
    write_parquet(path, df)
}

/// The `samples.parquet` columns of `rows`.
fn samples_frame(rows: &[SampleRow]) -> PolarsResult<DataFrame> {
    df!(
        "global_index" => rows.iter().map(|r| r.global_index).collect::<Vec<u64>>(),
        "sample_id" => rows.iter().map(|r| r.sample_id.as_str()).collect::<Vec<_>>(),
        "dataset" => rows.iter().map(|r| r.dataset.as_str()).collect::<Vec<_>>(),
        "subject" => rows.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
        "label" => rows.iter().map(|r| r.label).collect::<Vec<u16>>(),
        "class_name" => rows.iter().map(|r| r.class_name.as_str()).collect::<Vec<_>>(),
        "split" => rows.iter().map(|r| r.split.as_str()).collect::<Vec<_>>(),
        "fold" => rows.iter().map(|r| r.fold as i16).collect::<Vec<i16>>(),
        "shard" => rows.iter().map(|r| r.shard).collect::<Vec<u32>>(),
        "index" => rows.iter().map(|r| r.index).collect::<Vec<u32>>(),
        "flags" => rows.iter().map(|r| r.flags).collect::<Vec<u32>>(),
    )
}

/// One row of `landmarks.parquet`: one frame slot of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkRow {
    /// Global record number (as in `samples.parquet`).
    pub global_index: u64,
    /// Sample id.
    pub sample_id: String,
    /// Frame slot, from 0.
    pub slot: u16,
    /// Frame number within the sequence.
    pub frame_index: Option<u32>,
    /// The input the slot came from (`SampleMeta::source`).
    pub source: String,
    /// The landmarks (68 for dlib's model), source pixels, dlib's convention.
    pub points: Vec<[f32; 2]>,
    /// The face box (left, top, right, bottom), inclusive; `None` without one.
    pub face_box: Option<[i32; 4]>,
    /// What found the face.
    pub detector: String,
    /// Flag bits of this slot.
    pub flags: u32,
}

/// Columns of landmark points in `landmarks.parquet`: `x_0 … x_67`, `y_0 … y_67` (dlib's 68).
pub const LANDMARK_COLUMNS: usize = 68;

/// Writes `landmarks.parquet` atomically: `global_index` u64, `sample_id` str, `slot` u16,
/// `frame_index` u32, `source` str, `x_0 … x_67` and `y_0 … y_67` f32 (null where a row has
/// fewer points), `box_left`, `box_top`, `box_right`, `box_bottom` i32 (null without a box),
/// `detector` str, `flags` u32.
///
/// Errors: a row with more than [`LANDMARK_COLUMNS`] points, I/O.
pub fn write_landmarks(path: &Path, rows: &[LandmarkRow]) -> Result<()> {
    let df = landmarks_frame(rows).map_err(|e| table_err(path, e))?;
    write_parquet(path, df)
}

/// The `landmarks.parquet` columns of `rows`.
fn landmarks_frame(rows: &[LandmarkRow]) -> PolarsResult<DataFrame> {
    if let Some(r) = rows.iter().find(|r| r.points.len() > LANDMARK_COLUMNS) {
        polars_bail!(ComputeError: "{} slot {}: {} landmarks, the table holds {LANDMARK_COLUMNS}",
            r.sample_id, r.slot, r.points.len());
    }
    let mut cols: Vec<Column> = vec![
        Column::new(
            "global_index".into(),
            rows.iter().map(|r| r.global_index).collect::<Vec<u64>>(),
        ),
        Column::new(
            "sample_id".into(),
            rows.iter()
                .map(|r| r.sample_id.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "slot".into(),
            rows.iter().map(|r| r.slot).collect::<Vec<u16>>(),
        ),
        Column::new(
            "frame_index".into(),
            rows.iter()
                .map(|r| r.frame_index)
                .collect::<Vec<Option<u32>>>(),
        ),
        Column::new(
            "source".into(),
            rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
        ),
    ];
    for axis in 0..2 {
        for k in 0..LANDMARK_COLUMNS {
            let name = format!("{}_{k}", ["x", "y"][axis]);
            cols.push(Column::new(
                name.into(),
                rows.iter()
                    .map(|r| r.points.get(k).map(|p| p[axis]))
                    .collect::<Vec<Option<f32>>>(),
            ));
        }
    }
    for (i, name) in ["box_left", "box_top", "box_right", "box_bottom"]
        .into_iter()
        .enumerate()
    {
        cols.push(Column::new(
            name.into(),
            rows.iter()
                .map(|r| r.face_box.map(|b| b[i]))
                .collect::<Vec<Option<i32>>>(),
        ));
    }
    cols.push(Column::new(
        "detector".into(),
        rows.iter().map(|r| r.detector.as_str()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "flags".into(),
        rows.iter().map(|r| r.flags).collect::<Vec<u32>>(),
    ));
    DataFrame::new(rows.len(), cols)
}

/// Rows buffered before a [`TableStream`] writes them as one row group.
pub const STREAM_BATCH_ROWS: usize = 8192;

/// A parquet table written as its rows arrive, [`STREAM_BATCH_ROWS`] at a time (one row group
/// each), so that a build's memory does not grow with its sample count. The rows go to
/// `<file>.tmp`; [`TableStream::finish`] fsyncs it and renames it into place, so the table under
/// its final name is always complete.
pub struct TableStream<R> {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    file: std::fs::File,
    writer: polars::io::parquet::write::BatchedWriter<std::fs::File>,
    rows: Vec<R>,
    frame: fn(&[R]) -> PolarsResult<DataFrame>,
}

impl<R> TableStream<R> {
    fn create(path: &Path, frame: fn(&[R]) -> PolarsResult<DataFrame>) -> Result<TableStream<R>> {
        let tmp = crate::fsutil::tmp_path(path);
        let file = std::fs::File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
        let handle = file.try_clone().map_err(|e| ShardError::io(&tmp, e))?;
        // The schema comes from the empty table, so every batch (and an empty table) has it.
        let schema = frame(&[]).map_err(|e| table_err(path, e))?.schema().clone();
        let writer = ParquetWriter::new(handle)
            .batched(&schema)
            .map_err(|e| table_err(path, e))?;
        Ok(TableStream {
            path: path.to_path_buf(),
            tmp,
            file,
            writer,
            rows: Vec::new(),
            frame,
        })
    }

    /// Adds a row; a full batch is written out.
    ///
    /// Errors: [`ShardError::Table`] when the batch cannot be built or written.
    pub fn push(&mut self, row: R) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= STREAM_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let df = (self.frame)(&self.rows).map_err(|e| table_err(&self.path, e))?;
        self.writer
            .write_batch(&df)
            .map_err(|e| table_err(&self.path, e))?;
        self.rows.clear();
        Ok(())
    }

    /// Writes the last rows and the footer, then fsync, rename and fsync of the directory.
    ///
    /// Errors: [`ShardError::Table`], [`ShardError::Io`].
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.writer.finish().map_err(|e| table_err(&self.path, e))?;
        self.file
            .sync_all()
            .map_err(|e| ShardError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ShardError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            crate::fsync_dir(dir)?;
        }
        Ok(())
    }
}

/// `samples.parquet` written as the samples arrive (see [`write_samples`] for the columns).
///
/// Errors: the temporary file cannot be created.
pub fn stream_samples(path: &Path) -> Result<TableStream<SampleRow>> {
    TableStream::create(path, samples_frame)
}

/// `landmarks.parquet` written as the samples arrive (see [`write_landmarks`] for the columns).
///
/// Errors: the temporary file cannot be created.
pub fn stream_landmarks(path: &Path) -> Result<TableStream<LandmarkRow>> {
    TableStream::create(path, landmarks_frame)
}

/// Writes `failures.parquet` atomically.
pub fn write_failures(path: &Path, rows: &[FailureRow]) -> Result<()> {
    let df = df!(
        "input" => rows.iter().map(|r| r.input.as_str()).collect::<Vec<_>>(),
        "stage" => rows.iter().map(|r| r.stage.as_str()).collect::<Vec<_>>(),
        "reason" => rows.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>(),
        "detail" => rows.iter().map(|r| r.detail.as_str()).collect::<Vec<_>>(),
    )
    .map_err(|e| table_err(path, e))?;
    write_parquet(path, df)
}

/// Reads a parquet table (samples or failures) into a polars `DataFrame`.
pub fn read_table(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(|e| ShardError::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| table_err(path, e))
}

/// Reads the `sample_id` column of `samples.parquet`, in record order.
pub fn read_sample_ids(path: &Path) -> Result<Vec<String>> {
    let df = read_table(path)?;
    let c = df.column("sample_id").map_err(|e| table_err(path, e))?;
    let s = c.str().map_err(|e| table_err(path, e))?;
    Ok(s.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

/// One sample as `samples.parquet` indexes it: what a trainer needs to split a cache and count
/// its classes, without decoding the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleIndexRow {
    /// Global record number.
    pub global_index: u64,
    /// Sample id.
    pub sample_id: String,
    /// Subject id.
    pub subject: String,
    /// Class index.
    pub label: u16,
    /// Split.
    pub split: crate::Split,
}

/// Reads the index columns of `samples.parquet` (global_index, sample_id, subject, label, split,
/// fold), in file order.
///
/// Errors: [`ShardError::Table`] for a missing column, a null or an unknown split.
pub fn read_sample_index(path: &Path) -> Result<Vec<SampleIndexRow>> {
    let df = read_table(path)?;
    let err = |e: &dyn std::fmt::Display| table_err(path, e);
    let col = |name: &str, dtype: DataType| -> Result<Series> {
        let c = df.column(name).map_err(|e| err(&e))?;
        c.as_materialized_series()
            .cast(&dtype)
            .map_err(|e| err(&format!("column {name}: {e}")))
    };
    let (gi, ids, subjects, labels, splits, folds) = (
        col("global_index", DataType::UInt64)?,
        col("sample_id", DataType::String)?,
        col("subject", DataType::String)?,
        col("label", DataType::UInt16)?,
        col("split", DataType::String)?,
        col("fold", DataType::Int32)?,
    );
    let (gi, ids, subjects, labels, splits, folds) = (
        gi.u64().map_err(|e| err(&e))?,
        ids.str().map_err(|e| err(&e))?,
        subjects.str().map_err(|e| err(&e))?,
        labels.u16().map_err(|e| err(&e))?,
        splits.str().map_err(|e| err(&e))?,
        folds.i32().map_err(|e| err(&e))?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let null = |what: &str| err(&format!("row {i}: no {what}"));
        let kind = splits.get(i).ok_or_else(|| null("split"))?;
        let fold = folds.get(i).and_then(|f| u16::try_from(f).ok());
        let split = crate::Split::from_kind(kind, fold)
            .ok_or_else(|| err(&format!("row {i}: split {kind:?} with fold {fold:?}")))?;
        out.push(SampleIndexRow {
            global_index: gi.get(i).ok_or_else(|| null("global_index"))?,
            sample_id: ids.get(i).ok_or_else(|| null("sample_id"))?.to_string(),
            subject: subjects.get(i).ok_or_else(|| null("subject"))?.to_string(),
            label: labels.get(i).ok_or_else(|| null("label"))?,
            split,
        });
    }
    Ok(out)
}

/// Reads `failures.parquet` back into rows.
pub fn read_failures(path: &Path) -> Result<Vec<FailureRow>> {
    let df = read_table(path)?;
    let col = |name: &str| -> Result<Vec<String>> {
        let c = df.column(name).map_err(|e| table_err(path, e))?;
        let s = c.str().map_err(|e| table_err(path, e))?;
        Ok(s.iter().map(|v| v.unwrap_or("").to_string()).collect())
    };
    let (input, stage, reason, detail) =
        (col("input")?, col("stage")?, col("reason")?, col("detail")?);
    Ok((0..input.len())
        .map(|i| FailureRow {
            input: input[i].clone(),
            stage: stage[i].clone(),
            reason: reason[i].clone(),
            detail: detail[i].clone(),
        })
        .collect())
}
