"""Clinical-size B-spline resampling, side by side, 2 threads each:
`radpipe resample` (the CLI, end to end) against SimpleITK (read, sitkBSpline
resample, write, in this process), on a 512x512x24 volume at 0.43x0.43x5.5 mm
with oblique direction cosines, to 1 mm. Also the peak resident memory of the
`radpipe resample` process against the issue's bound (4x the float32 output +
50 MB).

    make bench-imaging-512     # or: python benches/resample_512.py --radpipe target/debug/radpipe
"""
import argparse
import math
import os
import subprocess
import tempfile
import time

import numpy as np
import SimpleITK as sitk


def volume(path):
    i, j, k = np.meshgrid(np.arange(512), np.arange(512), np.arange(24), indexing="ij")
    x, y, z = i * 0.43, j * 0.43, k * 5.5
    data = (100 * np.sin(x * 0.15) * np.cos(y * 0.11) + 3 * z + 20 * ((i * 31 + j * 17 + k * 7) % 13)).astype(np.float32)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    img.SetSpacing((0.43, 0.43, 5.5))
    a = math.radians(8)
    img.SetDirection((math.cos(a), -math.sin(a), 0, math.sin(a), math.cos(a), 0, 0, 0, 1))
    img.SetOrigin((-110.0, -95.0, -60.0))
    sitk.WriteImage(img, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radpipe", default="target/debug/radpipe")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    src = os.path.join(tmp, "in.nii.gz")
    volume(src)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours, theirs, rss_kb = [], [], []
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    for _ in range(args.runs):
        out = os.path.join(tmp, "radpipe.nii.gz")
        t = time.perf_counter()
        # GNU time's %M: the peak RSS of radpipe itself (this process's
        # RUSAGE_CHILDREN would also count the pages a fork inherits from Python).
        run = subprocess.run(["/usr/bin/time", "-f", "%M", args.radpipe, "resample", src, out, "--spacing", "1,1,1"], check=True, env=env, capture_output=True, text=True)
        ours.append(time.perf_counter() - t)
        rss_kb.append(int(run.stderr.strip().splitlines()[-1]))
        t = time.perf_counter()
        img = sitk.ReadImage(src, sitk.sitkFloat32)
        ns = (1.0, 1.0, 1.0)
        size = [int(math.ceil(n * s / q)) for n, s, q in zip(img.GetSize(), img.GetSpacing(), ns)]
        # radpipe's grid keeps the field of view: the first centre moves by
        # (new - old) / 2 spacing along each axis (README, `resample`).
        d = np.array(img.GetDirection()).reshape(3, 3)
        origin = tuple(np.array(img.GetOrigin()) + d @ ((np.array(ns) - np.array(img.GetSpacing())) / 2))
        res = sitk.Resample(img, size, sitk.Transform(), sitk.sitkBSpline, origin, ns, img.GetDirection(), 0.0, sitk.sitkFloat32)
        sitk.WriteImage(res, os.path.join(tmp, "sitk.nii.gz"))
        theirs.append(time.perf_counter() - t)
    rss_mb = max(rss_kb) / 1024
    a = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(tmp, "radpipe.nii.gz")))
    b = sitk.GetArrayFromImage(res)
    out_mb = b.size * 4 / 2**20
    inner = tuple(slice(3, -3) for _ in range(3))
    # radpipe resample does not rescale unless --scale: compare voxel values.
    rel = float(np.linalg.norm(a[inner] - b[inner]) / np.linalg.norm(b[inner])) if a.shape == b.shape else float("nan")
    m_ours, m_theirs = sorted(ours)[len(ours) // 2], sorted(theirs)[len(theirs) // 2]
    print(f"input 512x512x24 @0.43x0.43x5.5 mm (oblique 8 deg) -> {res.GetSize()} @1 mm, {args.threads} threads each, {args.runs} runs, median:")
    print("| tool (read + resample + write) | seconds | peak RSS |")
    print("|---|---|---|")
    print(f"| radpipe resample (CLI process) | {m_ours:.2f} | {rss_mb:.0f} MB (bound: 4 x {out_mb:.1f} MB + 50 MB = {4 * out_mb + 50:.0f} MB) |")
    print(f"| SimpleITK {sitk.Version.VersionString()} (sitkBSpline) | {m_theirs:.2f} | (in the Python process) |")
    print(f"speed ratio SimpleITK / radpipe: {m_theirs / m_ours:.2f}; relative L2 difference of the outputs away from the border: {rel:.2e}")


if __name__ == "__main__":
    main()
