//! Keeps `libtorch_cuda.so` in the binary's NEEDED list.
//!
//! Rust links with `--as-needed`, and nothing in our code references a libtorch_cuda symbol
//! directly (CUDA kernels register themselves from static initialisers), so the linker would drop
//! the library and the binary would never see a GPU. Wrapping it in `--no-as-needed` keeps it.
//! On a CPU-only host the library still loads (PyTorch's wheel ships it) and reports no device.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch_cuda");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}
