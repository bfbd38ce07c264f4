//! Resampling in physical space.
//!
//! Output grid for a new spacing (SimpleITK-style, identical to the fixture script
//! `tests/fixtures/generate/imaging.py`):
//! * direction unchanged;
//! * `size[a] = ceil(size[a] * spacing[a] / new_spacing[a])` (computed in f64);
//! * origin chosen so the field of view keeps its **corner**: the outer edge of
//!   voxel 0 (`origin - D·spacing/2`) is unchanged, i.e.
//!   `new_origin = origin + D · ((new_spacing - spacing) / 2)`.
//!   (The FOV may grow by less than one new voxel at the far end; those voxels lie
//!   outside the input and get the default value 0.)
//!
//! Images use cubic B-spline, label masks nearest neighbour.  Points outside the
//! input buffer (ITK rule, see [`super::interpolate`]) get `default_value`.
//! Work is parallel (rayon) over output planes of constant `i` (contiguous in
//! memory).

#![allow(clippy::needless_range_loop)] // explicit indices read better in 3x3 / kernel math

use ndarray::parallel::prelude::*;
use ndarray::{Array3, Axis};

use super::error::{ImagingError, Result};
use super::interpolate::{Interpolator, Sampler};
use super::transform::{AffineMap, Transform};
use super::volume::{mat_mul, mat_vec, Mat3, Vec3, Volume};

/// A voxel grid without data.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub size: [usize; 3],
    pub spacing: Vec3,
    pub origin: Vec3,
    pub direction: Mat3,
}

impl Grid {
    pub fn of(v: &Volume) -> Grid {
        Grid { size: v.size(), spacing: v.spacing, origin: v.origin, direction: v.direction }
    }

    /// The grid `v` is resampled to for `new_spacing` (see module docs).
    pub fn with_spacing(v: &Volume, new_spacing: Vec3) -> Result<Grid> {
        if new_spacing.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(ImagingError::InvalidParameter(format!("new spacing must be positive, got {new_spacing:?}")));
        }
        let n = v.size();
        let mut size = [0usize; 3];
        let mut shift = [0.0; 3];
        for a in 0..3 {
            size[a] = ((n[a] as f64 * v.spacing[a]) / new_spacing[a]).ceil().max(1.0) as usize;
            shift[a] = (new_spacing[a] - v.spacing[a]) / 2.0;
        }
        let d = mat_vec(&v.direction, &shift);
        Ok(Grid { size, spacing: new_spacing, origin: [v.origin[0] + d[0], v.origin[1] + d[1], v.origin[2] + d[2]], direction: v.direction })
    }

    /// The index box of this grid (inclusive `[first, last]` per axis, not
    /// clamped to the grid) covering the voxels of `mask` (value > 0.5, on any
    /// grid) plus `margin_mm` on every side. `None` when the mask is empty.
    pub fn index_box_of_mask(&self, mask: &Volume, margin_mm: f64) -> Option<[[i64; 2]; 3]> {
        let to_index = super::volume::mat_inv(&self.index_to_physical_matrix())?;
        let half_voxel = mask.spacing.iter().cloned().fold(0.0, f64::max) / 2.0;
        let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
        for ((i, j, k), &m) in mask.data.indexed_iter() {
            if m > 0.5 {
                let p = mask.index_to_physical(&[i as f64, j as f64, k as f64]);
                let idx = mat_vec(&to_index, &[p[0] - self.origin[0], p[1] - self.origin[1], p[2] - self.origin[2]]);
                for a in 0..3 {
                    lo[a] = lo[a].min(idx[a]);
                    hi[a] = hi[a].max(idx[a]);
                }
            }
        }
        if !lo[0].is_finite() {
            return None;
        }
        Some(std::array::from_fn(|a| {
            let reach = (margin_mm + half_voxel) / self.spacing[a];
            [(lo[a] - reach).floor() as i64, (hi[a] + reach).ceil() as i64]
        }))
    }

    /// The block of this grid with indices `first..=last` per axis, clamped to
    /// the grid, and its first index. Its points are points of this grid, so
    /// resampling onto it gives exactly the matching block of the full
    /// resampled volume. `None` when the box misses the grid.
    pub fn block(&self, index_box: &[[i64; 2]; 3]) -> Option<(Grid, [usize; 3])> {
        let mut start = [0usize; 3];
        let mut size = [0usize; 3];
        for a in 0..3 {
            let [first, last] = index_box[a];
            let (first, last) = (first.max(0), last.min(self.size[a] as i64 - 1));
            if first > last {
                return None;
            }
            start[a] = first as usize;
            size[a] = (last - first + 1) as usize;
        }
        let shift = mat_vec(&self.index_to_physical_matrix(), &start.map(|i| i as f64));
        let origin = [self.origin[0] + shift[0], self.origin[1] + shift[1], self.origin[2] + shift[2]];
        Some((Grid { size, spacing: self.spacing, origin, direction: self.direction }, start))
    }

    /// The block of this grid covering the voxels of `mask` plus `margin_mm`
    /// ([`Grid::index_box_of_mask`], [`Grid::block`]).
    pub fn cropped_to_mask(&self, mask: &Volume, margin_mm: f64) -> Option<Grid> {
        self.block(&self.index_box_of_mask(mask, margin_mm)?).map(|(grid, _)| grid)
    }

    fn index_to_physical_matrix(&self) -> Mat3 {
        let mut m = self.direction;
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] *= self.spacing[c];
            }
        }
        m
    }
}

