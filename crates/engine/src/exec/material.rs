//! What a node's key is made of, given its finished upstream nodes: the
//! digests of its sources (hashed through the memo) and of the upstream
//! outputs it uses. A fit node uses only the per-patient inputs of the
//! patients in its `fit_on` partitions, read from its split's partition file.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::action_index::Outputs;
use crate::key::{set_digest, InputDigest, KeyMaterial};
use crate::partition::{self, Partition};
use crate::plan::{Node, Plan, Upstream};
use crate::store::{FileRecord, InputRecord, Memo, Store};

/// A finished node's outputs, as downstream nodes see them.
#[derive(Debug, Clone)]
pub(super) struct Done {
    pub key: String,
    pub outputs: Outputs,
}

/// All of a node's outputs, or those at or under `select` (what an edge reads).
pub(super) fn selected<'a>(outputs: &'a Outputs, select: Option<&'a str>) -> impl Iterator<Item = (&'a String, &'a FileRecord)> {
    outputs.iter().filter(move |(name, _)| select.is_none_or(|sel| name.strip_prefix(sel).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))))
}

/// The digest of what an edge reads from a node's outputs, as it enters the reader's key.
pub(crate) fn selection_digest(plan: &Plan, up: &Upstream, outputs: &Outputs) -> InputDigest {
    let digest = set_digest(selected(outputs, up.select.as_deref()).map(|(name, f)| (name, &f.digest)));
    InputDigest { node: plan.nodes[up.node].id.clone(), select: up.select.clone(), digest }
}

/// The digest of a set of outputs (by name).
pub(super) fn output_digest(outputs: &BTreeMap<String, FileRecord>) -> String {
    set_digest(outputs.iter().map(|(k, v)| (k, &v.digest)))
}

/// The upstream edges a node uses: all of them, or for a fit node the
/// per-patient ones of patients in its partitions (read from the split's
/// partition file, so the split must have finished) plus its single-node inputs.
pub(crate) fn active_upstream<'p>(
    plan: &'p Plan,
    node: &'p Node,
    outputs_of: &dyn Fn(usize) -> Option<&'p Outputs>,
    store: &Store,
) -> Result<Vec<&'p Upstream>, String> {
    let Some(on) = &node.decl.fit_on else { return Ok(node.upstream.iter().collect()) };
    let split = node
        .upstream
        .iter()
        .find(|u| plan.stage_name(&plan.nodes[u.node]) == on.split)
        .ok_or_else(|| format!("`{}` has no edge to its split `{}`", node.id, on.split))?;
    let outputs = outputs_of(split.node).ok_or_else(|| format!("needs `{}`, which did not finish", on.split))?;
    let file = outputs.get(partition::FILE).ok_or_else(|| format!("`{}` wrote no {}", on.split, partition::FILE))?;
    let bytes = fs::read(store.object_path(&file.digest)).map_err(|e| format!("cannot read the partition of `{}`: {e}", on.split))?;
    let partition = Partition::from_csv(&bytes).map_err(|e| format!("the partition of `{}`: {e}", on.split))?.partition_of();
    let kept: HashSet<&str> = partition.iter().filter(|(_, p)| on.partitions.contains(p)).map(|(id, _)| id.as_str()).collect();
    if kept.is_empty() {
        return Err(format!("no patient of `{}` is in {}", on.split, on.partitions.join(", ")));
    }
    Ok(node.upstream.iter().filter(|u| plan.nodes[u.node].decl.item.as_ref().is_none_or(|i| kept.contains(i.id.as_str()))).collect())
}

/// A node's key material, the upstream actions it reads, and the upstream
/// nodes left out because they did not finish (`on_missing: drop`).
pub(super) struct Material {
    pub material: KeyMaterial,
    pub inputs: Vec<InputRecord>,
    pub dropped: Vec<String>,
}

/// The digests of a node's sources, hashed through the memo.
pub(super) fn source_digests(plan: &Plan, node: &Node, memo: &mut Memo) -> Result<BTreeMap<String, String>, String> {
    let mut sources = BTreeMap::new();
    for s in &node.sources {
        let digest = source_digest(&plan.workspace.join(s), memo).map_err(|e| format!("cannot read input `{s}`: {e}"))?;
        sources.insert(s.clone(), digest);
    }
    Ok(sources)
}

/// The same from the memo alone, when every source is a file the memo saw as
/// it is now: no hashing and no writes.
pub(super) fn remembered_sources(plan: &Plan, node: &Node, memo: &Memo) -> Option<BTreeMap<String, String>> {
    node.sources.iter().map(|s| Some((s.clone(), memo.remembered(&plan.workspace.join(s))?.to_string()))).collect()
}

/// The material of a node's key, given its sources' digests and its finished upstream nodes.
pub(super) fn material(plan: &Plan, node: &Node, active: &[&Upstream], done: &[Option<Done>], sources: BTreeMap<String, String>) -> Material {
    let mut inputs = Vec::new();
    let mut records = Vec::new();
    let mut dropped = Vec::new();
    for u in active {
        let up = &plan.nodes[u.node];
        match &done[u.node] {
            Some(d) => {
                inputs.push(selection_digest(plan, u, &d.outputs));
                records.push(InputRecord { node: up.id.clone(), key: d.key.clone() });
            }
            None => dropped.push(up.id.clone()),
        }
    }
    inputs.sort();
    records.sort_by(|a, b| a.node.cmp(&b.node));
    records.dedup();
    Material { material: key_material(plan, node, sources, inputs), inputs: records, dropped }
}

/// A node's key material from the digests of its sources and inputs.
pub(crate) fn key_material(plan: &Plan, node: &Node, sources: BTreeMap<String, String>, inputs: Vec<InputDigest>) -> KeyMaterial {
    let stage = plan.stage(node);
    KeyMaterial {
        kind: stage.kind().to_string(),
        version: stage.version(),
        item: node.decl.item.as_ref().map(|i| i.id.clone()),
        params: node.decl.params.clone(),
        sources,
        inputs,
    }
}

/// A source's digest: a file's content hash, or a folder's over its files.
pub(crate) fn source_digest(path: &Path, memo: &mut Memo) -> std::io::Result<String> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        let files = walk(path)?;
        let mut digests = BTreeMap::new();
        for f in files {
            let rel = f.strip_prefix(path).unwrap_or(&f).to_string_lossy().into_owned();
            digests.insert(rel, memo.file_digest(&f)?);
        }
        Ok(set_digest(digests.iter()))
    } else {
        memo.file_digest_as(path, &meta)
    }
}

/// Files under a folder, sorted.
pub(super) fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
