#!/usr/bin/env bash
# Imaging benchmark: radpipe vs SimpleITK in one run, same volume and settings:
# cubic B-spline resampling of a 256x256x24 volume (0.5x0.5x5 mm -> 1 mm) and a
# rigid Mattes-MI registration (shrink 4,2,1; 50 bins; 25% sampling).
# Usage: bash benches/imaging.sh [PYTHON with SimpleITK]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${RADPIPE_CACHE:-$HOME/.cache/radpipe}/venv/bin/python}"
cargo run -q --example bench_resample -- --register
"$PY" benches/resample_bench.py --register
