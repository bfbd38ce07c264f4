//! End-to-end tests against the SimpleITK fixtures: rigid recovery (mono-modal,
//! cross-modal and on another grid) with the MI, ROI Dice and JSON round trip
//! checks, the affine option, and `apply_transform_image` / `apply_transform_roi`
//! against SimpleITK's `Resample`.  The metric's gradient test lives in `metric`.

use super::*;
use crate::nifti_io::read_nifti;
use crate::nifti_io::tests::fixture;
use crate::transform::euler_matrix;
use crate::volume::{mat_mul, mat_transpose, Vec3};

/// Rotation angle (degrees) of `R_a^T R_b` — the angular difference of two rotations.
fn rotation_difference_deg(a: &Vec3, b: &Vec3) -> f64 {
    let r = mat_mul(&mat_transpose(&euler_matrix(a)), &euler_matrix(b));
    let tr = r[0][0] + r[1][1] + r[2][2];
    ((tr - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees()
}

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
