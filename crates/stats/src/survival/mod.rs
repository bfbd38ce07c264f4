//! Time-to-event statistics: Kaplan-Meier, log-rank, Cox proportional hazards (with the
//! scaled-Schoenfeld PH test) and Harrell's C-index. Times are non-negative and finite;
//! `events[i] == true` means the event was observed at `times[i]`, false means censored.

pub mod cindex;
pub mod cox;
pub mod km;
pub mod logrank;

pub use cindex::{harrell_c, Concordance};
pub use cox::{cox_ph, proportional_hazard_test, CoxFit, CoxOptions, PhTest, PhTimeTransform, Ties};
pub use km::{kaplan_meier, median_follow_up, KaplanMeier, KmStep, MedianFollowUp, SurvivalQuantile};
pub use logrank::{logrank_test, LogRank};

use super::error::{Result, StatsError};
use super::util::check_len;

pub(crate) fn check_survival(times: &[f64], events: &[bool]) -> Result<()> {
    check_len("times", times.len(), "events", events.len())?;
    if times.is_empty() {
        return Err(StatsError::Empty { what: "times" });
    }
    for (index, &value) in times.iter().enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFinite { what: "time", index, value });
        }
        if value < 0.0 {
            return Err(StatsError::NegativeTime { index, value });
        }
    }
    Ok(())
}
