//! `LoadedSpec` -> `Plan`: cohorts read, stages expanded into nodes, edges from
//! `input:` and from matching `deps` to other nodes' `outs`, cycles named, and
//! a topological order. `dag`, `status` and `run` all start from a `Plan`.

use crate::resources::Allocation;
use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::diagnostics::{did_you_mean, Diagnostic, Diagnostics, Origin};
use super::spec::{CohortSpec, LoadedSpec};
use crate::stage::{Item, NodeDecl, Stage};
use crate::tables::Table;

/// What stages may ask while they expand into nodes.
pub struct PlanContext<'a> {
    pub workspace: &'a Path,
    spec: &'a LoadedSpec,
    tables: IndexMap<String, Option<Table>>,
}

impl<'a> PlanContext<'a> {
    fn new(workspace: &'a Path, spec: &'a LoadedSpec) -> (Self, Diagnostics) {
        let mut diags = Diagnostics::default();
        let mut tables = IndexMap::new();
        let mut owner: HashMap<String, String> = HashMap::new();
        for (name, cohort) in &spec.spec.cohorts {
            let path = workspace.join(&cohort.table);
            if !path.exists() {
                diags.push(
                    Diagnostic::new(spec.origin(&["cohorts", name, "table"]), format!("cohort `{name}`: the table `{}` does not exist", cohort.table))
                        .hint("give a path relative to the workspace, or --set cohorts.NAME.table=..."),
                );
                tables.insert(name.clone(), None);
                continue;
            }
            match Table::read(&path, &cohort.id_column) {
                Ok(table) => {
                    for id in &table.ids {
                        if let Some(other) = owner.insert(id.clone(), name.clone()) {
                            diags.push(
                                Diagnostic::new(
                                    spec.origin(&["cohorts", name, "table"]),
                                    format!("patient `{id}` is in both cohort `{other}` and cohort `{name}`"),
                                )
                                .hint("patient ids must be unique across all cohorts of a pipeline"),
                            );
                        }
                    }
                    tables.insert(name.clone(), Some(table));
                }
                Err(d) => {
                    diags.extend(d);
                    tables.insert(name.clone(), None);
                }
            }
        }
        (PlanContext { workspace, spec, tables }, diags)
    }

    /// Where a stage's field is in the pipeline file.
    pub fn origin(&self, stage: &str, field: &[&str]) -> Origin {
        self.spec.stage_origin(stage, field)
    }

    /// The items (patients) of another stage's per-item nodes, by expanding it.
    pub fn items_of(&self, stage: &str, at: Origin) -> Result<Vec<Item>, Diagnostics> {
        let Some(spec) = self.stage_spec(stage) else {
            let d = Diagnostic::new(at, format!("`{stage}` is not a stage"));
            return Err(match did_you_mean(stage, self.spec.spec.stages.keys().map(String::as_str)) {
                Some(s) => d.hint(format!("did you mean `{s}`?")),
                None => d,
            }
            .into());
        };
        let nodes = spec.expand(self, stage).map_err(|_| Diagnostics::default())?;
        Ok(nodes.into_iter().filter(|n| n.fit_on.is_none()).filter_map(|n| n.item).collect())
    }

