//! ROC curve, AUC (Mann-Whitney with midranks for ties), DeLong variance by the fast
//! midrank algorithm of Sun & Xu (2014, IEEE Signal Processing Letters 21:1389), paired and
//! unpaired DeLong comparisons, and a seeded stratified bootstrap CI of the AUC.
//!
//! Convention: `labels[i] == true` is a case (positive); higher scores mean "more likely
//! positive"; a score >= threshold is called positive.

use super::error::{Result, StatsError};
use super::util::{check_finite, check_len, check_level, mean, midranks, norm_sf, percentile_sorted, z_crit, SplitMix64};
use serde::{Deserialize, Serialize};

/// Empirical ROC curve: one point per distinct score plus the (0, 0) point at threshold +inf,
/// in decreasing threshold order (as `sklearn.metrics.roc_curve(drop_intermediate=False)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    pub thresholds: Vec<f64>,
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
}

/// AUC with its DeLong variance and normal-approximation CI (clipped to [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucCi {
    pub auc: f64,
    pub variance: f64,
    pub se: f64,
    pub lower: f64,
    pub upper: f64,
    pub level: f64,
    pub n_positive: usize,
    pub n_negative: usize,
}

/// Comparison of two AUCs (A minus B).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucComparison {
    pub auc_a: f64,
    pub auc_b: f64,
    pub difference: f64,
    pub se_difference: f64,
    /// DeLong correlation between the two AUC estimates (0 for the unpaired test).
    pub correlation: f64,
    pub z: f64,
    /// H1: AUC_A != AUC_B.
    pub p_two_sided: f64,
    /// H1: AUC_A > AUC_B.
    pub p_greater: f64,
    /// H1: AUC_A < AUC_B.
    pub p_less: f64,
    /// Normal CI of the difference (not clipped).
    pub lower: f64,
    pub upper: f64,
    pub level: f64,
}

/// Percentile bootstrap CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub level: f64,
    pub n_resamples: usize,
    pub seed: u64,
}

/// Validates scores/labels and splits them into (positives, negatives), keeping order.
pub(crate) fn split_classes(scores: &[f64], labels: &[bool]) -> Result<(Vec<f64>, Vec<f64>)> {
    check_len("scores", scores.len(), "labels", labels.len())?;
    check_finite("score", scores)?;
    let pos: Vec<f64> = scores.iter().zip(labels).filter(|(_, &l)| l).map(|(&s, _)| s).collect();
    let neg: Vec<f64> = scores.iter().zip(labels).filter(|(_, &l)| !l).map(|(&s, _)| s).collect();
    if pos.is_empty() || neg.is_empty() {
        return Err(StatsError::OneClass { positives: pos.len(), negatives: neg.len() });
    }
    Ok((pos, neg))
}

/// ROC curve (see [`RocCurve`]).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<RocCurve> {
    let (pos, neg) = split_classes(scores, labels)?;
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = RocCurve { thresholds: vec![f64::INFINITY], fpr: vec![0.0], tpr: vec![0.0] };
    let (mut tp, mut fp) = (0usize, 0usize);
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
        out.thresholds.push(t);
        out.tpr.push(tp as f64 / np);
        out.fpr.push(fp as f64 / nn);
    }
    Ok(out)
}

/// Area under the ROC curve = P(score_pos > score_neg) + 0.5 P(tie), via midranks.
pub fn auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let (pos, neg) = split_classes(scores, labels)?;
    Ok(delong_components(&pos, &neg).auc)
}

/// Sun & Xu structural components of one predictor.
struct Components {
    auc: f64,
    v10: Vec<f64>,
    v01: Vec<f64>,
}

fn delong_components(pos: &[f64], neg: &[f64]) -> Components {
    let (m, n) = (pos.len(), neg.len());
    let tx = midranks(pos);
    let ty = midranks(neg);
    let mut all = Vec::with_capacity(m + n);
    all.extend_from_slice(pos);
    all.extend_from_slice(neg);
    let tz = midranks(&all);
    let (mf, nf) = (m as f64, n as f64);
    let auc = (tz[..m].iter().sum::<f64>() - mf * (mf + 1.0) / 2.0) / (mf * nf);
    let v10 = (0..m).map(|i| (tz[i] - tx[i]) / nf).collect();
    let v01 = (0..n).map(|j| 1.0 - (tz[m + j] - ty[j]) / mf).collect();
    Components { auc, v10, v01 }
}

