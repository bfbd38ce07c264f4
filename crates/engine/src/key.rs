//! Cache keys. A key is the blake3 hash of a canonical JSON encoding (object
//! keys sorted, no whitespace) of `KeyMaterial`: stage kind, the stage's
//! explicit version, the resolved parameters, the digests of the node's source
//! files (by workspace-relative path) and of its upstream outputs, and the item
//! (patient id) for per-item nodes. No timestamps, no absolute paths, no cohort
//! name. Cohort-level nodes list their inputs sorted by node id, which is the
//! sorted (patient, digest) list. The material is kept in the action record so
//! that `status` can say what changed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Hex blake3 digest of bytes.
pub fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// One upstream output that entered a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InputDigest {
    pub node: String,
    /// The selected output path, when only part of the upstream's outputs is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyMaterial {
    pub kind: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub params: Value,
    pub sources: BTreeMap<String, String>,
    pub inputs: Vec<InputDigest>,
}

impl KeyMaterial {
    pub fn key(&self) -> String {
        let value = serde_json::to_value(self).expect("key material is JSON");
        let mut text = String::new();
        canonical(&value, &mut text);
        digest(text.as_bytes())
    }
}

/// Canonical JSON: objects with sorted keys, no whitespace.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The digest of a set of files (name -> digest): what downstream keys see.
pub fn set_digest<'a>(files: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut h = blake3::Hasher::new();
    for (name, d) in files {
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(d.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn material(params: Value) -> KeyMaterial {
        KeyMaterial { kind: "command".into(), version: 1, item: Some("P1".into()), params, sources: BTreeMap::new(), inputs: vec![] }
    }

    #[test]
    fn key_ignores_the_order_of_parameters() {
        let a: Value = serde_json::from_str(r#"{"a": 1, "b": {"x": 2, "y": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b": {"y": 3, "x": 2}, "a": 1}"#).unwrap();
        assert_eq!(material(a).key(), material(b).key());
    }

    #[test]
    fn key_changes_with_any_part_of_the_material() {
        let base = material(json!({"a": 1}));
        let mut version = base.clone();
        version.version = 2;
        let mut item = base.clone();
        item.item = Some("P2".into());
        let mut param = base.clone();
        param.params = json!({"a": 2});
        let mut source = base.clone();
        source.sources.insert("x.csv".into(), digest(b"x"));
        let keys: BTreeMap<String, ()> = [&base, &version, &item, &param, &source].iter().map(|m| (m.key(), ())).collect();
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn canonical_encoding_is_compact_and_sorted() {
        let mut s = String::new();
        canonical(&json!({"b": [1, "x"], "a": null}), &mut s);
        assert_eq!(s, r#"{"a":null,"b":[1,"x"]}"#);
    }
}
