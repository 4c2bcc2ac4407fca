//! Test support shared by the tests of every crate in the workspace (a dev-dependency only; no
//! product code depends on it).
//!
//! * **Resources a test needs** — `../shared`, the model files `make setup` installs, the
//!   `.venv` Python and its oracles, Chromium. When one is missing the test prints one
//!   `skipped: <test>: <why>` line and passes, except under [`REQUIRE_ENV`]
//!   (`FER_REQUIRE_SHARED=1`, set by `make test-real` and CI), where the same line fails the
//!   test: there a missing oracle is a broken set-up, not a reason to pass. Every test that can
//!   skip goes through [`unavailable`]; nothing else prints "skipped".
//! * **Learning checks** — tests that assert that training learns run under every seed of
//!   [`learning_seeds`] (`FER_LEARNING_SEEDS`, default `0`) and report each bound they check
//!   through [`LearningCheck`], one `learning-margin` line per seed and bound, which
//!   `make test-learning` (`scripts/test_learning.sh`) gathers into a table of worst margins over
//!   seeds and libtorch's CPU kernel sets.

#![warn(missing_docs)]

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Set (to anything) where a missing resource must fail the test instead of skipping it.
pub const REQUIRE_ENV: &str = "FER_REQUIRE_SHARED";

/// Where the shared material lives (`../shared`, set by the Makefile).
pub const SHARED_ENV: &str = "FER_SHARED";

/// Seeds of the learning tests, comma-separated (`make test-learning` sets `0,1,2,3,4`).
pub const SEEDS_ENV: &str = "FER_LEARNING_SEEDS";

/// Whether missing resources fail tests in this process ([`REQUIRE_ENV`] is set).
pub fn required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Reports that `test` cannot run because `why`: prints `skipped: <test>: <why>` and returns, or
/// panics with the same text under [`REQUIRE_ENV`]. The caller returns right after.
///
/// # Panics
/// Under [`REQUIRE_ENV`], always.
pub fn unavailable(test: &str, why: impl Display) {
    let line = format!("skipped: {test}: {why}");
    assert!(
        !required(),
        "{line} ({REQUIRE_ENV} is set, so a missing resource fails the run)"
    );
    println!("{line}");
}

/// Reports that `test` does not apply to this host (a CPU without the instructions it compares
/// against): a `skipped` line that never fails, since no set-up can change the CPU.
pub fn not_applicable(test: &str, why: impl Display) {
    println!("skipped: {test}: {why} (not applicable on this host)");
}

/// The workspace root (where `Makefile` and `.venv` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `shared/` folder named by [`SHARED_ENV`] (it holds `data/` and `reference/`), or `None`
/// after [`unavailable`].
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os(SHARED_ENV).map(PathBuf::from) {
        Some(d) if d.join("data").is_dir() && d.join("reference").is_dir() => Some(d),
        other => {
            unavailable(
                test,
                format!("{SHARED_ENV} ({other:?}) does not point at the shared/ folder"),
            );
            None
        }
    }
}

/// Whether every one of `paths` exists (model files installed by `make setup`); otherwise
/// [`unavailable`] naming the first missing one.
pub fn files_present(test: &str, paths: &[&Path]) -> bool {
    match paths.iter().find(|p| !p.exists()) {
        None => true,
        Some(p) => {
            unavailable(test, format!("{} missing (run `make setup`)", p.display()));
            false
        }
    }
}

/// The `.venv` Python that `make setup` installs (PyTorch, the test oracles), or `None` after
/// [`unavailable`].
pub fn venv_python(test: &str) -> Option<PathBuf> {
    let p = repo_root().join(".venv/bin/python");
    if p.exists() {
        Some(p)
    } else {
        unavailable(test, format!("no {} (run `make setup`)", p.display()));
        None
    }
}

/// The first of `names` that runs with `--version` (a program on PATH, e.g. Chromium), or `None`
/// after [`unavailable`].
pub fn program(test: &str, names: &[&str]) -> Option<String> {
    let found = names.iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match found {
        Some(c) => Some((*c).to_string()),
        None => {
            unavailable(
                test,
                format!("none of {names:?} on PATH (run `make setup`)"),
            );
            None
        }
    }
}

/// The seeds a learning test runs under: [`SEEDS_ENV`] as a comma-separated list, default `[0]`.
///
/// # Panics
/// A value that is not a list of integers (a typo must not silently test one seed).
pub fn learning_seeds() -> Vec<u64> {
    match std::env::var(SEEDS_ENV) {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{SEEDS_ENV}={s:?}: expected seeds like 0,1,2"))
            })
            .collect(),
        _ => vec![0],
    }
}

/// The bounds one learning test checks, over all its seeds. Each check prints a line
///
/// `learning-margin <test> <quantity> >|< <bound> seed=<s> observed=<v> margin=<m> ok|FAIL`
///
/// (margin > 0 passes: observed − bound for a lower bound, bound − observed for an upper one),
/// and [`LearningCheck::finish`] fails the test listing every failed check, after all seeds ran.
#[derive(Debug)]
pub struct LearningCheck {
    test: String,
    failed: Vec<String>,
}

impl LearningCheck {
    /// Checks for `test` (its function name: the table groups by it).
    pub fn new(test: &str) -> LearningCheck {
        LearningCheck {
            test: test.to_string(),
            failed: Vec::new(),
        }
    }

    fn record(&mut self, quantity: &str, op: &str, seed: u64, observed: f64, bound: f64) {
        let margin = if op == ">" {
            observed - bound
        } else {
            bound - observed
        };
        let ok = margin > 0.0 && observed.is_finite();
        println!(
            "learning-margin {} {quantity} {op} {bound:.6} seed={seed} observed={observed:.6} \
             margin={margin:.6} {}",
            self.test,
            if ok { "ok" } else { "FAIL" }
        );
        if !ok {
            self.failed.push(format!(
                "{quantity} (seed {seed}): {observed:.6} against the bound {bound:.6}"
            ));
        }
    }

    /// `observed` must exceed `bound`.
    pub fn at_least(&mut self, quantity: &str, seed: u64, observed: f64, bound: f64) {
        self.record(quantity, ">", seed, observed, bound);
    }

    /// `observed` must stay under `bound`.
    pub fn at_most(&mut self, quantity: &str, seed: u64, observed: f64, bound: f64) {
        self.record(quantity, "<", seed, observed, bound);
    }

    /// Fails the test when any check failed.
    ///
    /// # Panics
    /// When a check failed, listing them all.
    pub fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "{}: {} failed: {}",
            self.test,
            self.failed.len(),
            self.failed.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_are_signed_by_the_bound_direction() {
        let mut c = LearningCheck::new("t");
        c.at_least("acc", 0, 0.9, 0.5);
        c.at_most("loss", 0, 0.2, 1.0);
        assert!(c.failed.is_empty());
        c.at_least("acc", 1, 0.4, 0.5);
        c.at_most("loss", 1, f64::NAN, 1.0);
        assert_eq!(c.failed.len(), 2, "{:?}", c.failed);
    }
}