fn cov1(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 {
        return 0.0;
    }
    let (ma, mb) = (mean(a), mean(b));
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / (a.len() as f64 - 1.0)
}

/// AUC with DeLong variance and CI at `level` (e.g. 0.95). With a single positive or
/// negative case the corresponding variance term is taken as 0 (as pROC does).
pub fn delong_auc(scores: &[f64], labels: &[bool], level: f64) -> Result<AucCi> {
    check_level(level)?;
    let (pos, neg) = split_classes(scores, labels)?;
    let c = delong_components(&pos, &neg);
    let var = cov1(&c.v10, &c.v10) / pos.len() as f64 + cov1(&c.v01, &c.v01) / neg.len() as f64;
    let se = var.sqrt();
    let z = z_crit(level);
    Ok(AucCi {
        auc: c.auc,
        variance: var,
        se,
        lower: (c.auc - z * se).max(0.0),
        upper: (c.auc + z * se).min(1.0),
        level,
        n_positive: pos.len(),
        n_negative: neg.len(),
    })
}

fn comparison(auc_a: f64, auc_b: f64, var_diff: f64, correlation: f64, level: f64) -> AucComparison {
    let diff = auc_a - auc_b;
    let se = var_diff.max(0.0).sqrt();
    // Identical predictors give se = 0 and diff = 0: report z = 0, p = 1 rather than NaN.
    let z = if se > 0.0 {
        diff / se
    } else if diff == 0.0 {
        0.0
    } else {
        diff.signum() * f64::INFINITY
    };
    let zc = z_crit(level);
    AucComparison {
        auc_a,
        auc_b,
        difference: diff,
        se_difference: se,
        correlation,
        z,
        p_two_sided: (2.0 * norm_sf(z.abs())).min(1.0),
        p_greater: norm_sf(z),
        p_less: norm_sf(-z),
        lower: diff - zc * se,
        upper: diff + zc * se,
        level,
    }
}

/// Paired DeLong test of two correlated AUCs measured on the same patients.
pub fn delong_paired(scores_a: &[f64], scores_b: &[f64], labels: &[bool], level: f64) -> Result<AucComparison> {
    check_level(level)?;
    check_len("scores_a", scores_a.len(), "scores_b", scores_b.len())?;
    let (pa, na) = split_classes(scores_a, labels)?;
    let (pb, nb) = split_classes(scores_b, labels)?;
    let (ca, cb) = (delong_components(&pa, &na), delong_components(&pb, &nb));
    let (m, n) = (pa.len() as f64, na.len() as f64);
    let var_a = cov1(&ca.v10, &ca.v10) / m + cov1(&ca.v01, &ca.v01) / n;
    let var_b = cov1(&cb.v10, &cb.v10) / m + cov1(&cb.v01, &cb.v01) / n;
    let cov_ab = cov1(&ca.v10, &cb.v10) / m + cov1(&ca.v01, &cb.v01) / n;
    let corr = if var_a > 0.0 && var_b > 0.0 { cov_ab / (var_a * var_b).sqrt() } else { f64::NAN };
    Ok(comparison(ca.auc, cb.auc, var_a + var_b - 2.0 * cov_ab, corr, level))
}

/// Unpaired comparison of two AUCs from independent samples: z = (A - B) / sqrt(VA + VB).
pub fn delong_unpaired(a: &AucCi, b: &AucCi, level: f64) -> Result<AucComparison> {
    check_level(level)?;
    Ok(comparison(a.auc, b.auc, a.variance + b.variance, 0.0, level))
}