/// Continuous input index of output index `(i, j, k)`: `C · (i, j, k) + c0`.
fn index_map(src: &Volume, grid: &Grid, map: &AffineMap) -> (Mat3, Vec3) {
    let p2i = src.physical_to_index_matrix();
    let cm = mat_mul(&p2i, &mat_mul(&map.matrix, &grid.index_to_physical_matrix()));
    let o = map.apply(&grid.origin);
    (cm, mat_vec(&p2i, &[o[0] - src.origin[0], o[1] - src.origin[1], o[2] - src.origin[2]]))
}

/// Resample `src` onto `grid`; `transform` (fixed/output -> moving/input, `None` =
/// identity) is applied to each output point before sampling `src`.
pub fn resample_to_grid(src: &Volume, grid: &Grid, transform: Option<&Transform>, interp: Interpolator, default_value: f32) -> Result<Volume> {
    let sampler = Sampler::new(&src.data, interp);
    resample_with_sampler(src, &sampler, grid, transform.map(|t| t.to_affine_map()).as_ref(), default_value)
}

/// As [`resample_to_grid`] with an already prepared sampler for `src`'s data.
pub fn resample_with_sampler(src: &Volume, sampler: &Sampler, grid: &Grid, map: Option<&AffineMap>, default_value: f32) -> Result<Volume> {
    if grid.size.contains(&0) {
        return Err(ImagingError::InvalidParameter(format!("empty output grid {:?}", grid.size)));
    }
    let (cm, c0) = index_map(src, grid, &map.copied().unwrap_or_else(AffineMap::identity));
    let mut out = Array3::<f32>::zeros((grid.size[0], grid.size[1], grid.size[2]));
    out.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(i, mut plane)| {
        for ((j, k), v) in plane.indexed_iter_mut() {
            let (fi, fj, fk) = (i as f64, j as f64, k as f64);
            let ci = [
                cm[0][0] * fi + cm[0][1] * fj + cm[0][2] * fk + c0[0],
                cm[1][0] * fi + cm[1][1] * fj + cm[1][2] * fk + c0[1],
                cm[2][0] * fi + cm[2][1] * fj + cm[2][2] * fk + c0[2],
            ];
            *v = match sampler.sample(&ci) {
                Some(x) => x as f32,
                None => default_value,
            };
        }
    });
    Volume::new(out, grid.spacing, grid.origin, grid.direction)
}

