//! Holder of the end-to-end tests in `e2e/` (raw files → face → prep → shard → train).
