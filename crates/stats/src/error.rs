//! The one error type of the statistics module. Variants name what is wrong with the
//! data, with indices where one value is at fault; callers add stage/cohort/column context.

/// Everything that can go wrong when a statistic is computed on user data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A binary-outcome statistic got only one class.
    #[error("need both classes: got {positives} positive and {negatives} negative cases")]
    OneClass { positives: usize, negatives: usize },
    /// A score/value is NaN or infinite.
    #[error("{what} at index {index} is not finite ({value})")]
    NonFinite { what: &'static str, index: usize, value: f64 },
    /// A survival time is negative.
    #[error("negative time at index {index} ({value})")]
    NegativeTime { index: usize, value: f64 },
    /// A probability is outside [0, 1] (or outside (0, 1) where a logit is needed).
    #[error("probability at index {index} is outside {range} ({value})")]
    ProbabilityOutOfRange { index: usize, value: f64, range: &'static str },
    /// Two inputs that must be parallel have different lengths.
    #[error("length mismatch: {a} has {len_a} values but {b} has {len_b}")]
    LengthMismatch { a: &'static str, len_a: usize, b: &'static str, len_b: usize },
    /// An input is empty.
    #[error("{what} is empty")]
    Empty { what: &'static str },
    /// A group (by position in the caller's list of groups) has no observations.
    #[error("group {group} is empty")]
    EmptyGroup { group: usize },
    /// Too few observations for the statistic.
    #[error("{what} needs at least {needed} observations, got {got}")]
    TooFew { what: &'static str, needed: usize, got: usize },
    /// A survival statistic needs at least one event.
    #[error("no events observed")]
    NoEvents,
    /// A parameter is outside its domain.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// A contingency table is unusable (ragged, zero margin, too large...).
    #[error("invalid contingency table: {reason}")]
    InvalidTable { reason: String },
    /// A linear system is singular (collinear covariates, constant column...).
    #[error("singular matrix in {what}")]
    Singular { what: &'static str },
    /// An iterative fit did not converge (e.g. perfect separation).
    #[error("{what} did not converge in {iterations} iterations")]
    NotConverged { what: &'static str, iterations: usize },
    /// All observations are identical, so the statistic is undefined.
    #[error("{what}: all values are identical")]
    ZeroVariance { what: &'static str },
}

pub type Result<T> = std::result::Result<T, StatsError>;
