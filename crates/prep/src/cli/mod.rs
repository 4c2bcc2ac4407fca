//! The `prep` binary's commands, one file each, and what they share (progress bars, provenance).

pub mod bench;
pub mod build;
pub mod cache;
pub mod demo;
pub mod detect;
pub mod export;
pub mod progress;
pub mod synth;

/// The git revision of the working tree `prep` runs in (`<hash>`, `<hash>-dirty` with uncommitted
/// changes to tracked files), for the manifest's provenance; `None` outside a checkout or without
/// git.
pub fn git_revision() -> Option<String> {
    let git = |args: &[&str]| std::process::Command::new("git").args(args).output().ok();
    let head = git(&["rev-parse", "--short=12", "HEAD"]).filter(|o| o.status.success())?;
    let hash = String::from_utf8_lossy(&head.stdout).trim().to_string();
    // `git diff --quiet HEAD` exits 1 when tracked files differ from HEAD.
    let dirty = git(&["diff", "--quiet", "HEAD"]).is_some_and(|o| o.status.code() == Some(1));
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}
