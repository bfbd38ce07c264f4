//! Acquisition: grid geometry (axial, anisotropic, oblique), per-patient intensity
//! scale, smooth multiplicative bias field, Rician noise, and the rigid
//! misregistration of T1WI / T2WI relative to CE-T1WI.

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use crate::synth::presets::ScannerProfile;
use crate::synth::rng::{choose, normal, normal_pair, uniform, SynthRng};
use radpipe_imaging::{euler_matrix, Mat3, Transform, Vec3, Volume};

/// The CE-T1 grid of a patient (T1 / T2 share it; their content is misregistered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridGeometry {
    pub size: [usize; 3],
    pub spacing: Vec3,
    pub origin: Vec3,
    pub direction: Mat3,
    /// Oblique angles of the slice stack (deg, ITK Euler order).
    pub oblique_deg: Vec3,
}

impl GridGeometry {
    /// Draw a grid of `dims` centred near `centre` (field-of-view jitter).
    pub fn sample(rng: &mut SynthRng, scanner: &ScannerProfile, dims: [usize; 3], inplane_factor: f64, centre: Vec3) -> GridGeometry {
        let sp = choose(rng, &scanner.inplane_spacing_mm) * inplane_factor;
        let sz = choose(rng, &scanner.slice_spacing_mm);
        let m = scanner.max_oblique_deg;
        let oblique_deg = [uniform(rng, -m, m), uniform(rng, -m, m) / 3.0, uniform(rng, -m, m) / 3.0];
        let direction = euler_matrix(&oblique_deg.map(f64::to_radians));
        let spacing = [sp, sp, sz];
        let fov = [dims[0] as f64 * sp, dims[1] as f64 * sp, dims[2] as f64 * sz];
        let jitter = [uniform(rng, -0.04, 0.04) * fov[0], uniform(rng, -0.04, 0.04) * fov[1], uniform(rng, -0.05, 0.05) * fov[2]];
        // origin = centre - D * (spacing * (dims-1)/2) + jitter
        let half: Vec3 = [0, 1, 2].map(|a| spacing[a] * (dims[a] as f64 - 1.0) / 2.0);
        let dh = radpipe_imaging::mat_vec(&direction, &half);
        let origin = [0, 1, 2].map(|a| ((centre[a] - dh[a] + 0.5 * jitter[a]) * 100.0).round() / 100.0);
        GridGeometry { size: dims, spacing, origin, direction, oblique_deg }
    }

    pub fn volume(&self, data: Array3<f32>) -> Volume {
        Volume::new(data, self.spacing, self.origin, self.direction).expect("valid synthetic geometry")
    }

    /// Half the in-plane field of view (mm) - the largest neck semi-axis that fits.
    pub fn half_fov_inplane(&self) -> f64 {
        0.5 * (self.size[0] as f64 * self.spacing[0]).min(self.size[1] as f64 * self.spacing[1])
    }
}

/// Per-sequence acquisition values of one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceAcquisition {
    /// Stored intensity of unit signal.
    pub gain: f64,
    /// Bias field log coefficients [x, y, z, xy, x^2, y^2] in units of 100 mm.
    pub bias_coefficients: [f64; 6],
    /// Rician noise sigma (stored units).
    pub noise_sigma: f64,
}

impl SequenceAcquisition {
    pub fn sample(rng: &mut SynthRng, scanner: &ScannerProfile, seq: usize) -> SequenceAcquisition {
        let gain = scanner.gain[seq] * (1.0 + scanner.gain_cv * normal(rng)).max(0.5);
        let a = scanner.bias_amplitude;
        let bias_coefficients = [
            uniform(rng, -a, a),
            uniform(rng, -a, a),
            uniform(rng, -a, a) * 0.5,
            uniform(rng, -a, a) * 0.5,
            uniform(rng, -a, a) * 0.5,
            uniform(rng, -a, a) * 0.5,
        ];
        SequenceAcquisition { gain, bias_coefficients, noise_sigma: scanner.noise[seq] * gain }
    }

    /// Multiplicative bias at physical offset `d` (mm) from the grid centre.
    #[inline]
    pub fn bias(&self, d: &Vec3) -> f64 {
        let (x, y, z) = (d[0] / 100.0, d[1] / 100.0, d[2] / 100.0);
        let c = &self.bias_coefficients;
        (c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * x * x + c[5] * y * y).exp()
    }

    /// Apply gain, bias and Rician noise in place (`vol` holds unit-free signal).
    pub fn acquire(&self, vol: &mut Volume, rng: &mut SynthRng) {
        let centre = vol.center();
        let m = vol.index_to_physical_matrix();
        let o = vol.origin;
        let sigma = self.noise_sigma;
        let [ni, nj, nk] = vol.size();
        let data = vol.data.as_slice_mut().expect("standard layout");
        let mut n = 0usize;
        for i in 0..ni {
            for j in 0..nj {
                let mut d = [0.0; 3];
                for r in 0..3 {
                    d[r] = o[r] + m[r][0] * i as f64 + m[r][1] * j as f64 - centre[r];
                }
                for k in 0..nk {
                    let dk = [d[0] + m[0][2] * k as f64, d[1] + m[1][2] * k as f64, d[2] + m[2][2] * k as f64];
                    let s = data[n] as f64 * self.gain * self.bias(&dk);
                    let (n1, n2) = normal_pair(rng);
                    let re = s + sigma * n1;
                    let im = sigma * n2;
                    data[n] = (re * re + im * im).sqrt().round() as f32;
                    n += 1;
                }
            }
        }
    }
}

/// A small rigid misregistration (what was applied to the moving sequence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misregistration {
    pub angles_deg: Vec3,
    pub translation_mm: Vec3,
    /// Applied when drawing the sequence: its voxel at CE-grid point p shows the
    /// anatomy at `applied(p)` (fixed = the sequence's grid, moving = anatomy).
    pub applied: Transform,
    /// Inverse of `applied`: the transform a registration with fixed = CE-T1 and
    /// moving = this sequence should find (ITK fixed -> moving convention).
    pub ce_to_sequence: Transform,
}

impl Misregistration {
    pub fn sample(rng: &mut SynthRng, centre: Vec3, max_deg: f64, max_mm: f64) -> Misregistration {
        let angles_deg = [0, 1, 2].map(|_| (normal(rng) * max_deg / 2.5).clamp(-max_deg, max_deg));
        let translation_mm = [0, 1, 2].map(|_| (normal(rng) * max_mm / 2.5).clamp(-max_mm, max_mm));
        let r = angles_deg.map(f64::to_radians);
        let applied = Transform::euler(centre, [r[0], r[1], r[2], translation_mm[0], translation_mm[1], translation_mm[2]]);
        let inv = applied.to_affine_map().inverse().expect("rigid transforms invert");
        let ce_to_sequence = Transform::Affine { center: [0.0; 3], matrix: inv.matrix, translation: inv.translation };
        Misregistration { angles_deg, translation_mm, applied, ce_to_sequence }
    }
}
