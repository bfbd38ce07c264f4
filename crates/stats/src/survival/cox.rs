//! Cox proportional-hazards regression by Newton-Raphson (step halving) with Efron or
//! Breslow handling of tied event times, Wald and likelihood-ratio inference, and the
//! Grambsch-Therneau test of proportional hazards on scaled Schoenfeld residuals in the form
//! lifelines' `proportional_hazard_test` uses (the pre-2019 R `cox.zph` approximation).

use super::check_survival;
use crate::error::{Result, StatsError};
use crate::util::{check_finite, check_len, check_level, chi2_sf, norm_sf, spd_inverse, z_crit};
use serde::{Deserialize, Serialize};

/// Handling of tied event times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ties {
    /// Efron (1977) approximation: R coxph and lifelines default.
    Efron,
    /// Breslow (1974) approximation.
    Breslow,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CoxOptions {
    pub ties: Ties,
    pub max_iter: usize,
    /// Convergence when the largest Newton step is below this (in coefficient units).
    pub tol: f64,
    pub level: f64,
}

impl Default for CoxOptions {
    fn default() -> Self {
        Self { ties: Ties::Efron, max_iter: 100, tol: 1e-11, level: 0.95 }
    }
}

/// A fitted Cox model; vectors follow the order of the covariate columns given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoxFit {
    pub coef: Vec<f64>,
    pub se: Vec<f64>,
    pub hazard_ratio: Vec<f64>,
    pub z: Vec<f64>,
    /// Two-sided Wald p-values.
    pub p_value: Vec<f64>,
    pub coef_lower: Vec<f64>,
    pub coef_upper: Vec<f64>,
    pub hr_lower: Vec<f64>,
    pub hr_upper: Vec<f64>,
    /// Row-major p x p covariance (inverse information) of the coefficients.
    pub covariance: Vec<f64>,
    pub log_likelihood: f64,
    pub log_likelihood_null: f64,
    /// Likelihood-ratio test against the null model: 2 (ll - ll0), df = p.
    pub lr_statistic: f64,
    pub lr_df: usize,
    pub lr_p_value: f64,
    pub n: usize,
    pub n_events: usize,
    pub iterations: usize,
    pub ties: Ties,
    pub level: f64,
}

impl CoxFit {
    /// Linear predictor x'beta for covariate rows given as columns (uncentred).
    pub fn linear_predictor(&self, covariates: &[&[f64]]) -> Vec<f64> {
        let n = covariates.first().map_or(0, |c| c.len());
        (0..n).map(|i| covariates.iter().zip(&self.coef).map(|(c, b)| c[i] * b).sum()).collect()
    }
}

/// Centred row-major design plus time order; shared by the fit and the residuals.
struct Design {
    n: usize,
    p: usize,
    x: Vec<f64>,
    /// indices sorted by time descending (ties: larger original index first), so a reverse
    /// walk meets each tied block contiguously.
    order: Vec<usize>,
}

