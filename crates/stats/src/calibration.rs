//! Calibration of predicted probabilities: Brier score, binned calibration curve,
//! Hosmer-Lemeshow test, and calibration intercept/slope by logistic recalibration
//! (Newton-Raphson on logit(p)).

use super::error::{Result, StatsError};
use super::util::{check_len, check_level, chi2_sf, norm_sf, percentile_sorted, spd_inverse, z_crit};
use serde::{Deserialize, Serialize};

fn check_probs(probs: &[f64], labels: &[bool], open: bool) -> Result<()> {
    check_len("probabilities", probs.len(), "labels", labels.len())?;
    if probs.is_empty() {
        return Err(StatsError::Empty { what: "probabilities" });
    }
    for (index, &value) in probs.iter().enumerate() {
        let ok = if open { value > 0.0 && value < 1.0 } else { (0.0..=1.0).contains(&value) };
        if !ok {
            let range = if open { "(0, 1)" } else { "[0, 1]" };
            return Err(StatsError::ProbabilityOutOfRange { index, value, range });
        }
    }
    Ok(())
}

/// Mean squared difference between probability and outcome (`sklearn.metrics.brier_score_loss`).
pub fn brier_score(probs: &[f64], labels: &[bool]) -> Result<f64> {
    check_probs(probs, labels, false)?;
    Ok(probs.iter().zip(labels).map(|(&p, &y)| (p - y as u8 as f64).powi(2)).sum::<f64>() / probs.len() as f64)
}

/// How bin edges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinStrategy {
    /// `n_bins` equal-width bins on [0, 1].
    Uniform,
    /// Edges at the quantiles of the predictions (linear interpolation).
    Quantile,
}

/// One non-empty bin of a calibration curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower_edge: f64,
    pub upper_edge: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_fraction: f64,
}

/// Calibration curve as `sklearn.calibration.calibration_curve`: a prediction p goes to the bin
/// i with edge[i] < p <= edge[i+1] (the first bin also takes p == edge[0]); empty bins dropped.
pub fn calibration_curve(probs: &[f64], labels: &[bool], n_bins: usize, strategy: BinStrategy) -> Result<Vec<CalibrationBin>> {
    check_probs(probs, labels, false)?;
    if n_bins == 0 {
        return Err(StatsError::InvalidParameter { name: "n_bins", reason: "must be at least 1".into() });
    }
    let edges: Vec<f64> = match strategy {
        // as numpy.linspace(0, 1, n_bins + 1): i * (1 / n_bins), last edge exactly 1
        BinStrategy::Uniform => (0..=n_bins).map(|i| if i == n_bins { 1.0 } else { i as f64 * (1.0 / n_bins as f64) }).collect(),
        BinStrategy::Quantile => {
            let mut s = probs.to_vec();
            s.sort_by(|a, b| a.total_cmp(b));
            (0..=n_bins).map(|i| percentile_sorted(&s, i as f64 / n_bins as f64)).collect()
        }
    };
    let inner = &edges[1..n_bins];
    let mut sum_p = vec![0.0; n_bins];
    let mut sum_y = vec![0.0; n_bins];
    let mut cnt = vec![0usize; n_bins];
    for (&p, &y) in probs.iter().zip(labels) {
        let b = inner.partition_point(|&e| e < p); // numpy searchsorted(side="left")
        sum_p[b] += p;
        sum_y[b] += y as u8 as f64;
        cnt[b] += 1;
    }
    Ok((0..n_bins)
        .filter(|&b| cnt[b] > 0)
        .map(|b| CalibrationBin {
            lower_edge: edges[b],
            upper_edge: edges[b + 1],
            count: cnt[b],
            mean_predicted: sum_p[b] / cnt[b] as f64,
            observed_fraction: sum_y[b] / cnt[b] as f64,
        })
        .collect())
}

