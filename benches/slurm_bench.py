#!/usr/bin/env python3
"""radpipe's Slurm executor against Snakemake's on the same one-host Slurm.

The pipeline is the engine benchmark's (benches/noop_rerun.py): PATIENTS x 3
per-patient `command` stages (each copies the previous stage's file) + 6
cohort-level stages, 3 x PATIENTS + 6 nodes (1836 at 610 patients). A fresh
cluster (tests/services/slurm.sh) runs, in one go:
  1. radpipe run --executor slurm (defaults: arrays per stage, squeue from 5 s
     growing to 60 s);
  2. Snakemake 9 with snakemake-executor-plugin-slurm, its default (one job per
     rule instance), status by squeue (the cluster has no accounting);
  3. the same with --slurm-array-jobs=all.
Each tool's Slurm calls are counted by wrappers on PATH (sbatch, squeue,
sacct, scancel, scontrol). Every output is checked against the others'.
Snakemake's jobs call `srun`, which inside a job looks for the cluster's
configuration at /etc/slurm/slurm.conf: the benchmark links it there for its
duration when that file does not exist (and refuses to run otherwise).

With --snakemake-budget S, each Snakemake run is stopped (SIGINT: it cancels
its jobs) once it has run S seconds without finishing; its figures are then
those at that moment: wall time S, the calls made so far and the number of
outputs it had written (lower bounds on what the whole run takes).

Usage: python benches/slurm_bench.py --radpipe target/debug/radpipe --snakemake .../bin/snakemake [--patients 610] [--snakemake-budget 1800]
       python benches/slurm_bench.py --radpipe target/debug/radpipe --radpipe-only --patients 610
"""
import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import noop_rerun  # noqa: E402  (the engine benchmark's pipeline)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ["sbatch", "squeue", "sacct", "scancel", "scontrol"]


def snakefile(root):
    s, c = noop_rerun.PER_PATIENT, noop_rerun.COHORT_LEVEL
    lines = ["import csv", "P = [r['patient_id'] for r in csv.DictReader(open('data/clinical.csv'))]", "",
             "rule all:", f"    input: 'out/c{c}.txt'", ""]
    for i in range(1, s + 1):
        src = noop_rerun.per_patient_src(i)
        lines += [f"rule s{i}:", f"    input: '{src}'", f"    output: 'out/s{i}/{{p}}.txt'", "    shell: 'cp {input} {output}'", ""]
    for i in range(1, c + 1):
        _, cmd = noop_rerun.cohort_stage(i)
        inp = f"expand('out/s{s}/{{p}}.txt', p=P)" if i == 1 else f"'out/c{i - 1}.txt'"
        lines += [f"rule c{i}:", f"    input: {inp}", f"    output: 'out/c{i}.txt'", f"    shell: '{cmd}'", ""]
    with open(os.path.join(root, "Snakefile"), "w") as f:
        f.write("\n".join(lines))


def wrappers(root):
    d = os.path.join(root, "bin")
    os.makedirs(d)
    for c in COMMANDS:
        real = shutil.which(c) or f"/usr/bin/{c}"
        with open(os.path.join(d, c), "w") as f:
            f.write(f'#!/bin/sh\necho "{c}" >> "$SLURM_CALLS"\nexec {real} "$@"\n')
        os.chmod(os.path.join(d, c), 0o755)
    return d


def call_counts(calls):
    counts = collections.Counter(open(calls).read().split()) if os.path.exists(calls) else collections.Counter()
    return {**{c: counts.get(c, 0) for c in COMMANDS}, "calls": sum(counts.values())}


def timed_run(cmd, cwd, env, calls, budget=None):
    """Runs `cmd` to its end, or, past `budget` seconds, stops it and returns
    the figures of that moment with `finished: False`."""
    if os.path.exists(calls):
        os.remove(calls)
    log = open(os.path.join(cwd, "run.log"), "w+")
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**env, "SLURM_CALLS": calls}, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        took, counts, written = time.perf_counter() - t, call_counts(calls), len(outputs(cwd))
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        cancel_all(env)
        return {"wall_s": round(took, 1), **counts, "finished": False, "outputs_written": written}
    took = time.perf_counter() - t
    if proc.returncode != 0:
        log.seek(0)
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{log.read()[-5000:]}")
    return {"wall_s": round(took, 1), **call_counts(calls), "finished": True}


