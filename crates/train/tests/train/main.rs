//! Integration tests of the trainer on small synthetic caches (CPU, seconds): the network's
//! shapes and gradients, weight loading, determinism, resumption, and whole k-fold runs.

mod common;
mod infos;
mod learning;
mod model;
mod oracle;
mod outputs;
mod presets;
mod runs;
mod sweep;
mod targets;
mod transfer;
mod trust;
