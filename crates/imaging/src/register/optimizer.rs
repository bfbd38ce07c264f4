//! The optimisation driver: per pyramid level it builds the smoothed, shrunk
//! images, the histogram and the samples, computes the physical-shift parameter
//! scales, and runs ITK's regular-step gradient descent (scaled gradient, step
//! relaxed when the direction reverses) until the step is below `min_step`, the
//! scaled gradient norm below `gradient_tolerance`, or `max_iterations` is reached.

use super::metric::{draw_samples, metric_and_gradient, range, Histogram, MovingLevel, PADDING};
use super::pyramid::{shrink, smooth};
use super::{RegistrationConfig, RegistrationResult};
use crate::error::{ImagingError, Result};
use crate::transform::Transform;
use crate::volume::Volume;

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

/// As [`register`](super::register) from a given initial transform.
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
