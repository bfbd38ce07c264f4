//! The design of a preset in plain words.

use crate::synth::presets::{cohort_counts, config, Preset, HR_PDL1_HIGH, LOG_HR_N_STAGE, LOG_HR_T_STAGE};
use crate::synth::tumour::SignalModel;

/// Plain-language description of what `generate` writes for `preset` (scale 1).
pub fn describe(preset: Preset) -> String {
    let cfg = config(preset);
    let m = SignalModel::default();
    let mut s = String::new();
    s.push_str(&format!(
        "radpipe synthetic HNSCC PD-L1 cohort, preset '{}'.\n\n\
         Purpose: stand-in for the private data of the MRI deep-learning study of PD-L1 \
         expression (CPS >= 20) in head and neck squamous cell carcinoma (T1WI, T2WI and \
         contrast-enhanced T1WI). Nothing here is real patient data.\n\n",
        preset.name()
    ));
    s.push_str("Cohorts (patients / CPS >= 20 at scale 1):\n");
    for c in &cfg.cohorts {
        let (n, pos) = cohort_counts(c, 1.0);
        s.push_str(&format!(
            "  - {} (ids {}-0001...): {} patients, {} with CPS >= 20 ({:.1}%), scanner {}\n",
            c.name,
            c.kind.id_prefix(),
            n,
            pos,
            100.0 * pos as f64 / n as f64,
            c.scanner.name
        ));
    }
    s.push_str(
        "  institution1 is the pool of the study's training (267) and internal validation (115) \
         cohorts, to be split 7:3 (stratified) downstream; every cohort has at least 10 (institution1) \
         or 3 (others) patients of each class, so a 7:3 and a further 80:20 stratified split keep both \
         classes. The external cohort is institution 2 (other scanner); the ICI cohort is an \
         immunotherapy-treated cohort of institution 1 with durable clinical benefit (DCB = PFS > 6 months).\n\n",
    );
    s.push_str(
        "Clinical table (clinical.csv per cohort): age (normal with Table 1 mean/SD), sex, smoking, \
         drinking, differentiation, T stage (T1..T4; Table 1 lists no T1), N stage (N0..N3) drawn with the \
         exact Table 1 counts of the cohort (largest-remainder apportionment at other scales, then shuffled, \
         independently of each other and of the label). Where Table 1's percentages disagree with its counts \
         the counts are used. The ICI cohort's table is not in the paper; it uses institution 1's marginals. \
         CPS: integer, 20..100 for positives, 0 (30%) or 1..19 otherwise; the number of positives is exact.\n\n",
    );
    s.push_str(&format!(
        "Survival: Weibull proportional hazards, shape 1.2, HR {HR_PDL1_HIGH} for CPS >= 20, log-HR {LOG_HR_T_STAGE} \
         per T stage above T2 and {LOG_HR_N_STAGE} per N stage. Institution 1 / external: reference median PFS 20 months, \
         administrative censoring uniform on 3..42 months and loss to follow-up 0.8%/month. ICI: baseline solved so \
         that the expected share with PFS > 6 months is 23.4%, administrative censoring uniform on 7..30 months and loss to follow-up 1.5%/month; `dcb` (PFS > 6 months) is empty for a patient censored at or before 6 months.\n\n"
    ));
    s.push_str(&format!(
        "Images (images/<patient_id>/{{t1,t2,ce_t1,roi}}.nii.gz): volumes {}x{}x{}, axial stacks with oblique \
         direction cosines (up to 10 deg at institution 1, 15 deg external), in-plane spacing from the scanner \
         protocol (0.70-0.86 mm at institution 1, 0.59-0.70 mm external{}), slices 4-5 mm (institution 1) or \
         5-6 mm (external). Anatomy: neck outline with subcutaneous fat, airway, vertebral body and spinal canal, \
         sternocleidomastoid, paraspinal and prevertebral muscles, parapharyngeal fat, carotid and jugular vessels. \
         Tumour: lobulated rotated ellipsoid, maximal diameter by T stage (T1 12-20, T2 20-34, T3 30-44, T4 36-54 mm), \
         off-midline, necrotic core in 30% of T3/T4; T1 iso/hypointense to muscle, T2 hyperintense, CE-T1 enhancing. \
         T1 and T2 are offset from CE-T1 by a random rigid transform (up to {} deg, {} mm), resampled with the \
         imaging module (linear); the ROI (uint8) is the tumour on the CE-T1 grid. Each sequence gets a per-patient \
         gain, a smooth multiplicative bias field and Rician noise, stored as int16.\n\n",
        cfg.dims[0],
        cfg.dims[1],
        cfg.dims[2],
        if cfg.inplane_spacing_factor > 1.0 {
            format!(", multiplied by {:.2} in this preset so the small matrix still covers the neck", cfg.inplane_spacing_factor)
        } else {
            String::new()
        },
        crate::synth::patient::MISREG_MAX_DEG,
        crate::synth::patient::MISREG_MAX_MM,
    ));
    s.push_str(&format!(
        "Label signal (subtle, partly peritumoral): CE-T1 rim enhancement centred 0.5 mm outside the tumour \
         boundary, strength {:.2} vs {:.2} (CPS < 20 vs >= 20, SD {:.2}) of the tumour enhancement; texture \
         heterogeneity {:.2} vs {:.2} (SD {:.2}); a T2 peritumoral halo {:.2} vs {:.2} (SD {:.2}) and the T1 tumour \
         level {:.2} vs {:.2} (SD {:.2}; muscle 0.45), drawn independently given the label, so that each sequence \
         carries its own evidence and a fusion of the three can beat any one of them. Tumour size, shape, position and core enhancement do not depend on the label. \
         Centre effect: the external scanner has other intensity scales, more noise, a stronger bias field, thicker \
         slices, 15% less enhancement and only 80% of the label-dependent rim/texture difference, so external \
         validation is harder than internal.\n\n",
        m.rim_mean[0], m.rim_mean[1], m.rim_sd, m.heterogeneity_mean[0], m.heterogeneity_mean[1], m.heterogeneity_sd,
        m.t2_halo_mean[0], m.t2_halo_mean[1], m.t2_halo_sd, m.t1_level_mean[0], m.t1_level_mean[1], m.t1_level_sd,
    ));
    s.push_str(
        "ground_truth.json per cohort records every generative parameter and, per patient, the label, CPS, \
         survival latents (linear predictor, event and censoring times), grid geometry, anatomy, tumour \
         (centre, semi-axes, rotation, rim strength, heterogeneity, ...), acquisition (gain, bias, noise) and the \
         applied misregistration transforms with their inverses. Same seed and preset give byte-identical files.\n",
    );
    s
}
