//! `prep cache verify|inspect|failures|ls|merge|gc`.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use shard::{Cache, Manifest};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Re-hash every shard and decode every record; exit non-zero on any problem.
    Verify {
        /// Cache directories (each holding a manifest.json).
        #[arg(required = true, value_name = "CACHE")]
        caches: Vec<PathBuf>,
    },
    /// Counts per split, class and subject, shards, and the cache-key ingredients.
    Inspect {
        /// Cache directory.
        #[arg(value_name = "CACHE")]
        cache: PathBuf,
        /// Also list every subject's count (default: the first 20).
        #[arg(long)]
        all_subjects: bool,
    },
    /// The inputs that did not become samples (failures and the protocol's exclusions) as a
    /// table: reason counts first, then each input with its stage, reason and detail. Works on
    /// failed builds too (they keep failures.parquet).
    Failures {
        /// Cache directory (complete or failed build).
        #[arg(value_name = "CACHE")]
        cache: PathBuf,
        /// Only this reason code (e.g. no_face).
        #[arg(long, value_name = "CODE")]
        reason: Option<String>,
        /// Print at most this many inputs (default 50; 0 = all).
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: usize,
    },
    /// List the caches under a directory, complete or not.
    Ls {
        /// Where caches live.
        #[arg(long, default_value = "data/cache", value_name = "DIR")]
        cache_dir: PathBuf,
    },
    /// Combine the part caches of `prep build --part i/N` (all N of them) into the cache a single
    /// build would have written: same key, same samples in the same order, same failure rows.
    Merge {
        /// The part caches (`<name>-<key>.part-i-of-N`), in any order.
        #[arg(required = true, value_name = "PART")]
        parts: Vec<PathBuf>,
        /// Where the merged cache goes.
        #[arg(long, default_value = "data/cache", value_name = "DIR")]
        cache_dir: PathBuf,
    },
    /// Remove caches that no experiment references. Dry run unless --delete is given; every
    /// cache is listed with the reason it is kept or removable.
    ///
    /// An experiment TOML references a cache through a `cache = "..."` value (top level or in any
    /// table), resolved as `train` resolves it: a directory name (`ckplus-3f09a1c2b4d5e6f7`),
    /// `name@keyprefix`, or a bare name. An ambiguous reference keeps every complete cache of
    /// that name. The only complete cache of a name is always kept, referenced or not. Failed,
    /// empty and incomplete builds, merged parts and superseded caches are removable.
    Gc {
        /// Where caches live.
        #[arg(long, default_value = "data/cache", value_name = "DIR")]
        cache_dir: PathBuf,
        /// Experiment TOMLs to scan.
        #[arg(long, default_value = "manifests/experiments", value_name = "DIR")]
        experiments: PathBuf,
        /// Actually delete (default: only print what would be deleted).
        #[arg(long)]
        delete: bool,
    },
}

pub fn run(cmd: CacheCommand) -> Result<()> {
    match cmd {
        CacheCommand::Verify { caches } => verify(&caches),
        CacheCommand::Inspect {
            cache,
            all_subjects,
        } => inspect(&cache, all_subjects),
        CacheCommand::Ls { cache_dir } => ls(&cache_dir),
        CacheCommand::Failures {
            cache,
            reason,
            limit,
        } => failures(&cache, reason.as_deref(), limit),
        CacheCommand::Merge { parts, cache_dir } => {
            let bars = crate::cli::progress::Bars::new();
            let out = prep::merge_parts(&parts, &cache_dir, &bars).context("prep cache merge")?;
            drop(bars);
            crate::cli::build::report(&out);
            verify(std::slice::from_ref(&out.dir))
        }
        CacheCommand::Gc {
            cache_dir,
            experiments,
            delete,
        } => gc(&cache_dir, &experiments, delete),
    }
}

