//! `prep cache verify|inspect|ls|merge|gc`.

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
    /// Remove caches that no experiment references. Dry run unless --delete is given.
    ///
    /// An experiment TOML references a cache through a `cache = "..."` value (top level or in any
    /// table): a full directory name (`ckplus-3f09a1c2b4d5e6f7`) keeps that cache, a bare name
    /// (`ckplus`) keeps the newest complete cache of that name. Directories without a manifest
    /// (crashed builds) are always removable.
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
        CacheCommand::Merge { parts, cache_dir } => {
            let bars = crate::progress::Bars::new();
            let out = prep::merge_parts(&parts, &cache_dir, &bars).context("prep cache merge")?;
            drop(bars);
            crate::cmd_build::report(&out);
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
        let cache = Cache::open(dir).with_context(|| format!("opening {}", dir.display()))?;
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

struct Listed {
    dir: PathBuf,
    name: String,
    manifest: Option<Manifest>,
    bytes: u64,
}

fn list(cache_dir: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(cache_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", cache_dir.display())),
    };
    for e in entries {
        let e = e?;
        if !e.file_type()?.is_dir() || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let dir = e.path();
        let bytes = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(|f| f.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let manifest = Manifest::load(&dir).ok();
        let name = match &manifest {
            Some(m) => m.name.clone(),
            None => e
                .file_name()
                .to_string_lossy()
                .rsplit_once('-')
                .map(|(n, _)| n.to_string())
                .unwrap_or_default(),
        };
        out.push(Listed {
            dir,
            name,
            manifest,
            bytes,
        });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

fn ls(cache_dir: &Path) -> Result<()> {
    let caches = list(cache_dir)?;
    println!(
        "{:<40} {:<12} {:>9} {:>8} {:>10}  state",
        "cache", "name", "samples", "failed", "MiB"
    );
    for c in &caches {
        let (samples, failed, state) = match &c.manifest {
            Some(m) => (m.samples.to_string(), m.failures.to_string(), "complete"),
            None => ("-".into(), "-".into(), "incomplete (no valid manifest)"),
        };
        println!(
            "{:<40} {:<12} {:>9} {:>8} {:>10.1}  {state}",
            c.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            c.name,
            samples,
            failed,
            c.bytes as f64 / (1 << 20) as f64
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
                cache_refs(&v, &mut refs);
            }
        }
    }
    let caches = list(cache_dir)?;
    let dir_name = |c: &Listed| {
        c.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut keep = std::collections::BTreeSet::new();
    for r in &refs {
        let r = Path::new(r)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(c) = caches.iter().find(|c| dir_name(c) == r) {
            keep.insert(c.dir.clone());
        } else if let Some(newest) = caches
            .iter()
            .filter(|c| c.name == r)
            .filter_map(|c| c.manifest.as_ref().map(|m| (m.created_unix, c)))
            .max_by_key(|(t, _)| *t)
        {
            keep.insert(newest.1.dir.clone());
        }
    }
    let mut freed = 0u64;
    let mut removed = 0;
    for c in &caches {
        if keep.contains(&c.dir) {
            println!("keep    {}", c.dir.display());
            continue;
        }
        let why = if c.manifest.is_none() {
            "incomplete"
        } else {
            "unreferenced"
        };
        if delete {
            std::fs::remove_dir_all(&c.dir)
                .with_context(|| format!("removing {}", c.dir.display()))?;
            println!(
                "removed {} ({why}, {:.1} MiB)",
                c.dir.display(),
                c.bytes as f64 / (1 << 20) as f64
            );
        } else {
            println!(
                "would remove {} ({why}, {:.1} MiB)",
                c.dir.display(),
                c.bytes as f64 / (1 << 20) as f64
            );
        }
        freed += c.bytes;
        removed += 1;
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
