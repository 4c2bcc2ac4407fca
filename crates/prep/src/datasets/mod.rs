//! Parsers of dataset-specific files and names.

pub mod ckplus;
pub mod names;
