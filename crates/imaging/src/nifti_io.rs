//! NIfTI-1 reading and writing (`.nii`, `.nii.gz`).
//!
//! # Coordinate conventions
//! NIfTI affines map `(i, j, k)` to **RAS** millimetres; `Volume` stores ITK's **LPS**
//! geometry.  On reading, `LPS = diag(-1,-1,1) · RAS` is applied to the affine's
//! 3x3 part and translation; spacing = column norms, direction = normalised
//! columns (spacing taken from `pixdim` when it agrees with the column norm to
//! 1e-4, as ITK).  Writing does the reverse.  This is exactly what ITK/SimpleITK do, so
//! `Volume::origin/direction/spacing` equal SimpleITK's `GetOrigin()/GetDirection()/
//! GetSpacing()` for the same file.
//!
//! # Which transform is used
//! * `sform_code > 0`: the sform (`srow_x/y/z`) - "sform preferred" (as nibabel).
//! * else `qform_code > 0`: the quaternion qform (with `qfac = pixdim[0]`, `<0` -> -1).
//! * neither: origin 0, identity LPS direction, spacing `pixdim[1..4]` -
//!   what SimpleITK 2.5 reports for such a file (nibabel instead centres the grid).
//!
//! Without an sform, a zero (on an axis of more than one voxel), negative or
//! non-finite `pixdim[1..4]` is an error naming the file; a singleton axis with
//! pixdim 0 gets 1 mm.
//!
//! ITK 5.4 / SimpleITK 2.5 differ (measured): they use the sform only when
//! `sform_code == 1` (SCANNER_ANAT) or `qform_code == 0`, otherwise the qform.
//! [`read_nifti_with`]`(path, XformPreference::Itk)` reproduces that rule; the
//! default [`read_nifti`] uses `XformPreference::Sform` (nibabel's rule).  For files
//! whose sform and qform agree (everything SimpleITK/radpipe write) both agree.
//!
//! # Data
//! uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32, float64 are read
//! into f32 with `scl_slope/scl_inter` applied (slope 0 = no scaling).  Only 3D
//! data are accepted (`dim[0]` up to 7 as long as dims 4..7 are 1; 1D/2D get size 1).
//! Written files carry identical sform and qform (code 1, as SimpleITK) and
//! `xyzt_units = 10` (mm, s).

#![allow(clippy::needless_range_loop)] // explicit indices read better in 3x3 / kernel math

use std::path::{Path, PathBuf};

use ndarray::{Array3, Ix3, IxDyn, ShapeBuilder};
use nifti::writer::WriterOptions;
use nifti::{IntoNdArray, NiftiHeader, NiftiObject, NiftiType, ReaderOptions};

use super::error::{ImagingError, Result};
use super::volume::{mat_det, Mat3, Vec3, Volume};

/// On-disk voxel type for [`write_nifti_as`]. Integer types round to nearest and
/// saturate at the type's range (NaN -> 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NiftiDtype {
    Uint8,
    Int16,
    Float32,
    Float64,
}

fn nifti_err(path: &Path, e: nifti::NiftiError) -> ImagingError {
    match e {
        nifti::NiftiError::Io(source) => ImagingError::Io { path: path.to_path_buf(), source },
        other => ImagingError::Nifti { path: path.to_path_buf(), reason: other.to_string() },
    }
}

/// Which header transform wins when both sform and qform are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XformPreference {
    /// sform whenever `sform_code > 0` (nibabel; the radpipe default).
    #[default]
    Sform,
    /// ITK/SimpleITK: sform only if `sform_code == 1` or `qform_code == 0`.
    Itk,
}

