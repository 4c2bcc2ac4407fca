//! Integration tests of `prep build`: dataset layouts (synthetic trees in the exact CK+, Oulu-CASIA
//! and FER2013 layouts, malformed entries included), accounting, folds, part builds and merges,
//! and the real datasets in `../shared` (tests named `real_*`).

mod bad_input;
mod common;
mod concurrent;
mod crash;
mod duplicates;
mod export;
mod layouts;
mod parts;
mod real;
mod trust;
