#!/usr/bin/env python3
"""No-op rerun benchmark: radpipe vs `dvc repro` on the same pipeline.

The pipeline: 610 patients x 3 per-patient `command` stages (each copies the
previous stage's file) + 6 cohort-level stages (a chain after the last
per-patient stage), 1836 nodes in all. Both tools first run it in full, then
the rerun with everything cached is timed (median of repeats). DVC's first
run spawns one process per stage and takes about an hour here, so by default
its cache is filled with `dvc commit` from the outputs radpipe produced (the
same bytes); `--dvc-full-run` runs `dvc repro` from nothing instead. Also timed:
`radpipe --help`, `validate`, `dag` and `status` on the same pipeline.

Usage: python benches/noop_rerun.py --radpipe target/debug/radpipe --dvc .../bin/dvc
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

PATIENTS = 610
PER_PATIENT = 3
COHORT_LEVEL = 6


def write_inputs(root):
    os.makedirs(os.path.join(root, "data", "raw"), exist_ok=True)
    ids = [f"P{i:04d}" for i in range(1, PATIENTS + 1)]
    with open(os.path.join(root, "data", "clinical.csv"), "w") as f:
        f.write("patient_id,age\n")
        for i, pid in enumerate(ids):
            f.write(f"{pid},{40 + i % 40}\n")
    for pid in ids:
        with open(os.path.join(root, "data", "raw", f"{pid}.txt"), "w") as f:
            f.write(f"{pid} raw\n")
    return ids


def per_patient_src(s):
    return "data/raw/{p}.txt" if s == 1 else "out/s%d/{p}.txt" % (s - 1)


def cohort_stage(c):
    dep = f"out/s{PER_PATIENT}" if c == 1 else f"out/c{c - 1}.txt"
    cmd = f"cat out/s{PER_PATIENT}/*.txt | wc -l > out/c1.txt" if c == 1 else f"cp out/c{c - 1}.txt out/c{c}.txt"
    return dep, cmd


def radpipe_yaml(root):
    lines = ["version: 1", "name: noop-bench", "cohorts:", "  all: { table: data/clinical.csv }", "stages:"]
    for s in range(1, PER_PATIENT + 1):
        src = per_patient_src(s).format(p="${patient}")
        lines += [f"  s{s}:", "    kind: command", "    foreach: patient", "    cohorts: [all]",
                  f'    cmd: "cp {src} out/s{s}/${{patient}}.txt"', f'    deps: ["{src}"]',
                  f'    outs: ["out/s{s}/${{patient}}.txt"]']
    for c in range(1, COHORT_LEVEL + 1):
        dep, cmd = cohort_stage(c)
        lines += [f"  c{c}:", "    kind: command", f'    cmd: "{cmd}"', f"    deps: [{dep}]", f"    outs: [out/c{c}.txt]"]
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def dvc_yaml(root, ids):
    lines = ["stages:"]
    for s in range(1, PER_PATIENT + 1):
        src = per_patient_src(s).format(p="${item}")
        lines += [f"  s{s}:", "    foreach:"] + [f"      - {p}" for p in ids] + [
            "    do:", f"      cmd: mkdir -p out/s{s} && cp {src} out/s{s}/${{item}}.txt",
            f'      deps: ["{src}"]', f'      outs: ["out/s{s}/${{item}}.txt"]']
    for c in range(1, COHORT_LEVEL + 1):
        dep, cmd = cohort_stage(c)
        dep_list = [f"out/s{PER_PATIENT}/{p}.txt" for p in ids] if c == 1 else [dep]
        lines += [f"  c{c}:", f'    cmd: "{cmd}"', "    deps:"] + [f"      - {d}" for d in dep_list] + [f"    outs: [out/c{c}.txt]"]
    with open(os.path.join(root, "dvc.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def timed(cmd, cwd, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return statistics.median(times), r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radpipe", required=True)
    ap.add_argument("--dvc", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--patients", type=int, default=610)
    ap.add_argument("--dvc-full-run", action="store_true")
    a = ap.parse_args()
    global PATIENTS
    PATIENTS = a.patients
    work = tempfile.mkdtemp(prefix="radpipe-bench-")
    rp, dv = os.path.join(work, "radpipe"), os.path.join(work, "dvc")
    ids = write_inputs(rp)
    radpipe_yaml(rp)
    shutil.copytree(os.path.join(rp, "data"), os.path.join(dv, "data"))
    dvc_yaml(dv, ids)
    radpipe = os.path.abspath(a.radpipe)
    res = {"nodes": PATIENTS * PER_PATIENT + COHORT_LEVEL}

    res["radpipe_first_run_s"], _ = timed([radpipe, "run", "pipeline.yaml", "--json"], rp, 1)
    res["radpipe_noop_s"], out = timed([radpipe, "run", "pipeline.yaml", "--json"], rp, a.repeat)
    assert json.loads(out)["executed"] == [], "the no-op rerun executed nodes"
    res["radpipe_status_s"], _ = timed([radpipe, "status", "pipeline.yaml"], rp, a.repeat)
    res["radpipe_validate_s"], _ = timed([radpipe, "validate", "pipeline.yaml"], rp, a.repeat)
    res["radpipe_dag_s"], _ = timed([radpipe, "dag", "pipeline.yaml"], rp, a.repeat)
    res["radpipe_help_s"], _ = timed([radpipe, "--help"], rp, a.repeat)

    subprocess.run([a.dvc, "init", "--no-scm", "-q"], cwd=dv, check=True)
    subprocess.run([a.dvc, "config", "core.analytics", "false"], cwd=dv, check=True)
    if a.dvc_full_run:
        res["dvc_first_run_s"], _ = timed([a.dvc, "repro", "-q"], dv, 1)
    else:
        shutil.copytree(os.path.join(rp, "out"), os.path.join(dv, "out"))
        res["dvc_commit_s"], _ = timed([a.dvc, "commit", "-f", "-q"], dv, 1)
    res["dvc_noop_s"], _ = timed([a.dvc, "repro", "-q"], dv, max(1, a.repeat // 2))
    res["dvc_status_s"], _ = timed([a.dvc, "status", "-q"], dv, 1)
    res["noop_ratio_dvc_over_radpipe"] = res["dvc_noop_s"] / res["radpipe_noop_s"]
    shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