/// Affine (3x3 + translation, RAS) from a header according to the module rules.
/// Returns `(matrix, translation, which)` with `which` one of "sform", "qform", "none".
pub fn header_ras_affine(h: &NiftiHeader, pref: XformPreference) -> (Mat3, Vec3, &'static str) {
    let use_sform = match pref {
        XformPreference::Sform => h.sform_code > 0,
        XformPreference::Itk => h.sform_code > 0 && (h.sform_code == 1 || h.qform_code <= 0),
    };
    if use_sform {
        let r = [h.srow_x, h.srow_y, h.srow_z];
        let m = [
            [r[0][0] as f64, r[0][1] as f64, r[0][2] as f64],
            [r[1][0] as f64, r[1][1] as f64, r[1][2] as f64],
            [r[2][0] as f64, r[2][1] as f64, r[2][2] as f64],
        ];
        return (m, [r[0][3] as f64, r[1][3] as f64, r[2][3] as f64], "sform");
    }
    let px = |i: usize| {
        let v = (h.pixdim[i] as f64).abs();
        if v > 0.0 && v.is_finite() {
            v
        } else {
            1.0
        }
    };
    let (dx, dy, dz) = (px(1), px(2), px(3));
    if h.qform_code > 0 {
        let (mut b, mut c, mut d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let mut a: f64 = 1.0 - (b * b + c * c + d * d);
        if a < 1e-7 {
            // nifti1_io: 180-degree rotation, renormalise (b,c,d)
            let n = (b * b + c * c + d * d).sqrt();
            if n > 0.0 {
                b /= n;
                c /= n;
                d /= n;
            }
            a = 0.0;
        } else {
            a = a.sqrt();
        }
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
            [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
            [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ];
        let s = [dx, dy, dz * qfac];
        let mut m = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * s[j];
            }
        }
        return (m, [h.quatern_x as f64, h.quatern_y as f64, h.quatern_z as f64], "qform");
    }
    // Neither: SimpleITK's behaviour (identity LPS direction) expressed in RAS.
    ([[-dx, 0.0, 0.0], [0.0, -dy, 0.0], [0.0, 0.0, dz]], [0.0; 3], "none")
}

/// Read a `.nii` / `.nii.gz` file into a [`Volume`] (LPS geometry, f32 voxels).
pub fn read_nifti(path: impl AsRef<Path>) -> Result<Volume> {
    read_nifti_with(path, XformPreference::Sform)
}

