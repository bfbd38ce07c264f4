//! The multi-resolution pyramid: separable Gaussian smoothing with sigma in mm
//! (sampled kernel truncated at 4 sigma, mirror boundary) and shrinking by an
//! integer factor onto a grid centred on the input (linear sampling), applied to
//! both images at each level.

use ndarray::parallel::prelude::*;
use ndarray::Axis;

use crate::error::Result;
use crate::interpolate::Interpolator;
use crate::resample::{resample_to_grid, Grid};
use crate::volume::Volume;

fn gaussian_kernel(sigma_vox: f64) -> Vec<f64> {
    let r = (4.0 * sigma_vox).ceil().max(1.0) as i64;
    let mut k: Vec<f64> = (-r..=r).map(|x| (-(x as f64).powi(2) / (2.0 * sigma_vox * sigma_vox)).exp()).collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Separable Gaussian smoothing with sigma in mm (mirror boundary).
pub fn smooth(v: &Volume, sigma_mm: f64) -> Volume {
    let mut out = v.clone();
    if sigma_mm <= 0.0 {
        return out;
    }
    for axis in 0..3 {
        let n = out.size()[axis];
        let sv = sigma_mm / v.spacing[axis];
        if n <= 1 || sv < 1e-3 {
            continue;
        }
        let k = gaussian_kernel(sv);
        let r = (k.len() / 2) as i64;
        let split = if axis == 0 { 1 } else { 0 };
        let lane_axis = if axis < split { axis } else { axis - 1 };
        out.data.axis_iter_mut(Axis(split)).into_par_iter().for_each(|mut sub| {
            let mut buf = vec![0.0f64; n];
            for mut lane in sub.lanes_mut(Axis(lane_axis)) {
                for (b, &x) in buf.iter_mut().zip(lane.iter()) {
                    *b = x as f64;
                }
                for (i, dst) in lane.iter_mut().enumerate() {
                    let mut s = 0.0;
                    for (t, w) in k.iter().enumerate() {
                        s += w * buf[crate::bspline::mirror(i as i64 + t as i64 - r, n)];
                    }
                    *dst = s as f32;
                }
            }
        });
    }
    out
}

/// Shrink by an integer factor (grid centred on the input; linear sampling).
pub fn shrink(v: &Volume, f: usize) -> Result<Volume> {
    if f <= 1 {
        return Ok(v.clone());
    }
    let n = v.size();
    let mut size = [0usize; 3];
    let mut start = [0.0f64; 3];
    let mut spacing = [0.0; 3];
    for a in 0..3 {
        size[a] = (n[a] / f).max(1);
        let fa = if n[a] >= f { f as f64 } else { 1.0 };
        if n[a] < f {
            size[a] = n[a];
        }
        spacing[a] = v.spacing[a] * fa;
        start[a] = ((n[a] as f64 - 1.0) - (size[a] as f64 - 1.0) * fa) / 2.0;
    }
    let origin = v.index_to_physical(&start);
    let grid = Grid { size, spacing, origin, direction: v.direction };
    resample_to_grid(v, &grid, None, Interpolator::Linear, 0.0)
}
