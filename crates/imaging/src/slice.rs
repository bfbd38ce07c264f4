//! 2.5D input construction: three orthogonal slices through the ROI.
//!
//! Given a volume and an ROI mask on the same grid (ROI = voxels > 0.5):
//! 1. **Planes.** Axial, sagittal and coronal planes are planes of constant index
//!    along the index axis whose direction is closest to S (z), L (x) and P (y)
//!    respectively (largest |direction cosine|; for an axial acquisition: k, i, j).
//! 2. **Slice choice.** For each plane, the slice with the largest ROI voxel count;
//!    ties go to the **lowest** index.
//! 3. **Crop.** The ROI bounding box within that slice (voxel edges), grown by
//!    `margin_mm` on every side, then made **square in millimetres** about its centre
//!    (the shorter side grows).  Parts beyond the image are filled with `pad_value`.
//! 4. **Resize** the square to `size x size` by bilinear interpolation
//!    ([`super::resize`], pixel-centre convention).  In-plane layout: columns follow
//!    the lower remaining index axis, rows the higher (axial: rows j, cols i;
//!    sagittal: rows k, cols j; coronal: rows k, cols i), no flips.
//! 5. **Stack** as channels `[axial, sagittal, coronal]` -> `Array3` `(3, size, size)`
//!    and **z-score each channel** over its own pixels (`(x - mean) / std`,
//!    population std); a channel with std < 1e-6 becomes all zeros.

#![allow(clippy::needless_range_loop)] // explicit indices read better in 3x3 / kernel math

use std::path::Path;

use ndarray::{s, Array2, Array3, Axis};

use super::error::{ImagingError, Result};
use super::resize::resize_region_bilinear;
use super::volume::Volume;

/// Settings for [`extract_25d`].
#[derive(Debug, Clone, PartialEq)]
pub struct SliceConfig {
    /// Output height = width in pixels (default 224).
    pub size: usize,
    /// Margin around the ROI bounding box, mm (default 10).
    pub margin_mm: f64,
    /// Value for crop pixels beyond the image (default 0).
    pub pad_value: f32,
}

impl Default for SliceConfig {
    fn default() -> Self {
        SliceConfig { size: 224, margin_mm: 10.0, pad_value: 0.0 }
    }
}

/// Result of [`extract_25d`].
#[derive(Debug, Clone, PartialEq)]
pub struct Slices25D {
    /// `(3, size, size)`: axial, sagittal, coronal; z-scored per channel.
    pub data: Array3<f32>,
    /// Index axis normal to each channel's plane.
    pub normal_axis: [usize; 3],
    /// Chosen slice index along that axis.
    pub slice_index: [usize; 3],
    /// ROI voxel count in the chosen slice.
    pub roi_area: [usize; 3],
    /// Square crop per channel: `(row_lo, row_hi, col_lo, col_hi)` as voxel-edge
    /// coordinates in the slice (continuous index + 0.5).
    pub crop: [[f64; 4]; 3],
}

/// Index axes normal to the axial, sagittal, coronal planes.
pub fn plane_axes(vol: &Volume) -> [usize; 3] {
    // anatomical rows of the direction matrix: S = row 2, L = row 0, P = row 1
    let mut used = [false; 3];
    let mut out = [0usize; 3];
    for (slot, anat) in [2usize, 0, 1].into_iter().enumerate() {
        let mut best = None;
        for c in 0..3 {
            if used[c] {
                continue;
            }
            let v = vol.direction[anat][c].abs();
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((c, v));
            }
        }
        let c = best.expect("three axes").0;
        used[c] = true;
        out[slot] = c;
    }
    out
}

/// One channel's plane: steps 1-3 of the module docs.
struct PlaneCrop {
    /// Index axis normal to the plane.
    normal: usize,
    /// The in-plane index axes: `(cols, rows)`.
    in_plane: (usize, usize),
    slice_index: usize,
    roi_area: usize,
    /// The square, as voxel-edge coordinates (continuous index + 0.5).
    rows: (f64, f64),
    cols: (f64, f64),
}

