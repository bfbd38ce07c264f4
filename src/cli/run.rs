use clap::{Parser, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use super::progress::Progress;
use super::{Ctx, EXIT_FAILED};
use radpipe_engine::events::{Event, Reporter};
use radpipe_engine::exec::slurm::{Canceller, SlurmExecutor, SlurmOptions};
use radpipe_engine::exec::{self, Executor, LocalExecutor, RunOptions, RunSummary, SubprocessExecutor};
use radpipe_engine::settings::{self, Settings};
use radpipe_engine::store::{Store, StoreLock};
use radpipe_engine::Plan;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file, e.g. `--set cohorts.external.table=other.csv`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[command(flatten)]
    pub(super) exec: ExecArgs,
    /// Print one JSON document on stdout: executed, cached, failed, skipped, results.
    #[arg(long)]
    json: bool,
    /// Run only these stages (and the stages they need).
    #[arg(long, value_name = "STAGE", num_args = 1..)]
    only: Vec<String>,
    /// Re-execute these stages even when cached.
    #[arg(long, value_name = "STAGE", num_args = 1..)]
    force: Vec<String>,
}

/// How nodes execute; shared by `run` and `sweep`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Nodes to run at once (setting `run.jobs`; default: the number of CPUs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Let other nodes (other patients, other sweep members) finish when one fails.
    #[arg(long)]
    pub keep_going: bool,
    /// Where units of work run: `local` (threads of this process),
    /// `subprocess` (each unit by `radpipe exec-node` in a child process that
    /// resolves its inputs from the store by digest, as a cluster job would)
    /// or `slurm` (jobs of the Slurm cluster this machine submits to: job
    /// arrays per stage, the `slurm.*` settings and each stage's `resources:`).
    /// Setting `run.executor`; default: local. With slurm, `--jobs` counts
    /// units submitted at once (default 1000).
    #[arg(long, value_enum)]
    executor: Option<ExecutorKind>,
    /// Resubmit a Slurm job that Slurm ended (FAILED, TIMEOUT, OUT_OF_MEMORY,
    /// NODE_FAIL...) up to N times before its nodes fail.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    Local,
    Subprocess,
    Slurm,
}

/// The exit status of a run that Ctrl-C or SIGTERM interrupted (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// An executor, and for Slurm what cancels its jobs.
pub(super) struct Chosen {
    pub executor: Box<dyn Executor>,
    canceller: Option<Canceller>,
}

impl Chosen {
    /// Whether Ctrl-C or SIGTERM cancelled the run's jobs.
    pub(super) fn interrupted(&self) -> bool {
        self.canceller.as_ref().is_some_and(Canceller::interrupted)
    }

    /// A run's exit status: interrupted, a node failed, or success.
    pub(super) fn exit(&self, summary: &RunSummary) -> ExitCode {
        if self.interrupted() {
            ExitCode::from(EXIT_INTERRUPTED)
        } else if summary.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Execute what is stale and reuse what is cached; exit 1 when a node failed.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let plan = match ctx.plan(&args.pipeline, &args.sets) {
        Ok(p) => super::kept_to_exit(p),
        Err(code) => return code,
    };
    for name in args.only.iter().chain(&args.force) {
        if !plan.stages.iter().any(|s| &s.name == name) {
            eprintln!("error: `{name}` is not a stage of {}", args.pipeline.display());
            return ExitCode::from(super::EXIT_INVALID);
        }
    }
    let reporter = Progress::new();
    let (store, _lock) = match open_locked(ctx, &reporter) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = args.exec.options(&ctx.settings, args.force, args.only, args.sets);
    let chosen = match args.exec.executor(&ctx.settings, &store) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let summary = match execute(plan, &store, &options, chosen.executor.as_ref(), &reporter) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if args.json {
        super::print_json(&outcome_json(&summary));
    }
    chosen.exit(&summary)
}

impl ExecArgs {
    /// The settings these flags give, for [`Settings::resolve`].
    pub(super) fn command_line(&self) -> Vec<(&'static str, String)> {
        let mut given = Vec::new();
        given.extend(self.jobs.map(|j| (settings::RUN_JOBS, j.to_string())));
        given.extend(self.executor.map(|e| (settings::RUN_EXECUTOR, e.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default())));
        given
    }

    /// The scheduler's options for a recorded run with these overrides.
    pub(super) fn options(&self, settings: &Settings, force: Vec<String>, only: Vec<String>, overrides: Vec<String>) -> RunOptions {
        RunOptions { jobs: settings.jobs(), keep_going: self.keep_going, force, only, overrides, record: true }
    }

