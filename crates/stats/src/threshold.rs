//! Operating points: Youden-optimal threshold and the 2x2 metrics at a threshold, each
//! proportion with a Wilson score CI; the Clopper-Pearson ("exact") interval of a proportion.
//!
//! Convention: a case is called positive when `score >= threshold`.

use super::error::{Result, StatsError};
use super::roc::split_classes;
use super::util::{check_finite, check_len, check_level, z_crit};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};

/// A proportion k/n with a confidence interval (Wilson score or Clopper-Pearson, by the
/// function that made it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub numerator: u64,
    pub denominator: u64,
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Wilson score interval for k successes in n trials (Wilson 1927; no continuity correction),
/// as `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`. `None` when n = 0.
pub fn wilson(k: u64, n: u64, level: f64) -> Result<Option<Proportion>> {
    check_level(level)?;
    if k > n {
        return Err(StatsError::InvalidParameter { name: "k", reason: format!("successes {k} exceed trials {n}") });
    }
    if n == 0 {
        return Ok(None);
    }
    let z = z_crit(level);
    let (kf, nf) = (k as f64, n as f64);
    let p = kf / nf;
    let denom = 1.0 + z * z / nf;
    let centre = (p + z * z / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / denom;
    Ok(Some(Proportion {
        numerator: k,
        denominator: n,
        estimate: p,
        lower: if k == 0 { 0.0 } else { (centre - half).max(0.0) },
        upper: if k == n { 1.0 } else { (centre + half).min(1.0) },
    }))
}

/// Clopper-Pearson ("exact") interval for k successes in n trials, as R's
/// `binom.test(k, n, conf.level = level)$conf.int`: with alpha = 1 - level, the lower bound is
/// the alpha/2 quantile of Beta(k, n - k + 1) (0 when k = 0) and the upper bound the
/// 1 - alpha/2 quantile of Beta(k + 1, n - k) (1 when k = n). `None` when n = 0.
pub fn clopper_pearson(k: u64, n: u64, level: f64) -> Result<Option<Proportion>> {
    check_level(level)?;
    if k > n {
        return Err(StatsError::InvalidParameter { name: "k", reason: format!("successes {k} exceed trials {n}") });
    }
    if n == 0 {
        return Ok(None);
    }
    let alpha = 1.0 - level;
    let quantile = |a: u64, b: u64, p: f64| -> Result<f64> {
        let beta = Beta::new(a as f64, b as f64).map_err(|e| StatsError::InvalidParameter { name: "k", reason: format!("Beta({a}, {b}): {e}") })?;
        Ok(beta.inverse_cdf(p))
    };
    let lower = if k == 0 { 0.0 } else { quantile(k, n - k + 1, alpha / 2.0)? };
    let upper = if k == n { 1.0 } else { quantile(k + 1, n - k, 1.0 - alpha / 2.0)? };
    Ok(Some(Proportion { numerator: k, denominator: n, estimate: k as f64 / n as f64, lower, upper }))
}

/// 2x2 counts and metrics at one threshold. A metric whose denominator is zero is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdMetrics {
    pub threshold: f64,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub accuracy: Option<Proportion>,
    pub sensitivity: Option<Proportion>,
    pub specificity: Option<Proportion>,
    pub ppv: Option<Proportion>,
    pub npv: Option<Proportion>,
}

/// Metrics when `score >= threshold` is called positive. Labels may be one class only
/// (e.g. an external cohort with few events); the undefined metrics are then `None`.
pub fn metrics_at_threshold(scores: &[f64], labels: &[bool], threshold: f64, level: f64) -> Result<ThresholdMetrics> {
    check_len("scores", scores.len(), "labels", labels.len())?;
    check_finite("score", scores)?;
    check_level(level)?;
    if threshold.is_nan() {
        return Err(StatsError::InvalidParameter { name: "threshold", reason: "NaN".into() });
    }
    if scores.is_empty() {
        return Err(StatsError::Empty { what: "scores" });
    }
    let (mut tp, mut fp, mut tn, mut fn_) = (0u64, 0u64, 0u64, 0u64);
    for (&s, &y) in scores.iter().zip(labels) {
        match (s >= threshold, y) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    Ok(ThresholdMetrics {
        threshold,
        tp,
        fp,
        tn,
        fn_,
        accuracy: wilson(tp + tn, tp + fp + tn + fn_, level)?,
        sensitivity: wilson(tp, tp + fn_, level)?,
        specificity: wilson(tn, tn + fp, level)?,
        ppv: wilson(tp, tp + fp, level)?,
        npv: wilson(tn, tn + fn_, level)?,
    })
}

/// The Youden-optimal operating point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YoudenPoint {
    pub threshold: f64,
    pub sensitivity: f64,
    pub specificity: f64,
    /// J = sensitivity + specificity - 1.
    pub j: f64,
    /// How many candidate thresholds attain the maximal J (exactly, by integer counts).
    pub n_tied: usize,
}

