//! Helpers for the statistics-stage tests: fixtures as tables, metrics.json lookups.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn f(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

pub fn vf(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

/// Numbers as written into a CSV table: shortest round-trip form.
pub fn cell(x: f64) -> String {
    format!("{x}")
}

/// metrics.json of a stage, by id.
pub fn metrics(ws: &super::Workspace, stage: &str) -> BTreeMap<String, Value> {
    let text = ws.read(&format!("results/{stage}/metrics.json"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array().unwrap().iter().map(|m| (m["id"].as_str().unwrap().to_string(), m.clone())).collect()
}

/// The value of a metric, failing with the known ids when it is absent.
pub fn value(m: &BTreeMap<String, Value>, id: &str) -> f64 {
    match m.get(id) {
        Some(x) => x["value"].as_f64().unwrap_or(f64::NAN),
        None => panic!("no metric `{id}`; have: {:?}", m.keys().collect::<Vec<_>>()),
    }
}

pub fn ci(m: &BTreeMap<String, Value>, id: &str) -> (f64, f64) {
    let c = &m[id]["ci"];
    (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())
}

/// |a - b| <= rel * max(|b|, 1e-300) + abs.
pub fn close(a: f64, b: f64, rel: f64, what: &str) {
    let ok = (a == b) || (a - b).abs() <= rel * b.abs().max(1e-12);
    assert!(ok, "{what}: got {a}, expected {b} (rel tol {rel})");
}

/// The error message of a failed node in a `run --json` result.
pub fn error_of(r: &super::RunResult) -> String {
    r.json["errors"].as_array().map(|a| a.iter().map(|e| e["error"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}
