//! The committed JSON Schema matches the Rust types, and shipped pipelines are valid.

mod common;
use common::*;

#[test]
fn the_committed_pipeline_schema_is_current() {
    let generated = serde_json::to_string_pretty(&radpipe::engine::spec::json_schema()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/pipeline.schema.json");
    if std::env::var_os("RADPIPE_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == generated, "schemas/pipeline.schema.json is stale: run `make schema` and commit it");
}

#[test]
fn the_schema_accepts_a_params_reference_wherever_it_accepts_a_number() {
    let schema = radpipe::engine::spec::json_schema();
    let version = &schema["properties"]["version"];
    let any_of = version["anyOf"].as_array().expect("version accepts alternatives");
    assert_eq!(any_of[0]["type"], "integer");
    assert_eq!(any_of[1]["pattern"], "^\\$\\{params\\.[^}]+\\}$");
}

#[test]
fn the_example_pipelines_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/command-pipeline");
    let out = std::process::Command::new(radpipe_bin()).args(["validate", "pipeline.yaml"]).current_dir(&example).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
