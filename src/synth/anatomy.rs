//! Head-and-neck-like anatomy: an axial neck outline with subcutaneous fat, airway,
//! vertebral body and spinal canal, sternocleidomastoid / paraspinal / prevertebral
//! muscles, parapharyngeal fat and carotid / jugular vessels.  Structures are 2D
//! ellipses swept along z (the neck tapers slowly) and composited with a ~1 mm
//! partial-volume ramp.  Tissue signals are unit-free, per sequence [T1, T2, CE-T1
//! (fat-saturated)].

use serde::{Deserialize, Serialize};

use crate::synth::rng::{normal, uniform, SynthRng};
use radpipe_imaging::Vec3;

/// Unit-free tissue signal [T1, T2, CE-T1 fat-sat].
pub type Signal = [f64; 3];

pub const AIR: Signal = [0.0, 0.0, 0.0];
pub const FAT: Signal = [1.0, 0.85, 0.15];
pub const SOFT_TISSUE: Signal = [0.50, 0.45, 0.50];
pub const MUSCLE: Signal = [0.45, 0.30, 0.38];
pub const MARROW: Signal = [0.75, 0.50, 0.35];
pub const CSF_CORD: Signal = [0.25, 0.95, 0.22];
pub const VESSEL: Signal = [0.12, 0.10, 0.95];
pub const AIRWAY: Signal = [0.02, 0.02, 0.02];

/// An ellipse in the axial plane, relative to the neck centre (mm, LPS x/y),
/// scaled with the neck outline along z.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ellipse2 {
    pub centre: [f64; 2],
    pub semi: [f64; 2],
    /// In-plane rotation (rad).
    pub angle: f64,
}

impl Ellipse2 {
    /// Approximate signed distance (mm, negative inside) of an in-plane point.
    #[inline]
    fn signed_distance(&self, x: f64, y: f64, s: f64) -> f64 {
        let dx = x - self.centre[0] * s;
        let dy = y - self.centre[1] * s;
        // far away: a cheap lower bound on the distance is enough
        let reach = self.semi[0].max(self.semi[1]) * s;
        if dx.abs() > reach + 2.0 || dy.abs() > reach + 2.0 {
            return 2.0;
        }
        let (sn, cs) = self.angle.sin_cos();
        let u = (cs * dx + sn * dy) / (self.semi[0] * s);
        let v = (-sn * dx + cs * dy) / (self.semi[1] * s);
        ((u * u + v * v).sqrt() - 1.0) * self.semi[0].min(self.semi[1]) * s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    pub name: String,
    pub shape: Ellipse2,
    pub signal: Signal,
}

/// One patient's neck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anatomy {
    /// Neck centre (LPS mm).
    pub centre: Vec3,
    /// Outline semi-axes (x = left-right, y = antero-posterior), mm, at z = centre.
    pub neck_semi: [f64; 2],
    /// Fractional growth of every in-plane size per 100 mm towards the feet.
    pub taper_per_100mm: f64,
    pub subcutaneous_fat_mm: f64,
    /// Drawn in order over soft tissue.
    pub structures: Vec<Structure>,
}

/// Partial-volume weight of a signed distance (1 inside, 0 outside, ~1 mm ramp).
#[inline]
pub fn inside_weight(d_mm: f64) -> f64 {
    (0.5 - d_mm).clamp(0.0, 1.0)
}

#[inline]
fn lerp(a: &mut Signal, b: &Signal, w: f64) {
    if w > 0.0 {
        for s in 0..3 {
            a[s] += w * (b[s] - a[s]);
        }
    }
}