/// Steps 1-3 for the three planes: they depend on the ROI and the margin only.
fn plane_crops(roi: &Volume, margin_mm: f64) -> Result<[PlaneCrop; 3]> {
    if margin_mm.is_nan() || margin_mm < 0.0 {
        return Err(ImagingError::InvalidParameter(format!("invalid slice margin {margin_mm} mm")));
    }
    let mask = roi.data.mapv(|v| v > 0.5);
    let axes = plane_axes(roi);
    let n = roi.size();
    let mut crops = Vec::with_capacity(3);
    for &ax in &axes {
        // ROI area per slice, lowest index wins ties
        let (mut best, mut best_area) = (0usize, 0usize);
        for idx in 0..n[ax] {
            let area = mask.index_axis(Axis(ax), idx).iter().filter(|&&b| b).count();
            if area > best_area {
                best = idx;
                best_area = area;
            }
        }
        if best_area == 0 {
            return Err(ImagingError::EmptyRoi { what: "ROI mask has no voxel > 0.5".into() });
        }
        // 2D views: remaining axes (a < b): rows = b, cols = a
        let (a, b) = match ax {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        let m2 = mask.index_axis(Axis(ax), best).reversed_axes(); // [b, a]
        let (mut rmin, mut rmax, mut cmin, mut cmax) = (usize::MAX, 0, usize::MAX, 0);
        for ((r, c), &on) in m2.indexed_iter() {
            if on {
                rmin = rmin.min(r);
                rmax = rmax.max(r);
                cmin = cmin.min(c);
                cmax = cmax.max(c);
            }
        }
        let (sr, sc) = (roi.spacing[b], roi.spacing[a]);
        // edges in mm relative to index 0 edge
        let r_lo = rmin as f64 * sr - margin_mm;
        let r_hi = (rmax + 1) as f64 * sr + margin_mm;
        let c_lo = cmin as f64 * sc - margin_mm;
        let c_hi = (cmax + 1) as f64 * sc + margin_mm;
        let side = (r_hi - r_lo).max(c_hi - c_lo);
        let (rc, cc) = ((r_lo + r_hi) / 2.0, (c_lo + c_hi) / 2.0);
        crops.push(PlaneCrop {
            normal: ax,
            in_plane: (a, b),
            slice_index: best,
            roi_area: best_area,
            rows: ((rc - side / 2.0) / sr, (rc + side / 2.0) / sr),
            cols: ((cc - side / 2.0) / sc, (cc + side / 2.0) / sc),
        });
    }
    Ok(crops.try_into().unwrap_or_else(|_| unreachable!("three planes")))
}

/// The voxels [`extract_25d`] reads from an image on `roi`'s grid with
/// `margin_mm`: per index axis the inclusive index range `[first, last]`
/// covering the three chosen slices, the bilinear neighbours of every pixel
/// of their squares (at any output size, so up to a voxel more than one size
/// reads), and the ROI. It may reach past the grid (where the squares are
/// padded). A smaller margin reads a subset: the chosen slices and
/// the squares' centres do not depend on it.
pub fn slice_reach(roi: &Volume, margin_mm: f64) -> Result<[[i64; 2]; 3]> {
    let mut reach = [[i64::MAX, i64::MIN]; 3];
    let mut cover = |axis: usize, first: i64, last: i64| {
        reach[axis] = [reach[axis][0].min(first), reach[axis][1].max(last)];
    };
    for p in plane_crops(roi, margin_mm)? {
        cover(p.normal, p.slice_index as i64, p.slice_index as i64);
        // pixel centres lie strictly inside the edges `x0 - 0.5 .. x1 - 0.5`;
        // bilinear reads floor(x) and floor(x) + 1
        for ((x0, x1), axis) in [(p.rows, p.in_plane.1), (p.cols, p.in_plane.0)] {
            cover(axis, (x0 - 0.5).floor() as i64, (x1 - 0.5).ceil() as i64);
        }
    }
    for ((i, j, k), &v) in roi.data.indexed_iter() {
        if v > 0.5 {
            for (axis, x) in [i, j, k].into_iter().enumerate() {
                cover(axis, x as i64, x as i64);
            }
        }
    }
    Ok(reach)
}

/// Build the 2.5D stack; see the module docs for every rule.
pub fn extract_25d(vol: &Volume, roi: &Volume, cfg: &SliceConfig) -> Result<Slices25D> {
    if vol.size() != roi.size() {
        return Err(ImagingError::ShapeMismatch { what: format!("image {:?} vs ROI {:?}", vol.size(), roi.size()) });
    }
    if !vol.same_grid(roi, 1e-3) {
        return Err(ImagingError::ShapeMismatch { what: "image and ROI have different geometry (origin/spacing/direction)".into() });
    }
    if cfg.size == 0 || cfg.margin_mm.is_nan() || cfg.margin_mm < 0.0 {
        return Err(ImagingError::InvalidParameter(format!("invalid slice config {cfg:?}")));
    }
    let planes = plane_crops(roi, cfg.margin_mm)?;
    let mut data = Array3::<f32>::zeros((3, cfg.size, cfg.size));
    for (ch, p) in planes.iter().enumerate() {
        let img2: Array2<f32> = vol.data.index_axis(Axis(p.normal), p.slice_index).to_owned().reversed_axes(); // [rows, cols]
        let mut plane = resize_region_bilinear(&img2.view(), p.rows, p.cols, cfg.size, cfg.size, cfg.pad_value)?;
        // z-score
        let cnt = plane.len() as f64;
        let mean = plane.iter().map(|&v| v as f64).sum::<f64>() / cnt;
        let std = (plane.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cnt).sqrt();
        if std < 1e-6 || !std.is_finite() {
            plane.fill(0.0);
        } else {
            plane.mapv_inplace(|v| ((v as f64 - mean) / std) as f32);
        }
        data.slice_mut(s![ch, .., ..]).assign(&plane);
    }
    Ok(Slices25D {
        data,
        normal_axis: planes.each_ref().map(|p| p.normal),
        slice_index: planes.each_ref().map(|p| p.slice_index),
        roi_area: planes.each_ref().map(|p| p.roi_area),
        crop: planes.each_ref().map(|p| [p.rows.0, p.rows.1, p.cols.0, p.cols.1]),
    })
}

/// Write a `(C, H, W)` stack as one grayscale PNG with the channels side by side
/// (width `C · W`), each channel mapped linearly from its own min..max to 0..255.
pub fn write_png_preview(stack: &Array3<f32>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let (c, h, w) = stack.dim();
    let err = |reason: String| ImagingError::Png { path: path.to_path_buf(), reason };
    if c == 0 || h == 0 || w == 0 {
        return Err(err("empty stack".into()));
    }
    let mut pixels = vec![0u8; c * h * w];
    for ch in 0..c {
        let plane = stack.index_axis(Axis(0), ch);
        let (lo, hi) = plane.iter().filter(|v| v.is_finite()).fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let range = if hi > lo { hi - lo } else { 1.0 };
        for ((r, col), &v) in plane.indexed_iter() {
            let g = if v.is_finite() { ((v - lo) / range * 255.0).round().clamp(0.0, 255.0) as u8 } else { 0 };
            pixels[r * c * w + ch * w + col] = g;
        }
    }
    let file = std::fs::File::create(path).map_err(|source| ImagingError::Io { path: path.to_path_buf(), source })?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), (c * w) as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| err(e.to_string()))?;
    writer.write_image_data(&pixels).map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::IDENTITY3;

    fn phantom() -> (Volume, Volume) {
        let n = (30, 26, 20);
        let img = Array3::from_shape_fn(n, |(i, j, k)| (i as f32) + 2.0 * j as f32 + 0.5 * k as f32);
        let mut roi = Array3::<f32>::zeros(n);
        // a box i 10..=15, j 8..=12, k 5..=9, plus an extra row in slice k=7 and i=12
        for i in 10..=15 {
            for j in 8..=12 {
                for k in 5..=9 {
                    roi[[i, j, k]] = 1.0;
                }
            }
        }
        for i in 10..=15 {
            roi[[i, 13, 7]] = 1.0; // axial k=7 larger; coronal j=13 smaller
        }
        for k in 5..=9 {
            roi[[12, 14, k]] = 1.0; // sagittal i=12 larger
        }
        let v = Volume::new(img, [0.8, 0.8, 2.0], [1.0, 2.0, 3.0], IDENTITY3).unwrap();
        let r = v.with_data(roi).unwrap();
        (v, r)
    }

    #[test]
    fn picks_largest_slices_and_normalises() {
        let (v, r) = phantom();
        let out = extract_25d(&v, &r, &SliceConfig { size: 64, margin_mm: 4.0, pad_value: 0.0 }).unwrap();
        assert_eq!(out.data.dim(), (3, 64, 64));
        assert_eq!(out.normal_axis, [2, 0, 1]);
        // axial k=7 (30+6 voxels + 1 from the sagittal column), sagittal i=12, coronal: j=8..12 tie -> 8
        assert_eq!(out.slice_index, [7, 12, 8]);
        for ch in 0..3 {
            let p = out.data.index_axis(Axis(0), ch);
            let mean = p.iter().map(|&x| x as f64).sum::<f64>() / p.len() as f64;
            let var = p.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / p.len() as f64;
            assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "channel {ch}: mean {mean} var {var}");
        }
        // square in mm
        for c in out.crop {
            let (h_mm, w_mm) = ((c[1] - c[0]), (c[3] - c[2]));
            assert!(h_mm > 0.0 && w_mm > 0.0);
        }
        let ax = out.crop[0]; // axial: rows j (0.8 mm), cols i (0.8 mm)
        assert!(((ax[1] - ax[0]) * 0.8 - (ax[3] - ax[2]) * 0.8).abs() < 1e-9);
        let sag = out.crop[1]; // sagittal: rows k (2 mm), cols j (0.8 mm)
        assert!(((sag[1] - sag[0]) * 2.0 - (sag[3] - sag[2]) * 0.8).abs() < 1e-9);
        // axial crop: cols cover i edges 10..16 with 5 voxel margin -> centre 13 (edge coords)
        assert!(((ax[2] + ax[3]) / 2.0 - 13.0).abs() < 1e-9);
    }

    #[test]
    fn slice_reach_holds_every_voxel_the_slices_read() {
        let n = (60, 50, 20);
        let v = Volume::new(
            Array3::from_shape_fn(n, |(i, j, k)| (i as f32 * 0.3).sin() + 2.0 * j as f32 + 0.5 * k as f32),
            [0.8, 0.8, 2.0],
            [1.0, 2.0, 3.0],
            IDENTITY3,
        )
        .unwrap();
        // elongated along i in the axial plane (k = 7), whose square reaches past j = 0
        let r = v
            .with_data(Array3::from_shape_fn(n, |(i, j, k)| {
                (((20..=50).contains(&i) && (3..=6).contains(&j) && k == 7) || (i == 30 && j == 5 && (6..=9).contains(&k))) as u8 as f32
            }))
            .unwrap();
        for margin_mm in [0.0, 2.5, 4.0] {
            let cfg = SliceConfig { size: 40, margin_mm, pad_value: 0.0 };
            let want = extract_25d(&v, &r, &cfg).unwrap();
            let reach = slice_reach(&r, 4.0).unwrap();
            let within = |idx: [usize; 3]| (0..3).all(|a| (reach[a][0]..=reach[a][1]).contains(&(idx[a] as i64)));
            assert!(reach[1][0] < 0 && !within([0, 40, 7]) && !within([10, 5, 7]) && !within([30, 5, 18]), "{reach:?}");
            let mut garbage = v.clone();
            for ((i, j, k), x) in garbage.data.indexed_iter_mut() {
                if !within([i, j, k]) {
                    *x = 1e6;
                }
            }
            assert_eq!(extract_25d(&garbage, &r, &cfg).unwrap(), want, "margin {margin_mm} reads beyond {reach:?}");
        }
        // beyond the ROI's box plus the margin (j 3..=6 +- 5 voxels): the squares are wider
        assert!(slice_reach(&r, 4.0).unwrap()[1][1] > 11);
    }

    /// The documented per-patient flow, end to end on the registration fixtures.
    #[test]
    fn documented_flow_end_to_end() {
        use crate::*;
        let f = |n: &str| format!("{}/../../tests/fixtures/imaging/{n}", env!("CARGO_MANIFEST_DIR"));
        let fixed = read_nifti(f("reg_fixed.nii.gz")).unwrap();
        let moving = read_nifti(f("reg_moving_grid.nii.gz")).unwrap();
        let roi = read_nifti(f("reg_roi_fixed.nii.gz")).unwrap();
        let reg = register(&fixed, &moving, &RegistrationConfig::default()).unwrap();
        let moved = apply_transform_image(&moving, &fixed, &reg.transform).unwrap();
        let a = min_max_scale(&resample_image_isotropic(&fixed).unwrap());
        let b = min_max_scale(&resample_image_isotropic(&moved).unwrap());
        let r = resample_mask_isotropic(&roi).unwrap();
        assert!(a.same_grid(&r, 1e-9) && b.same_grid(&r, 1e-9));
        assert_eq!(a.spacing, [1.0; 3]);
        let xa = extract_25d(&a, &r, &SliceConfig::default()).unwrap();
        let xb = extract_25d(&b, &r, &SliceConfig::default()).unwrap();
        assert_eq!(xa.data.dim(), (3, 224, 224));
        assert_eq!(xa.slice_index, xb.slice_index);
        assert!(xb.data.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn plane_axes_follow_direction_cosines() {
        // i along P, j along S, k along L (a sagittal acquisition)
        let dir = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let v = Volume::new(Array3::zeros((2, 2, 2)), [1.0; 3], [0.0; 3], dir).unwrap();
        assert_eq!(plane_axes(&v), [1, 2, 0]);
        let (axial, _) = phantom();
        assert_eq!(plane_axes(&axial), [2, 0, 1]);
    }

    #[test]
    fn errors_on_empty_roi_and_mismatch() {
        let (v, r) = phantom();
        let empty = r.zeros_like();
        assert!(matches!(extract_25d(&v, &empty, &SliceConfig::default()), Err(ImagingError::EmptyRoi { .. })));
        let other = Volume::from_array(Array3::zeros((3, 3, 3)));
        assert!(matches!(extract_25d(&v, &other, &SliceConfig::default()), Err(ImagingError::ShapeMismatch { .. })));
        let mut shifted = r.clone();
        shifted.origin[0] += 5.0;
        assert!(matches!(extract_25d(&v, &shifted, &SliceConfig::default()), Err(ImagingError::ShapeMismatch { .. })));
    }

    #[test]
    fn writes_png_preview() {
        let (v, r) = phantom();
        let out = extract_25d(&v, &r, &SliceConfig::default()).unwrap();
        let p = std::env::temp_dir().join(format!("radpipe_prev_{}.png", std::process::id()));
        write_png_preview(&out.data, &p).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap()));
        let reader = dec.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (3 * 224, 224));
        std::fs::remove_file(&p).ok();
    }
}

