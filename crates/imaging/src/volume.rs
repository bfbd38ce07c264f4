//! The in-memory image: `Volume`.
//!
//! # Conventions (stated once for the whole module)
//!
//! * **Axis order.** `Volume::data` is an `Array3<f32>` indexed `[i, j, k]`, where
//!   `i` is the NIfTI/ITK first (fastest-in-file, "x") axis, `j` the second and `k`
//!   the third (slice) axis.  The array is kept in standard (C) memory layout, so in
//!   memory `k` varies fastest; only the *indexing* follows the file's axis order.
//! * **Physical space is ITK's LPS** (x grows to the patient's Left, y to
//!   Posterior, z to Superior), exactly as SimpleITK reports `GetOrigin()`,
//!   `GetDirection()`, `GetSpacing()`.  NIfTI affines are RAS; the NIfTI reader and
//!   writer (`nifti_io`) flip the signs of the first two rows on the way in and out
//!   (`LPS = diag(-1,-1,1) · RAS`).  Nothing else in the module knows about RAS.
//! * **Geometry.** `p = origin + D · diag(spacing) · idx` with `D` the 3x3 direction
//!   matrix (row-major `direction[row][col]`; column `c` is the unit direction of
//!   index axis `c`), the same as ITK.  Voxel centres sit at integer indices.

#![allow(clippy::needless_range_loop)] // explicit indices read better in 3x3 / kernel math

use ndarray::Array3;

use super::error::{ImagingError, Result};

pub type Mat3 = [[f64; 3]; 3];
pub type Vec3 = [f64; 3];

pub const IDENTITY3: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

pub fn mat_vec(m: &Mat3, v: &Vec3) -> Vec3 {
    [m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2], m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2], m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2]]
}

pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

pub fn mat_transpose(a: &Mat3) -> Mat3 {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = a[j][i];
        }
    }
    r
}

pub fn mat_det(m: &Mat3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// Inverse of a 3x3 matrix, `None` if (numerically) singular.
pub fn mat_inv(m: &Mat3) -> Option<Mat3> {
    let det = mat_det(m);
    let scale = m.iter().flatten().fold(0.0f64, |a, &b| a.max(b.abs()));
    if !det.is_finite() || scale == 0.0 || det.abs() <= 1e-12 * scale.powi(3) {
        return None;
    }
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let inv = [[c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)], [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)], [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)]];
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = inv[i][j] / det;
        }
    }
    Some(r)
}

/// A 3D scalar image with ITK-style (LPS) geometry. See the module docs for conventions.
///
/// Fields are public for convenience; [`Volume::new`] validates them (positive
/// spacing, non-singular direction) and stores `data` in standard layout — keep
/// those invariants when editing fields directly.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Voxels indexed `[i, j, k]` (standard memory layout).
    pub data: Array3<f32>,
    /// Voxel size in mm along index axes i, j, k.
    pub spacing: Vec3,
    /// Physical (LPS, mm) position of voxel `[0,0,0]`'s centre.
    pub origin: Vec3,
    /// Direction cosines, row-major; column c = direction of index axis c (LPS).
    pub direction: Mat3,
}

