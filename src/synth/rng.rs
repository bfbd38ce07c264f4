//! Seeding and small sampling helpers (ChaCha8, one stream per cohort / patient).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type SynthRng = ChaCha8Rng;

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Independent stream for `(seed, a, b)`: e.g. (seed, cohort, patient).
pub fn stream(seed: u64, a: u64, b: u64) -> SynthRng {
    let s = splitmix(splitmix(splitmix(seed) ^ a.wrapping_mul(0xA24B_AED4_963E_E407)) ^ b);
    ChaCha8Rng::seed_from_u64(s)
}

pub fn uniform(rng: &mut SynthRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Standard normal (Box-Muller, one value per call).
pub fn normal(rng: &mut SynthRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Pair of independent standard normals (Marsaglia polar method, no trigonometry).
#[inline]
pub fn normal_pair(rng: &mut SynthRng) -> (f64, f64) {
    loop {
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let v = 2.0 * rng.random::<f64>() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let f = (-2.0 * s.ln() / s).sqrt();
            return (u * f, v * f);
        }
    }
}

pub fn choose<T: Copy>(rng: &mut SynthRng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

/// Fisher-Yates shuffle.
pub fn shuffle<T>(rng: &mut SynthRng, xs: &mut [T]) {
    for i in (1..xs.len()).rev() {
        let j = rng.random_range(0..=i);
        xs.swap(i, j);
    }
}

/// Split `n` into integer counts proportional to `weights` (largest remainder,
/// ties to the lower index), so the counts sum to `n` exactly.
pub fn apportion(n: usize, weights: &[u32]) -> Vec<usize> {
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    if total == 0 {
        let mut v = vec![0; weights.len()];
        if let Some(first) = v.first_mut() {
            *first = n;
        }
        return v;
    }
    let quotas: Vec<f64> = weights.iter().map(|&w| n as f64 * w as f64 / total as f64).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut left = n - counts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = quotas[a] - quotas[a].floor();
        let fb = quotas[b] - quotas[b].floor();
        fb.partial_cmp(&fa).unwrap().then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

/// A shuffled vector of category indices with exactly the apportioned counts.
pub fn exact_categories(rng: &mut SynthRng, n: usize, weights: &[u32]) -> Vec<usize> {
    let counts = apportion(n, weights);
    let mut v: Vec<usize> = counts.iter().enumerate().flat_map(|(i, &c)| std::iter::repeat_n(i, c)).collect();
    shuffle(rng, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_sums_and_matches_reference() {
        assert_eq!(apportion(382, &[42, 163, 177]), vec![42, 163, 177]);
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(7, &[0, 3, 4]).iter().sum::<usize>(), 7);
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: f64 = stream(1, 2, 3).random();
        let b: f64 = stream(1, 2, 3).random();
        let c: f64 = stream(1, 2, 4).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = stream(5, 0, 0);
        let xs: Vec<f64> = (0..20000).map(|_| normal(&mut r)).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.04, "{m} {v}");
    }
}
