//! The fit/apply expansion shared by the stages that learn (`pca`, `embed`,
//! `fuse`): one fit node (`stage.fit`) that sees only the patients of its
//! `fit_on` partitions, and one apply node per patient of the input stage.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{FitOn, Inputs, NodeDecl};
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::plan::PlanContext;

/// One partition name or several.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PartitionList {
    One(String),
    Many(Vec<String>),
}

impl PartitionList {
    pub fn names(&self) -> Vec<String> {
        match self {
            PartitionList::One(s) => vec![s.clone()],
            PartitionList::Many(v) => v.clone(),
        }
    }
}

/// The fit node (`stage.fit`, on `fit_on` of `split`) and one apply node per
/// patient of the input stage.
pub fn fit_apply_nodes(
    ctx: &PlanContext,
    stage: &str,
    input: &Inputs,
    fit_on: &PartitionList,
    split: Option<&str>,
    fit_params: Value,
    apply_params: Value,
) -> Result<Vec<NodeDecl>, Diagnostics> {
    let partitions = fit_on.names();
    let split = match split {
        Some(s) => s.to_string(),
        None => ctx.split_defining(&partitions[0]).ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::new(ctx.origin(stage, &["fit_on"]), format!("no split stage declares the partition `{}`", partitions[0]))
                    .hint("add a `kind: split` stage with this partition in its `fractions`, or name it with `split:`"),
            )
        })?,
    };
    let refs = input.refs();
    let [first] = refs.as_slice() else {
        return Err(Diagnostic::new(ctx.origin(stage, &["input"]), format!("{stage} reads one stage")).into());
    };
    let items = ctx.items_of(&first.stage, ctx.origin(stage, &["input"]))?;
    let mut params = fit_params;
    params["fit_on"] = json!(partitions);
    params["split"] = json!(split);
    let mut fit = NodeDecl::single(params);
    fit.fit_on = Some(FitOn { split, partitions });
    let mut nodes = vec![fit];
    nodes.extend(items.into_iter().map(|item| NodeDecl::per_item(item, apply_params.clone())));
    Ok(nodes)
}
