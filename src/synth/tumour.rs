//! The tumour: a lobulated, rotated ellipsoid whose size follows the T stage, placed
//! off-midline in the neck, with sequence-specific appearance (T1 iso/hypo to muscle,
//! T2 hyperintense, CE-T1 enhancing, optional necrotic core) and the label-dependent
//! signal: a peritumoral enhancing rim (mostly outside the ROI), intratumoral texture
//! heterogeneity (both stronger for CPS >= 20), a weaker T2 halo and a slight T1
//! shift.  Size, shape, position and core enhancement do not depend on the label.

use serde::{Deserialize, Serialize};

use crate::synth::anatomy::{inside_weight, Anatomy, Signal};
use crate::synth::rng::{normal, uniform, SynthRng};
use radpipe_imaging::{euler_matrix, mat_transpose, mat_vec, Mat3, Vec3};

/// Label-dependent generative parameters (means for [CPS < 20, CPS >= 20]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalModel {
    /// Peritumoral rim enhancement, as a fraction of the tumour's enhancement.
    pub rim_mean: [f64; 2],
    pub rim_sd: f64,
    /// Amplitude of intratumoral texture (multiplicative, CE-T1; half in T2).
    pub heterogeneity_mean: [f64; 2],
    pub heterogeneity_sd: f64,
    /// Peritumoral T2 halo (oedema), fraction of T2 tumour signal.
    pub t2_halo_mean: [f64; 2],
    pub t2_halo_sd: f64,
    /// T1 tumour signal (muscle = 0.45).
    pub t1_level_mean: [f64; 2],
    pub t1_level_sd: f64,
    /// Label-independent core enhancement (CE-T1) and T2 signal.
    pub enhancement_mean: f64,
    pub enhancement_sd: f64,
    pub t2_level_mean: f64,
    pub t2_level_sd: f64,
    /// Rim profile width (mm), uniform range; centre 0.5 mm outside the boundary.
    pub rim_width_mm: [f64; 2],
    /// Probability of a necrotic core for T3/T4 tumours.
    pub necrosis_probability: f64,
    /// Max tumour diameter (mm) range per T stage T1..T4.
    pub diameter_mm: [[f64; 2]; 4],
}

impl Default for SignalModel {
    fn default() -> Self {
        SignalModel {
            rim_mean: [0.12, 0.36],
            rim_sd: 0.11,
            heterogeneity_mean: [0.10, 0.18],
            heterogeneity_sd: 0.05,
            t2_halo_mean: [0.02, 0.40],
            t2_halo_sd: 0.06,
            t1_level_mean: [0.46, 0.37],
            t1_level_sd: 0.03,
            enhancement_mean: 0.72,
            enhancement_sd: 0.09,
            t2_level_mean: 0.72,
            t2_level_sd: 0.07,
            rim_width_mm: [1.5, 2.5],
            necrosis_probability: 0.3,
            diameter_mm: [[12.0, 20.0], [20.0, 34.0], [30.0, 44.0], [36.0, 54.0]],
        }
    }
}

pub const TEXTURE_N: usize = 9;
const TEXTURE_HALF: f64 = 1.8;

/// One tumour; all lengths mm, points LPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tumour {
    pub centre: Vec3,
    pub semi_axes: Vec3,
    /// Euler angles (deg) of the local frame (rotation = Rz Rx Ry).
    pub angles_deg: Vec3,
    /// Lobulation amplitudes (cos 2az, cos 3az, el cos az, el^2 - 1/3).
    pub lobulation: [f64; 4],
    pub lobulation_phase: [f64; 3],
    pub max_diameter_mm: f64,
    /// Necrotic core radius as a fraction of the boundary (0 = none).
    pub necrosis_fraction: f64,
    pub enhancement: f64,
    pub heterogeneity: f64,
    /// Rim strength after the centre effect (what is drawn).
    pub rim_strength: f64,
    pub rim_width_mm: f64,
    pub t2_halo: f64,
    pub t1_level: f64,
    pub t2_level: f64,
    /// Texture lattice (TEXTURE_N^3 values in [-1, 1]) over [-1.8, 1.8]^3 local units.
    #[serde(skip)]
    pub texture: Vec<f32>,
    #[serde(skip)]
    rot_t: Mat3,
    #[serde(skip)]
    mean_semi: f64,
}

/// What the tumour contributes at a point.
#[derive(Debug, Clone, Copy)]
pub struct TumourSample {
    /// Approximate signed distance to the boundary (mm, negative inside).
    pub d_mm: f64,
    /// Normalised radius (1 on the boundary).
    pub rn: f64,
    pub texture: f64,
}

