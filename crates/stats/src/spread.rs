//! The spread of one metric over repeated runs (a sweep's members, e.g.
//! training seeds): mean, SD (n - 1), range, and the 95% CI of the mean by
//! Student's t, mean +- t(0.975, k - 1) * SD / sqrt(k). The CI describes
//! where the mean over such runs lies, not one run's uncertainty.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::util::mean;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Number of values.
    pub k: usize,
    pub mean: f64,
    /// Sample SD (denominator k - 1); `None` for one value.
    pub sd: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// The 95% CI of the mean (t, k - 1 df); `None` for one value.
    pub ci95: Option<(f64, f64)>,
}

/// The spread of `values`; `None` when there are none or one is not finite.
pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let k = values.len();
    let m = mean(values);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if k == 1 {
        return Some(Spread { k, mean: m, sd: None, min, max, ci95: None });
    }
    let sd = (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1) as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (k - 1) as f64).ok()?.inverse_cdf(0.975);
    let half = t * sd / (k as f64).sqrt();
    Some(Spread { k, mean: m, sd: Some(sd), min, max, ci95: Some((m - half, m + half)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::{f, vf};

    #[test]
    fn matches_scipy() {
        let fx = load_fixture("spread.json");
        for case in fx["cases"].as_array().unwrap() {
            let x = vf(&case["x"]);
            let s = spread(&x).unwrap();
            let name = case["name"].as_str().unwrap();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * b.abs().max(1.0);
            assert!(close(s.mean, f(&case["mean"])) && close(s.min, f(&case["min"])) && close(s.max, f(&case["max"])), "{name}");
            assert!(close(s.sd.unwrap(), f(&case["sd"])), "{name}: sd {:?}", s.sd);
            let (lo, hi) = s.ci95.unwrap();
            assert!(close(lo, f(&case["ci"][0])) && close(hi, f(&case["ci"][1])), "{name}: ci ({lo}, {hi}) vs {}", case["ci"]);
        }
    }

    #[test]
    fn one_value_has_no_sd_and_nothing_or_nan_has_no_spread() {
        let s = spread(&[0.7]).unwrap();
        assert_eq!((s.k, s.sd, s.ci95), (1, None, None));
        assert!(spread(&[]).is_none());
        assert!(spread(&[0.5, f64::NAN]).is_none());
    }
}
