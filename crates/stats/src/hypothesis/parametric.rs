//! Two-sample t tests (Student pooled-variance and Welch) and one-way ANOVA; two-sided.

use super::check_group;
use crate::error::{Result, StatsError};
use crate::util::mean;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    pub statistic: f64,
    pub df: f64,
    /// Two-sided.
    pub p_value: f64,
    /// mean(a) - mean(b).
    pub mean_difference: f64,
    pub welch: bool,
}

fn ss(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum()
}

pub(crate) fn t_sf2(t: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => (2.0 * d.sf(t.abs())).min(1.0),
        Err(_) => f64::NAN,
    }
}

/// `scipy.stats.ttest_ind(a, b, equal_var=!welch)`.
pub fn t_test(a: &[f64], b: &[f64], welch: bool) -> Result<TTest> {
    check_group(a, 0)?;
    check_group(b, 1)?;
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if n1 + n2 < 3.0 || (welch && (n1 < 2.0 || n2 < 2.0)) {
        return Err(StatsError::TooFew { what: "t test", needed: if welch { 4 } else { 3 }, got: a.len() + b.len() });
    }
    let diff = mean(a) - mean(b);
    let (s1, s2) = (ss(a), ss(b));
    let (se, df) = if welch {
        let (v1, v2) = (s1 / (n1 - 1.0) / n1, s2 / (n2 - 1.0) / n2);
        ((v1 + v2).sqrt(), (v1 + v2).powi(2) / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0)))
    } else {
        let df = n1 + n2 - 2.0;
        (((s1 + s2) / df * (1.0 / n1 + 1.0 / n2)).sqrt(), df)
    };
    if !(se > 0.0) {
        return Err(StatsError::ZeroVariance { what: "t test" });
    }
    let t = diff / se;
    Ok(TTest { statistic: t, df, p_value: t_sf2(t, df), mean_difference: diff, welch })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anova {
    pub statistic: f64,
    pub df_between: f64,
    pub df_within: f64,
    pub p_value: f64,
}

/// `scipy.stats.f_oneway(*groups)`.
pub fn one_way_anova(groups: &[&[f64]]) -> Result<Anova> {
    if groups.len() < 2 {
        return Err(StatsError::TooFew { what: "ANOVA groups", needed: 2, got: groups.len() });
    }
    for (i, g) in groups.iter().enumerate() {
        check_group(g, i)?;
    }
    let n: usize = groups.iter().map(|g| g.len()).sum();
    let k = groups.len();
    if n <= k {
        return Err(StatsError::TooFew { what: "ANOVA observations", needed: k + 1, got: n });
    }
    let grand = groups.iter().flat_map(|g| g.iter()).sum::<f64>() / n as f64;
    let ssb: f64 = groups.iter().map(|g| g.len() as f64 * (mean(g) - grand).powi(2)).sum();
    let ssw: f64 = groups.iter().map(|g| ss(g)).sum();
    let (dfb, dfw) = ((k - 1) as f64, (n - k) as f64);
    if !(ssw > 0.0) {
        return Err(StatsError::ZeroVariance { what: "ANOVA within-group" });
    }
    let f = (ssb / dfb) / (ssw / dfw);
    let p = FisherSnedecor::new(dfb, dfw).map(|d| d.sf(f)).unwrap_or(f64::NAN);
    Ok(Anova { statistic: f, df_between: dfb, df_within: dfw, p_value: p })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn t_tests_and_anova_match_scipy() {
        let fx = load_fixture("hypothesis.json");
        for case in fx["ttest"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let (a, b) = (vf(&case["a"]), vf(&case["b"]));
            for (key, welch) in [("student", false), ("welch", true)] {
                let r = t_test(&a, &b, welch).unwrap();
                let e = vf(&case[key]);
                close(r.statistic, e[0], 1e-11, &format!("t {name} {key} t"));
                close(r.df, e[1], 1e-11, &format!("t {name} {key} df"));
                // statrs' regularized incomplete beta vs scipy's cephes: ~1e-13 apart.
                close(r.p_value, e[2], 1e-10, &format!("t {name} {key} p"));
            }
        }
        let an = &fx["anova"];
        let g: Vec<Vec<f64>> = an["groups"].as_array().unwrap().iter().map(vf).collect();
        let gr: Vec<&[f64]> = g.iter().map(|x| x.as_slice()).collect();
        let r = one_way_anova(&gr).unwrap();
        close(r.statistic, f(&an["statistic"]), 1e-11, "anova F");
        close(r.p_value, f(&an["p"]), 1e-10, "anova p");
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        assert_eq!(t_test(&[], &[1.0, 2.0], false).unwrap_err(), StatsError::EmptyGroup { group: 0 });
        assert!(matches!(t_test(&[1.0, 1.0], &[1.0, 1.0], true), Err(StatsError::ZeroVariance { .. })));
        assert!(matches!(t_test(&[1.0, f64::NAN], &[1.0, 2.0], true), Err(StatsError::NonFinite { index: 1, .. })));
    }

    #[test]
    fn student_t_and_anova_match_r() {
        // R 4.2 t.test(a, b, var.equal = TRUE), oneway.test(y ~ g, var.equal = TRUE) and
        // summary(aov(y ~ g)) (tests/fixtures/generate/reference.R). 1e-9 relative.
        let fx = load_fixture("r_reference.json");
        for c in fx["t_test"].as_array().unwrap() {
            let name = format!("t.test {}", c["name"].as_str().unwrap());
            let r = t_test(&vf(&c["a"]), &vf(&c["b"]), false).unwrap();
            close_rel(r.statistic, f(&c["t"]), 1e-9, &format!("{name} t"));
            close_rel(r.df, f(&c["df"]), 1e-12, &format!("{name} df"));
            close_rel(r.p_value, f(&c["p"]), 1e-9, &format!("{name} p"));
        }
        for c in fx["oneway"].as_array().unwrap() {
            let name = format!("oneway.test {}", c["name"].as_str().unwrap());
            let g: Vec<Vec<f64>> = c["groups"].as_array().unwrap().iter().map(vf).collect();
            let r = one_way_anova(&g.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
            close_rel(r.statistic, f(&c["F"]), 1e-9, &format!("{name} F"));
            close_rel(r.statistic, f(&c["aov_F"]), 1e-9, &format!("{name} aov F"));
            assert_eq!([r.df_between, r.df_within], [f(&c["df"][0]), f(&c["df"][1])], "{name} df");
            close_rel(r.p_value, f(&c["p"]), 1e-9, &format!("{name} p"));
            close_rel(r.p_value, f(&c["aov_p"]), 1e-9, &format!("{name} aov p"));
        }
    }
}
