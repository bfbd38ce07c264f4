//! Image-derived checks of the generated data (measured from the files, not read
//! from the ground truth): a peritumoral rim-enhancement statistic, mean tumour
//! intensity, ROI volume and centroid.

use radpipe_imaging::{Vec3, Volume};

/// In-plane distance bands (mm) from the ROI: the peritumoral shell (0, 3] and the
/// reference ring (4, 9].
pub const SHELL_MM: f64 = 3.0;
pub const RING_MM: [f64; 2] = [4.0, 9.0];

/// In-plane Euclidean distance (mm) of every voxel to the nearest ROI voxel of its
/// slice, up to `max_mm` (beyond: infinity; ROI voxels: 0).
pub fn inplane_distance(roi: &Volume, max_mm: f64) -> Vec<f32> {
    let [ni, nj, nk] = roi.size();
    let at = |i: usize, j: usize, k: usize| (i * nj + j) * nk + k;
    let inside = |i: isize, j: isize, k: usize| i >= 0 && j >= 0 && (i as usize) < ni && (j as usize) < nj && roi.data[[i as usize, j as usize, k]] > 0.5;
    let mut dist = vec![f32::INFINITY; ni * nj * nk];
    let r = [(max_mm / roi.spacing[0]).ceil() as isize, (max_mm / roi.spacing[1]).ceil() as isize];
    for ((i, j, k), &m) in roi.data.indexed_iter() {
        if m < 0.5 {
            continue;
        }
        dist[at(i, j, k)] = 0.0;
        let (ii, jj) = (i as isize, j as isize);
        // only boundary voxels can be nearest to an outside voxel
        if inside(ii - 1, jj, k) && inside(ii + 1, jj, k) && inside(ii, jj - 1, k) && inside(ii, jj + 1, k) {
            continue;
        }
        for di in -r[0]..=r[0] {
            let a = ii + di;
            if a < 0 || a >= ni as isize {
                continue;
            }
            for dj in -r[1]..=r[1] {
                let b = jj + dj;
                if b < 0 || b >= nj as isize {
                    continue;
                }
                let dx = di as f64 * roi.spacing[0];
                let dy = dj as f64 * roi.spacing[1];
                let d = (dx * dx + dy * dy).sqrt();
                let slot = &mut dist[at(a as usize, b as usize, k)];
                if d <= max_mm && (d as f32) < *slot {
                    *slot = d as f32;
                }
            }
        }
    }
    dist
}

/// Peritumoral rim enhancement on CE-T1: mean intensity in the in-plane shell
/// (0, 3] mm around the ROI divided by the mean in the ring (4, 9] mm (both without
/// ROI and air-like voxels).  `None` when the ROI is empty or a band is empty.
pub fn rim_enhancement(ce: &Volume, roi: &Volume) -> Option<f64> {
    let inside_mean = mean_in_roi(ce, roi)?;
    let floor = 0.15 * inside_mean;
    let dist = inplane_distance(roi, RING_MM[1]);
    let (mut s1, mut n1, mut s2, mut n2) = (0.0, 0usize, 0.0, 0usize);
    for (v, d) in ce.data.iter().zip(&dist) {
        let (v, d) = (*v as f64, *d as f64);
        if d <= 0.0 || v <= floor || !d.is_finite() {
            continue;
        }
        if d <= SHELL_MM {
            s1 += v;
            n1 += 1;
        } else if d > RING_MM[0] && d <= RING_MM[1] {
            s2 += v;
            n2 += 1;
        }
    }
    (n1 > 0 && n2 > 0).then(|| (s1 / n1 as f64) / (s2 / n2 as f64))
}

/// Mean intensity inside the ROI.
pub fn mean_in_roi(img: &Volume, roi: &Volume) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for (v, m) in img.data.iter().zip(roi.data.iter()) {
        if *m > 0.5 {
            s += *v as f64;
            n += 1;
        }
    }
    (n > 0).then(|| s / n as f64)
}

/// ROI volume (mm^3) and centroid (physical LPS mm).
pub fn roi_volume_and_centroid(roi: &Volume) -> (f64, Vec3) {
    let mut c = [0.0; 3];
    let mut n = 0usize;
    for ((i, j, k), &m) in roi.data.indexed_iter() {
        if m > 0.5 {
            c[0] += i as f64;
            c[1] += j as f64;
            c[2] += k as f64;
            n += 1;
        }
    }
    if n == 0 {
        return (0.0, [f64::NAN; 3]);
    }
    let idx = c.map(|x| x / n as f64);
    (n as f64 * roi.spacing.iter().product::<f64>(), roi.index_to_physical(&idx))
}