def cancel_all(env):
    """Cancels what a stopped run left on the benchmark's own cluster (with the
    real scancel, not counted) and waits until the queue is empty."""
    real = {c: f"/usr/bin/{c}" for c in ("scancel", "squeue")}
    subprocess.run([real["scancel"], "--user", str(os.getuid())], env=env, capture_output=True)
    for _ in range(120):
        q = subprocess.run([real["squeue"], "--noheader", "--user", str(os.getuid())], env=env, capture_output=True, text=True)
        if not q.stdout.strip():
            return
        time.sleep(1)


def outputs(ws):
    out = {}
    for d, _, files in os.walk(os.path.join(ws, "out")):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, ws)] = open(p, "rb").read()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radpipe", required=True)
    ap.add_argument("--snakemake", help="Snakemake 9 with the slurm executor plugin (benches/requirements-slurm.txt)")
    ap.add_argument("--patients", type=int, default=610)
    ap.add_argument("--skip-snakemake-default", action="store_true", help="only Snakemake with arrays")
    ap.add_argument("--radpipe-only", action="store_true",
                    help="only radpipe's run (Snakemake's default takes about 7 s per job on 2 cores: hours at 610 patients)")
    ap.add_argument("--snakemake-budget", type=float, default=None,
                    help="stop each Snakemake run after this many seconds and report its figures at that moment")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    a = ap.parse_args()
    if not a.radpipe_only and not a.snakemake:
        ap.error("--snakemake is needed unless --radpipe-only")
    noop_rerun.PATIENTS = a.patients
    radpipe = os.path.abspath(a.radpipe)
    work = tempfile.mkdtemp(prefix="radpipe-slurm-bench-")
    cluster = os.path.join(work, "cluster")
    etc = "/etc/slurm/slurm.conf"
    if os.path.lexists(etc):
        sys.exit(f"{etc} exists: this benchmark links its own cluster's configuration there; run it on a machine without a Slurm of its own")
    subprocess.run(["sh", os.path.join(REPO, "tests/services/slurm.sh"), "start", cluster], check=True, capture_output=True)
    os.makedirs(os.path.dirname(etc), exist_ok=True)
    os.symlink(os.path.join(cluster, "slurm.conf"), etc)
    try:
        env = dict(os.environ)
        env["SLURM_CONF"] = os.path.join(cluster, "slurm.conf")
        env["PATH"] = wrappers(work) + ":" + env["PATH"]
        calls = os.path.join(work, "calls.log")
        nodes = 3 * a.patients + noop_rerun.COHORT_LEVEL
        results = {"patients": a.patients, "nodes": nodes}

        rp = os.path.join(work, "radpipe")
        os.makedirs(rp)
        noop_rerun.write_inputs(rp)
        noop_rerun.radpipe_yaml(rp)
        results["radpipe"] = timed_run([radpipe, "run", "pipeline.yaml", "--executor", "slurm"], rp, env, calls)
        print("radpipe", results["radpipe"], flush=True)
        expected = outputs(rp)

        variants = [] if a.radpipe_only else [("snakemake_arrays", ["--slurm-array-jobs=all"])]
        if not a.skip_snakemake_default and not a.radpipe_only:
            variants.insert(0, ("snakemake", []))
        for name, extra in variants:
            ws = os.path.join(work, name)
            os.makedirs(ws)
            noop_rerun.write_inputs(ws)
            snakefile(ws)
            cmd = [a.snakemake, "--executor", "slurm", "--jobs", "1000", "--slurm-status-command", "squeue", "--slurm-no-account",
                   "--default-resources", "mem_mb=2048", "cpus_per_task=1", "runtime=60", "--latency-wait", "10", "--quiet", "all", *extra]
            results[name] = timed_run(cmd, ws, env, calls, a.snakemake_budget)
            print(name, results[name], flush=True)
            if results[name]["finished"] and outputs(ws) != expected:
                sys.exit(f"{name}: outputs differ from radpipe's")
        for name in ("snakemake", "snakemake_arrays"):
            if name in results:
                s, r = results[name], results["radpipe"]
                bound = "" if s["finished"] else "at_least_"
                results[f"{name}_vs_radpipe"] = {f"{bound}calls_ratio": round(s["calls"] / max(r["calls"], 1), 1),
                                                 f"{bound}wall_ratio": round(s["wall_s"] / r["wall_s"], 2)}
        print(json.dumps(results, indent=2))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        os.remove(etc)
        subprocess.run(["sh", os.path.join(REPO, "tests/services/slurm.sh"), "stop", cluster], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
