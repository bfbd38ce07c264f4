//! Carrying images through a found transform: a moving image or a moving-space
//! ROI resampled onto the fixed grid (B-spline for intensities, nearest neighbour
//! for labels, 0 outside), as SimpleITK's `Resample(moving, fixed, t, ...)`.

use crate::error::Result;
use crate::interpolate::Interpolator;
use crate::resample::{resample_to_grid, Grid};
use crate::transform::Transform;
use crate::volume::Volume;

/// Resample a moving image onto the fixed grid through `t` (B-spline, 0 outside).
pub fn apply_transform_image(moving: &Volume, fixed: &Volume, t: &Transform) -> Result<Volume> {
    resample_to_grid(moving, &Grid::of(fixed), Some(t), Interpolator::BSpline, 0.0)
}

/// Resample a moving-space ROI / label mask onto the fixed grid (nearest neighbour).
pub fn apply_transform_roi(roi: &Volume, fixed: &Volume, t: &Transform) -> Result<Volume> {
    resample_to_grid(roi, &Grid::of(fixed), Some(t), Interpolator::Nearest, 0.0)
}
