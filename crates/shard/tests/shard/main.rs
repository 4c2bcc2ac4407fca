//! Integration tests of the shard cache, one binary with a module per concern.

mod catalog;
mod common;
mod crash;
mod damage;
mod golden;
mod key;
mod roundtrip;
