//! Dataset readers: each turns a dataset as distributed into an [`crate::inventory::Inventory`].

pub mod affectnet;
pub mod ckplus;
pub mod clips;
pub mod csv;
pub mod expw;
pub mod fer2013;
pub mod fer2013_folders;
pub mod ferplus;
pub mod folders;
pub mod names;
pub mod oulu;
pub mod pixels;
pub mod rafdb;
pub mod walk;
