//! The Mattes mutual-information metric: the joint histogram (`bins` bins, padding
//! 2 each side, zero-order Parzen window for fixed values, cubic B-spline window
//! over 4 bins for moving values), the moving level with its central-difference
//! index gradient, the fixed-image samples (every voxel, or a seeded random
//! fraction), the fused value-and-analytic-gradient pass, and [`mattes_mi`], the
//! full-sampling value comparable to SimpleITK's `MetricEvaluate`.

use ndarray::Array3;
use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::jacobian::{jacobian, rotation_derivatives};
use crate::bspline::{kernel, kernel_derivative};
use crate::error::{ImagingError, Result};
use crate::interpolate::{Interpolator, Sampler};
use crate::transform::Transform;
use crate::volume::{mat_transpose, mat_vec, Mat3, Vec3, Volume};

pub(super) struct MovingLevel {
    pub(super) vol: Volume,
    sampler: Sampler,
    /// Index-space gradient components, sampled with the image's weights.
    grad: [Array3<f32>; 3],
    p2i: Mat3,
    i2p_t_inv: Mat3, // physical gradient = P^T · index gradient
}

impl MovingLevel {
    pub(super) fn new(vol: Volume) -> MovingLevel {
        let n = vol.size();
        let mut g = [Array3::<f32>::zeros((n[0], n[1], n[2])), Array3::zeros((n[0], n[1], n[2])), Array3::zeros((n[0], n[1], n[2]))];
        for (a, ga) in g.iter_mut().enumerate() {
            let d = &vol.data;
            ga.indexed_iter_mut().for_each(|((i, j, k), out)| {
                let idx = [i, j, k];
                if n[a] < 2 {
                    return;
                }
                let (lo, hi) = (idx[a].saturating_sub(1), (idx[a] + 1).min(n[a] - 1));
                let mut il = idx;
                il[a] = lo;
                let mut ih = idx;
                ih[a] = hi;
                *out = (d[ih] - d[il]) / (hi - lo) as f32;
            });
        }
        let p2i = vol.physical_to_index_matrix();
        let sampler = Sampler::new(&vol.data, Interpolator::Linear);
        MovingLevel { i2p_t_inv: mat_transpose(&p2i), p2i, sampler, grad: g, vol }
    }
}

pub(super) struct Sample {
    point: Vec3,
    fixed_bin: usize,
}

pub(super) struct Histogram {
    bins: usize,
    fixed_min: f64,
    fixed_bin_size: f64,
    moving_min: f64,
    moving_bin_size: f64,
}

pub(super) const PADDING: usize = 2;

impl Histogram {
    pub(super) fn new(bins: usize, fixed: (f64, f64), moving: (f64, f64)) -> Histogram {
        let usable = (bins - 2 * PADDING) as f64;
        let bs = |(lo, hi): (f64, f64)| if hi > lo { (hi - lo) / usable } else { 1.0 };
        Histogram { bins, fixed_min: fixed.0, fixed_bin_size: bs(fixed), moving_min: moving.0, moving_bin_size: bs(moving) }
    }
    pub(super) fn fixed_bin(&self, v: f64) -> usize {
        let term = (v - self.fixed_min) / self.fixed_bin_size + PADDING as f64;
        (term.floor().max(PADDING as f64) as usize).min(self.bins - PADDING - 1)
    }
    fn moving_term(&self, v: f64) -> (f64, usize) {
        let term = (v - self.moving_min) / self.moving_bin_size + PADDING as f64;
        let idx = (term.floor().max(PADDING as f64) as usize).min(self.bins - PADDING - 1);
        (term, idx)
    }
}

/// Partial sums over a chunk of samples.
struct Partial {
    joint: Vec<f64>,
    djoint: Vec<f64>, // bins*bins*np
    count: usize,
}

