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
use std::io::{self, Write};

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
    /// The blake3 digest of the material's canonical JSON. Written field by
    /// field in sorted order: the same bytes as [`write_canonical`] of the
    /// serialised material (a test checks it), without
    /// building a `Value` of it first, which a plan of 10^5 patients does
    /// 300,000 times per no-op run.
    pub fn key(&self) -> String {
        // Into one buffer, hashed at once: blake3 is slow on the many small
        // writes of a JSON serialiser.
        let mut text = Vec::with_capacity(1024);
        self.write_canonical(&mut text).expect("writing to memory");
        digest(&text)
    }

    fn write_canonical(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(b"{\"inputs\":[")?;
        for (i, input) in self.inputs.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            w.write_all(b"{\"digest\":")?;
            serde_json::to_writer(&mut *w, &input.digest)?;
            w.write_all(b",\"node\":")?;
            serde_json::to_writer(&mut *w, &input.node)?;
            if let Some(select) = &input.select {
                w.write_all(b",\"select\":")?;
                serde_json::to_writer(&mut *w, select)?;
            }
            w.write_all(b"}")?;
        }
        w.write_all(b"]")?;
        if let Some(item) = &self.item {
            w.write_all(b",\"item\":")?;
            serde_json::to_writer(&mut *w, item)?;
        }
        w.write_all(b",\"kind\":")?;
        serde_json::to_writer(&mut *w, &self.kind)?;
        w.write_all(b",\"params\":")?;
        write_canonical(&self.params, w)?;
        w.write_all(b",\"sources\":{")?;
        for (i, (path, digest)) in self.sources.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, path)?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, digest)?;
        }
        write!(w, "}},\"version\":{}}}", self.version)
    }
}

/// Canonical JSON: objects with sorted keys, no whitespace.
fn write_canonical(v: &Value, w: &mut impl Write) -> io::Result<()> {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            w.write_all(b"{")?;
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut *w, k)?;
                w.write_all(b":")?;
                write_canonical(&map[*k], w)?;
            }
            w.write_all(b"}")
        }
        Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_canonical(item, w)?;
            }
            w.write_all(b"]")
        }
        other => Ok(serde_json::to_writer(&mut *w, other)?),
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

    fn canonical(v: &Value) -> String {
        let mut out = Vec::new();
        write_canonical(v, &mut out).expect("writing to memory");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

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
        assert_eq!(canonical(&json!({"b": [1, "x"], "a": null})), r#"{"a":null,"b":[1,"x"]}"#);
    }

    /// The field-by-field encoding of `key()` is the canonical JSON of the
    /// serialised material, so keys (and every existing store) stay as they were.
    #[test]
    fn key_is_the_digest_of_the_canonical_material() {
        let mut full = material(json!({"cmd": "cp \"a\" b", "n": [1.5, -2, {"z": true, "a": null}], "u": "é\n"}));
        full.sources.insert("data/raw/P1.txt".into(), digest(b"x"));
        full.sources.insert("a b.csv".into(), digest(b"y"));
        full.inputs = vec![
            InputDigest { node: "s1[P1]".into(), select: None, digest: digest(b"1") },
            InputDigest { node: "s2".into(), select: Some("out/x.txt".into()), digest: digest(b"2") },
        ];
        let mut bare = material(json!({}));
        bare.item = None;
        for m in [full, bare] {
            let generic = digest(canonical(&serde_json::to_value(&m).unwrap()).as_bytes());
            assert_eq!(m.key(), generic);
        }
    }
}
