//! The transform's parameter Jacobian for the metric gradient: the point-independent
//! part (for Euler 3D the derivatives of the rotation matrix by each angle) and
//! d(mapped point)/d(parameter) at a fixed-image point, for Euler 3D (3 angles,
//! 3 translations) and affine (9 matrix entries, 3 translations) transforms.

use crate::transform::{axis_rotations, Transform};
use crate::volume::{mat_mul, mat_vec, Mat3, Vec3};

/// The parts of the transform's Jacobian that do not depend on the point:
/// for Euler 3D the derivatives of the rotation matrix by each angle.
pub(super) fn rotation_derivatives(t: &Transform) -> [Mat3; 3] {
    match t {
        Transform::Euler3d { angles, .. } => {
            let ([rx, ry, rz], [drx, dry, drz]) = axis_rotations(angles);
            [mat_mul(&rz, &mat_mul(&drx, &ry)), mat_mul(&rz, &mat_mul(&rx, &dry)), mat_mul(&drz, &mat_mul(&rx, &ry))]
        }
        _ => [[[0.0; 3]; 3]; 3],
    }
}

/// d(mapped point)/d(parameter) at `x`; `dr` from `rotation_derivatives`.
pub(super) fn jacobian(t: &Transform, dr: &[Mat3; 3], x: &Vec3, out: &mut [Vec3]) {
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
