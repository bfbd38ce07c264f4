//! Lineage: from a reported number or an artifact back to the source files.
//! A target is a node id (`prep[a]`), an output path (`out/a.txt`,
//! `results/ingest/summary.json`), or a metric id: a node id followed by a path
//! into that node's `metrics.json` (`table2/external/DLS/auc`; the file may be
//! an array of `{id, value, ...}` entries or nested objects). The walk follows
//! the action records of one run (the latest by default) through their inputs.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet, VecDeque};

use super::plan::RESULTS;
use super::store::{ActionRecord, RunRecord, Store};

#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    pub target: String,
    pub run: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The artifact file the target names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// One entry per stage, from the target upwards.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub stage: String,
    pub kind: String,
    pub version: u32,
    /// Parameters, when all nodes of the stage share them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Patients or items (count and digest of the sorted list).
    pub items: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_digest: Option<String>,
    pub nodes: Vec<StepNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepNode {
    pub node: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    pub params: Value,
    /// Source files: workspace path -> blake3 digest.
    pub sources: BTreeMap<String, String>,
    pub inputs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    #[error("no run recorded in this workspace yet; run the pipeline first")]
    NoRun,
    #[error("no run `{0}` in the store")]
    UnknownRun(String),
    #[error("`{target}` is not a node, an output or a metric of run {run}{hint}")]
    UnknownTarget { target: String, run: String, hint: String },
    #[error("the action record {0} is missing from the store (collected?)")]
    MissingAction(String),
}

fn metric_value(metrics: &Value, full_id: &str, rest: &[&str]) -> Option<Value> {
    if let Value::Array(entries) = metrics {
        return entries.iter().find(|e| e.get("id").and_then(Value::as_str) == Some(full_id)).cloned();
    }
    let mut v = metrics;
    for part in rest {
        v = v.get(part)?;
    }
    Some(v.clone())
}

/// The action a target names, its value and file, and the patients a metric is about.
type Resolved = (ActionRecord, Option<Value>, Option<String>, Option<HashSet<String>>);

