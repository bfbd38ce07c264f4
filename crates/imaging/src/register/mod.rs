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
//!
//! This file owns the public entry ([`register`]), its settings and outcome types
//! and the centred geometry initialisation; the rest lives one concept per file:
//! smoothing and shrinking (`pyramid`), the Mattes histogram, metric and gradient
//! with fixed-image sampling (`metric`), the transform's parameter Jacobian
//! (`jacobian`), the level loop with the regular-step optimiser and its scales
//! (`optimizer`), and resampling through a found transform (`apply`).

#![allow(clippy::needless_range_loop)] // explicit indices read better in 3x3 / kernel math

mod apply;
mod jacobian;
mod metric;
mod optimizer;
mod pyramid;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use super::error::Result;
use super::transform::Transform;
use super::volume::Volume;

pub use apply::{apply_transform_image, apply_transform_roi};
pub use metric::mattes_mi;
pub use optimizer::register_from;

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

/// Register `moving` to `fixed`; the result maps fixed points into the moving image.
pub fn register(fixed: &Volume, moving: &Volume, cfg: &RegistrationConfig) -> Result<RegistrationResult> {
    register_from(fixed, moving, cfg, centered_geometry_initialization(fixed, moving, cfg.transform))
}
