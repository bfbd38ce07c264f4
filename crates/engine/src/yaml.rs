//! The pipeline file as a value tree that remembers where every key and value
//! came from. One span-keeping parser (marked-yaml) reads the file; `--set`
//! overrides and `${params.x}` references are applied to this tree, and only
//! then is it turned into JSON for typed (serde) deserialisation. Positions are
//! what semantic errors need, so this tree is the single source of both.

use indexmap::IndexMap;
use marked_yaml::types::{MarkedScalarNode, Node};
use marked_yaml::{LoadError, LoaderOptions};
use serde_json::Value;
use std::path::Path;

use super::diagnostics::{did_you_mean, Diagnostic, Diagnostics, Origin};

/// A node of the tree: a scalar (JSON-typed), a sequence or a mapping.
#[derive(Debug, Clone)]
pub struct YNode {
    pub value: YValue,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum YValue {
    Scalar(Value),
    Seq(Vec<YNode>),
    /// Keys keep their own origin (the position of the key itself).
    Map(IndexMap<String, (Origin, YNode)>),
}

fn origin_of(file: &Path, marker: Option<&marked_yaml::Marker>) -> Origin {
    match marker {
        Some(m) => Origin::File { path: file.to_path_buf(), line: m.line(), col: m.column() },
        None => Origin::Unknown(file.to_path_buf()),
    }
}

/// YAML 1.2 core-schema typing of an unquoted scalar; quoted scalars stay strings.
pub fn coerce_scalar(text: &str, plain: bool) -> Value {
    if !plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    let numeric = text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) && text.bytes().any(|b| b.is_ascii_digit());
    if numeric {
        if let Ok(f) = text.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(text.to_string())
}

fn scalar(file: &Path, s: &MarkedScalarNode) -> YNode {
    YNode { value: YValue::Scalar(coerce_scalar(s.as_str(), s.may_coerce())), origin: origin_of(file, s.span().start()) }
}

fn convert(file: &Path, node: &Node) -> YNode {
    match node {
        Node::Scalar(s) => scalar(file, s),
        Node::Sequence(seq) => YNode { value: YValue::Seq(seq.iter().map(|n| convert(file, n)).collect()), origin: origin_of(file, seq.span().start()) },
        Node::Mapping(map) => YNode {
            value: YValue::Map(map.iter().map(|(k, v)| (k.as_str().to_string(), (origin_of(file, k.span().start()), convert(file, v)))).collect()),
            origin: origin_of(file, map.span().start()),
        },
    }
}

/// Parse YAML text; syntax errors come back with their position.
pub fn parse(file: &Path, text: &str) -> Result<YNode, Diagnostic> {
    // `prevent_coercion` keeps quoted scalars (`"0"`, `"yes"`) marked as strings.
    let options = LoaderOptions::default().error_on_duplicate_keys(true).prevent_coercion(true);
    match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(node) => Ok(convert(file, &node)),
        Err(err) => Err(load_error(file, err)),
    }
}

fn load_error(file: &Path, err: LoadError) -> Diagnostic {
    let at = |m: &marked_yaml::Marker| origin_of(file, Some(m));
    match err {
        LoadError::TopLevelMustBeMapping(m) => {
            Diagnostic::new(at(&m), "the file must be a YAML mapping").hint("start with `version: 1`, `name: ...` and `stages:`")
        }
        LoadError::UnexpectedAnchor(m) => {
            Diagnostic::new(at(&m), "YAML anchors and aliases are not supported").hint("use `${params.x}` references for shared values")
        }
        LoadError::UnexpectedTag(m) => Diagnostic::new(at(&m), "explicit YAML tags are not supported").hint("remove the `!tag`"),
        LoadError::MappingKeyMustBeScalar(m) => Diagnostic::new(at(&m), "mapping keys must be plain strings"),
        LoadError::ScanError(m, e) => Diagnostic::new(at(&m), format!("YAML syntax error: {}", e.info()))
            .hint("check indentation, colons and unbalanced brackets or quotes on this line or the one before"),
        LoadError::DuplicateKey(inner) => {
            let o = origin_of(file, inner.key.span().start());
            Diagnostic::new(o, format!("duplicate key `{}`", inner.key.as_str())).hint("each key may appear once in a mapping; remove or rename one of them")
        }
        other => Diagnostic::new(Origin::Unknown(file.to_path_buf()), format!("YAML error: {other:?}")),
    }
}