fn verify(caches: &[PathBuf]) -> Result<()> {
    let mut bad = 0;
    for dir in caches {
        let t = std::time::Instant::now();
        let cache = Cache::open_shared(dir, &mut |holder| {
            eprintln!(
                "note: {} is being written by {}; waiting",
                dir.display(),
                shard::lock::describe_holder(holder)
            )
        })
        .with_context(|| format!("opening {}", dir.display()))?;
        let report = cache.verify()?;
        let secs = t.elapsed().as_secs_f64();
        if report.is_ok() {
            println!(
                "ok      {}  {} shards, {} records, {:.1} MiB in {:.2} s",
                dir.display(),
                report.shards,
                report.records,
                report.bytes as f64 / (1 << 20) as f64,
                secs
            );
        } else {
            bad += 1;
            println!(
                "DAMAGED {}  {} problems:",
                dir.display(),
                report.problems.len()
            );
            for p in &report.problems {
                println!("  {p}");
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} caches failed verification", caches.len());
    }
    Ok(())
}

fn inspect(dir: &Path, all_subjects: bool) -> Result<()> {
    let m = Manifest::load(dir).with_context(|| format!("reading {}", dir.display()))?;
    println!("cache      {}", dir.display());
    println!("name       {}", m.name);
    println!("key        {}", m.key);
    println!("format     {}  (schema {})", m.format, m.schema_id);
    println!(
        "tool       {}  git {}",
        m.tool,
        m.git_revision.as_deref().unwrap_or("unknown")
    );
    println!("created    {} (unix)", m.created_unix);
    println!(
        "inputs     {} seen = {} cached + {} failed",
        m.inputs_seen, m.samples, m.failures
    );
    println!(
        "shards     {}  ({:.1} MiB)",
        m.shards.len(),
        m.shards.iter().map(|s| s.bytes).sum::<u64>() as f64 / (1 << 20) as f64
    );
    println!("\nper split");
    for (k, v) in &m.counts.by_split {
        println!("  {k:<12} {v:>8}");
    }
    println!("per class");
    for (i, name) in m.class_names.iter().enumerate() {
        println!(
            "  {i:>2} {name:<12} {:>8}",
            m.counts.by_class.get(name).copied().unwrap_or(0)
        );
    }
    println!("per subject ({} subjects)", m.counts.by_subject.len());
    let limit = if all_subjects { usize::MAX } else { 20 };
    for (k, v) in m.counts.by_subject.iter().take(limit) {
        println!("  {:<12} {v:>8}", if k.is_empty() { "(none)" } else { k });
    }
    if m.counts.by_subject.len() > limit {
        println!(
            "  … {} more (--all-subjects)",
            m.counts.by_subject.len() - limit
        );
    }
    println!(
        "\nkey ingredients\n{}",
        serde_json::to_string_pretty(&m.key_ingredients)?
    );
    Ok(())
}

fn failures(dir: &Path, reason: Option<&str>, limit: usize) -> Result<()> {
    let path = dir.join("failures.parquet");
    let rows = shard::tables::read_failures(&path)
        .with_context(|| format!("reading the failures of {}", dir.display()))?;
    let rows: Vec<&shard::FailureRow> = rows
        .iter()
        .filter(|r| reason.is_none_or(|want| r.reason == want))
        .collect();
    let mut counts: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for r in &rows {
        *counts
            .entry((r.stage.as_str(), r.reason.as_str()))
            .or_default() += 1;
    }
    println!("{:<10} {:<22} {:>8}", "stage", "reason", "inputs");
    for ((stage, reason), n) in &counts {
        println!("{stage:<10} {reason:<22} {n:>8}");
    }
    println!(
        "{} inputs ({} failed, {} excluded by the protocol)\n",
        rows.len(),
        rows.iter().filter(|r| r.stage != "exclude").count(),
        rows.iter().filter(|r| r.stage == "exclude").count()
    );
    let shown = if limit == 0 {
        rows.len()
    } else {
        limit.min(rows.len())
    };
    if shown > 0 {
        println!("{:<48} {:<10} {:<20} detail", "input", "stage", "reason");
    }
    for r in rows.iter().take(shown) {
        println!(
            "{:<48} {:<10} {:<20} {}",
            r.input, r.stage, r.reason, r.detail
        );
    }
    if shown < rows.len() {
        println!("… {} more (--limit 0 lists all)", rows.len() - shown);
    }
    Ok(())
}

fn ls(cache_dir: &Path) -> Result<()> {
    let caches = shard::list_caches(cache_dir)?;
    println!(
        "{:<40} {:<14} {:>9} {:>8} {:>10}  state",
        "cache", "name", "samples", "failed", "MiB"
    );
    for c in &caches {
        let (samples, failed) = match &c.manifest {
            Some(m) => (m.samples.to_string(), m.failures.to_string()),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<40} {:<14} {:>9} {:>8} {:>10.1}  {}",
            c.dir_name(),
            c.name,
            samples,
            failed,
            c.bytes as f64 / (1 << 20) as f64,
            c.state
        );
    }
    println!("{} caches under {}", caches.len(), cache_dir.display());
    Ok(())
}

/// Every `cache = "..."` string in a TOML document, at any depth.
fn cache_refs(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match v {
                    toml::Value::String(s) if k == "cache" => out.push(s.clone()),
                    other => cache_refs(other, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|x| cache_refs(x, out)),
        _ => {}
    }
}

