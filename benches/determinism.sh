#!/usr/bin/env bash
# The cost of deterministic mode: images/s of the worker's backbones with
# `radpipe-nn bench --deterministic` (2 threads pinned, CPU kernels capped at
# AVX2, MKL in compatible mode, deterministic algorithms) and without it at the
# same 2 threads (the machine's best kernels), so that the ratio isolates the
# kernel cap and the algorithms. ResNet-18 at 64x64 and ResNet-101 at 224x224,
# batch 16, training (forward, focal loss, backward, SGD step) and inference,
# all in one run; prints a Markdown table. Kernel-level variables of the
# caller's environment are removed so that "off" is the machine's default.
# Usage: bash benches/determinism.sh [RADPIPE_NN]   (default: the debug build)
# `make bench-determinism` builds and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
worker="${1:-${CARGO_TARGET_DIR:-target}/debug/radpipe-nn}"
[ -x "$worker" ] || { echo "no worker at $worker: run \`make build\` or name it" >&2; exit 1; }

# images/s of one bench run; $@ are the bench's arguments.
rate() {
    env -u ATEN_CPU_CAPABILITY -u ONEDNN_MAX_CPU_ISA -u DNNL_MAX_CPU_ISA -u MKL_CBWR -u MKL_ENABLE_INSTRUCTIONS -u OMP_NUM_THREADS -u MKL_NUM_THREADS \
        "$worker" bench --batch 16 --threads 2 "$@" | sed -n 's/.*"images_per_s":\([0-9.e+-]*\).*/\1/p'
}

echo "radpipe-nn bench, batch 16, 2 threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; off: CPU kernels $("$worker" doctor | sed -n 's/.*"cpu_capability":"\([a-z0-9]*\)".*/\1/p')"
echo
echo "| model | input | mode | deterministic (img/s) | off (img/s) | on/off |"
echo "|---|---|---|---:|---:|---:|"
for spec in "resnet18 64 10" "resnet101 224 2"; do
    read -r arch size iters <<<"$spec"
    for mode in train infer; do
        flag=()
        [ "$mode" = train ] && flag=(--train)
        on=$(rate --arch "$arch" --size "$size" --iters "$iters" "${flag[@]}" --deterministic)
        off=$(rate --arch "$arch" --size "$size" --iters "$iters" "${flag[@]}")
        awk -v a="$arch" -v s="$size" -v m="$mode" -v on="$on" -v off="$off" \
            'BEGIN { printf "| %s | %dx%d | %s | %.1f | %.1f | %.2f |\n", a, s, s, m, on, off, on / off }'
    done
done
