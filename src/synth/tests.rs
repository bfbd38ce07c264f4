//! End-to-end tests of `generate` (tiny preset; the paper-preset checks are ignored
//! by default because they take minutes: run `cargo test -- --ignored`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::synth::measure;
use crate::synth::*;
use radpipe_imaging::{read_nifti, Volume};
use radpipe_stats::auc;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("radpipe_synth_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Every file under `dir` (relative path -> bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn read_gt(dir: &Path, cohort: &str) -> CohortGroundTruth {
    CohortGroundTruth::read(&dir.join(cohort).join("ground_truth.json")).unwrap()
}

/// Deterministic output, geometry read back, ROI inside the anatomy (tiny preset).
#[test]
fn tiny_generation_is_deterministic_and_geometrically_sound() {
    let a = temp_dir("det_a");
    let b = temp_dir("det_b");
    let c = temp_dir("det_c");
    let sa = generate(Preset::Tiny, 7, 1.0, &a).unwrap();
    generate(Preset::Tiny, 7, 1.0, &b).unwrap();
    generate_with(Preset::Tiny, 8, 1.0, &c, &GenerateOptions { images: true, cohorts: Some(vec![CohortKind::External]) }).unwrap();
    assert_eq!(sa.n_patients, 60);
    let (fa, fb, fc) = (snapshot(&a), snapshot(&b), snapshot(&c));
    // design.txt; per cohort clinical.csv, clinical.parquet, ground_truth.json; 4 volumes per patient
    assert_eq!(fa.len(), 1 + 3 * 3 + 60 * 4, "file count");
    assert!(fa == fb, "same seed must give byte-identical files");
    // a different seed differs in the table and in every image of the external cohort
    let k = PathBuf::from("external/clinical.csv");
    assert_ne!(fa[&k], fc[&k]);
    let img = PathBuf::from("external/images/E-0001/ce_t1.nii.gz");
    assert_ne!(fa[&img], fc[&img]);

    // layout and ids
    let mut ids = HashSet::new();
    for cs in &sa.cohorts {
        let text = String::from_utf8(fa[&PathBuf::from(format!("{}/clinical.csv", cs.name))].clone()).unwrap();
        for line in text.lines().skip(1) {
            assert!(ids.insert(line.split(',').next().unwrap().to_string()), "duplicate id");
        }
        assert!(cs.n_positive >= 3 && cs.n - cs.n_positive >= 3);
    }
    assert_eq!(ids.len(), 60);

    // geometry and ROI
    for cohort in ["institution1", "external", "ici"] {
        let gt = read_gt(&a, cohort);
        for p in &gt.patients {
            let im = p.imaging.as_ref().unwrap();
            let d = a.join(cohort).join("images").join(&p.patient_id);
            let vols: Vec<Volume> = ["t1", "t2", "ce_t1", "roi"].iter().map(|s| read_nifti(d.join(format!("{s}.nii.gz"))).unwrap()).collect();
            for v in &vols {
                assert_eq!(v.size(), gt.dims);
                for a in 0..3 {
                    assert!((v.spacing[a] - im.grid.spacing[a]).abs() < 1e-4);
                    assert!((v.origin[a] - im.grid.origin[a]).abs() < 1e-3);
                    for b in 0..3 {
                        assert!((v.direction[a][b] - im.grid.direction[a][b]).abs() < 1e-5);
                    }
                }
                assert!(v.data.iter().all(|x| x.is_finite() && *x >= 0.0));
            }
            let roi = &vols[3];
            assert!(roi.data.iter().all(|&x| x == 0.0 || x == 1.0));
            let n_roi = roi.data.iter().filter(|&&x| x > 0.5).count();
            assert_eq!(n_roi, im.roi_voxels);
            assert!(n_roi > 0, "{}: empty ROI", p.patient_id);
            for ((i, j, k), &m) in roi.data.indexed_iter() {
                if m > 0.5 {
                    let pt = roi.index_to_physical(&[i as f64, j as f64, k as f64]);
                    assert!(im.anatomy.neck_distance(&pt) < -3.0, "{}: ROI voxel outside the neck", p.patient_id);
                }
            }
            // in-plane the tumour stays inside the field of view with a margin
            assert!(im.tumour_centre_index[0] > 4.0 && im.tumour_centre_index[0] < gt.dims[0] as f64 - 5.0);
            // the tumour enhances: CE-T1 mean in the ROI above the whole-volume mean
            let ce = &vols[2];
            let mean_all = ce.data.iter().map(|&x| x as f64).sum::<f64>() / ce.data.len() as f64;
            assert!(measure::mean_in_roi(ce, roi).unwrap() > mean_all);
        }
    }
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn tables_only_generation() {
    let d = temp_dir("tables");
    let s = generate_with(Preset::Paper, 3, 1.0, &d, &GenerateOptions { images: false, cohorts: None }).unwrap();
    assert_eq!(s.n_patients, 610);
    assert_eq!(s.cohorts.iter().map(|c| c.n_positive).collect::<Vec<_>>(), vec![123, 65, 30]);
    let dcb = s.cohorts[2].n_dcb.unwrap() as f64 / 94.0;
    assert!((dcb - 0.234).abs() < 3.0 * (0.234f64 * 0.766 / 94.0).sqrt(), "DCB share {dcb}");
    let gt = read_gt(&d, "ici");
    assert_eq!(gt.patients.len(), 94);
    assert!(gt.patients.iter().all(|p| p.imaging.is_none()));
    assert!(!d.join("ici/images").exists());
    let csv = std::fs::read_to_string(d.join("ici/clinical.csv")).unwrap();
    assert!(csv.starts_with("patient_id,age,sex,smoking,drinking,differentiation,t_stage,n_stage,cps,pfs_months,progression,dcb\n"));
    let csv = std::fs::read_to_string(d.join("external/clinical.csv")).unwrap();
    assert!(csv.starts_with("patient_id,age,sex,smoking,drinking,differentiation,t_stage,n_stage,cps,pfs_months,progression\n"));
    // the typed rows are the CSV
    let t = tables(Preset::Paper, 3, 1.0).unwrap();
    assert_eq!(clinical::csv_string(&t[1].rows), csv);
    for r in &t[2].rows {
        assert_eq!(r.dcb, clinical::dcb(r.pfs_months, r.progression));
    }
    // DCB by its definition: PFS beyond 6 months, whether or not progression followed;
    // progression at or before 6 months is no benefit; censored at or before 6, unknown.
    assert_eq!(clinical::dcb(6.01, false), Some(true));
    assert_eq!(clinical::dcb(7.0, true), Some(true));
    assert_eq!(clinical::dcb(6.0, true), Some(false));
    assert_eq!(clinical::dcb(6.0, false), None);
    assert!(t[2].rows.iter().any(|r| r.dcb.is_none()), "some ICI patients are censored before 6 months");
    assert!(tables(Preset::Paper, 3, 0.0).is_err());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn misregistration_inverse_and_size() {
    let mut rng = rng::stream(1, 2, 3);
    for _ in 0..50 {
        let m = scanner::Misregistration::sample(&mut rng, [10.0, 20.0, -50.0], 4.0, 4.0);
        assert!(m.angles_deg.iter().all(|a| a.abs() <= 4.0) && m.translation_mm.iter().all(|t| t.abs() <= 4.0));
        let p = [13.0, -7.0, -40.0];
        let q = m.ce_to_sequence.transform_point(&m.applied.transform_point(&p));
        assert!((0..3).all(|a| (p[a] - q[a]).abs() < 1e-9));
    }
}

#[test]
fn describe_mentions_the_design() {
    let s = describe(Preset::Paper);
    for w in ["382", "134", "94", "HR 0.55", "Rician", "rim", "ground_truth.json"] {
        assert!(s.contains(w), "describe lacks {w}");
    }
    assert!(describe(Preset::Demo).contains("96x96x16"));
}

fn sym_auc(x: &[f64], y: &[bool]) -> f64 {
    let a = auc(x, y).unwrap();
    a.max(1.0 - a)
}

/// Paper-preset checks on images (minutes).  Set RADPIPE_SYNTH_PAPER_DIR to a
/// directory already holding `generate(Preset::Paper, 42, 1.0, DIR)` to skip the
/// generation.
#[test]
#[ignore = "generates the paper preset (minutes): cargo test -- --ignored"]
fn paper_signal_is_learnable_and_does_not_leak() {
    let (dir, tmp) = match std::env::var("RADPIPE_SYNTH_PAPER_DIR") {
        Ok(d) => (PathBuf::from(d), false),
        Err(_) => {
            let d = temp_dir("paper");
            generate(Preset::Paper, 42, 1.0, &d).unwrap();
            (d, true)
        }
    };
    let mut leak_pool: BTreeMap<&str, (Vec<f64>, Vec<bool>)> = BTreeMap::new();
    for cohort in ["institution1", "external", "ici"] {
        let gt = read_gt(&dir, cohort);
        assert_eq!((gt.preset, gt.seed), (Preset::Paper, 42));
        let mut feats: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut labels = Vec::new();
        for p in &gt.patients {
            let d = dir.join(cohort).join("images").join(&p.patient_id);
            let ce = read_nifti(d.join("ce_t1.nii.gz")).unwrap();
            let roi = read_nifti(d.join("roi.nii.gz")).unwrap();
            let t2 = read_nifti(d.join("t2.nii.gz")).unwrap();
            let (vol, c) = measure::roi_volume_and_centroid(&roi);
            let ci = roi.physical_to_index(&c);
            let mut push = |k: &'static str, v: f64| feats.entry(k).or_default().push(v);
            push("rim", measure::rim_enhancement(&ce, &roi).unwrap_or(1.0));
            push("mean_ce", measure::mean_in_roi(&ce, &roi).unwrap());
            push("mean_t2", measure::mean_in_roi(&t2, &roi).unwrap());
            push("roi_volume", vol);
            for a in 0..3 {
                push(["pos_x", "pos_y", "pos_z"][a], c[a]);
                push(["idx_i", "idx_j", "idx_k"][a], ci[a]);
                push(["hdr_spacing_i", "hdr_spacing_j", "hdr_spacing_k"][a], ce.spacing[a]);
                push(["hdr_origin_x", "hdr_origin_y", "hdr_origin_z"][a], ce.origin[a]);
                push(["hdr_dir_0", "hdr_dir_1", "hdr_dir_2"][a], ce.direction[a][(a + 1) % 3]);
                push(["hdr_diag_0", "hdr_diag_1", "hdr_diag_2"][a], ce.direction[a][a]);
            }
            labels.push(p.label);
        }
        let aucs: BTreeMap<&str, f64> = feats.iter().map(|(k, v)| (*k, auc(v, &labels).unwrap())).collect();
        eprintln!("{cohort} (n={}): {aucs:.3?}", labels.len());
        if cohort == "external" {
            assert!((0.75..=0.95).contains(&aucs["rim"]), "external rim AUC {}", aucs["rim"]);
        }
        assert!(sym_auc(&feats["mean_ce"], &labels) < 0.65, "{cohort}: mean CE-T1 intensity AUC {}", aucs["mean_ce"]);
        // leak features: pooled over institution 1's cohorts (same scanner, same prevalence)
        for (k, v) in &feats {
            if k.starts_with("roi_") || k.starts_with("pos_") || k.starts_with("idx_") || k.starts_with("hdr_") {
                if cohort == "external" {
                    assert!(sym_auc(v, &labels) < 0.65, "external: {k} AUC {}", sym_auc(v, &labels));
                } else {
                    let e = leak_pool.entry(k).or_default();
                    e.0.extend(v);
                    e.1.extend(&labels);
                }
            }
        }
    }
    for (k, (v, l)) in &leak_pool {
        let a = sym_auc(v, l);
        eprintln!("institution1+ici leak AUC {k}: {a:.3}");
        assert!(a < 0.6, "leak: {k} separates the label with AUC {a}");
    }
    if tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
}
