//! `duplicates.parquet`: the pairs a build found, written beside the cache and read back.

use super::{DedupPlan, DuplicateKind, DuplicatePair};
use crate::inventory::InputItem;

/// Writes `duplicates.parquet`: one row per pair — `kind` (exact, near), `distance` (dHash bits),
/// `sample_a`, `input_a`, `split_a`, `label_a` and the same for b, `dropped_a`, `dropped_b`.
///
/// Errors: the file cannot be written.
pub fn write_table(
    path: &std::path::Path,
    items: &[InputItem],
    plan: &DedupPlan,
    class_names: &[String],
) -> crate::Result<()> {
    use polars::prelude::*;
    let col_s = |name: &str, f: &dyn Fn(&DuplicatePair) -> String| {
        Column::new(
            name.into(),
            plan.pairs.iter().map(f).collect::<Vec<String>>(),
        )
    };
    let class = |i: usize| {
        class_names
            .get(items[i].label as usize)
            .cloned()
            .unwrap_or_else(|| items[i].label.to_string())
    };
    let cols = vec![
        col_s("kind", &|p| p.kind.to_string()),
        Column::new(
            "distance".into(),
            plan.pairs.iter().map(|p| p.distance).collect::<Vec<u32>>(),
        ),
        col_s("sample_a", &|p| items[p.a].sample_id.clone()),
        col_s("input_a", &|p| items[p.a].input.clone()),
        col_s("split_a", &|p| items[p.a].split.to_string()),
        col_s("label_a", &|p| class(p.a)),
        col_s("sample_b", &|p| items[p.b].sample_id.clone()),
        col_s("input_b", &|p| items[p.b].input.clone()),
        col_s("split_b", &|p| items[p.b].split.to_string()),
        col_s("label_b", &|p| class(p.b)),
        Column::new(
            "dropped_a".into(),
            plan.pairs
                .iter()
                .map(|p| plan.drops.contains_key(&p.a))
                .collect::<Vec<bool>>(),
        ),
        Column::new(
            "dropped_b".into(),
            plan.pairs
                .iter()
                .map(|p| plan.drops.contains_key(&p.b))
                .collect::<Vec<bool>>(),
        ),
    ];
    let mut df = DataFrame::new(plan.pairs.len(), cols).map_err(|e| crate::PrepError::Table {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(&mut df)
        .map_err(|e| crate::PrepError::Table {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    shard::atomic_write(path, &buf)?;
    Ok(())
}

/// One row of `duplicates.parquet`, as [`read_table`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedPair {
    /// Exact or near.
    pub kind: DuplicateKind,
    /// Hamming distance of the difference hashes (0 for exact pairs).
    pub distance: u32,
    /// The two sample ids.
    pub samples: [String; 2],
    /// Their splits (`train`, `test`, `fold3`, …).
    pub splits: [String; 2],
    /// Their class names.
    pub labels: [String; 2],
    /// Whether the build's dedup mode dropped each.
    pub dropped: [bool; 2],
}

/// Reads a `duplicates.parquet` written by [`write_table`].
///
/// Errors: the file is missing, unreadable or lacks a column.
pub fn read_table(path: &std::path::Path) -> crate::Result<Vec<ReportedPair>> {
    let bad = |reason: String| crate::PrepError::Table {
        path: path.to_path_buf(),
        reason,
    };
    let df = shard::tables::read_table(path).map_err(|e| bad(e.to_string()))?;
    let text = |c: &str| -> crate::Result<Vec<String>> {
        let col = df.column(c).map_err(|e| bad(e.to_string()))?;
        let ca = col.str().map_err(|e| bad(format!("{c}: {e}")))?;
        Ok(ca
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let flag = |c: &str| -> crate::Result<Vec<bool>> {
        let col = df.column(c).map_err(|e| bad(e.to_string()))?;
        let ca = col.bool().map_err(|e| bad(format!("{c}: {e}")))?;
        Ok(ca.iter().map(|v| v.unwrap_or(false)).collect())
    };
    let distance: Vec<u32> = {
        let col = df.column("distance").map_err(|e| bad(e.to_string()))?;
        let ca = col.u32().map_err(|e| bad(format!("distance: {e}")))?;
        ca.iter().map(|v| v.unwrap_or(0)).collect()
    };
    let (kind, sa, sb) = (text("kind")?, text("sample_a")?, text("sample_b")?);
    let (pa, pb, la, lb) = (
        text("split_a")?,
        text("split_b")?,
        text("label_a")?,
        text("label_b")?,
    );
    let (da, db) = (flag("dropped_a")?, flag("dropped_b")?);
    let kind = kind
        .iter()
        .map(|k| k.parse::<DuplicateKind>().map_err(bad))
        .collect::<crate::Result<Vec<_>>>()?;
    Ok((0..df.height())
        .map(|i| ReportedPair {
            kind: kind[i],
            distance: distance[i],
            samples: [sa[i].clone(), sb[i].clone()],
            splits: [pa[i].clone(), pb[i].clone()],
            labels: [la[i].clone(), lb[i].clone()],
            dropped: [da[i], db[i]],
        })
        .collect())
}
