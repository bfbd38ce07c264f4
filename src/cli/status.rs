use clap::Parser;
use radpipe_engine::exec::slurm::{self, QueuedNode};
use std::path::PathBuf;
use std::process::ExitCode;

use super::Ctx;
use radpipe_engine::store::Store;

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file (as for `run`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print one JSON document (`stale`: [{node, stage, reasons}], `fresh`: count).
    #[arg(long)]
    json: bool,
    /// Every stale node with its reasons, instead of one line per stage.
    #[arg(long)]
    nodes: bool,
}

/// What a run would execute, and why: one line per stage with its stale
/// nodes and their reasons (`--nodes`: each node): changed parameter (old and
/// new value), changed input file, new or removed patient, new stage version,
/// upstream nodes that will run.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let plan = match ctx.plan(&args.pipeline, &args.sets) {
        Ok(p) => super::kept_to_exit(p),
        Err(code) => return code,
    };
    let store = Store::existing(&ctx.workspace);
    let status = radpipe_engine::status::status(plan, store.as_ref());
    let queued = match store.as_ref().map(slurm::queued_nodes).transpose() {
        Ok(q) => q.unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: cannot ask Slurm about this workspace's jobs: {e}");
            Vec::new()
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&status).unwrap_or_default();
        if !queued.is_empty() {
            value["queued"] = serde_json::to_value(&queued).unwrap_or_default();
        }
        super::print_json(&value);
        return ExitCode::SUCCESS;
    }
    print_queued(&queued, args.nodes);
    if status.stale.is_empty() {
        println!("up to date: all {} nodes are cached", status.fresh);
        return ExitCode::SUCCESS;
    }
    if args.nodes {
        for s in &status.stale {
            println!("{}", s.node);
            for r in &s.reasons {
                println!("    {r}");
            }
        }
    } else {
        for line in by_stage(&status.stale) {
            println!("{line}");
        }
    }
    println!("{} stale, {} cached", status.stale.len(), status.fresh);
    ExitCode::SUCCESS
}

/// The nodes Slurm holds for a run of this workspace: one line per stage
/// (with `--nodes`, per node), with their job ids and states.
fn print_queued(queued: &[QueuedNode], nodes: bool) {
    if nodes {
        for q in queued {
            println!("{}: slurm job {} {}", q.node, q.job, q.state);
        }
        return;
    }
    let mut stages: Vec<(&str, Vec<&QueuedNode>)> = Vec::new();
    for q in queued {
        match stages.iter_mut().find(|(s, _)| *s == q.stage) {
            Some((_, v)) => v.push(q),
            None => stages.push((&q.stage, vec![q])),
        }
    }
    for (stage, qs) in stages {
        let mut states: Vec<(&str, usize)> = Vec::new();
        for q in &qs {
            match states.iter_mut().find(|(s, _)| *s == q.state) {
                Some((_, n)) => *n += 1,
                None => states.push((&q.state, 1)),
            }
        }
        let counts: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let mut jobs: Vec<&str> = qs.iter().map(|q| q.job.split('_').next().unwrap_or(&q.job)).collect();
        jobs.dedup();
        println!("{stage}: {} nodes on Slurm ({}), job {}", qs.len(), counts.join(", "), jobs.join(", "));
    }
}

/// A reason in its stage-level form, and what was specific to the node (a
/// patient, a file, an upstream node), e.g. `new patient P10 (cohort c1)` ->
/// (`new patients (cohort c1)`, `P10`).
fn generalise(reason: &str) -> (String, Option<String>) {
    let quoted = |r: &str| r.split('`').nth(1).map(str::to_string);
    let stage_of = |node: &str| node.split('[').next().unwrap_or(node).to_string();
    if let Some(rest) = reason.strip_prefix("new patient ") {
        let (id, cohort) = rest.split_once(' ').map_or((rest, ""), |(id, c)| (id, c));
        return (format!("new patients{}", if cohort.is_empty() { String::new() } else { format!(" {cohort}") }), Some(id.to_string()));
    }
    if let Some(id) = reason.strip_prefix("patient ").and_then(|r| r.strip_suffix(" removed")) {
        return ("patients removed".into(), Some(id.to_string()));
    }
    if reason.starts_with("upstream ") {
        let mut stages: Vec<String> = reason.split('`').skip(1).step_by(2).map(stage_of).collect();
        stages.dedup();
        return (format!("upstream {} will run", stages.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")), None);
    }
    for (prefix, general) in
        [("new item `", "new items"), ("new input file `", "new input file"), ("input file `", "input file changed"), ("input `", "input changed")]
    {
        if reason.starts_with(prefix) && !reason.contains("cannot be read") {
            let specific = quoted(reason);
            let general = match (general, &specific) {
                ("input changed", Some(node)) => format!("input `{}` changed", stage_of(node)),
                ("input file changed", _) if reason.ends_with("no longer used") => "input file no longer used".into(),
                _ => general.to_string(),
            };
            return (general, specific);
        }
    }
    (reason.to_string(), None)
}

/// One line per stage, in plan order: `embed: 240 nodes; upstream `embed.fit`
/// will run`. A stage with one stale node shows its reasons as they are.
fn by_stage(stale: &[radpipe_engine::status::StaleNode]) -> Vec<String> {
    let mut stages: Vec<(&str, Vec<&radpipe_engine::status::StaleNode>)> = Vec::new();
    for s in stale {
        match stages.iter_mut().find(|(name, _)| *name == s.stage) {
            Some((_, nodes)) => nodes.push(s),
            None => stages.push((&s.stage, vec![s])),
        }
    }
    stages
        .into_iter()
        .map(|(stage, nodes)| {
            if let [one] = nodes.as_slice() {
                let label = if one.node == stage { String::new() } else { format!(" ({})", one.node) };
                return format!("{stage}{label}: {}", one.reasons.join("; "));
            }
            // general reason -> (nodes with it, the specifics of the first few)
            let mut reasons: Vec<(String, usize, Vec<String>)> = Vec::new();
            for node in &nodes {
                for r in &node.reasons {
                    let (general, specific) = generalise(r);
                    let i = match reasons.iter().position(|(g, _, _)| *g == general) {
                        Some(i) => i,
                        None => {
                            reasons.push((general, 0, Vec::new()));
                            reasons.len() - 1
                        }
                    };
                    reasons[i].1 += 1;
                    reasons[i].2.extend(specific);
                }
            }
            let shown: Vec<String> = reasons
                .into_iter()
                .map(|(general, count, specifics)| {
                    let share = if count < nodes.len() { format!(" ({count} of {})", nodes.len()) } else { String::new() };
                    let examples = match specifics.len() {
                        0 => String::new(),
                        n if n <= 3 => format!(": {}", specifics.join(", ")),
                        n => format!(": {} and {} more", specifics[..3].join(", "), n - 3),
                    };
                    format!("{general}{share}{examples}")
                })
                .collect();
            format!("{stage}: {} nodes; {}", nodes.len(), shown.join("; "))
        })
        .collect()
}
