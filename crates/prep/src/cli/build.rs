//! `prep build`: a dataset → a verified shard cache, with progress bars and a final table.

use crate::cli::progress::Bars;
use anyhow::{Context, Result};
use clap::builder::TypedValueParser as _;
use clap::Args;
use prep::{BuildOutcome, BuildRequest, DatasetKind, ModelFiles, PrepConfig, Summary};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Dataset layout: fer2013 (csv), ferplus (csv + fer2013new.csv), fer2013-folders,
    /// ckplus (CK+ tree), oulu (Oulu-CASIA tree), ckplus48, jaffe, folders (<class>/<image>),
    /// rafdb (RAF-DB basic as distributed, or train|test/<1..7>/), expw (label/label.lst +
    /// image/origin/, one sample per listed face), affectnet (Manually_Annotated_file_lists/ +
    /// Manually_Annotated_Images/; the dataset's landmarks; 7 classes with affectnet_classes = 7
    /// in the prep config), dfew (Clip/original/*.mp4 + EmoLabel_DataSplit/, the official 5
    /// folds), afew (Train|Val/<Class>/*.avi). Video datasets need FFmpeg (`make setup`).
    #[arg(long, value_parser = parse_kind, value_name = "NAME")]
    pub dataset: DatasetKind,
    /// Dataset root folder, or the csv file for fer2013/ferplus.
    #[arg(long, value_name = "PATH")]
    pub source: PathBuf,
    /// Directory holding caches; the cache goes to <DIR>/<name>-<key>.
    #[arg(long, default_value = "data/cache", value_name = "DIR")]
    pub cache_dir: PathBuf,
    /// Cache name [default: the dataset name].
    #[arg(long)]
    pub name: Option<String>,
    /// Prep configuration TOML (crop sizes, frame positions, box mode, folds, …) [default: the
    /// paper's settings; see manifests/prep/default.toml]. Part of the cache key.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Authors' fold list [default: manifests/folds/CK+_Ten_group.txt for ckplus,
    /// manifests/folds/Oulu_CASIA_Ten_group.txt for oulu; "none" = seeded subject k-fold].
    #[arg(long, value_name = "FILE|none")]
    pub folds: Option<String>,
    /// FER+ labels for --dataset ferplus [default: fer2013new.csv beside the csv].
    #[arg(long, value_name = "FILE")]
    pub ferplus_labels: Option<PathBuf>,
    /// Which FER+ rows are kept and what `train` trains them against, FERPlus's modes: majority
    /// (its default: single votes dropped, the top emotion needs more than half of the rest; one
    /// label), probability (the top 1–3 emotions up to 75 % of the votes; train draws a label
    /// from them every epoch), crossentropy (the same rows, trained against that distribution),
    /// multi_target (every emotion with ≥ 30 % of the votes; any of them counts as right),
    /// plurality (the unique largest count; one label). Every cache stores all 10 vote counts.
    #[arg(long, default_value = "majority", value_name = "RULE",
          value_parser = clap::builder::PossibleValuesParser::new(
              ["majority", "probability", "crossentropy", "multi_target", "plurality"])
              .try_map(|s| s.parse::<prep::FerPlusMode>()))]
    pub ferplus_mode: prep::FerPlusMode,
    /// Build part i of N (1-based) into a partial cache; combine parts with `prep cache merge`.
    /// The split is deterministic, so parts can run as a Slurm array or Kubernetes indexed job.
    #[arg(long, value_parser = parse_part, value_name = "i/N")]
    pub part: Option<(usize, usize)>,
    /// Class folders (--dataset folders): subjects from the file names by this regular expression
    /// (named group `subject`, else group 1), e.g. '^(?P<subject>[A-Z]{2})\.' or '^(P\d+)_'.
    /// Without it or --subjects, folds are image-level [default: none].
    #[arg(long, value_name = "REGEX", conflicts_with = "subjects")]
    pub subject_regex: Option<String>,
    /// Duplicate inputs (same decoded pixels): report (list them in duplicates.parquet and the
    /// summary, drop nothing), drop-from-train (drop training-side copies of inputs in another
    /// split or fold), drop-conflicting (drop duplicate groups with different labels)
    /// [default: the config's, report].
    #[arg(long, value_name = "MODE",
          value_parser = clap::builder::PossibleValuesParser::new(
              ["report", "drop-from-train", "drop-conflicting"])
              .try_map(|s| s.parse::<prep::dedup::DedupMode>()))]
    pub dedup: Option<prep::dedup::DedupMode>,
    /// Also report near duplicates: peak frames whose 64-bit difference hashes differ in at most
    /// BITS bits, 0–7 [default: the config's, none].
    #[arg(long, value_name = "BITS")]
    pub near_duplicates: Option<u32>,
    /// Class folders: a csv of `file,subject` rows (file = path under the dataset root, or the bare
    /// file name) [default: none].
    #[arg(long, value_name = "FILE")]
    pub subjects: Option<PathBuf>,
    /// Exit non-zero if any input fails (excluded inputs, e.g. unlabelled CK+ sequences, do not count).
    #[arg(long)]
    pub strict: bool,
    /// Exit non-zero when more than this fraction of the attempted inputs fails.
    #[arg(long, default_value_t = 0.05, value_name = "FRACTION")]
    pub max_failure_rate: f64,
    /// Samples drawn on the QA contact sheets (<cache>/qa/); 0 = none.
    #[arg(long, default_value_t = 24, value_name = "N")]
    pub qa_samples: usize,
    /// Hash every source file again even if size and mtime are unchanged.
    #[arg(long)]
    pub rehash: bool,
    /// Worker threads [default: all cores]. The cache does not depend on it.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// dlib 68-point model [default: $FER_SHAPE_MODEL or
    /// /usr/share/dlib/shape_predictor_68_face_landmarks.dat].
    #[arg(long, value_name = "FILE")]
    pub shape_model: Option<PathBuf>,
}

