//! Pipeline file -> `PipelineSpec`: the typed form of the YAML, after `--set`
//! overrides and `${params.x}` resolution, with no I/O beyond reading the file.
//! Every problem is collected (one bad stage does not hide the next) and carries
//! its file:line:col.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::diagnostics::{did_you_mean, Diagnostic, Diagnostics, Origin};
use super::yaml::{self, PathSeg, YNode};
use crate::resources::Resources;
use crate::stage::{Registry, Stage};

// `S` is the stage type: raw JSON in the first pass, then a stage of the
// registry; the JSON Schema is generated from `PipelineSpec<K>` with `K` the
// program's enum of stage kinds (see [`json_schema`]).
/// A radpipe pipeline file: parameters, cohorts and a graph of stages.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "radpipe pipeline")]
pub struct PipelineSpec<S = Box<dyn Stage>> {
    /// File-format version; 1.
    pub version: u32,
    /// A name for the pipeline (used in reports).
    pub name: String,
    /// Free parameters, referenced elsewhere as `${params.NAME}` and overridable with `--set params.NAME=...`.
    #[serde(default)]
    pub params: IndexMap<String, Value>,
    /// Cohorts: clinical tables and image folders, referenced by name from stages.
    #[serde(default)]
    pub cohorts: IndexMap<String, CohortSpec>,
    /// The stages, by name. Each has a `kind`.
    pub stages: IndexMap<String, S>,
    /// Published values to show beside reproduced ones in the report (free form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Value>,
    /// Each stage's `resources:` (taken out of the stage before it is typed,
    /// so that they never reach its parameters or its key).
    #[serde(skip)]
    #[schemars(skip)]
    pub resources: IndexMap<String, Resources>,
}

/// One cohort: a clinical table and, optionally, a folder of per-patient images.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CohortSpec {
    /// Clinical table, one row per patient: `.csv` or `.parquet`, relative to the workspace.
    pub table: String,
    /// Folder holding one sub-folder per patient (`<images>/<patient_id>/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<String>,
    /// The column that holds patient ids.
    #[serde(default = "default_id_column")]
    pub id_column: String,
    /// Patients to score only: the table need list no more than their ids; it
    /// is not checked against the schema, has no label and stays out of the
    /// clinical table (so no cohort-level result changes). Their images go
    /// through the per-patient stages with the models already trained
    /// (`radpipe predict` scores one patient this way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlabelled: bool,
}

fn default_id_column() -> String {
    "patient_id".to_string()
}

/// A loaded, typed pipeline file plus the tree that knows where everything is.
#[derive(Debug)]
pub struct LoadedSpec {
    pub file: PathBuf,
    pub spec: PipelineSpec,
    pub tree: YNode,
}

impl LoadedSpec {
    /// Where a key path of the file is (for diagnostics).
    pub fn origin(&self, keys: &[&str]) -> Origin {
        self.tree.origin_at(&PathSeg::keys(keys.iter().copied()), false)
    }

    /// Where a stage's name is written.
    pub fn stage_key_origin(&self, stage: &str) -> Origin {
        self.tree.origin_at(&PathSeg::keys(["stages", stage]), true)
    }

    /// Where a stage's field is.
    pub fn stage_origin(&self, stage: &str, field: &[&str]) -> Origin {
        let mut keys = vec!["stages", stage];
        keys.extend_from_slice(field);
        self.origin(&keys)
    }
}

/// Deserialise `value` as `T`; on failure, one diagnostic placed at the offending key or value.
pub fn typed<T: DeserializeOwned>(tree: &YNode, base: &[PathSeg], value: Value) -> Result<T, Diagnostic> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let mut path = base.to_vec();
        path.extend(yaml::segs_of(err.path()));
        let message = err.inner().to_string();
        serde_diagnostic(tree, &path, &message)
    })
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

fn expected_list(message: &str) -> Vec<&str> {
    message.split_once("expected ").map(|(_, rest)| rest.split('`').skip(1).step_by(2).collect()).unwrap_or_default()
}