fn design(times: &[f64], events: &[bool], covariates: &[&[f64]]) -> Result<Design> {
    check_survival(times, events)?;
    let n = times.len();
    let p = covariates.len();
    if p == 0 {
        return Err(StatsError::InvalidParameter { name: "covariates", reason: "need at least one covariate".into() });
    }
    for c in covariates {
        check_len("times", n, "covariate column", c.len())?;
        check_finite("covariate", c)?;
    }
    if !events.iter().any(|&e| e) {
        return Err(StatsError::NoEvents);
    }
    let mut x = vec![0.0; n * p];
    for (j, c) in covariates.iter().enumerate() {
        let m = c.iter().sum::<f64>() / n as f64;
        for i in 0..n {
            x[i * p + j] = c[i] - m;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| times[b].total_cmp(&times[a]).then(b.cmp(&a)));
    Ok(Design { n, p, x, order })
}

/// Log partial likelihood, score and information at beta.
fn partial_lik(d: &Design, times: &[f64], events: &[bool], beta: &[f64], ties: Ties) -> (f64, Vec<f64>, Vec<f64>) {
    let p = d.p;
    let (mut s0, mut s1, mut s2) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    let (mut ll, mut grad, mut info) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    let mut k = 0;
    while k < d.n {
        let t = times[d.order[k]];
        let (mut e0, mut e1, mut e2) = (0.0, vec![0.0; p], vec![0.0; p * p]);
        let mut nd = 0usize;
        while k < d.n && times[d.order[k]] == t {
            let i = d.order[k];
            let xi = &d.x[i * p..(i + 1) * p];
            let eta: f64 = xi.iter().zip(beta).map(|(a, b)| a * b).sum();
            let w = eta.exp();
            s0 += w;
            for a in 0..p {
                s1[a] += w * xi[a];
                for b in 0..p {
                    s2[a * p + b] += w * xi[a] * xi[b];
                }
            }
            if events[i] {
                nd += 1;
                e0 += w;
                ll += eta;
                for a in 0..p {
                    e1[a] += w * xi[a];
                    grad[a] += xi[a];
                    for b in 0..p {
                        e2[a * p + b] += w * xi[a] * xi[b];
                    }
                }
            }
            k += 1;
        }
        for l in 0..nd {
            let f = match ties {
                Ties::Efron => l as f64 / nd as f64,
                Ties::Breslow => 0.0,
            };
            let den = s0 - f * e0;
            ll -= den.ln();
            let m1: Vec<f64> = (0..p).map(|a| (s1[a] - f * e1[a]) / den).collect();
            for a in 0..p {
                grad[a] -= m1[a];
                for b in 0..p {
                    info[a * p + b] += (s2[a * p + b] - f * e2[a * p + b]) / den - m1[a] * m1[b];
                }
            }
        }
    }
    (ll, grad, info)
}

/// Fits a Cox model. `covariates` are columns, each of length n.
pub fn cox_ph(times: &[f64], events: &[bool], covariates: &[&[f64]], options: &CoxOptions) -> Result<CoxFit> {
    check_level(options.level)?;
    let d = design(times, events, covariates)?;
    let p = d.p;
    let mut beta = vec![0.0; p];
    let (ll0, _, _) = partial_lik(&d, times, events, &beta, options.ties);
    let (mut ll, mut grad, mut info) = partial_lik(&d, times, events, &beta, options.ties);
    let mut iterations = 0;
    loop {
        if iterations >= options.max_iter {
            return Err(StatsError::NotConverged { what: "Cox model", iterations });
        }
        iterations += 1;
        let inv = spd_inverse(&info, p, "Cox information matrix (collinear or constant covariate?)")?;
        let step: Vec<f64> = (0..p).map(|a| (0..p).map(|b| inv[a * p + b] * grad[b]).sum()).collect();
        let mut t = 1.0;
        let (mut nb, mut nll, mut ng, mut ni);
        loop {
            nb = (0..p).map(|a| beta[a] + t * step[a]).collect::<Vec<f64>>();
            (nll, ng, ni) = partial_lik(&d, times, events, &nb, options.ties);
            if (nll.is_finite() && nll >= ll - 1e-10 * ll.abs()) || t < 1e-6 {
                break;
            }
            t /= 2.0;
        }
        let size = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        beta = nb;
        ll = nll;
        grad = ng;
        info = ni;
        if beta.iter().any(|b| !b.is_finite()) {
            return Err(StatsError::NotConverged { what: "Cox model", iterations });
        }
        if size < options.tol {
            break;
        }
    }
    let cov = spd_inverse(&info, p, "Cox information matrix (collinear or constant covariate?)")?;
    let zc = z_crit(options.level);
    let se: Vec<f64> = (0..p).map(|a| cov[a * p + a].sqrt()).collect();
    let z: Vec<f64> = beta.iter().zip(&se).map(|(b, s)| b / s).collect();
    let lr = 2.0 * (ll - ll0);
    Ok(CoxFit {
        hazard_ratio: beta.iter().map(|b| b.exp()).collect(),
        p_value: z.iter().map(|z| 2.0 * norm_sf(z.abs())).collect(),
        coef_lower: beta.iter().zip(&se).map(|(b, s)| b - zc * s).collect(),
        coef_upper: beta.iter().zip(&se).map(|(b, s)| b + zc * s).collect(),
        hr_lower: beta.iter().zip(&se).map(|(b, s)| (b - zc * s).exp()).collect(),
        hr_upper: beta.iter().zip(&se).map(|(b, s)| (b + zc * s).exp()).collect(),
        coef: beta,
        se,
        z,
        covariance: cov,
        log_likelihood: ll,
        log_likelihood_null: ll0,
        lr_statistic: lr,
        lr_df: p,
        lr_p_value: chi2_sf(lr, p as f64),
        n: d.n,
        n_events: events.iter().filter(|&&e| e).count(),
        iterations,
        ties: options.ties,
        level: options.level,
    })
}

/// Time scale for the PH test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhTimeTransform {
    /// Event times ranked 1..D in time order (lifelines `time_transform="rank"`; tied event
    /// times get consecutive ranks in input order, so with tied events prefer `Identity`).
    Rank,
    /// The event times themselves (lifelines `"identity"`).
    Identity,
}

