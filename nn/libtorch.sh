#!/bin/sh
# Print the libtorch folder the worker builds against: $LIBTORCH when set, else
# the `torch` package of a Python venv at $1 (created, with torch==2.11.0 from
# PyPI, when absent; about 4.7 GB with its CUDA libraries, which also run on a
# CPU-only machine). Progress goes to stderr, the folder to stdout.
set -eu
if [ -n "${LIBTORCH:-}" ]; then echo "$LIBTORCH"; exit 0; fi
venv=$1
find_torch() { ls -d "$venv"/lib/python3*/site-packages/torch 2>/dev/null | head -n 1; }
if [ ! -f "$venv/.torch-2.11.0" ]; then
    echo "installing torch==2.11.0 into $venv (once; about 4.7 GB)" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q torch==2.11.0 >&2
    touch "$venv/.torch-2.11.0"
fi
dir=$(find_torch)
[ -n "$dir" ] || { echo "no torch package under $venv" >&2; exit 1; }
echo "$dir"
