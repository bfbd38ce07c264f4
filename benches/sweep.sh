#!/usr/bin/env bash
# What a seed sweep costs: `radpipe sweep` of the demo over three training
# seeds against three independent clean runs of the demo with the same seeds,
# in the same invocation, on the same `demo` cohorts. The sweep should cost
# about one preprocessing plus three trainings. It also checks that each
# member's Table 2 metrics equal the clean run's with the same seed (byte for
# byte: deterministic CPU training), and prints a Markdown table.
#   make bench-sweep      (= bash benches/sweep.sh target/debug/radpipe /tmp/radpipe-sweep-bench)
set -euo pipefail
radpipe=$(realpath "${1:-target/debug/radpipe}")
work=${2:-/tmp/radpipe-sweep-bench}
seeds=(1 2 3)
pipeline=$(realpath pipelines/demo.yaml)
rm -rf "$work" && mkdir -p "$work"
"$radpipe" synth --preset demo --out "$work/data" > /dev/null
now() { date +%s%3N; }   # milliseconds
# Each workspace sees the repository's clinical schema at the path the pipeline names.
for ws in clean1 clean2 clean3 sweep; do mkdir -p "$work/$ws" && ln -s "$(realpath schemas)" "$work/$ws/schemas"; done
declare -A clean
for s in "${seeds[@]}"; do
    t0=$(now)
    "$radpipe" --workspace "$work/clean$s" run "$pipeline" --set params.data="$work/data" --set params.train_seed="$s" 2> "$work/clean$s.log"
    clean[$s]=$(( $(now) - t0 ))
done
t0=$(now)
"$radpipe" --workspace "$work/sweep" sweep "$pipeline" --set params.data="$work/data" --vary params.train_seed=1..3 --json > "$work/sweep.json" 2> "$work/sweep.log"
sweep=$(( $(now) - t0 ))
dir="$work/sweep/results/sweeps/demo--params.train_seed"
python3 - "$work" "$dir" "$sweep" "${clean[1]}" "${clean[2]}" "${clean[3]}" <<'PY'
import json, sys, pathlib
work, d, sweep, *clean = sys.argv[1:]
sweep = float(sweep) / 1000; clean = [float(c) / 1000 for c in clean]
runs = {r.stem: json.loads(r.read_text()) for r in pathlib.Path(work, "sweep/.radpipe/runs").glob("*.json")}
members = json.loads(pathlib.Path(work, "sweep.json").read_text())["members"]
same = []
for i, m in enumerate(members):
    r = runs[m["run"]]
    m["seconds"] = r["finished_unix"] - r["started_unix"]
    a = pathlib.Path(d, m["member"], "table2/metrics.json").read_bytes()
    b = pathlib.Path(work, f"clean{i + 1}", "results/table2/metrics.json").read_bytes()
    same.append(a == b)
print("| run | wall s | nodes executed |")
print("|---|---|---|")
for i, c in enumerate(clean):
    print(f"| clean run, train_seed={i + 1} | {c:.0f} | all |")
print(f"| three clean runs | {sum(clean):.0f} | |")
for m in members:
    print(f"| sweep member {m['member']} | {m['seconds']} (run record, 1 s resolution) | {len(m['executed'])} of {len(m['executed']) + len(m['cached'])} |")
print(f"| sweep of three seeds | {sweep:.0f} | |")
print(f"\nsweep / three clean runs: {sweep / sum(clean):.2f}; Table 2 metrics byte-identical to the clean run of the same seed: {same}")
PY
