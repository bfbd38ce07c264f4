//! Spatial transforms (ITK conventions) and their JSON persistence.
//!
//! A transform maps points of the **fixed / output** space to the **moving /
//! input** space (ITK's convention): resampling a moving image onto the fixed grid
//! evaluates `moving(T(p))` at every fixed-grid point `p`.  All points are LPS mm.
//!
//! * `Euler3D`: `T(x) = R (x - c) + c + t`, `R = Rz · Rx · Ry` (ITK `Euler3DTransform`,
//!   `ComputeZYX = false`), angles in radians; parameters `[ax, ay, az, tx, ty, tz]`
//!   as ITK.
//! * `Affine`: `T(x) = M (x - c) + c + t`; parameters `[M row-major (9), t (3)]`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{ImagingError, Result};
use super::volume::{mat_inv, mat_mul, mat_vec, Mat3, Vec3, IDENTITY3};

/// `p -> matrix · p + translation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineMap {
    pub matrix: Mat3,
    pub translation: Vec3,
}

impl AffineMap {
    pub fn identity() -> AffineMap {
        AffineMap { matrix: IDENTITY3, translation: [0.0; 3] }
    }
    #[inline]
    pub fn apply(&self, p: &Vec3) -> Vec3 {
        let q = mat_vec(&self.matrix, p);
        [q[0] + self.translation[0], q[1] + self.translation[1], q[2] + self.translation[2]]
    }
    pub fn inverse(&self) -> Option<AffineMap> {
        let mi = mat_inv(&self.matrix)?;
        let t = mat_vec(&mi, &self.translation);
        Some(AffineMap { matrix: mi, translation: [-t[0], -t[1], -t[2]] })
    }
}

/// A spatial transform (fixed -> moving). Serialises as tagged JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transform {
    Identity,
    /// Rigid: angles (rad) about x, y, z; translation mm; centre of rotation mm.
    Euler3d {
        center: Vec3,
        angles: Vec3,
        translation: Vec3,
    },
    /// General affine about a centre.
    Affine {
        center: Vec3,
        matrix: Mat3,
        translation: Vec3,
    },
}

/// The rotations about x, y and z by `angles` (radians), and each one's
/// derivative by its angle: `([rx, ry, rz], [drx, dry, drz])`.
pub(crate) fn axis_rotations(angles: &Vec3) -> ([Mat3; 3], [Mat3; 3]) {
    let (sx, cx) = angles[0].sin_cos();
    let (sy, cy) = angles[1].sin_cos();
    let (sz, cz) = angles[2].sin_cos();
    let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
    let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
    let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
    let drx = [[0.0, 0.0, 0.0], [0.0, -sx, -cx], [0.0, cx, -sx]];
    let dry = [[-sy, 0.0, cy], [0.0, 0.0, 0.0], [-cy, 0.0, -sy]];
    let drz = [[-sz, -cz, 0.0], [cz, -sz, 0.0], [0.0, 0.0, 0.0]];
    ([rx, ry, rz], [drx, dry, drz])
}

/// ITK Euler3D rotation matrix `Rz · Rx · Ry`.
pub fn euler_matrix(angles: &Vec3) -> Mat3 {
    let ([rx, ry, rz], _) = axis_rotations(angles);
    mat_mul(&rz, &mat_mul(&rx, &ry))
}

#[derive(Serialize, Deserialize)]
struct TransformFile {
    format: String,
    version: u32,
    convention: String,
    transform: Transform,
}

const FORMAT: &str = "radpipe-transform";
const CONVENTION: &str = "maps fixed/output LPS points (mm) to moving/input LPS points (ITK convention)";

impl Transform {
    /// Rigid transform from ITK-ordered parameters `[ax, ay, az, tx, ty, tz]`.
    pub fn euler(center: Vec3, params: [f64; 6]) -> Transform {
        Transform::Euler3d { center, angles: [params[0], params[1], params[2]], translation: [params[3], params[4], params[5]] }
    }

    /// Equivalent `p -> A p + b`.
    pub fn to_affine_map(&self) -> AffineMap {
        let (m, c, t) = match self {
            Transform::Identity => return AffineMap::identity(),
            Transform::Euler3d { center, angles, translation } => (euler_matrix(angles), *center, *translation),
            Transform::Affine { center, matrix, translation } => (*matrix, *center, *translation),
        };
        let mc = mat_vec(&m, &c);
        AffineMap { matrix: m, translation: [c[0] + t[0] - mc[0], c[1] + t[1] - mc[1], c[2] + t[2] - mc[2]] }
    }

