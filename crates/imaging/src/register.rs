//! Intensity-based registration: Mattes mutual information, multi-resolution
//! pyramid, regular-step gradient descent with physical-shift parameter scales —
//! the same recipe as SimpleITK's `ImageRegistrationMethod` configured with
//! `SetMetricAsMattesMutualInformation(50)`, `RANDOM` sampling,
//! `sitkLinear`, `SetOptimizerAsRegularStepGradientDescent`,
//! `SetOptimizerScalesFromPhysicalShift`, shrink `[4,2,1]`, sigmas `[2,1,0]` mm and a
//! `CenteredTransformInitializer(..., GEOMETRY)`.
//!
//! Details (documented where they are ours, not ITK's):
//! * **Metric** (value returned is `-MI`, minimised, ITK sign): joint histogram with
//!   `bins` bins (padding 2 each side as ITK); fixed values fall in one bin (zero-order
//!   Parzen window), moving values are spread with the cubic B-spline kernel over 4
//!   bins (third-order Parzen window), bin ranges from each (level) image's min/max.
//!   `MI = Σ p log(p / (p_f p_m))`; analytic gradient
//!   `dMI/dθ = Σ dp/dθ · log(p / p_m)` with the moving image gradient taken from
//!   central differences (interpolated linearly) and the transform Jacobian.
//!   Samples mapped outside the moving image are ignored.
//! * **Sampling**: at each level a fraction `sampling_fraction` of the fixed voxels is
//!   drawn with replacement by `rand_chacha::ChaCha8Rng` seeded with `seed + level`
//!   (voxel centres, no jitter).  `sampling_fraction >= 1` uses every voxel.
//! * **Pyramid**: each level smooths both images with a sampled Gaussian of
//!   `sigma` mm (per-axis `sigma / spacing` voxels, truncated at 4 sigma, mirror
//!   boundary), then shrinks by the integer factor (`floor(n / f)` voxels, new
//!   spacing `f · spacing`, grid centred on the original, linear sampling).
//! * **Optimiser**: ITK `RegularStepGradientDescentOptimizerv4` semantics — scaled
//!   gradient `g_i / s_i`, step `learning_rate · relaxation^k` along its unit vector,
//!   relaxation when the scaled gradient reverses direction, stop when the step is
//!   below `min_step`, the scaled gradient norm below `gradient_tolerance`, or
//!   after `max_iterations` per level.
//! * **Scales** (physical shift): `s_i = max_corner |T(θ+δe_i)(x) - T(θ)(x)|² / δ²`
//!   over the 8 corners of the (level) fixed image, `δ = 0.01`, once per level.

#![allow(clippy::needless_range_loop)] // explicit indices read better in 3x3 / kernel math

use ndarray::parallel::prelude::*;
use ndarray::{Array3, Axis};
use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bspline::{kernel, kernel_derivative};
use super::error::{ImagingError, Result};
use super::interpolate::{Interpolator, Sampler};
use super::resample::{resample_to_grid, Grid};
use super::transform::Transform;
use super::volume::{mat_mul, mat_transpose, mat_vec, Mat3, Vec3, Volume};

/// Which transform family to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    Euler3d,
    Affine,
}

/// Registration settings; `Default` is the study recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationConfig {
    pub transform: TransformKind,
    pub bins: usize,
    pub shrink_factors: Vec<usize>,
    pub smoothing_sigmas_mm: Vec<f64>,
    pub sampling_fraction: f64,
    pub seed: u64,
    /// Initial step length (ITK "learning rate" of the regular-step optimiser).
    pub learning_rate: f64,
    pub min_step: f64,
    pub relaxation: f64,
    pub max_iterations: usize,
    pub gradient_tolerance: f64,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            transform: TransformKind::Euler3d,
            bins: 50,
            shrink_factors: vec![4, 2, 1],
            smoothing_sigmas_mm: vec![2.0, 1.0, 0.0],
            sampling_fraction: 0.25,
            seed: 42,
            learning_rate: 2.0,
            min_step: 1e-4,
            relaxation: 0.5,
            max_iterations: 200,
            gradient_tolerance: 1e-8,
        }
    }
}

