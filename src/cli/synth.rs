use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_FAILED;
use crate::synth::{describe, generate, Preset};

#[derive(Debug, Parser)]
pub struct Args {
    /// `tiny` (about 60 patients, seconds, for tests), `demo` (about 240, the
    /// README's demo) or `paper` (610 patients at clinical resolution).
    #[arg(long, default_value = "demo", value_parser = parse_preset)]
    preset: Preset,
    /// Output folder: `<cohort>/clinical.{csv,parquet}`, `<cohort>/images/<patient_id>/{t1,t2,ce_t1,roi}.nii.gz`,
    /// `<cohort>/ground_truth.json`, `design.txt`.
    #[arg(long, required_unless_present = "describe")]
    out: Option<PathBuf>,
    /// Seed: the same seed and preset give byte-identical files.
    #[arg(long, default_value_t = 20250216)]
    seed: u64,
    /// Multiply every cohort's patient count (partitions keep both classes).
    #[arg(long, default_value_t = 1.0)]
    patients_scale: f64,
    /// Print the generative design in plain words and exit.
    #[arg(long)]
    describe: bool,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse::<Preset>().map_err(|e| e.to_string())
}

/// Synthetic multi-centre head-and-neck MRI cohorts that look like the study's
/// data (sizes, Table 1 distributions, label prevalence, clinical geometry,
/// misregistration, a learnable peritumoral signal, PFS linked to the label).
pub fn run(args: Args) -> ExitCode {
    if args.describe {
        println!("{}", describe(args.preset));
        return ExitCode::SUCCESS;
    }
    let out = args.out.expect("clap requires --out");
    match generate(args.preset, args.seed, args.patients_scale, &out) {
        Ok(summary) => {
            for c in &summary.cohorts {
                eprintln!("{}: {} patients, {} with CPS >= 20, in {}", c.name, c.n, c.n_positive, c.dir.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