/// Per-covariate PH test (chi-square, 1 df each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhTest {
    pub transform: PhTimeTransform,
    pub statistic: Vec<f64>,
    pub p_value: Vec<f64>,
}

/// Schoenfeld residuals (Efron-weighted means at tied times, as lifelines computes them even
/// for Breslow fits) for the events, in (time, input index) order; returns (event rows, times).
fn schoenfeld(d: &Design, times: &[f64], events: &[bool], beta: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let p = d.p;
    let (mut s0, mut s1) = (0.0, vec![0.0; p]);
    let mut out: Vec<(f64, usize, Vec<f64>)> = Vec::new();
    let mut k = 0;
    while k < d.n {
        let t = times[d.order[k]];
        let (mut e0, mut e1) = (0.0, vec![0.0; p]);
        let mut members = Vec::new();
        while k < d.n && times[d.order[k]] == t {
            let i = d.order[k];
            let xi = &d.x[i * p..(i + 1) * p];
            let w = xi.iter().zip(beta).map(|(a, b)| a * b).sum::<f64>().exp();
            s0 += w;
            for a in 0..p {
                s1[a] += w * xi[a];
            }
            if events[i] {
                e0 += w;
                for a in 0..p {
                    e1[a] += w * xi[a];
                }
                members.push(i);
            }
            k += 1;
        }
        let nd = members.len();
        if nd == 0 {
            continue;
        }
        let mut wm = vec![0.0; p];
        for l in 0..nd {
            let f = l as f64 / nd as f64;
            let den = s0 - f * e0;
            for a in 0..p {
                wm[a] += (s1[a] - f * e1[a]) / (den * nd as f64);
            }
        }
        for &i in &members {
            out.push((t, i, (0..p).map(|a| d.x[i * p + a] - wm[a]).collect()));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let ts = out.iter().map(|r| r.0).collect();
    (out.into_iter().map(|r| r.2).collect(), ts)
}

/// Grambsch-Therneau PH test per covariate, in lifelines' form: scaled residuals
/// r* = D * r V (D events, V the model covariance), statistic
/// (sum (g(t) - mean g) r*_j)^2 / (D V_jj sum (g(t) - mean g)^2).
pub fn proportional_hazard_test(fit: &CoxFit, times: &[f64], events: &[bool], covariates: &[&[f64]], transform: PhTimeTransform) -> Result<PhTest> {
    let d = design(times, events, covariates)?;
    if d.p != fit.coef.len() {
        return Err(StatsError::InvalidParameter { name: "covariates", reason: format!("fit has {} coefficients, got {} columns", fit.coef.len(), d.p) });
    }
    let p = d.p;
    let (res, ts) = schoenfeld(&d, times, events, &fit.coef);
    let nd = res.len();
    let g: Vec<f64> = match transform {
        PhTimeTransform::Rank => (1..=nd).map(|r| r as f64).collect(),
        PhTimeTransform::Identity => ts,
    };
    let gm = g.iter().sum::<f64>() / nd as f64;
    let gc: Vec<f64> = g.iter().map(|x| x - gm).collect();
    let ss: f64 = gc.iter().map(|x| x * x).sum();
    let mut statistic = Vec::with_capacity(p);
    for j in 0..p {
        let mut num = 0.0;
        for (r, gi) in res.iter().zip(&gc) {
            let scaled: f64 = nd as f64 * (0..p).map(|a| r[a] * fit.covariance[a * p + j]).sum::<f64>();
            num += gi * scaled;
        }
        statistic.push(num * num / (nd as f64 * fit.covariance[j * p + j] * ss));
    }
    Ok(PhTest { transform, p_value: statistic.iter().map(|&s| chi2_sf(s, 1.0)).collect(), statistic })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    fn cols(v: &serde_json::Value) -> Vec<Vec<f64>> {
        v.as_array().unwrap().iter().map(vf).collect()
    }

    #[test]
    fn cox_matches_lifelines() {
        let fx = load_fixture("survival.json");
        for case in fx["cox"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let t = vf(&case["times"]);
            let e = vb(&case["events"]);
            let x = cols(&case["covariates"]);
            let xr: Vec<&[f64]> = x.iter().map(|c| c.as_slice()).collect();
            let ties = if case["ties"] == "breslow" { Ties::Breslow } else { Ties::Efron };
            let fit = cox_ph(&t, &e, &xr, &CoxOptions { ties, ..Default::default() }).unwrap();
            // Same likelihood and Newton method; lifelines is run with precision 1e-14, so the
            // fits agree to ~5e-12 (observed); 1e-9 relative leaves room for platform rounding.
            for (j, (&b, &s)) in fit.coef.iter().zip(&fit.se).enumerate() {
                close_rel(b, f(&case["coef"][j]), 1e-9, &format!("cox {name} coef{j}"));
                close_rel(s, f(&case["se"][j]), 1e-9, &format!("cox {name} se{j}"));
                close(fit.p_value[j], f(&case["p"][j]), 1e-8, &format!("cox {name} p{j}"));
            }
            close_rel(fit.log_likelihood, f(&case["loglik"]), 1e-10, &format!("cox {name} loglik"));
            // Harrell's C of the fitted linear predictor vs lifelines' concordance_index_.
            let c = crate::survival::harrell_c(&t, &fit.linear_predictor(&xr), &e).unwrap();
            close(c.c_index, f(&case["c_lifelines"]), 1e-12, &format!("cox {name} C-index"));
            close_rel(fit.lr_statistic, f(&case["lr"]), 1e-8, &format!("cox {name} lr"));
            if !case["ph_rank"].is_null() {
                let ph = proportional_hazard_test(&fit, &t, &e, &xr, PhTimeTransform::Rank).unwrap();
                close_all(&ph.statistic, &vf(&case["ph_rank"]), 1e-9, &format!("cox {name} ph rank"));
            }
            let ph = proportional_hazard_test(&fit, &t, &e, &xr, PhTimeTransform::Identity).unwrap();
            close_all(&ph.statistic, &vf(&case["ph_identity"]), 1e-9, &format!("cox {name} ph identity"));
            close_all(&ph.p_value, &vf(&case["ph_identity_p"]), 1e-9, &format!("cox {name} ph identity p"));
        }
    }

    #[test]
    fn rossi_matches_published_r_coxph() {
        // Fox & Weisberg, "Cox Proportional-Hazards Regression for Survival Data in R" (2018
        // appendix to An R Companion to Applied Regression), coxph(Surv(week, arrest) ~ fin +
        // age + race + wexp + mar + paro + prio, data = Rossi), Efron ties:
        let coef = [-0.37942, -0.05744, 0.31390, -0.14980, -0.43370, -0.08487, 0.09150];
        let se = [0.19138, 0.02200, 0.30799, 0.21222, 0.38187, 0.19576, 0.02865];
        let fx = load_fixture("survival.json");
        let r = &fx["cox"][0]; // rossi_efron: the same data
        let x = cols(&r["covariates"]);
        let xr: Vec<&[f64]> = x.iter().map(|c| c.as_slice()).collect();
        let fit = cox_ph(&vf(&r["times"]), &vb(&r["events"]), &xr, &CoxOptions::default()).unwrap();
        for j in 0..7 {
            // printed to 5 decimals
            assert!((fit.coef[j] - coef[j]).abs() < 6e-6, "coef {j}: {} vs {}", fit.coef[j], coef[j]);
            assert!((fit.se[j] - se[j]).abs() < 6e-6, "se {j}: {} vs {}", fit.se[j], se[j]);
        }
        // "Likelihood ratio test=33.27 on 7 df, p=2.362e-05"
        assert!((fit.lr_statistic - 33.27).abs() < 0.006, "{}", fit.lr_statistic);
        assert!((fit.lr_p_value - 2.362e-5).abs() < 6e-9, "{}", fit.lr_p_value);
    }

    #[test]
    fn breslow_matches_independent_numpy_newton() {
        let fx = load_fixture("survival.json");
        let case = &fx["breslow"];
        let x = cols(&case["covariates"]);
        let xr: Vec<&[f64]> = x.iter().map(|c| c.as_slice()).collect();
        let fit = cox_ph(&vf(&case["times"]), &vb(&case["events"]), &xr, &CoxOptions { ties: Ties::Breslow, ..Default::default() }).unwrap();
        // Same likelihood and Newton iteration coded independently in NumPy.
        close_all(&fit.coef, &vf(&case["coef"]), 1e-9, "cox breslow coef");
        close_all(&fit.se, &vf(&case["se"]), 1e-9, "cox breslow se");
        close_rel(fit.log_likelihood, f(&case["loglik"]), 1e-11, "cox breslow loglik");
        close_rel(fit.lr_statistic, f(&case["lr"]), 1e-9, "cox breslow lr");
        // with tied times the two approximations must differ
        let efron = cox_ph(&vf(&case["times"]), &vb(&case["events"]), &xr, &CoxOptions::default()).unwrap();
        assert!((efron.coef[0] - fit.coef[0]).abs() > 1e-4);
    }

    #[test]
    fn efron_equals_breslow_without_ties() {
        let fx = load_fixture("survival.json");
        let case = fx["cox"].as_array().unwrap().iter().find(|c| c["name"] == "synthetic_untied").unwrap();
        let x = cols(&case["covariates"]);
        let xr: Vec<&[f64]> = x.iter().map(|c| c.as_slice()).collect();
        let (t, e) = (vf(&case["times"]), vb(&case["events"]));
        let a = cox_ph(&t, &e, &xr, &CoxOptions::default()).unwrap();
        let b = cox_ph(&t, &e, &xr, &CoxOptions { ties: Ties::Breslow, ..Default::default() }).unwrap();
        close_all(&a.coef, &b.coef, 1e-12, "cox efron=breslow untied");
    }

    #[test]
    fn monotone_likelihood_is_reported_not_returned() {
        // x = 1 patients all fail before any x = 0 patient: the MLE is infinite.
        let t = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let e = [true; 6];
        let x = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let r = cox_ph(&t, &e, &[&x], &CoxOptions::default());
        assert!(matches!(r, Err(StatsError::NotConverged { .. }) | Err(StatsError::Singular { .. })), "{r:?}");
    }

    #[test]
    fn constant_covariate_is_singular() {
        let r = cox_ph(&[1.0, 2.0, 3.0], &[true, true, false], &[&[1.0, 1.0, 1.0]], &CoxOptions::default());
        assert!(matches!(r, Err(StatsError::Singular { .. })), "{r:?}");
    }

    #[test]
    fn cox_matches_r_coxph_efron() {
        // R survival 3.5 coxph(Surv(t, e) ~ x1 + x2 (+ x3), ties = "efron"), converged to
        // eps = 1e-11 (tests/fixtures/generate/reference.R): coefficients, SEs, HR CIs,
        // Wald z and p, log partial likelihoods (null and fitted). 1e-6 relative.
        let fx = load_fixture("r_reference.json");
        for c in fx["coxph"].as_array().unwrap() {
            let name = format!("coxph {}", c["name"].as_str().unwrap());
            let cols: Vec<Vec<f64>> = c["covariates"].as_array().unwrap().iter().map(vf).collect();
            let fit = cox_ph(&vf(&c["times"]), &vb(&c["events"]), &cols.iter().map(Vec::as_slice).collect::<Vec<_>>(), &CoxOptions::default()).unwrap();
            for (j, cov) in c["covariate_names"].as_array().unwrap().iter().enumerate() {
                let what = format!("{name} {}", cov.as_str().unwrap());
                close_rel(fit.coef[j], f(&c["coef"][j]), 1e-6, &format!("{what} coef"));
                close_rel(fit.se[j], f(&c["se"][j]), 1e-6, &format!("{what} se"));
                close_rel(fit.hazard_ratio[j], f(&c["hr"][j]), 1e-6, &format!("{what} hr"));
                close_rel(fit.hr_lower[j], f(&c["hr_lower"][j]), 1e-6, &format!("{what} hr lower"));
                close_rel(fit.hr_upper[j], f(&c["hr_upper"][j]), 1e-6, &format!("{what} hr upper"));
                close_rel(fit.z[j], f(&c["z"][j]), 1e-6, &format!("{what} z"));
                close_rel(fit.p_value[j], f(&c["wald_p"][j]), 1e-6, &format!("{what} Wald p"));
            }
            close_rel(fit.log_likelihood_null, f(&c["loglik"][0]), 1e-9, &format!("{name} null loglik"));
            close_rel(fit.log_likelihood, f(&c["loglik"][1]), 1e-9, &format!("{name} loglik"));
        }
    }
}
