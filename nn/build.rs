//! Make `radpipe-nn` run without `LD_LIBRARY_PATH`, with CUDA when libtorch has it.
//!
//! torch-sys (a direct dependency, at tch's version) hands us the libtorch
//! library folder as `DEP_TCH_LIBTORCH_LIB`. We set an rpath to it, and link
//! `libtorch_cuda` with `--no-as-needed` when it exists: nothing in tch's
//! wrapper references a CUDA symbol directly, so with the default
//! `--as-needed` the linker would drop the library and CUDA would silently be
//! unavailable. The libtorch version (from the wheel's `version.py` or a
//! libtorch zip's `build-version`) is recorded for `radpipe doctor`.
//!
//! `src/determinism.cpp`, the few libtorch calls of deterministic mode that
//! tch does not bind, is compiled against the same folder's headers (with
//! torch-sys's flags: C++17 and its C++11 ABI setting, `LIBTORCH_CXX11_ABI`,
//! default 1). Without `DEP_TCH_LIBTORCH_LIB` (torch-sys's `doc-only`
//! feature, which links nothing) nothing is compiled and the version is
//! `unknown`.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=src/determinism.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=RADPIPE_LIBTORCH_VERSION=unknown");
        return;
    };
    let lib = Path::new(&lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    let root = lib.parent().unwrap_or(lib);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        // System includes: libtorch's headers do not compile warning-free.
        .flag("-isystem")
        .flag(root.join("include"))
        .flag("-isystem")
        .flag(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("src/determinism.cpp")
        .compile("radpipe_determinism");
    let version = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("__version__ = ").map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())))
        .or_else(|| std::fs::read_to_string(root.join("build-version")).ok().map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RADPIPE_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=RADPIPE_LIBTORCH_LIB={}", lib.display());
}
