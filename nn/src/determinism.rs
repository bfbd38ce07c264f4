//! Deterministic mode: what a job pins before its first tensor operation so
//! that the same inputs give the same bytes on any x86-64 machine with AVX2
//! (same libtorch, same radpipe), and what it records of the settings in use.
//!
//! Pinned, overriding the user's environment:
//! - the intra-op thread count (the sums' order depends on it, the machine's
//!   core count must not);
//! - on x86-64, the CPU kernels: ATen's capped at AVX2
//!   (`ATEN_CPU_CAPABILITY`), oneDNN's (the convolutions) at AVX2
//!   (`ONEDNN_MAX_CPU_ISA` and `DNNL_MAX_CPU_ISA`), and MKL's BLAS in conditional numerical
//!   reproducibility (`MKL_CBWR`). MKL's mode is `COMPATIBLE` (SSE2 code
//!   paths, the same on every x86-64 CPU): the MKL inside libtorch 2.11
//!   supports no ISA branch (`mkl_cbwr_set` refuses `AVX2` as an unsupported
//!   branch, and `MKL_CBWR=AVX2` silently means `AUTO`). Our models use MKL
//!   only for their few linear layers. The three libraries read their
//!   variable once, on first use, so setting it in this process before any
//!   tensor operation takes effect (`tests/determinism.rs` shows it: a user
//!   environment asking for AVX512 changes nothing; `DNNL_VERBOSE=1` and
//!   `MKL_VERBOSE=1` print the levels in use);
//! - deterministic algorithms (libtorch's, cuDNN's; cuDNN's benchmark off)
//!   and `CUBLAS_WORKSPACE_CONFIG=:4096:8`, which deterministic cuBLAS
//!   needs (PyTorch's reproducibility notes).
//!
//! On an x86-64 CPU without AVX2 ATen's kernels run at the level below
//! (recorded as `default`: identical among such machines); on another
//! architecture only the threads and the algorithms are pinned. The level in
//! use is recorded either way. The inter-op thread pool is not pinned: eager
//! execution never uses it.

use radpipe_protocol::effective_threads;

use crate::Error;

/// The settings a job ran with (in `fit.json`'s `environment` and the log).
#[derive(Debug, Clone)]
pub struct Pinned {
    pub deterministic: bool,
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// The level of ATen's CPU kernels: `default`, `avx2` or `avx512` (x86-64).
    pub cpu_capability: String,
}

/// The x86-64 kernel cap of deterministic mode, as each library names it.
/// ATen trusts its variable without asking the CPU (one without AVX2 would
/// run AVX2 code and die), so it gets `default` there; oneDNN's cap is a
/// maximum, and oneDNN reads `ONEDNN_MAX_CPU_ISA` before
/// `DNNL_MAX_CPU_ISA`, so both are set.
fn x86_kernel_cap() -> [(&'static str, &'static str); 4] {
    let aten = if has_avx2() { "avx2" } else { "default" };
    [("ATEN_CPU_CAPABILITY", aten), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("DNNL_MAX_CPU_ISA", "AVX2"), ("MKL_CBWR", "COMPATIBLE")]
}

mod shim {
    extern "C" {
        /// `src/determinism.cpp`.
        pub fn radpipe_set_deterministic();
        pub fn radpipe_cpu_capability() -> *const std::os::raw::c_char;
    }
}

/// Pin the thread count (positive), the CPU kernels and deterministic
/// algorithms; call it before any tensor operation of the process and
/// before it starts threads (it sets environment variables). An error when
/// the kernels were fixed already, above the cap.
pub fn pin(threads: i32) -> Result<Pinned, Error> {
    if cfg!(target_arch = "x86_64") {
        for (name, value) in x86_kernel_cap() {
            std::env::set_var(name, value);
        }
    }
    std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    tch::set_num_threads(threads);
    // SAFETY: a plain setter of libtorch's global context, no pointers.
    unsafe { shim::radpipe_set_deterministic() };
    let pinned = Pinned { deterministic: true, threads: tch::get_num_threads(), cpu_capability: cpu_capability() };
    if has_avx2() && pinned.cpu_capability != "avx2" {
        return Err(Error::new(format!(
            "deterministic mode: libtorch's CPU kernels were fixed at {} before they could be capped at AVX2",
            pinned.cpu_capability
        )));
    }
    Ok(pinned)
}

/// A job's settings, made and recorded: pinned in deterministic mode (with
/// `threads`, or `DETERMINISTIC_THREADS` when it names none), else only
/// `threads` when positive (libtorch's default otherwise).
pub fn settle(threads: i32, deterministic: bool) -> Result<Pinned, Error> {
    if deterministic {
        return pin(effective_threads(threads, true));
    }
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    Ok(Pinned { deterministic: false, threads: tch::get_num_threads(), cpu_capability: cpu_capability() })
}

/// Whether the CPU runs ATen's AVX2 kernels (which also need FMA).
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The level of ATen's CPU kernels in use (fixed from here on), lower case:
/// `default`, `avx2`, `avx512` on x86-64.
pub fn cpu_capability() -> String {
    // SAFETY: the shim returns a NUL-terminated text that lives as long as the process.
    let level = unsafe { std::ffi::CStr::from_ptr(shim::radpipe_cpu_capability()) }.to_string_lossy().to_lowercase();
    // libtorch names x86's lowest level `NO AVX`.
    if level == "no avx" {
        "default".into()
    } else {
        level
    }
}