fn gc(cache_dir: &Path, experiments: &Path, delete: bool) -> Result<()> {
    let mut refs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(experiments) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                let v: toml::Value =
                    toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
                let mut found = Vec::new();
                cache_refs(&v, &mut found);
                refs.extend(found.into_iter().map(|r| (r, p.clone())));
            }
        }
    }
    let caches = shard::list_caches(cache_dir)?;
    let plan = gc_plan(cache_dir, &caches, &refs);
    let (mut freed, mut removed) = (0u64, 0usize);
    for (c, verdict) in caches.iter().zip(&plan) {
        // A cache being built or read is never removed: its lock is held for as long as the
        // removal takes, so no build or reader can start on it meanwhile either.
        let lock = match verdict {
            GcVerdict::Remove(_) => {
                match shard::DirLock::try_acquire(&c.dir, shard::LockMode::Exclusive)
                    .with_context(|| format!("locking {}", c.dir.display()))?
                {
                    Ok(lock) => Some(lock),
                    Err(holder) => {
                        println!(
                            "keep          {}  (in use: {})",
                            c.dir_name(),
                            holder.map_or_else(
                                || "being read".to_string(),
                                |h| format!("being written by {h}")
                            )
                        );
                        continue;
                    }
                }
            }
            GcVerdict::Keep(_) => None,
        };
        match verdict {
            GcVerdict::Keep(why) => println!("keep          {}  ({why})", c.dir_name()),
            GcVerdict::Remove(why) => {
                let mib = c.bytes as f64 / (1 << 20) as f64;
                if delete {
                    std::fs::remove_dir_all(&c.dir)
                        .with_context(|| format!("removing {}", c.dir.display()))?;
                    println!("removed       {}  ({why}; {mib:.1} MiB)", c.dir_name());
                } else {
                    println!("would remove  {}  ({why}; {mib:.1} MiB)", c.dir_name());
                }
                freed += c.bytes;
                removed += 1;
            }
        }
        drop(lock);
    }
    println!(
        "{} {removed} caches, {:.1} MiB{}",
        if delete { "removed" } else { "would remove" },
        freed as f64 / (1 << 20) as f64,
        if delete {
            ""
        } else {
            " (dry run; pass --delete)"
        }
    );
    Ok(())
}

/// What `prep cache gc` does with one listed cache, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum GcVerdict {
    /// Kept, with the reason.
    Keep(String),
    /// Removable, with the reason.
    Remove(String),
}

/// Decides every listed cache's fate (same order as `caches`). Kept: what an experiment reference
/// resolves to (all complete caches of a name whose reference is ambiguous, so that nothing a
/// reference might mean is lost), and the only complete cache of its name even when no experiment
/// names it yet. Removable, each with its reason: failed, empty and incomplete builds, part caches
/// whose merged cache exists, and complete caches that another cache of the same name supersedes.
pub fn gc_plan(
    cache_dir: &Path,
    caches: &[shard::ListedCache],
    refs: &[(String, PathBuf)],
) -> Vec<GcVerdict> {
    use shard::CacheState;
    let mut kept_by_ref: std::collections::BTreeMap<PathBuf, String> = Default::default();
    for (r, file) in refs {
        let name = Path::new(r)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match shard::resolve_cache(cache_dir, &name) {
            Ok(dir) => {
                kept_by_ref.insert(dir, format!("{file} references it as {r:?}"));
            }
            Err(_) => {
                // Ambiguous or missing: keep every complete cache the name could mean.
                let base = name.split_once('@').map_or(name.as_str(), |(n, _)| n);
                for c in caches.iter().filter(|c| c.name == base) {
                    if c.state == CacheState::Complete {
                        kept_by_ref.insert(
                            c.dir.clone(),
                            format!("{file} references {r:?}, which is ambiguous"),
                        );
                    }
                }
            }
        }
    }
    let complete_of = |name: &str| {
        caches
            .iter()
            .filter(|c| c.name == name && c.state == CacheState::Complete)
            .count()
    };
    caches
        .iter()
        .map(|c| {
            if let Some(why) = kept_by_ref.get(&c.dir) {
                return GcVerdict::Keep(why.clone());
            }
            match &c.state {
                CacheState::Complete if complete_of(&c.name) == 1 => GcVerdict::Keep(format!(
                    "the only complete cache named {}; no experiment references it yet",
                    c.name
                )),
                CacheState::Complete => {
                    let others: Vec<String> = caches
                        .iter()
                        .filter(|o| {
                            o.name == c.name && o.dir != c.dir && o.state == CacheState::Complete
                        })
                        .map(|o| o.dir_name())
                        .collect();
                    GcVerdict::Remove(format!(
                        "no experiment references it; other complete caches named {}: {}",
                        c.name,
                        others.join(", ")
                    ))
                }
                CacheState::Part(p) => {
                    let key = c.manifest.as_ref().map(|m| m.key.clone());
                    let merged = caches.iter().find(|o| {
                        o.state == CacheState::Complete
                            && o.manifest.as_ref().map(|m| m.key.clone()) == key
                    });
                    match merged {
                        Some(m) => {
                            GcVerdict::Remove(format!("part {p}, merged into {}", m.dir_name()))
                        }
                        None => GcVerdict::Keep(format!("part {p}, not merged yet")),
                    }
                }
                CacheState::Empty => GcVerdict::Remove("holds no sample".into()),
                CacheState::Failed(r) => GcVerdict::Remove(format!("failed build: {r}")),
                // A build that is writing it holds its lock, and `gc` keeps it then.
                CacheState::Incomplete(r) => GcVerdict::Remove(r.clone()),
            }
        })
        .collect()
}
