//! Kaplan-Meier estimator with Greenwood standard errors, log-log ("exponential Greenwood",
//! lifelines' default) and plain-log (R survfit's default) confidence intervals, median
//! survival with CI, and median follow-up by the reverse Kaplan-Meier method.

use super::check_survival;
use crate::error::Result;
use crate::util::{check_level, z_crit};
use serde::{Deserialize, Serialize};

/// One row of the KM table at a distinct observed time (event or censoring).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmStep {
    pub time: f64,
    pub n_at_risk: usize,
    pub n_events: usize,
    pub n_censored: usize,
    pub survival: f64,
    /// Greenwood standard error of S(t): S * sqrt(sum d / (n (n - d))).
    pub se: f64,
    /// Log-log ("exponential Greenwood") CI, as lifelines `confidence_interval_`.
    pub lower_loglog: f64,
    pub upper_loglog: f64,
    /// Plain log CI S * exp(-/+ z sqrt(sum d/(n(n-d)))), clipped to [0, 1] (R conf.type="log").
    pub lower_log: f64,
    pub upper_log: f64,
}

/// A survival-time quantile with its CI; `None` means "not reached".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurvivalQuantile {
    pub estimate: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KaplanMeier {
    pub steps: Vec<KmStep>,
    pub level: f64,
    /// Median survival: the first time with S(t) <= 0.5 (lifelines' rule; R's survfit takes
    /// the midpoint when S is exactly 0.5 on an interval). CI from the log-log band: the
    /// first times at which the lower/upper band drops to <= 0.5.
    pub median: SurvivalQuantile,
    /// The same median with its CI read off the plain-log band (what R's survfit prints
    /// with its default conf.type = "log").
    pub median_log_ci: SurvivalQuantile,
}

impl KaplanMeier {
    /// S(t) as a right-continuous step function (1 before the first time).
    pub fn survival_at(&self, t: f64) -> f64 {
        let k = self.steps.partition_point(|s| s.time <= t);
        if k == 0 {
            1.0
        } else {
            self.steps[k - 1].survival
        }
    }
    /// First time with S(t) <= 1 - q (q = 0.5 for the median); None if not reached.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        first_at_or_below(self.steps.iter().map(|s| (s.time, s.survival)), 1.0 - q)
    }
}

fn first_at_or_below(it: impl Iterator<Item = (f64, f64)>, level: f64) -> Option<f64> {
    for (t, s) in it {
        if s <= level {
            return Some(t);
        }
    }
    None
}

/// Kaplan-Meier estimate at `level` confidence (e.g. 0.95).
pub fn kaplan_meier(times: &[f64], events: &[bool], level: f64) -> Result<KaplanMeier> {
    check_survival(times, events)?;
    check_level(level)?;
    let z = z_crit(level);
    let mut idx: Vec<usize> = (0..times.len()).collect();
    idx.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
    let mut at_risk = times.len();
    let (mut s, mut gw) = (1.0f64, 0.0f64);
    let mut steps = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let t = times[idx[i]];
        let (mut d, mut c) = (0usize, 0usize);
        while i < idx.len() && times[idx[i]] == t {
            if events[idx[i]] {
                d += 1
            } else {
                c += 1
            }
            i += 1;
        }
        let n = at_risk as f64;
        s *= 1.0 - d as f64 / n;
        if d > 0 && d < at_risk {
            // Greenwood term; lifelines drops it (sets 0) when n == d, where S becomes 0.
            gw += d as f64 / (n * (n - d as f64));
        }
        let v = s.ln();
        let (lo_ll, hi_ll) = if s >= 1.0 {
            (1.0, 1.0) // lifelines fills the 0/0 of log(-log 1) with 1
        } else if s <= 0.0 {
            (0.0, 0.0)
        } else {
            let a = (-v).ln();
            let h = z * gw.sqrt() / v;
            ((-(a - h).exp()).exp(), (-(a + h).exp()).exp())
        };
        let (lo_l, hi_l) = ((s * (-z * gw.sqrt()).exp()).clamp(0.0, 1.0), (s * (z * gw.sqrt()).exp()).clamp(0.0, 1.0));
        steps.push(KmStep {
            time: t,
            n_at_risk: at_risk,
            n_events: d,
            n_censored: c,
            survival: s,
            se: s * gw.sqrt(),
            lower_loglog: lo_ll,
            upper_loglog: hi_ll,
            lower_log: lo_l,
            upper_log: hi_l,
        });
        at_risk -= d + c;
    }
    let median = SurvivalQuantile {
        estimate: first_at_or_below(steps.iter().map(|s| (s.time, s.survival)), 0.5),
        lower: first_at_or_below(steps.iter().map(|s| (s.time, s.lower_loglog)), 0.5),
        upper: first_at_or_below(steps.iter().map(|s| (s.time, s.upper_loglog)), 0.5),
    };
    let median_log_ci = SurvivalQuantile {
        estimate: median.estimate,
        lower: first_at_or_below(steps.iter().map(|s| (s.time, s.lower_log)), 0.5),
        upper: first_at_or_below(steps.iter().map(|s| (s.time, s.upper_log)), 0.5),
    };
    Ok(KaplanMeier { steps, level, median, median_log_ci })
}