impl YNode {
    /// Read a YAML file into a tree.
    pub fn load(path: &Path) -> Result<YNode, Diagnostic> {
        let text = std::fs::read_to_string(path).map_err(|e| Diagnostic::new(Origin::Unknown(path.to_path_buf()), format!("cannot read the file: {e}")))?;
        parse(path, &text)
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, (Origin, YNode)>> {
        match &self.value {
            YValue::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&YNode> {
        self.as_map().and_then(|m| m.get(key)).map(|(_, n)| n)
    }

    /// Plain JSON, for typed deserialisation.
    pub fn to_json(&self) -> Value {
        match &self.value {
            YValue::Scalar(v) => v.clone(),
            YValue::Seq(items) => Value::Array(items.iter().map(YNode::to_json).collect()),
            YValue::Map(m) => Value::Object(m.iter().map(|(k, (_, v))| (k.clone(), v.to_json())).collect()),
        }
    }

    /// The origin of the value at `path` (map keys and sequence indices), or of
    /// the closest existing ancestor. With `key`, the key's own position.
    pub fn origin_at(&self, path: &[PathSeg], key: bool) -> Origin {
        let mut node = self;
        let mut best = self.origin.clone();
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match (seg, &node.value) {
                (PathSeg::Key(k), YValue::Map(m)) => match m.get(k.as_str()) {
                    Some((ko, child)) => {
                        best = if last && key { ko.clone() } else { child.origin.clone() };
                        node = child;
                    }
                    None => return best,
                },
                // A key that is a number indexes a list (`ctx.origin(stage, &["figures", "1"])`).
                (PathSeg::Key(k), YValue::Seq(items)) if k.parse::<usize>().is_ok() => match k.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(child) => {
                        best = child.origin.clone();
                        node = child;
                    }
                    None => return best,
                },
                (PathSeg::Index(i), YValue::Seq(items)) => match items.get(*i) {
                    Some(child) => {
                        best = child.origin.clone();
                        node = child;
                    }
                    None => return best,
                },
                _ => return best,
            }
        }
        best
    }
}

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl PathSeg {
    pub fn keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<PathSeg> {
        keys.into_iter().map(|k| PathSeg::Key(k.to_string())).collect()
    }
}

/// Apply `--set a.b.c=value`: replaces a scalar, or adds a key to an existing mapping.
pub fn apply_override(root: &mut YNode, assignment: &str) -> Result<(), Diagnostic> {
    let origin = Origin::Override(assignment.to_string());
    let Some((path, value)) = assignment.split_once('=') else {
        return Err(Diagnostic::new(origin, "an override must look like `key.path=value`").hint("for example --set params.seed=7"));
    };
    let segs: Vec<&str> = path.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(Diagnostic::new(origin, format!("`{path}` is not a valid key path")));
    }
    let mut node = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let walked = segs[..i].join(".");
        node = match &mut node.value {
            YValue::Map(m) => {
                if last && !m.contains_key(*seg) {
                    let new = YNode { value: YValue::Scalar(Value::Null), origin: origin.clone() };
                    m.insert(seg.to_string(), (origin.clone(), new));
                }
                if !m.contains_key(*seg) {
                    let known: Vec<&str> = m.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::new(origin.clone(), format!("`{}` has no key `{seg}`", if walked.is_empty() { "the pipeline" } else { &walked }));
                    if let Some(s) = did_you_mean(seg, known.iter().copied()) {
                        d = d.hint(format!("did you mean `{s}`?"));
                    }
                    return Err(d);
                }
                &mut m.get_mut(*seg).expect("checked above").1
            }
            YValue::Seq(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(child) => child,
                None => return Err(Diagnostic::new(origin.clone(), format!("`{walked}` has no item `{seg}`"))),
            },
            YValue::Scalar(_) => return Err(Diagnostic::new(origin.clone(), format!("`{walked}` is a scalar, it has no key `{seg}`"))),
        };
    }
    if !matches!(node.value, YValue::Scalar(_)) {
        return Err(Diagnostic::new(origin, format!("`{path}` is a mapping or list; --set replaces scalars only")).hint("set its scalar fields one by one"));
    }
    *node = YNode { value: YValue::Scalar(coerce_scalar(value, true)), origin };
    Ok(())
}