    /// The stage that defines `partition` (a split), if exactly one does.
    pub fn split_defining(&self, partition: &str) -> Option<String> {
        let found: Vec<&String> = self.spec.spec.stages.iter().filter(|(_, s)| s.partitions().iter().any(|p| p == partition)).map(|(n, _)| n).collect();
        match found.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        }
    }

    /// Another stage of the pipeline, as written.
    pub fn stage_spec(&self, name: &str) -> Option<&dyn Stage> {
        self.spec.spec.stages.get(name).map(|s| &**s)
    }

    pub fn cohort_spec(&self, name: &str) -> Option<&CohortSpec> {
        self.spec.spec.cohorts.get(name)
    }

    /// A cohort's table. An unknown name is reported at `at`; a table that
    /// failed to load was reported already and gives an empty error.
    pub fn cohort(&self, name: &str, at: Origin) -> Result<&Table, Diagnostics> {
        match self.tables.get(name) {
            Some(Some(t)) => Ok(t),
            Some(None) => Err(Diagnostics::default()),
            None => {
                let d = Diagnostic::new(at, format!("unknown cohort `{name}`"));
                let d = match did_you_mean(name, self.tables.keys().map(String::as_str)) {
                    Some(k) => d.hint(format!("did you mean `{k}`?")),
                    None => d.hint(format!("declare it under `cohorts:` (known: {})", self.tables.keys().cloned().collect::<Vec<_>>().join(", "))),
                };
                Err(d.into())
            }
        }
    }

    /// The patients of `cohorts` (all cohorts when `None`), in table order.
    pub fn patients(&self, stage: &str, cohorts: Option<&[String]>) -> Result<Vec<Item>, Diagnostics> {
        let names: Vec<String> = match cohorts {
            Some(c) => c.to_vec(),
            None => self.tables.keys().cloned().collect(),
        };
        let mut diags = Diagnostics::default();
        let mut items = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match self.cohort(name, self.origin(stage, &["cohorts", &i.to_string()])) {
                Ok(t) => items.extend(t.ids.iter().map(|id| Item { id: id.clone(), cohort: Some(name.clone()) })),
                Err(d) => diags.extend(d),
            }
        }
        if diags.is_empty() {
            Ok(items)
        } else {
            Err(diags)
        }
    }

    /// Workspace-relative paths matching a glob, sorted.
    pub fn glob(&self, pattern: &str) -> Result<Vec<Item>, String> {
        let full = self.workspace.join(pattern);
        let paths = glob::glob(&full.to_string_lossy()).map_err(|e| format!("invalid glob `{pattern}`: {e}"))?;
        let mut items: Vec<Item> = paths
            .filter_map(Result::ok)
            .map(|p| match p.strip_prefix(self.workspace) {
                Ok(rel) => rel.to_string_lossy().into_owned(),
                // `./x/*` comes back as `x/...`: already relative to the workspace.
                Err(_) => p.to_string_lossy().into_owned(),
            })
            .map(|id| Item { id, cohort: None })
            .collect();
        items.sort();
        Ok(items)
    }
}

/// One edge into a node: which upstream node, and which part of its outputs
/// (`None`: all of them; `Some(path)`: that file or folder).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Upstream {
    pub node: usize,
    pub select: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// `stage`, `stage[item]`.
    pub id: String,
    pub stage: usize,
    pub decl: NodeDecl,
    pub upstream: Vec<Upstream>,
    /// Deps no node produces: hashed from the workspace.
    pub sources: Vec<String>,
}

impl Node {
    pub fn is_single(&self) -> bool {
        self.decl.item.is_none()
    }
}

pub struct StagePlan {
    pub name: String,
    pub nodes: Vec<usize>,
    pub upstream: BTreeSet<usize>,
}

/// The folder of a plain run's outputs, inside the workspace.
pub const RESULTS: &str = "results";

/// A validated pipeline: nodes, edges, a topological order.
pub struct Plan {
    pub spec: LoadedSpec,
    pub workspace: PathBuf,
    /// Where the nodes' outputs appear: `<workspace>/results`, or a sweep
    /// member's folder `results/sweeps/<sweep>/<member>`.
    pub results: PathBuf,
    pub stages: Vec<StagePlan>,
    pub nodes: Vec<Node>,
    pub order: Vec<usize>,
    pub node_index: HashMap<String, usize>,
}

impl Plan {
    pub fn stage(&self, node: &Node) -> &dyn Stage {
        &*self.spec.spec.stages[node.stage]
    }

    /// What a node's cluster job asks for: its stage's `resources:` over its kind's defaults.
    pub fn allocation(&self, node: &Node) -> Allocation {
        let name = &self.stages[node.stage].name;
        self.spec.spec.resources.get(name).cloned().unwrap_or_default().over(&self.stage(node).resources())
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.node_index.get(id).map(|&i| &self.nodes[i])
    }

    /// The results folder relative to the workspace, as run records name it
    /// (`results`, or `results/sweeps/<sweep>/<member>`).
    pub fn results_in_workspace(&self) -> String {
        self.results.strip_prefix(&self.workspace).unwrap_or(&self.results).to_string_lossy().into_owned()
    }

    pub fn stage_name(&self, node: &Node) -> &str {
        &self.stages[node.stage].name
    }