/// Hosmer-Lemeshow goodness-of-fit result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HosmerLemeshow {
    pub statistic: f64,
    pub df: usize,
    pub p_value: f64,
    /// Non-empty risk groups used.
    pub n_groups: usize,
}

/// Hosmer-Lemeshow test over `groups` risk groups, as R's `ResourceSelection::hoslem.test`:
/// breaks at the quantiles of p (type 7), duplicate breaks removed, intervals (a, b] with the
/// lowest included; statistic = sum over groups and both outcomes of (O - E)^2 / E.
/// Documented difference: df = (number of non-empty groups) - 2, not requested groups - 2.
pub fn hosmer_lemeshow(probs: &[f64], labels: &[bool], groups: usize) -> Result<HosmerLemeshow> {
    check_probs(probs, labels, false)?;
    if groups < 3 {
        return Err(StatsError::InvalidParameter { name: "groups", reason: format!("need at least 3, got {groups}") });
    }
    let mut s = probs.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mut breaks: Vec<f64> = (0..=groups).map(|i| percentile_sorted(&s, i as f64 / groups as f64)).collect();
    breaks.dedup();
    let k = breaks.len().saturating_sub(1).max(1);
    let (mut o1, mut e1, mut nn) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    for (&p, &y) in probs.iter().zip(labels) {
        // interval index: first b with p <= breaks[b+1]; lowest value goes to group 0
        let g = if breaks.len() < 2 { 0 } else { breaks[1..].partition_point(|&e| e < p).min(k - 1) };
        o1[g] += y as u8 as f64;
        e1[g] += p;
        nn[g] += 1.0;
    }
    let mut stat = 0.0;
    let mut used = 0;
    for g in 0..k {
        if nn[g] == 0.0 {
            continue;
        }
        used += 1;
        let (o0, e0) = (nn[g] - o1[g], nn[g] - e1[g]);
        stat += (o1[g] - e1[g]).powi(2) / e1[g] + (o0 - e0).powi(2) / e0;
    }
    if used < 3 {
        return Err(StatsError::TooFew { what: "Hosmer-Lemeshow distinct risk groups", needed: 3, got: used });
    }
    let df = used - 2;
    Ok(HosmerLemeshow { statistic: stat, df, p_value: chi2_sf(stat, df as f64), n_groups: used })
}