    pub fn transform_point(&self, p: &Vec3) -> Vec3 {
        self.to_affine_map().apply(p)
    }

    /// Optimisable parameters (ITK order).
    pub fn parameters(&self) -> Vec<f64> {
        match self {
            Transform::Identity => vec![],
            Transform::Euler3d { angles, translation, .. } => angles.iter().chain(translation.iter()).copied().collect(),
            Transform::Affine { matrix, translation, .. } => matrix.iter().flatten().chain(translation.iter()).copied().collect(),
        }
    }

    /// Replace the parameters (length must match [`Transform::parameters`]).
    pub fn set_parameters(&mut self, p: &[f64]) -> Result<()> {
        let n = self.parameters().len();
        if p.len() != n {
            return Err(ImagingError::InvalidParameter(format!("expected {n} transform parameters, got {}", p.len())));
        }
        match self {
            Transform::Identity => {}
            Transform::Euler3d { angles, translation, .. } => {
                *angles = [p[0], p[1], p[2]];
                *translation = [p[3], p[4], p[5]];
            }
            Transform::Affine { matrix, translation, .. } => {
                for r in 0..3 {
                    for c in 0..3 {
                        matrix[r][c] = p[3 * r + c];
                    }
                }
                *translation = [p[9], p[10], p[11]];
            }
        }
        Ok(())
    }

    /// Inverse as an affine (about the origin); `None` if singular.
    pub fn inverse(&self) -> Option<Transform> {
        let inv = self.to_affine_map().inverse()?;
        Some(Transform::Affine { center: [0.0; 3], matrix: inv.matrix, translation: inv.translation })
    }

    /// Save as pretty JSON (`{"format": "radpipe-transform", "version": 1, ...}`).
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let f = TransformFile { format: FORMAT.into(), version: 1, convention: CONVENTION.into(), transform: self.clone() };
        let s = serde_json::to_string_pretty(&f).map_err(|e| ImagingError::TransformFile { path: path.to_path_buf(), reason: e.to_string() })?;
        std::fs::write(path, s).map_err(|source| ImagingError::Io { path: path.to_path_buf(), source })
    }

    /// Load a file written by [`Transform::save_json`].
    pub fn load_json(path: impl AsRef<Path>) -> Result<Transform> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path).map_err(|source| ImagingError::Io { path: path.to_path_buf(), source })?;
        let err = |reason: String| ImagingError::TransformFile { path: path.to_path_buf(), reason };
        let f: TransformFile = serde_json::from_str(&s).map_err(|e| err(e.to_string()))?;
        if f.format != FORMAT || f.version != 1 {
            return Err(err(format!("unsupported format {:?} version {}", f.format, f.version)));
        }
        let finite = f.transform.parameters().iter().all(|v| v.is_finite());
        if !finite {
            return Err(err("non-finite parameters".into()));
        }
        Ok(f.transform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euler_matches_itk_composition_and_roundtrips_json() {
        let t = Transform::euler([10.0, -5.0, 3.0], [0.05, -0.03, 0.08, 2.0, -1.5, 0.7]);
        // centre maps to centre + t
        let p = t.transform_point(&[10.0, -5.0, 3.0]);
        assert!((p[0] - 12.0).abs() < 1e-12 && (p[1] + 6.5).abs() < 1e-12 && (p[2] - 3.7).abs() < 1e-12);
        // pure z rotation by 90 degrees: x axis -> y axis
        let r = euler_matrix(&[0.0, 0.0, std::f64::consts::FRAC_PI_2]);
        let v = mat_vec(&r, &[1.0, 0.0, 0.0]);
        assert!((v[1] - 1.0).abs() < 1e-12);
        // inverse
        let inv = t.inverse().unwrap();
        let q = inv.transform_point(&t.transform_point(&[1.0, 2.0, 3.0]));
        assert!((q[0] - 1.0).abs() < 1e-9 && (q[1] - 2.0).abs() < 1e-9 && (q[2] - 3.0).abs() < 1e-9);
        let path = std::env::temp_dir().join(format!("radpipe_tx_{}.json", std::process::id()));
        t.save_json(&path).unwrap();
        // exact with serde_json's `float_roundtrip` feature; within 1 ulp without it
        let back = Transform::load_json(&path).unwrap();
        assert!(back.parameters().iter().zip(t.parameters()).all(|(a, b)| (a - b).abs() <= 1e-14 * b.abs().max(1.0)));
        std::fs::write(&path, "{\"format\":\"other\"}").unwrap();
        assert!(Transform::load_json(&path).is_err());
        std::fs::remove_file(&path).ok();
    }
}