    /// Downstream nodes of each node.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for u in &n.upstream {
                if !out[u.node].contains(&i) {
                    out[u.node].push(i);
                }
            }
        }
        out
    }
}

fn normalize(p: &str) -> String {
    let p = p.trim_start_matches("./").trim_end_matches('/');
    p.to_string()
}

/// `stage`, `stage[item]`, and for fit nodes `stage.fit`, `stage.fit[item]`.
pub fn node_id(stage: &str, item: Option<&Item>, fit: bool) -> String {
    let base = if fit { format!("{stage}.fit") } else { stage.to_string() };
    match item {
        Some(i) => format!("{base}[{}]", i.id),
        None => base,
    }
}

/// Build the plan. Missing source files are not errors here (a run fails just
/// the nodes that need them); `validate` reports them through `missing_sources`.
pub fn build(spec: LoadedSpec, workspace: &Path) -> Result<Plan, Diagnostics> {
    // A cycle through `input:` would have per-patient stages expand one another
    // without end (each asks its input for its patients): name it before expanding.
    let declared: Vec<StagePlan> = spec
        .spec
        .stages
        .iter()
        .map(|(name, stage)| StagePlan {
            name: name.clone(),
            nodes: Vec::new(),
            upstream: stage.inputs().iter().filter_map(|r| spec.spec.stages.get_index_of(&r.stage)).collect(),
        })
        .collect();
    if let Some(cycle) = stage_cycle(&declared) {
        return Err(cycle_error(&spec, &declared, &cycle));
    }
    let (ctx, mut diags) = PlanContext::new(workspace, &spec);
    // Stages expand independently, and a per-patient one into 10^5 nodes: in parallel.
    let expanded: Vec<Result<Vec<NodeDecl>, Diagnostics>> =
        spec.spec.stages.iter().collect::<Vec<_>>().par_iter().map(|(name, stage)| stage.expand(&ctx, name)).collect();
    let mut nodes: Vec<Node> = Vec::with_capacity(expanded.iter().map(|e| e.as_ref().map_or(0, Vec::len)).sum());
    let mut stages: Vec<StagePlan> = Vec::new();
    for (si, (name, expansion)) in spec.spec.stages.keys().zip(expanded).enumerate() {
        let mut plan = StagePlan { name: name.clone(), nodes: Vec::new(), upstream: BTreeSet::new() };
        match expansion {
            Ok(decls) => {
                for decl in decls {
                    plan.nodes.push(nodes.len());
                    let id = node_id(name, decl.item.as_ref(), decl.fit_on.is_some());
                    nodes.push(Node { id, stage: si, decl, upstream: Vec::new(), sources: Vec::new() });
                }
            }
            Err(d) => diags.extend(d),
        }
        stages.push(plan);
    }
    let node_index: HashMap<String, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.clone(), i)).collect();
    if node_index.len() != nodes.len() {
        let mut seen = BTreeSet::new();
        for n in &nodes {
            if !seen.insert(&n.id) {
                diags.push(
                    Diagnostic::new(spec.stage_origin(&stages[n.stage].name, &["foreach"]), format!("node `{}` appears twice", n.id))
                        .hint("foreach items must be unique"),
                );
            }
        }
    }
    drop(ctx);
    input_edges(&spec, &stages, &mut nodes, &mut diags);
    dep_edges(&spec, &stages, &mut nodes, &mut diags);
    fit_edges(&spec, &stages, &mut nodes, &mut diags);
    for n in &mut nodes {
        n.upstream.sort();
        n.upstream.dedup();
    }
    for i in 0..nodes.len() {
        // Edges inside a stage (fit -> apply) are not stage dependencies.
        let own = nodes[i].stage;
        let ups: Vec<usize> = nodes[i].upstream.iter().map(|u| nodes[u.node].stage).filter(|&s| s != own).collect();
        stages[own].upstream.extend(ups);
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    if let Some(cycle) = stage_cycle(&stages) {
        return Err(cycle_error(&spec, &stages, &cycle));
    }
    let order = stable_order(&nodes);
    Ok(Plan { spec, workspace: workspace.to_path_buf(), results: workspace.join(RESULTS), stages, nodes, order, node_index })
}

