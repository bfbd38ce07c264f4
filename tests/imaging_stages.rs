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

/// One patient with tissue of varying intensity everywhere, its brightest and
/// darkest spots far from an elongated ROI (about 32 x 8 mm in-plane, tilted
/// through the slices), and two pipelines from one ingest: resampled whole and
/// resampled with `crop_margin_mm`, each sliced with `margin_mm: 4`.
fn elongated_roi_workspace(crop_margin_mm: f64) -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "p.yaml",
        &format!(
            r#"version: 1
name: crop
cohorts:
  c1: {{ table: c1.csv, images: images }}
stages:
  ingest:
    kind: ingest
    cohorts: [c1]
    sequences: {{ t2: t2.nii.gz, ce_t1: ce_t1.nii.gz }}
    roi: {{ file: roi.nii.gz, on: ce_t1 }}
  whole: {{ kind: resample, input: ingest, spacing: [1.5, 1.5, 1.5] }}
  cropped: {{ kind: resample, input: ingest, spacing: [1.5, 1.5, 1.5], crop_margin_mm: {crop_margin_mm} }}
  slice_whole: {{ kind: slice, input: whole, size: 32, margin_mm: 4 }}
  slice_cropped: {{ kind: slice, input: cropped, size: 32, margin_mm: 4 }}
"#
        ),
    );
    ws.write("c1.csv", "patient_id,age\nA,50\n");
    let (nx, ny, nz) = (64, 64, 24);
    let image = |contrast: f64| {
        let data = Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
            let (x, y, z) = (i as f64, j as f64, k as f64 * 2.5);
            let spot = |cx: f64, cy: f64, cz: f64, a: f64| a * (-((x - cx).powi(2) + (y - cy).powi(2) + (z - cz).powi(2)) / 18.0).exp();
            let tissue = 200.0 + 40.0 * (x / 7.0).sin() + 30.0 * (y / 5.0).cos() + 2.0 * z + spot(6.0, 4.0, 55.0, 400.0) - spot(58.0, 60.0, 4.0, 150.0);
            (contrast * tissue) as f32
        });
        Volume::new(data, [1.0, 1.0, 2.5], [-32.0, -32.0, 0.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).unwrap()
    };
    let ce = image(1.0);
    let roi = ce
        .with_data(Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
            let (dx, dy, dz) = ((i as f64 - 32.0) / 16.0, (j as f64 - 32.0 - 1.5 * (k as f64 - 9.5)) / 4.0, (k as f64 - 9.5) / 2.4);
            (dx * dx + dy * dy + dz * dz <= 1.0) as u8 as f32
        }))
        .unwrap();
    std::fs::create_dir_all(ws.path("images/A")).unwrap();
    write_nifti(&ce, ws.path("images/A/ce_t1.nii.gz")).unwrap();
    write_nifti(&image(-0.5), ws.path("images/A/t2.nii.gz")).unwrap();
    write_nifti_as(&roi, ws.path("images/A/roi.nii.gz"), NiftiDtype::Uint8).unwrap();
    ws
}

fn slice_tensors(ws: &Workspace, stage: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(ws.path(&format!("results/{stage}/A/slices.safetensors"))).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = tensors
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.shape().to_vec(), t.data().chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_cropped_resample_gives_slice_the_same_tensors_and_scaling_around_an_elongated_roi() {
    let ws = elongated_roi_workspace(4.0);
    let r = ws.run(&["p.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in ["ce_t1", "t2", "roi"] {
        let whole = read_nifti(ws.path(&format!("results/whole/A/{name}.nii.gz"))).unwrap();
        let cropped = read_nifti(ws.path(&format!("results/cropped/A/{name}.nii.gz"))).unwrap();
        let (w, c) = (whole.size(), cropped.size());
        assert!((0..3).all(|a| c[a] <= w[a]) && c.iter().product::<usize>() * 2 < w.iter().product::<usize>(), "{name}: crop {c:?} of {w:?}");
        // the block of the whole field of view, scaled by the whole range
        let start = whole.physical_to_index(&cropped.origin).map(|x| x.round() as usize);
        for ((i, j, k), v) in cropped.data.indexed_iter() {
            let want = whole.data[[start[0] + i, start[1] + j, start[2] + k]];
            assert!((v - want).abs() <= 1e-5, "{name} at ({i},{j},{k}) of the crop: {v} vs {want}");
        }
        if name != "roi" {
            let (lo, hi) = cropped.min_max().unwrap();
            assert!(lo > 0.01 && hi < 0.99, "{name}: the crop holds neither extreme of the field of view, yet spans {lo}..{hi}");
        }
    }
    let (whole, cropped) = (slice_tensors(&ws, "slice_whole"), slice_tensors(&ws, "slice_cropped"));
    assert_eq!(whole.iter().map(|t| &t.0).collect::<Vec<_>>(), ["ce_t1", "t2"]);
    for ((name, shape, w), (_, cshape, c)) in whole.iter().zip(&cropped) {
        assert_eq!((shape.as_slice(), cshape.as_slice()), (&[3, 32, 32][..], &[3, 32, 32][..]));
        let (at, diff) = w.iter().zip(c).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0.0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
        assert!(diff <= 1e-5, "{name}: max abs diff {diff} at channel {}, row {}, col {}", at / 1024, (at / 32) % 32, at % 32);
    }
}

#[test]
fn a_slice_margin_beyond_the_resample_crop_is_refused_naming_both_stages() {
    let ws = elongated_roi_workspace(3.0);
    let out = ws.radpipe(&["validate", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("margin_mm 4 is more than the crop_margin_mm 3 of `cropped`"), "{err}");
    assert!(err.contains("raise `cropped`'s crop_margin_mm to at least 4"), "{err}");
    assert!(!err.contains("slice_whole"), "{err}");
}
