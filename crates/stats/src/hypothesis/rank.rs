//! Rank tests: Mann-Whitney U (as `scipy.stats.mannwhitneyu`, default continuity
//! correction, method "auto") and Kruskal-Wallis H (tie-corrected).

use super::check_group;
use crate::error::{Result, StatsError};
use crate::util::{chi2_sf, midranks_with_ties, norm_sf};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    TwoSided,
    /// Distribution of `a` stochastically greater than that of `b`.
    Greater,
    Less,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MwuMethod {
    /// Exact when min(n1, n2) <= 8 and there are no ties, else asymptotic (SciPy's rule;
    /// above ~ 8 x 11000 observations the exact path is replaced by the asymptotic one).
    Auto,
    /// Exact null distribution of U (no tie correction; with ties U is truncated to an
    /// integer first, as SciPy does).
    Exact,
    /// Normal approximation with tie correction and continuity correction.
    Asymptotic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U statistic of the first sample (SciPy's `statistic`).
    pub u: f64,
    pub p_value: f64,
    /// The method actually used.
    pub method: MwuMethod,
}

/// P(U >= k) under H0 for sample sizes (m, n) without ties, from the Gaussian binomial
/// coefficient [m+n choose m]_q, built by the q-Pascal rule (all additions of positive
/// counts, so no cancellation); cost O(min(m,n)^2 max(m,n)^2).
fn mwu_exact_sf(k: f64, m: usize, n: usize) -> f64 {
    let (m, n) = if m <= n { (m, n) } else { (n, m) };
    // poly[j] = [N choose j]_q coefficients for the current N, j = 0..=m
    let mut poly: Vec<Vec<f64>> = vec![vec![1.0]];
    poly.extend((1..=m).map(|_| Vec::new()));
    for big_n in 1..=(m + n) {
        for j in (1..=m.min(big_n)).rev() {
            // [N choose j] = [N-1 choose j-1] + q^j [N-1 choose j]
            let deg = j * (big_n - j);
            let mut new = vec![0.0; deg + 1];
            for (i, c) in poly[j - 1].iter().enumerate() {
                new[i] += c;
            }
            for (i, c) in poly[j].iter().enumerate() {
                new[i + j] += c;
            }
            poly[j] = new;
        }
    }
    let counts = &poly[m];
    let total: f64 = counts.iter().sum();
    // SciPy evaluates the exact SF at U truncated to an integer (U is fractional only with ties)
    let start = k.floor().max(0.0) as usize;
    if start >= counts.len() {
        return 0.0;
    }
    // sum the smaller tail for accuracy
    let upper: f64 = counts[start..].iter().sum();
    upper / total
}

const EXACT_BUDGET: f64 = 2e9;

/// Mann-Whitney U test of `a` versus `b`.
pub fn mann_whitney_u(a: &[f64], b: &[f64], alternative: Alternative, method: MwuMethod) -> Result<MannWhitney> {
    check_group(a, 0)?;
    check_group(b, 1)?;
    let (n1, n2) = (a.len(), b.len());
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let (ranks, ties) = midranks_with_ties(&all);
    let r1: f64 = ranks[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = (n1 * n2) as f64 - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    // Cost of the exact distribution ~ min^2 max^2 / 4 additions; beyond EXACT_BUDGET the
    // automatic choice falls back to the normal approximation (documented deviation from
    // SciPy, which stays exact there), and a forced Exact is refused.
    let cost = (n1.min(n2) as f64).powi(2) * (n1.max(n2) as f64).powi(2) / 4.0;
    if method == MwuMethod::Exact && cost > EXACT_BUDGET {
        return Err(StatsError::InvalidParameter { name: "method", reason: format!("exact Mann-Whitney distribution too costly for sizes {n1} and {n2}") });
    }
    let method = match method {
        MwuMethod::Auto if (n1 <= 8 || n2 <= 8) && ties.is_empty() && cost <= EXACT_BUDGET => MwuMethod::Exact,
        MwuMethod::Auto => MwuMethod::Asymptotic,
        m => m,
    };
    let p = match method {
        MwuMethod::Exact => mwu_exact_sf(u, n1, n2),
        _ => {
            let (f1, f2) = (n1 as f64, n2 as f64);
            let n = f1 + f2;
            let tie_term: f64 = ties.iter().map(|&t| (t as f64).powi(3) - t as f64).sum();
            let s = (f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
            if !(s > 0.0) {
                return Err(StatsError::ZeroVariance { what: "Mann-Whitney U" });
            }
            norm_sf((u - f1 * f2 / 2.0 - 0.5) / s)
        }
    };
    Ok(MannWhitney { u: u1, p_value: (p * factor).clamp(0.0, 1.0), method })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KruskalWallis {
    pub statistic: f64,
    pub df: usize,
    pub p_value: f64,
}

/// `scipy.stats.kruskal(*groups)`: H with the tie correction, chi-square with k - 1 df.
pub fn kruskal_wallis(groups: &[&[f64]]) -> Result<KruskalWallis> {
    if groups.len() < 2 {
        return Err(StatsError::TooFew { what: "Kruskal-Wallis groups", needed: 2, got: groups.len() });
    }
    for (i, g) in groups.iter().enumerate() {
        check_group(g, i)?;
    }
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let n = all.len() as f64;
    let (ranks, ties) = midranks_with_ties(&all);
    let mut h = 0.0;
    let mut start = 0;
    for g in groups {
        let r: f64 = ranks[start..start + g.len()].iter().sum();
        h += r * r / g.len() as f64;
        start += g.len();
    }
    h = 12.0 / (n * (n + 1.0)) * h - 3.0 * (n + 1.0);
    let c = 1.0 - ties.iter().map(|&t| (t as f64).powi(3) - t as f64).sum::<f64>() / (n * n * n - n);
    if !(c > 0.0) {
        return Err(StatsError::ZeroVariance { what: "Kruskal-Wallis" });
    }
    h /= c;
    let df = groups.len() - 1;
    Ok(KruskalWallis { statistic: h, df, p_value: chi2_sf(h, df as f64) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn mann_whitney_matches_scipy() {
        let fx = load_fixture("hypothesis.json");
        for case in fx["mannwhitney"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let (a, b) = (vf(&case["a"]), vf(&case["b"]));
            for (key, alt) in [("two-sided", Alternative::TwoSided), ("greater", Alternative::Greater), ("less", Alternative::Less)] {
                let r = mann_whitney_u(&a, &b, alt, MwuMethod::Auto).unwrap();
                let e = vf(&case[key]);
                close(r.u, e[0], 0.0, &format!("mwu {name} {key} U"));
                close(r.p_value, e[1], 1e-10, &format!("mwu {name} {key} p")); // erfc vs ndtr, as below
            }
            let r = mann_whitney_u(&a, &b, Alternative::TwoSided, MwuMethod::Asymptotic).unwrap();
            // statrs erfc vs SciPy ndtr in the normal tail: ~3e-12 apart.
            close(r.p_value, f(&case["forced_asymptotic"]), 1e-10, &format!("mwu {name} asymptotic p"));
            let r = mann_whitney_u(&a, &b, Alternative::TwoSided, MwuMethod::Exact).unwrap();
            close(r.p_value, f(&case["forced_exact"]), 1e-12, &format!("mwu {name} exact p"));
        }
    }

    #[test]
    fn kruskal_matches_scipy() {
        let fx = load_fixture("hypothesis.json");
        let k = &fx["kruskal"];
        let g: Vec<Vec<f64>> = k["groups"].as_array().unwrap().iter().map(vf).collect();
        let gr: Vec<&[f64]> = g.iter().map(|x| x.as_slice()).collect();
        let r = kruskal_wallis(&gr).unwrap();
        close(r.statistic, f(&k["statistic"]), 1e-12, "kruskal H");
        close(r.p_value, f(&k["p"]), 1e-12, "kruskal p");
    }

    #[test]
    fn exact_distribution_small_case_by_hand() {
        // m = n = 2: U in {0,1,2,2,3,4} -> P(U >= 3) = 2/6.
        assert!((mwu_exact_sf(3.0, 2, 2) - 2.0 / 6.0).abs() < 1e-15);
        assert!((mwu_exact_sf(0.0, 2, 2) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn mann_whitney_matches_r_wilcox_test() {
        // R 4.2 wilcox.test(a, b), two-sided (tests/fixtures/generate/reference.R).
        // exact = TRUE (R's default without ties below 50 values per sample) is
        // MwuMethod::Exact; exact = FALSE, correct = TRUE (what R's default falls back to
        // with ties) is MwuMethod::Asymptotic: normal approximation, tie-corrected variance,
        // continuity correction. W is the first sample's U. p: 1e-9 relative.
        let fx = load_fixture("r_reference.json");
        for c in fx["wilcox_test"].as_array().unwrap() {
            let name = format!("wilcox {} exact={}", c["name"].as_str().unwrap(), c["exact"]);
            let method = if c["exact"] == true { MwuMethod::Exact } else { MwuMethod::Asymptotic };
            let r = mann_whitney_u(&vf(&c["a"]), &vf(&c["b"]), Alternative::TwoSided, method).unwrap();
            assert_eq!((r.u, r.method), (f(&c["W"]), method), "{name}");
            close_rel(r.p_value, f(&c["p"]), 1e-9, &format!("{name} p"));
        }
    }
}
