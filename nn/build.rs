//! Make `radpipe-nn` run without `LD_LIBRARY_PATH`, with CUDA when libtorch has it.
//!
//! torch-sys (a direct dependency, at tch's version) hands us the libtorch
//! library folder as `DEP_TCH_LIBTORCH_LIB`. We set an rpath to it, and link
//! `libtorch_cuda` with `--no-as-needed` when it exists: nothing in tch's
//! wrapper references a CUDA symbol directly, so with the default
//! `--as-needed` the linker would drop the library and CUDA would silently be
//! unavailable. The libtorch version (from the wheel's `version.py` or a
//! libtorch zip's `build-version`) is recorded for `radpipe doctor`.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
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
    let version = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("__version__ = ").map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())))
        .or_else(|| std::fs::read_to_string(root.join("build-version")).ok().map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RADPIPE_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=RADPIPE_LIBTORCH_LIB={}", lib.display());
}