/// Resample `src` onto `block`, a block of `grid` ([`Grid::block`]), and give
/// the minimum and maximum over the whole of `grid` of the values resampling
/// onto `grid` gives (to float rounding). When `grid`'s axes are `src`'s (the
/// same direction, as [`Grid::with_spacing`] makes) that range is computed
/// separably ([`Sampler::lattice_range`], a fraction of resampling the grid);
/// otherwise the grid is resampled for it.
pub fn resample_block_with_range(src: &Volume, grid: &Grid, block: &Grid, interp: Interpolator, default_value: f32) -> Result<(Volume, (f32, f32))> {
    let sampler = Sampler::new(&src.data, interp);
    let out = resample_with_sampler(src, &sampler, block, None, default_value)?;
    let (cm, c0) = index_map(src, grid, &AffineMap::identity());
    let scale = (0..3).map(|a| cm[a][a].abs()).fold(0.0, f64::max);
    let aligned = (0..3).all(|r| (0..3).all(|c| r == c || cm[r][c].abs() <= 1e-12 * scale));
    let range = if aligned {
        sampler.lattice_range(&std::array::from_fn(|a| (0..grid.size[a]).map(|x| cm[a][a] * x as f64 + c0[a]).collect()), default_value)
    } else {
        let whole = resample_with_sampler(src, &sampler, grid, None, default_value)?;
        whole.min_max().unwrap_or((default_value, default_value))
    };
    Ok((out, range))
}

/// Resample to `new_spacing` with the given interpolator (default value 0).
pub fn resample_to_spacing(src: &Volume, new_spacing: Vec3, interp: Interpolator) -> Result<Volume> {
    let grid = Grid::with_spacing(src, new_spacing)?;
    resample_to_grid(src, &grid, None, interp, 0.0)
}

/// Image resampling with the study default: cubic B-spline to 1x1x1 mm.
pub fn resample_image_isotropic(src: &Volume) -> Result<Volume> {
    resample_to_spacing(src, [1.0; 3], Interpolator::BSpline)
}

/// Label-mask resampling: nearest neighbour to 1x1x1 mm.
pub fn resample_mask_isotropic(mask: &Volume) -> Result<Volume> {
    resample_to_spacing(mask, [1.0; 3], Interpolator::Nearest)
}

/// Min-max scaling to [0, 1] over finite voxels: `(x - min) / (max - min)`.
/// Rule for constant (or empty / all-NaN) images: every voxel becomes 0.
/// Non-finite voxels become 0.
pub fn min_max_scale(v: &Volume) -> Volume {
    min_max_scale_by(v, v.min_max())
}

