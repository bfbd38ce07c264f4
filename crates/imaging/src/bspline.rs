//! Cubic B-spline: the exact recursive prefilter (interpolation coefficients) and
//! the kernel.
//!
//! The prefilter is ITK's `BSplineDecompositionImageFilter` for order 3: gain
//! `(1-z)(1-1/z) = 6`, one pole `z = sqrt(3) - 2`, causal + anti-causal recursions,
//! mirror (whole-sample symmetric) boundary conditions; the causal initial value uses
//! the truncated sum when its horizon `ceil(ln(1e-10)/ln|z|) = 18` is shorter than the
//! line, otherwise the exact mirror sum.  Lines of length 1 are left unchanged.
//! Arithmetic is f64 per line; coefficients are stored as f32.

use ndarray::parallel::prelude::*;
use ndarray::{Array3, Axis};

/// The single pole of the cubic B-spline prefilter.
pub const POLE: f64 = -0.267_949_192_431_122_7; // sqrt(3) - 2
const TOLERANCE: f64 = 1e-10;

/// In-place cubic B-spline prefilter of one line (ITK-compatible).
pub fn prefilter_line(c: &mut [f64]) {
    let n = c.len();
    if n <= 1 {
        return;
    }
    let z = POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in c.iter_mut() {
        *v *= gain;
    }
    // causal initialisation
    let horizon = (TOLERANCE.ln() / z.abs().ln()).ceil() as usize;
    let mut zn = z;
    if horizon < n {
        let mut sum = c[0];
        for v in c.iter().take(horizon).skip(1) {
            sum += zn * v;
            zn *= z;
        }
        c[0] = sum;
    } else {
        let iz = 1.0 / z;
        let mut z2n = z.powi((n - 1) as i32);
        let mut sum = c[0] + z2n * c[n - 1];
        z2n = z2n * z2n * iz;
        for v in c.iter().take(n - 1).skip(1) {
            sum += (zn + z2n) * v;
            zn *= z;
            z2n *= iz;
        }
        c[0] = sum / (1.0 - zn * zn);
    }
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    // anti-causal initialisation and recursion
    c[n - 1] = (z / (z * z - 1.0)) * (z * c[n - 2] + c[n - 1]);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

/// Cubic B-spline interpolation coefficients of a volume (separable prefilter along
/// the three axes, lines in parallel with rayon).
pub fn coefficients(data: &Array3<f32>) -> Array3<f32> {
    let mut out = data.as_standard_layout().into_owned();
    for axis in 0..3 {
        if out.shape()[axis] <= 1 {
            continue;
        }
        // split over an axis other than `axis`, filter the lanes of each sub-view
        let split = if axis == 0 { 1 } else { 0 };
        let lane_axis = if axis < split { axis } else { axis - 1 };
        out.axis_iter_mut(Axis(split)).into_par_iter().for_each(|mut sub| {
            let mut buf: Vec<f64> = Vec::new();
            for mut lane in sub.lanes_mut(Axis(lane_axis)) {
                buf.clear();
                buf.extend(lane.iter().map(|&v| v as f64));
                prefilter_line(&mut buf);
                for (dst, &src) in lane.iter_mut().zip(buf.iter()) {
                    *dst = src as f32;
                }
            }
        });
    }
    out
}

/// Centred cubic B-spline kernel beta3(x).
pub fn kernel(x: f64) -> f64 {
    let a = x.abs();
    if a < 1.0 {
        (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0
    } else if a < 2.0 {
        let t = 2.0 - a;
        t * t * t / 6.0
    } else {
        0.0
    }
}

/// Derivative of [`kernel`].
pub fn kernel_derivative(x: f64) -> f64 {
    let a = x.abs();
    let s = if x < 0.0 { -1.0 } else { 1.0 };
    if a < 1.0 {
        s * (-2.0 * a + 1.5 * a * a)
    } else if a < 2.0 {
        let t = 2.0 - a;
        -s * 0.5 * t * t
    } else {
        0.0
    }
}

/// Weights for the four samples `floor(x)-1 ..= floor(x)+2` given `u = x - floor(x)`.
#[inline]
pub fn weights(u: f64) -> [f64; 4] {
    let u2 = u * u;
    let u3 = u2 * u;
    let w3 = u3 / 6.0;
    let w0 = (1.0 - u) * (1.0 - u) * (1.0 - u) / 6.0;
    let w1 = (3.0 * u3 - 6.0 * u2 + 4.0) / 6.0;
    [w0, w1, 1.0 - w0 - w1 - w3, w3]
}

/// Mirror an integer sample index into `0..n` (whole-sample symmetric, as ITK).
#[inline]
pub fn mirror(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * n as i64 - 2;
    let mut m = i.rem_euclid(period);
    if m >= n as i64 {
        m = period - m;
    }
    m as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reconstructing at the samples returns the data (interpolation property),
    /// including short lines that take the exact-mirror initialisation.
    #[test]
    fn prefilter_interpolates_samples() {
        for n in [2usize, 3, 5, 17, 18, 19, 40] {
            let data: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 - 3.5 + (i as f64 * 0.3).sin()).collect();
            let mut c = data.clone();
            prefilter_line(&mut c);
            for (i, want) in data.iter().enumerate() {
                let w = weights(0.0);
                let v: f64 = (0..4).map(|t| w[t] * c[mirror(i as i64 - 1 + t as i64, n)]).sum();
                let tol = if n > 18 { 1e-8 } else { 1e-10 };
                assert!((v - want).abs() < tol, "n={n} i={i}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn kernel_partition_of_unity_and_derivative() {
        for t in [0.0, 0.1, 0.5, 0.77, 0.999] {
            let w = weights(t);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (k, wk) in w.iter().enumerate() {
                assert!((wk - kernel(t - (k as f64 - 1.0))).abs() < 1e-12);
            }
            let h = 1e-6;
            let x = t * 3.0 - 1.7;
            let num = (kernel(x + h) - kernel(x - h)) / (2.0 * h);
            assert!((num - kernel_derivative(x)).abs() < 1e-6);
        }
        assert_eq!(mirror(-1, 5), 1);
        assert_eq!(mirror(5, 5), 3);
        assert_eq!(mirror(-9, 5), 1);
        assert_eq!(mirror(3, 1), 0);
    }
}
