//! Experiment configuration (`manifests/experiments/*.toml`).
//!
//! * [`schema`] — every key, its type and default (the paper's setting);
//! * [`preset`] — the named sets of defaults (`preset = "paper" | "tuned"`);
//! * [`resolve`] — from the file to a checked configuration: the preset, the file, `--set`
//!   [`overrides`], range checks, the resolved TOML;
//! * [`fields`] — the key list, read from the schema's serde derive.

pub mod fields;
pub mod overrides;
pub mod preset;
pub mod resolve;
pub mod schema;

pub use overrides::Override;
pub use preset::Preset;
pub use resolve::flatten_toml;
pub use schema::*;