/// Stratified percentile bootstrap CI of the AUC: each resample draws n_pos positives from
/// the positives and n_neg negatives from the negatives with replacement (SplitMix64 seeded by
/// `seed`, positives drawn first, indices in the order the classes appear in the input), so
/// every resample has both classes. Percentiles use linear interpolation (NumPy default).
pub fn bootstrap_auc_ci(scores: &[f64], labels: &[bool], n_resamples: usize, level: f64, seed: u64) -> Result<BootstrapCi> {
    check_level(level)?;
    if n_resamples < 2 {
        return Err(StatsError::InvalidParameter { name: "n_resamples", reason: format!("need at least 2, got {n_resamples}") });
    }
    let (pos, neg) = split_classes(scores, labels)?;
    let estimate = delong_components(&pos, &neg).auc;
    // Rank all scores once: group[i] is the index of the distinct value of each case.
    let mut distinct: Vec<f64> = pos.iter().chain(neg.iter()).copied().collect();
    distinct.sort_by(|a, b| a.total_cmp(b));
    distinct.dedup();
    let gid = |x: f64| distinct.partition_point(|&d| d < x);
    let gpos: Vec<usize> = pos.iter().map(|&x| gid(x)).collect();
    let gneg: Vec<usize> = neg.iter().map(|&x| gid(x)).collect();
    let g = distinct.len();
    let (m, n) = (pos.len(), neg.len());
    let mut rng = SplitMix64::new(seed);
    let mut cp = vec![0u32; g];
    let mut cn = vec![0u32; g];
    let mut aucs = Vec::with_capacity(n_resamples);
    for _ in 0..n_resamples {
        cp.iter_mut().for_each(|c| *c = 0);
        cn.iter_mut().for_each(|c| *c = 0);
        for _ in 0..m {
            cp[gpos[rng.index(m)]] += 1;
        }
        for _ in 0..n {
            cn[gneg[rng.index(n)]] += 1;
        }
        let (mut below, mut num) = (0u64, 0.0f64);
        for k in 0..g {
            num += cp[k] as f64 * (below as f64 + 0.5 * cn[k] as f64);
            below += cn[k] as u64;
        }
        aucs.push(num / (m as f64 * n as f64));
    }
    aucs.sort_by(|a, b| a.total_cmp(b));
    let alpha = 1.0 - level;
    Ok(BootstrapCi { estimate, lower: percentile_sorted(&aucs, alpha / 2.0), upper: percentile_sorted(&aucs, 1.0 - alpha / 2.0), level, n_resamples, seed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn auc_roc_and_delong_match_sklearn_and_numpy_sun_xu() {
        let fx = load_fixture("roc.json");
        for case in fx["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let s = vf(&case["scores"]);
            let sb = vf(&case["scores_b"]);
            let y = vb(&case["labels"]);
            // Same algorithm (midrank AUC, Sun & Xu components): 1e-10.
            close(auc(&s, &y).unwrap(), f(&case["auc"]), 1e-12, &format!("roc {name} auc"));
            let roc = roc_curve(&s, &y).unwrap();
            close_all(&roc.fpr, &vf(&case["roc"]["fpr"]), 1e-12, &format!("roc {name} fpr"));
            close_all(&roc.tpr, &vf(&case["roc"]["tpr"]), 1e-12, &format!("roc {name} tpr"));
            close_all(&roc.thresholds, &vf(&case["roc"]["thresholds"]), 1e-12, &format!("roc {name} thr"));
            let d = delong_auc(&s, &y, 0.95).unwrap();
            close(d.variance, f(&case["delong"]["var"]), 1e-10, &format!("roc {name} delong var"));
            close(d.lower, f(&case["delong"]["lower"]), 1e-10, &format!("roc {name} delong lower"));
            close(d.upper, f(&case["delong"]["upper"]), 1e-10, &format!("roc {name} delong upper"));
            let p = delong_paired(&s, &sb, &y, 0.95).unwrap();
            let r = &case["paired"];
            close(p.auc_b, f(&r["auc_b"]), 1e-12, &format!("roc {name} auc_b"));
            close(p.se_difference, f(&r["se"]), 1e-9, &format!("roc {name} paired se"));
            if f(&r["se"]) > 0.0 {
                close(p.z, f(&r["z"]), 1e-9, &format!("roc {name} paired z"));
            }
            close(p.p_two_sided, f(&r["p_two"]), 1e-10, &format!("roc {name} paired p"));
            close(p.p_greater, f(&r["p_greater"]), 1e-10, &format!("roc {name} paired p>"));
            close(p.p_less, f(&r["p_less"]), 1e-10, &format!("roc {name} paired p<"));
            close(p.lower, f(&r["lower"]), 1e-10, &format!("roc {name} paired lower"));
            close(p.upper, f(&r["upper"]), 1e-10, &format!("roc {name} paired upper"));
        }
        let u = &fx["unpaired"];
        let a = delong_auc(&vf(&u["scores_a"]), &vb(&u["labels_a"]), 0.95).unwrap();
        let b = delong_auc(&vf(&u["scores_b"]), &vb(&u["labels_b"]), 0.95).unwrap();
        let c = delong_unpaired(&a, &b, 0.95).unwrap();
        close(c.z, f(&u["z"]), 1e-9, "roc unpaired z");
        close(c.p_two_sided, f(&u["p_two"]), 1e-10, "roc unpaired p");
    }

    #[test]
    fn bootstrap_replays_the_python_resamples_exactly() {
        let fx = load_fixture("roc.json");
        let b = &fx["bootstrap"];
        let r = bootstrap_auc_ci(&vf(&b["scores"]), &vb(&b["labels"]), b["n_resamples"].as_u64().unwrap() as usize, 0.95, b["seed"].as_u64().unwrap()).unwrap();
        // Same generator, same resamples, sklearn AUC on each: agreement to rounding.
        close(r.lower, f(&b["lower"]), 1e-12, "roc bootstrap lower");
        close(r.upper, f(&b["upper"]), 1e-12, "roc bootstrap upper");
        let again = bootstrap_auc_ci(&vf(&b["scores"]), &vb(&b["labels"]), 200, 0.95, b["seed"].as_u64().unwrap()).unwrap();
        assert_eq!(r, again, "deterministic for a fixed seed");
    }

    #[test]
    fn splitmix_matches_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567 (reference C implementation by Vigna).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn hanley_mcneil_1982_published_auc() {
        // Hanley & McNeil (1982) Radiology 143:29-36, Table 1: CT ratings 1-5 of 58 normal
        // (33, 6, 6, 11, 2) and 51 abnormal (3, 2, 2, 11, 33) patients; published A = 0.893.
        let (mut s, mut y) = (Vec::new(), Vec::new());
        for (rating, (nn, na)) in [(33, 3), (6, 2), (6, 2), (11, 11), (2, 33)].into_iter().enumerate() {
            for _ in 0..nn {
                s.push(rating as f64 + 1.0);
                y.push(false);
            }
            for _ in 0..na {
                s.push(rating as f64 + 1.0);
                y.push(true);
            }
        }
        let a = auc(&s, &y).unwrap();
        assert!((a - 0.893).abs() < 5e-4, "{a}");
        let d = delong_auc(&s, &y, 0.95).unwrap();
        // DeLong SE must be close to Hanley-McNeil's published approximation 0.032.
        assert!((d.se - 0.032).abs() < 0.004, "{}", d.se);
    }

    #[test]
    fn perfect_separation_and_errors() {
        let s = [0.1, 0.2, 0.8, 0.9];
        let y = [false, false, true, true];
        let d = delong_auc(&s, &y, 0.95).unwrap();
        assert_eq!((d.auc, d.variance, d.lower, d.upper), (1.0, 0.0, 1.0, 1.0));
        assert_eq!(auc(&s, &[true; 4]), Err(StatsError::OneClass { positives: 4, negatives: 0 }));
        assert!(matches!(auc(&[0.1, f64::NAN], &[true, false]), Err(StatsError::NonFinite { index: 1, .. })));
        assert!(matches!(auc(&[0.1], &[true, false]), Err(StatsError::LengthMismatch { .. })));
    }

    #[test]
    fn delong_ci_matches_proc_ci_auc() {
        // pROC 1.18 ci.auc(roc, method = "delong") and var(roc, method = "delong")
        // (tests/fixtures/generate/reference.R); both clip the CI to [0, 1]. 1e-9 relative.
        let fx = load_fixture("r_reference.json");
        for c in fx["proc"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let r = delong_auc(&vf(&c["scores"]), &vb(&c["labels"]), 0.95).unwrap();
            close_rel(r.auc, f(&c["auc"]), 1e-12, &format!("pROC {name} auc"));
            close_rel(r.variance, f(&c["variance"]), 1e-9, &format!("pROC {name} variance"));
            close_rel(r.lower, f(&c["lower"]), 1e-9, &format!("pROC {name} lower"));
            close_rel(r.upper, f(&c["upper"]), 1e-9, &format!("pROC {name} upper"));
        }
    }
}