fn dotted_path(path: &[PathSeg]) -> String {
    path.iter()
        .map(|s| match s {
            PathSeg::Key(k) => k.clone(),
            PathSeg::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn serde_diagnostic(tree: &YNode, path: &[PathSeg], message: &str) -> Diagnostic {
    let dotted = dotted_path(path);
    if message.starts_with("unknown field") {
        let field = backticked(message).unwrap_or("?");
        // The error path may or may not end with the unknown key itself.
        let mut at = path.to_vec();
        if at.last() != Some(&PathSeg::Key(field.to_string())) {
            at.push(PathSeg::Key(field.to_string()));
        }
        let parent = dotted_path(&at[..at.len() - 1]);
        let known = expected_list(message);
        let d = Diagnostic::new(tree.origin_at(&at, true), format!("unknown key `{field}` in `{parent}`"));
        return match did_you_mean(field, known.iter().copied()) {
            Some(k) => d.hint(format!("did you mean `{k}`?")),
            None if known.is_empty() => d.hint("remove it"),
            None => d.hint(format!("remove it; allowed keys: {}", known.join(", "))),
        };
    }
    if message.starts_with("unknown variant") {
        let variant = backticked(message).unwrap_or("?");
        let known = expected_list(message);
        let d = Diagnostic::new(tree.origin_at(path, false), format!("unknown value `{variant}` in `{dotted}`"));
        return match did_you_mean(variant, known.iter().copied()) {
            Some(k) => d.hint(format!("did you mean `{k}`? (known: {})", known.join(", "))),
            None => d.hint(format!("use one of: {}", known.join(", "))),
        };
    }
    if message.starts_with("missing field") {
        let field = backticked(message).unwrap_or("?");
        return Diagnostic::new(tree.origin_at(path, true), format!("`{dotted}` is missing the required key `{field}`")).hint(format!("add `{field}: ...`"));
    }
    Diagnostic::new(tree.origin_at(path, false), format!("`{dotted}`: {message}")).hint("see schemas/pipeline.schema.json for the expected type")
}

/// Read a pipeline file's tree with the overrides applied and `${params.x}`
/// resolved, before typing. All problems are returned together.
pub fn load_tree(file: &Path, overrides: &[String]) -> Result<YNode, Diagnostics> {
    let mut tree = YNode::load(file)?;
    let mut diags = Diagnostics::default();
    for o in overrides {
        if let Err(d) = yaml::apply_override(&mut tree, o) {
            diags.push(d);
        }
    }
    diags.extend(yaml::resolve_params(&mut tree));
    if diags.is_empty() {
        Ok(tree)
    } else {
        Err(diags)
    }
}

/// Read, override, resolve and type a pipeline file. All problems are returned together.
pub fn load(file: &Path, overrides: &[String], registry: &dyn Registry) -> Result<LoadedSpec, Diagnostics> {
    let kinds = registry.kinds();
    let tree = load_tree(file, overrides)?;
    let mut diags = Diagnostics::default();
    let raw: PipelineSpec<Value> = typed(&tree, &[], tree.to_json())?;
    if raw.version != 1 {
        diags.push(
            Diagnostic::new(tree.origin_at(&PathSeg::keys(["version"]), false), format!("unsupported version {}", raw.version))
                .hint("this radpipe reads `version: 1`"),
        );
    }
    let mut stages = IndexMap::new();
    let mut resources = IndexMap::new();
    for (name, value) in raw.stages {
        let base = PathSeg::keys(["stages", name.as_str()]);
        if name.is_empty() || name.contains(['[', ']', '/', '.', ' ']) {
            diags.push(
                Diagnostic::new(tree.origin_at(&base, true), format!("stage name `{name}` contains a reserved character"))
                    .hint("stage names may not contain `[`, `]`, `/`, `.` or spaces"),
            );
            continue;
        }
        if name == "sweeps" {
            diags.push(
                Diagnostic::new(tree.origin_at(&base, true), "the stage name `sweeps` is reserved: `results/sweeps/` holds the sweeps' results")
                    .hint("rename the stage"),
            );
            continue;
        }
        let mut value = value;
        let kind = value.as_object_mut().and_then(|m| m.shift_remove("kind"));
        let Some(Value::String(kind)) = kind else {
            diags.push(
                Diagnostic::new(tree.origin_at(&base, true), format!("stage `{name}` has no `kind`"))
                    .hint(format!("add `kind: ...` (known: {})", kinds.join(", "))),
            );
            continue;
        };
        if let Some(given) = value.as_object_mut().and_then(|m| m.shift_remove("resources")) {
            let mut at = base.clone();
            at.push(PathSeg::Key("resources".into()));
            match typed::<Resources>(&tree, &at, given) {
                Ok(r) => match r.problem() {
                    Some(why) => diags.push(Diagnostic::new(tree.origin_at(&at, false), format!("`stages.{name}.resources`: {why}"))),
                    None => {
                        resources.insert(name.clone(), r);
                    }
                },
                Err(d) => diags.push(d),
            }
        }
        match registry.parse(&kind, &tree, &base, value) {
            Some(Ok(stage)) => {
                stages.insert(name, stage);
            }
            Some(Err(d)) => diags.push(d),
            None => {
                let mut at = base.clone();
                at.push(PathSeg::Key("kind".into()));
                let d = Diagnostic::new(tree.origin_at(&at, false), format!("unknown stage kind `{kind}` in `stages.{name}`"));
                diags.push(match did_you_mean(&kind, kinds.iter().copied()) {
                    Some(k) => d.hint(format!("did you mean `{k}`? (known: {})", kinds.join(", "))),
                    None => d.hint(format!("use one of: {}", kinds.join(", "))),
                });
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let spec = PipelineSpec { version: raw.version, name: raw.name, params: raw.params, cohorts: raw.cohorts, stages, reference: raw.reference, resources };
    Ok(LoadedSpec { file: file.to_path_buf(), spec, tree })
}

/// The JSON Schema of pipeline files. Wherever a number or boolean is accepted,
/// a `${params.NAME}` reference is accepted too (references are resolved before
/// typing).
/// `K` is the enum of the program's stage kinds, tagged by `kind`.
pub fn json_schema<K: JsonSchema>() -> Value {
    let schema = schemars::schema_for!(PipelineSpec<K>);
    let mut value = serde_json::to_value(schema).expect("a schema is JSON");
    add_resources(&mut value);
    allow_references(&mut value);
    value
}

/// Every stage kind accepts `resources:` (see [`PipelineSpec::resources`]).
fn add_resources(schema: &mut Value) {
    let mut resources = serde_json::to_value(schemars::schema_for!(Resources)).expect("a schema is JSON");
    let mut inner = serde_json::Map::new();
    if let Some(map) = resources.as_object_mut() {
        map.remove("$schema");
        // Its own definitions (the time limit) join the pipeline schema's.
        if let Some(Value::Object(d)) = map.remove("$defs") {
            inner = d;
        }
    }
    let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) else { return };
    defs.extend(inner);
    if let Some(Value::Array(kinds)) = defs.get_mut("StageSpec").and_then(|s| s.get_mut("oneOf")) {
        for kind in kinds {
            if let Some(Value::Object(props)) = kind.get_mut("properties") {
                props.insert("resources".into(), serde_json::json!({"$ref": "#/$defs/Resources"}));
            }
        }
    }
    defs.insert("Resources".into(), resources);
}

fn allow_references(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let scalar = matches!(map.get("type"), Some(Value::String(t)) if matches!(t.as_str(), "integer" | "number" | "boolean"));
            for child in map.values_mut() {
                allow_references(child);
            }
            if scalar {
                let original = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), serde_json::json!([original, {"type": "string", "pattern": "^\\$\\{params\\.[^}]+\\}$"}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(allow_references),
        _ => {}
    }
}
