//! The imaging stages through the CLI: ingest (per-patient images) -> register
//! -> resample -> slice, on small synthetic volumes with a known misregistration.

mod common;
use common::*;
use ndarray::Array3;
use radpipe_imaging::{read_nifti, resample_to_grid, write_nifti, write_nifti_as, Grid, Interpolator, NiftiDtype, Transform, Volume};

const PIPELINE: &str = r#"version: 1
name: imaging
cohorts:
  c1: { table: c1.csv, images: images }
stages:
  ingest:
    kind: ingest
    cohorts: [c1]
    sequences: { t2: t2.nii.gz, ce_t1: ce_t1.nii.gz }
    roi: { file: roi.nii.gz, on: ce_t1 }
  register: { kind: register, input: ingest, reference: ce_t1, shrink: [2, 1], smoothing_mm: [1, 0], sampling: 0.5 }
  resample: { kind: resample, input: register, spacing: [2, 2, 2] }
  slice: { kind: slice, input: resample, size: 32, margin_mm: 4 }
"#;

/// A structured phantom: blobs of several sizes on a 48x48x16 grid, 1x1x2.5 mm.
fn phantom(shift: f64) -> Volume {
    let (nx, ny, nz) = (48, 48, 16);
    let data = Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
        let (x, y, z) = (i as f64, j as f64, k as f64 * 2.5);
        let blob = |cx: f64, cy: f64, cz: f64, r: f64, a: f64| a * (-((x - cx).powi(2) + (y - cy).powi(2) + (z - cz).powi(2)) / (2.0 * r * r)).exp();
        (100.0 + blob(24.0 + shift, 22.0, 20.0, 9.0, 300.0) + blob(14.0 + shift, 30.0, 14.0, 3.0, 200.0) + blob(32.0 + shift, 14.0, 26.0, 4.0, -80.0)) as f32
    });
    Volume::new(data, [1.0, 1.0, 2.5], [-24.0, -24.0, 0.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).unwrap()
}

fn write_patient(ws: &Workspace, id: &str, t2_shift_mm: f64) {
    let ce = phantom(0.0);
    // T2: the same anatomy moved by `t2_shift_mm` along x, with another contrast.
    let moved = {
        let t = Transform::euler([0.0; 3], [0.0, 0.0, 0.0, -t2_shift_mm, 0.0, 0.0]);
        let mut v = resample_to_grid(&ce, &Grid::of(&ce), Some(&t), Interpolator::Linear, 100.0).unwrap();
        v.data.mapv_inplace(|x| 1000.0 - 2.0 * x);
        v
    };
    let roi = Volume::new(ce.data.mapv(|x| if x > 300.0 { 1.0 } else { 0.0 }), ce.spacing, ce.origin, ce.direction).unwrap();
    std::fs::create_dir_all(ws.path(&format!("images/{id}"))).unwrap();
    write_nifti(&ce, ws.path(&format!("images/{id}/ce_t1.nii.gz"))).unwrap();
    write_nifti(&moved, ws.path(&format!("images/{id}/t2.nii.gz"))).unwrap();
    write_nifti_as(&roi, ws.path(&format!("images/{id}/roi.nii.gz")), NiftiDtype::Uint8).unwrap();
}

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("p.yaml", PIPELINE);
    ws.write("c1.csv", "patient_id,age\nA,50\nB,60\n");
    write_patient(&ws, "A", 3.0);
    write_patient(&ws, "B", -2.0);
    ws
}

