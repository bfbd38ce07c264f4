use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::stages::Interp;
use radpipe_imaging::{min_max_scale, read_nifti, resample_to_spacing, write_nifti, write_nifti_as, NiftiDtype};

#[derive(Debug, Parser)]
pub struct Args {
    /// Input volume (.nii or .nii.gz).
    input: PathBuf,
    /// Output volume (.nii or .nii.gz).
    output: PathBuf,
    /// Output spacing in mm, `x,y,z` (one value for all three axes also works).
    #[arg(long, default_value = "1,1,1", value_parser = parse_spacing)]
    spacing: [f64; 3],
    /// Interpolation; masks want `nearest` (their output is written as uint8).
    #[arg(long, value_enum, default_value = "bspline3")]
    interp: Interp,
    /// Min-max scale the output to [0, 1].
    #[arg(long)]
    scale: bool,
}

fn parse_spacing(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s.split(',').map(|x| x.trim().parse::<f64>().map_err(|_| format!("`{x}` is not a number"))).collect::<Result<_, _>>()?;
    match v.as_slice() {
        [a] if *a > 0.0 => Ok([*a; 3]),
        [a, b, c] if *a > 0.0 && *b > 0.0 && *c > 0.0 => Ok([*a, *b, *c]),
        _ => Err("give one or three positive spacings in mm, e.g. 1,1,1".into()),
    }
}

/// Resample a volume in physical space to a new spacing (SimpleITK/TorchIO
/// output grid: same direction, size = ceil(size * spacing / new spacing),
/// field of view kept), cubic B-spline with its exact prefilter by default.
pub fn run(args: Args) -> ExitCode {
    let result = (|| -> Result<(), String> {
        let volume = read_nifti(&args.input).map_err(|e| e.to_string())?;
        let mut out = resample_to_spacing(&volume, args.spacing, args.interp.interpolator()).map_err(|e| format!("{}: {e}", args.input.display()))?;
        if args.scale {
            out = min_max_scale(&out);
        }
        let written = match args.interp {
            Interp::Nearest => write_nifti_as(&out, &args.output, NiftiDtype::Uint8),
            _ => write_nifti(&out, &args.output),
        };
        written.map_err(|e| e.to_string())?;
        eprintln!("{}: {:?} voxels at {:?} mm -> {:?} at {:?} mm", args.output.display(), volume.size(), volume.spacing, out.size(), out.spacing);
        Ok(())
    })();
    super::finish(result)
}
