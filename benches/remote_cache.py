#!/usr/bin/env python3
"""The shared cache against a local S3 server (moto on loopback).

The pipeline is the engine benchmark's (benches/noop_rerun.py): 610 patients x
3 per-patient `command` stages + 6 cohort-level stages, 1836 nodes. Measured in
one run:
  1. the first run, executing everything, without a remote (baseline) and with
     the remote (execute + upload);
  2. a fully cached run from a fresh workspace against the remote: everything
     restored (time, HTTP requests the server answered, bytes that arrived);
  3. the no-op rerun of that workspace with a warm local store (median of 5):
     its request count must be 0;
  4. the same for the reference pipeline on the `tiny` cohorts (registration,
     resampling, training: nodes worth restoring): its first run without and
     with the remote, and its restore into a fresh workspace.
Requests are counted from the server's access log; bytes are the objects and
records the fresh workspace's store holds afterwards.

Usage: python benches/remote_cache.py --radpipe target/debug/radpipe --moto .../s3-venv/bin/moto_server
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import noop_rerun  # noqa: E402  (the engine benchmark's pipeline)

BUCKET = "radpipe-bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workspace(root, name):
    ws = os.path.join(root, name)
    os.makedirs(ws)
    noop_rerun.write_inputs(ws)
    noop_rerun.radpipe_yaml(ws)
    return ws


TINY = ["params.data=data", "params.slice_size=32", "params.device=cpu", "stages.embed.train.epochs=2", "stages.pca.components=4",
        "stages.fuse.patch=4", "stages.fuse.d_model=16", "stages.fuse.train.epochs=3"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_workspace(radpipe, root, name):
    ws = os.path.join(root, name)
    for rel in ("pipelines/demo.yaml", "schemas/clinical.yaml"):
        os.makedirs(os.path.dirname(os.path.join(ws, rel)), exist_ok=True)
        shutil.copy(os.path.join(REPO, rel), os.path.join(ws, rel))
    subprocess.run([radpipe, "synth", "--preset", "tiny", "--out", "data"], cwd=ws, check=True, capture_output=True)
    return ws


def tiny_args():
    args = ["pipelines/demo.yaml"]
    for s in TINY:
        args += ["--set", s]
    return args


def run(radpipe, ws, env, extra=(), pipeline=("pipeline.yaml",)):
    t = time.perf_counter()
    out = subprocess.run([radpipe, "run", "--json", *pipeline, *extra], cwd=ws, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"radpipe run failed in {ws}:\n{out.stderr[-3000:]}")
    return took, json.loads(out.stdout)


def store_bytes(ws):
    total = 0
    for sub in ("objects", "actions"):
        for d, _, files in os.walk(os.path.join(ws, ".radpipe", sub)):
            total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radpipe", required=True)
    ap.add_argument("--moto", required=True)
    ap.add_argument("--patients", type=int, default=noop_rerun.PATIENTS)
    a = ap.parse_args()
    noop_rerun.PATIENTS = a.patients
    radpipe = os.path.abspath(a.radpipe)
    root = tempfile.mkdtemp(prefix="radpipe-remote-bench-")
    port = free_port()
    log_path = os.path.join(root, "moto.log")
    log = open(log_path, "w")
    server = subprocess.Popen([a.moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run(["curl", "-s", "-X", "PUT", f"http://127.0.0.1:{port}/{BUCKET}"], check=True, capture_output=True)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", XDG_CONFIG_HOME=os.path.join(root, "config"))
        remote = ["--cache", f"s3://{BUCKET}/bench"]

        def requests():
            log.flush()
            with open(log_path) as f:
                return sum(1 for line in f if '" 20' in line or '" 40' in line or '" 41' in line)

        res = {"nodes": a.patients * noop_rerun.PER_PATIENT + noop_rerun.COHORT_LEVEL}
        res["first_run_local_s"], _ = run(radpipe, workspace(root, "baseline"), env)
        before = requests()
        res["first_run_with_upload_s"], first = run(radpipe, workspace(root, "a"), env, remote)
        res["upload_requests"] = requests() - before
        assert len(first["executed"]) == res["nodes"], first["executed"][:5]

        fresh = workspace(root, "b")
        before = requests()
        res["restore_from_remote_s"], restored = run(radpipe, fresh, env, remote)
        res["restore_requests"] = requests() - before
        res["restore_bytes"] = store_bytes(fresh)
        assert not restored["executed"] and len(restored["fetched"]) == res["nodes"], restored["executed"][:5]

        before = requests()
        noops = [run(radpipe, fresh, env, remote)[0] for _ in range(5)]
        res["noop_rerun_s"] = statistics.median(noops)
        res["noop_requests"] = requests() - before
        res["restore_vs_recompute"] = res["first_run_local_s"] / res["restore_from_remote_s"]

        tiny = {}
        tiny["first_run_local_s"], _ = run(radpipe, tiny_workspace(radpipe, root, "tiny-baseline"), env, pipeline=tiny_args())
        before = requests()
        tiny["first_run_with_upload_s"], first = run(radpipe, tiny_workspace(radpipe, root, "tiny-a"), env, remote, tiny_args())
        tiny["nodes"] = len(first["executed"])
        tiny["upload_requests"] = requests() - before
        fresh = tiny_workspace(radpipe, root, "tiny-b")
        before = requests()
        tiny["restore_from_remote_s"], restored = run(radpipe, fresh, env, remote, tiny_args())
        tiny["restore_requests"] = requests() - before
        tiny["restore_bytes"] = store_bytes(fresh)
        assert not restored["executed"], restored["executed"][:5]
        tiny["restore_vs_recompute"] = tiny["first_run_local_s"] / tiny["restore_from_remote_s"]
        res["tiny_reference_pipeline"] = tiny
        print(json.dumps(res, indent=2))
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