/// Edges from `input:`. A per-item node pairs with the upstream stage's node of
/// the same item (when that stage has per-item nodes), else takes its single
/// node. A single node takes the upstream's single node when there is one (the
/// ingest table, not the per-patient images), else all its per-item nodes (the
/// cohort-level case). Fit nodes are reached through their stage's apply nodes,
/// never directly.
fn input_edges(spec: &LoadedSpec, stages: &[StagePlan], nodes: &mut [Node], diags: &mut Diagnostics) {
    let by_name: HashMap<&str, usize> = stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    for (si, (name, stage)) in spec.spec.stages.iter().enumerate() {
        for (k, input) in stage.inputs().into_iter().enumerate() {
            let at = || {
                let o = spec.stage_origin(name, &["input", &k.to_string()]);
                if matches!(o, Origin::File { .. }) {
                    o
                } else {
                    spec.stage_origin(name, &["input"])
                }
            };
            let Some(&ui) = by_name.get(input.stage.as_str()) else {
                let d = Diagnostic::new(at(), format!("stage `{name}` takes input from `{}`, which is not a stage", input.stage));
                diags.push(match did_you_mean(&input.stage, by_name.keys().copied()) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint("name a stage defined under `stages:`"),
                });
                continue;
            };
            let candidates: Vec<usize> = stages[ui].nodes.iter().copied().filter(|&n| nodes[n].decl.fit_on.is_none()).collect();
            let singles: Vec<usize> = candidates.iter().copied().filter(|&n| nodes[n].is_single()).collect();
            let by_item: HashMap<String, usize> = candidates.iter().filter_map(|&n| nodes[n].decl.item.as_ref().map(|i| (i.id.clone(), n))).collect();
            for &ni in &stages[si].nodes {
                let targets: Vec<usize> = match &nodes[ni].decl.item {
                    Some(item) if !by_item.is_empty() => match by_item.get(&item.id) {
                        Some(&u) => vec![u],
                        None => {
                            diags.push(
                                Diagnostic::new(
                                    at(),
                                    format!("`{}` needs `{}[{}]`, which `{}` does not have", nodes[ni].id, input.stage, item.id, input.stage),
                                )
                                .hint("per-patient stages pair by patient: run the input stage on the same cohorts"),
                            );
                            continue;
                        }
                    },
                    _ if !singles.is_empty() => singles.clone(),
                    _ => candidates.clone(),
                };
                let select = input.output.clone();
                nodes[ni].upstream.extend(targets.into_iter().map(|node| Upstream { node, select: select.clone() }));
            }
        }
    }
}

/// Fit nodes read their split; a stage's other nodes run after its fit node.
fn fit_edges(spec: &LoadedSpec, stages: &[StagePlan], nodes: &mut [Node], diags: &mut Diagnostics) {
    for stage in stages {
        let Some(&fit) = stage.nodes.iter().find(|&&n| nodes[n].decl.fit_on.is_some()) else { continue };
        let on = nodes[fit].decl.fit_on.clone().expect("a fit node");
        match stages.iter().find(|s| s.name == on.split) {
            Some(split) if split.nodes.len() == 1 && nodes[split.nodes[0]].is_single() => {
                let up = Upstream { node: split.nodes[0], select: None };
                nodes[fit].upstream.push(up);
            }
            _ => {
                let d = Diagnostic::new(
                    spec.stage_origin(&stage.name, &["fit_on"]),
                    format!("`{}` learns on the partitions of `{}`, which is not a split stage", stage.name, on.split),
                );
                diags.push(d.hint("name a stage of `kind: split`"));
                continue;
            }
        }
        for &n in &stage.nodes {
            if n != fit {
                nodes[n].upstream.push(Upstream { node: fit, select: None });
            }
        }
    }
}

