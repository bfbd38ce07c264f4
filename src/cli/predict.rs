//! `radpipe predict PIPELINE --patient DIR`: score one new patient with the
//! models a run already trained. The patient's folder (the sequence and ROI
//! files the ingest stage names) joins the pipeline as an `unlabelled` cohort
//! of one, so it goes through the same per-patient nodes as every other
//! patient (registration, resampling, slices, the embed / pca / fuse apply
//! nodes, Grad-CAM); only those nodes run, and only if no trained model would
//! have to be refitted. The DLS is classed at the threshold the evaluation
//! stage fitted on the training partition. Nothing is added to the pipeline's
//! run history, and the next `radpipe run` is unaffected.

use clap::Parser;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::progress::Progress;
use super::{Ctx, EXIT_FAILED, EXIT_INVALID};
use radpipe_engine::exec::{self, RunOptions};
use radpipe_engine::store::Store;
use radpipe_engine::{spec, Plan};

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file whose trained models score the patient.
    pipeline: PathBuf,
    /// The patient's folder: `<id>/` with the files the ingest stage's
    /// `sequences` and `roi` name (e.g. t1.nii.gz, t2.nii.gz, ce_t1.nii.gz, roi.nii.gz).
    #[arg(long, value_name = "DIR")]
    patient: PathBuf,
    /// Override a value of the pipeline file, as for `run` (the same overrides the models were trained with).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

const COHORT: &str = "predict";

pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    match predict(ctx, &args) {
        Ok(Some(v)) => {
            if args.json {
                super::print_json(&v);
            } else {
                let dls = v["dls"].as_f64().unwrap_or(f64::NAN);
                let shown = if dls != 0.0 && dls.abs() < 1e-3 { format!("{dls:.3e}") } else { format!("{dls:.4}") };
                println!("patient {}: DLS {shown}", v["patient"].as_str().unwrap_or_default());
                match v["threshold"].as_f64() {
                    Some(t) => println!(
                        "class: {} (training Youden threshold {t:.4}, from `{}`)",
                        v["class"].as_str().unwrap_or_default(),
                        v["threshold_metric"].as_str().unwrap_or_default()
                    ),
                    None => println!("class: no threshold (no evaluate stage fits one on the training partition for this score)"),
                }
                for p in v["gradcam"].as_array().into_iter().flatten() {
                    println!("grad-cam: {}", p.as_str().unwrap_or_default());
                }
            }
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::from(EXIT_FAILED),
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn invalid(msg: impl Into<String>) -> Failure {
    (EXIT_INVALID, msg.into())
}

/// The pipeline as the models were trained, plus a one-patient cohort holding
/// `patient` (its images in `dir`), planned.
fn derived_plan(ctx: &Ctx, args: &Args, dir: &Path, patient: &str, images: &str) -> Result<Plan, Failure> {
    let mut doc = spec::load_tree(&args.pipeline, &args.sets).map_err(|d| invalid(d.to_string()))?.to_json();
    if doc["cohorts"].get(COHORT).is_some() {
        return Err(invalid(format!("the pipeline already has a cohort named `{COHORT}`")));
    }
    let ingest = doc["stages"]
        .as_object()
        .and_then(|m| m.iter().find(|(_, s)| s["kind"] == "ingest" && s.get("sequences").is_some()).map(|(n, _)| n.clone()))
        .ok_or_else(|| invalid(format!("{}: no ingest stage with `sequences`: there are no images to score", args.pipeline.display())))?;
    let mut files: Vec<String> =
        doc["stages"][&ingest]["sequences"].as_object().map(|m| m.values().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
    files.extend(doc["stages"][&ingest]["roi"]["file"].as_str().map(str::to_string));
    let missing: Vec<&String> = files.iter().filter(|f| !dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "{}: missing {} (the pipeline's ingest stage `{ingest}` needs {})",
            dir.display(),
            join(&missing),
            join(&files.iter().collect::<Vec<_>>())
        )));
    }
    let work = ctx.workspace.join(".radpipe").join("predict");
    std::fs::create_dir_all(&work).map_err(|e| (EXIT_FAILED, format!("{}: {e}", work.display())))?;
    let table = work.join(format!("{patient}.csv"));
    // A folder name may hold a comma or a quote: the one-row table is written by the csv crate.
    let written = csv::Writer::from_path(&table).and_then(|mut w| {
        w.write_record(["patient_id"])?;
        w.write_record([patient])?;
        w.flush().map_err(csv::Error::from)
    });
    written.map_err(|e| (EXIT_FAILED, format!("{}: {e}", table.display())))?;
    doc["cohorts"][COHORT] = json!({ "table": format!(".radpipe/predict/{patient}.csv"), "images": images, "unlabelled": true });
    if let Some(list) = doc["stages"][&ingest]["cohorts"].as_array_mut() {
        list.push(json!(COHORT));
    }
    // JSON is YAML: the derived pipeline is planned like any other file.
    let derived = work.join(format!("{patient}.pipeline.yaml"));
    std::fs::write(&derived, serde_json::to_string_pretty(&doc).unwrap_or_default()).map_err(|e| (EXIT_FAILED, format!("{}: {e}", derived.display())))?;
    ctx.plan(&derived, &[]).map_err(|_| invalid(format!("the pipeline with patient {patient} added does not plan (above)")))
}

