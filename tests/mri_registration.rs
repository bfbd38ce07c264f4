//! Registration on a real MRI (issue #4): the MNI152 2009a T1 template (from the
//! nilearn wheel) against a T2-like image of it, resampled through a known rigid
//! transform onto another grid (tests/fixtures/generate/mri_registration.py).
//! `radpipe register` with its defaults must recover the transform to within
//! 0.5 mm target registration error over the brain ROI and 0.5 degree of rotation.

mod common;
use common::*;
use radpipe_imaging::{read_nifti, Transform, Vec3, Volume};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/imaging/mri/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Physical points (LPS mm) of the ROI voxels.
fn roi_points(roi: &Volume) -> Vec<Vec3> {
    roi.data.indexed_iter().filter(|(_, v)| **v > 0.5).map(|((i, j, k), _)| roi.index_to_physical(&[i as f64, j as f64, k as f64])).collect()
}

/// (mean, max) distance between the points mapped by `a` and by `b`.
fn tre(points: &[Vec3], a: &Transform, b: &Transform) -> (f64, f64) {
    let (ma, mb) = (a.to_affine_map(), b.to_affine_map());
    let (mut sum, mut max) = (0.0f64, 0.0f64);
    for p in points {
        let (x, y) = (ma.apply(p), mb.apply(p));
        let d = ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt();
        sum += d;
        max = max.max(d);
    }
    (sum / points.len() as f64, max)
}

/// Angle (degrees) of the rotation taking `b`'s linear part to `a`'s: acos((tr(Ra Rb^T) - 1) / 2).
fn rotation_difference_deg(a: &Transform, b: &Transform) -> f64 {
    let (ra, rb) = (a.to_affine_map().matrix, b.to_affine_map().matrix);
    let mut tr = 0.0;
    for i in 0..3 {
        for k in 0..3 {
            tr += ra[i][k] * rb[i][k];
        }
    }
    ((tr - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees()
}

#[test]
fn register_recovers_a_known_rigid_transform_on_the_mni152_template_across_contrasts() {
    let truth = Transform::load_json(fixture("truth.transform.json")).unwrap();
    let roi = read_nifti(fixture("roi_brain_fixed.nii.gz")).unwrap();
    let fixed = read_nifti(fixture("fixed_t1.nii.gz")).unwrap();
    let moving = read_nifti(fixture("moving_t2like.nii.gz")).unwrap();
    assert!(roi.same_grid(&fixed, 1e-4));
    let points = roi_points(&roi);
    assert!(points.len() > 10_000, "ROI too small: {}", points.len());

    // The fixture must leave real work after the centred-geometry start.
    let (cf, cm) = (fixed.center(), moving.center());
    let start = Transform::Euler3d { center: cf, angles: [0.0; 3], translation: [cm[0] - cf[0], cm[1] - cf[1], cm[2] - cf[2]] };
    let (start_mean, start_max) = tre(&points, &start, &truth);
    let start_angle = rotation_difference_deg(&start, &truth);
    eprintln!("after centring: TRE mean {start_mean:.3} mm, max {start_max:.3} mm, rotation {start_angle:.3} deg");
    assert!(start_mean >= 5.0 || start_angle >= 5.0);

    let ws = Workspace::new();
    let t0 = std::time::Instant::now();
    let o = ws.radpipe(&["register", &fixture("fixed_t1.nii.gz"), &fixture("moving_t2like.nii.gz"), "t.json"]);
    let secs = t0.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", stderr(&o));
    let est = Transform::load_json(ws.path("t.json")).unwrap();
    let (mean, max) = tre(&points, &est, &truth);
    let angle = rotation_difference_deg(&est, &truth);
    eprintln!(
        "radpipe register ({secs:.1} s): TRE over {} ROI voxels mean {mean:.4} mm, max {max:.4} mm; rotation error {angle:.4} deg\n  estimated {:?}\n  truth     {:?}",
        points.len(),
        est,
        truth
    );
    assert!(max < 0.5, "max TRE {max} mm (mean {mean} mm)");
    assert!(angle < 0.5, "rotation error {angle} deg");
}
