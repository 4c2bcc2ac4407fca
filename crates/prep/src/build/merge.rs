//! Merging the part caches of a `--part i/N` build into the cache one run would have written.

use super::*;

/// Merges part caches built with `--part i/N` into the cache a single run would have written
/// (same key, same samples in the same order, same failure rows), in `cache_dir`.
///
/// Errors: parts with different keys, a missing or repeated part, damaged parts.
pub fn merge_parts(
    parts: &[PathBuf],
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<BuildOutcome> {
    let start = std::time::Instant::now();
    let bad = |reason: String| PrepError::parse(Path::new("prep cache merge"), 0, reason);
    // Parts are read under their shared locks (`prep cache gc` leaves them alone meanwhile).
    let mut caches = Vec::new();
    let mut _part_locks = Vec::new();
    for p in parts {
        _part_locks.push(shard::DirLock::acquire(
            p,
            shard::LockMode::Shared,
            &mut |holder| {
                progress.note(&format!(
                    "{} is locked by {}; waiting",
                    p.display(),
                    shard::lock::describe_holder(holder)
                ))
            },
        )?);
        caches.push(shard::Cache::open(p)?);
    }
    let Some(first) = caches.first() else {
        return Err(bad("no parts given".into()));
    };
    let m0 = first.manifest().clone();
    let part_of = |m: &Manifest| -> Option<(usize, usize)> {
        let s = m.extra.get("part")?.as_str()?;
        let (i, n) = s.split_once('/')?;
        Some((i.parse().ok()?, n.parse().ok()?))
    };
    let n = part_of(&m0)
        .ok_or_else(|| bad(format!("{} is not a part cache", parts[0].display())))?
        .1;
    let mut have = vec![false; n + 1];
    for (c, p) in caches.iter().zip(parts) {
        let m = c.manifest();
        if m.key != m0.key || m.class_names != m0.class_names {
            return Err(bad(format!(
                "{} has another key or classes than {}",
                p.display(),
                parts[0].display()
            )));
        }
        let (i, pn) =
            part_of(m).ok_or_else(|| bad(format!("{} is not a part cache", p.display())))?;
        if pn != n || i == 0 || i > n || have[i] {
            return Err(bad(format!(
                "{}: part {i}/{pn} repeated or out of range",
                p.display()
            )));
        }
        have[i] = true;
    }
    if let Some(missing) = (1..=n).find(|&i| !have[i]) {
        return Err(bad(format!("part {missing}/{n} is missing")));
    }
    let config: PrepConfig = m0
        .extra
        .get("config")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .ok_or_else(|| bad("part manifest has no prep config".into()))?;
    let key = CacheKey::from_manifest(&m0);
    let dir = cache_dir.join(shard::cache_dir_name(&m0.name, &key));
    let mut order: Vec<(String, usize, u64)> = Vec::new();
    for (ci, c) in caches.iter().enumerate() {
        let rows = shard::tables::read_sample_ids(&c.dir().join("samples.parquet"))?;
        for (g, id) in rows.into_iter().enumerate() {
            order.push((id, ci, g as u64));
        }
    }
    order.sort();
    let _lock = shard::DirLock::acquire(&dir, shard::LockMode::Exclusive, &mut |holder| {
        progress.note(&format!(
            "{} is being written by {}; waiting for it to finish",
            dir.display(),
            shard::lock::describe_holder(holder)
        ))
    })?;
    let mut writer = CacheWriter::create(
        &dir,
        &m0.name,
        &key,
        m0.class_names.clone(),
        CacheWriterOptions {
            tool: m0.tool.clone(),
            git_revision: m0.git_revision.clone(),
            ..Default::default()
        },
    )?;
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for c in &caches {
        if let Some(s) = stored_summary(c.manifest()) {
            summary.add(&s);
        }
        failures.extend(shard::tables::read_failures(
            &c.dir().join("failures.parquet"),
        )?);
    }
    progress.stage("merge", order.len() as u64);
    let mut readers = caches
        .iter()
        .map(|c| c.reader())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (_, ci, g) in &order {
        let rec = readers[*ci].read(*g)?;
        let planes: Vec<&[u8]> = rec.planes().map(|(_, d)| d).collect();
        let enc = shard::EncodedRecord::encode(rec.meta.clone(), &planes, config.zstd_level)?;
        writer.push(&enc)?;
        progress.advance(1);
    }
    progress.done();
    sort_failures(&mut failures);
    for f in failures {
        writer.push_failure(f);
    }
    for (c, p) in caches.iter().zip(parts) {
        let qa = c.dir().join("qa");
        if qa.is_dir() {
            let (i, _) = part_of(c.manifest()).unwrap_or((0, 0));
            let to = dir.join("qa").join(format!("part-{i}-of-{n}"));
            std::fs::create_dir_all(&to).map_err(|e| PrepError::Io {
                path: to.clone(),
                cause: e,
            })?;
            for e in std::fs::read_dir(&qa)
                .map_err(|e| PrepError::Io {
                    path: qa.clone(),
                    cause: e,
                })?
                .flatten()
            {
                let _ = std::fs::copy(e.path(), to.join(e.file_name()));
            }
            let _ = p;
        }
    }
    // Each part lists the duplicates of the whole inventory; the first part's list is the cache's.
    if let Some(c) = caches.first() {
        let from = c.dir().join("duplicates.parquet");
        if from.exists() {
            let bytes = std::fs::read(&from).map_err(|e| PrepError::Io {
                path: from.clone(),
                cause: e,
            })?;
            shard::atomic_write(&dir.join("duplicates.parquet"), &bytes)?;
        }
    }
    shard::atomic_write(&dir.join("prep-config.toml"), config.to_toml()?.as_bytes())?;
    let mut extra = m0.extra.clone();
    if let Some(o) = extra.as_object_mut() {
        o.insert(
            "summary".into(),
            serde_json::to_value(&summary).map_err(|e| bad(format!("summary: {e}")))?,
        );
        o.insert("part".into(), serde_json::Value::Null);
        o.insert("merged_from".into(), serde_json::json!(n));
    }
    let manifest = writer.finish(extra)?;
    Ok(BuildOutcome {
        dir,
        hit: false,
        manifest,
        summary,
        seconds: start.elapsed().as_secs_f64(),
    })
}
