//! One patient's images: anatomy + tumour rendered on the CE-T1 grid (padded in z
//! for T1/T2), T1/T2 resampled through their misregistration (imaging module,
//! linear), then gain, bias and Rician noise per sequence; ROI on the CE-T1 grid.

use std::path::Path;

use ndarray::{s, Array3};
use serde::{Deserialize, Serialize};

use crate::synth::anatomy::Anatomy;
use crate::synth::clinical::ClinicalRow;
use crate::synth::presets::{CohortSpec, PresetConfig};
use crate::synth::rng::{stream, uniform};
use crate::synth::scanner::{GridGeometry, Misregistration, SequenceAcquisition};
use crate::synth::tumour::{SignalModel, Tumour};
use crate::synth::SynthError;
use radpipe_imaging::{mat_vec, resample_to_grid, write_nifti_as, Grid, Interpolator, NiftiDtype, Vec3, Volume};

/// Largest misregistration of T1 / T2 relative to CE-T1.
pub const MISREG_MAX_DEG: f64 = 4.0;
pub const MISREG_MAX_MM: f64 = 4.0;
/// Extra slices rendered on each side for the misregistration resampling.
const Z_PAD: usize = 2;

/// Acquisition of the three sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acquisitions {
    pub t1: SequenceAcquisition,
    pub t2: SequenceAcquisition,
    pub ce_t1: SequenceAcquisition,
}

/// Everything drawn for one patient's images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagingTruth {
    pub grid: GridGeometry,
    pub anatomy: Anatomy,
    pub tumour: Tumour,
    /// Tumour centre as a continuous CE-T1 voxel index.
    pub tumour_centre_index: Vec3,
    pub acquisition: Acquisitions,
    pub misregistration_t1: Misregistration,
    pub misregistration_t2: Misregistration,
    pub roi_voxels: usize,
    pub roi_volume_mm3: f64,
}

/// The four volumes of a patient (ROI 0/1).
pub struct PatientImages {
    pub t1: Volume,
    pub t2: Volume,
    pub ce_t1: Volume,
    pub roi: Volume,
}

