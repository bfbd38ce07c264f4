#!/usr/bin/env python3
"""SimpleITK counterpart of examples/bench_resample.rs (same volume and grid)."""
import math
import time

import numpy as np
import SimpleITK as sitk

i, j, k = np.meshgrid(np.arange(256), np.arange(256), np.arange(24), indexing="ij")
x, y, z = i * 0.5, j * 0.5, k * 5.0
data = (100 * np.sin(x * 0.1) * np.cos(y * 0.07) + z + ((i * 31 + j * 17 + k * 7) % 13)).astype(np.float32)
img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
img.SetSpacing((0.5, 0.5, 5.0))
ns = (1.0, 1.0, 1.0)
size = [int(math.ceil(n * s / t)) for n, s, t in zip(img.GetSize(), img.GetSpacing(), ns)]
origin = [o + (t - s) / 2 for o, s, t in zip(img.GetOrigin(), img.GetSpacing(), ns)]
times = []
for _ in range(3):
    t0 = time.perf_counter()
    out = sitk.Resample(img, size, sitk.Transform(), sitk.sitkBSpline, origin, ns, img.GetDirection(), 0.0, sitk.sitkFloat32)
    times.append(time.perf_counter() - t0)
times.sort()
print(f"SimpleITK {sitk.Version.VersionString()} sitkBSpline 256x256x24 -> {out.GetSize()}: runs {[round(t, 3) for t in times]} s, "
      f"median {times[1]:.3f} s ({sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()} threads)")

# --register: time SimpleITK's rigid registration on the pair written by
# `cargo run --example bench_resample -- --register` (same settings as radpipe's default)
import os
import sys
import tempfile

if "--register" in sys.argv:
    d = tempfile.gettempdir()
    fixed = sitk.ReadImage(os.path.join(d, "radpipe_bench_fixed.nii.gz"), sitk.sitkFloat32)
    moving = sitk.ReadImage(os.path.join(d, "radpipe_bench_moving.nii.gz"), sitk.sitkFloat32)
    R = sitk.ImageRegistrationMethod()
    R.SetMetricAsMattesMutualInformation(50)
    R.SetMetricSamplingStrategy(R.RANDOM)
    R.SetMetricSamplingPercentage(0.25, 42)
    R.SetInterpolator(sitk.sitkLinear)
    R.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4, numberOfIterations=200,
                                                relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
    R.SetOptimizerScalesFromPhysicalShift()
    R.SetShrinkFactorsPerLevel([4, 2, 1])
    R.SetSmoothingSigmasPerLevel([2, 1, 0])
    R.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    R.SetInitialTransform(sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                            sitk.CenteredTransformInitializerFilter.GEOMETRY), inPlace=False)
    t0 = time.perf_counter()
    out = R.Execute(fixed, moving)
    dt = time.perf_counter() - t0
    params = sitk.CompositeTransform(out).GetBackTransform().GetParameters() if out.GetName() == "CompositeTransform" else out.GetParameters()
    print(f"SimpleITK rigid registration 256x256x24 blob phantom: {dt:.2f} s, last-level iterations {R.GetOptimizerIteration()}, "
          f"parameters {[round(p, 4) for p in params]}")
