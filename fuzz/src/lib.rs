//! Fuzz harnesses. The checks are in [`checks`] so that the stable test suite can replay the
//! corpus and the crash regressions without libFuzzer.
#[path = "checks.rs"]
pub mod checks;
