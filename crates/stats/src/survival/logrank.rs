//! Log-rank test for k >= 2 groups (Mantel-Haenszel hypergeometric variance; equals
//! lifelines `multivariate_logrank_test` and R `survdiff(rho = 0)`).

use super::check_survival;
use crate::error::{Result, StatsError};
use crate::util::{check_len, chi2_sf, spd_inverse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRank {
    pub statistic: f64,
    pub df: usize,
    pub p_value: f64,
    /// Group labels in ascending order, and per group observed and expected events.
    pub groups: Vec<usize>,
    pub observed: Vec<f64>,
    pub expected: Vec<f64>,
}

/// `groups[i]` is the group label of patient i (any integers; at least two distinct).
/// A group without events is allowed; a group label that never occurs cannot be named, so
/// empty groups are impossible here.
pub fn logrank_test(times: &[f64], events: &[bool], groups: &[usize]) -> Result<LogRank> {
    check_survival(times, events)?;
    check_len("times", times.len(), "groups", groups.len())?;
    let mut labels: Vec<usize> = groups.to_vec();
    labels.sort_unstable();
    labels.dedup();
    let k = labels.len();
    if k < 2 {
        return Err(StatsError::TooFew { what: "log-rank test groups", needed: 2, got: k });
    }
    if !events.iter().any(|&e| e) {
        return Err(StatsError::NoEvents);
    }
    let g: Vec<usize> = groups.iter().map(|x| labels.partition_point(|l| l < x)).collect();
    let mut idx: Vec<usize> = (0..times.len()).collect();
    idx.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
    let mut at_risk = vec![0.0f64; k];
    for &gi in &g {
        at_risk[gi] += 1.0;
    }
    let mut obs = vec![0.0; k];
    let mut exp = vec![0.0; k];
    let mut var = vec![0.0; k * k];
    let mut i = 0;
    while i < idx.len() {
        let t = times[idx[i]];
        let mut d = vec![0.0; k];
        let mut leaving = vec![0.0; k];
        while i < idx.len() && times[idx[i]] == t {
            let gi = g[idx[i]];
            if events[idx[i]] {
                d[gi] += 1.0;
            }
            leaving[gi] += 1.0;
            i += 1;
        }
        let dt: f64 = d.iter().sum();
        let nt: f64 = at_risk.iter().sum();
        if dt > 0.0 {
            for a in 0..k {
                obs[a] += d[a];
                exp[a] += dt * at_risk[a] / nt;
            }
            if nt > 1.0 {
                let f = dt * (nt - dt) / (nt * nt * (nt - 1.0));
                for a in 0..k {
                    for b in 0..k {
                        let delta = if a == b { nt } else { 0.0 };
                        var[a * k + b] += f * at_risk[a] * (delta - at_risk[b]);
                    }
                }
            }
        }
        for a in 0..k {
            at_risk[a] -= leaving[a];
        }
    }
    // drop the last group (the variance matrix of all k has rank k - 1)
    let m = k - 1;
    let sub: Vec<f64> = (0..m).flat_map(|a| (0..m).map(move |b| (a, b))).map(|(a, b)| var[a * k + b]).collect();
    let inv = spd_inverse(&sub, m, "log-rank variance matrix")?;
    let u: Vec<f64> = (0..m).map(|a| obs[a] - exp[a]).collect();
    let mut stat = 0.0;
    for a in 0..m {
        for b in 0..m {
            stat += u[a] * inv[a * m + b] * u[b];
        }
    }
    Ok(LogRank { statistic: stat, df: m, p_value: chi2_sf(stat, m as f64), groups: labels, observed: obs, expected: exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn logrank_matches_lifelines() {
        let fx = load_fixture("survival.json");
        for case in fx["logrank"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let r = logrank_test(&vf(&case["times"]), &vb(&case["events"]), &vu(&case["groups"])).unwrap();
            close(r.statistic, f(&case["statistic"]), 1e-9, &format!("logrank {name} stat"));
            close(r.p_value, f(&case["p"]), 1e-10, &format!("logrank {name} p"));
            assert_eq!(r.df, case["df"].as_u64().unwrap() as usize);
        }
    }

    #[test]
    fn aml_matches_published_r_survdiff() {
        // R survival: survdiff(Surv(time, status) ~ x, data = aml) prints
        // Maintained N=11 O=7 E=10.69; Nonmaintained N=12 O=11 E=7.31; Chisq= 3.4 on 1 df, p= 0.07
        let t = [9.0, 13.0, 13.0, 18.0, 23.0, 28.0, 31.0, 34.0, 45.0, 48.0, 161.0, 5.0, 5.0, 8.0, 8.0, 12.0, 16.0, 23.0, 27.0, 30.0, 33.0, 43.0, 45.0];
        let e = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1].map(|x| x == 1);
        let g: Vec<usize> = (0..23).map(|i| usize::from(i >= 11)).collect();
        let r = logrank_test(&t, &e, &g).unwrap();
        assert_eq!(r.observed, vec![7.0, 11.0]);
        assert!((r.expected[0] - 10.69).abs() < 5e-3 && (r.expected[1] - 7.31).abs() < 5e-3, "{r:?}");
        assert!((r.statistic - 3.4).abs() < 0.05 && (r.p_value - 0.07).abs() < 0.005, "{r:?}");
    }

    #[test]
    fn one_group_is_an_error() {
        assert!(matches!(logrank_test(&[1.0, 2.0], &[true, true], &[3, 3]), Err(StatsError::TooFew { got: 1, .. })));
    }

    #[test]
    fn logrank_matches_r_survdiff() {
        // R survival 3.5 survdiff(Surv(t, e) ~ g) (tests/fixtures/generate/reference.R):
        // chi-square, observed and expected per group (levels ascending, as ours). 1e-9.
        let fx = load_fixture("r_reference.json");
        for c in fx["survdiff"].as_array().unwrap() {
            let name = format!("survdiff {}", c["name"].as_str().unwrap());
            let r = logrank_test(&vf(&c["times"]), &vb(&c["events"]), &vu(&c["groups"])).unwrap();
            assert_eq!(r.df as f64, f(&c["df"]), "{name} df");
            close_rel(r.statistic, f(&c["statistic"]), 1e-9, &format!("{name} chisq"));
            close_rel(r.p_value, f(&c["p"]), 1e-9, &format!("{name} p"));
            for (g, (o, e)) in vf(&c["observed"]).iter().zip(vf(&c["expected"])).enumerate() {
                close_rel(r.observed[g], *o, 1e-12, &format!("{name} observed {g}"));
                close_rel(r.expected[g], e, 1e-9, &format!("{name} expected {g}"));
            }
        }
    }
}