/// Outcome of [`register`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationResult {
    /// Fixed -> moving transform.
    pub transform: Transform,
    /// Final sampled metric value (`-MI`) at the finest level.
    pub metric: f64,
    /// Iterations used per level.
    pub iterations: Vec<usize>,
    /// Why the last level stopped.
    pub stop_reason: String,
}

/// ITK `CenteredTransformInitializer(GEOMETRY)`: centre = fixed grid centre,
/// translation = moving centre - fixed centre, no rotation.
pub fn centered_geometry_initialization(fixed: &Volume, moving: &Volume, kind: TransformKind) -> Transform {
    let cf = fixed.center();
    let cm = moving.center();
    let t = [cm[0] - cf[0], cm[1] - cf[1], cm[2] - cf[2]];
    match kind {
        TransformKind::Euler3d => Transform::Euler3d { center: cf, angles: [0.0; 3], translation: t },
        TransformKind::Affine => Transform::Affine { center: cf, matrix: super::volume::IDENTITY3, translation: t },
    }
}

/// Resample a moving image onto the fixed grid through `t` (B-spline, 0 outside).
pub fn apply_transform_image(moving: &Volume, fixed: &Volume, t: &Transform) -> Result<Volume> {
    resample_to_grid(moving, &Grid::of(fixed), Some(t), Interpolator::BSpline, 0.0)
}

/// Resample a moving-space ROI / label mask onto the fixed grid (nearest neighbour).
pub fn apply_transform_roi(roi: &Volume, fixed: &Volume, t: &Transform) -> Result<Volume> {
    resample_to_grid(roi, &Grid::of(fixed), Some(t), Interpolator::Nearest, 0.0)
}

// ------------------------------------------------------------------ pyramid --

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
                        s += w * buf[super::bspline::mirror(i as i64 + t as i64 - r, n)];
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

// ------------------------------------------------------------------- metric --

struct MovingLevel {
    vol: Volume,
    sampler: Sampler,
    /// Index-space gradient components, sampled with the image's weights.
    grad: [Array3<f32>; 3],
    p2i: Mat3,
    i2p_t_inv: Mat3, // physical gradient = P^T · index gradient
}

