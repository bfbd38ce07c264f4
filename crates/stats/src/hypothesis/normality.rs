//! Shapiro-Wilk W test by Royston's algorithm AS R94 (1995), ported from SciPy's double
//! precision Cython translation (`scipy/stats/_ansari_swilk_statistics.pyx`, `swilk`),
//! including its AS 111 normal quantile and AS 66 normal tail (`alnorm`) so the p-values
//! agree with `scipy.stats.shapiro` to rounding.

use super::check_group;
use crate::error::{Result, StatsError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapiroWilk {
    pub statistic: f64,
    pub p_value: f64,
}

fn poly(c: &[f64], x: f64) -> f64 {
    let nord = c.len();
    let mut res = c[0];
    if nord == 1 {
        return res;
    }
    let mut p = x * c[nord - 1];
    if nord > 2 {
        for ind in (1..=nord - 2).rev() {
            p = (p + c[ind]) * x;
        }
    }
    res += p;
    res
}

/// AS 111 normal quantile (about 7 significant digits; used for the coefficients exactly
/// as in AS R94, so W matches the reference implementation).
fn ppnd(p: f64) -> f64 {
    let (a0, a1, a2, a3) = (2.50662823884, -18.61500062529, 41.39119773534, -25.44106049637);
    let (b1, b2, b3, b4) = (-8.47351093090, 23.08336743743, -21.06224101826, 3.13082909833);
    let (c0, c1, c2, c3) = (-2.78718931138, -2.29796479134, 4.85014127135, 2.32121276858);
    let (d1, d2) = (3.54388924762, 1.63706781897);
    let q = p - 0.5;
    if q.abs() <= 0.42 {
        let r = q * q;
        return q * (((a3 * r + a2) * r + a1) * r + a0) / ((((b4 * r + b3) * r + b2) * r + b1) * r + 1.0);
    }
    let mut r = if q > 0.0 { 1.0 - p } else { p };
    if r <= 0.0 {
        return 0.0;
    }
    r = (-r.ln()).sqrt();
    let t = (((c3 * r + c2) * r + c1) * r + c0) / ((d2 * r + d1) * r + 1.0);
    if q < 0.0 {
        -t
    } else {
        t
    }
}

/// AS 66 upper normal tail area as in AS R94.
fn alnorm(x: f64, mut upper: bool) -> f64 {
    let (a1, a2, a3, a4, a5, a6, a7) = (0.398942280444, 0.399903438504, 5.75885480458, 29.8213557808, 2.62433121679, 48.6959930692, 5.92885724438);
    let (b1, b2, b3, b4, b5, b6) = (0.398942280385, 3.8052e-8, 1.00000615302, 3.98064794e-4, 1.98615381364, 0.151679116635);
    let (b7, b8, b9, b10, b11, b12) = (5.29330324926, 4.8385912808, 15.1508972451, 0.742380924027, 30.789933034, 3.99019417011);
    let mut z = x;
    if !(z > 0.0) {
        upper = false;
        z = -z;
    }
    if !(z <= 7.0 || (upper && z <= 38.0)) {
        return if upper { 0.0 } else { 1.0 };
    }
    let y = 0.5 * z * z;
    let temp = if z <= 1.28 {
        0.5 - z * (a1 - a2 * y / (y + a3 - a4 / (y + a5 + a6 / (y + a7))))
    } else {
        b1 * (-y).exp() / (z - b2 + b3 / (z + b4 + b5 / (z - b6 + b7 / (z + b8 - b9 / (z + b10 + b11 / (z + b12))))))
    };
    if upper {
        temp
    } else {
        1.0 - temp
    }
}

/// Shapiro-Wilk test for 3 <= n (p-value approximation validated by Royston to n = 5000).
pub fn shapiro_wilk(x: &[f64]) -> Result<ShapiroWilk> {
    check_group(x, 0)?;
    let n = x.len();
    if n < 3 {
        return Err(StatsError::TooFew { what: "Shapiro-Wilk", needed: 3, got: n });
    }
    let mut y = x.to_vec();
    y.sort_by(|a, b| a.total_cmp(b));
    let shift = x[n / 2]; // as SciPy: subtract an element near the median (gh-15777)
    y.iter_mut().for_each(|v| *v -= shift);
    let nn2 = n / 2;
    let an = n as f64;
    let mut a = vec![0.0; nn2];
    let c1 = [0.0, 0.221157, -0.147981, -0.207119e1, 0.4434685e1, -0.2706056e1];
    let c2 = [0.0, 0.42981e-1, -0.293762, -0.1752461e1, 0.5682633e1, -0.3582633e1];
    if n == 3 {
        a[0] = 2f64.sqrt() / 2.0;
    } else {
        let an25 = an + 0.25;
        let mut summ2 = 0.0;
        for (i, ai) in a.iter_mut().enumerate() {
            *ai = ppnd((i as f64 + 1.0 - 0.375) / an25);
            summ2 += *ai * *ai;
        }
        summ2 *= 2.0;
        let ssumm2 = summ2.sqrt();
        let rsn = 1.0 / an.sqrt();
        let a1 = poly(&c1, rsn) - a[0] / ssumm2;
        let (i1, fac);
        if n > 5 {
            i1 = 2;
            let a2 = -a[1] / ssumm2 + poly(&c2, rsn);
            fac = ((summ2 - 2.0 * a[0] * a[0] - 2.0 * a[1] * a[1]) / (1.0 - 2.0 * a1 * a1 - 2.0 * a2 * a2)).sqrt();
            a[1] = a2;
        } else {
            i1 = 1;
            fac = ((summ2 - 2.0 * a[0] * a[0]) / (1.0 - 2.0 * a1 * a1)).sqrt();
        }
        a[0] = a1;
        for ai in a.iter_mut().skip(i1) {
            *ai *= -1.0 / fac;
        }
    }
    let range = y[n - 1] - y[0];
    if range < 1e-19 {
        return Err(StatsError::ZeroVariance { what: "Shapiro-Wilk" });
    }
    let coef = |i: usize, j: usize| -> f64 {
        // sign(i - j) * a[min(i, j)] with the Fortran convention sign(0) = +
        if i < j {
            -a[i]
        } else {
            a[j]
        }
    };
    let mut sx = y[0] / range;
    let mut sa = -a[0];
    let mut ind2 = n as isize - 2;
    for (ind1, &yi) in y.iter().enumerate().skip(1) {
        sx += yi / range;
        if ind1 as isize != ind2 {
            sa += coef(ind1, ind2 as usize);
        }
        ind2 -= 1;
    }
    sa /= an;
    sx /= an;
    let (mut ssa, mut ssx, mut sax) = (0.0, 0.0, 0.0);
    let mut ind2 = n as isize - 1;
    for (ind1, &yi) in y.iter().enumerate() {
        let asa = if ind1 as isize != ind2 { coef(ind1, ind2 as usize) - sa } else { -sa };
        let xsx = yi / range - sx;
        ssa += asa * asa;
        ssx += xsx * xsx;
        sax += asa * xsx;
        ind2 -= 1;
    }
    let ssassx = (ssa * ssx).sqrt();
    let w1 = (ssassx - sax) * (ssassx + sax) / (ssa * ssx);
    let w = 1.0 - w1;
    if n == 3 {
        if w < 0.75 {
            return Ok(ShapiroWilk { statistic: 0.75, p_value: 0.0 });
        }
        return Ok(ShapiroWilk { statistic: w, p_value: 1.0 - 6.0 / std::f64::consts::PI * w.sqrt().acos() });
    }
    let mut yy = w1.ln();
    let xx = an.ln();
    let (m, s);
    if n <= 11 {
        let gamma = poly(&[-0.2273e1, 0.459], an);
        if yy >= gamma {
            return Ok(ShapiroWilk { statistic: w, p_value: 1e-19 });
        }
        yy = -(gamma - yy).ln();
        m = poly(&[0.5440, -0.39978, 0.25054e-1, -0.6714e-3], an);
        s = poly(&[0.13822e1, -0.77857, 0.62767e-1, -0.20322e-2], an).exp();
    } else {
        m = poly(&[-0.15861e1, -0.31082, -0.83751e-1, 0.38915e-2], xx);
        s = poly(&[-0.4803, -0.82676e-1, 0.30302e-2], xx).exp();
    }
    Ok(ShapiroWilk { statistic: w, p_value: alnorm((yy - m) / s, true) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::load_fixture;
    use crate::util::testing::*;

    #[test]
    fn shapiro_matches_scipy() {
        let fx = load_fixture("hypothesis.json");
        for case in fx["shapiro"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let r = shapiro_wilk(&vf(&case["x"])).unwrap();
            // Same algorithm and constants; only summation order differs.
            close(r.statistic, f(&case["w"]), 1e-12, &format!("shapiro {name} W"));
            close(r.p_value, f(&case["p"]), 1e-10, &format!("shapiro {name} p"));
        }
    }

    #[test]
    fn constant_sample_is_an_error() {
        assert!(matches!(shapiro_wilk(&[2.0; 10]), Err(StatsError::ZeroVariance { .. })));
        assert!(matches!(shapiro_wilk(&[1.0, 2.0]), Err(StatsError::TooFew { .. })));
    }
}
