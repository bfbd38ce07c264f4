use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use radpipe_imaging::{
    apply_transform_image, apply_transform_roi, read_nifti, register, write_nifti, write_nifti_as, NiftiDtype, RegistrationConfig, TransformKind,
};

#[derive(Debug, Parser)]
pub struct Args {
    /// The fixed image (its grid is the output grid).
    fixed: PathBuf,
    /// The moving image.
    moving: PathBuf,
    /// Where to write the transform (JSON; fixed -> moving points, ITK convention).
    out_transform: PathBuf,
    /// Also write the moving image resampled onto the fixed grid (cubic B-spline).
    #[arg(long, value_name = "OUT.nii.gz")]
    resampled: Option<PathBuf>,
    /// A mask on the moving image's grid to carry onto the fixed grid (nearest neighbour)...
    #[arg(long, value_name = "ROI.nii.gz", requires = "mask_out")]
    mask_in: Option<PathBuf>,
    /// ...written here.
    #[arg(long, value_name = "ROI_OUT.nii.gz", requires = "mask_in")]
    mask_out: Option<PathBuf>,
    /// Optimise an affine transform instead of a rigid one.
    #[arg(long)]
    affine: bool,
    /// Histogram bins of the Mattes mutual information.
    #[arg(long, default_value_t = 50)]
    bins: usize,
    /// Seed of the metric's voxel sampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pyramid shrink factors, coarse to fine.
    #[arg(long, value_delimiter = ',', default_value = "4,2,1")]
    shrink: Vec<usize>,
    /// Gaussian smoothing per pyramid level, mm (one per shrink factor).
    #[arg(long, value_delimiter = ',', default_value = "2,1,0")]
    smoothing_mm: Vec<f64>,
    /// Share of the fixed image's voxels sampled by the metric, in (0, 1].
    #[arg(long, default_value_t = 0.25)]
    sampling: f64,
    /// Most optimiser iterations per level.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

/// Rigid (or affine) registration by Mattes mutual information: multi-resolution
/// (default shrink 4,2,1 with smoothing 2,1,0 mm), centred-geometry start,
/// regular-step gradient descent with physical-shift scaling. Exit 2 for
/// invalid options, 1 when an input cannot be read or registration fails.
pub fn run(args: Args) -> ExitCode {
    if args.shrink.is_empty() || args.shrink.len() != args.smoothing_mm.len() || args.shrink.contains(&0) || args.smoothing_mm.iter().any(|s| !(*s >= 0.0)) {
        eprintln!(
            "error: --shrink and --smoothing-mm need one positive factor and one non-negative sigma per level (got {:?} and {:?})",
            args.shrink, args.smoothing_mm
        );
        return ExitCode::from(super::EXIT_INVALID);
    }
    if !(args.sampling > 0.0 && args.sampling <= 1.0) || args.iterations == 0 {
        eprintln!("error: --sampling must be in (0, 1] and --iterations at least 1");
        return ExitCode::from(super::EXIT_INVALID);
    }
    let result = (|| -> Result<(), String> {
        let fixed = read_nifti(&args.fixed).map_err(|e| e.to_string())?;
        let moving = read_nifti(&args.moving).map_err(|e| e.to_string())?;
        let config = RegistrationConfig {
            transform: if args.affine { TransformKind::Affine } else { TransformKind::Euler3d },
            bins: args.bins,
            seed: args.seed,
            shrink_factors: args.shrink.clone(),
            smoothing_sigmas_mm: args.smoothing_mm.clone(),
            sampling_fraction: args.sampling,
            max_iterations: args.iterations,
            ..RegistrationConfig::default()
        };
        let r = register(&fixed, &moving, &config).map_err(|e| e.to_string())?;
        r.transform.save_json(&args.out_transform).map_err(|e| e.to_string())?;
        eprintln!("metric {:.5} (-MI), iterations {:?}, {}; parameters {:?}", r.metric, r.iterations, r.stop_reason, r.transform.parameters());
        if let Some(out) = &args.resampled {
            let v = apply_transform_image(&moving, &fixed, &r.transform).map_err(|e| e.to_string())?;
            write_nifti(&v, out).map_err(|e| e.to_string())?;
        }
        if let (Some(mask_in), Some(mask_out)) = (&args.mask_in, &args.mask_out) {
            let roi = read_nifti(mask_in).map_err(|e| e.to_string())?;
            let carried = apply_transform_roi(&roi, &fixed, &r.transform).map_err(|e| e.to_string())?;
            write_nifti_as(&carried, mask_out, NiftiDtype::Uint8).map_err(|e| e.to_string())?;
        }
        Ok(())
    })();
    super::finish(result)
}
