//! Table-1 group comparison of a continuous variable: Shapiro-Wilk in every group decides
//! between a parametric test (Welch t for two groups, one-way ANOVA for more) and a rank
//! test (Mann-Whitney U / Kruskal-Wallis).

use super::normality::{shapiro_wilk, ShapiroWilk};
use super::parametric::{one_way_anova, t_test};
use super::rank::{kruskal_wallis, mann_whitney_u, Alternative, MwuMethod};
use crate::error::{Result, StatsError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupTest {
    WelchT,
    Anova,
    MannWhitney,
    KruskalWallis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupComparison {
    pub test: GroupTest,
    pub statistic: f64,
    pub p_value: f64,
    /// Shapiro-Wilk per group; None where the group has < 3 values or zero range
    /// (such a group counts as not shown to be normal).
    pub normality: Vec<Option<ShapiroWilk>>,
}

/// Parametric test iff every group has Shapiro-Wilk p >= `normality_alpha` (e.g. 0.05).
pub fn compare_groups(groups: &[&[f64]], normality_alpha: f64) -> Result<GroupComparison> {
    if groups.len() < 2 {
        return Err(StatsError::TooFew { what: "groups to compare", needed: 2, got: groups.len() });
    }
    let normality: Vec<Option<ShapiroWilk>> = groups.iter().map(|g| shapiro_wilk(g).ok()).collect();
    let normal = normality.iter().all(|s| s.as_ref().is_some_and(|s| s.p_value >= normality_alpha));
    let (test, statistic, p_value) = match (normal, groups.len()) {
        (true, 2) => {
            let t = t_test(groups[0], groups[1], true)?;
            (GroupTest::WelchT, t.statistic, t.p_value)
        }
        (true, _) => {
            let a = one_way_anova(groups)?;
            (GroupTest::Anova, a.statistic, a.p_value)
        }
        (false, 2) => {
            let m = mann_whitney_u(groups[0], groups[1], Alternative::TwoSided, MwuMethod::Auto)?;
            (GroupTest::MannWhitney, m.u, m.p_value)
        }
        (false, _) => {
            let k = kruskal_wallis(groups)?;
            (GroupTest::KruskalWallis, k.statistic, k.p_value)
        }
    };
    Ok(GroupComparison { test, statistic, p_value, normality })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn picks_rank_test_for_skewed_data_and_t_for_normal() {
        let fx = load_fixture("hypothesis.json");
        let sw = fx["shapiro"].as_array().unwrap();
        let get = |n: &str| vf(&sw.iter().find(|c| c["name"] == n).unwrap()["x"]);
        let (n50, e50, n200) = (get("normal_50"), get("exponential_50"), get("normal_200"));
        let r = compare_groups(&[&n50, &e50], 0.05).unwrap();
        assert_eq!(r.test, GroupTest::MannWhitney);
        let normal_ok = [&n50, &n200].iter().all(|x| shapiro_wilk(x).unwrap().p_value >= 0.05);
        let r = compare_groups(&[&n50, &n200], 0.05).unwrap();
        assert_eq!(r.test, if normal_ok { GroupTest::WelchT } else { GroupTest::MannWhitney });
        let r3 = compare_groups(&[&n50, &e50, &n200], 0.05).unwrap();
        assert_eq!(r3.test, GroupTest::KruskalWallis);
        close(r3.p_value, kruskal_wallis(&[&n50, &e50, &n200]).unwrap().p_value, 0.0, "choose kw");
    }
}
