//! Integration tests of the face crate. Tests named `real_*` use `../shared` (through `FER_SHARED`)
//! and print "skipped: …" when it is absent; the others need only the committed astronaut face
//! and the Debian model files that `make setup` installs.

mod cascade;
mod chain;
mod common;
mod landmarks;
mod video;
