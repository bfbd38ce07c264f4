//! Pure-Rust medical-imaging primitives for radpipe: volumes with ITK (LPS)
//! geometry, NIfTI I/O, interpolation (nearest / linear / cubic B-spline),
//! physical-space resampling, rigid/affine registration by Mattes mutual
//! information, 2.5D slice extraction and 2D resizing.  Conventions (axis order,
//! LPS vs RAS, transform direction) are documented in the module docs of `volume.rs`, `nifti_io.rs`
//! and `transform.rs`.
//!
//! Typical per-patient flow (T1WI / contrast T1WI registered to T2WI, on which the
//! ROI was drawn):
//!
//! ```text
//! let t2  = read_nifti("t2.nii.gz")?;
//! let t1  = read_nifti("t1.nii.gz")?;
//! let roi = read_nifti("roi_t2.nii.gz")?;                 // same grid as t2
//! let reg = register(&t2, &t1, &RegistrationConfig::default())?;   // fixed = t2
//! reg.transform.save_json("t1_to_t2.json")?;
//! let t1_on_t2 = apply_transform_image(&t1, &t2, &reg.transform)?;
//! let t2_iso  = min_max_scale(&resample_image_isotropic(&t2)?);   // B-spline, 1 mm
//! let t1_iso  = min_max_scale(&resample_image_isotropic(&t1_on_t2)?);
//! let roi_iso = resample_mask_isotropic(&roi)?;                   // nearest, same grid
//! let x = extract_25d(&t2_iso, &roi_iso, &SliceConfig::default())?; // (3, 224, 224)
//! write_png_preview(&x.data, "qc/t2_25d.png")?;
//! ```

mod bspline;
mod error;
mod interpolate;
mod nifti_io;
mod register;
mod resample;
mod resize;
mod slice;
mod transform;
mod volume;

pub use error::{ImagingError, Result};
pub use interpolate::{Interpolator, Sampler};
pub use nifti_io::{read_nifti, read_nifti_with, write_nifti, write_nifti_as, NiftiDtype, XformPreference};
pub use register::{apply_transform_image, apply_transform_roi, mattes_mi, register, RegistrationConfig, RegistrationResult, TransformKind};
pub use resample::{
    min_max_scale, min_max_scale_by, resample_block_with_range, resample_image_isotropic, resample_mask_isotropic, resample_to_grid, resample_to_spacing, Grid,
};
pub use resize::{resize_bilinear, resize_region_bilinear};
pub use slice::{extract_25d, slice_reach, write_png_preview, SliceConfig, Slices25D};
pub use transform::{euler_matrix, AffineMap, Transform};
pub use volume::{mat_transpose, mat_vec, Mat3, Vec3, Volume};
