//! Issue 39: a run reads every sample's split and label from `samples.parquet` instead of
//! decoding every record at start-up (seconds per 100,000 records), and refuses a table that
//! disagrees with the records it indexes.

use crate::common::*;
use polars::prelude::*;
use std::path::Path;

/// Rewrites the cache's samples.parquet through `edit`.
fn edit_samples(cache: &Path, edit: impl FnOnce(DataFrame) -> DataFrame) {
    let p = cache.join("samples.parquet");
    let mut df = edit(shard::tables::read_table(&p).unwrap());
    let f = std::fs::File::create(&p).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
}

#[test]
fn sample_infos_from_the_table_are_the_records_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let cache = shard::Cache::open(&synthetic_cache(dir.path(), 3, 6, 2, 4)).unwrap();
    let infos = train::loader::sample_infos(&cache).unwrap();
    assert_eq!(infos.len() as u64, cache.len());
    for (g, i) in infos.iter().enumerate() {
        let r = cache.get(g as u64).unwrap();
        assert_eq!(i.record, g as u64);
        assert_eq!(
            (&i.sample_id, &i.subject, i.label, i.split),
            (
                &r.meta.sample_id,
                &r.meta.subject,
                r.meta.label as i64,
                r.meta.split
            )
        );
    }
}

#[test]
fn a_samples_table_that_disagrees_with_the_records_is_refused_regression_issue39() {
    let dir = tempfile::tempdir().unwrap();
    let path = synthetic_cache(dir.path(), 3, 6, 2, 4);
    // Record 0's label swapped with record 1's: the counts still match the manifest, the spot
    // check of record 0 does not.
    edit_samples(&path, |mut df| {
        let labels: Vec<u16> = df
            .column("label")
            .unwrap()
            .u16()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_ne!(labels[0], labels[1]);
        let mut swapped = labels.clone();
        swapped.swap(0, 1);
        df.with_column(Column::new("label".into(), swapped))
            .unwrap();
        df
    });
    let cache = shard::Cache::open(&path).unwrap();
    let e = train::loader::sample_infos(&cache).unwrap_err().to_string();
    assert!(
        e.contains("samples.parquet disagrees with the records") && e.contains("row 0"),
        "{e}"
    );
    // A table one row short.
    edit_samples(&path, |df| df.slice(0, df.height() - 1));
    let e = train::loader::sample_infos(&cache).unwrap_err().to_string();
    assert!(e.contains("rows for"), "{e}");
    // No table: the records are decoded.
    std::fs::remove_file(path.join("samples.parquet")).unwrap();
    assert_eq!(
        train::loader::sample_infos(&cache).unwrap().len() as u64,
        cache.len()
    );
}