/// Checked against an independent NumPy implementation of the module-doc rules
/// (`tests/fixtures/generate/slice_ref.py` -> `tests/fixtures/imaging/slice_ref*.json/.f32`).
#[cfg(test)]
mod numpy_reference {
    use super::*;
    use crate::volume::Mat3;
    use serde_json::Value;

    /// Max abs difference allowed on the z-scored tensor.  Both sides interpolate in
    /// f64 and store f32, then z-score in f64; only summation order and the final
    /// f32 rounding differ (~1e-6), so 1e-4 absolute is ample.
    const TENSOR_TOL: f32 = 1e-4;

    fn fixture(name: &str) -> String {
        format!("{}/../../tests/fixtures/imaging/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
    }

    fn vec3(v: &Value) -> [f64; 3] {
        let x = f64s(v);
        [x[0], x[1], x[2]]
    }

    fn usize3(v: &Value) -> [usize; 3] {
        let x: Vec<usize> = v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        [x[0], x[1], x[2]]
    }

    fn array3(v: &Value, shape: (usize, usize, usize)) -> Array3<f32> {
        let d: Vec<f32> = f64s(v).into_iter().map(|x| x as f32).collect();
        Array3::from_shape_vec(shape, d).expect("shape")
    }

    #[test]
    fn matches_numpy_reference() {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(fixture("slice_ref.json")).unwrap()).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() >= 3);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let sh = usize3(&case["shape"]);
            let shape = (sh[0], sh[1], sh[2]);
            let dir_rows: Vec<[f64; 3]> = case["direction"].as_array().unwrap().iter().map(vec3).collect();
            let direction: Mat3 = [dir_rows[0], dir_rows[1], dir_rows[2]];
            let v = Volume::new(array3(&case["volume"], shape), vec3(&case["spacing"]), vec3(&case["origin"]), direction).unwrap();
            let r = v.with_data(array3(&case["roi"], shape)).unwrap();
            let size = case["size"].as_u64().unwrap() as usize;
            let cfg = SliceConfig { size, margin_mm: case["margin_mm"].as_f64().unwrap(), pad_value: case["pad_value"].as_f64().unwrap() as f32 };
            let out = extract_25d(&v, &r, &cfg).unwrap();
            let exp = &case["expected"];
            assert_eq!(out.normal_axis, usize3(&exp["normal_axis"]), "{name}: axes");
            assert_eq!(out.slice_index, usize3(&exp["slice_index"]), "{name}: slices");
            assert_eq!(out.roi_area, usize3(&exp["roi_area"]), "{name}: areas");
            for (ch, c) in exp["crop"].as_array().unwrap().iter().enumerate() {
                let want = f64s(c);
                for q in 0..4 {
                    assert!((out.crop[ch][q] - want[q]).abs() < 1e-9, "{name}: crop ch {ch}: {:?} vs {want:?}", out.crop[ch]);
                }
            }
            let want: Vec<f32> = if let Some(f) = exp["tensor_f32le"].as_str() {
                std::fs::read(fixture(f)).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            } else {
                f64s(&exp["tensor"]).into_iter().map(|x| x as f32).collect()
            };
            assert_eq!(want.len(), 3 * size * size, "{name}: tensor length");
            assert_eq!(out.data.dim(), (3, size, size));
            let (mut max, mut at) = (0.0f32, 0usize);
            for (i, (a, b)) in out.data.iter().zip(&want).enumerate() {
                let d = (a - b).abs();
                if d > max || d.is_nan() {
                    (max, at) = (d, i);
                }
            }
            assert!(
                max < TENSOR_TOL,
                "{name}: max abs diff {max} at flat index {at} (ch {}, row {}, col {})",
                at / (size * size),
                (at / size) % size,
                at % size
            );
        }
    }
}