/// The patients of `group` in the action's `patients.json` (written by the
/// stages whose metrics are per cohort: `<stage>/<group>/...`).
pub fn group_patients(store: &Store, action: &ActionRecord, group: &str) -> Option<HashSet<String>> {
    let v: Value = serde_json::from_slice(&store.read_output(action, "patients.json")?).ok()?;
    Some(v.get(group)?.as_array()?.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
}

/// Find the action, value and file a target names.
fn resolve(store: &Store, run: &RunRecord, target: &str) -> Result<Resolved, LineageError> {
    let read = |key: &String| store.read_action(key).ok_or_else(|| LineageError::MissingAction(key.clone()));
    if let Some(key) = run.nodes.get(target) {
        return Ok((read(key)?, None, None, None));
    }
    let parts: Vec<&str> = target.split('/').collect();
    // The metric ids of the nodes the target's prefixes name, for the hint.
    let mut metric_ids: Vec<String> = Vec::new();
    for k in (1..parts.len()).rev() {
        let node = parts[..k].join("/");
        if let Some(key) = run.nodes.get(&node) {
            let action = read(key)?;
            let Some(file) = action.outputs.iter().find(|(name, _)| *name == "metrics.json" || name.ends_with("/metrics.json")).map(|(_, f)| f) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(store.object_path(&file.digest)) else { continue };
            let Ok(metrics) = serde_json::from_slice::<Value>(&bytes) else { continue };
            if let Some(v) = metric_value(&metrics, target, &parts[k..]) {
                let patients = parts.get(k).and_then(|group| group_patients(store, &action, group));
                return Ok((action, Some(v), Some(format!("metrics.json of {node}")), patients));
            }
            if let Value::Array(entries) = &metrics {
                metric_ids.extend(entries.iter().filter_map(|e| e.get("id").and_then(Value::as_str)).map(str::to_string));
            }
        }
    }
    let path = target.trim_start_matches("./");
    // A sweep member's outputs appear under its own folder; actions record
    // where a plain run shows them.
    let canonical =
        path.strip_prefix(run.results.as_str()).filter(|_| run.results != RESULTS).and_then(|r| r.strip_prefix('/')).map(|r| format!("{RESULTS}/{r}"));
    let shown = path;
    let path = canonical.as_deref().unwrap_or(path);
    for key in run.nodes.values() {
        let action = read(key)?;
        let inside = action.results_dir.as_ref().and_then(|d| path.strip_prefix(&format!("{d}/")));
        if action.outputs.contains_key(path) || inside.is_some_and(|r| action.outputs.contains_key(r)) {
            return Ok((action, None, Some(shown.to_string()), None));
        }
    }
    let metrics = super::diagnostics::nearest(target, metric_ids.iter().map(String::as_str), 3);
    let hint = match (metrics.as_slice(), super::diagnostics::did_you_mean(target, run.nodes.keys().map(String::as_str))) {
        ([], None) => String::new(),
        ([], Some(node)) => format!(" (did you mean `{node}`?)"),
        (ids, _) => format!(" (did you mean {}?)", ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")),
    };
    Err(LineageError::UnknownTarget { target: target.into(), run: run.id.clone(), hint })
}

/// The run a target means without `--run`: for a file in a sweep member's
/// folder the latest run into that folder, else the latest run into the plain
/// `results/`, else the latest run.
fn default_run(store: &Store, target: &str) -> Option<RunRecord> {
    let runs = || store.run_ids().into_iter().filter_map(|id| store.read_run(&id));
    let path = target.trim_start_matches("./");
    runs()
        .find(|r| r.results != RESULTS && path.strip_prefix(r.results.as_str()).is_some_and(|rest| rest.starts_with('/')))
        .or_else(|| store.latest_run(RESULTS))
        .or_else(|| runs().next())
}

/// The lineage of `target` in run `run_id` (default: [`default_run`]).
pub fn lineage(store: &Store, target: &str, run_id: Option<&str>) -> Result<Lineage, LineageError> {
    let run = match run_id {
        Some(id) => store.read_run(id).ok_or_else(|| LineageError::UnknownRun(id.into()))?,
        None => default_run(store, target).ok_or(LineageError::NoRun)?,
    };
    let (start, value, file, patients) = resolve(store, &run, target)?;
    let steps = steps_from(store, start, patients.as_ref())?;
    Ok(Lineage { target: target.into(), run: run.id, value, file, steps })
}

/// The lineage of an action (the key a metric carries in its `lineage` field),
/// without a run record: what the `report` stage links every number to.
pub fn steps_of_action(store: &Store, key: &str, patients: Option<&HashSet<String>>) -> Result<Vec<Step>, LineageError> {
    let start = store.read_action(key).ok_or_else(|| LineageError::MissingAction(key.to_string()))?;
    steps_from(store, start, patients)
}

/// One step per stage, from `start` upwards through the action records'
/// inputs. With `patients`, per-patient nodes of other patients are left out
/// (a cohort's metric stands on that cohort's patients). A trained model (a
/// `.fit` node other than `start`) is a step of its own, named by its key and
/// parameters; its training data is its own lineage (`radpipe lineage
/// PIPELINE embed.fit`), not the metric's.
fn steps_from(store: &Store, start: ActionRecord, patients: Option<&HashSet<String>>) -> Result<Vec<Step>, LineageError> {
    let start_key = start.key.clone();
    let mut order: Vec<String> = Vec::new();
    let mut by_stage: BTreeMap<String, Vec<ActionRecord>> = BTreeMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(action) = queue.pop_front() {
        if !seen.insert(action.key.clone()) {
            continue;
        }
        if let (Some(allowed), Some(item)) = (patients, &action.material.item) {
            if !allowed.contains(item) {
                continue;
            }
        }
        let is_model = action.key != start_key && action.node.contains(".fit");
        for input in action.inputs.iter().filter(|_| !is_model) {
            if !seen.contains(&input.key) {
                queue.push_back(store.read_action(&input.key).ok_or_else(|| LineageError::MissingAction(input.key.clone()))?);
            }
        }
        if !by_stage.contains_key(&action.stage) {
            order.push(action.stage.clone());
        }
        by_stage.entry(action.stage.clone()).or_default().push(action);
    }
    let steps = order
        .into_iter()
        .map(|stage| {
            let mut actions = by_stage.remove(&stage).unwrap_or_default();
            actions.sort_by(|a, b| a.node.cmp(&b.node));
            let first = &actions[0];
            let shared = actions.iter().all(|a| a.material.params == first.material.params);
            let mut items: Vec<&str> = actions.iter().filter_map(|a| a.material.item.as_deref()).collect();
            items.sort();
            Step {
                stage,
                kind: first.material.kind.clone(),
                version: first.material.version,
                params: shared.then(|| first.material.params.clone()),
                items: items.len(),
                items_digest: (!items.is_empty()).then(|| super::key::digest(items.join("\n").as_bytes())),
                nodes: actions
                    .iter()
                    .map(|a| StepNode {
                        node: a.node.clone(),
                        key: a.key.clone(),
                        item: a.material.item.clone(),
                        cohort: a.cohort.clone(),
                        params: a.material.params.clone(),
                        sources: a.material.sources.clone(),
                        inputs: a.inputs.iter().map(|i| i.node.clone()).collect(),
                        dropped: a.dropped.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(steps)
}

/// The lineage as an indented text tree.
pub fn render_text(l: &Lineage) -> String {
    let mut s = String::new();
    match &l.value {
        Some(v) => s.push_str(&format!("{} = {}\n", l.target, v)),
        None => s.push_str(&format!("{}\n", l.target)),
    }
    s.push_str(&format!("run {}\n", l.run));
    let short = |k: &str| k.chars().take(12).collect::<String>();
    for (i, step) in l.steps.iter().enumerate() {
        let last = i + 1 == l.steps.len();
        let (branch, pad) = if last { ("└─", "   ") } else { ("├─", "│  ") };
        s.push_str(&format!(
            "{branch} stage `{}` ({} v{}), {} node{}\n",
            step.stage,
            step.kind,
            step.version,
            step.nodes.len(),
            if step.nodes.len() == 1 { "" } else { "s" }
        ));
        if step.nodes.len() == 1 {
            s.push_str(&format!("{pad}  key {}\n", step.nodes[0].key));
        }
        if let Some(d) = &step.items_digest {
            s.push_str(&format!("{pad}  items: {} (digest {})\n", step.items, short(d)));
        }
        match &step.params {
            Some(p) => s.push_str(&format!("{pad}  params: {}\n", p)),
            None => s.push_str(&format!("{pad}  params: per node (see --json)\n")),
        }
        let sources: Vec<(&String, &String)> = step.nodes.iter().flat_map(|n| n.sources.iter()).collect();
        for (path, digest) in sources.iter().take(10) {
            s.push_str(&format!("{pad}  source {path} blake3:{}\n", short(digest)));
        }
        if sources.len() > 10 {
            s.push_str(&format!("{pad}  ... and {} more source files (see --json)\n", sources.len() - 10));
        }
        let dropped: Vec<&String> = step.nodes.iter().flat_map(|n| n.dropped.iter()).collect();
        if !dropped.is_empty() {
            s.push_str(&format!("{pad}  dropped: {}\n", dropped.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ")));
        }
    }
    s
}
