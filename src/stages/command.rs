//! `kind: command`: run an external program with declared `deps` and `outs`,
//! cached and traced like every other node (the DVC stage model).
//!
//! ```yaml
//! prep:
//!   kind: command
//!   foreach: [a, b]                  # or {glob: "raw/*.csv"}, or patient (with cohorts: [...])
//!   cmd: "python3 prep.py ${item} > out/${item}.txt"
//!   deps: [prep.py, "data/${item}.csv"]
//!   outs: ["out/${item}.txt"]
//!   params: { threshold: 0.5 }       # passed as RADPIPE_PARAM_THRESHOLD
//! ```
//!
//! `${item}` is the list element or glob match; with `foreach: patient` it is the
//! patient id, also available as `${patient}`, with the cohort as `${cohort}`.
//! Other `${...}` forms are left to the shell. The key covers the interpolated
//! `cmd`, `outs`, `params`, the digests of `deps` and the outputs of `input:`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::process::Stdio;

use super::{Inputs, InputRef, Item, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;

pub const VERSION: u32 = 1;

/// Run a shell command per node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The command, run with `sh -c` in the workspace.
    pub cmd: String,
    /// Files or folders read (workspace-relative). Outputs of other stages become edges.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Files or folders written (workspace-relative). Stored in the cache and restored on a hit.
    #[serde(default)]
    pub outs: Vec<String>,
    /// Parameters, passed as `RADPIPE_PARAM_<NAME>` environment variables; part of the key.
    #[serde(default)]
    pub params: IndexMap<String, Value>,
    /// Stages that must run first; their outputs enter this stage's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Inputs>,
    /// One node per list element, glob match or patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<Foreach>,
    /// With `foreach: patient`: the cohorts whose patients to run (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<Vec<String>>,
    /// A single node after per-patient nodes: `fail` (default) when any of them
    /// failed, or `drop` to run on the others and list the dropped ones.
    #[serde(default)]
    pub on_missing: OnMissing,
}

/// What `foreach` expands over.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Foreach {
    /// `patient`: one node per patient of the stage's `cohorts`.
    Patient(PatientKeyword),
    /// `{glob: "raw/*.csv"}`: one node per matching path (sorted).
    Glob { glob: String },
    /// A list of items.
    List(Vec<Value>),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatientKeyword {
    Patient,
}

/// Policy of a cohort-level node whose per-patient inputs partly failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    #[default]
    Fail,
    Drop,
}

fn interpolate(template: &str, item: Option<&Item>) -> String {
    let Some(item) = item else { return template.to_string() };
    // One pass (a plan of 10^5 patients interpolates 600,000 strings).
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let value = [("${item}", Some(&item.id)), ("${patient}", Some(&item.id)), ("${cohort}", item.cohort.as_ref())]
            .into_iter()
            .find_map(|(name, value)| Some((name, value?)).filter(|_| rest.starts_with(name)));
        match value {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                out.push_str("${");
                rest = &rest[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Command {
    fn items(&self, ctx: &PlanContext, stage: &str) -> Result<Option<Vec<Item>>, Diagnostics> {
        let Some(foreach) = &self.foreach else {
            if self.cohorts.is_some() {
                return Err(Diagnostic::new(ctx.origin(stage, &["cohorts"]), "`cohorts` needs `foreach: patient`")
                    .hint("add `foreach: patient` or remove `cohorts`")
                    .into());
            }
            return Ok(None);
        };
        let items = match foreach {
            Foreach::List(values) => values.iter().map(|v| Item { id: scalar_text(v), cohort: None }).collect(),
            Foreach::Glob { glob } => ctx.glob(glob).map_err(|msg| {
                Diagnostics::from(Diagnostic::new(ctx.origin(stage, &["foreach", "glob"]), msg))
            })?,
            Foreach::Patient(_) => ctx.patients(stage, self.cohorts.as_deref())?,
        };
        Ok(Some(items))
    }
}

impl Stage for Command {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.as_ref().map(Inputs::refs).unwrap_or_default()
    }

    fn drops_missing(&self) -> bool {
        self.on_missing == OnMissing::Drop
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let decl = |item: Option<Item>| {
            let it = item.as_ref();
            let cmd = interpolate(&self.cmd, it);
            let outs: Vec<String> = self.outs.iter().map(|o| interpolate(o, it)).collect();
            NodeDecl {
                params: json!({ "cmd": cmd, "outs": outs, "params": self.params }),
                deps: self.deps.iter().map(|d| interpolate(d, it)).collect(),
                outs,
                ..NodeDecl::single(Value::Null)
            }
            .with_item(item)
        };
        Ok(match self.items(ctx, stage)? {
            None => vec![decl(None)],
            Some(items) => items.into_iter().map(|i| decl(Some(i))).collect(),
        })
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let cmd = ctx.decl.params["cmd"].as_str().unwrap_or_default().to_string();
        for out in &ctx.decl.outs {
            let path = ctx.workspace.join(out);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            }
            .map_err(|e| StageError::new(format!("cannot remove the old output `{out}`: {e}")))?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StageError::new(format!("cannot create the folder of `{out}`: {e}")))?;
            }
        }
        let mut command = std::process::Command::new("sh");
        command.arg("-c").arg(&cmd).current_dir(ctx.workspace).stdin(Stdio::null());
        command.env("RADPIPE_NODE", ctx.node_id);
        for (name, value) in &self.params {
            command.env(format!("RADPIPE_PARAM_{}", name.to_uppercase()), scalar_text(value));
        }
        if let Some(item) = &ctx.decl.item {
            command.env("RADPIPE_ITEM", &item.id);
            if let Some(cohort) = &item.cohort {
                command.env("RADPIPE_PATIENT", &item.id).env("RADPIPE_COHORT", cohort);
            }
        }
        let _ = writeln!(ctx.log, "$ {cmd}");
        let output = command.output().map_err(|e| StageError::new(format!("cannot start `sh -c {cmd}`: {e}")))?;
        let _ = ctx.log.write_all(&output.stdout);
        let _ = ctx.log.write_all(&output.stderr);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(StageError::new(format!(
                "`{cmd}` failed ({}){}",
                output.status,
                if tail.is_empty() { String::new() } else { format!(": {}", tail.join(" | ")) }
            )));
        }
        for out in &ctx.decl.outs {
            if !ctx.workspace.join(out).exists() {
                return Err(StageError::new(format!("`{cmd}` succeeded but did not write the declared output `{out}`")));
            }
        }
        Ok(())
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_fills_item_patient_and_cohort_and_leaves_other_forms_to_the_shell() {
        let item = Item { id: "P1".into(), cohort: Some("c1".into()) };
        assert_eq!(interpolate("cp ${patient}.txt out/${cohort}/${item} ${HOME} $${x} ${", Some(&item)), "cp P1.txt out/c1/P1 ${HOME} $${x} ${");
        let bare = Item { id: "a b".into(), cohort: None };
        assert_eq!(interpolate("${item}/${cohort}", Some(&bare)), "a b/${cohort}");
        assert_eq!(interpolate("${patient}", None), "${patient}");
    }
}