/// Predict never trains: every fit node must be cached.
fn check_models(plan: &Plan, store: &Store, args: &Args) -> Result<(), Failure> {
    let status = radpipe_engine::status::status(plan, Some(store));
    let refit: Vec<String> = status
        .stale
        .iter()
        .filter(|s| s.node.ends_with(".fit") || s.node.contains(".fit["))
        .map(|s| format!("{} ({})", s.node, s.reasons.join("; ")))
        .collect();
    if !refit.is_empty() {
        return Err((
            EXIT_FAILED,
            format!(
                "the trained models are missing or stale, and predict never trains: {}; run `radpipe run {}` first (with the same --set)",
                refit.join(", "),
                args.pipeline.display()
            ),
        ));
    }
    Ok(())
}

fn predict(ctx: &Ctx, args: &Args) -> Result<Option<Value>, Failure> {
    let dir = std::fs::canonicalize(&args.patient).map_err(|e| invalid(format!("{}: {e}", args.patient.display())))?;
    if !dir.is_dir() {
        return Err(invalid(format!("{}: not a folder (give the patient's folder holding the image files)", args.patient.display())));
    }
    let patient = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let images = dir.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();

    // A patient the pipeline already has is scored by `run`.
    let original = ctx.plan(&args.pipeline, &args.sets).map_err(|_| invalid(format!("{} does not plan (above)", args.pipeline.display())))?;
    if let Some(cohort) = original.nodes.iter().filter_map(|n| n.decl.item.as_ref()).find(|i| i.id == patient).map(|i| i.cohort.clone().unwrap_or_default()) {
        return Err(invalid(format!("patient {patient} is already in cohort `{cohort}` of {}: `radpipe run` scores it (results/<fuse stage>/{patient}/scores.json); predict is for patients the pipeline does not have", args.pipeline.display())));
    }

    let plan = derived_plan(ctx, args, &dir, &patient, &images)?;

    // The apply nodes of the stages that learn (they have a fit node) score the patient.
    let learns: Vec<bool> = plan.stages.iter().map(|s| s.nodes.iter().any(|&n| plan.nodes[n].decl.fit_on.is_some())).collect();
    let targets: Vec<String> =
        plan.nodes.iter().filter(|n| n.decl.item.as_ref().is_some_and(|i| i.id == patient) && learns[n.stage]).map(|n| n.id.clone()).collect();
    let Some(fuse_stage) = plan.spec.spec.stages.iter().find(|(_, s)| s.scores().iter().any(|n| n == "dls")).map(|(n, _)| n.clone()) else {
        return Err(invalid(format!("{}: no stage writes a `dls` score (a fuse stage): there is no DLS to compute", args.pipeline.display())));
    };
    let store = Store::existing(&ctx.workspace)
        .ok_or_else(|| (EXIT_FAILED, format!("no store in {}: run the pipeline first, so that its models are trained", ctx.workspace.display())))?;
    check_models(&plan, &store, args)?;

    let reporter = Progress::new();
    let _lock =
        store.lock(|holder| eprintln!("waiting for the store lock held by {holder}")).map_err(|e| (EXIT_FAILED, format!("cannot lock the store: {e}")))?;
    let options = RunOptions {
        jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        keep_going: false,
        force: Vec::new(),
        only: targets,
        overrides: Vec::new(),
        record: false,
    };
    let summary =
        exec::run(&plan, &store, &options, &exec::LocalExecutor, &reporter).map_err(|e| (EXIT_FAILED, format!("the store could not be written: {e}")))?;
    if let Some(fit) = summary.executed.iter().find(|n| n.contains(".fit")) {
        return Err((EXIT_FAILED, format!("internal error: `{fit}` ran during predict")));
    }
    if !summary.failed.is_empty() {
        for (node, why) in &summary.failed {
            eprintln!("error: {node}: {why}");
        }
        return Ok(None);
    }
    let results = summary.results.clone();
    let scores_path = results.join(&fuse_stage).join(&patient).join("scores.json");
    let scores: Value = std::fs::read_to_string(&scores_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| (EXIT_FAILED, format!("{}: no DLS written", scores_path.display())))?;
    let dls = scores["dls"].as_f64().ok_or_else(|| (EXIT_FAILED, format!("{}: no `dls`", scores_path.display())))?;

    // The threshold an evaluation stage fitted on the training partition.
    let reference = format!("{fuse_stage}.dls");
    let threshold =
        plan.spec.spec.stages.iter().find_map(|(name, s)| {
            s.fitted_threshold_id(name, &reference).and_then(|id| metric(&results.join(name).join("metrics.json"), &id).map(|v| (id, v)))
        });
    let gradcam: Vec<String> = plan
        .spec
        .spec
        .stages
        .iter()
        .zip(&learns)
        .filter(|(_, learns)| **learns)
        .flat_map(|((name, _), _)| {
            let d = results.join(name).join(&patient).join("gradcam");
            let mut v: Vec<String> = std::fs::read_dir(&d).into_iter().flatten().flatten().map(|e| e.path().display().to_string()).collect();
            v.sort();
            v
        })
        .collect();
    Ok(Some(json!({
        "patient": patient,
        "dls": dls,
        "threshold": threshold.as_ref().map(|t| t.1),
        "threshold_metric": threshold.as_ref().map(|t| &t.0),
        "class": threshold.as_ref().map(|t| if dls >= t.1 { "high (predicted CPS >= 20)" } else { "low (predicted CPS < 20)" }),
        "gradcam": gradcam,
        "executed": summary.executed,
        "cached": summary.cached.len(),
    })))
}

fn metric(path: &Path, id: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.as_array()?.iter().find(|m| m["id"] == id)?["value"].as_f64()
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
