//! Shared numerical helpers: input validation, midranks, normal quantiles, small dense
//! linear algebra, percentiles and a seeded PRNG (SplitMix64) for resampling.

use super::error::{Result, StatsError};
use statrs::distribution::{ContinuousCDF, Normal};

pub(crate) fn check_len(a: &'static str, len_a: usize, b: &'static str, len_b: usize) -> Result<()> {
    if len_a != len_b {
        return Err(StatsError::LengthMismatch { a, len_a, b, len_b });
    }
    Ok(())
}

pub(crate) fn check_finite(what: &'static str, x: &[f64]) -> Result<()> {
    for (index, &value) in x.iter().enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFinite { what, index, value });
        }
    }
    Ok(())
}

pub(crate) fn check_level(level: f64) -> Result<()> {
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::InvalidParameter { name: "level", reason: format!("confidence level must be in (0, 1), got {level}") });
    }
    Ok(())
}

/// Two-sided normal critical value for a confidence level (0.95 -> 1.959964...).
pub(crate) fn z_crit(level: f64) -> f64 {
    std_normal().inverse_cdf(0.5 + level / 2.0)
}

pub(crate) fn std_normal() -> Normal {
    Normal::standard()
}

/// Upper-tail probability of the standard normal, accurate in the far tail.
pub(crate) fn norm_sf(z: f64) -> f64 {
    std_normal().sf(z)
}

pub(crate) fn chi2_sf(x: f64, df: f64) -> f64 {
    if !(x > 0.0) {
        return 1.0;
    }
    match statrs::distribution::ChiSquared::new(df) {
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}

/// Midranks (1-based average ranks, ties share the mean of their positions), O(n log n).
/// Also returns the sizes of the tie groups (only groups of size > 1).
pub(crate) fn midranks_with_ties(x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let n = x.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; n];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        if j > i {
            ties.push(j - i + 1);
        }
        i = j + 1;
    }
    (ranks, ties)
}

pub(crate) fn midranks(x: &[f64]) -> Vec<f64> {
    midranks_with_ties(x).0
}

pub(crate) fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Percentile with linear interpolation between order statistics (NumPy's default
/// `method="linear"`, R type 7). `sorted` must be ascending and non-empty; q in [0, 1].
pub(crate) fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let h = (n as f64 - 1.0) * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Dense symmetric positive-definite solve/inverse by Cholesky; `a` is row-major p x p.
/// Returns the inverse. Errors if the matrix is not numerically positive definite.
pub(crate) fn spd_inverse(a: &[f64], p: usize, what: &'static str) -> Result<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    let scale = (0..p).map(|i| a[i * p + i].abs()).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if !(s > 1e-13 * scale) {
                    return Err(StatsError::Singular { what });
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    // inverse of L, then inv(A) = inv(L)^T inv(L)
    let mut li = vec![0.0; p * p];
    for i in 0..p {
        li[i * p + i] = 1.0 / l[i * p + i];
        for j in 0..i {
            let mut s = 0.0;
            for k in j..i {
                s -= l[i * p + k] * li[k * p + j];
            }
            li[i * p + j] = s / l[i * p + i];
        }
    }
    let mut inv = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            let mut s = 0.0;
            for k in i.max(j)..p {
                s += li[k * p + i] * li[k * p + j];
            }
            inv[i * p + j] = s;
        }
    }
    Ok(inv)
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, well-tested seeded generator. Chosen so the
/// Python fixture script can replay exactly the same resamples (`stats.py: SplitMix64`).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Index in 0..n by multiply-shift (Lemire); bias below n / 2^64, negligible here.
    pub fn index(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Loads a fixture JSON committed under tests/fixtures/stats/.
#[cfg(test)]
pub(crate) fn load_fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../tests/fixtures/stats/{}", env!("CARGO_MANIFEST_DIR"), name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {path}: {e}"))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixture access and tolerance helpers; each comparison records the worst relative
    //! deviation so the report can quote it (printed with `--nocapture`).
    use serde_json::Value;

    pub fn f(v: &Value) -> f64 {
        match v {
            Value::Null => f64::NAN,
            Value::String(s) if s == "inf" => f64::INFINITY,
            Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
            Value::String(s) if s == "nan" => f64::NAN,
            _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
        }
    }
    pub fn vf(v: &Value) -> Vec<f64> {
        v.as_array().expect("array").iter().map(f).collect()
    }
    pub fn vb(v: &Value) -> Vec<bool> {
        v.as_array().expect("array").iter().map(|x| x.as_bool().unwrap_or_else(|| x.as_f64().expect("bool/num") != 0.0)).collect()
    }
    pub fn vu(v: &Value) -> Vec<usize> {
        v.as_array().expect("array").iter().map(|x| x.as_u64().expect("uint") as usize).collect()
    }
    /// |a - b| <= tol * max(|b|, 1e-300) or both the same infinity/NaN. `tol` is relative,
    /// except that for |b| < 1 it is absolute (so p-values near 0 compare sensibly).
    pub fn close(a: f64, b: f64, tol: f64, what: &str) -> f64 {
        let d = dev(a, b, tol, what);
        println!("DEV {what} {d:.3e}");
        d
    }
    pub fn dev(a: f64, b: f64, tol: f64, what: &str) -> f64 {
        if a.is_nan() && b.is_nan() {
            return 0.0;
        }
        if a.is_infinite() || b.is_infinite() {
            assert_eq!(a, b, "{what}: {a} vs {b}");
            return 0.0;
        }
        let dev = (a - b).abs() / b.abs().max(1.0);
        assert!(dev <= tol, "{what}: got {a}, expected {b} (deviation {dev:.3e} > {tol:.1e})");
        dev
    }
    pub fn close_rel(a: f64, b: f64, tol: f64, what: &str) -> f64 {
        if a.is_nan() && b.is_nan() {
            return 0.0;
        }
        let dev = (a - b).abs() / b.abs().max(1e-300);
        assert!(dev <= tol || (a == b), "{what}: got {a}, expected {b} (rel deviation {dev:.3e} > {tol:.1e})");
        println!("DEV {what} {dev:.3e}");
        dev
    }
    pub fn close_all(a: &[f64], b: &[f64], tol: f64, what: &str) -> f64 {
        assert_eq!(a.len(), b.len(), "{what}: length {} vs {}", a.len(), b.len());
        let mut worst: f64 = 0.0;
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            worst = worst.max(dev(*x, *y, tol, &format!("{what}[{i}]")));
        }
        println!("DEV {what} {worst:.3e}");
        worst
    }
}