/// As [`read_nifti`] with an explicit sform/qform preference.
// One linear decode of the header in the standard's field order (dims, pixdim,
// xforms, scaling, datatype) with the check of each field beside it; split up,
// the order the checks depend on would be scattered.
#[allow(clippy::too_many_lines)]
pub fn read_nifti_with(path: impl AsRef<Path>, pref: XformPreference) -> Result<Volume> {
    let path = path.as_ref();
    let obj = ReaderOptions::new().read_file(path).map_err(|e| nifti_err(path, e))?;
    let h = obj.header().clone();
    let bad = |reason: String| ImagingError::BadHeader { path: path.to_path_buf(), reason };
    // The reader takes the byte order from sizeof_hdr (348, or 348 byte-swapped); any
    // other value is not a NIfTI-1 header, whatever the rest of the bytes look like.
    if h.sizeof_hdr != 348 {
        return Err(bad(format!("sizeof_hdr = {} is neither 348 nor its byte-swapped form: not a NIfTI-1 header", h.sizeof_hdr)));
    }
    match h.data_type() {
        Ok(NiftiType::Uint8 | NiftiType::Int8 | NiftiType::Uint16 | NiftiType::Int16 | NiftiType::Uint32 | NiftiType::Int32)
        | Ok(NiftiType::Uint64 | NiftiType::Int64 | NiftiType::Float32 | NiftiType::Float64) => {}
        Ok(other) => return Err(ImagingError::UnsupportedDatatype { path: path.to_path_buf(), datatype: format!("{other:?}") }),
        Err(_) => return Err(ImagingError::UnsupportedDatatype { path: path.to_path_buf(), datatype: format!("code {}", h.datatype) }),
    }
    let ndim = h.dim[0] as usize;
    if !(1..=7).contains(&ndim) {
        return Err(bad(format!("dim[0] = {} is not in 1..=7", h.dim[0])));
    }
    if (4..=ndim).any(|d| h.dim[d] != 1) {
        return Err(bad(format!("only 3D volumes are supported, dim = {:?}", &h.dim[..=ndim])));
    }
    let n = |d: usize| if d <= ndim { h.dim[d] as usize } else { 1 };
    let (nx, ny, nz) = (n(1), n(2), n(3));
    if nx == 0 || ny == 0 || nz == 0 {
        return Err(bad(format!("zero-sized dimension in {:?}", &h.dim[..=ndim])));
    }
    // The voxel size comes from pixdim unless the sform says otherwise: a
    // zero, negative or non-finite pixdim of an axis with more than one voxel
    // is refused rather than guessed.
    if h.sform_code <= 0 {
        for (axis, size) in [(1usize, nx), (2, ny), (3, nz)] {
            let p = h.pixdim[axis];
            if !p.is_finite() || p < 0.0 || (p == 0.0 && size > 1) {
                return Err(bad(format!("pixdim[{axis}] = {p}: the voxel size along axis {axis} must be positive (the file has no sform to take it from)")));
            }
        }
    }
    let arr: ndarray::Array<f32, IxDyn> = obj.into_volume().into_ndarray::<f32>().map_err(|e| nifti_err(path, e))?;
    if arr.len() != nx * ny * nz {
        return Err(bad(format!("voxel count {} does not match dims {nx}x{ny}x{nz}", arr.len())));
    }
    // NIfTI is column-major (x fastest); reshape in that order, then store in standard layout.
    let data: Array3<f32> = match arr.ndim() {
        3 => arr.into_dimensionality::<Ix3>().map_err(|e| bad(e.to_string()))?,
        _ => {
            let flat: Vec<f32> = arr.t().iter().copied().collect(); // x fastest
            Array3::from_shape_vec((nx, ny, nz).f(), flat).map_err(|e| bad(e.to_string()))?
        }
    };
    let data = data.as_standard_layout().into_owned();

    let (m_ras, t_ras, _which) = header_ras_affine(&h, pref);
    let flip = [-1.0, -1.0, 1.0];
    let mut spacing = [0.0; 3];
    let mut direction = [[0.0; 3]; 3];
    for c in 0..3 {
        let col = [m_ras[0][c] * flip[0], m_ras[1][c] * flip[1], m_ras[2][c] * flip[2]];
        let norm = (col[0] * col[0] + col[1] * col[1] + col[2] * col[2]).sqrt();
        if norm.is_nan() || norm <= 0.0 || !norm.is_finite() {
            return Err(bad(format!("affine column {c} has zero or non-finite length")));
        }
        // Like ITK, take the spacing from pixdim when it agrees with the affine
        // (pixdim is what SimpleITK reports; column norms of an oblique f32 sform
        // differ in the last bits, which matters for ceil() in grid sizes).
        let pd = (h.pixdim[c + 1] as f64).abs();
        spacing[c] = if pd.is_finite() && pd > 0.0 && (pd - norm).abs() <= 1e-4 * norm { pd } else { norm };
        for r in 0..3 {
            direction[r][c] = col[r] / norm;
        }
    }
    let origin = [t_ras[0] * flip[0], t_ras[1] * flip[1], t_ras[2] * flip[2]];
    Volume::new(data, spacing, origin, direction).map_err(|e| bad(e.to_string()))
}

/// Quaternion (b, c, d) and qfac of a (nearly) orthonormal RAS rotation, as
/// `nifti_mat44_to_quatern`.
fn rotation_to_quatern(r_in: &Mat3) -> ([f64; 3], f64) {
    let mut r = *r_in;
    let qfac = if mat_det(&r) < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let a0 = r11 + r22 + r33 + 1.0;
    let (mut a, mut b, mut c, mut d);
    if a0 > 0.5 {
        a = 0.5 * a0.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
        if a < 0.0 {
            b = -b;
            c = -c;
            d = -d;
            a = -a;
        }
    }
    let _ = a;
    ([b, c, d], qfac)
}

/// Write as float32 (`.nii` or `.nii.gz`, chosen by the file name).
pub fn write_nifti(vol: &Volume, path: impl AsRef<Path>) -> Result<()> {
    write_nifti_as(vol, path, NiftiDtype::Float32)
}