/// Maximum-likelihood logistic regression by Newton-Raphson. `cols` are the design columns
/// (include a column of ones for an intercept), `offset` a fixed linear-predictor term.
/// Returns (coefficients, covariance = inverse observed information, log-likelihood).
pub(crate) fn logistic_fit(cols: &[Vec<f64>], offset: Option<&[f64]>, y: &[bool]) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    let p = cols.len();
    let n = y.len();
    let mut beta = vec![0.0; p];
    let loglik = |beta: &[f64]| -> f64 {
        (0..n)
            .map(|i| {
                let eta = offset.map_or(0.0, |o| o[i]) + (0..p).map(|j| cols[j][i] * beta[j]).sum::<f64>();
                // log(1 + e^eta) computed stably
                let l1pe = if eta > 0.0 { eta + (-eta).exp().ln_1p() } else { eta.exp().ln_1p() };
                if y[i] {
                    eta - l1pe
                } else {
                    -l1pe
                }
            })
            .sum()
    };
    let mut ll = loglik(&beta);
    for iter in 0..100 {
        let mut grad = vec![0.0; p];
        let mut info = vec![0.0; p * p];
        for i in 0..n {
            let eta = offset.map_or(0.0, |o| o[i]) + (0..p).map(|j| cols[j][i] * beta[j]).sum::<f64>();
            let mu = 1.0 / (1.0 + (-eta).exp());
            let w = mu * (1.0 - mu);
            let r = y[i] as u8 as f64 - mu;
            for a in 0..p {
                grad[a] += cols[a][i] * r;
                for b in 0..p {
                    info[a * p + b] += w * cols[a][i] * cols[b][i];
                }
            }
        }
        let inv = spd_inverse(&info, p, "logistic recalibration information matrix")?;
        let step: Vec<f64> = (0..p).map(|a| (0..p).map(|b| inv[a * p + b] * grad[b]).sum()).collect();
        // step halving keeps the likelihood increasing
        let mut t = 1.0;
        let mut newb: Vec<f64>;
        let mut newll;
        loop {
            newb = (0..p).map(|a| beta[a] + t * step[a]).collect();
            newll = loglik(&newb);
            if newll >= ll - 1e-12 * ll.abs() || t < 1e-8 {
                break;
            }
            t /= 2.0;
        }
        let change = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
        beta = newb;
        ll = newll;
        if beta.iter().any(|b| b.abs() > 1e6) {
            return Err(StatsError::NotConverged { what: "logistic recalibration (perfect separation?)", iterations: iter + 1 });
        }
        if change < 1e-12 * (1.0 + beta.iter().map(|b| b.abs()).fold(0.0, f64::max)) {
            // final covariance at the solution
            let mut info = vec![0.0; p * p];
            for i in 0..n {
                let eta = offset.map_or(0.0, |o| o[i]) + (0..p).map(|j| cols[j][i] * beta[j]).sum::<f64>();
                let mu = 1.0 / (1.0 + (-eta).exp());
                for a in 0..p {
                    for b in 0..p {
                        info[a * p + b] += mu * (1.0 - mu) * cols[a][i] * cols[b][i];
                    }
                }
            }
            let cov = spd_inverse(&info, p, "logistic recalibration information matrix")?;
            return Ok((beta, cov, ll));
        }
    }
    Err(StatsError::NotConverged { what: "logistic recalibration", iterations: 100 })
}

/// Calibration intercept and slope of predicted probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFit {
    /// Calibration-in-the-large: a in logit P(y) = a + offset(logit p). Ideal 0.
    pub intercept: f64,
    pub intercept_se: f64,
    pub intercept_lower: f64,
    pub intercept_upper: f64,
    pub intercept_p: f64,
    /// b in logit P(y) = c + b logit p. Ideal 1.
    pub slope: f64,
    pub slope_se: f64,
    pub slope_lower: f64,
    pub slope_upper: f64,
    /// Wald p-value for H0: slope = 1.
    pub slope_p: f64,
    /// The intercept c of the slope model (not the calibration intercept).
    pub slope_model_intercept: f64,
    pub level: f64,
}

