//! Why-stale: which nodes a run would execute, and why, without running
//! anything. A node is fresh when its key (computable once every upstream
//! node is fresh) has an action record whose objects are all present. For a
//! stale node, its material is compared with the last action recorded for the
//! same node id: changed parameters (old and new value), changed source files,
//! new or removed patients, a new stage version, upstream nodes that will run.

use serde::Serialize;
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};

use super::action_index::{self, ActionIndex, Outputs};
use super::exec::selection_digest;
use super::key::{InputDigest, KeyMaterial};
use super::plan::{Plan, Upstream};
use super::store::{ActionRecord, RunRecord, Store};

#[derive(Debug, Clone, Serialize)]
pub struct StaleNode {
    pub node: String,
    pub stage: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub stale: Vec<StaleNode>,
    pub fresh: usize,
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", &s[..57])
    } else {
        s
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, child, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// What differs between the material of the last action and the current one.
/// `patient_of` names the patient of a per-patient input node, if it is one.
pub fn explain(old: &KeyMaterial, new: &KeyMaterial, patient_of: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut reasons = Vec::new();
    if old.version != new.version {
        reasons.push(format!("stage version changed: {} -> {}", old.version, new.version));
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &old.params, &mut a);
    flatten("", &new.params, &mut b);
    for (k, v) in &b {
        match a.get(k) {
            Some(o) if o == v => {}
            Some(o) => reasons.push(format!("param `{k}` changed: {} -> {}", show(o), show(v))),
            None => reasons.push(format!("param `{k}` added: {}", show(v))),
        }
    }
    for (k, o) in &a {
        if !b.contains_key(k) {
            reasons.push(format!("param `{k}` removed (was {})", show(o)));
        }
    }
    for (path, d) in &new.sources {
        match old.sources.get(path) {
            Some(o) if o == d => {}
            Some(_) => reasons.push(format!("input file `{path}` changed")),
            None => reasons.push(format!("new input file `{path}`")),
        }
    }
    for path in old.sources.keys() {
        if !new.sources.contains_key(path) {
            reasons.push(format!("input file `{path}` no longer used"));
        }
    }
    let index = |v: &[InputDigest]| -> BTreeMap<(String, Option<String>), String> {
        v.iter().map(|i| ((i.node.clone(), i.select.clone()), i.digest.clone())).collect()
    };
    let (oi, ni) = (index(&old.inputs), index(&new.inputs));
    let name = |node: &str| match patient_of(node) {
        Some(p) => format!("patient {p}"),
        None => format!("input `{node}`"),
    };
    for (k, d) in &ni {
        match oi.get(k) {
            Some(o) if o == d => {}
            Some(_) => reasons.push(format!("input `{}` changed", k.0)),
            None => reasons.push(format!("new {}", name(&k.0))),
        }
    }
    for k in oi.keys() {
        if !ni.contains_key(k) {
            reasons.push(format!("{} removed", name(&k.0)));
        }
    }
    if old.item != new.item {
        reasons.push("different item".into());
    }
    reasons
}

/// The digests of the (fresh) upstream outputs a node reads, sorted, as they enter its key.
fn input_digests(plan: &Plan, active: &[&Upstream], fresh: &[Option<Outputs>]) -> Vec<InputDigest> {
    let mut inputs: Vec<InputDigest> = active.iter().map(|u| selection_digest(plan, u, fresh[u.node].as_ref().expect("fresh upstream"))).collect();
    inputs.sort();
    inputs
}

/// The status of every node of the plan. Reads only the action index while
/// nodes are fresh; the run records and previous actions only for stale ones.
pub fn status(plan: &Plan, store: Option<&Store>) -> Status {
    let mut memo = store.map(Store::load_memo).unwrap_or_default();
    let mut index = store.map(ActionIndex::load).unwrap_or_default();
    let runs: OnceCell<Vec<RunRecord>> = OnceCell::new();
    // With its outputs in the form `active_upstream` reads.
    let previous_action = |node: &str| {
        let s = store?;
        let action = s.previous_action(runs.get_or_init(|| s.run_ids().iter().take(20).filter_map(|id| s.read_run(id)).collect()), node)?;
        let outputs = action_index::outputs_of(&action);
        Some((action, outputs))
    };
    let item_names: BTreeMap<String, String> =
        plan.nodes.iter().filter_map(|n| n.decl.item.as_ref().filter(|i| i.cohort.is_some()).map(|i| (n.id.clone(), i.id.clone()))).collect();
    // The outputs of each fresh node.
    let mut fresh: Vec<Option<Outputs>> = vec![None; plan.nodes.len()];
    // The last recorded action of each stale node (by index): a stale split's
    // previous partition predicts which patients a fit node will see.
    let mut last: HashMap<usize, (ActionRecord, Outputs)> = HashMap::new();
    let mut stale = Vec::new();
    for &i in &plan.order {
        let node = &plan.nodes[i];
        let stage = plan.stage_name(node).to_string();
        let outputs_of = |u: usize| fresh[u].as_ref().or(last.get(&u).map(|(_, outputs)| outputs));
        let active = match store {
            Some(s) => super::exec::active_upstream(plan, node, &outputs_of, s).unwrap_or_else(|_| node.upstream.iter().collect()),
            None => node.upstream.iter().collect(),
        };
        let stale_ups: Vec<&str> = active.iter().filter(|u| fresh[u.node].is_none()).map(|u| plan.nodes[u.node].id.as_str()).collect();
        let first_time = |reasons: &mut Vec<String>| match &node.decl.item {
            Some(item) => match &item.cohort {
                Some(c) => reasons.push(format!("new patient {} (cohort {c})", item.id)),
                None => reasons.push(format!("new item `{}`", item.id)),
            },
            None => reasons.push("never run".into()),
        };
        if !stale_ups.is_empty() {
            last.extend(previous_action(&node.id).map(|p| (i, p)));
            let mut reasons = Vec::new();
            if !last.contains_key(&i) {
                first_time(&mut reasons);
            }
            let shown: Vec<&str> = stale_ups.iter().take(3).copied().collect();
            let more = if stale_ups.len() > 3 { format!(" and {} more", stale_ups.len() - 3) } else { String::new() };
            reasons.push(format!(
                "upstream {}{more} will run (this node stays cached if their outputs come out unchanged)",
                shown.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            ));
            stale.push(StaleNode { node: node.id.clone(), stage, reasons });
            continue;
        }
        let inputs = input_digests(plan, &active, &fresh);
        let mut sources = BTreeMap::new();
        let mut unreadable = Vec::new();
        for s in &node.sources {
            match super::exec::source_digest(&plan.workspace.join(s), &mut memo) {
                Ok(d) => {
                    sources.insert(s.clone(), d);
                }
                Err(e) => unreadable.push(format!("input file `{s}` cannot be read: {e}")),
            }
        }
        let material = super::exec::key_material(plan, node, sources, inputs);
        let key = material.key();
        if let (true, Some(s)) = (unreadable.is_empty(), store) {
            if let Some(outputs) = index.present(s, &key) {
                fresh[i] = Some(outputs);
                continue;
            }
            if s.read_action(&key).is_some() {
                last.extend(previous_action(&node.id).map(|p| (i, p)));
                stale.push(StaleNode { node: node.id.clone(), stage, reasons: vec!["outputs missing from the store (corrupt or collected)".into()] });
                continue;
            }
        }
        last.extend(previous_action(&node.id).map(|p| (i, p)));
        let mut reasons = unreadable;
        match last.get(&i) {
            Some((prev, _)) => {
                // Inputs that left the plan (a removed patient) are named from their own records.
                let patient_of = |node: &str| {
                    item_names.get(node).cloned().or_else(|| {
                        let input = prev.inputs.iter().find(|i| i.node == node)?;
                        let action = store?.read_action(&input.key)?;
                        action.cohort.and(action.material.item)
                    })
                };
                reasons.extend(explain(&prev.material, &material, &patient_of));
            }
            None => first_time(&mut reasons),
        }
        if reasons.is_empty() {
            reasons.push("not in the cache".into());
        }
        stale.push(StaleNode { node: node.id.clone(), stage, reasons });
    }
    let fresh = fresh.iter().filter(|f| f.is_some()).count();
    Status { stale, fresh }
}