impl Anatomy {
    /// Draw a neck no wider than `max_semi_x` and no deeper than `max_semi_y` (mm).
    pub fn sample(rng: &mut SynthRng, centre: Vec3, max_semi: [f64; 2]) -> Anatomy {
        let ax = uniform(rng, 52.0, 64.0).min(max_semi[0]);
        let ay = uniform(rng, 44.0, 54.0).min(max_semi[1]);
        let j = |rng: &mut SynthRng, sd: f64| sd * normal(rng);
        let mut st = Vec::new();
        let mut add = |name: &str, c: [f64; 2], semi: [f64; 2], angle: f64, signal: Signal| {
            st.push(Structure { name: name.into(), shape: Ellipse2 { centre: c, semi, angle }, signal })
        };
        // prevertebral muscle band and paraspinal muscles (posterior = +y)
        add("prevertebral_muscle", [0.0, 0.10 * ay], [0.32 * ax, 0.12 * ay], 0.0, MUSCLE);
        for side in [-1.0, 1.0] {
            add("paraspinal_muscle", [side * (0.28 * ax + j(rng, 1.0)), 0.62 * ay + j(rng, 1.0)], [0.22 * ax, 0.26 * ay], side * 0.3, MUSCLE);
            add(
                "sternocleidomastoid",
                [side * (0.68 * ax + j(rng, 1.5)), -0.05 * ay + j(rng, 2.0)],
                [0.10 * ax + j(rng, 0.5).abs(), 0.30 * ay],
                side * (0.5 + j(rng, 0.1)),
                MUSCLE,
            );
            add("parapharyngeal_fat", [side * 0.30 * ax, -0.12 * ay + j(rng, 1.0)], [0.09 * ax, 0.14 * ay], 0.0, FAT);
            add("carotid", [side * (0.42 * ax + j(rng, 1.0)), 0.02 * ay + j(rng, 1.0)], [3.0 + j(rng, 0.3).abs(), 3.0], 0.0, VESSEL);
            add("jugular", [side * (0.52 * ax + j(rng, 1.0)), 0.06 * ay], [4.5 + j(rng, 0.8).abs(), 3.5], 0.0, VESSEL);
        }
        add("vertebral_body", [0.0, 0.30 * ay], [13.0, 11.0], 0.0, MARROW);
        add("spinal_canal", [0.0, 0.56 * ay], [8.0, 6.5], 0.0, CSF_CORD);
        add("airway", [j(rng, 1.5), -0.30 * ay + j(rng, 1.5)], [uniform(rng, 8.0, 12.0), uniform(rng, 6.0, 9.0)], j(rng, 0.1), AIRWAY);
        Anatomy { centre, neck_semi: [ax, ay], taper_per_100mm: uniform(rng, 0.05, 0.15), subcutaneous_fat_mm: uniform(rng, 4.0, 9.0), structures: st }
    }

    #[inline]
    fn scale_at(&self, z: f64) -> f64 {
        // feet = -z in LPS: the neck widens towards the shoulders
        1.0 - self.taper_per_100mm * (z - self.centre[2]) / 100.0
    }

    /// Signed distance (mm) to the skin outline at physical point `p`.
    pub fn neck_distance(&self, p: &Vec3) -> f64 {
        let s = self.scale_at(p[2]);
        Ellipse2 { centre: [0.0, 0.0], semi: self.neck_semi, angle: 0.0 }.signed_distance(p[0] - self.centre[0], p[1] - self.centre[1], s)
    }

    /// Is `p` inside the neck (skin outline)?
    pub fn inside_neck(&self, p: &Vec3) -> bool {
        self.neck_distance(p) < 0.0
    }

    /// Tissue signal at `p` (without tumour).
    pub fn signal(&self, p: &Vec3) -> Signal {
        let s = self.scale_at(p[2]);
        let x = p[0] - self.centre[0];
        let y = p[1] - self.centre[1];
        let outline = Ellipse2 { centre: [0.0, 0.0], semi: self.neck_semi, angle: 0.0 };
        let d = outline.signed_distance(x, y, s);
        let mut v = AIR;
        let w = inside_weight(d);
        if w <= 0.0 {
            return v;
        }
        lerp(&mut v, &FAT, w);
        lerp(&mut v, &SOFT_TISSUE, inside_weight(d + self.subcutaneous_fat_mm));
        for st in &self.structures {
            let d = st.shape.signed_distance(x, y, s);
            if d < 0.6 {
                lerp(&mut v, &st.signal, inside_weight(d));
            }
        }
        v
    }

    /// The airway, vertebral body and spinal canal (regions a tumour must avoid).
    pub fn is_excluded(&self, p: &Vec3, margin_mm: f64) -> bool {
        let s = self.scale_at(p[2]);
        let x = p[0] - self.centre[0];
        let y = p[1] - self.centre[1];
        self.structures
            .iter()
            .filter(|st| matches!(st.name.as_str(), "airway" | "vertebral_body" | "spinal_canal"))
            .any(|st| st.shape.signed_distance(x, y, s) < margin_mm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::stream;

    #[test]
    fn neck_layout() {
        let mut rng = stream(1, 2, 3);
        let a = Anatomy::sample(&mut rng, [0.0, 0.0, 0.0], [80.0, 80.0]);
        assert_eq!(a.signal(&[200.0, 0.0, 0.0]), AIR);
        let airway = a.structures.iter().find(|s| s.name == "airway").unwrap().shape.centre;
        assert!(a.signal(&[airway[0], airway[1], 0.0])[1] < 0.05);
        // subcutaneous fat bright on T1 just inside the skin
        let edge = a.neck_semi[0] - 2.0;
        assert!(a.signal(&[0.0, -a.neck_semi[1] + 2.0, 0.0])[0] > 0.9, "{:?}", a.signal(&[edge, 0.0, 0.0]));
        assert!(a.inside_neck(&[0.0, 0.0, 0.0]) && !a.inside_neck(&[0.0, 70.0, 0.0]));
    }
}