    /// The executor the settings name. A Slurm executor starts a session in
    /// the store, and Ctrl-C or SIGTERM then cancels the run's jobs (a second
    /// one exits at once).
    pub(super) fn executor(&self, settings: &Settings, store: &Store) -> Result<Chosen, ExitCode> {
        let program = || {
            std::env::current_exe().map_err(|e| {
                eprintln!("error: cannot find the radpipe executable for `exec-node`: {e}");
                ExitCode::from(EXIT_FAILED)
            })
        };
        let executor: Box<dyn Executor> = match settings.executor() {
            "subprocess" => Box::new(SubprocessExecutor { program: program()? }),
            "slurm" => {
                let slurm = SlurmExecutor::start(store, slurm_options(settings, program()?, self.retries)).map_err(|e| {
                    eprintln!("error: cannot run on Slurm: {e}");
                    ExitCode::from(EXIT_FAILED)
                })?;
                let canceller = slurm.canceller();
                let handler = canceller.clone();
                if let Err(e) = ctrlc::set_handler(move || {
                    if handler.cancel() {
                        std::process::exit(EXIT_INTERRUPTED.into());
                    }
                    eprintln!("interrupted: cancelling the run's Slurm jobs (again to quit at once)");
                }) {
                    eprintln!("warning: Ctrl-C will not cancel the run's Slurm jobs: {e}");
                }
                return Ok(Chosen { executor: Box::new(slurm), canceller: Some(canceller) });
            }
            _ => Box::new(LocalExecutor),
        };
        Ok(Chosen { executor, canceller: None })
    }
}

/// The Slurm executor's options from the `slurm.*` settings.
fn slurm_options(settings: &Settings, program: PathBuf, retries: usize) -> SlurmOptions {
    let get = |name| settings.value(name).map(str::to_string);
    SlurmOptions {
        program,
        partition: get(settings::SLURM_PARTITION),
        gpu_partition: get(settings::SLURM_GPU_PARTITION),
        account: get(settings::SLURM_ACCOUNT),
        qos: get(settings::SLURM_QOS),
        flags: settings.value(settings::SLURM_FLAGS).map(|f| f.split_whitespace().map(str::to_string).collect()).unwrap_or_default(),
        throttle: settings.value(settings::SLURM_THROTTLE).and_then(|v| v.parse().ok()),
        poll: std::time::Duration::from_secs_f64(settings.value(settings::SLURM_POLL).and_then(|v| v.parse().ok()).unwrap_or(5.0)),
        retries,
    }
}

/// Run a plan; its last line on stderr counts what executed and where the results are.
pub(super) fn execute(plan: &Plan, store: &Store, options: &RunOptions, executor: &dyn Executor, reporter: &Progress) -> Result<RunSummary, ExitCode> {
    let summary = exec::run(plan, store, options, executor, reporter).map_err(|e| {
        eprintln!("error: the store could not be written: {e}");
        ExitCode::from(EXIT_FAILED)
    })?;
    for line in reporter.skipped_summary() {
        eprintln!("{line}");
    }
    let remote = match &store.remote {
        Some(r) if !summary.fetched.is_empty() => format!(" ({} from {})", summary.fetched.len(), r.url()),
        _ => String::new(),
    };
    eprintln!(
        "run {}: {} executed, {} cached{remote}, {} failed, {} skipped; results in {}",
        summary.run_id,
        summary.executed.len(),
        summary.cached.len(),
        summary.failed.len(),
        summary.skipped.len(),
        summary.results.display()
    );
    // The root causes again, last, where a long run's output ends.
    for (node, why) in &summary.failed {
        eprintln!("FAILED {node}: {why}");
    }
    Ok(summary)
}

/// What `--json` prints for a run.
pub(super) fn outcome_json(summary: &RunSummary) -> serde_json::Value {
    json!({
        "run": summary.run_id,
        "executed": summary.executed,
        "cached": summary.cached,
        "fetched": summary.fetched,
        "failed": summary.failed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "errors": summary.failed.iter().map(|(n, why)| json!({"node": n, "error": why})).collect::<Vec<_>>(),
        "skipped": summary.skipped,
        "results": summary.results,
    })
}

/// The workspace's store with the configured remote cache, locked for this
/// process (waiting for another writer).
pub(super) fn open_locked(ctx: &Ctx, reporter: &Progress) -> Result<(Store, StoreLock), ExitCode> {
    let store = Store::open(&ctx.workspace).map_err(|e| {
        eprintln!("error: cannot open the store in {}: {e}", ctx.workspace.display());
        ExitCode::from(EXIT_FAILED)
    })?;
    let store = store.with_remote(super::open_remote(&ctx.settings)?);
    let lock = store.lock(|holder| reporter.event(Event::WaitingForLock { holder: holder.to_string() })).map_err(|e| {
        eprintln!("error: cannot lock the store: {e}");
        ExitCode::from(EXIT_FAILED)
    })?;
    Ok((store, lock))
}
