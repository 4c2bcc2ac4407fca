//! Every sample's id, label, subject, split and votes ([`sample_infos`]): what a run splits
//! the cache by, read from `samples.parquet` when it can be trusted, from the records otherwise.

use crate::{Result, TrainError};
use shard::{Cache, Split};

/// One sample's metadata needed for splitting.
#[derive(Debug, Clone)]
pub struct SampleInfo {
    /// Record number.
    pub record: u64,
    /// The sample's id (`samples.parquet`'s `sample_id`).
    pub sample_id: String,
    /// Class.
    pub label: i64,
    /// Subject.
    pub subject: String,
    /// Split.
    pub split: Split,
    /// Annotator vote counts (FER+; format 1.1), empty when the record has none.
    pub votes: Vec<u16>,
}

/// Every sample's id, label, subject, split and votes, in record order.
///
/// Read from `samples.parquet` when the cache has one and its records carry no votes: opening
/// then costs the same for 30,000 records as for 290,000 (decoding every record to read its
/// metadata took seconds per 100,000). The table must agree with the manifest (row count, record
/// order, counts by split and class) and with a spot check of decoded records (the first, the
/// last and every 1024th); training then reads each label from its verified record. FER+ caches
/// (votes live only in the records) and caches without the table decode every record.
///
/// Errors: a table that disagrees with the cache ([`TrainError::Record`]), damaged records.
pub fn sample_infos(cache: &Cache) -> Result<Vec<SampleInfo>> {
    let votes = cache
        .manifest()
        .key_ingredients
        .pointer("/config/ferplus_mode")
        .is_some();
    if !votes {
        if let Some(infos) = infos_from_table(cache)? {
            return Ok(infos);
        }
    }
    decode_infos(cache)
}

/// [`sample_infos`] from `samples.parquet`; `None` when there is no readable table.
fn infos_from_table(cache: &Cache) -> Result<Option<Vec<SampleInfo>>> {
    let path = cache.dir().join("samples.parquet");
    if !path.exists() {
        return Ok(None);
    }
    let rows = match shard::tables::read_sample_index(&path) {
        Ok(rows) => rows,
        Err(_) => return Ok(None),
    };
    let n = cache.len();
    let disagree = |record: u64, reason: String| TrainError::Record {
        cache: cache.dir().to_path_buf(),
        record,
        reason: format!("samples.parquet disagrees with the records: {reason} (prep cache verify)"),
    };
    if rows.len() as u64 != n {
        return Err(disagree(0, format!("{} rows for {n} records", rows.len())));
    }
    let m = cache.manifest();
    let mut by_split = std::collections::BTreeMap::<String, u64>::new();
    let mut by_class = std::collections::BTreeMap::<String, u64>::new();
    for (i, r) in rows.iter().enumerate() {
        if r.global_index != i as u64 {
            return Err(disagree(
                i as u64,
                format!("row {i} holds record {}", r.global_index),
            ));
        }
        *by_split.entry(r.split.to_string()).or_default() += 1;
        let class = m
            .class_names
            .get(r.label as usize)
            .ok_or_else(|| disagree(i as u64, format!("label {} outside the classes", r.label)))?;
        *by_class.entry(class.clone()).or_default() += 1;
    }
    if by_split != m.counts.by_split || by_class != m.counts.by_class {
        return Err(disagree(
            0,
            "its counts by split or class are not the manifest's".into(),
        ));
    }
    let probe: Vec<u64> = (0..n).step_by(1024).chain(n.checked_sub(1)).collect();
    let seen = cache.par_decode(&probe, |_, r| {
        (
            r.meta.sample_id.clone(),
            r.meta.subject.clone(),
            r.meta.label,
            r.meta.split,
        )
    });
    for (&g, s) in probe.iter().zip(seen) {
        let (id, subject, label, split) = s?;
        let r = &rows[g as usize];
        if (&r.sample_id, &r.subject, r.label, r.split) != (&id, &subject, label, split) {
            return Err(disagree(
                g,
                format!(
                    "row {g} says {} / {} / class {} / {}, the record {id} / {subject} / class {label} / {split}",
                    r.sample_id, r.subject, r.label, r.split
                ),
            ));
        }
    }
    Ok(Some(
        rows.into_iter()
            .map(|r| SampleInfo {
                record: r.global_index,
                sample_id: r.sample_id,
                label: r.label as i64,
                subject: r.subject,
                split: r.split,
                votes: Vec::new(),
            })
            .collect(),
    ))
}

/// [`sample_infos`] by decoding every record.
fn decode_infos(cache: &Cache) -> Result<Vec<SampleInfo>> {
    let indices: Vec<u64> = (0..cache.len()).collect();
    cache
        .par_decode(&indices, |_, r| SampleInfo {
            record: 0,
            sample_id: r.meta.sample_id.clone(),
            label: r.meta.label as i64,
            subject: r.meta.subject.clone(),
            split: r.meta.split,
            votes: r.meta.ext.votes.clone(),
        })
        .into_iter()
        .enumerate()
        .map(|(g, r)| {
            r.map(|mut s| {
                s.record = g as u64;
                s
            })
            .map_err(TrainError::from)
        })
        .collect()
}