impl Tumour {
    #[allow(clippy::too_many_arguments)]
    /// Draw a tumour for `label` and `t_stage`, placed inside `anatomy` within the
    /// slab `|z - centre_z| <= z_half` (mm).  `label_effect` scales the
    /// label-dependent part of the rim / texture means (centre effect).
    pub fn sample(
        rng: &mut SynthRng,
        m: &SignalModel,
        label: bool,
        t_stage: u8,
        anatomy: &Anatomy,
        z_half: f64,
        label_effect: f64,
        enhancement_factor: f64,
    ) -> Tumour {
        let l = label as usize;
        let dr = m.diameter_mm[(t_stage.clamp(1, 4) - 1) as usize];
        let diam = uniform(rng, dr[0], dr[1]);
        // semi-axes: the largest is diam/2 (before lobulation), the others 0.6..0.95 of it
        let a = diam / 2.0;
        let mut semi = [a, a * uniform(rng, 0.6, 0.95), a * uniform(rng, 0.6, 0.95)];
        semi[2] = semi[2].min(z_half * 0.8);
        let angles_deg = [uniform(rng, -25.0, 25.0), uniform(rng, -25.0, 25.0), uniform(rng, -90.0, 90.0)];
        let lobulation = [uniform(rng, 0.0, 0.12), uniform(rng, 0.0, 0.10), uniform(rng, -0.1, 0.1), uniform(rng, -0.1, 0.1)];
        let lobulation_phase = [uniform(rng, 0.0, std::f64::consts::TAU), uniform(rng, 0.0, std::f64::consts::TAU), uniform(rng, 0.0, std::f64::consts::TAU)];
        let lab = |mean: [f64; 2], f: f64| mean[0] + f * (mean[1] - mean[0]) * l as f64;
        let rim_strength = (lab(m.rim_mean, label_effect) + m.rim_sd * normal(rng)).max(0.0);
        let heterogeneity = (lab(m.heterogeneity_mean, label_effect) + m.heterogeneity_sd * normal(rng)).max(0.02);
        let t2_halo = (lab(m.t2_halo_mean, 1.0) + m.t2_halo_sd * normal(rng)).max(0.0);
        let t1_level = lab(m.t1_level_mean, 1.0) + m.t1_level_sd * normal(rng);
        let enhancement = (m.enhancement_mean + m.enhancement_sd * normal(rng)).max(0.3) * enhancement_factor;
        let t2_level = m.t2_level_mean + m.t2_level_sd * normal(rng);
        let rim_width_mm = uniform(rng, m.rim_width_mm[0], m.rim_width_mm[1]);
        let necrosis_fraction = if t_stage >= 3 && uniform(rng, 0.0, 1.0) < m.necrosis_probability { uniform(rng, 0.25, 0.5) } else { 0.0 };
        let texture: Vec<f32> = (0..TEXTURE_N.pow(3)).map(|_| uniform(rng, -1.0, 1.0) as f32).collect();
        // position: off-midline, antero-lateral to the vertebra, inside the neck
        let reach = semi.iter().cloned().fold(0.0, f64::max) * 1.15 + 3.0 * rim_width_mm;
        let side = if uniform(rng, 0.0, 1.0) < 0.5 { -1.0 } else { 1.0 };
        let [ax, ay] = anatomy.neck_semi;
        let mut centre = anatomy.centre;
        for attempt in 0..200 {
            let shrink = 1.0 - attempt as f64 / 250.0;
            let c = [
                anatomy.centre[0] + side * uniform(rng, 0.05, 0.45) * ax * shrink,
                anatomy.centre[1] + uniform(rng, -0.55, 0.05) * ay * shrink,
                anatomy.centre[2] + uniform(rng, -1.0, 1.0) * (z_half - semi[2] - 3.0).max(0.0) * 0.5,
            ];
            // keep the tumour and its rim inside the neck, away from the skin
            let ok_x = (c[0] - anatomy.centre[0]).abs() + reach < ax * 0.92 - 6.0;
            let ok_y = (c[1] - anatomy.centre[1]).abs() + reach < ay * 0.92 - 6.0;
            let ok_in = anatomy.neck_distance(&c) + reach < -8.0;
            if (ok_x && ok_y && ok_in) || attempt == 199 {
                centre = c;
                break;
            }
        }
        let mut t = Tumour {
            centre,
            semi_axes: semi,
            angles_deg,
            lobulation,
            lobulation_phase,
            max_diameter_mm: diam,
            necrosis_fraction,
            enhancement,
            heterogeneity,
            rim_strength,
            rim_width_mm,
            t2_halo,
            t1_level,
            t2_level,
            texture,
            rot_t: [[0.0; 3]; 3],
            mean_semi: 0.0,
        };
        // If the tumour still does not fit (tiny necks), scale it down to fit.
        let room = -anatomy.neck_distance(&t.centre) - 8.0;
        let reach_now = t.semi_axes.iter().cloned().fold(0.0, f64::max) * 1.15 + 3.0 * rim_width_mm;
        if room < reach_now {
            let f = (room - 3.0 * rim_width_mm).max(4.0) / (reach_now - 3.0 * rim_width_mm);
            for s in t.semi_axes.iter_mut() {
                *s *= f.min(1.0);
            }
            t.max_diameter_mm *= f.min(1.0);
        }
        t.prepare();
        t
    }

