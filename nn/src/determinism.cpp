// The libtorch settings of deterministic mode that tch 0.24 does not expose
// (it binds neither at::Context's determinism flags nor ATen's CPU
// capability), as two C functions for `determinism.rs`.

#include <string>

#include <ATen/Context.h>
#include <ATen/Version.h>

extern "C" {

// Deterministic algorithms, cuDNN's deterministic kernels, cuDNN benchmark
// off. warn_only: several CUDA backward kernels (adaptive_avg_pool2d's, for
// one) have no deterministic implementation and would otherwise raise.
// noexcept: a C++ exception must never unwind into Rust (it would abort).
void radpipe_set_deterministic() noexcept {
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
    at::globalContext().setDeterministicCuDNN(true);
    at::globalContext().setBenchmarkCuDNN(false);
}

// The level of the CPU kernels ATen dispatches to, as libtorch names it
// (`DEFAULT`, `AVX2`, `AVX512` on x86): fixed on first use, from
// ATEN_CPU_CAPABILITY and the CPU. (at::native::get_cpu_capability, the
// enum, is not exported.) The text lives as long as the process.
const char* radpipe_cpu_capability() noexcept {
    static const std::string level = at::get_cpu_capability();
    return level.c_str();
}

}
