// The end-to-end tests link libtorch through `train`: the same RUNPATH and `--no-as-needed` rule
// as the `train` binary, so that `cargo test` needs no LD_LIBRARY_PATH either.
include!("../crates/train/build.rs");
