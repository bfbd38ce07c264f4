//! Timing of the two heavy ROC computations (dev profile is fine):
//! stratified bootstrap CI of the AUC (2000 resamples, 600 patients) and DeLong on 10^5 scores.
//! Run: cargo run --example stats_bench   (reference: benches/stats_bench.py)

use radpipe_stats::{bootstrap_auc_ci, delong_auc, delong_paired, SplitMix64};
use std::time::Instant;

fn normal(rng: &mut SplitMix64) -> f64 {
    // Box-Muller
    let u1 = rng.uniform().max(1e-300);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let mut rng = SplitMix64::new(seed);
    let y: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.35).collect();
    let a: Vec<f64> = y.iter().map(|&l| normal(&mut rng) + if l { 1.0 } else { 0.0 }).collect();
    let b: Vec<f64> = a.iter().map(|&s| s + normal(&mut rng)).collect();
    (a, b, y)
}

fn main() {
    let (s, _, y) = data(600, 1);
    let t = Instant::now();
    let r = bootstrap_auc_ci(&s, &y, 2000, 0.95, 42).expect("bootstrap");
    let dt = t.elapsed();
    println!("bootstrap AUC CI, 600 patients, 2000 resamples: {:.1} ms  (AUC {:.4}, CI {:.4}-{:.4})", dt.as_secs_f64() * 1e3, r.estimate, r.lower, r.upper);

    let (a, b, y) = data(100_000, 2);
    let t = Instant::now();
    let d = delong_auc(&a, &y, 0.95).expect("delong");
    let dt = t.elapsed();
    println!("DeLong AUC + CI, 10^5 scores: {:.1} ms  (AUC {:.4}, CI {:.4}-{:.4})", dt.as_secs_f64() * 1e3, d.auc, d.lower, d.upper);
    let t = Instant::now();
    let p = delong_paired(&a, &b, &y, 0.95).expect("paired");
    let dt = t.elapsed();
    println!("paired DeLong test, 10^5 scores x 2 predictors: {:.1} ms  (z {:.3})", dt.as_secs_f64() * 1e3, p.z);
}
