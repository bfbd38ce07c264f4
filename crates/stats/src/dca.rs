//! Decision-curve analysis (Vickers & Elkin 2006): net benefit of the model, treat-all and
//! treat-none over a grid of threshold probabilities. A patient is treated when p >= pt.

use super::error::{Result, StatsError};
use super::util::check_len;
use serde::{Deserialize, Serialize};

/// Net benefit at one threshold probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetBenefit {
    pub threshold: f64,
    pub model: f64,
    pub treat_all: f64,
    /// Always 0.
    pub treat_none: f64,
    pub true_positives: usize,
    pub false_positives: usize,
}

/// NB(pt) = TP/n - FP/n * pt/(1 - pt); treat-all uses TP = all events, FP = all non-events.
/// Thresholds must lie in [0, 1).
pub fn net_benefit(probs: &[f64], labels: &[bool], thresholds: &[f64]) -> Result<Vec<NetBenefit>> {
    check_len("probabilities", probs.len(), "labels", labels.len())?;
    if probs.is_empty() {
        return Err(StatsError::Empty { what: "probabilities" });
    }
    for (index, &value) in probs.iter().enumerate() {
        if !(0.0..=1.0).contains(&value) {
            return Err(StatsError::ProbabilityOutOfRange { index, value, range: "[0, 1]" });
        }
    }
    let n = probs.len() as f64;
    let events = labels.iter().filter(|&&y| y).count();
    let prev = events as f64 / n;
    thresholds
        .iter()
        .map(|&pt| {
            if !(0.0..1.0).contains(&pt) {
                return Err(StatsError::InvalidParameter { name: "threshold", reason: format!("{pt} is outside [0, 1)") });
            }
            let w = pt / (1.0 - pt);
            let (mut tp, mut fp) = (0usize, 0usize);
            for (&p, &y) in probs.iter().zip(labels) {
                if p >= pt {
                    if y {
                        tp += 1
                    } else {
                        fp += 1
                    }
                }
            }
            Ok(NetBenefit {
                threshold: pt,
                model: tp as f64 / n - fp as f64 / n * w,
                treat_all: prev - (1.0 - prev) * w,
                treat_none: 0.0,
                true_positives: tp,
                false_positives: fp,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn net_benefit_matches_fixture() {
        let fx = load_fixture("calibration.json");
        let d = &fx["dca"];
        let nb = net_benefit(&vf(&fx["probs"]), &vb(&fx["labels"]), &vf(&d["thresholds"])).unwrap();
        close_all(&nb.iter().map(|x| x.model).collect::<Vec<_>>(), &vf(&d["model"]), 1e-12, "dca model");
        close_all(&nb.iter().map(|x| x.treat_all).collect::<Vec<_>>(), &vf(&d["treat_all"]), 1e-12, "dca all");
    }

    #[test]
    fn hand_computed_net_benefit() {
        // 4 patients, p = .1 .4 .6 .9, events at .6 and .9 and .1; pt = 0.5 -> TP 2, FP 0.
        let r = net_benefit(&[0.1, 0.4, 0.6, 0.9], &[true, false, true, true], &[0.5, 0.25]).unwrap();
        assert_eq!(r[0].model, 0.5);
        assert!((r[0].treat_all - (0.75 - 0.25)).abs() < 1e-15);
        // pt = .25: treated .4 .6 .9 -> TP 2, FP 1: 2/4 - 1/4 * 1/3
        assert!((r[1].model - (0.5 - 0.25 / 3.0)).abs() < 1e-15);
        assert!(net_benefit(&[0.5], &[true], &[1.0]).is_err());
    }
}
