#!/bin/bash
# One prepared check of the CUDA path, for a GPU machine without a Rust
# toolchain or network (see BENCHMARKS.md). Prepare here:
#   make gpu-carry        # stripped radpipe + radpipe-nn, torchvision wheels -> gpu-carry/
# then run on the GPU machine, from the repository root, with the machine's own
# torch 2.11 libraries:
#   bash benches/gpu_check.sh gpu-carry OUT_DIR
# It records: `radpipe doctor`, backbone throughput on CUDA (fp32, fp16
# autocast, bf16) against PyTorch eager, and the tiny pipeline's deep-learning
# stages run by the engine on `device: cuda`.
set -u
carry=$(cd "$1" && pwd)
out=$2
mkdir -p "$out"
py=${PYTHON:-python3}
torch_lib=$($py -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export RADPIPE_NN=$carry/radpipe-nn
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/torch.txt"
"$carry/radpipe" doctor --json | tee "$out/doctor.json"

# torchvision for the reference (installed from the carried wheel when absent).
if ! $py -c "import torchvision" 2>/dev/null; then
    tag=$($py -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
    mkdir -p /tmp/tv && $py -m pip install -q --no-deps --target /tmp/tv "$carry"/torchvision-0.26.0-"$tag"-*.whl && export PYTHONPATH=/tmp/tv
fi

# Throughput on CUDA against PyTorch eager, same libtorch.
timeout 240 $py benches/nn_bench.py --worker "$carry/radpipe-nn" --device cuda --threads 16 --batch 64 --iters 20 --repeats 2 \
    --precision fp32,fp16-autocast,bf16 2>&1 | tee "$out/bench_cuda.txt"

# The engine on CUDA: tiny cohorts, embed -> pca -> fuse -> evaluate.
ws=$(mktemp -d)
"$carry/radpipe" synth --preset tiny --out "$ws/data" > /dev/null
sed -n '/^const PIPELINE: &str = r#"/,/^"#;/p' tests/deep_learning.rs | sed '1s/.*r#"//; $d' | sed 's/device: cpu/device: cuda/; s/epochs: "${params.epochs}"/epochs: 5/' > "$ws/p.yaml"
( cd "$ws" && time "$carry/radpipe" run --json p.yaml ) > "$out/run_cuda.json" 2> "$out/run_cuda.stderr"
cp "$ws/results/table2/table.md" "$out/table2_cuda.md" 2>/dev/null
for p in E-0001 I1-0001; do
    echo "$p: embed $(tr -d ' \n' < "$ws/results/embed/$p/scores.json") fuse $(tr -d ' \n' < "$ws/results/fuse/$p/scores.json")" >> "$out/scores.txt"
done
