#!/usr/bin/env bash
# Statistics benchmark: radpipe's stats (bootstrap AUC CI with 2000 resamples on
# 600 patients; DeLong on 10^5 scores, single and paired) next to
# scikit-learn / NumPy doing the same, in one run.
# Usage: bash benches/stats.sh [PYTHON with numpy, scipy, scikit-learn]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${RADPIPE_CACHE:-$HOME/.cache/radpipe}/venv/bin/python}"
cargo run -q --example stats_bench
"$PY" benches/stats_bench.py
