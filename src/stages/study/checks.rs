//! Plan-time checks the statistics stages share: cohort and partition names,
//! score references, the ingest input.

use crate::stages::InputRef;
use radpipe_engine::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;

/// Plan-time check of cohort names: a cohort of an ingest input, or a
/// partition of a split input. `field` locates the name in the stage.
pub fn check_group_name(ctx: &PlanContext, stage: &str, inputs: &[InputRef], name: &str, field: &[&str]) -> Option<Diagnostic> {
    let mut known: Vec<String> = Vec::new();
    for s in inputs.iter().filter_map(|r| ctx.stage_spec(&r.stage)) {
        known.extend(s.cohorts());
        known.extend(s.partitions());
    }
    if known.iter().any(|k| k == name) {
        return None;
    }
    let d = Diagnostic::new(
        ctx.origin(stage, field),
        format!("stage `{stage}`: cohort `{name}` is neither a cohort of the ingest stage nor a partition of a split stage among its inputs"),
    );
    Some(match did_you_mean(name, known.iter().map(String::as_str)) {
        Some(s) => d.hint(format!("did you mean `{s}`?")),
        None => d.hint(format!("known: {}", known.join(", "))),
    })
}

/// Plan-time check of a stage's `cohorts:` list: not empty, each name known.
pub fn check_cohorts(ctx: &PlanContext, stage: &str, inputs: &[InputRef], cohorts: &[String]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if cohorts.is_empty() {
        out.push(
            Diagnostic::new(ctx.origin(stage, &["cohorts"]), format!("stage `{stage}`: `cohorts` is empty"))
                .hint("list cohorts or partitions, e.g. [train, internal, external]"),
        );
    }
    for (i, c) in cohorts.iter().enumerate() {
        out.extend(check_group_name(ctx, stage, inputs, c, &["cohorts", &i.to_string()]));
    }
    out
}

/// Plan-time check that a score reference `stage.name` reads a stage listed in
/// `input`; `label` is how the score is called in messages, `field` locates it.
pub fn check_score_input(ctx: &PlanContext, stage: &str, inputs: &[InputRef], label: &str, reference: &str, field: &[&str]) -> Option<Diagnostic> {
    let (s, _) = reference.split_once('.')?;
    (ctx.stage_spec(s).is_some() && !inputs.iter().any(|r| r.stage == s)).then(|| {
        Diagnostic::new(ctx.origin(stage, field), format!("stage `{stage}`: score `{label}` reads stage `{s}`, which is not in `input`"))
            .hint(format!("add `{s}` to `input`"))
    })
}

/// Plan-time check that `input` includes an ingest stage.
pub fn check_has_ingest(ctx: &PlanContext, stage: &str, inputs: &[InputRef]) -> Option<Diagnostic> {
    if inputs.iter().any(|r| ctx.stage_spec(&r.stage).is_some_and(|s| s.writes_clinical_table())) {
        None
    } else {
        Some(Diagnostic::new(ctx.origin(stage, &["input"]), format!("stage `{stage}` reads the clinical table: list the ingest stage in `input`")))
    }
}

pub fn into_result(diags: Diagnostics) -> Result<(), Diagnostics> {
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}