impl MovingLevel {
    fn new(vol: Volume) -> MovingLevel {
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

struct Sample {
    point: Vec3,
    fixed_bin: usize,
}

struct Histogram {
    bins: usize,
    fixed_min: f64,
    fixed_bin_size: f64,
    moving_min: f64,
    moving_bin_size: f64,
}

const PADDING: usize = 2;

impl Histogram {
    fn new(bins: usize, fixed: (f64, f64), moving: (f64, f64)) -> Histogram {
        let usable = (bins - 2 * PADDING) as f64;
        let bs = |(lo, hi): (f64, f64)| if hi > lo { (hi - lo) / usable } else { 1.0 };
        Histogram { bins, fixed_min: fixed.0, fixed_bin_size: bs(fixed), moving_min: moving.0, moving_bin_size: bs(moving) }
    }
    fn fixed_bin(&self, v: f64) -> usize {
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

/// The parts of the transform's Jacobian that do not depend on the point:
/// for Euler 3D the derivatives of the rotation matrix by each angle.
fn rotation_derivatives(t: &Transform) -> [Mat3; 3] {
    match t {
        Transform::Euler3d { angles, .. } => {
            let (sx, cx) = angles[0].sin_cos();
            let (sy, cy) = angles[1].sin_cos();
            let (sz, cz) = angles[2].sin_cos();
            let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
            let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
            let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
            let drx = [[0.0, 0.0, 0.0], [0.0, -sx, -cx], [0.0, cx, -sx]];
            let dry = [[-sy, 0.0, cy], [0.0, 0.0, 0.0], [-cy, 0.0, -sy]];
            let drz = [[-sz, -cz, 0.0], [cz, -sz, 0.0], [0.0, 0.0, 0.0]];
            [mat_mul(&rz, &mat_mul(&drx, &ry)), mat_mul(&rz, &mat_mul(&rx, &dry)), mat_mul(&drz, &mat_mul(&rx, &ry))]
        }
        _ => [[[0.0; 3]; 3]; 3],
    }
}

/// d(mapped point)/d(parameter) at `x`; `dr` from `rotation_derivatives`.
fn jacobian(t: &Transform, dr: &[Mat3; 3], x: &Vec3, out: &mut [Vec3]) {
    match t {
        Transform::Identity => {}
        Transform::Euler3d { center, .. } => {
            let d = [x[0] - center[0], x[1] - center[1], x[2] - center[2]];
            out[0] = mat_vec(&dr[0], &d);
            out[1] = mat_vec(&dr[1], &d);
            out[2] = mat_vec(&dr[2], &d);
            out[3] = [1.0, 0.0, 0.0];
            out[4] = [0.0, 1.0, 0.0];
            out[5] = [0.0, 0.0, 1.0];
        }
        Transform::Affine { center, .. } => {
            let d = [x[0] - center[0], x[1] - center[1], x[2] - center[2]];
            for r in 0..3 {
                for c in 0..3 {
                    let mut v = [0.0; 3];
                    v[r] = d[c];
                    out[3 * r + c] = v;
                }
            }
            out[9] = [1.0, 0.0, 0.0];
            out[10] = [0.0, 1.0, 0.0];
            out[11] = [0.0, 0.0, 1.0];
        }
    }
}

/// `(-MI, d(-MI)/dθ, valid sample count)`.
// The registration's inner loop: one fused pass over the samples (Parzen
// weights, joint histogram and its derivative per parameter), kept whole so
// that the per-sample accumulators stay local.
#[allow(clippy::too_many_lines)]
fn metric_and_gradient(samples: &[Sample], hist: &Histogram, moving: &MovingLevel, t: &Transform, want_grad: bool) -> (f64, Vec<f64>, usize) {
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

fn draw_samples(fixed: &Volume, fraction: f64, seed: u64, hist_of: impl Fn(f64) -> usize) -> Vec<Sample> {
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

fn range(v: &Volume, what: &str) -> Result<(f64, f64)> {
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

fn physical_shift_scales(fixed: &Volume, t: &Transform) -> Vec<f64> {
    let n = fixed.size();
    let mut corners = Vec::new();
    for c in 0..8 {
        let idx = [
            if c & 1 == 0 { 0.0 } else { n[0] as f64 - 1.0 },
            if c & 2 == 0 { 0.0 } else { n[1] as f64 - 1.0 },
            if c & 4 == 0 { 0.0 } else { n[2] as f64 - 1.0 },
        ];
        corners.push(fixed.index_to_physical(&idx));
    }
    let p0 = t.parameters();
    let delta = 0.01;
    (0..p0.len())
        .map(|q| {
            let mut tp = t.clone();
            let mut p = p0.clone();
            p[q] += delta;
            tp.set_parameters(&p).expect("same length");
            let s = corners
                .iter()
                .map(|x| {
                    let a = t.transform_point(x);
                    let b = tp.transform_point(x);
                    (0..3).map(|r| (a[r] - b[r]).powi(2)).sum::<f64>()
                })
                .fold(0.0, f64::max);
            (s / (delta * delta)).max(1e-12)
        })
        .collect()
}

/// Register `moving` to `fixed`; the result maps fixed points into the moving image.
pub fn register(fixed: &Volume, moving: &Volume, cfg: &RegistrationConfig) -> Result<RegistrationResult> {
    register_from(fixed, moving, cfg, centered_geometry_initialization(fixed, moving, cfg.transform))
}

/// As [`register`] from a given initial transform.
pub fn register_from(fixed: &Volume, moving: &Volume, cfg: &RegistrationConfig, initial: Transform) -> Result<RegistrationResult> {
    if cfg.shrink_factors.len() != cfg.smoothing_sigmas_mm.len() || cfg.shrink_factors.is_empty() {
        return Err(ImagingError::InvalidParameter("shrink_factors and smoothing_sigmas_mm must be non-empty and of equal length".into()));
    }
    if cfg.bins < 2 * PADDING + 1 || cfg.sampling_fraction.is_nan() || cfg.sampling_fraction <= 0.0 || cfg.shrink_factors.contains(&0) {
        return Err(ImagingError::InvalidParameter(format!("invalid registration config {cfg:?}")));
    }
    let mut t = initial;
    let mut iterations = Vec::new();
    let mut stop_reason = String::new();
    let mut last_metric = 0.0;
    for (level, (&f, &sigma)) in cfg.shrink_factors.iter().zip(&cfg.smoothing_sigmas_mm).enumerate() {
        let fl = shrink(&smooth(fixed, sigma), f)?;
        let ml = MovingLevel::new(shrink(&smooth(moving, sigma), f)?);
        let hist = Histogram::new(cfg.bins, range(&fl, "fixed")?, range(&ml.vol, "moving")?);
        let samples = draw_samples(&fl, cfg.sampling_fraction, cfg.seed.wrapping_add(level as u64), |v| hist.fixed_bin(v));
        let scales = physical_shift_scales(&fl, &t);
        let mut step = cfg.learning_rate;
        let mut prev: Option<Vec<f64>> = None;
        let mut it = 0;
        stop_reason = format!("maximum number of iterations ({}) reached", cfg.max_iterations);
        while it < cfg.max_iterations {
            let (value, grad, count) = metric_and_gradient(&samples, &hist, &ml, &t, true);
            if count == 0 {
                return Err(ImagingError::Registration(format!("level {level}: no sample maps inside the moving image")));
            }
            last_metric = value;
            // descent direction, scaled
            let d: Vec<f64> = grad.iter().zip(&scales).map(|(g, s)| -g / s).collect();
            let norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !norm.is_finite() {
                return Err(ImagingError::Registration("non-finite metric gradient".into()));
            }
            if norm < cfg.gradient_tolerance {
                stop_reason = format!("gradient magnitude below tolerance after {it} iterations");
                break;
            }
            if let Some(p) = &prev {
                if p.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
                    step *= cfg.relaxation;
                }
            }
            if step < cfg.min_step {
                stop_reason = format!("step too small after {it} iterations");
                break;
            }
            let mut params = t.parameters();
            for (p, di) in params.iter_mut().zip(&d) {
                *p += step * di / norm;
            }
            t.set_parameters(&params)?;
            prev = Some(d);
            it += 1;
        }
        iterations.push(it);
    }
    Ok(RegistrationResult { transform: t, metric: last_metric, iterations, stop_reason })
}

/// Rotation angle (degrees) of `R_a^T R_b` — the angular difference of two rotations.
#[cfg(test)]
fn rotation_difference_deg(a: &Vec3, b: &Vec3) -> f64 {
    use super::transform::euler_matrix;
    let r = mat_mul(&mat_transpose(&euler_matrix(a)), &euler_matrix(b));
    let tr = r[0][0] + r[1][1] + r[2][2];
    ((tr - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti_io::read_nifti;

    use crate::nifti_io::tests::fixture;

    /// The registration fixture: its JSON, the true parameters and transform.
    fn expected_truth() -> (serde_json::Value, Vec<f64>, Transform) {
        let exp: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("registration_expected.json")).unwrap()).unwrap();
        let center = vec_of(&exp["truth"]["center"]);
        let truth = vec_of(&exp["truth"]["parameters"]);
        let truth_t = Transform::euler([center[0], center[1], center[2]], truth.clone().try_into().unwrap());
        (exp, truth, truth_t)
    }

    fn vec_of(v: &serde_json::Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    /// Max displacement (mm) between two transforms over the fixed image's corners.
    fn max_corner_error(fixed: &Volume, a: &Transform, b: &Transform) -> f64 {
        let n = fixed.size();
        (0..8)
            .map(|c| {
                let idx = [(c & 1) as f64 * (n[0] - 1) as f64, ((c >> 1) & 1) as f64 * (n[1] - 1) as f64, ((c >> 2) & 1) as f64 * (n[2] - 1) as f64];
                let x = fixed.index_to_physical(&idx);
                let (p, q) = (a.transform_point(&x), b.transform_point(&x));
                (0..3).map(|r| (p[r] - q[r]).powi(2)).sum::<f64>().sqrt()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn recovers_known_rigid_transform_mono_and_cross_modal() {
        let (exp, truth, truth_t) = expected_truth();
        let center = vec_of(&exp["truth"]["center"]);
        let fixed = read_nifti(fixture("reg_fixed.nii.gz")).unwrap();
        let roi_fixed = read_nifti(fixture("reg_roi_fixed.nii.gz")).unwrap();
        // mono: same grid, same intensities; cross: same grid, remapped intensities;
        // grid: remapped intensities on another (oblique, anisotropic, shifted) grid
        for (name, roi_file) in [("mono", "reg_roi_moving.nii.gz"), ("cross", "reg_roi_moving.nii.gz"), ("grid", "reg_roi_moving_grid.nii.gz")] {
            let roi_moving = read_nifti(fixture(roi_file)).unwrap();
            let moving = read_nifti(fixture(&format!("reg_moving_{name}.nii.gz"))).unwrap();
            let res = register(&fixed, &moving, &RegistrationConfig::default()).unwrap();
            let Transform::Euler3d { center: c, angles, translation } = res.transform.clone() else { panic!() };
            // same centre convention as the truth (fixed-grid centre)
            for a in 0..3 {
                assert!((c[a] - center[a]).abs() < 1e-6);
            }
            let ang_err = rotation_difference_deg(&angles, &[truth[0], truth[1], truth[2]]);
            let tr_err = (0..3).map(|a| (translation[a] - truth[3 + a]).powi(2)).sum::<f64>().sqrt();
            let corner = max_corner_error(&fixed, &res.transform, &truth_t);
            let run = &exp["runs"][name];
            let sitk_p = vec_of(&run["sitk_parameters"]);
            let sitk_t = Transform::euler([center[0], center[1], center[2]], sitk_p.clone().try_into().unwrap());
            let mi_ours = mattes_mi(&fixed, &moving, &res.transform, 50).unwrap();
            let mi_sitk_params = mattes_mi(&fixed, &moving, &sitk_t, 50).unwrap();
            let mi_truth = mattes_mi(&fixed, &moving, &truth_t, 50).unwrap();
            let sitk_truth = run["sitk_metric_full_at_truth"].as_f64().unwrap();
            let sitk_ang = rotation_difference_deg(&[sitk_p[0], sitk_p[1], sitk_p[2]], &[truth[0], truth[1], truth[2]]);
            let sitk_tr = (0..3).map(|a| (sitk_p[3 + a] - truth[3 + a]).powi(2)).sum::<f64>().sqrt();
            eprintln!(
                "{name}: ours angle err {ang_err:.3} deg, translation err {tr_err:.3} mm, max corner err {corner:.3} mm, iterations {:?} ({}); \
                 sitk angle err {sitk_ang:.3} deg, translation err {sitk_tr:.3} mm; \
                 full -MI: ours@ours {mi_ours:.5}, ours@sitk-result {mi_sitk_params:.5}, ours@truth {mi_truth:.5}, sitk@sitk-result {:.5}, sitk@truth {sitk_truth:.5}, sitk@identity {:.5}",
                res.iterations,
                res.stop_reason,
                run["sitk_metric_full_at_sitk_result"].as_f64().unwrap(),
                run["sitk_metric_full_at_identity"].as_f64().unwrap(),
            );
            assert!(ang_err < 0.5, "{name}: angle error {ang_err} deg");
            assert!(tr_err < 0.5, "{name}: translation error {tr_err} mm");
            // we reach at least SimpleITK's optimum (full-sampling MI, our metric)
            assert!(mi_ours <= mi_sitk_params + 0.005, "{name}: our optimum {mi_ours} vs at sitk's {mi_sitk_params}");
            // our Mattes MI agrees with ITK's on the same transform
            assert!((mi_truth - sitk_truth).abs() < 0.02 * sitk_truth.abs(), "{name}: MI {mi_truth} vs sitk {sitk_truth}");
            // ROI carried onto the fixed grid by nearest neighbour
            // (the voxelised ellipsoid itself limits Dice: compare with the truth transform)
            let dice_of = |t: &Transform| {
                let roi = apply_transform_roi(&roi_moving, &fixed, t).unwrap();
                let inter = roi.data.iter().zip(roi_fixed.data.iter()).filter(|(a, b)| **a > 0.5 && **b > 0.5).count() as f64;
                2.0 * inter / (roi.data.iter().filter(|a| **a > 0.5).count() + roi_fixed.data.iter().filter(|a| **a > 0.5).count()) as f64
            };
            let (dice, dice_truth) = (dice_of(&res.transform), dice_of(&truth_t));
            eprintln!("{name}: ROI Dice {dice:.4} (truth transform {dice_truth:.4})");
            assert!(dice > dice_truth - 0.03 && dice > 0.75, "{name}: ROI Dice {dice} vs {dice_truth}");
            // transform survives JSON
            let p = std::env::temp_dir().join(format!("radpipe_reg_{name}_{}.json", std::process::id()));
            res.transform.save_json(&p).unwrap();
            let back = Transform::load_json(&p).unwrap().parameters();
            assert!(back.iter().zip(res.transform.parameters()).all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs().max(1.0)));
            std::fs::remove_file(&p).ok();
        }
    }

    /// `apply_transform_image` / `apply_transform_roi` with the truth transform equal
    /// SimpleITK `Resample(moving, fixed, euler, sitkBSpline / sitkNearestNeighbor)`.
    #[test]
    fn apply_transform_matches_simpleitk() {
        let exp: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("registration_expected.json")).unwrap()).unwrap();
        let center = vec_of(&exp["truth"]["center"]);
        let truth = vec_of(&exp["truth"]["parameters"]);
        let t = Transform::euler([center[0], center[1], center[2]], truth.try_into().unwrap());
        let fixed = read_nifti(fixture("reg_fixed.nii.gz")).unwrap();
        let moving = read_nifti(fixture("reg_moving_cross.nii.gz")).unwrap();
        let want = read_nifti(fixture("reg_cross_to_fixed_bspline.nii.gz")).unwrap();
        let got = apply_transform_image(&moving, &fixed, &t).unwrap();
        let n = got.size();
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for ((i, j, k), &g) in got.data.indexed_iter() {
            if [i, j, k].iter().zip(n.iter()).all(|(&p, &s)| p >= 3 && p + 3 < s) {
                let w = want.data[[i, j, k]] as f64;
                num += (g as f64 - w).powi(2);
                den += w * w;
            }
        }
        let rel = (num / den).sqrt();
        eprintln!("apply_transform_image vs sitk Resample(BSpline, Euler3D): rel L2 {rel:.3e}");
        assert!(rel < 1e-3, "rel L2 {rel}");
        let roi = read_nifti(fixture("reg_roi_moving.nii.gz")).unwrap();
        let want = read_nifti(fixture("reg_roi_to_fixed_nearest.nii.gz")).unwrap();
        let got = apply_transform_roi(&roi, &fixed, &t).unwrap();
        let diff = got.data.iter().zip(want.data.iter()).filter(|(a, b)| a != b).count();
        eprintln!("apply_transform_roi vs sitk nearest: {diff} differing voxels of {}", got.data.len());
        assert_eq!(diff, 0);
    }

    #[test]
    fn affine_option_runs_and_recovers_translation() {
        let (_, _, truth_t) = expected_truth();
        let fixed = read_nifti(fixture("reg_fixed.nii.gz")).unwrap();
        let moving = read_nifti(fixture("reg_moving_mono.nii.gz")).unwrap();
        let cfg = RegistrationConfig { transform: TransformKind::Affine, ..Default::default() };
        let res = register(&fixed, &moving, &cfg).unwrap();
        let err = max_corner_error(&fixed, &res.transform, &truth_t);
        eprintln!("affine: max corner error {err:.3} mm, iterations {:?}", res.iterations);
        assert!(err < 1.5, "affine corner error {err}");
    }

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
