//! The command line: one file per subcommand; the doc comments are the help.
//! Exit codes: 0 success, 1 a stage failed (or the store is damaged), 2 the
//! pipeline or its inputs are invalid.

mod dag;
mod doctor;
mod exec_node;
mod gc;
mod lineage;
mod predict;
mod progress;
mod register;
mod resample;
mod run;
mod schema;
mod status;
mod sweep;
mod synth;
mod validate;
mod verify;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use radpipe_engine::remote::Remote;
use radpipe_engine::settings::{self, CommandLine, Settings};
use radpipe_engine::{spec, Diagnostics, Plan};

/// Declarative, content-addressed, per-patient cached pipelines for imaging biomarkers.
#[derive(Debug, Parser)]
#[command(name = "radpipe", version, max_term_width = 100)]
pub struct Cli {
    /// Workspace folder: pipeline paths resolve against it; `.radpipe/` (the
    /// store) and `results/` live in it. Default: the current directory.
    #[arg(long, global = true, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// The shared remote cache, `s3://BUCKET/PREFIX` or `file:///FOLDER`
    /// (setting `cache.remote`; also `RADPIPE_CACHE_REMOTE` or radpipe.toml).
    /// S3 credentials, region and endpoint come from the standard AWS variables.
    #[arg(long, global = true, value_name = "REMOTE")]
    cache: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline: execute what is stale, reuse what is cached.
    Run(run::Args),
    /// Run a pipeline once per combination of varied values (e.g. training
    /// seeds), sharing cached work, and summarise every metric over the members.
    Sweep(sweep::Args),
    /// Which nodes a run would execute, and why.
    Status(status::Args),
    /// Show the pipeline's graph (text, dot or mermaid).
    Dag(dag::Args),
    /// Trace a metric or artifact back to its source files.
    Lineage(lineage::Args),
    /// Score a new patient with the trained, cached models (DLS, class, Grad-CAM); nothing is retrained.
    Predict(predict::Args),
    /// Check a pipeline file and its inputs without running anything.
    Validate(validate::Args),
    /// Remove cached results that recent runs no longer use (the local store only).
    Gc(gc::Args),
    /// Re-hash every stored object (or, with --remote, every remote one) and report corrupt or missing ones.
    Verify(verify::Args),
    /// Resolved settings and where each came from, the remote cache (reachable,
    /// writable), and the deep-learning worker: libtorch version, CUDA.
    Doctor(doctor::Args),
    /// Write synthetic multi-centre cohorts (clinical tables and MRI).
    Synth(synth::Args),
    /// Resample a NIfTI volume to a new spacing (B-spline, linear or nearest).
    Resample(resample::Args),
    /// Register a moving volume onto a fixed one (Mattes MI, rigid or affine).
    Register(register::Args),
    /// Print the JSON Schema of pipeline files.
    #[command(hide = true)]
    Schema,
    /// Execute one prepared unit of work (written by `run --executor subprocess`
    /// or a cluster executor) against the workspace's store; prints its outcomes as JSON.
    #[command(hide = true)]
    ExecNode(exec_node::Args),
}

/// Exit codes.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;

pub(crate) struct Ctx {
    pub workspace: PathBuf,
    pub settings: Settings,
}

impl Ctx {
    /// Load and plan a pipeline; diagnostics go to stderr and give exit code 2.
    pub fn plan(&self, pipeline: &Path, sets: &[String]) -> Result<Plan, ExitCode> {
        let loaded = spec::load(pipeline, sets, &crate::stages::Kinds).map_err(report_invalid)?;
        radpipe_engine::plan::build(loaded, &self.workspace).map_err(report_invalid)
    }
}

/// A plan that lives until the process exits, which frees it at once: freeing
/// 300,006 nodes one by one takes a tenth of a no-op run at 10^5 patients.
/// For commands that end with their plan (`run`, `status`).
pub(crate) fn kept_to_exit(plan: Plan) -> &'static Plan {
    Box::leak(Box::new(plan))
}

pub(crate) fn report_invalid(d: Diagnostics) -> ExitCode {
    eprintln!("{d}");
    ExitCode::from(EXIT_INVALID)
}

/// Exit code of a tool command: 0, or 1 with the error on stderr.
pub(crate) fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The remote cache the settings name, opened (no request is made yet).
/// A remote that cannot be opened is an invalid setting: exit 2.
pub(crate) fn open_remote(settings: &Settings) -> Result<Option<std::sync::Arc<Remote>>, ExitCode> {
    let Some(url) = settings.remote() else { return Ok(None) };
    Remote::open(url).map(|r| Some(std::sync::Arc::new(r))).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_INVALID)
    })
}

pub(crate) fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("serialisable"));
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = match cli.workspace {
        Some(w) => w,
        None => PathBuf::from("."),
    };
    let mut given = CommandLine::default();
    given.0.extend(cli.cache.map(|c| (settings::CACHE_REMOTE, c)));
    if let Command::Run(run::Args { exec, .. }) | Command::Sweep(sweep::Args { exec, .. }) = &cli.command {
        given.0.extend(exec.command_line());
    }
    let settings = match Settings::resolve(&workspace, &given) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let ctx = Ctx { workspace, settings };
    match cli.command {
        Command::Run(a) => run::run(&ctx, a),
        Command::Sweep(a) => sweep::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Dag(a) => dag::run(&ctx, a),
        Command::Lineage(a) => lineage::run(&ctx, a),
        Command::Predict(a) => predict::run(&ctx, a),
        Command::Validate(a) => validate::run(&ctx, a),
        Command::Gc(a) => gc::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Synth(a) => synth::run(a),
        Command::Resample(a) => resample::run(a),
        Command::Register(a) => register::run(a),
        Command::Schema => schema::run(),
        Command::ExecNode(a) => exec_node::run(&ctx, a),
    }
}