/// Edges from `deps` that other nodes produce (equal paths, or one inside the other).
fn dep_edges(spec: &LoadedSpec, stages: &[StagePlan], nodes: &mut [Node], diags: &mut Diagnostics) {
    let mut producer: HashMap<String, usize> = HashMap::new();
    let mut inside: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for out in &n.decl.outs {
            let out = normalize(out);
            if let Some(prev) = producer.insert(out.clone(), i) {
                diags.push(
                    Diagnostic::new(
                        spec.stage_origin(&stages[n.stage].name, &["outs"]),
                        format!("`{out}` is an output of both `{}` and `{}`", nodes[prev].id, n.id),
                    )
                    .hint("each output path must belong to one node"),
                );
            }
            let mut p = Path::new(&out).parent();
            while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
                inside.entry(dir.to_string_lossy().into_owned()).or_default().push(i);
                p = dir.parent();
            }
        }
    }
    for node in nodes.iter_mut() {
        let deps = node.decl.deps.clone();
        for dep in deps {
            let dep = normalize(&dep);
            let mut ups: Vec<Upstream> = Vec::new();
            if let Some(&u) = producer.get(&dep) {
                ups.push(Upstream { node: u, select: Some(dep.clone()) });
            } else if let Some(us) = inside.get(&dep) {
                ups.extend(us.iter().map(|&u| Upstream { node: u, select: Some(dep.clone()) }));
            } else {
                let mut p = Path::new(&dep).parent();
                while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
                    if let Some(&u) = producer.get(dir.to_string_lossy().as_ref()) {
                        ups.push(Upstream { node: u, select: Some(dep.clone()) });
                        break;
                    }
                    p = dir.parent();
                }
            }
            if ups.is_empty() {
                node.sources.push(dep);
            } else {
                node.upstream.extend(ups);
            }
        }
    }
}

/// Topological order that keeps file order where the edges allow (Kahn's
/// algorithm, smallest node index first), so listings follow the pipeline file.
/// Stage-level cycles were ruled out before, so every node is ordered.
fn stable_order(nodes: &[Node]) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut waiting: Vec<usize> = nodes.iter().map(|n| n.upstream.len()).collect();
    let mut dependents = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for u in &n.upstream {
            dependents[u.node].push(i);
        }
    }
    let mut heap: BinaryHeap<Reverse<usize>> = (0..nodes.len()).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = heap.pop() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                heap.push(Reverse(d));
            }
        }
    }
    order
}

/// The error naming a cycle of stages, at the first one's key in the pipeline file.
fn cycle_error(spec: &LoadedSpec, stages: &[StagePlan], cycle: &[usize]) -> Diagnostics {
    let names: Vec<&str> = cycle.iter().map(|s| stages[*s].name.as_str()).collect();
    let first = names[0];
    Diagnostic::new(spec.stage_key_origin(first), format!("the stages form a cycle: {} -> {first}", names.join(" -> ")))
        .hint("a stage cannot depend on its own outputs; remove one `input:` or dep in the cycle")
        .into()
}

/// A cycle among stages, as the list of stages along it.
fn stage_cycle(stages: &[StagePlan]) -> Option<Vec<usize>> {
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
    for (i, s) in stages.iter().enumerate() {
        for &u in &s.upstream {
            graph.add_edge(idx[u], idx[i], ());
        }
    }
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let self_loop = scc.len() == 1 && stages[scc[0].index()].upstream.contains(&scc[0].index());
        if scc.len() > 1 || self_loop {
            let members: BTreeSet<usize> = scc.iter().map(|n| n.index()).collect();
            let start = *members.iter().next().expect("non-empty");
            // Walk forward inside the component until a stage repeats.
            let mut path = vec![start];
            let mut current = start;
            loop {
                let next = members.iter().copied().find(|&m| stages[m].upstream.contains(&current)).expect("a strongly connected component has a successor");
                if let Some(pos) = path.iter().position(|&p| p == next) {
                    return Some(path[pos..].to_vec());
                }
                path.push(next);
                current = next;
            }
        }
    }
    None
}

/// Deps that neither exist in the workspace nor are produced by a node.
pub fn missing_sources(plan: &Plan) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for n in &plan.nodes {
        for s in &n.sources {
            if !plan.workspace.join(s).exists() {
                let stage = &plan.stages[n.stage].name;
                diags.push(
                    Diagnostic::new(plan.spec.stage_origin(stage, &["deps"]), format!("`{}` needs `{s}`, which does not exist and no stage produces", n.id))
                        .hint("create the file, fix the path, or add the stage that writes it to `outs`"),
                );
            }
        }
    }
    diags
}
