//! Statistics for imaging-biomarker studies, checked against SciPy, scikit-learn and
//! lifelines through the fixtures in tests/fixtures/stats (generator:
//! tests/fixtures/generate/stats.py), and against R 4.2 (stats, survival 3.5, pROC 1.18)
//! through tests/fixtures/stats/r_reference.json (generator:
//! tests/fixtures/generate/reference.R, `make r-fixtures`). Pure Rust; distributions from statrs.
//!
//! - [`roc`]: ROC curve, AUC, DeLong CI and tests, bootstrap CI.
//! - [`threshold`]: Youden point, metrics at a threshold with Wilson CIs, Clopper-Pearson CI.
//! - [`calibration`]: Brier, calibration curve, Hosmer-Lemeshow, recalibration.
//! - [`dca`]: decision-curve net benefit.
//! - [`describe`]: quantiles (NumPy's linear rule), median and quartiles.
//! - [`survival`]: Kaplan-Meier, log-rank, Cox PH, C-index.
//! - [`spread`]: mean, SD and the t CI of the mean over repeated runs (sweep members).
//! - [`hypothesis`]: Table-1 tests (t, ANOVA, Mann-Whitney, Kruskal-Wallis, chi-square,
//!   Fisher, Shapiro-Wilk).

// `!(x > 0.0)` is used on purpose: it is also true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod calibration;
mod dca;
mod describe;
mod error;
pub mod hypothesis;
mod roc;
mod spread;
pub mod survival;
mod threshold;
mod util;

pub use calibration::{
    brier_score, calibration_curve, calibration_intercept_slope, hosmer_lemeshow, BinStrategy, CalibrationBin, CalibrationFit, HosmerLemeshow,
};
pub use dca::{net_benefit, NetBenefit};
pub use describe::{quantile, quartiles, Quartiles};
pub use error::StatsError;
pub use roc::{auc, bootstrap_auc_ci, delong_auc, delong_paired, delong_unpaired, roc_curve, AucCi, AucComparison, BootstrapCi, RocCurve};
pub use spread::{spread, Spread};
pub use threshold::{clopper_pearson, metrics_at_threshold, wilson, youden, Proportion, ThresholdMetrics, YoudenPoint};
pub use util::SplitMix64;
