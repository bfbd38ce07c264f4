//! Descriptive statistics: quantiles by linear interpolation between order
//! statistics (NumPy's default, R's type 7), the median and quartiles.

use crate::error::{Result, StatsError};
use crate::util::check_finite;

/// The `q`-quantile (0 <= q <= 1) of sorted, finite values; NaN when there are none.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Median and quartiles (type 7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quartiles {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
}

/// The median and quartiles of `x` (any order).
pub fn quartiles(x: &[f64]) -> Result<Quartiles> {
    if x.is_empty() {
        return Err(StatsError::Empty { what: "values" });
    }
    check_finite("value", x)?;
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    Ok(Quartiles { q1: quantile(&s, 0.25), median: quantile(&s, 0.5), q3: quantile(&s, 0.75) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_are_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [25, 50, 75]) = [2, 3, 4]; of [1, 2, 3, 4]: [1.75, 2.5, 3.25]
        let q = quartiles(&[10.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((q.q1, q.median, q.q3), (2.0, 3.0, 4.0));
        let q = quartiles(&[4.0, 3.0, 2.0, 1.0]).unwrap();
        assert_eq!((q.q1, q.median, q.q3), (1.75, 2.5, 3.25));
        assert!(quartiles(&[]).is_err());
        assert!(quantile(&[], 0.5).is_nan());
        assert!(quartiles(&[1.0, f64::NAN]).is_err());
    }
}