/// [`min_max_scale`] with a given `(min, max)`, e.g. that of the whole field of
/// view a crop was cut from ([`resample_block_with_range`]).
pub fn min_max_scale_by(v: &Volume, range: Option<(f32, f32)>) -> Volume {
    let mut out = v.clone();
    match range {
        Some((lo, hi)) if hi > lo => {
            let (lo, range) = (lo as f64, (hi - lo) as f64);
            out.data.par_mapv_inplace(|x| if x.is_finite() { ((x as f64 - lo) / range) as f32 } else { 0.0 });
        }
        _ => out.data.fill(0.0),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti_io::read_nifti;

    use crate::nifti_io::tests::fixture;

    fn expected() -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(fixture("resample_expected.json")).unwrap()).unwrap()
    }

    /// Relative L2 error over voxels more than `margin` voxels from the border.
    fn rel_l2_interior(a: &Volume, b: &Volume, margin: usize) -> f64 {
        let n = a.size();
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for ((i, j, k), &x) in a.data.indexed_iter() {
            let inner = [i, j, k].iter().zip(n.iter()).all(|(&p, &s)| p >= margin && p + margin < s);
            if inner {
                let y = b.data[[i, j, k]] as f64;
                num += (x as f64 - y).powi(2);
                den += y * y;
            }
        }
        (num / den).sqrt()
    }

    fn check_case(case: &serde_json::Value) -> (f64, f64) {
        let input = read_nifti(fixture(case["input"].as_str().unwrap())).unwrap();
        let ns: Vec<f64> = case["new_spacing"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let grid = Grid::with_spacing(&input, [ns[0], ns[1], ns[2]]).unwrap();
        let mut results = (0.0, 0.0);
        for (key, interp) in [("bspline", Interpolator::BSpline), ("linear", Interpolator::Linear), ("nearest", Interpolator::Nearest)] {
            let want = read_nifti(fixture(case[key].as_str().unwrap())).unwrap();
            // our grid rule reproduces the fixture's grid
            assert_eq!(grid.size, want.size(), "{key}: size");
            for a in 0..3 {
                assert!((grid.origin[a] - want.origin[a]).abs() < 1e-3, "{key}: origin {:?} vs {:?}", grid.origin, want.origin);
                for c in 0..3 {
                    assert!((grid.direction[a][c] - want.direction[a][c]).abs() < 1e-5);
                }
            }
            // resample onto the fixture's own grid (f32 header rounding aside)
            let got = resample_to_grid(&input, &Grid::of(&want), None, interp, 0.0).unwrap();
            let err = rel_l2_interior(&got, &want, 3);
            match interp {
                Interpolator::BSpline => {
                    assert!(err < 1e-3, "{}: bspline rel L2 {err}", case["name"]);
                    results.0 = err;
                }
                Interpolator::Linear => {
                    assert!(err < 1e-5, "{}: linear rel L2 {err}", case["name"]);
                    eprintln!("{}: linear vs sitkLinear rel L2 {err:.3e}", case["name"]);
                }
                Interpolator::Nearest => {
                    // Exact equality except at rounding ties (continuous index within
                    // 1e-6 of k + 1/2 on some axis), where float round-off decides.
                    let (mut ties, mut bad) = (0usize, 0usize);
                    for ((i, j, k), &g) in got.data.indexed_iter() {
                        let ci = input.physical_to_index(&want.index_to_physical(&[i as f64, j as f64, k as f64]));
                        let tie = ci.iter().any(|c| ((c + 0.5) - (c + 0.5).round()).abs() < 1e-6);
                        if tie {
                            ties += 1;
                        } else if g != want.data[[i, j, k]] {
                            bad += 1;
                        }
                    }
                    assert_eq!(bad, 0, "{}: nearest mismatches outside ties", case["name"]);
                    assert!(ties * 10 < got.data.len(), "too many ties");
                    eprintln!("{}: nearest exact on {} voxels ({} rounding-tie voxels skipped)", case["name"], got.data.len() - ties, ties);
                }
            }
        }
        // a linear kernel must not pass the B-spline check on fine-structure cases
        let want = read_nifti(fixture(case["bspline"].as_str().unwrap())).unwrap();
        let lin = resample_to_grid(&input, &Grid::of(&want), None, Interpolator::Linear, 0.0).unwrap();
        results.1 = rel_l2_interior(&lin, &want, 3);
        if case["fine_structure"].as_bool().unwrap_or(false) {
            assert!(results.1 > 1e-2, "{}: linear vs sitkBSpline gap only {}", case["name"], results.1);
        }
        eprintln!("{}: bspline rel L2 {:.3e}, linear-vs-sitkBSpline {:.3e}", case["name"], results.0, results.1);
        results
    }

    #[test]
    fn matches_simpleitk_resample() {
        let exp = expected();
        let mut saw_fine = false;
        for case in exp["cases"].as_array().unwrap() {
            check_case(case);
            saw_fine |= case["fine_structure"].as_bool().unwrap_or(false);
        }
        assert!(saw_fine);
    }

    #[test]
    fn min_max_scaling_rule() {
        let v = Volume::from_array(Array3::from_shape_fn((3, 3, 3), |(i, _, _)| i as f32 * 2.0 - 1.0));
        let s = min_max_scale(&v);
        assert_eq!(s.min_max(), Some((0.0, 1.0)));
        let c = Volume::from_array(Array3::from_elem((2, 2, 2), 7.0));
        assert!(min_max_scale(&c).data.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn a_grid_cropped_to_a_mask_gives_the_matching_block_of_the_full_resampling() {
        use crate::transform::euler_matrix;
        let data = Array3::from_shape_fn((20, 18, 9), |(i, j, k)| ((i * 7 + j * 3) % 11) as f32 + (k as f32).sin() * 4.0);
        let src = Volume::new(data, [0.8, 0.7, 3.0], [-5.0, 2.0, 1.0], euler_matrix(&[0.1, -0.05, 0.2])).unwrap();
        let mask = src.with_data(Array3::from_shape_fn((20, 18, 9), |(i, j, k)| ((7..11).contains(&i) && (5..9).contains(&j) && k == 4) as u8 as f32)).unwrap();
        let full_grid = Grid::with_spacing(&src, [1.0; 3]).unwrap();
        let crop = full_grid.cropped_to_mask(&mask, 2.0).unwrap();
        assert!((0..3).all(|a| crop.size[a] < full_grid.size[a]), "{:?} vs {:?}", crop.size, full_grid.size);
        let full = resample_to_grid(&src, &full_grid, None, Interpolator::BSpline, 0.0).unwrap();
        let part = resample_to_grid(&src, &crop, None, Interpolator::BSpline, 0.0).unwrap();
        let start = full.physical_to_index(&crop.origin).map(|x| x.round() as usize);
        for ((i, j, k), v) in part.data.indexed_iter() {
            let w = full.data[[start[0] + i, start[1] + j, start[2] + k]];
            assert!((v - w).abs() <= 1e-5 * w.abs().max(1.0), "({i},{j},{k}): {v} vs {w}");
        }
        // every mask voxel, plus the margin, is inside the crop
        let mask_out = resample_to_grid(&mask, &full_grid, None, Interpolator::Nearest, 0.0).unwrap();
        let inside: f32 = mask_out.data.sum();
        let kept = resample_to_grid(&mask, &crop, None, Interpolator::Nearest, 0.0).unwrap().data.sum();
        assert!(inside > 0.0 && kept == inside);
        assert!(full_grid.cropped_to_mask(&src.zeros_like(), 2.0).is_none());
    }

    #[test]
    fn the_range_of_a_block_resampling_is_that_of_the_whole_field_of_view() {
        use crate::transform::euler_matrix;
        let data = Array3::from_shape_fn((40, 36, 12), |(i, j, k)| {
            let (x, y, z) = (i as f32, j as f32, k as f32);
            50.0 + 20.0 * (x / 4.0).sin() * (y / 6.0).cos() + z + if (i, j, k) == (3, 30, 10) { 300.0 } else { 0.0 }
                - if (i, j, k) == (36, 2, 1) { 90.0 } else { 0.0 }
        });
        let src = Volume::new(data, [0.8, 0.7, 3.0], [-5.0, 2.0, 1.0], euler_matrix(&[0.1, -0.05, 0.2])).unwrap();
        let mask =
            src.with_data(Array3::from_shape_fn((40, 36, 12), |(i, j, k)| ((18..24).contains(&i) && (15..20).contains(&j) && k == 6) as u8 as f32)).unwrap();
        let grid = Grid::with_spacing(&src, [1.1, 0.9, 1.3]).unwrap();
        let block = grid.cropped_to_mask(&mask, 3.0).unwrap();
        for interp in [Interpolator::BSpline, Interpolator::Linear, Interpolator::Nearest] {
            let full = resample_to_grid(&src, &grid, None, interp, 0.0).unwrap();
            let (part, (lo, hi)) = resample_block_with_range(&src, &grid, &block, interp, 0.0).unwrap();
            let want = full.min_max().unwrap();
            assert!((lo - want.0).abs() <= 1e-4 && (hi - want.1).abs() <= 1e-4, "{interp:?}: {lo}..{hi} vs {want:?}");
            let inside = part.min_max().unwrap();
            assert!(inside.0 > want.0 + 1.0 && inside.1 < want.1 - 1.0, "{interp:?}: the block holds an extreme: {inside:?} vs {want:?}");
            // a default value beyond every voxel is the minimum: the grid reaches outside `src`
            let (_, (lo, _)) = resample_block_with_range(&src, &grid, &block, interp, -1e6).unwrap();
            assert_eq!(lo, -1e6, "{interp:?}");
        }
        // a grid whose axes are not the source's: resampled whole for the range
        let turned = Grid { direction: crate::volume::IDENTITY3, ..grid.clone() };
        let whole = resample_to_grid(&src, &turned, None, Interpolator::BSpline, 0.0).unwrap();
        let block = turned.block(&[[5, 20], [5, 20], [5, 20]]).unwrap().0;
        assert_eq!(resample_block_with_range(&src, &turned, &block, Interpolator::BSpline, 0.0).unwrap().1, whole.min_max().unwrap());
    }
}
