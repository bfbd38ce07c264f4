//! Table-1 hypothesis tests, matching SciPy's defaults unless stated:
//! [`parametric`] (Student/Welch t, one-way ANOVA), [`rank`] (Mann-Whitney U, Kruskal-Wallis),
//! [`contingency`] (chi-square, Fisher 2x2 with conditional MLE odds ratio, r x c Fisher),
//! [`normality`] (Shapiro-Wilk) and [`choose`] (parametric vs rank test by Shapiro-Wilk).

pub mod choose;
pub mod contingency;
pub mod normality;
pub mod parametric;
pub mod rank;

pub use choose::{compare_groups, GroupComparison, GroupTest};
pub use contingency::{chi_square, fisher_exact, fisher_exact_rxc, ChiSquare, FisherExact, FisherRxc, FisherRxcMethod};
pub use normality::{shapiro_wilk, ShapiroWilk};
pub use parametric::{one_way_anova, t_test, Anova, TTest};
pub use rank::{kruskal_wallis, mann_whitney_u, Alternative, KruskalWallis, MannWhitney, MwuMethod};

use crate::error::{Result, StatsError};
use crate::util::check_finite;

/// Validates one sample of a group comparison (non-empty, finite).
pub(crate) fn check_group(x: &[f64], group: usize) -> Result<()> {
    if x.is_empty() {
        return Err(StatsError::EmptyGroup { group });
    }
    check_finite("value", x)
}