impl Volume {
    /// Build a volume, validating geometry (positive finite spacing, non-singular direction).
    pub fn new(data: Array3<f32>, spacing: Vec3, origin: Vec3, direction: Mat3) -> Result<Volume> {
        if spacing.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(ImagingError::InvalidGeometry(format!("spacing must be positive and finite, got {spacing:?}")));
        }
        if origin.iter().any(|o| !o.is_finite()) {
            return Err(ImagingError::InvalidGeometry(format!("origin must be finite, got {origin:?}")));
        }
        if mat_inv(&direction).is_none() || direction.iter().flatten().any(|d| !d.is_finite()) {
            return Err(ImagingError::InvalidGeometry(format!("direction matrix is singular: {direction:?}")));
        }
        let data = if data.is_standard_layout() { data } else { data.as_standard_layout().to_owned() };
        Ok(Volume { data, spacing, origin, direction })
    }

    /// Unit spacing, zero origin, identity direction.
    pub fn from_array(data: Array3<f32>) -> Volume {
        Volume::new(data, [1.0; 3], [0.0; 3], IDENTITY3).expect("identity geometry is valid")
    }

    /// A volume of zeros on the same grid as `self`.
    pub fn zeros_like(&self) -> Volume {
        Volume { data: Array3::zeros(self.data.raw_dim()), ..self.clone_geometry() }
    }

    /// Same geometry, given data (shape must match).
    pub fn with_data(&self, data: Array3<f32>) -> Result<Volume> {
        if data.shape() != self.data.shape() {
            return Err(ImagingError::ShapeMismatch { what: format!("data shape {:?} vs volume shape {:?}", data.shape(), self.data.shape()) });
        }
        Volume::new(data, self.spacing, self.origin, self.direction)
    }

    fn clone_geometry(&self) -> Volume {
        Volume { data: Array3::zeros((0, 0, 0)), spacing: self.spacing, origin: self.origin, direction: self.direction }
    }

    /// `[ni, nj, nk]`.
    pub fn size(&self) -> [usize; 3] {
        let s = self.data.shape();
        [s[0], s[1], s[2]]
    }

    /// `D · diag(spacing)`: maps index offsets to physical offsets.
    pub fn index_to_physical_matrix(&self) -> Mat3 {
        let mut m = self.direction;
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] *= self.spacing[c];
            }
        }
        m
    }

    /// Inverse of [`Volume::index_to_physical_matrix`].  (All NaN if the public
    /// fields were edited into a singular geometry: every point is then "outside".)
    pub fn physical_to_index_matrix(&self) -> Mat3 {
        mat_inv(&self.index_to_physical_matrix()).unwrap_or([[f64::NAN; 3]; 3])
    }

    /// Continuous index -> physical LPS point.
    pub fn index_to_physical(&self, idx: &Vec3) -> Vec3 {
        let d = mat_vec(&self.index_to_physical_matrix(), idx);
        [self.origin[0] + d[0], self.origin[1] + d[1], self.origin[2] + d[2]]
    }

    /// Physical LPS point -> continuous index.
    pub fn physical_to_index(&self, p: &Vec3) -> Vec3 {
        let d = [p[0] - self.origin[0], p[1] - self.origin[1], p[2] - self.origin[2]];
        mat_vec(&self.physical_to_index_matrix(), &d)
    }

    /// Physical centre of the voxel grid (centre of index `(n-1)/2`).
    pub fn center(&self) -> Vec3 {
        let s = self.size();
        self.index_to_physical(&[(s[0] as f64 - 1.0) / 2.0, (s[1] as f64 - 1.0) / 2.0, (s[2] as f64 - 1.0) / 2.0])
    }

    /// Same size and geometry within `tol` (mm / cosines).
    pub fn same_grid(&self, other: &Volume, tol: f64) -> bool {
        self.size() == other.size()
            && (0..3).all(|a| (self.spacing[a] - other.spacing[a]).abs() <= tol && (self.origin[a] - other.origin[a]).abs() <= tol)
            && (0..3).all(|r| (0..3).all(|c| (self.direction[r][c] - other.direction[r][c]).abs() <= tol))
    }

    /// Minimum and maximum finite voxel values (`None` for an empty or all-NaN volume).
    pub fn min_max(&self) -> Option<(f32, f32)> {
        let mut it = self.data.iter().copied().filter(|v| v.is_finite());
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }

    /// Contiguous voxel slice, `[i, j, k]` with `k` fastest (`None` only if `data`
    /// was replaced by a non-standard-layout array through the public field).
    pub fn as_slice(&self) -> Option<&[f32]> {
        self.data.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_physical_roundtrip_oblique() {
        let a = 0.3f64;
        let dir = [[a.cos(), -a.sin(), 0.0], [a.sin(), a.cos(), 0.0], [0.0, 0.0, 1.0]];
        let v = Volume::new(Array3::zeros((4, 5, 6)), [0.5, 0.7, 3.0], [10.0, -20.0, 5.0], dir).unwrap();
        let idx = [1.25, 3.5, 2.0];
        let p = v.index_to_physical(&idx);
        let back = v.physical_to_index(&p);
        for a in 0..3 {
            assert!((back[a] - idx[a]).abs() < 1e-12);
        }
        // origin is index 0
        assert_eq!(v.index_to_physical(&[0.0; 3]), v.origin);
        // step along i moves spacing[0] along the first direction column
        let p1 = v.index_to_physical(&[1.0, 0.0, 0.0]);
        assert!((p1[0] - 10.0 - 0.5 * a.cos()).abs() < 1e-12 && (p1[1] + 20.0 - 0.5 * a.sin()).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(Volume::new(Array3::zeros((2, 2, 2)), [0.0, 1.0, 1.0], [0.0; 3], IDENTITY3).is_err());
        assert!(Volume::new(Array3::zeros((2, 2, 2)), [1.0; 3], [0.0; 3], [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).is_err());
        let v = Volume::from_array(Array3::zeros((2, 2, 2)));
        assert!(v.with_data(Array3::zeros((2, 3, 2))).is_err());
    }
}