/// Median follow-up by reverse Kaplan-Meier (Schemper & Smith 1996): censoring is the "event".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedianFollowUp {
    pub median: Option<f64>,
    /// 25th and 75th percentiles of the follow-up distribution.
    pub q1: Option<f64>,
    pub q3: Option<f64>,
}

pub fn median_follow_up(times: &[f64], events: &[bool]) -> Result<MedianFollowUp> {
    let flipped: Vec<bool> = events.iter().map(|e| !e).collect();
    let km = kaplan_meier(times, &flipped, 0.95)?;
    Ok(MedianFollowUp { median: km.quantile(0.5), q1: km.quantile(0.25), q3: km.quantile(0.75) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StatsError;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    fn opt(v: &serde_json::Value) -> Option<f64> {
        let x = f(v);
        if x.is_finite() {
            Some(x)
        } else {
            None
        }
    }

    #[test]
    fn km_matches_lifelines() {
        let fx = load_fixture("survival.json");
        for case in fx["km"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let km = kaplan_meier(&vf(&case["times"]), &vb(&case["events"]), 0.95).unwrap();
            let t: Vec<f64> = km.steps.iter().map(|s| s.time).collect();
            close_all(&t, &vf(&case["timeline"]), 0.0, &format!("km {name} times"));
            let col = |g: fn(&KmStep) -> f64| km.steps.iter().map(g).collect::<Vec<f64>>();
            // Same product-limit and Greenwood sums: 1e-12.
            close_all(&col(|s| s.survival), &vf(&case["survival"]), 1e-12, &format!("km {name} S"));
            close_all(&col(|s| s.lower_loglog), &vf(&case["lower"]), 1e-10, &format!("km {name} lower"));
            close_all(&col(|s| s.upper_loglog), &vf(&case["upper"]), 1e-10, &format!("km {name} upper"));
            close_all(&col(|s| s.se), &vf(&case["se"]), 1e-10, &format!("km {name} se"));
            close_all(&col(|s| s.lower_log), &vf(&case["lower_log"]), 1e-10, &format!("km {name} lower_log"));
            close_all(&col(|s| s.n_at_risk as f64), &vf(&case["at_risk"]), 0.0, &format!("km {name} at risk"));
            assert_eq!(km.median.estimate, opt(&case["median"]), "{name} median");
            assert_eq!(km.median.lower, opt(&case["median_lower"]), "{name} median lower");
            assert_eq!(km.median.upper, opt(&case["median_upper"]), "{name} median upper");
            let fu = median_follow_up(&vf(&case["times"]), &vb(&case["events"])).unwrap();
            assert_eq!((fu.median, fu.q1, fu.q3), (opt(&case["fu_median"]), opt(&case["fu_q1"]), opt(&case["fu_q3"])), "{name} follow-up");
        }
    }

    #[test]
    fn km_matches_published_r_survfit_aml() {
        // R survival, data(aml), Maintained group: summary(survfit(Surv(time, status) ~ 1))
        // time n.risk n.event survival std.err lower 95% CI upper 95% CI (conf.type "log")
        let rows = [
            (9.0, 11, 0.909, 0.0867, 0.7541, 1.000),
            (13.0, 10, 0.818, 0.1163, 0.6192, 1.000),
            (18.0, 8, 0.716, 0.1397, 0.4884, 1.000),
            (23.0, 7, 0.614, 0.1526, 0.3769, 0.999),
            (31.0, 5, 0.491, 0.1642, 0.2549, 0.946),
            (34.0, 4, 0.368, 0.1627, 0.1549, 0.875),
            (48.0, 2, 0.184, 0.1535, 0.0359, 0.944),
        ];
        let t = [9.0, 13.0, 13.0, 18.0, 23.0, 28.0, 31.0, 34.0, 45.0, 48.0, 161.0];
        let e = [true, true, false, true, true, false, true, true, false, true, false];
        let km = kaplan_meier(&t, &e, 0.95).unwrap();
        for (time, n, s, se, lo, hi) in rows {
            let st = km.steps.iter().find(|x| x.time == time).unwrap();
            assert_eq!(st.n_at_risk, n);
            assert!((st.survival - s).abs() < 5e-4 && (st.se - se).abs() < 5e-5, "{st:?}");
            assert!((st.lower_log - lo).abs() < 5e-5 && (st.upper_log - hi).abs() < 5e-4, "{st:?}");
        }
        // print(survfit(...)): median 31, 0.95LCL 18, 0.95UCL NA
        assert_eq!((km.median_log_ci.estimate, km.median_log_ci.lower, km.median_log_ci.upper), (Some(31.0), Some(18.0), None));
    }

    #[test]
    fn km_textbook_and_errors() {
        // Hand check: times 1,2,2,3+,4 with events at 1 and both 2s: S = .8, .4, .4, .4*...
        let km = kaplan_meier(&[1.0, 2.0, 2.0, 3.0, 4.0], &[true, true, true, false, true], 0.95).unwrap();
        let s: Vec<f64> = km.steps.iter().map(|x| x.survival).collect();
        assert_eq!(s, vec![0.8, 0.8 * 0.5, 0.8 * 0.5, 0.0]);
        assert_eq!(km.median.estimate, Some(2.0));
        assert_eq!(kaplan_meier(&[1.0, -1.0], &[true, true], 0.95).unwrap_err(), StatsError::NegativeTime { index: 1, value: -1.0 });
    }

    #[test]
    fn km_log_log_band_matches_r_survfit() {
        // R survival 3.5 survfit(Surv(t, e) ~ 1, conf.type = "log-log")
        // (tests/fixtures/generate/reference.R): same steps, S, Greenwood (R's std.err is
        // the SE of -log S, ours of S) and band, 1e-9 relative. R leaves the band NA where
        // S is 1 or 0; ours is (1, 1) and (0, 0) there.
        let fx = load_fixture("r_reference.json");
        for c in fx["survfit_loglog"].as_array().unwrap() {
            let name = format!("survfit {}", c["name"].as_str().unwrap());
            let km = kaplan_meier(&vf(&c["times"]), &vb(&c["events"]), 0.95).unwrap();
            let t: Vec<f64> = km.steps.iter().map(|s| s.time).collect();
            assert_eq!(t, vf(&c["time"]), "{name} times");
            let (surv, se, lower, upper) = (vf(&c["surv"]), vf(&c["std_err"]), vf(&c["lower"]), vf(&c["upper"]));
            for (i, s) in km.steps.iter().enumerate() {
                assert_eq!((s.n_at_risk as f64, s.n_events as f64), (f(&c["n_risk"][i]), f(&c["n_event"][i])), "{name} counts at {}", s.time);
                close_rel(s.survival, surv[i], 1e-12, &format!("{name} S at {}", s.time));
                if lower[i].is_nan() {
                    let edge = if s.survival >= 1.0 { 1.0 } else { 0.0 };
                    assert!(s.survival == edge && s.lower_loglog == edge && s.upper_loglog == edge, "{name} at {}: {s:?}", s.time);
                    continue;
                }
                close_rel(s.se, surv[i] * se[i], 1e-9, &format!("{name} se at {}", s.time));
                close_rel(s.lower_loglog, lower[i], 1e-9, &format!("{name} lower at {}", s.time));
                close_rel(s.upper_loglog, upper[i], 1e-9, &format!("{name} upper at {}", s.time));
            }
        }
    }

    #[test]
    fn median_follow_up_matches_r_reverse_km_quantiles() {
        // R survival 3.5: quantile(survfit(Surv(t, 1 - e) ~ 1), c(.25, .5, .75)). Ours is
        // the first time at which the reverse-KM S(t) <= 1 - p (lifelines' rule), which the
        // script also computes from the survfit steps (`first_below`): compared exactly.
        // R's quantile agrees except where 1 - S equals p on a whole interval
        // [t_i, t_i+1) (within sqrt(machine eps)): R then takes the midpoint
        // (t_i + t_i+1) / 2, we take t_i. The `plateau` case pins that difference.
        let fx = load_fixture("r_reference.json");
        for c in fx["follow_up"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let times = vf(&c["times"]);
            let fu = median_follow_up(&times, &vb(&c["events"])).unwrap();
            let ours = [fu.q1, fu.median, fu.q3].map(|x| x.expect("quantile reached"));
            let (first, r) = (vf(&c["first_below"]), vf(&c["r_quantile"]));
            assert_eq!(ours.to_vec(), first, "{name}: first time with S <= 1 - p");
            let mut distinct = times.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            for (i, &q) in ours.iter().enumerate() {
                if r[i] != q {
                    let next = distinct[distinct.partition_point(|&t| t <= q)];
                    assert_eq!((name, r[i]), ("plateau", (q + next) / 2.0), "R's midpoint rule at p = {}", c["probs"][i]);
                }
            }
        }
    }
}