    /// Recompute cached values (after deserialising or editing).
    pub fn prepare(&mut self) {
        let r = self.angles_deg.map(f64::to_radians);
        self.rot_t = mat_transpose(&euler_matrix(&r));
        self.mean_semi = (self.semi_axes[0] * self.semi_axes[1] * self.semi_axes[2]).cbrt();
    }

    /// Farthest distance (mm) from the centre at which the tumour or its rim/halo
    /// changes the image.
    pub fn influence_radius(&self) -> f64 {
        self.semi_axes.iter().cloned().fold(0.0, f64::max) * 1.35 + 4.0 * self.rim_width_mm.max(3.0) + 2.0
    }

    fn texture_at(&self, q: &Vec3) -> f64 {
        let n = TEXTURE_N;
        let mut idx = [0usize; 3];
        let mut fr = [0.0; 3];
        for a in 0..3 {
            let u = ((q[a] + TEXTURE_HALF) / (2.0 * TEXTURE_HALF) * (n - 1) as f64).clamp(0.0, (n - 1) as f64 - 1e-9);
            idx[a] = u.floor() as usize;
            fr[a] = u - idx[a] as f64;
        }
        let at = |i: usize, j: usize, k: usize| self.texture[(i * n + j) * n + k] as f64;
        let mut v = 0.0;
        for (di, wi) in [(0, 1.0 - fr[0]), (1, fr[0])] {
            for (dj, wj) in [(0, 1.0 - fr[1]), (1, fr[1])] {
                for (dk, wk) in [(0, 1.0 - fr[2]), (1, fr[2])] {
                    v += wi * wj * wk * at(idx[0] + di, idx[1] + dj, idx[2] + dk);
                }
            }
        }
        v
    }

    /// Geometry at `p`, or `None` beyond the influence radius.
    pub fn sample_at(&self, p: &Vec3) -> Option<TumourSample> {
        let d = [p[0] - self.centre[0], p[1] - self.centre[1], p[2] - self.centre[2]];
        let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        let infl = self.influence_radius();
        if r2 > infl * infl {
            return None;
        }
        let local = mat_vec(&self.rot_t, &d);
        let q = [local[0] / self.semi_axes[0], local[1] / self.semi_axes[1], local[2] / self.semi_axes[2]];
        let r = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt();
        let (az, el) = if r > 1e-9 { (q[1].atan2(q[0]), q[2] / r) } else { (0.0, 0.0) };
        let lb = &self.lobulation;
        let ph = &self.lobulation_phase;
        let surf = 1.0 + lb[0] * (2.0 * az + ph[0]).cos() + lb[1] * (3.0 * az + ph[1]).cos() + lb[2] * el * (az + ph[2]).cos() + lb[3] * (el * el - 1.0 / 3.0);
        let rn = r / surf.max(0.5);
        Some(TumourSample { d_mm: (rn - 1.0) * self.mean_semi, rn, texture: self.texture_at(&q) })
    }

    /// Is `p` inside the ROI (tumour boundary)?
    pub fn inside(&self, p: &Vec3) -> bool {
        self.sample_at(p).is_some_and(|s| s.d_mm < 0.0)
    }

    /// Modify the anatomical signal `v` at a point with tumour sample `s`.
    pub fn apply(&self, v: &mut Signal, s: &TumourSample) {
        let tex = s.texture;
        let tissue = (v[0] / 0.2).clamp(0.0, 1.0); // no rim / halo in air
                                                   // peritumoral effects (drawn on the surrounding tissue, before the tumour)
        if s.d_mm > -2.0 {
            let x = (s.d_mm - 0.5) / self.rim_width_mm;
            let g = (-x * x).exp();
            v[2] += tissue * self.rim_strength * self.enhancement * g * (1.0 + 0.3 * tex);
            if s.d_mm > 0.0 {
                let h = (-s.d_mm / 3.0).exp();
                v[1] += tissue * self.t2_halo * self.t2_level * h;
                v[0] -= tissue * 0.3 * self.t2_halo * v[0] * h;
            }
        }
        let w = inside_weight(s.d_mm / 0.8);
        if w > 0.0 {
            let mut t: Signal = [
                self.t1_level * (1.0 + 0.2 * self.heterogeneity * tex),
                self.t2_level * (1.0 + 0.5 * self.heterogeneity * tex),
                self.enhancement * (1.0 + self.heterogeneity * tex),
            ];
            if self.necrosis_fraction > 0.0 {
                let wn = ((self.necrosis_fraction - s.rn) / 0.1 + 0.5).clamp(0.0, 1.0);
                t[0] += wn * (0.30 - t[0]);
                t[1] += wn * (0.95 - t[1]);
                t[2] += wn * (0.2 * self.enhancement - t[2]);
            }
            // the rim's inner part stays visible inside the boundary
            let x = (s.d_mm - 0.5) / self.rim_width_mm;
            t[2] += self.rim_strength * self.enhancement * (-x * x).exp() * (1.0 + 0.3 * tex);
            for c in 0..3 {
                v[c] += w * (t[c] - v[c]);
            }
        }
    }
}