/// `(-MI, d(-MI)/dθ, valid sample count)`.
// The registration's inner loop: one fused pass over the samples (Parzen
// weights, joint histogram and its derivative per parameter), kept whole so
// that the per-sample accumulators stay local.
#[allow(clippy::too_many_lines)]
pub(super) fn metric_and_gradient(samples: &[Sample], hist: &Histogram, moving: &MovingLevel, t: &Transform, want_grad: bool) -> (f64, Vec<f64>, usize) {
    let np = t.parameters().len();
    let b = hist.bins;
    let map = t.to_affine_map();
    let dr = rotation_derivatives(t);
    let chunk = 4096.max(samples.len().div_ceil(64));
    let partials: Vec<Partial> = samples
        .par_chunks(chunk)
        .map(|chunk| {
            let mut p = Partial { joint: vec![0.0; b * b], djoint: if want_grad { vec![0.0; b * b * np] } else { vec![] }, count: 0 };
            let mut jac = vec![[0.0; 3]; np];
            for s in chunk {
                let y = map.apply(&s.point);
                let ci = mat_vec(&moving.p2i, &[y[0] - moving.vol.origin[0], y[1] - moving.vol.origin[1], y[2] - moving.vol.origin[2]]);
                let Some((m, gi)) = moving.sampler.linear_with(&[&moving.grad[0], &moving.grad[1], &moving.grad[2]], &ci) else {
                    continue;
                };
                p.count += 1;
                let (term, idx) = hist.moving_term(m);
                let row = s.fixed_bin * b;
                let mut dterm = [0.0f64; 12];
                if want_grad {
                    let gp = mat_vec(&moving.i2p_t_inv, &gi);
                    jacobian(t, &dr, &s.point, &mut jac);
                    for q in 0..np {
                        dterm[q] = (gp[0] * jac[q][0] + gp[1] * jac[q][1] + gp[2] * jac[q][2]) / hist.moving_bin_size;
                    }
                }
                for mb in idx - 1..=idx + 2 {
                    let u = mb as f64 - term;
                    p.joint[row + mb] += kernel(u);
                    if want_grad {
                        // d/dθ beta3(mb - term) = -beta3'(mb - term) · dterm/dθ
                        let kd = -kernel_derivative(u);
                        let base = (row + mb) * np;
                        for q in 0..np {
                            p.djoint[base + q] += kd * dterm[q];
                        }
                    }
                }
            }
            p
        })
        .collect();
    let mut joint = vec![0.0; b * b];
    let mut djoint = if want_grad { vec![0.0; b * b * np] } else { vec![] };
    let mut count = 0;
    for p in &partials {
        joint.iter_mut().zip(&p.joint).for_each(|(a, v)| *a += v);
        djoint.iter_mut().zip(&p.djoint).for_each(|(a, v)| *a += v);
        count += p.count;
    }
    let total: f64 = joint.iter().sum();
    if count == 0 || total <= 0.0 {
        return (0.0, vec![0.0; np], 0);
    }
    let mut pf = vec![0.0; b];
    let mut pm = vec![0.0; b];
    for f in 0..b {
        for m in 0..b {
            let v = joint[f * b + m] / total;
            pf[f] += v;
            pm[m] += v;
        }
    }
    let mut mi = 0.0;
    let mut grad = vec![0.0; np];
    for f in 0..b {
        if pf[f] <= 1e-16 {
            continue;
        }
        for m in 0..b {
            let p = joint[f * b + m] / total;
            if p <= 1e-16 || pm[m] <= 1e-16 {
                continue;
            }
            let lr = (p / pm[m]).ln();
            mi += p * (lr - pf[f].ln());
            if want_grad {
                let base = (f * b + m) * np;
                for q in 0..np {
                    grad[q] += djoint[base + q] / total * lr;
                }
            }
        }
    }
    (-mi, grad.iter().map(|g| -g).collect(), count)
}

