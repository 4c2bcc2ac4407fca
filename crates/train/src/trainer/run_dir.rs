//! The run directory: where a run goes, its lock, the resume check against `config.toml`, and
//! `run.json` (what ran, on what, from which revision).

use crate::{Result, TrainError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A run directory taken by this process: created, locked (released when dropped), with
/// `config.toml` written or checked.
pub(crate) struct RunDir {
    /// The directory.
    pub(crate) dir: PathBuf,
    /// Whether an earlier run's state is continued (`--resume`, or a run name that exists with the
    /// same configuration).
    pub(crate) resumed: bool,
    _lock: shard::DirLock,
}

impl RunDir {
    /// Takes `dir` for a run of the configuration `config_text`: with `resume`, continues it;
    /// without, starts it, or continues it when it exists with exactly this configuration.
    /// `note` is told when an existing run is continued. `mode` is exclusive for a run that
    /// trains every fold, and shared for a job-array task that trains some folds of a run other
    /// tasks train too (each task then locks its fold directories exclusively).
    ///
    /// Errors: [`TrainError::Config`] when the directory holds another configuration (nothing is
    /// created then), [`TrainError::RunInUse`] when another process holds the directory, I/O.
    pub(crate) fn take(
        dir: PathBuf,
        config_text: &str,
        resume: bool,
        note: &dyn Fn(&str),
        mode: shard::LockMode,
    ) -> Result<RunDir> {
        let config_file = dir.join("config.toml");
        // A first look before anything is created (a refused run leaves nothing behind) ...
        if !resume {
            same_config_exists(&config_file, config_text, &dir)?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        // ... then the lock, held while the run lives: a second process on the same run is
        // refused (it would write into this run's files), and the kernel releases the lock of a
        // killed run so that `--resume` can continue it ...
        let lock = match shard::DirLock::try_acquire(&dir, mode)? {
            Ok(lock) => lock,
            Err(holder) => {
                return Err(TrainError::RunInUse {
                    dir,
                    holder: shard::lock::describe_holder(holder),
                })
            }
        };
        // ... and the authoritative look under the lock (another process may have run this name
        // since the first look).
        let mut resumed = resume;
        if !resume && same_config_exists(&config_file, config_text, &dir)? {
            note(&format!(
                "run directory {} exists with the same configuration: continuing it",
                dir.display()
            ));
            resumed = true;
        }
        if !resumed {
            // Tasks sharing the directory may race here: each writes the same text, atomically,
            // through a temporary file of its own.
            shard::atomic_write_shared(&config_file, config_text.as_bytes())?;
        }
        Ok(RunDir {
            dir,
            resumed,
            _lock: lock,
        })
    }

    /// Writes `run.json` (atomically).
    ///
    /// Errors: serialisation, I/O.
    pub(crate) fn write_run_json(&self, run_json: &serde_json::Value) -> Result<()> {
        // Job-array tasks sharing the run may write it at the same moment.
        shard::atomic_write_shared(
            &self.dir.join("run.json"),
            &serde_json::to_vec_pretty(run_json)
                .map_err(|e| TrainError::serialize("run.json", e))?,
        )?;
        Ok(())
    }
}

/// Takes the exclusive lock of one fold's directory (a job-array task training it).
///
/// Errors: [`TrainError::RunInUse`] when another process trains that fold, I/O.
pub(crate) fn lock_fold(fold_dir: &Path) -> Result<shard::DirLock> {
    match shard::DirLock::try_acquire(fold_dir, shard::LockMode::Exclusive)? {
        Ok(lock) => Ok(lock),
        Err(holder) => Err(TrainError::RunInUse {
            dir: fold_dir.to_path_buf(),
            holder: shard::lock::describe_holder(holder),
        }),
    }
}

/// Whether `config_file` exists with exactly `config_text` (the run can be continued); an error
/// when it exists with another configuration.
fn same_config_exists(config_file: &Path, config_text: &str, dir: &Path) -> Result<bool> {
    if !config_file.exists() {
        return Ok(false);
    }
    let old = std::fs::read_to_string(config_file).map_err(|e| TrainError::io(config_file, e))?;
    if old != config_text {
        return Err(TrainError::Config(format!(
            "run directory {} exists with another configuration; choose another --run-name, \
             or continue it with `train run --resume {}`. Differences (- there, + now):{}",
            dir.display(),
            dir.display(),
            config_difference(&old, config_text)
        )));
    }
    Ok(true)
}

/// Lines of `a` missing from `b` and of `b` missing from `a`, for "the configs differ" errors.
fn config_difference(old: &str, new: &str) -> String {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    let new_lines: BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for l in old.lines().filter(|l| !new_lines.contains(l)) {
        out.push_str(&format!("\n  - {l}"));
    }
    for l in new.lines().filter(|l| !old_lines.contains(l)) {
        out.push_str(&format!("\n  + {l}"));
    }
    out
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The git revision of the working tree the tool runs in (`<hash>` or `<hash>-dirty`), recorded
/// in run.json for provenance; `None` outside a git checkout or without git.
pub fn git_revision() -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let hash = run(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

/// blake3 (hex) of `git diff HEAD` in the working tree the tool runs in: with [`git_revision`]'s
/// `-dirty` suffix it tells which uncommitted changes a run was made with. `None` outside a git
/// checkout, without git, or when the tracked files are unchanged.
pub fn git_diff_blake3() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["diff", "HEAD", "--no-ext-diff", "--binary"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    if out.stdout.is_empty() {
        return None;
    }
    Some(blake3::hash(&out.stdout).to_hex().to_string())
}
