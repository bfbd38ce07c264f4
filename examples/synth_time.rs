//! Time synthetic-cohort generation.
//!
//! cargo run --example synth_time -- [tiny demo paper] [--seed N] [--out DIR] [--only COHORT] [--measure]
//!
//! `--measure` prints, per cohort, the AUC for the label of the image-derived
//! rim-enhancement statistic and of mean tumour intensity (CE-T1).

use std::path::PathBuf;
use std::time::Instant;

use radpipe::synth::{generate_with, measure, CohortKind, GenerateOptions, Preset};
use radpipe_imaging::read_nifti;
use radpipe_stats::auc;

fn main() {
    let mut presets = Vec::new();
    let mut seed = 42u64;
    let mut out = std::env::temp_dir().join("radpipe_synth_time");
    let mut only: Option<Vec<CohortKind>> = None;
    let mut do_measure = false;
    let mut scale = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().unwrap().parse().unwrap(),
            "--out" => out = PathBuf::from(args.next().unwrap()),
            "--measure" => do_measure = true,
            "--scale" => scale = args.next().unwrap().parse().unwrap(),
            "--only" => {
                let c = match args.next().unwrap().as_str() {
                    "institution1" => CohortKind::Institution1,
                    "external" => CohortKind::External,
                    _ => CohortKind::Ici,
                };
                only.get_or_insert_with(Vec::new).push(c);
            }
            p => presets.push(p.parse::<Preset>().unwrap()),
        }
    }
    if presets.is_empty() {
        presets = vec![Preset::Tiny, Preset::Demo];
    }
    for p in presets {
        let dir = out.join(p.name());
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        let opts = GenerateOptions { images: true, cohorts: only.clone() };
        let s = generate_with(p, seed, scale, &dir, &opts).expect("generate");
        let dt = t0.elapsed().as_secs_f64();
        println!("{}: {} patients in {:.1} s ({:.3} s/patient) -> {}", p.name(), s.n_patients, dt, dt / s.n_patients as f64, dir.display());
        if do_measure {
            for c in &s.cohorts {
                let gt = radpipe::synth::CohortGroundTruth::read(&c.dir.join("ground_truth.json")).unwrap();
                let (mut rim, mut mean, mut lab) = (Vec::new(), Vec::new(), Vec::new());
                for pt in &gt.patients {
                    let d = c.dir.join("images").join(&pt.patient_id);
                    let ce = read_nifti(d.join("ce_t1.nii.gz")).unwrap();
                    let roi = read_nifti(d.join("roi.nii.gz")).unwrap();
                    rim.push(measure::rim_enhancement(&ce, &roi).unwrap_or(0.0));
                    mean.push(measure::mean_in_roi(&ce, &roi).unwrap_or(0.0));
                    lab.push(pt.label);
                }
                println!("  {}: rim AUC {:.3}, mean-intensity AUC {:.3}", c.name, auc(&rim, &lab).unwrap(), auc(&mean, &lab).unwrap());
            }
        }
    }
}
