//! `radpipe resample` and `radpipe register` as command-line tools, checked
//! against SimpleITK's outputs (fixtures of tests/fixtures/generate/imaging.py).

mod common;
use common::*;
use radpipe_imaging::{read_nifti, Transform, Volume};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/imaging/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Relative L2 difference over voxels more than `margin` voxels from the border.
fn rel_l2_interior(a: &Volume, b: &Volume, margin: usize) -> f64 {
    assert_eq!(a.size(), b.size());
    let [nx, ny, nz] = a.size();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for ((i, j, k), x) in a.data.indexed_iter() {
        if i < margin || j < margin || k < margin || i + margin >= nx || j + margin >= ny || k + margin >= nz {
            continue;
        }
        let y = b.data[[i, j, k]] as f64;
        num += (*x as f64 - y).powi(2);
        den += y * y;
    }
    (num / den).sqrt()
}

#[test]
fn resample_tool_matches_simpleitk_bspline_and_linear_misses_it() {
    let ws = Workspace::new();
    let input = fixture("rs_aniso_oblique_in.nii.gz");
    let want = read_nifti(fixture("rs_aniso_oblique_bspline.nii.gz")).unwrap();
    for (interp, out) in [("bspline3", "b.nii.gz"), ("linear", "l.nii.gz")] {
        let o = ws.radpipe(&["resample", &input, out, "--spacing", "1,1,1", "--interp", interp]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let got = read_nifti(ws.path("b.nii.gz")).unwrap();
    assert_eq!(got.size(), want.size());
    for a in 0..3 {
        assert!((got.origin[a] - want.origin[a]).abs() < 1e-5 && (got.spacing[a] - want.spacing[a]).abs() < 1e-9);
    }
    let err = rel_l2_interior(&got, &want, 3);
    assert!(err < 1e-3, "B-spline vs sitkBSpline: {err}");
    let linear = read_nifti(ws.path("l.nii.gz")).unwrap();
    let gap = rel_l2_interior(&linear, &want, 3);
    assert!(gap > 1e-2, "linear interpolation must miss sitkBSpline on fine structure: {gap}");
}

#[test]
fn register_tool_recovers_the_known_transform_and_carries_the_mask() {
    let ws = Workspace::new();
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("registration_expected.json")).unwrap()).unwrap();
    let truth: Vec<f64> = expected["truth"]["parameters"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let o = ws.radpipe(&[
        "register",
        &fixture("reg_fixed.nii.gz"),
        &fixture("reg_moving_cross.nii.gz"),
        "t.json",
        "--resampled",
        "moved.nii.gz",
        "--mask-in",
        &fixture("reg_roi_moving.nii.gz"),
        "--mask-out",
        "roi.nii.gz",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = Transform::load_json(ws.path("t.json")).unwrap().parameters();
    for a in 0..3 {
        assert!((p[a] - truth[a]).abs().to_degrees() < 0.5, "angle {a}: {} vs {}", p[a], truth[a]);
        assert!((p[3 + a] - truth[3 + a]).abs() < 0.5, "translation {a}: {} vs {}", p[3 + a], truth[3 + a]);
    }
    let fixed = read_nifti(fixture("reg_fixed.nii.gz")).unwrap();
    let roi = read_nifti(ws.path("roi.nii.gz")).unwrap();
    assert!(roi.same_grid(&fixed, 1e-4));
    // SimpleITK carrying the same mask through the true transform (nearest neighbour).
    let reference = read_nifti(fixture("reg_roi_to_fixed_nearest.nii.gz")).unwrap();
    let (mut inter, mut a, mut b) = (0.0, 0.0, 0.0);
    for (x, y) in roi.data.iter().zip(reference.data.iter()) {
        let (x, y) = ((*x > 0.5) as i32 as f64, (*y > 0.5) as i32 as f64);
        inter += x * y;
        a += x;
        b += y;
    }
    let dice = 2.0 * inter / (a + b);
    assert!(dice > 0.95, "Dice with SimpleITK carrying the mask through the true transform: {dice}");
}

#[test]
fn tools_report_unreadable_inputs_clearly() {
    let ws = Workspace::new();
    ws.write("bad.nii.gz", "not a volume");
    let o = ws.radpipe(&["resample", "bad.nii.gz", "out.nii.gz"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.nii.gz"), "{}", stderr(&o));
    let o = ws.radpipe(&["resample", "bad.nii.gz", "out.nii.gz", "--spacing", "1,0,1"]);
    assert_eq!(o.status.code(), Some(2), "bad arguments are usage errors");
    for bad in [["--shrink", "4,2"], ["--sampling", "0"], ["--smoothing-mm", "2,-1,0"]] {
        let o = ws.radpipe(&["register", "bad.nii.gz", "bad.nii.gz", "t.json", bad[0], bad[1]]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

/// A valid uncompressed NIfTI written by radpipe, then one header field patched.
fn patched(ws: &Workspace, name: &str, patch: impl Fn(&mut Vec<u8>)) -> String {
    use radpipe_imaging::{write_nifti, Volume};
    let v = Volume::new(ndarray::Array3::from_elem((6, 5, 4), 1.0f32), [1.0, 1.0, 2.0], [0.0; 3], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).unwrap();
    let path = ws.path(name);
    write_nifti(&v, &path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    patch(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    name.to_string()
}

fn set_i16(b: &mut [u8], at: usize, v: i16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn set_f32(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn bad_headers_are_refused_naming_the_file_and_the_field() {
    let ws = Workspace::new();
    // NIfTI-1 offsets: dim[0..8] at 40, pixdim[0..8] at 76, qform_code 252, sform_code 254.
    let four_d = patched(&ws, "four_d.nii", |b| {
        set_i16(b, 40, 4);
        set_i16(b, 48, 3);
        let data = b[352..].to_vec();
        b.extend_from_slice(&data);
        b.extend_from_slice(&data);
    });
    let zero = patched(&ws, "zero_pixdim.nii", |b| {
        set_i16(b, 254, 0);
        set_f32(b, 80, 0.0);
    });
    let negative = patched(&ws, "negative_pixdim.nii", |b| {
        set_i16(b, 254, 0);
        set_f32(b, 84, -1.0);
    });
    let magic = patched(&ws, "wrong_magic.nii", |b| b[344..348].copy_from_slice(b"ni2\0"));
    let truncated_gz = {
        use radpipe_imaging::{write_nifti, Volume};
        let v = Volume::new(
            ndarray::Array3::from_shape_fn((30, 30, 10), |(i, j, k)| (i * 7 + j * 3 + k) as f32),
            [1.0; 3],
            [0.0; 3],
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        )
        .unwrap();
        write_nifti(&v, ws.path("cut.nii.gz")).unwrap();
        let bytes = std::fs::read(ws.path("cut.nii.gz")).unwrap();
        std::fs::write(ws.path("cut.nii.gz"), &bytes[..bytes.len() / 2]).unwrap();
        "cut.nii.gz".to_string()
    };
    for (file, expect) in [
        (magic, ""),
        (truncated_gz, ""),
        (four_d, "only 3D volumes are supported"),
        (zero, "pixdim[1] = 0: the voxel size along axis 1 must be positive"),
        (negative, "pixdim[2] = -1: the voxel size along axis 2 must be positive"),
    ] {
        let o = ws.radpipe(&["resample", &file, "out.nii.gz"]);
        assert_eq!(o.status.code(), Some(1), "{file}");
        let e = stderr(&o);
        assert!(e.contains(&file) && e.contains(expect), "{file}: {e}");
        assert!(!ws.path("out.nii.gz").exists(), "nothing is written for {file}");
    }
    // A singleton axis with pixdim 0 is fine (1 mm), as SimpleITK reads it.
    let flat = patched(&ws, "flat.nii", |b| {
        set_i16(b, 254, 0);
        set_i16(b, 46, 1);
        set_f32(b, 88, 0.0);
        let bytes_per_voxel = i16::from_le_bytes([b[72], b[73]]) as usize / 8;
        b.truncate(352 + 6 * 5 * bytes_per_voxel);
    });
    let o = ws.radpipe(&["resample", &flat, "out.nii.gz"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
