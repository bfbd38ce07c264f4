use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use super::progress::Progress;
use super::run::{execute, open_locked, outcome_json, ExecArgs};
use super::{Ctx, EXIT_FAILED, EXIT_INVALID};
use crate::sweep::MemberOutcome;
use radpipe_engine::sweep::{Member, Sweep, Vary};

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// A value to vary: `PATH=V1,V2,...` or an integer range `PATH=A..B`
    /// (inclusive), e.g. `--vary stages.embed.train.seed=1..5`. Several
    /// `--vary` give their cartesian product.
    #[arg(long = "vary", value_name = "PATH=VALUES", required = true)]
    varies: Vec<String>,
    /// Override a value of the pipeline file for every member (as for `run`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print one JSON document on stdout: the sweep, each member's executed,
    /// cached, failed and skipped nodes, and the summary's path.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(super) exec: ExecArgs,
}

/// Run the pipeline once per combination of the varied values, one member
/// after another, each a recorded run with its overrides whose outputs go to
/// `results/sweeps/<sweep>/<member>/` (the plain `results/` is left alone).
/// Nodes that do not depend on a varied value are cached after the first
/// member. Then `results/sweeps/<sweep>/summary.{csv,md,json}`: every metric
/// per member (with the action key behind it), mean, SD, min, max and the 95%
/// CI of the mean over the members. Exit 1 when a node failed.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let varied: Result<Vec<Vary>, _> = args.varies.iter().map(|v| v.parse()).collect();
    let sweep = match varied.and_then(|v| Sweep::new(&args.pipeline, v, &args.sets)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    // Every member is planned before anything runs: a value that makes the
    // pipeline invalid stops the sweep with nothing executed.
    let mut plans = Vec::new();
    for member in &sweep.members {
        let sets: Vec<String> = args.sets.iter().chain(&member.overrides).cloned().collect();
        match ctx.plan(&args.pipeline, &sets) {
            Ok(mut plan) => {
                plan.results = sweep.member_dir(&ctx.workspace, member);
                plans.push((member, plan, sets));
            }
            Err(code) => {
                eprintln!("error: member `{member}` of sweep `{}` ({}) is not a valid pipeline", sweep.name, member.overrides.join(" "));
                return code;
            }
        }
    }
    let reporter = Progress::new();
    let (store, _lock) = match open_locked(ctx, &reporter) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let chosen = match args.exec.executor(&ctx.settings, &store) {
        Ok(e) => e,
        Err(code) => return code,
    };
    for stale in sweep.stale_member_dirs(&ctx.workspace) {
        match std::fs::remove_dir_all(&stale) {
            Ok(()) => eprintln!("removed `{}`: not a member of this sweep (its results stay in the store)", stale.display()),
            Err(e) => eprintln!("warning: cannot remove `{}`, not a member of this sweep: {e}", stale.display()),
        }
    }
    let mut outcomes = Vec::new();
    let mut members: Vec<(&Member, MemberOutcome)> = sweep.members.iter().map(|m| (m, MemberOutcome::NotRun)).collect();
    let mut failed = false;
    let count = plans.len();
    for (i, (member, plan, sets)) in plans.into_iter().enumerate() {
        eprintln!("sweep {}: member {}/{count} `{member}` ({})", sweep.name, i + 1, member.overrides.join(" "));
        let options = args.exec.options(&ctx.settings, Vec::new(), Vec::new(), sets);
        let summary = match execute(&plan, &store, &options, chosen.executor.as_ref(), &reporter) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let mut outcome = outcome_json(&summary);
        outcome["member"] = json!(member.name);
        outcome["overrides"] = json!(member.overrides);
        outcomes.push(outcome);
        if summary.failed.is_empty() {
            match store.read_run(&summary.run_id) {
                Some(record) => members[i].1 = MemberOutcome::Complete(Box::new(record)),
                None => {
                    eprintln!("error: the record of run {} cannot be read back", summary.run_id);
                    return ExitCode::from(EXIT_FAILED);
                }
            }
        } else {
            members[i].1 = MemberOutcome::Failed(summary.run_id.clone());
            failed = true;
            if chosen.interrupted() {
                eprintln!("sweep {}: interrupted during member `{member}`", sweep.name);
                break;
            }
            if !args.exec.keep_going {
                eprintln!("sweep {}: stopped after member `{member}` failed (--keep-going runs the others)", sweep.name);
                break;
            }
        }
    }
    let complete = members.iter().filter(|(_, o)| matches!(o, MemberOutcome::Complete(_))).count();
    let dir = sweep.dir(&ctx.workspace);
    let summary = crate::sweep::summarize(&store, &sweep, &args.pipeline, &args.sets, &members);
    if let Err(e) = crate::sweep::write(&store, &summary, &dir) {
        eprintln!("error: cannot write the summary in {}: {e}", dir.display());
        return ExitCode::from(EXIT_FAILED);
    }
    eprintln!("sweep {}: {complete} of {count} members complete; summary in {}", sweep.name, dir.join("summary.md").display());
    if args.json {
        super::print_json(&json!({
            "sweep": sweep.name,
            "members": outcomes,
            "summary": dir.join("summary.json"),
        }));
    }
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
