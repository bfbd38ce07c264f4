#!/usr/bin/env python3
"""The engine at cluster scale: the toy pipeline of benches/noop_rerun.py
(N patients x 3 per-patient `command` stages + 6 cohort-level stages, 3N+6
nodes) for growing N. For each N: the first local run, one unmeasured no-op
run (it warms the page cache, and on a kept workspace made by an older radpipe
writes the action index), then the no-op rerun and `status` (median of
--repeat runs), each with its peak resident memory (the child's own
ru_maxrss, read with wait4).

Usage: python benches/engine_scale.py --radpipe target/debug/radpipe --patients 6100 30000 100000
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import noop_rerun


def run_child(cmd, cwd):
    """(seconds, peak resident MB, stdout) of one run of `cmd`; the rusage is
    this child's own (wait4), not the maximum over all children so far."""
    with tempfile.TemporaryFile(mode="w+") as out, open(os.devnull, "w") as devnull:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=devnull)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"{' '.join(cmd)} exited {code}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read()


def repeated(cmd, cwd, repeat):
    runs = [run_child(cmd, cwd) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radpipe", required=True)
    ap.add_argument("--patients", type=int, nargs="+", default=[610, 6100, 30000, 100000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--keep", default=None, help="keep the workspaces in DIR/<patients>; one that has a store is reused (no first run)")
    a = ap.parse_args()
    radpipe = os.path.abspath(a.radpipe)
    rows = []
    for n in a.patients:
        noop_rerun.PATIENTS = n
        work = os.path.join(a.keep, str(n)) if a.keep else tempfile.mkdtemp(prefix=f"radpipe-scale-{n}-")
        first_s = first_mb = None
        if not os.path.isdir(os.path.join(work, ".radpipe")):
            noop_rerun.write_inputs(work)
            noop_rerun.radpipe_yaml(work)
            first_s, first_mb, _ = run_child([radpipe, "run", "pipeline.yaml", "--json"], work)
        run_child([radpipe, "run", "pipeline.yaml", "--json"], work)
        noop_s, noop_mb, out = repeated([radpipe, "run", "pipeline.yaml", "--json"], work, a.repeat)
        assert json.loads(out)["executed"] == [], "the no-op rerun executed nodes"
        status_s, status_mb, _ = repeated([radpipe, "status", "pipeline.yaml"], work, a.repeat)
        row = {
            "patients": n,
            "nodes": n * noop_rerun.PER_PATIENT + noop_rerun.COHORT_LEVEL,
            "first_run_s": first_s and round(first_s, 1),
            "first_run_mb": first_mb and round(first_mb),
            "noop_s": round(noop_s, 2),
            "noop_mb": round(noop_mb),
            "status_s": round(status_s, 2),
            "status_mb": round(status_mb),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