#[test]
fn the_imaging_chain_runs_per_patient_and_recovers_the_misregistration() {
    let ws = workspace();
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.executed.len(), 1 + 2 * 4, "{:?}", r.executed);
    for (id, shift) in [("A", 3.0), ("B", -2.0)] {
        let t = Transform::load_json(ws.path(&format!("results/register/{id}/t2.transform.json"))).unwrap();
        let p = t.parameters();
        // Fixed (CE-T1) -> moving (T2) maps x to x + shift.
        assert!((p[3] - shift).abs() < 0.3, "patient {id}: tx {} vs {shift}", p[3]);
        assert!(p[4].abs() < 0.3 && p[5].abs() < 0.3, "patient {id}: {p:?}");
        let res = read_nifti(ws.path(&format!("results/resample/{id}/t2.nii.gz"))).unwrap();
        assert_eq!(res.spacing, [2.0, 2.0, 2.0]);
        let (lo, hi) = res.min_max().unwrap();
        assert!(lo.abs() < 1e-6 && (hi - 1.0).abs() < 1e-6, "min-max scaled: {lo} {hi}");
    }
    let bytes = std::fs::read(ws.path("results/slice/A/slices.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ce = tensors.tensor("ce_t1").unwrap();
    assert_eq!(ce.shape(), &[3, 32, 32]);
    let values: Vec<f32> = ce.data().chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let channel = &values[..32 * 32];
    let mean = channel.iter().sum::<f32>() / channel.len() as f32;
    assert!(mean.abs() < 1e-4, "z-scored channel mean {mean}");
    assert!(ws.path("results/slice/A/t2.png").exists());
}

#[test]
fn clinical_edits_never_rerun_imaging_nodes_and_an_image_edit_reruns_only_its_patient() {
    let ws = workspace();
    assert_eq!(ws.run(&["p.yaml"]).code, 0);
    ws.write("c1.csv", "patient_id,age\nA,51\nB,60\n");
    assert_eq!(ws.run(&["p.yaml"]).executed, set(&["ingest"]));
    write_patient(&ws, "B", -1.0);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.executed, set(&["ingest[B]", "register[B]", "resample[B]", "slice[B]"]));
}

#[test]
fn a_missing_image_fails_only_that_patient_and_names_the_file() {
    let ws = workspace();
    std::fs::remove_file(ws.path("images/B/t2.nii.gz")).unwrap();
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`ingest[B]` needs `images/B/t2.nii.gz`, which does not exist"), "{}", stderr(&out));
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.failed, set(&["ingest[B]"]));
    assert!(r.executed.contains("slice[A]"));
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("images/B/t2.nii.gz"), "{error}");
}

#[test]
fn an_roi_off_its_sequence_grid_is_refused_with_the_patient() {
    let ws = workspace();
    let small = Volume::new(Array3::from_elem((10, 10, 4), 1.0), [1.0; 3], [0.0; 3], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).unwrap();
    write_nifti_as(&small, ws.path("images/A/roi.nii.gz"), NiftiDtype::Uint8).unwrap();
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.failed, set(&["ingest[A]"]));
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("patient A: the ROI `roi.nii.gz` is not on the grid of `ce_t1`"), "{error}");
}

#[test]
fn an_empty_roi_is_refused_with_the_patient() {
    let ws = workspace();
    let mut roi = read_nifti(ws.path("images/B/roi.nii.gz")).unwrap();
    roi.data.fill(0.0);
    write_nifti_as(&roi, ws.path("images/B/roi.nii.gz"), NiftiDtype::Uint8).unwrap();
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.failed, set(&["ingest[B]"]));
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("patient B: the ROI `roi.nii.gz` is empty"), "{error}");
    assert!(r.executed.contains("slice[A]"), "the other patient goes on");
}

#[test]
fn an_roi_outside_its_image_is_refused_with_the_patient() {
    let ws = workspace();
    let mut roi = read_nifti(ws.path("images/A/roi.nii.gz")).unwrap();
    roi.origin = [0.0, 400.0, 0.0];
    write_nifti_as(&roi, ws.path("images/A/roi.nii.gz"), NiftiDtype::Uint8).unwrap();
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.failed, set(&["ingest[A]"]));
    let error = r.json["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("patient A: the ROI `roi.nii.gz` lies outside the image `ce_t1`"), "{error}");
    assert!(r.executed.contains("slice[B]"), "the other patient goes on");
}

#[test]
fn nan_voxels_and_disjoint_fields_of_view_fail_their_patient_only() {
    let ws = workspace();
    let mut nan = phantom(0.0);
    nan.data[[3, 3, 3]] = f32::NAN;
    write_nifti(&nan, ws.path("images/A/t2.nii.gz")).unwrap();
    let mut far = phantom(0.0);
    far.origin = [500.0, 0.0, 0.0];
    write_nifti(&far, ws.path("images/B/t2.nii.gz")).unwrap();
    let r = ws.run(&["p.yaml", "--keep-going"]);
    assert_eq!(r.failed, set(&["ingest[A]", "ingest[B]"]));
    let errors = r.json["errors"].to_string();
    assert!(errors.contains("patient A: images/A/t2.nii.gz: 1 voxels are NaN or infinite"), "{errors}");
    assert!(errors.contains("patient B: the fields of view of `ce_t1.nii.gz` and `t2.nii.gz` do not overlap"), "{errors}");
    assert!(r.executed.contains("ingest"), "the clinical table is still ingested");
}
