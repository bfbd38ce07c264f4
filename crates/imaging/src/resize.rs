//! 2D bilinear resizing.
//!
//! Pixel-centre convention ("align_corners = false", as OpenCV `INTER_LINEAR`,
//! PyTorch `interpolate(..., align_corners=False)` and a SimpleITK 2D linear
//! resample that keeps the field of view): output pixel `o` of `n_out` samples the
//! input at continuous index `x = x0 + (o + 0.5) · (x1 - x0) / n_out - 0.5` for a
//! region whose pixel *edges* are `[x0 - 0.5, x1 - 0.5]` — for the whole image
//! `x0 = 0`, `x1 = n_in`.  Inside `[-0.5, n_in - 0.5]` neighbours are clamped to the
//! image (edge replication in the half-pixel rim); farther out the pad value is
//! used.  No anti-aliasing is applied when shrinking.

use ndarray::{Array2, ArrayView2};

use super::error::{ImagingError, Result};

/// Bilinear value at continuous index `(y, x)` (row, column); `pad` outside the
/// image's pixel edges.
#[inline]
pub fn bilinear_at(img: &ArrayView2<f32>, y: f64, x: f64, pad: f32) -> f32 {
    let (h, w) = img.dim();
    if h == 0 || w == 0 || y < -0.5 || x < -0.5 || y > h as f64 - 0.5 || x > w as f64 - 0.5 {
        return pad;
    }
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let cl = |v: f64, n: usize| (v.max(0.0) as usize).min(n - 1);
    let (ya, yb) = (cl(y0, h), cl(y0 + 1.0, h));
    let (xa, xb) = (cl(x0, w), cl(x0 + 1.0, w));
    let top = (1.0 - fx) * img[[ya, xa]] as f64 + fx * img[[ya, xb]] as f64;
    let bot = (1.0 - fx) * img[[yb, xa]] as f64 + fx * img[[yb, xb]] as f64;
    ((1.0 - fy) * top + fy * bot) as f32
}

/// Resample the region with pixel edges `rows: [r0-0.5, r1-0.5]`, `cols: [c0-0.5,
/// c1-0.5]` (continuous, may extend past the image) to `out_h x out_w`.
pub fn resize_region_bilinear(img: &ArrayView2<f32>, rows: (f64, f64), cols: (f64, f64), out_h: usize, out_w: usize, pad: f32) -> Result<Array2<f32>> {
    if out_h == 0 || out_w == 0 {
        return Err(ImagingError::InvalidParameter(format!("output size {out_h}x{out_w} must be positive")));
    }
    if rows.0.is_nan() || rows.1.is_nan() || cols.0.is_nan() || cols.1.is_nan() || rows.1 <= rows.0 || cols.1 <= cols.0 {
        return Err(ImagingError::InvalidParameter(format!("empty region rows {rows:?} cols {cols:?}")));
    }
    let sy = (rows.1 - rows.0) / out_h as f64;
    let sx = (cols.1 - cols.0) / out_w as f64;
    Ok(Array2::from_shape_fn((out_h, out_w), |(r, c)| bilinear_at(img, rows.0 + (r as f64 + 0.5) * sy - 0.5, cols.0 + (c as f64 + 0.5) * sx - 0.5, pad)))
}

/// Resize a whole image to `out_h x out_w` (bilinear, pixel-centre convention).
pub fn resize_bilinear(img: &ArrayView2<f32>, out_h: usize, out_w: usize) -> Result<Array2<f32>> {
    let (h, w) = img.dim();
    if h == 0 || w == 0 {
        return Err(ImagingError::InvalidParameter("cannot resize an empty image".into()));
    }
    resize_region_bilinear(img, (0.0, h as f64), (0.0, w as f64), out_h, out_w, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti_io::read_nifti;

    use crate::nifti_io::tests::fixture;

    /// Same numbers as a SimpleITK 2D linear resample keeping the FOV
    /// (fixture: `resize_*` written by the generator as 3D files with one slice).
    #[test]
    fn matches_simpleitk_linear_resize() {
        let input = read_nifti(fixture("resize_in.nii.gz")).unwrap();
        let img = input.data.index_axis(ndarray::Axis(2), 0).reversed_axes(); // [row=j, col=i]
        for name in ["resize_up.nii.gz", "resize_down.nii.gz"] {
            let want = read_nifti(fixture(name)).unwrap();
            let w = want.data.index_axis(ndarray::Axis(2), 0).reversed_axes();
            let got = resize_bilinear(&img, w.dim().0, w.dim().1).unwrap();
            let max = got.iter().zip(w.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max < 1e-3, "{name}: max abs diff {max}");
        }
    }

    #[test]
    fn identity_and_ramp() {
        let img = Array2::from_shape_fn((5, 7), |(r, c)| (r * 10 + c) as f32);
        assert_eq!(resize_bilinear(&img.view(), 5, 7).unwrap(), img);
        // doubling a ramp: interior samples lie on the ramp
        let up = resize_bilinear(&img.view(), 10, 14).unwrap();
        // output (3, 5) -> input (1.25, 2.25)
        assert!((up[[3, 5]] - (12.5 + 2.25)).abs() < 1e-5);
        assert!(resize_bilinear(&img.view(), 0, 3).is_err());
    }
}
