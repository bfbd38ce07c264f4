//! A binary label defined by a landmark of a time-to-event column, such as
//! durable clinical benefit, "progression-free survival beyond 6 months":
//! positive when the time exceeds the landmark, negative when the event
//! happened at or before it, and unclassifiable (null, counted) when the
//! patient was censored at or before it: nobody knows whether they would have
//! passed it.

use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cells::{cells, Cell};
use super::clinical::{value_text, Table};
use crate::diagnostics::{Diagnostic, Diagnostics, Origin};

/// `{ name: pfs_gt_6m, time: pfs_months, event: { column: progression }, after: 6 }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LandmarkRule {
    /// The derived column (0/1, empty when unclassifiable).
    pub name: String,
    /// The follow-up time column (the landmark's unit).
    pub time: String,
    /// The event column and which values mean event and censored.
    pub event: EventColumn,
    /// The landmark: `time > after` is positive.
    pub after: f64,
    /// The cohorts it is derived for (default: every cohort of the stage);
    /// the others get an empty column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<Vec<String>>,
}

/// An event indicator column.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventColumn {
    pub column: String,
    /// The value meaning the event happened (default 1).
    #[serde(default = "one")]
    pub value: Value,
    /// The value meaning censored (default 0). Any other value is an error.
    #[serde(default = "zero")]
    pub censored: Value,
}

fn one() -> Value {
    Value::from(1)
}

fn zero() -> Value {
    Value::from(0)
}

/// Why a patient has no landmark label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unclassified {
    /// Censored at or before the landmark.
    CensoredBefore,
    /// No time or no event value.
    Missing,
}

impl Unclassified {
    pub fn reason(self) -> &'static str {
        match self {
            Unclassified::CensoredBefore => "censored before the landmark",
            Unclassified::Missing => "no time or event value",
        }
    }
}

/// One patient's landmark label: 0 or 1, or why there is none.
pub type Landmark = Result<i32, Unclassified>;

impl LandmarkRule {
    pub fn applies_to(&self, cohort: &str) -> bool {
        self.cohorts.as_ref().is_none_or(|c| c.iter().any(|x| x == cohort))
    }
}

impl Table {
    /// Each row's landmark label. A time that is not a non-negative number,
    /// or an event value that is neither the event nor the censored value, is
    /// an error naming the row and column; an empty (or `NA`) time, or an empty event
    /// within the landmark, leaves the row unclassified.
    pub fn landmark(&self, rule: &LandmarkRule) -> Result<Vec<Landmark>, Diagnostics> {
        let whole = Origin::Unknown(self.path.clone());
        let column = |name: &str| {
            self.df
                .column(name)
                .map_err(|_| Diagnostics::from(Diagnostic::new(whole.clone(), format!("the column `{name}` that `{}` is derived from is missing", rule.name))))
        };
        let unreadable = |name: &str, e: PolarsError| Diagnostics::from(Diagnostic::new(whole.clone(), format!("column `{name}`: {e}")));
        let times = cells(column(&rule.time)?).map_err(|e| unreadable(&rule.time, e))?;
        let events = cells(column(&rule.event.column)?).map_err(|e| unreadable(&rule.event.column, e))?;
        let (on, off) = (value_text(&rule.event.value), value_text(&rule.event.censored));
        let mut diags = Diagnostics::default();
        let mut out = Vec::with_capacity(times.len());
        for (row, (time, event)) in times.into_iter().zip(events).enumerate() {
            let t = match time {
                Cell::Missing => None,
                Cell::Number(t) if t.is_finite() && t >= 0.0 => Some(t),
                Cell::Number(t) => {
                    diags.push(Diagnostic::new(
                        self.origin(row, &rule.time),
                        format!(
                            "{}, column `{}`: {t} is not a follow-up time (a non-negative number), so `{}` cannot be derived",
                            self.row_label(row),
                            rule.time,
                            rule.name
                        ),
                    ));
                    continue;
                }
                Cell::Text(t) => {
                    diags.push(Diagnostic::new(
                        self.origin(row, &rule.time),
                        format!("{}, column `{}`: `{t}` is not a number, so `{}` cannot be derived", self.row_label(row), rule.time, rule.name),
                    ));
                    continue;
                }
            };
            let e = match event {
                Cell::Missing => None,
                Cell::Number(x) => Some(format!("{x}")),
                Cell::Text(t) => Some(t),
            };
            let happened = match e {
                None => None,
                Some(e) if e == on => Some(true),
                Some(e) if e == off => Some(false),
                Some(e) => {
                    diags.push(
                        Diagnostic::new(
                            self.origin(row, &rule.event.column),
                            format!(
                                "{}, column `{}`: `{e}` is neither the event value `{on}` nor the censored value `{off}`",
                                self.row_label(row),
                                rule.event.column
                            ),
                        )
                        .hint("set `event: { column, value, censored }` of the landmark"),
                    );
                    continue;
                }
            };
            out.push(match (t, happened) {
                (None, _) => Err(Unclassified::Missing),
                (Some(t), _) if t > rule.after => Ok(1),
                (Some(_), Some(true)) => Ok(0),
                (Some(_), Some(false)) => Err(Unclassified::CensoredBefore),
                (Some(_), None) => Err(Unclassified::Missing),
            });
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }
}