fn parse_kind(s: &str) -> std::result::Result<DatasetKind, String> {
    DatasetKind::parse(s).ok_or_else(|| {
        "expected one of fer2013, ferplus, fer2013-folders, ckplus, oulu, ckplus48, jaffe, folders"
            .to_string()
    })
}

fn parse_part(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected i/N, e.g. 2/8")?;
    let i: usize = i.trim().parse().map_err(|_| "i is not a number")?;
    let n: usize = n.trim().parse().map_err(|_| "N is not a number")?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("{i}/{n}: need 1 ≤ i ≤ N"));
    }
    Ok((i, n))
}

pub fn run(mut a: BuildArgs) -> Result<()> {
    if matches!(a.dataset, DatasetKind::Fer2013 | DatasetKind::Ferplus) && a.source.is_dir() {
        // `make prep DATASET=fer2013` passes the default data/raw/fer2013: take the csv in it.
        let csv = a.source.join("fer2013.csv");
        anyhow::ensure!(
            csv.is_file(),
            "--source {} is a folder; FER2013 is one csv file: pass --source <dir>/fer2013.csv \
             (make prep DATASET={} SOURCE=path/to/fer2013.csv), or put fer2013.csv in that folder",
            a.source.display(),
            a.dataset.name()
        );
        println!(
            "note: --source {} is a folder: using {}",
            a.source.display(),
            csv.display()
        );
        a.source = csv;
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .context("setting the thread count")?;
    }
    let mut config = match &a.config {
        Some(p) => PrepConfig::load(p).with_context(|| format!("reading {}", p.display()))?,
        None => PrepConfig::default(),
    };
    if let Some(re) = &a.subject_regex {
        config.subject_regex = Some(re.clone());
    }
    if let Some(m) = a.dedup {
        config.dedup = m;
    }
    if let Some(b) = a.near_duplicates {
        config.near_duplicate_bits = Some(b);
    }
    let fold_list = match a.folds.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => a
            .dataset
            .default_fold_list()
            .map(PathBuf::from)
            .filter(|p| p.exists()),
    };
    let req = BuildRequest {
        kind: a.dataset,
        source: a.source.clone(),
        cache_dir: a.cache_dir.clone(),
        name: a.name.clone(),
        models: ModelFiles::resolve(
            a.shape_model
                .clone()
                .unwrap_or_else(face::default_shape_model_path),
            &config.cascade,
            &config.fallback_cascade,
        ),
        config,
        fold_list,
        ferplus_labels: a.ferplus_labels.clone(),
        ferplus_mode: a.ferplus_mode,
        part: a.part,
        force_rehash: a.rehash,
        qa_samples: a.qa_samples,
        tool: format!("prep {}", env!("CARGO_PKG_VERSION")),
        git_revision: crate::cli::git_revision(),
        subjects_file: a.subjects.clone(),
        failure_policy: prep::FailurePolicy {
            strict: a.strict,
            max_failure_rate: a.max_failure_rate,
        },
    };
    let bars = Bars::new();
    let result = prep::build(&req, &bars);
    let stage_times = bars.stage_times();
    drop(bars);
    let out = match result {
        Ok(out) => out,
        Err(prep::PrepError::BuildFailed {
            cache,
            reason,
            summary,
        }) => {
            // The counts are what tells a wrong --source or --dataset from a bad dataset.
            println!("build FAILED: {}", cache.display());
            print_summary(&summary, &[]);
            print_failure_reasons(&cache);
            anyhow::bail!(
                "building the {} cache from {}: {reason}; no cache was written (the failures \
                 are listed by `prep cache failures {}`)",
                a.dataset.name(),
                a.source.display(),
                cache.display()
            );
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "building the {} cache from {}",
                    a.dataset.name(),
                    a.source.display()
                )
            })
        }
    };
    report(&out);
    if !out.hit && !stage_times.is_empty() {
        let line: Vec<String> = stage_times
            .iter()
            .map(|(n, s)| format!("{n} {s:.2} s"))
            .collect();
        println!("  time by stage: {}", line.join(" · "));
    }
    Ok(())
}

