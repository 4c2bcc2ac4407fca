// Links every binary of this package (and of the end-to-end test package, which includes this
// file) so that it finds libtorch and a GPU without any environment.
//
// * RUNPATH: torch-sys (`links = "tch"`) exports the libtorch library directory it linked against
//   as `DEP_TCH_LIBTORCH_LIB` to its direct dependents; baking it in lets `target/release/train`
//   start from any shell, with no `LD_LIBRARY_PATH` (`readelf -d target/release/train` shows it).
//   Where the binaries are copied to a machine whose libtorch lies elsewhere (the GPU check),
//   `LD_LIBRARY_PATH` still takes precedence over RUNPATH.
// * `libtorch_cuda.so` kept in the NEEDED list: Rust links with `--as-needed`, and nothing in our
//   code references a libtorch_cuda symbol directly (CUDA kernels register themselves from static
//   initialisers), so the linker would drop the library and the binary would never see a GPU.
//   Wrapping it in `--no-as-needed` keeps it. On a CPU-only host the library still loads (PyTorch's
//   wheel ships it) and reports no device.
// * `shim/torch_ext.cpp` (train only): the TF32 switches, autocast per device type and the fused
//   Adam kernel, which tch 0.24 does not bind, compiled with torch-sys's flags against the headers
//   beside that libtorch directory (`<lib>/../include`).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(dir) if !dir.is_empty() => {
            // --enable-new-dtags: RUNPATH (overridable by LD_LIBRARY_PATH), not the older RPATH.
            println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{dir}");
        }
        _ => println!(
            "cargo:warning=torch-sys did not export its libtorch directory (DEP_TCH_LIBTORCH_LIB): \
             the binaries will need LD_LIBRARY_PATH to start"
        ),
    }
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("train") {
        build_shim();
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch_cuda");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}

fn build_shim() {
    println!("cargo:rerun-if-changed=shim/torch_ext.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not export DEP_TCH_LIBTORCH_LIB: cannot find libtorch's headers");
    };
    let include = std::path::Path::new(&lib).join("../include");
    // The wheels of torch ≥ 2.7 use the C++11 ABI; torch-sys reads the same variable.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("shim/torch_ext.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("fer_torch_ext");
}