/// Youden index maximisation over the pROC candidate thresholds: -inf, the midpoints between
/// adjacent distinct scores, +inf. J is compared exactly (as tp*N + tn*P in integers).
/// Tie rule (deterministic): among thresholds with the maximal J, the highest threshold
/// (i.e. the most specific operating point) is returned; `n_tied` says how many tied.
pub fn youden(scores: &[f64], labels: &[bool]) -> Result<YoudenPoint> {
    let (pos, neg) = split_classes(scores, labels)?;
    let (p, n) = (pos.len() as u64, neg.len() as u64);
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Walk thresholds from +inf downwards; counts of positives called positive so far.
    let (mut tp, mut fp) = (0u64, 0u64);
    let score_of = |tp: u64, fp: u64| -> u128 { tp as u128 * n as u128 + (n - fp) as u128 * p as u128 };
    let mut best = (score_of(0, 0), f64::INFINITY, 0u64, 0u64);
    let mut n_tied = 1usize;
    let mut i = 0;
    while i < idx.len() {
        let t = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == t {
            if labels[idx[i]] {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        let thr = if i < idx.len() { (t + scores[idx[i]]) / 2.0 } else { f64::NEG_INFINITY };
        let sc = score_of(tp, fp);
        if sc > best.0 {
            best = (sc, thr, tp, fp);
            n_tied = 1;
        } else if sc == best.0 {
            n_tied += 1;
        }
    }
    let (_, threshold, tp, fp) = best;
    let sens = tp as f64 / p as f64;
    let spec = (n - fp) as f64 / n as f64;
    Ok(YoudenPoint { threshold, sensitivity: sens, specificity: spec, j: sens + spec - 1.0, n_tied })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn youden_and_metrics_match_fixture() {
        let fx = load_fixture("threshold.json");
        for case in fx["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let s = vf(&case["scores"]);
            let y = vb(&case["labels"]);
            let yo = youden(&s, &y).unwrap();
            let r = &case["youden"];
            close(yo.threshold, f(&r["threshold"]), 1e-12, &format!("thr {name} youden threshold"));
            close(yo.j, f(&r["j"]), 1e-12, &format!("thr {name} youden j"));
            close(yo.sensitivity, f(&r["sensitivity"]), 1e-12, &format!("thr {name} youden sens"));
            assert_eq!(yo.n_tied, r["n_tied"].as_u64().unwrap() as usize, "{name} n_tied");
            for m in case["metrics"].as_array().unwrap() {
                let t = f(&m["threshold"]);
                let got = metrics_at_threshold(&s, &y, t, 0.95).unwrap();
                assert_eq!([got.tp, got.fp, got.tn, got.fn_], [0, 1, 2, 3].map(|k| m["counts"][k].as_u64().unwrap()), "{name} counts at {t}");
                for (key, prop) in
                    [("accuracy", &got.accuracy), ("sensitivity", &got.sensitivity), ("specificity", &got.specificity), ("ppv", &got.ppv), ("npv", &got.npv)]
                {
                    let e = &m[key];
                    match prop {
                        None => assert!(e.is_null(), "{name} {key} should be defined"),
                        Some(p) => {
                            // Wilson closed form vs scipy's binomtest.proportion_ci: same formula.
                            close(p.estimate, f(&e[0]), 1e-12, &format!("thr {name} {key}"));
                            close(p.lower, f(&e[1]), 1e-10, &format!("thr {name} {key} lower"));
                            close(p.upper, f(&e[2]), 1e-10, &format!("thr {name} {key} upper"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn wilson_textbook_value() {
        // Newcombe (1998, Stat Med 17:857), Table I example 81/263: Wilson CI 0.2553-0.3662.
        let p = wilson(81, 263, 0.95).unwrap().unwrap();
        assert!((p.lower - 0.2553).abs() < 5e-5 && (p.upper - 0.3662).abs() < 5e-5, "{p:?}");
        assert_eq!(wilson(0, 0, 0.95).unwrap(), None);
    }

    #[test]
    fn clopper_pearson_matches_r_binom_test() {
        // R 4.2 binom.test (tests/fixtures/generate/reference.R): qbeta vs statrs' inverse
        // regularized incomplete beta; 1e-9 relative (observed ~1e-15).
        let fx = load_fixture("r_reference.json");
        for c in fx["binom_test"].as_array().unwrap() {
            let (k, n, level) = (c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap(), f(&c["level"]));
            let p = clopper_pearson(k, n, level).unwrap().unwrap();
            let what = format!("clopper-pearson {k}/{n} at {level}");
            close_rel(p.estimate, f(&c["estimate"]), 1e-12, &format!("{what} estimate"));
            close_rel(p.lower, f(&c["lower"]), 1e-9, &format!("{what} lower"));
            close_rel(p.upper, f(&c["upper"]), 1e-9, &format!("{what} upper"));
        }
        assert_eq!(clopper_pearson(0, 0, 0.95).unwrap(), None);
        assert!(matches!(clopper_pearson(3, 2, 0.95), Err(StatsError::InvalidParameter { name: "k", .. })));
    }

    #[test]
    fn youden_matches_proc_best_youden() {
        // pROC 1.18 coords(roc, "best", best.method = "youden") lists every tied threshold;
        // ours is the highest of them, with n_tied the number of rows. Scores are multiples
        // of 1/256, so the midpoint thresholds compare exactly.
        let fx = load_fixture("r_reference.json");
        for c in fx["proc"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let y = youden(&vf(&c["scores"]), &vb(&c["labels"])).unwrap();
            let thresholds = vf(&c["youden_thresholds"]);
            let top = (0..thresholds.len()).max_by(|&a, &b| thresholds[a].total_cmp(&thresholds[b])).unwrap();
            assert_eq!(y.threshold, thresholds[top], "{name} threshold");
            assert_eq!(y.n_tied, thresholds.len(), "{name} n_tied");
            close(y.sensitivity, f(&c["youden_sensitivity"][top]), 1e-12, &format!("{name} youden sensitivity"));
            close(y.specificity, f(&c["youden_specificity"][top]), 1e-12, &format!("{name} youden specificity"));
        }
    }

    #[test]
    fn youden_tie_rule_picks_highest_threshold() {
        // Scores 1,2,3,4 with labels F,T,F,T: J = 0.5 at thresholds 3.5 and 1.5 -> 3.5.
        let y = youden(&[1.0, 2.0, 3.0, 4.0], &[false, true, false, true]).unwrap();
        assert_eq!((y.threshold, y.n_tied), (3.5, 2));
        assert!((y.j - 0.5).abs() < 1e-15);
    }
}
