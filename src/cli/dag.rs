use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

use super::Ctx;
use radpipe_engine::Plan;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Dot,
    Mermaid,
}

#[derive(Debug, Parser)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Override a value of the pipeline file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// One vertex per node (per patient) instead of per stage.
    #[arg(long)]
    nodes: bool,
}

/// The graph of stages (or of nodes with `--nodes`), in topological order.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let plan = match ctx.plan(&args.pipeline, &args.sets) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (vertices, edges) = if args.nodes { node_graph(&plan) } else { stage_graph(&plan) };
    let mut out = String::new();
    match args.format {
        Format::Text => {
            for (i, (name, label)) in vertices.iter().enumerate() {
                let ups: Vec<&str> = edges.iter().filter(|(_, to)| *to == i).map(|(from, _)| vertices[*from].0.as_str()).collect();
                out.push_str(&format!("{name} ({label})"));
                if !ups.is_empty() {
                    out.push_str(&format!(" <- {}", ups.join(", ")));
                }
                out.push('\n');
            }
        }
        Format::Dot => {
            out.push_str("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
            for (i, (name, label)) in vertices.iter().enumerate() {
                out.push_str(&format!("  n{i} [label={:?}];\n", format!("{name}\n{label}")));
            }
            for (a, b) in &edges {
                out.push_str(&format!("  n{a} -> n{b};\n"));
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, (name, label)) in vertices.iter().enumerate() {
                out.push_str(&format!("  n{i}[\"{}<br/>{}\"]\n", name.replace('"', "'"), label.replace('"', "'")));
            }
            for (a, b) in &edges {
                out.push_str(&format!("  n{a} --> n{b}\n"));
            }
        }
    }
    print!("{out}");
    ExitCode::SUCCESS
}

type Graph = (Vec<(String, String)>, Vec<(usize, usize)>);

fn stage_graph(plan: &Plan) -> Graph {
    // Stages in the topological order of their first node.
    let mut order: Vec<usize> = Vec::new();
    for &n in &plan.order {
        let s = plan.nodes[n].stage;
        if !order.contains(&s) {
            order.push(s);
        }
    }
    let pos = |s: usize| order.iter().position(|&o| o == s).expect("every stage is ordered");
    let vertices = order
        .iter()
        .map(|&s| {
            let stage = &plan.stages[s];
            let kind = plan.spec.spec.stages[s].kind();
            let n = stage.nodes.len();
            (stage.name.clone(), format!("{kind}, {n} node{}", if n == 1 { "" } else { "s" }))
        })
        .collect();
    let mut edges = Vec::new();
    for &s in &order {
        for &u in &plan.stages[s].upstream {
            edges.push((pos(u), pos(s)));
        }
    }
    (vertices, edges)
}

fn node_graph(plan: &Plan) -> Graph {
    let pos: std::collections::HashMap<usize, usize> = plan.order.iter().enumerate().map(|(p, &n)| (n, p)).collect();
    let vertices = plan.order.iter().map(|&n| (plan.nodes[n].id.clone(), plan.spec.spec.stages[plan.nodes[n].stage].kind().to_string())).collect();
    let mut edges = Vec::new();
    for &n in &plan.order {
        let mut ups: Vec<usize> = plan.nodes[n].upstream.iter().map(|u| u.node).collect();
        ups.dedup();
        for u in ups {
            edges.push((pos[&u], pos[&n]));
        }
    }
    (vertices, edges)
}
