//! `radpipe validate`: every problem reported with file:line:col and a hint, exit code 2.

mod common;
use common::*;

fn validate(ws: &Workspace) -> (i32, String) {
    let out = ws.radpipe(&["validate", "p.yaml"]);
    (out.status.code().unwrap_or(-1), stderr(&out))
}

fn expect_error(yaml: &str, place: &str, message: &str, hint: &str) {
    let ws = Workspace::new();
    ws.write("p.yaml", yaml);
    ws.write("raw/x.txt", "x\n");
    let (code, err) = validate(&ws);
    assert_eq!(code, 2, "exit code for:\n{err}");
    let line = err.lines().find(|l| l.contains(message)).unwrap_or_else(|| panic!("no `{message}` in:\n{err}"));
    assert!(line.starts_with(&format!("p.yaml:{place}: error: ")), "wrong place in `{line}`, expected p.yaml:{place}");
    assert!(err.contains(&format!("hint: {hint}")), "no hint `{hint}` in:\n{err}");
}

const HEAD: &str = "version: 1\nname: t\nparams: { seed: 7 }\nstages:\n";

#[test]
fn a_yaml_syntax_error_names_its_line() {
    expect_error(&format!("{HEAD}  a: {{ kind: command, cmd: \"echo\"\n  b: 1\n"), "6:3", "YAML syntax error", "check indentation");
}

#[test]
fn an_unknown_stage_kind_suggests_the_closest() {
    expect_error(&format!("{HEAD}  a:\n    kind: comand\n    cmd: echo\n"), "6:11", "unknown stage kind `comand`", "did you mean `command`?");
}

#[test]
fn an_unknown_key_is_an_error_not_ignored() {
    expect_error(&format!("{HEAD}  a:\n    kind: command\n    cmd: echo\n    outz: [x]\n"), "8:5", "unknown key `outz` in `stages.a`", "did you mean `outs`?");
}

#[test]
fn a_mistyped_value_names_the_expected_type() {
    expect_error(
        &format!("{HEAD}  a:\n    kind: ingest\n    cohorts: 5\n"),
        "7:14",
        "`stages.a.cohorts`: invalid type: integer `5`, expected a sequence",
        "see schemas/pipeline.schema.json",
    );
}

#[test]
fn an_unknown_param_reference_is_reported_where_it_is_used() {
    expect_error(
        &format!("{HEAD}  a:\n    kind: command\n    cmd: \"echo ${{params.sed}}\"\n"),
        "7:10",
        "unknown parameter `sed`",
        "did you mean `${params.seed}`?",
    );
}

#[test]
fn a_missing_input_file_is_reported_at_the_deps() {
    expect_error(
        &format!("{HEAD}  a:\n    kind: command\n    cmd: echo\n    deps: [raw/y.txt]\n"),
        "8:11",
        "`a` needs `raw/y.txt`, which does not exist",
        "create the file",
    );
}

#[test]
fn a_dangling_input_reference_suggests_a_stage() {
    expect_error(
        &format!("{HEAD}  prep:\n    kind: command\n    cmd: echo\n  b:\n    kind: command\n    cmd: echo\n    input: prp\n"),
        "11:12",
        "stage `b` takes input from `prp`, which is not a stage",
        "did you mean `prep`?",
    );
}

#[test]
fn a_cycle_is_named_stage_by_stage() {
    let yaml = format!("{HEAD}  a:\n    kind: command\n    cmd: echo\n    input: c\n  b:\n    kind: command\n    cmd: echo\n    input: a\n  c:\n    kind: command\n    cmd: echo\n    input: b\n");
    expect_error(&yaml, "5:3", "the stages form a cycle: a -> b -> c -> a", "a stage cannot depend on its own outputs");
}

#[test]
fn a_cycle_through_per_patient_stages_is_named_not_a_stack_overflow() {
    // Per-patient stages ask their input for its patients: before the cycle was
    // checked first, this recursed until the stack overflowed (SIGABRT, no message).
    let yaml = format!(
        "{HEAD}  ingest: {{ kind: ingest, cohorts: [], sequences: {{ t1: t1.nii.gz }} }}\n  register: {{ kind: register, input: slice, reference: t1 }}\n  resample: {{ kind: resample, input: register }}\n  slice: {{ kind: slice, input: resample }}\n"
    );
    expect_error(&yaml, "6:3", "the stages form a cycle: register -> resample -> slice -> register", "a stage cannot depend on its own outputs");
}

#[test]
fn a_cycle_through_deps_and_outs_is_found_too() {
    let yaml = format!("{HEAD}  a:\n    kind: command\n    cmd: cp y x\n    deps: [y]\n    outs: [x]\n  b:\n    kind: command\n    cmd: cp x y\n    deps: [x]\n    outs: [y]\n");
    expect_error(&yaml, "5:3", "the stages form a cycle: a -> b -> a", "a stage cannot depend");
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let ws = Workspace::new();
    ws.write("p.yaml", &format!("{HEAD}  a:\n    kind: comand\n    cmd: echo\n  b:\n    kind: command\n    cmd: echo\n    outz: [x]\n"));
    let (code, err) = validate(&ws);
    assert_eq!(code, 2);
    assert!(err.contains("p.yaml:6:11: error: unknown stage kind `comand`"), "{err}");
    assert!(err.contains("p.yaml:11:5: error: unknown key `outz`"), "{err}");
    assert!(err.ends_with("2 problems found\n"), "{err}");
}

#[test]
fn a_bad_override_is_reported_as_such() {
    let ws = Workspace::new();
    ws.write("p.yaml", &format!("{HEAD}  a:\n    kind: command\n    cmd: echo\n"));
    let out = ws.radpipe(&["validate", "p.yaml", "--set", "stages.a.cmdd.x=1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--set stages.a.cmdd.x=1: error: `stages.a` has no key `cmdd`"), "{err}");
    assert!(err.contains("hint: did you mean `cmd`?"), "{err}");
}

#[test]
fn a_valid_pipeline_passes_and_references_keep_their_type() {
    let ws = Workspace::new();
    ws.write("p.yaml", &format!("{HEAD}  a:\n    kind: command\n    foreach: [1, 2]\n    cmd: \"echo ${{params.seed}} ${{item}}\"\n"));
    let (code, err) = validate(&ws);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ok (1 stages, 2 nodes)"), "{err}");
}

#[test]
fn the_stage_name_sweeps_is_reserved_for_the_sweeps_folder() {
    expect_error(&format!("{HEAD}  sweeps:\n    kind: command\n    cmd: echo\n"), "5:3", "the stage name `sweeps` is reserved", "rename the stage");
}
