use std::process::ExitCode;

/// `radpipe schema`: the JSON Schema of pipeline files (what `schemas/pipeline.schema.json` holds).
pub fn run() -> ExitCode {
    super::print_json(&radpipe_engine::spec::json_schema::<crate::stages::StageSpec>());
    ExitCode::SUCCESS
}