pub(super) fn draw_samples(fixed: &Volume, fraction: f64, seed: u64, hist_of: impl Fn(f64) -> usize) -> Vec<Sample> {
    let n = fixed.size();
    let total = n[0] * n[1] * n[2];
    let std_data = fixed.data.as_standard_layout();
    let data = std_data.as_slice().expect("standard layout");
    let to_sample = |flat: usize| {
        let (i, rem) = (flat / (n[1] * n[2]), flat % (n[1] * n[2]));
        let (j, k) = (rem / n[2], rem % n[2]);
        Sample { point: fixed.index_to_physical(&[i as f64, j as f64, k as f64]), fixed_bin: hist_of(data[flat] as f64) }
    };
    if fraction >= 1.0 {
        return (0..total).map(to_sample).collect();
    }
    let count = ((total as f64 * fraction).round() as usize).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|_| to_sample(rng.random_range(0..total))).collect()
}

pub(super) fn range(v: &Volume, what: &str) -> Result<(f64, f64)> {
    v.min_max().map(|(a, b)| (a as f64, b as f64)).ok_or_else(|| ImagingError::Registration(format!("{what} image has no finite voxels")))
}

/// Mattes MI metric value (`-MI`, ITK sign) of `moving ∘ t` against `fixed`, every
/// fixed voxel used, linear interpolation, no smoothing — comparable to SimpleITK's
/// `MetricEvaluate` with sampling `NONE`.
pub fn mattes_mi(fixed: &Volume, moving: &Volume, t: &Transform, bins: usize) -> Result<f64> {
    if bins < 2 * PADDING + 1 {
        return Err(ImagingError::InvalidParameter(format!("need at least {} histogram bins", 2 * PADDING + 1)));
    }
    let hist = Histogram::new(bins, range(fixed, "fixed")?, range(moving, "moving")?);
    let samples = draw_samples(fixed, 1.0, 0, |v| hist.fixed_bin(v));
    let ml = MovingLevel::new(moving.clone());
    let (v, _, n) = metric_and_gradient(&samples, &hist, &ml, t, false);
    if n == 0 {
        return Err(ImagingError::Registration("no fixed sample maps inside the moving image".into()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti_io::read_nifti;
    use crate::nifti_io::tests::fixture;
    use crate::register::pyramid::smooth;

    #[test]
    fn metric_gradient_matches_finite_differences() {
        let fixed = read_nifti(fixture("reg_fixed.nii.gz")).unwrap();
        let moving = read_nifti(fixture("reg_moving_mono.nii.gz")).unwrap();
        // well-smoothed images so central differences approximate the interpolant's slope
        let fl = smooth(&fixed, 3.0);
        let ml = MovingLevel::new(smooth(&moving, 3.0));
        let hist = Histogram::new(50, range(&fl, "f").unwrap(), range(&ml.vol, "m").unwrap());
        // interior samples only: points crossing the moving image border make the
        // sampled metric discontinuous, which finite differences would pick up
        let n = fl.size();
        let samples: Vec<Sample> = draw_samples(&fl, 1.0, 0, |v| hist.fixed_bin(v))
            .into_iter()
            .filter(|s| {
                let ci = fl.physical_to_index(&s.point);
                (0..3).all(|a| ci[a] >= 3.0 && ci[a] <= n[a] as f64 - 4.0)
            })
            .collect();
        let t = Transform::euler(fixed.center(), [0.02, -0.01, 0.03, 1.0, -0.5, 0.3]);
        let (_, g, _) = metric_and_gradient(&samples, &hist, &ml, &t, true);
        for (q, h) in [(0usize, 2e-3), (1, 2e-3), (2, 2e-3), (3, 0.05), (4, 0.05), (5, 0.05)] {
            let mut p = t.parameters();
            p[q] += h;
            let mut tp = t.clone();
            tp.set_parameters(&p).unwrap();
            p[q] -= 2.0 * h;
            let mut tm = t.clone();
            tm.set_parameters(&p).unwrap();
            let fd = (metric_and_gradient(&samples, &hist, &ml, &tp, false).0 - metric_and_gradient(&samples, &hist, &ml, &tm, false).0) / (2.0 * h);
            eprintln!("param {q}: analytic {} vs fd {fd}", g[q]);
            assert!((fd - g[q]).abs() < 0.1 * fd.abs().max(1e-3), "param {q}: analytic {} vs fd {fd}", g[q]);
        }
    }
}