/// Logistic recalibration (Cox 1958; Van Calster et al. 2016): probabilities must lie in (0, 1).
pub fn calibration_intercept_slope(probs: &[f64], labels: &[bool], level: f64) -> Result<CalibrationFit> {
    check_probs(probs, labels, true)?;
    check_level(level)?;
    let (np, nn) = (labels.iter().filter(|&&y| y).count(), labels.iter().filter(|&&y| !y).count());
    if np == 0 || nn == 0 {
        return Err(StatsError::OneClass { positives: np, negatives: nn });
    }
    let lp: Vec<f64> = probs.iter().map(|&p| (p / (1.0 - p)).ln()).collect();
    let ones = vec![1.0; probs.len()];
    let (a, acov, _) = logistic_fit(std::slice::from_ref(&ones), Some(&lp), labels)?;
    let (b, bcov, _) = logistic_fit(&[ones, lp], None, labels)?;
    let z = z_crit(level);
    let ase = acov[0].sqrt();
    let bse = bcov[3].sqrt();
    Ok(CalibrationFit {
        intercept: a[0],
        intercept_se: ase,
        intercept_lower: a[0] - z * ase,
        intercept_upper: a[0] + z * ase,
        intercept_p: 2.0 * norm_sf((a[0] / ase).abs()),
        slope: b[1],
        slope_se: bse,
        slope_lower: b[1] - z * bse,
        slope_upper: b[1] + z * bse,
        slope_p: 2.0 * norm_sf(((b[1] - 1.0) / bse).abs()),
        slope_model_intercept: b[0],
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn calibration_matches_sklearn_and_numpy_references() {
        let fx = load_fixture("calibration.json");
        let p = vf(&fx["probs"]);
        let y = vb(&fx["labels"]);
        close(brier_score(&p, &y).unwrap(), f(&fx["brier"]), 1e-12, "cal brier");
        for (key, strat) in [("uniform", BinStrategy::Uniform), ("quantile", BinStrategy::Quantile)] {
            let bins = calibration_curve(&p, &y, 10, strat).unwrap();
            let mp: Vec<f64> = bins.iter().map(|b| b.mean_predicted).collect();
            let of: Vec<f64> = bins.iter().map(|b| b.observed_fraction).collect();
            close_all(&mp, &vf(&fx["curve"][key]["prob_pred"]), 1e-12, &format!("cal curve {key} pred"));
            close_all(&of, &vf(&fx["curve"][key]["prob_true"]), 1e-12, &format!("cal curve {key} true"));
        }
        // Sparse predictions: uniform bins with empty bins dropped, and predictions lying
        // exactly on bin edges (they belong to the lower bin).
        let ps = vf(&fx["sparse"]["probs"]);
        let ys = vb(&fx["sparse"]["labels"]);
        let bins = calibration_curve(&ps, &ys, 10, BinStrategy::Uniform).unwrap();
        let mp: Vec<f64> = bins.iter().map(|b| b.mean_predicted).collect();
        close_all(&mp, &vf(&fx["sparse"]["prob_pred"]), 1e-12, "cal sparse pred");
        let hl = hosmer_lemeshow(&p, &y, 10).unwrap();
        close(hl.statistic, f(&fx["hl"]["statistic"]), 1e-10, "cal hl stat");
        close(hl.p_value, f(&fx["hl"]["p"]), 1e-10, "cal hl p");
        assert_eq!(hl.df, fx["hl"]["df"].as_u64().unwrap() as usize);
        let c = calibration_intercept_slope(&p, &y, 0.95).unwrap();
        // Reference: an independent NumPy Newton-Raphson fit (the generator asserts it agrees
        // with sklearn LogisticRegression(penalty=None) to 1e-5, lbfgs's own tolerance).
        close(c.slope, f(&fx["recal"]["slope"]), 1e-9, "cal slope");
        close(c.slope_model_intercept, f(&fx["recal"]["slope_intercept"]), 1e-9, "cal slope-model intercept");
        close(c.slope_se, f(&fx["recal"]["slope_se"]), 1e-9, "cal slope se");
        // and against sklearn directly, at lbfgs's stopping tolerance
        close(c.slope, f(&fx["recal"]["sklearn_slope"]), 1e-5, "cal slope vs sklearn");
        close(c.intercept, f(&fx["recal"]["intercept"]), 1e-9, "cal intercept");
        close(c.intercept_se, f(&fx["recal"]["intercept_se"]), 1e-9, "cal intercept se");
    }

    #[test]
    fn perfectly_calibrated_probabilities_give_identity_recalibration() {
        // Outcomes constructed so each probability level is matched exactly by its event rate.
        let mut p = Vec::new();
        let mut y = Vec::new();
        for (prob, k, n) in [(0.2, 1, 5), (0.5, 2, 4), (0.75, 3, 4)] {
            for i in 0..n {
                p.push(prob);
                y.push(i < k);
            }
        }
        let c = calibration_intercept_slope(&p, &y, 0.95).unwrap();
        assert!(c.intercept.abs() < 1e-10 && (c.slope - 1.0).abs() < 1e-10 && c.slope_model_intercept.abs() < 1e-10, "{c:?}");
        assert!(matches!(calibration_intercept_slope(&[0.0, 0.5], &[true, false], 0.95), Err(StatsError::ProbabilityOutOfRange { index: 0, .. })));
    }
}