/// Resolve `${params.NAME}` everywhere but in `params` itself. A value that is
/// exactly one reference takes the parameter's type; a reference inside a longer
/// string is replaced by the parameter's text. Other `${...}` forms (`${item}`,
/// `${patient}`, `${cohort}`) are left for the stages that define them.
pub fn resolve_params(root: &mut YNode) -> Diagnostics {
    let params: IndexMap<String, Value> =
        root.get("params").and_then(YNode::as_map).map(|m| m.iter().map(|(k, (_, v))| (k.clone(), v.to_json())).collect()).unwrap_or_default();
    let mut diags = Diagnostics::default();
    if let YValue::Map(m) = &mut root.value {
        for (key, (_, child)) in m.iter_mut() {
            if key != "params" {
                resolve_node(child, &params, &mut diags);
            }
        }
    }
    diags
}

fn resolve_node(node: &mut YNode, params: &IndexMap<String, Value>, diags: &mut Diagnostics) {
    match &mut node.value {
        YValue::Scalar(Value::String(s)) => {
            if !s.contains("${params.") {
                return;
            }
            match interpolate(s, params) {
                Ok(v) => node.value = YValue::Scalar(v),
                Err(name) => {
                    let mut d = Diagnostic::new(node.origin.clone(), format!("unknown parameter `{name}` in `{s}`"));
                    d = match did_you_mean(&name, params.keys().map(String::as_str)) {
                        Some(k) => d.hint(format!("did you mean `${{params.{k}}}`?")),
                        None => d.hint(format!("declare it under `params:` (known: {})", params.keys().cloned().collect::<Vec<_>>().join(", "))),
                    };
                    diags.push(d);
                }
            }
        }
        YValue::Scalar(_) => {}
        YValue::Seq(items) => items.iter_mut().for_each(|n| resolve_node(n, params, diags)),
        YValue::Map(m) => m.values_mut().for_each(|(_, n)| resolve_node(n, params, diags)),
    }
}

fn interpolate(s: &str, params: &IndexMap<String, Value>) -> Result<Value, String> {
    let whole = s.strip_prefix("${params.").and_then(|r| r.strip_suffix('}'));
    if let Some(name) = whole.filter(|n| !n.contains('}') && !n.contains('$')) {
        return params.get(name).cloned().ok_or_else(|| name.to_string());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${params.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${params.".len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        let value = params.get(name).ok_or_else(|| name.to_string())?;
        match value {
            Value::String(t) => out.push_str(t),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

/// The path of a deserialisation error as tree segments.
pub fn segs_of(path: &serde_path_to_error::Path) -> Vec<PathSeg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(PathSeg::Key(key.clone())),
            Segment::Seq { index } => Some(PathSeg::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_scalars_stay_strings_and_plain_ones_are_typed() {
        let tree = parse(Path::new("t.yaml"), "a: \"0\"\nb: 0\nc: 'true'\nd: true\ne: 1.5\nf: ~\ng: \"${params.x}\"\n").unwrap();
        let j = tree.to_json();
        assert_eq!(j["a"], Value::String("0".into()));
        assert_eq!(j["b"], Value::from(0));
        assert_eq!(j["c"], Value::String("true".into()));
        assert_eq!(j["d"], Value::Bool(true));
        assert_eq!(j["e"], Value::from(1.5));
        assert_eq!(j["f"], Value::Null);
        assert_eq!(j["g"], Value::String("${params.x}".into()));
    }

    #[test]
    fn a_numeric_key_indexes_a_list() {
        let tree = parse(Path::new("t.yaml"), "a:\n  - { b: 1 }\n  - { b: 2, c: [x, y] }\n").unwrap();
        let line = |keys: &[&str]| match tree.origin_at(&PathSeg::keys(keys.iter().copied()), false) {
            Origin::File { line, .. } => line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line(&["a", "1", "c"]), 3);
        assert_eq!(line(&["a", "0", "b"]), 2);
        assert_eq!(line(&["a", "7", "b"]), 2, "past the end: the nearest known place, the list itself");
    }
}