/// The most common failure reasons with an example input each, from `failures.parquet`.
fn print_failure_reasons(cache: &std::path::Path) {
    let Ok(rows) = shard::tables::read_failures(&cache.join("failures.parquet")) else {
        return;
    };
    let mut by_reason: std::collections::BTreeMap<&str, (u64, &str, &str)> = Default::default();
    for r in rows.iter().filter(|r| r.stage != "exclude") {
        let e =
            by_reason
                .entry(r.reason.as_str())
                .or_insert((0, r.input.as_str(), r.detail.as_str()));
        e.0 += 1;
    }
    for (reason, (n, source, detail)) in by_reason {
        println!("  {reason}: {n}, e.g. {source}: {detail}");
    }
}

/// Prints where the cache is, whether it was reused, and the summary table.
pub fn report(out: &BuildOutcome) {
    let m = &out.manifest;
    if out.hit {
        println!(
            "cache hit: {} (key {}, {} samples) in {:.2} s — nothing to do",
            out.dir.display(),
            m.short_key(),
            m.samples,
            out.seconds
        );
    } else {
        println!(
            "built {} (key {}, {} samples, {} shards) in {:.1} s",
            out.dir.display(),
            m.short_key(),
            m.samples,
            m.shards.len(),
            out.seconds
        );
    }
    print_summary(&out.summary, &m.class_names);
    if m.extra.pointer("/notes/folds_by").and_then(|v| v.as_str()) == Some("image") {
        println!(
            "\n  WARNING: folds are IMAGE-LEVEL: the file names carry no subject, so one person can \
             be in\n  training and test folds, and subject-independent accuracy is not possible. \
             Give --subject-regex\n  (e.g. '^(P\\d+)_') or --subjects FILE (csv file,subject) to \
             keep each person in one fold."
        );
    }
    if out.dir.join("qa").is_dir() {
        println!("QA sheets: {}/qa/sheet-*.png", out.dir.display());
    }
}

/// The final table: inputs seen, cached, excluded and failed by reason, split × class counts.
pub fn print_summary(s: &Summary, classes: &[String]) {
    println!();
    println!("  {:<28} {:>8}", "inputs seen", s.seen);
    println!("  {:<28} {:>8}", "cached", s.cached);
    for (r, n) in &s.excluded {
        println!("  {:<28} {:>8}", format!("excluded: {r}"), n);
    }
    for (r, n) in &s.failed {
        println!("  {:<28} {:>8}", format!("failed: {r}"), n);
    }
    println!(
        "  {:<28} {:>8}",
        "check: cached+excl+failed",
        if s.adds_up() { "= seen" } else { "MISMATCH" }
    );
    let d = &s.duplicates;
    println!(
        "  {:<28} {:>8}   ({} within a split, {} across splits, {} with different labels; \
         duplicates.parquet)",
        "duplicates: exact pairs",
        d.exact_pairs,
        d.exact_within_split,
        d.exact_across_splits,
        d.exact_conflicting
    );
    if d.near_pairs > 0 {
        println!("  {:<28} {:>8}", "duplicates: near pairs", d.near_pairs);
    }
    if d.dropped > 0 {
        println!(
            "  {:<28} {:>8}   (see excluded)",
            "duplicates: dropped", d.dropped
        );
    }
    if let Some(f) = &s.folds {
        println!(
            "  fold list: {} listed, {} placed by subject, {} missing from the data{}",
            f.listed,
            f.by_subject,
            f.missing.len(),
            if f.missing.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}{})",
                    f.missing
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if f.missing.len() > 5 { ", …" } else { "" }
                )
            }
        );
    }
    if s.split_class.is_empty() {
        return;
    }
    println!();
    let w = classes.iter().map(|c| c.len().max(5)).collect::<Vec<_>>();
    print!("  {:<12}", "split");
    for (c, w) in classes.iter().zip(&w) {
        print!(" {:>w$}", c, w = w);
    }
    println!(" {:>7}", "total");
    let mut totals = vec![0u64; classes.len()];
    for (split, m) in &s.split_class {
        print!("  {:<12}", split);
        let mut t = 0;
        for (k, (c, w)) in classes.iter().zip(&w).enumerate() {
            let n = m.get(c).copied().unwrap_or(0);
            totals[k] += n;
            t += n;
            print!(" {:>w$}", n, w = w);
        }
        println!(" {:>7}", t);
    }
    print!("  {:<12}", "all");
    for (n, w) in totals.iter().zip(&w) {
        print!(" {:>w$}", n, w = w);
    }
    println!(" {:>7}", totals.iter().sum::<u64>());
}