/// Draw and render one patient.  Deterministic in (seed, cohort index, patient index).
// The generative story of one patient, in the order the ground truth documents
// it; every draw consumes the patient's RNG in sequence, so moving steps into
// helpers must not reorder them (and would make that easy to miss).
#[allow(clippy::too_many_lines)]
pub fn simulate(
    cfg: &PresetConfig,
    spec: &CohortSpec,
    cohort_index: usize,
    patient_index: usize,
    row: &ClinicalRow,
    model: &SignalModel,
    seed: u64,
) -> Result<(ImagingTruth, PatientImages), SynthError> {
    let mut rng = stream(seed, 10 + cohort_index as u64, patient_index as u64);
    let scanner = &spec.scanner;
    let neck_centre = [uniform(&mut rng, -5.0, 5.0), uniform(&mut rng, 10.0, 30.0), uniform(&mut rng, -80.0, -40.0)];
    let grid = GridGeometry::sample(&mut rng, scanner, cfg.dims, cfg.inplane_spacing_factor, neck_centre);
    let hf = grid.half_fov_inplane();
    // leave room for the field-of-view jitter and the neck's widening along z
    let anatomy = Anatomy::sample(&mut rng, neck_centre, [hf * 0.78, hf * 0.78]);
    let z_half = 0.5 * (cfg.dims[2] as f64 - 2.0) * grid.spacing[2];
    let mut tumour = Tumour::sample(&mut rng, model, row.label(), row.t_stage, &anatomy, z_half, scanner.label_effect_factor, scanner.enhancement_factor);
    // keep the tumour's slab inside the stack: clamp the centre's slice index
    let probe = grid.volume(Array3::zeros((1, 1, 1)));
    let mut ci = probe.physical_to_index(&tumour.centre);
    let nk = cfg.dims[2] as f64;
    let kr = (tumour.semi_axes.iter().cloned().fold(0.0, f64::max) * 0.9 / grid.spacing[2]).min((nk - 1.0) / 2.0);
    ci[2] = ci[2].clamp(kr, nk - 1.0 - kr);
    tumour.centre = probe.index_to_physical(&ci);
    let acquisition = Acquisitions {
        t1: SequenceAcquisition::sample(&mut rng, scanner, 0),
        t2: SequenceAcquisition::sample(&mut rng, scanner, 1),
        ce_t1: SequenceAcquisition::sample(&mut rng, scanner, 2),
    };
    let grid_centre = probe_center(&grid);
    let misregistration_t1 = Misregistration::sample(&mut rng, grid_centre, MISREG_MAX_DEG, MISREG_MAX_MM);
    let misregistration_t2 = Misregistration::sample(&mut rng, grid_centre, MISREG_MAX_DEG, MISREG_MAX_MM);

    // render on the z-padded grid
    let [ni, nj, nkk] = cfg.dims;
    let nke = nkk + 2 * Z_PAD;
    let shift = mat_vec(&grid.direction, &[0.0, 0.0, -(Z_PAD as f64) * grid.spacing[2]]);
    let ext_origin = [0, 1, 2].map(|a| grid.origin[a] + shift[a]);
    let ext = Volume::new(Array3::zeros((1, 1, 1)), grid.spacing, ext_origin, grid.direction)?;
    let m = ext.index_to_physical_matrix();
    let mut seq = [Array3::<f32>::zeros((ni, nj, nke)), Array3::<f32>::zeros((ni, nj, nke)), Array3::<f32>::zeros((ni, nj, nke))];
    let mut roi = Array3::<f32>::zeros((ni, nj, nkk));
    let mut roi_voxels = 0usize;
    let [s0, s1, s2] = &mut seq;
    let (d0, d1, d2) = (s0.as_slice_mut().unwrap(), s1.as_slice_mut().unwrap(), s2.as_slice_mut().unwrap());
    let mut flat = 0usize;
    for i in 0..ni {
        for j in 0..nj {
            for k in 0..nke {
                let idx = [i as f64, j as f64, k as f64];
                let mut p = [0.0; 3];
                for r in 0..3 {
                    p[r] = ext_origin[r] + m[r][0] * idx[0] + m[r][1] * idx[1] + m[r][2] * idx[2];
                }
                let mut v = anatomy.signal(&p);
                if let Some(ts) = tumour.sample_at(&p) {
                    tumour.apply(&mut v, &ts);
                    if ts.d_mm < 0.0 && k >= Z_PAD && k < Z_PAD + nkk {
                        roi[[i, j, k - Z_PAD]] = 1.0;
                        roi_voxels += 1;
                    }
                }
                d0[flat] = v[0].max(0.0) as f32;
                d1[flat] = v[1].max(0.0) as f32;
                d2[flat] = v[2].max(0.0) as f32;
                flat += 1;
            }
        }
    }
    let [t1e, t2e, cee] = seq;
    let ce_truth = cee.slice(s![.., .., Z_PAD..Z_PAD + nkk]).to_owned();
    let out_grid = Grid { size: cfg.dims, spacing: grid.spacing, origin: grid.origin, direction: grid.direction };
    let t1_ext = Volume::new(t1e, grid.spacing, ext_origin, grid.direction)?;
    let t2_ext = Volume::new(t2e, grid.spacing, ext_origin, grid.direction)?;
    let mut t1 = resample_to_grid(&t1_ext, &out_grid, Some(&misregistration_t1.applied), Interpolator::Linear, 0.0)?;
    let mut t2 = resample_to_grid(&t2_ext, &out_grid, Some(&misregistration_t2.applied), Interpolator::Linear, 0.0)?;
    let mut ce_t1 = grid.volume(ce_truth);
    let mut nrng = stream(seed, 500 + cohort_index as u64, patient_index as u64);
    acquisition.t1.acquire(&mut t1, &mut nrng);
    acquisition.t2.acquire(&mut t2, &mut nrng);
    acquisition.ce_t1.acquire(&mut ce_t1, &mut nrng);
    let roi = grid.volume(roi);
    let voxel_mm3 = grid.spacing.iter().product::<f64>();
    let truth = ImagingTruth {
        tumour_centre_index: ci,
        grid,
        anatomy,
        tumour,
        acquisition,
        misregistration_t1,
        misregistration_t2,
        roi_voxels,
        roi_volume_mm3: roi_voxels as f64 * voxel_mm3,
    };
    Ok((truth, PatientImages { t1, t2, ce_t1, roi }))
}

fn probe_center(g: &GridGeometry) -> Vec3 {
    g.volume(Array3::zeros((1, 1, 1))).index_to_physical(&[0, 1, 2].map(|a| (g.size[a] as f64 - 1.0) / 2.0))
}

/// Write `t1, t2, ce_t1` (int16) and `roi` (uint8) as `.nii.gz` into `dir`.
pub fn write_images(images: &PatientImages, dir: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
    write_nifti_as(&images.t1, dir.join("t1.nii.gz"), NiftiDtype::Int16)?;
    write_nifti_as(&images.t2, dir.join("t2.nii.gz"), NiftiDtype::Int16)?;
    write_nifti_as(&images.ce_t1, dir.join("ce_t1.nii.gz"), NiftiDtype::Int16)?;
    write_nifti_as(&images.roi, dir.join("roi.nii.gz"), NiftiDtype::Uint8)?;
    Ok(())
}
