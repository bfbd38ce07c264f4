//! Harrell's concordance index for right-censored data.

use super::check_survival;
use crate::error::{Result, StatsError};
use crate::util::{check_finite, check_len};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concordance {
    pub c_index: f64,
    pub comparable_pairs: u64,
    pub concordant: u64,
    pub discordant: u64,
    pub tied_risk: u64,
}

/// Harrell's C. `risk`: higher means earlier event expected (e.g. a Cox linear predictor).
/// A pair (i, j) is comparable when i has an event and T_i < T_j, or T_i == T_j and j is
/// censored (censored at an event time counts as surviving longer); pairs of events at the
/// same time are not comparable. Tied risks count 1/2. This equals
/// `lifelines.utils.concordance_index(T, -risk, E)`. O(n log n + pairs): fine to ~10^4.
pub fn harrell_c(times: &[f64], risk: &[f64], events: &[bool]) -> Result<Concordance> {
    check_survival(times, events)?;
    check_len("times", times.len(), "risk", risk.len())?;
    check_finite("risk score", risk)?;
    let n = times.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
    let (mut conc, mut disc, mut tied) = (0u64, 0u64, 0u64);
    for &i in &idx {
        if !events[i] {
            continue;
        }
        // all j after i in time order (or tied in time, censored)
        let start = idx.partition_point(|&k| times[k] < times[i]);
        for &j in &idx[start..] {
            if j == i || (times[j] == times[i] && events[j]) {
                continue;
            }
            if risk[i] > risk[j] {
                conc += 1
            } else if risk[i] < risk[j] {
                disc += 1
            } else {
                tied += 1
            }
        }
    }
    let comparable = conc + disc + tied;
    if comparable == 0 {
        return Err(StatsError::TooFew { what: "C-index comparable pairs", needed: 1, got: 0 });
    }
    Ok(Concordance {
        c_index: (conc as f64 + 0.5 * tied as f64) / comparable as f64,
        comparable_pairs: comparable,
        concordant: conc,
        discordant: disc,
        tied_risk: tied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn cindex_matches_lifelines() {
        let fx = load_fixture("survival.json");
        for case in fx["cindex"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let c = harrell_c(&vf(&case["times"]), &vf(&case["risk"]), &vb(&case["events"])).unwrap();
            // Same pair counting: exact up to the final division.
            close(c.c_index, f(&case["c"]), 1e-14, &format!("cindex {name}"));
        }
    }

    #[test]
    fn hand_counted_pairs() {
        // times 1(e) 2(c) 2(e) 3(e); risk 4 3 2 1 -> comparable: (1,2c),(1,2e),(1,3),(2e,3),
        // and (2e vs 2c): 2c censored at the same time counts -> risk 2 < 3 discordant.
        let c = harrell_c(&[1.0, 2.0, 2.0, 3.0], &[4.0, 3.0, 2.0, 1.0], &[true, false, true, true]).unwrap();
        assert_eq!((c.comparable_pairs, c.concordant, c.discordant), (5, 4, 1));
    }
}
