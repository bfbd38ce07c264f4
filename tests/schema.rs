//! The committed JSON Schema matches the Rust types, and shipped pipelines are valid.

mod common;
use common::*;

#[test]
fn the_committed_pipeline_schema_is_current() {
    let generated = serde_json::to_string_pretty(&radpipe_engine::spec::json_schema::<radpipe::stages::StageSpec>()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/pipeline.schema.json");
    if std::env::var_os("RADPIPE_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == generated, "schemas/pipeline.schema.json is stale: run `make schema` and commit it");
}

#[test]
fn the_schema_accepts_a_params_reference_wherever_it_accepts_a_number() {
    let schema = radpipe_engine::spec::json_schema::<radpipe::stages::StageSpec>();
    let version = &schema["properties"]["version"];
    let any_of = version["anyOf"].as_array().expect("version accepts alternatives");
    assert_eq!(any_of[0]["type"], "integer");
    assert_eq!(any_of[1]["pattern"], "^\\$\\{params\\.[^}]+\\}$");
}

/// Every pipeline file shipped, with the `--set` values its header documents
/// for the `tiny` cohorts (written to `data/`).
const SHIPPED: &[(&str, &[&str])] =
    &[("pipelines/demo.yaml", &["params.data=data"]), ("pipelines/hnscc_pdl1.yaml", &["params.data=data"]), ("examples/command-pipeline/pipeline.yaml", &[])];

fn repo() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_shipped_pipeline_file_is_listed_here() {
    let mut found: Vec<String> =
        std::fs::read_dir(repo().join("pipelines")).unwrap().flatten().map(|e| format!("pipelines/{}", e.file_name().to_string_lossy())).collect();
    for e in std::fs::read_dir(repo().join("examples")).unwrap().flatten().filter(|e| e.path().join("pipeline.yaml").is_file()) {
        found.push(format!("examples/{}/pipeline.yaml", e.file_name().to_string_lossy()));
    }
    found.sort();
    let mut listed: Vec<String> = SHIPPED.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "add new pipeline files to SHIPPED");
}

#[test]
fn every_shipped_pipeline_file_is_valid_against_the_json_schema() {
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(repo().join("schemas/pipeline.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    for (file, _) in SHIPPED {
        let doc = radpipe_engine::yaml::YNode::load(&repo().join(file)).unwrap_or_else(|d| panic!("{file}: {d}")).to_json();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{file} does not match schemas/pipeline.schema.json:\n{}", errors.join("\n"));
    }
    // The check can fail: an unknown key is refused.
    let mut bad = radpipe_engine::yaml::YNode::load(&repo().join(SHIPPED[0].0)).unwrap().to_json();
    bad["stages"]["split"]["fractoins"] = serde_json::json!({ "train": 1.0 });
    assert!(!validator.is_valid(&bad));
}

#[test]
fn every_shipped_pipeline_file_validates_on_the_tiny_cohorts() {
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write("schemas/clinical.yaml", &std::fs::read_to_string(repo().join("schemas/clinical.yaml")).unwrap());
    for (file, sets) in SHIPPED.iter().filter(|(f, _)| f.starts_with("pipelines/")) {
        ws.write(file, &std::fs::read_to_string(repo().join(file)).unwrap());
        let mut args = vec!["validate", *file];
        for s in *sets {
            args.extend(["--set", s]);
        }
        let out = ws.radpipe(&args);
        assert!(out.status.success(), "radpipe validate {}: {}", args[1..].join(" "), stderr(&out));
    }
    // The examples bring their own data.
    for (file, sets) in SHIPPED.iter().filter(|(f, _)| f.starts_with("examples/")) {
        let path = repo().join(file);
        let mut args = vec!["validate".to_string(), "pipeline.yaml".to_string()];
        args.extend(sets.iter().flat_map(|s| ["--set".to_string(), s.to_string()]));
        let out = std::process::Command::new(radpipe_bin()).args(&args).current_dir(path.parent().unwrap()).output().unwrap();
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }
}