/// Write with the given on-disk datatype.  Geometry goes to both sform and qform
/// (code 1); the qform is exact only for orthonormal directions (always true for
/// volumes read from disk).
pub fn write_nifti_as(vol: &Volume, path: impl AsRef<Path>, dtype: NiftiDtype) -> Result<()> {
    let path = path.as_ref();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let gz = name.ends_with(".nii.gz");
    if !gz && !name.ends_with(".nii") {
        return Err(ImagingError::InvalidParameter(format!("{}: output name must end in .nii or .nii.gz", path.display())));
    }
    let flip = [-1.0, -1.0, 1.0];
    let m = vol.index_to_physical_matrix();
    let mut h = NiftiHeader::default();
    let mut rot = [[0.0; 3]; 3];
    for r in 0..3 {
        let row = [m[r][0] * flip[r], m[r][1] * flip[r], m[r][2] * flip[r], vol.origin[r] * flip[r]];
        let row32 = [row[0] as f32, row[1] as f32, row[2] as f32, row[3] as f32];
        match r {
            0 => h.srow_x = row32,
            1 => h.srow_y = row32,
            _ => h.srow_z = row32,
        }
        for c in 0..3 {
            rot[r][c] = vol.direction[r][c] * flip[r];
        }
    }
    let ([b, c, d], qfac) = rotation_to_quatern(&rot);
    h.quatern_b = b as f32;
    h.quatern_c = c as f32;
    h.quatern_d = d as f32;
    h.quatern_x = h.srow_x[3];
    h.quatern_y = h.srow_y[3];
    h.quatern_z = h.srow_z[3];
    h.pixdim = [qfac as f32, vol.spacing[0] as f32, vol.spacing[1] as f32, vol.spacing[2] as f32, 1.0, 1.0, 1.0, 1.0];
    h.sform_code = 1;
    h.qform_code = 1;
    h.xyzt_units = 10;
    // Write to a dot-free temporary name in the same directory, then rename: the
    // nifti crate rewrites extensions and would mangle names such as `sub.01.nii`.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("radpipe_tmp_{}_{}{}", std::process::id(), n, if gz { ".nii.gz" } else { ".nii" }));
    let opts = WriterOptions::new(&tmp).reference_header(&h);
    let res = match dtype {
        NiftiDtype::Float32 => opts.write_nifti(&vol.data),
        NiftiDtype::Float64 => opts.write_nifti(&vol.data.mapv(|v| v as f64)),
        NiftiDtype::Uint8 => opts.write_nifti(&vol.data.mapv(|v| if v.is_nan() { 0u8 } else { v.round().clamp(0.0, 255.0) as u8 })),
        NiftiDtype::Int16 => opts.write_nifti(&vol.data.mapv(|v| if v.is_nan() { 0i16 } else { v.round().clamp(-32768.0, 32767.0) as i16 })),
    };
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(nifti_err(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ImagingError::Io { path: path.to_path_buf(), source }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::Array3;

    pub(crate) fn fixture(name: &str) -> String {
        format!("{}/../../tests/fixtures/imaging/{}", env!("CARGO_MANIFEST_DIR"), name)
    }

    fn load_json(name: &str) -> serde_json::Value {
        let s = std::fs::read_to_string(fixture(name)).expect("fixture json");
        serde_json::from_str(&s).unwrap()
    }

    fn assert_geom(v: &Volume, g: &serde_json::Value, tol: f64) {
        let get = |k: &str| -> Vec<f64> { g[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        let (o, s, d, size) = (get("origin"), get("spacing"), get("direction"), get("size"));
        for a in 0..3 {
            assert!((v.origin[a] - o[a]).abs() < tol, "origin {:?} vs {:?}", v.origin, o);
            assert!((v.spacing[a] - s[a]).abs() < tol, "spacing {:?} vs {:?}", v.spacing, s);
            assert_eq!(v.size()[a] as f64, size[a]);
            for c in 0..3 {
                assert!((v.direction[a][c] - d[3 * a + c]).abs() < tol, "direction {:?} vs {:?}", v.direction, d);
            }
        }
    }

    #[test]
    fn reads_simpleitk_written_files_with_same_lps_geometry() {
        let meta = load_json("io_expected.json");
        for case in meta["cases"].as_array().unwrap() {
            let file = case["file"].as_str().unwrap();
            let v = read_nifti(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_geom(&v, &case["geometry"], 1e-4);
            // voxel values: checksum + a few probes [i,j,k] -> value
            let sum: f64 = v.data.iter().map(|&x| x as f64).sum();
            let want = case["sum"].as_f64().unwrap();
            assert!((sum - want).abs() <= 1e-4 * want.abs().max(1.0), "{file}: sum {sum} vs {want}");
            for p in case["probes"].as_array().unwrap() {
                let p: Vec<f64> = p.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                let got = v.data[[p[0] as usize, p[1] as usize, p[2] as usize]] as f64;
                assert!((got - p[3]).abs() <= 1e-4 * p[3].abs().max(1.0), "{file}: probe {p:?} got {got}");
            }
        }
    }

    /// Truncated / garbage files give errors, not panics.
    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("radpipe_trunc_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let full = std::fs::read(fixture("io_sitk_i16.nii")).unwrap();
        for (name, bytes) in
            [("trunc.nii", full[..full.len() - 100].to_vec()), ("hdr_only.nii", full[..300].to_vec()), ("garbage.nii", vec![7u8; 500]), ("empty.nii", vec![])]
        {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            let r = std::panic::catch_unwind(|| read_nifti(&p));
            assert!(matches!(r, Ok(Err(_))), "{name}: expected an error, got {:?}", r.as_ref().map(|x| x.as_ref().map(|v| v.size())));
        }
        // a header whose sizeof_hdr is neither 348 nor 348 byte-swapped (0x5C010000)
        let mut odd = full.clone();
        odd[..4].copy_from_slice(&349i32.to_le_bytes());
        let p = dir.join("sizeof_hdr.nii");
        std::fs::write(&p, odd).unwrap();
        let e = read_nifti(&p).expect_err("sizeof_hdr 349 is refused").to_string();
        assert!(e.contains("sizeof_hdr.nii") && e.contains("sizeof_hdr = 349"), "{e}");
        // truncated gzip
        let gz = std::fs::read(fixture("io_sitk_f32_oblique.nii.gz")).unwrap();
        let p = dir.join("trunc.nii.gz");
        std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
        assert!(matches!(std::panic::catch_unwind(|| read_nifti(&p)), Ok(Err(_))));
        std::fs::remove_dir_all(&dir).ok();
    }

    /// sform_code 2 + qform_code 1 that disagree: default follows the sform (nibabel's
    /// geometry), `XformPreference::Itk` follows the qform (SimpleITK's geometry).
    #[test]
    fn xform_preference_sform_vs_itk() {
        let meta = load_json("io_expected.json");
        let c = &meta["preference_case"];
        let file = fixture(c["file"].as_str().unwrap());
        assert_geom(&read_nifti(&file).unwrap(), &c["nibabel_geometry"], 1e-4);
        assert_geom(&read_nifti_with(&file, XformPreference::Itk).unwrap(), &c["sitk_geometry"], 1e-4);
    }

    /// 2D and 4D-with-one-volume files keep x fastest.
    #[test]
    fn reads_2d_and_singleton_4d() {
        let meta = load_json("io_expected.json");
        for c in meta["shape_cases"].as_array().unwrap() {
            let v = read_nifti(fixture(c["file"].as_str().unwrap())).unwrap();
            let size: Vec<usize> = c["size"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            assert_eq!(v.size().to_vec(), size);
            for p in c["probes"].as_array().unwrap() {
                let p: Vec<f64> = p.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                let got = v.data[[p[0] as usize, p[1] as usize, p[2] as usize]] as f64;
                assert!((got - p[3]).abs() < 1e-6, "{c}: {p:?} got {got}");
            }
        }
    }

    #[test]
    fn roundtrip_write_read_all_dtypes() {
        let dir = std::env::temp_dir().join(format!("radpipe_imaging_io_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = 0.4f64;
        let dir_m = [[a.cos(), 0.0, a.sin()], [0.0, 1.0, 0.0], [-a.sin(), 0.0, a.cos()]];
        let data = Array3::from_shape_fn((5, 4, 3), |(i, j, k)| (i + 10 * j + 100 * k) as f32);
        let v = Volume::new(data, [0.43, 0.5, 5.5], [-12.5, 30.25, 7.0], dir_m).unwrap();
        for (name, dt) in [("a.b.nii", NiftiDtype::Float32), ("x.nii.gz", NiftiDtype::Int16), ("u8.nii.gz", NiftiDtype::Uint8), ("d.nii", NiftiDtype::Float64)]
        {
            let p = dir.join(name);
            write_nifti_as(&v, &p, dt).unwrap();
            let r = read_nifti(&p).unwrap();
            assert!(r.same_grid(&v, 1e-5), "{name}: {:?}", (r.origin, r.spacing, r.direction));
            let expect = if dt == NiftiDtype::Uint8 { v.data.mapv(|x| x.min(255.0)) } else { v.data.clone() };
            assert_eq!(r.data, expect, "{name}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors_carry_path() {
        let e = read_nifti("/nonexistent/x.nii").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.nii"));
        let e = read_nifti(fixture("io_rgb24.nii")).unwrap_err();
        assert!(matches!(e, ImagingError::UnsupportedDatatype { .. }), "{e}");
        let e = read_nifti(fixture("io_4d.nii.gz")).unwrap_err();
        assert!(matches!(e, ImagingError::BadHeader { .. }), "{e}");
    }

    /// Manual cross-check hook: with `RADPIPE_IMAGING_WRITE_CHECK=<dir>` set, writes
    /// `<dir>/radpipe_written.nii.gz` (oblique, anisotropic) and its geometry as JSON
    /// so SimpleITK can be pointed at it (see the report); a no-op otherwise.
    #[test]
    fn optional_write_for_simpleitk_check() {
        let Ok(dir) = std::env::var("RADPIPE_IMAGING_WRITE_CHECK") else {
            return;
        };
        let a = 0.3f64;
        let b = -0.2f64;
        let rz = [[a.cos(), -a.sin(), 0.0], [a.sin(), a.cos(), 0.0], [0.0, 0.0, 1.0]];
        let rx = [[1.0, 0.0, 0.0], [0.0, b.cos(), -b.sin()], [0.0, b.sin(), b.cos()]];
        let d = crate::volume::mat_mul(&rz, &rx);
        let data = Array3::from_shape_fn((7, 6, 5), |(i, j, k)| (i * 100 + j * 10 + k) as f32 * 0.5);
        let v = Volume::new(data, [0.43, 0.43, 5.5], [-12.25, 33.5, -70.125], d).unwrap();
        write_nifti(&v, format!("{dir}/radpipe_written.nii.gz")).unwrap();
        let g = serde_json::json!({"origin": v.origin, "spacing": v.spacing, "direction": v.direction.iter().flatten().collect::<Vec<_>>(),
            "probe_1_2_3": v.data[[1, 2, 3]]});
        std::fs::write(format!("{dir}/radpipe_written.json"), g.to_string()).unwrap();
    }

    /// Files written by radpipe, checked by SimpleITK in the fixture script: we write
    /// here, and compare with the geometry SimpleITK reported for the identical
    /// volume it wrote (same values in the JSON).
    #[test]
    fn written_file_matches_simpleitk_header_fields() {
        let meta = load_json("io_expected.json");
        let case = &meta["radpipe_write_check"];
        let g = &case["geometry"];
        let get = |k: &str| -> Vec<f64> { g[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        let (o, s, d, size) = (get("origin"), get("spacing"), get("direction"), get("size"));
        let dir = [[d[0], d[1], d[2]], [d[3], d[4], d[5]], [d[6], d[7], d[8]]];
        let data = Array3::from_shape_fn((size[0] as usize, size[1] as usize, size[2] as usize), |(i, j, k)| (i + 2 * j + 3 * k) as f32);
        let v = Volume::new(data, [s[0], s[1], s[2]], [o[0], o[1], o[2]], dir).unwrap();
        let p = std::env::temp_dir().join(format!("radpipe_w_{}.nii", std::process::id()));
        write_nifti(&v, &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).ok();
        // The SimpleITK-written header for the same geometry: sform rows must agree.
        let srow: Vec<f64> = case["srow"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let f = |off: usize| f32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as f64;
        for (n, want) in srow.iter().enumerate() {
            let got = f(280 + 4 * n);
            assert!((got - want).abs() < 1e-4, "srow[{n}] {got} vs {want}");
        }
        let qf: Vec<f64> = case["quatern"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        for (n, want) in qf.iter().enumerate() {
            let got = f(256 + 4 * n);
            assert!((got - want).abs() < 1e-4, "quatern[{n}] {got} vs {want}");
        }
    }
}
