//! `kind: report`: one self-contained HTML page (`index.html`) with the tables
//! and figures of its input stages, Grad-CAM panels of the highest- and
//! lowest-scoring patients, a "study vs this run" table, the environment, and
//! every number linked to its metric and the metric's lineage.
//!
//! ```yaml
//! report:
//!   kind: report
//!   input: [table1, table2, pfs_by_dls, dcb, embed, fuse]
//!   gradcam: { stage: embed, score: fuse.dls, cohort: external, patients: 2 }
//!   reference:                       # the study's published values
//!     - { metric: table2/external/DLS/auc, value: 0.80, label: "DLS AUC, external validation" }
//! ```
//!
//! Sections follow `input`: for each cohort-level node, its tables (the typed
//! document of `table.json`, in which each number cites its metric id) and
//! its SVG figures, inline. Every cited number links to an appendix entry of its
//! metric (value, CI, n, method, the key of the action that computed it), and
//! that key to its lineage, walked from the store's action records as `radpipe
//! lineage` does: stage, kind, version, parameters, the patient set (count and
//! digest) and the source files with their digests. Published values are this
//! node's own metrics (`<stage>/reference/<metric id>`, in its `metrics.json`).
//! Outputs: `index.html`, `metrics.json`, `tables/<stage>.{md,csv}` and
//! `figures/<stage>_<name>.svg`.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::study::{self, Metric};
use super::{InputArtifact, InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use crate::report::html::{self, anchor, metric_link, Element, Node, STYLE};
use crate::report::table::Document;
use radpipe_engine::diagnostics::{Diagnostic, Diagnostics};
use radpipe_engine::lineage::Step;
use radpipe_engine::plan::PlanContext;
use radpipe_engine::stage::Records;

pub const VERSION: u32 = 1;

/// The study's report.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The stages to show, in this order (tables and figures of their cohort-level nodes).
    pub input: Inputs,
    #[serde(default = "default_title")]
    pub title: String,
    /// Grad-CAM panels of the patients with the highest and lowest score.
    #[serde(default)]
    pub gradcam: Option<GradCam>,
    /// Published values to put beside this run's.
    #[serde(default)]
    pub reference: Vec<Reference>,
}

fn default_title() -> String {
    "radpipe report".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GradCam {
    /// The `embed` stage whose per-patient nodes hold `gradcam/*.png`.
    pub stage: String,
    /// The score that ranks patients, `<stage>.<name>` (e.g. `fuse.dls`).
    pub score: String,
    /// Only patients of this ingest cohort (default: all).
    #[serde(default)]
    pub cohort: Option<String>,
    /// Patients shown at each end.
    #[serde(default = "default_patients")]
    pub patients: usize,
}

fn default_patients() -> usize {
    2
}

/// One published value: the metric of this run it corresponds to.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// A metric id of an input stage (`table2/external/DLS/auc`).
    pub metric: String,
    pub value: f64,
    /// Published 95% CI.
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
    /// What the number is, in words.
    pub label: String,
}

impl Report {
    /// The published values beside this run's, each number linked to its metric
    /// (those cited are added to `cited`).
    fn study_vs_run(
        &self,
        me: &str,
        metrics: &BTreeMap<String, Value>,
        cited: &mut BTreeSet<String>,
    ) -> Element {
        let mut rows = Vec::new();
        for r in &self.reference {
            let pid = format!("{me}/reference/{}", r.metric);
            let published = with_ci(&pid, r.value, r.ci, 3);
            let run = match metrics.get(&r.metric) {
                Some(m) => {
                    let v = m.get("value").and_then(Value::as_f64);
                    let ci = m
                        .get("ci")
                        .and_then(|c| Some([c.get(0)?.as_f64()?, c.get(1)?.as_f64()?]));
                    v.map(|v| with_ci(&r.metric, v, ci, 3))
                        .unwrap_or_else(|| vec![Node::text("not estimable")])
                }
                None => vec![Node::text(
                    "not computed in this run (see the stage's notes)",
                )],
            };
            cited.insert(pid);
            if metrics.contains_key(&r.metric) {
                cited.insert(r.metric.clone());
            }
            let row = Element::new("tr")
                .child(Element::new("td").child(r.label.as_str()))
                .child(td(code(r.metric.as_str())))
                .child(Element::new("td").children(published))
                .child(Element::new("td").children(run));
            rows.push(row);
        }
        let head = ["Quantity", "Metric", "Published", "This run"];
        table(Element::new("table"), &head, rows)
    }

    fn check(&self, ctx: &PlanContext, stage: &str) -> Result<(), Diagnostics> {
        let inputs: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        let mut problems = Vec::new();
        if let Some(g) = &self.gradcam {
            if !inputs.contains(&g.stage) {
                problems.push(
                    Diagnostic::new(
                        ctx.origin(stage, &["gradcam", "stage"]),
                        format!("`{}` is not among the report's inputs", g.stage),
                    )
                    .hint("add it to `input:`"),
                );
            }
            match g.score.split_once('.') {
                Some((s, _)) if inputs.iter().any(|i| i == s) => {}
                _ => problems.push(Diagnostic::new(ctx.origin(stage, &["gradcam", "score"]), format!("score `{}`: write `<stage>.<name>` with the stage among the report's inputs", g.score))),
            }
            if g.patients == 0 {
                problems.push(Diagnostic::new(
                    ctx.origin(stage, &["gradcam", "patients"]),
                    "patients must be at least 1",
                ));
            }
        }
        for (i, r) in self.reference.iter().enumerate() {
            let owner = r.metric.split('/').next().unwrap_or_default();
            if !inputs.iter().any(|s| s == owner) {
                problems.push(
                    Diagnostic::new(ctx.origin(stage, &["reference", &i.to_string(), "metric"]), format!("metric `{}` belongs to no input of the report", r.metric))
                        .hint("metric ids start with the stage that computes them, e.g. `table2/external/DLS/auc`"),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(problems))
        }
    }
}

impl Stage for Report {
    fn kind(&self) -> &'static str {
        "report"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        self.check(ctx, stage)?;
        let params = serde_json::to_value(self).map_err(|e| {
            Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string()))
        })?;
        Ok(vec![NodeDecl::single(params)])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let me = ctx.node_id.to_string();
        let store = ctx.records;
        let mut metrics: BTreeMap<String, Value> = BTreeMap::new();
        let mut cited: BTreeSet<String> = BTreeSet::new();
        let mut body = String::new();
        let out = ctx.out_dir;
        for dir in ["tables", "figures"] {
            std::fs::create_dir_all(out.join(dir))
                .map_err(|e| StageError::new(format!("stage `{me}`: {e}")))?;
        }
        // Every input's metrics, so that references and the appendix can find them.
        for a in ctx.inputs.iter().filter(|a| a.item.is_none()) {
            if let Some(path) = a.file("metrics.json") {
                for entry in read_metrics(&me, a, path)? {
                    if let Some(id) = entry.get("id").and_then(Value::as_str) {
                        metrics.insert(id.to_string(), entry.clone());
                    }
                }
            }
        }
        // This node's own metrics: the published values.
        let own: Vec<Metric> = self
            .reference
            .iter()
            .map(|r| {
                let m = Metric::new(format!("{me}/reference/{}", r.metric), r.value, 0)
                    .method(format!("published: {}", r.label));
                let m = Metric {
                    lineage: ctx.key.to_string(),
                    ..m
                };
                match r.ci {
                    Some([lo, hi]) => m.ci(lo, hi),
                    None => m,
                }
            })
            .collect();
        study::write_metrics(out, &own, ctx.key)?;
        for m in &own {
            metrics.insert(
                m.id.clone(),
                serde_json::to_value(m).map_err(|e| StageError::new(e.to_string()))?,
            );
        }

        let _ = writeln!(
            body,
            "{}",
            Element::new("h1").child(self.title.as_str()).render()
        );
        let intro = Element::new("p").child("Every number links to its metric (value, confidence interval, method) and from there to its lineage: the stages, parameters, patient sets and source files (with BLAKE3 digests) behind it.");
        body.push_str(&html::render(&lines([intro])));
        body.push_str(&environment(&store, ctx.inputs));
        if !self.reference.is_empty() {
            let heading = Element::new("h2")
                .attr("id", "study-vs-run")
                .child("Study vs this run");
            let compared = self.study_vs_run(&me, &metrics, &mut cited);
            body.push_str(&html::render(&lines([heading, compared])));
        }
        // One section per input stage with cohort-level outputs.
        let order: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        for stage in &order {
            body.push_str(&section(&me, stage, ctx.inputs, out, &mut cited)?);
        }
        if let Some(g) = &self.gradcam {
            body.push_str(&gradcam_section(&me, g, ctx.inputs)?);
        }
        body.push_str(&appendix(&me, &store, &metrics, &cited, ctx.key)?);
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{}\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
            Element::new("title").child(self.title.as_str()).render()
        );
        study::write(out, "index.html", &html)?;
        let _ = writeln!(
            ctx.log,
            "report: {} numbers cited, {} bytes",
            cited.len(),
            html.len()
        );
        Ok(())
    }
}

/// One input stage's section: its tables (from `table.json`, each cited
/// number a link, whose id is added to `cited`) and SVG figures, also written
/// to `tables/` and `figures/` under `out`; empty when it has neither.
fn section(
    me: &str,
    stage: &str,
    inputs: &[InputArtifact],
    out: &Path,
    cited: &mut BTreeSet<String>,
) -> Result<String, StageError> {
    let mut section = String::new();
    for a in inputs
        .iter()
        .filter(|a| a.stage == stage && a.item.is_none())
    {
        if let Some(path) = a.file(study::TABLE_JSON) {
            let doc: Document = serde_json::from_str(&read(me, a, path)?).map_err(|e| {
                StageError::new(format!(
                    "stage `{me}`: {} of `{}` is not a table document: {e}",
                    study::TABLE_JSON,
                    a.node
                ))
            })?;
            section.push_str(&html::render(&doc.html(cited)));
            std::fs::write(
                out.join("tables").join(format!("{stage}.md")),
                doc.markdown(false),
            )
            .map_err(|e| StageError::new(e.to_string()))?;
            if let Some(csv) = a.file("table.csv") {
                std::fs::copy(csv, out.join("tables").join(format!("{stage}.csv")))
                    .map_err(|e| StageError::new(e.to_string()))?;
            }
        }
        let mut svgs: Vec<&(String, PathBuf)> = a
            .files
            .iter()
            .filter(|(n, _)| n.ends_with(".svg") && !n.contains('/'))
            .collect();
        svgs.sort_by_key(|(n, _)| figure_rank(n));
        for (name, path) in svgs {
            let svg = read(me, a, path)?;
            std::fs::write(out.join("figures").join(format!("{stage}_{name}")), &svg)
                .map_err(|e| StageError::new(e.to_string()))?;
            let figure = Element::new("figure")
                .child(Node::Trusted(strip_xml_declaration(&svg).to_string()))
                .child(Element::new("figcaption").child(name.as_str()));
            section.push_str(&figure.render());
            section.push('\n');
        }
    }
    if section.is_empty() {
        return Ok(section);
    }
    let heading = Element::new("h2")
        .attr("id", anchor("s", stage))
        .child(stage);
    Ok(format!("{}\n{section}\n", heading.render()))
}

fn read(me: &str, a: &InputArtifact, path: &Path) -> Result<String, StageError> {
    std::fs::read_to_string(path).map_err(|e| {
        StageError::new(format!(
            "stage `{me}`: cannot read {} of `{}`: {e}",
            path.display(),
            a.node
        ))
    })
}

fn read_metrics(me: &str, a: &InputArtifact, path: &Path) -> Result<Vec<Value>, StageError> {
    let text = read(me, a, path)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(v)) => Ok(v),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(StageError::new(format!(
            "stage `{me}`: metrics.json of `{}` is not JSON: {e}",
            a.node
        ))),
    }
}

/// ROC first, then calibration, decision curves, Kaplan-Meier; by name within.
fn figure_rank(name: &str) -> (usize, String) {
    let rank = ["roc", "calibration", "decision", "km"]
        .iter()
        .position(|p| name.starts_with(p))
        .unwrap_or(9);
    (rank, name.to_string())
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// `value (lo–hi)`, each number a link to metric `id`.
fn with_ci(id: &str, value: f64, ci: Option<[f64; 2]>, digits: usize) -> Vec<Node> {
    let f = |x: f64| Node::from(metric_link(id, &format!("{x:.digits$}")));
    match ci {
        Some([lo, hi]) if lo.is_finite() && hi.is_finite() => vec![
            f(value),
            Node::text(" ("),
            f(lo),
            Node::text("–"),
            f(hi),
            Node::text(")"),
        ],
        _ => vec![f(value)],
    }
}

/// radpipe's version and, from the `fit.json` of the models behind the
/// inputs (found through the store's action records), libtorch's and the device.
fn environment(store: &Records, inputs: &[InputArtifact]) -> String {
    let mut rows = vec![("radpipe".to_string(), env!("CARGO_PKG_VERSION").to_string())];
    // The apply nodes of a stage share its fit node: one action per stage tells it.
    let mut stages = BTreeSet::new();
    let mut fits: BTreeMap<String, String> = BTreeMap::new();
    for a in inputs.iter().filter(|a| stages.insert(&a.stage)) {
        if let Some(action) = store.action(&a.key) {
            for i in action
                .inputs
                .iter()
                .filter(|i| i.node.ends_with(".fit") || i.node.contains(".fit["))
            {
                fits.insert(i.node.clone(), i.key.clone());
            }
        }
    }
    for (node, key) in &fits {
        let Some(bytes) = store
            .action(key)
            .and_then(|action| store.output(&action, "fit.json"))
        else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        for (k, val) in v
            .get("environment")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            rows.push((
                format!("{k} ({node})"),
                val.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| val.to_string()),
            ));
        }
    }
    let items = rows
        .into_iter()
        .map(|(k, v)| Element::new("li").child(format!("{k}: ")).child(code(v)));
    let list = Element::new("ul").child("\n").children(lines(items));
    let heading = Element::new("h2")
        .attr("id", "environment")
        .child("Environment");
    html::render(&lines([heading, list]))
}

/// Grad-CAM overlays (`gradcam/<sequence>_<plane>.png`) of the patients with
/// the highest and the lowest score, as data URIs.
fn gradcam_section(me: &str, g: &GradCam, inputs: &[InputArtifact]) -> Result<String, StageError> {
    let (score_stage, score_name) = g.score.split_once('.').unwrap_or((g.score.as_str(), ""));
    let scores = study::stage_scores(me, inputs, score_stage, score_name)?;
    let cohort_of: BTreeMap<&str, Option<&str>> = inputs
        .iter()
        .filter_map(|a| a.item.as_ref())
        .map(|i| (i.id.as_str(), i.cohort.as_deref()))
        .collect();
    let mut ranked: Vec<(f64, &String)> = scores
        .iter()
        .filter_map(|(p, s)| s.map(|s| (s, p)))
        .filter(|(_, p)| {
            g.cohort.is_none()
                || cohort_of.get(p.as_str()).copied().flatten() == g.cohort.as_deref()
        })
        .collect();
    if ranked.is_empty() {
        return Err(StageError::new(format!(
            "stage `{me}`: no patient has a score `{}`{}",
            g.score,
            g.cohort
                .as_ref()
                .map(|c| format!(" in cohort `{c}`"))
                .unwrap_or_default()
        )));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let k = g.patients.min(ranked.len().div_ceil(2));
    let high: Vec<&String> = ranked.iter().take(k).map(|r| r.1).collect();
    let low: Vec<&String> = ranked.iter().rev().take(k).map(|r| r.1).collect();
    let mut intro = Element::new("p")
        .child("Class-activation maps on layer4 of each sequence's network for the class of interest, over the three planes of the 2.5D input, for the patients with the highest and the lowest ")
        .child(code(g.score.as_str()));
    if let Some(c) = &g.cohort {
        intro = intro.child(" in cohort ").child(code(c.as_str()));
    }
    let mut page = lines([
        Element::new("h2").attr("id", "gradcam").child("Grad-CAM"),
        intro.child("."),
    ]);
    for (title, patients) in [("Highest", &high), ("Lowest", &low)] {
        page.extend(lines([Element::new("h3")
            .child(format!("{title} "))
            .child(code(g.score.as_str()))]));
        for p in patients.iter() {
            let images = patient_images(me, g, inputs, p)?;
            page.extend(lines([cam_panel(p, &images)]));
        }
    }
    Ok(html::render(&page))
}

/// The Grad-CAM images of patient `p` (label, PNG bytes), by name.
fn patient_images(
    me: &str,
    g: &GradCam,
    inputs: &[InputArtifact],
    p: &str,
) -> Result<Vec<(String, Vec<u8>)>, StageError> {
    let node = inputs
        .iter()
        .find(|a| a.stage == g.stage && a.item.as_ref().is_some_and(|i| i.id == p));
    let Some(node) = node else {
        return Err(StageError::new(format!(
            "stage `{me}`: patient {p}: no `{}` node among the inputs",
            g.stage
        )));
    };
    let mut pngs: Vec<&(String, PathBuf)> = node
        .files
        .iter()
        .filter(|(n, _)| n.starts_with("gradcam/") && n.ends_with(".png"))
        .collect();
    pngs.sort_by(|a, b| a.0.cmp(&b.0));
    if pngs.is_empty() {
        return Err(StageError::new(format!(
            "stage `{me}`: patient {p}: `{}` wrote no Grad-CAM images",
            node.node
        )));
    }
    pngs.into_iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(path)
                .map_err(|e| StageError::new(format!("stage `{me}`: patient {p}: {name}: {e}")))?;
            let label = name.trim_start_matches("gradcam/").trim_end_matches(".png");
            Ok((label.to_string(), bytes))
        })
        .collect()
}

/// One patient's Grad-CAM panel: each image (label, PNG bytes) as a data URI.
fn cam_panel(p: &str, images: &[(String, Vec<u8>)]) -> Element {
    let mut panel = Element::new("div")
        .attr("class", "cam")
        .child(Element::new("p").child("patient ").child(code(p)));
    for (label, bytes) in images {
        let src = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        let img = Element::void("img")
            .attr("alt", label.as_str())
            .attr("src", src);
        panel.push(
            Element::new("figure")
                .child(img)
                .child(Element::new("figcaption").child(label.as_str())),
        );
    }
    panel
}

/// The cited metrics, then the lineage of every action behind them.
fn appendix(
    me: &str,
    store: &Records,
    metrics: &BTreeMap<String, Value>,
    cited: &BTreeSet<String>,
    own_key: &str,
) -> Result<String, StageError> {
    let mut rows = Vec::new();
    // (action key, group whose patients the metric stands on) -> those
    // patients; each action's patients.json is read once, however many of its
    // metrics are cited.
    let mut blocks: BTreeMap<(String, Option<String>), Option<HashSet<String>>> = BTreeMap::new();
    let mut groups: HashMap<(String, String), Option<HashSet<String>>> = HashMap::new();
    for id in cited {
        let Some(m) = metrics.get(id) else {
            return Err(StageError::new(format!(
                "stage `{me}`: a table cites `{id}`, which no input's metrics.json holds"
            )));
        };
        let key = m
            .get("lineage")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let patients = id.split('/').nth(1).and_then(|g| {
            let found = groups
                .entry((key.clone(), g.to_string()))
                .or_insert_with(|| store.action(&key).and_then(|a| store.group_patients(&a, g)));
            found.clone().map(|p| (g.to_string(), p))
        });
        let group = patients.as_ref().map(|(g, _)| g.clone());
        rows.push(metric_row(id, m, &key, group.as_deref()));
        blocks.insert((key, group), patients.map(|(_, p)| p));
    }
    let head = ["Metric", "Value", "95% CI", "n", "Method", "Computed by"];
    let mut page = lines([
        Element::new("h2").attr("id", "metrics").child("Metrics"),
        table(Element::new("table"), &head, rows),
        Element::new("h2").attr("id", "lineage").child("Lineage"),
    ]);
    for ((key, group), patients) in &blocks {
        let mut heading = Element::new("h3")
            .attr("id", lineage_anchor(key, group.as_deref()))
            .child("Action ")
            .child(code(key.as_str()));
        if let Some(g) = group {
            heading = heading.child(", patients of ").child(code(g.as_str()));
        }
        page.extend(lines([heading]));
        if key == own_key {
            page.extend(lines([Element::new("p")
                .child("This report: the published values come from the ")
                .child(code("reference"))
                .child(" block of the pipeline file.")]));
            continue;
        }
        let steps = store
            .steps(key, patients.as_ref())
            .map_err(|e| StageError::new(format!("stage `{me}`: lineage of {key}: {e}")))?;
        page.extend(lines([render_steps(&steps)]));
    }
    Ok(html::render(&page))
}

/// The appendix row of metric `id` (its JSON `m`), computed by action `key`
/// on the patients of `group`.
fn metric_row(id: &str, m: &Value, key: &str, group: Option<&str>) -> Element {
    let value = m.get("value").map(|v| v.to_string()).unwrap_or_default();
    let ci = m
        .get("ci")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" – ")
        })
        .unwrap_or_default();
    let n = m.get("n").map(|v| v.to_string()).unwrap_or_default();
    let method = m.get("method").and_then(Value::as_str).unwrap_or_default();
    let computed_by = format!(
        "{}{}",
        key.get(..12).unwrap_or(key),
        group.map(|g| format!(" ({g})")).unwrap_or_default()
    );
    let link = Element::new("a")
        .attr("href", format!("#{}", lineage_anchor(key, group)))
        .child(code(computed_by));
    Element::new("tr")
        .attr("id", anchor("m", id))
        .child(td(code(id)))
        .child(td(value))
        .child(td(ci))
        .child(td(n))
        .child(td(method))
        .child(td(link))
}

fn lineage_anchor(key: &str, group: Option<&str>) -> String {
    anchor("lin", &format!("{key}/{}", group.unwrap_or("")))
}

/// The lineage table of one action: a row per step.
fn render_steps(steps: &[Step]) -> Element {
    let head = [
        "Stage",
        "Kind",
        "Version",
        "Nodes",
        "Patients (digest)",
        "Parameters",
        "Source files",
    ];
    table(
        Element::new("table").attr("class", "lineage"),
        &head,
        steps.iter().map(step_row).collect(),
    )
}

fn step_row(st: &Step) -> Element {
    let params = match &st.params {
        Some(p) => serde_json::to_string(p).unwrap_or_default(),
        None => "per node (see the node keys)".into(),
    };
    let mut sources: BTreeMap<&String, &String> = BTreeMap::new();
    for n in &st.nodes {
        sources.extend(n.sources.iter());
    }
    let fits: Vec<String> = st
        .nodes
        .iter()
        .filter(|n| n.node.contains(".fit"))
        .map(|n| format!("{} {}", n.node, n.key))
        .collect();
    let nodes = if fits.is_empty() {
        st.nodes.len().to_string()
    } else {
        format!("{} (models: {})", st.nodes.len(), fits.join("; "))
    };
    let mut files = Element::new("td");
    if !sources.is_empty() {
        let mut details = Element::new("details")
            .child(Element::new("summary").child(format!("{} files", sources.len())));
        for (path, digest) in &sources {
            details = details
                .child(format!("{path} "))
                .child(code(digest.as_str()))
                .child(Element::void("br"));
        }
        files.push(details);
    }
    let patients = format!(
        "{} ({})",
        st.items,
        st.items_digest.as_deref().unwrap_or("-")
    );
    Element::new("tr")
        .child(td(st.stage.as_str()))
        .child(td(st.kind.as_str()))
        .child(td(st.version.to_string()))
        .child(td(nodes))
        .child(td(patients))
        .child(td(params))
        .child(files)
}

/// `<code>text</code>`.
fn code(text: impl Into<Node>) -> Element {
    Element::new("code").child(text)
}

/// `<td>content</td>`.
fn td(content: impl Into<Node>) -> Element {
    Element::new("td").child(content)
}

/// Each element followed by a line break.
fn lines(elements: impl IntoIterator<Item = Element>) -> Vec<Node> {
    elements
        .into_iter()
        .flat_map(|e| [Node::from(e), Node::text("\n")])
        .collect()
}

/// `table` with a header row of `head` and `rows`, each on its own line.
fn table(table: Element, head: &[&'static str], rows: Vec<Element>) -> Element {
    let head =
        Element::new("tr").children(head.iter().map(|h| Element::new("th").child(*h).into()));
    let body = Element::new("tbody").child("\n").children(lines(rows));
    table
        .child("\n")
        .child(Element::new("thead").child(head))
        .child("\n")
        .child(body)
        .child("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use radpipe_engine::lineage::StepNode;

    const SCRIPT: &str = "<script>alert(1)</script>";
    const SCRIPT_ESC: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
    const QUOTES: &str = "\"&'<>";
    const QUOTES_ESC: &str = "&quot;&amp;'&lt;&gt;";

    fn step(name: &str, param: &str, source: &str) -> Step {
        Step {
            stage: name.to_string(),
            kind: QUOTES.to_string(),
            version: 3,
            params: Some(serde_json::json!({ "p": param })),
            items: 2,
            items_digest: Some(QUOTES.to_string()),
            nodes: vec![StepNode {
                node: format!("{name}.fit"),
                key: "k1".to_string(),
                item: None,
                cohort: None,
                params: Value::Null,
                sources: BTreeMap::from([(source.to_string(), QUOTES.to_string())]),
                inputs: Vec::new(),
                dropped: Vec::new(),
            }],
        }
    }

    #[test]
    fn report_lineage_table_escapes_hostile_values() {
        let html = render_steps(&[step(SCRIPT, SCRIPT, QUOTES)]).render();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(QUOTES), "{html}");
        let params = format!("{{&quot;p&quot;:&quot;{SCRIPT_ESC}&quot;}}");
        let row = format!(
            "<tr><td>{SCRIPT_ESC}</td><td>{QUOTES_ESC}</td><td>3</td><td>1 (models: {SCRIPT_ESC}.fit k1)</td><td>2 ({QUOTES_ESC})</td><td>{params}</td><td><details><summary>1 files</summary>{QUOTES_ESC} <code>{QUOTES_ESC}</code><br></details></td></tr>"
        );
        let expected = format!("<table class=\"lineage\">\n<thead><tr><th>Stage</th><th>Kind</th><th>Version</th><th>Nodes</th><th>Patients (digest)</th><th>Parameters</th><th>Source files</th></tr></thead>\n<tbody>\n{row}\n</tbody>\n</table>");
        assert_eq!(html, expected);
    }

    #[test]
    fn report_metric_row_escapes_hostile_values() {
        let m = serde_json::json!({
            "value": 0.5,
            "ci": [0.25, 0.75],
            "n": 10,
            "method": QUOTES,
        });
        let html = metric_row(SCRIPT, &m, "0123456789abcdef", Some(QUOTES)).render();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(QUOTES), "{html}");
        let expected = format!(
            "<tr id=\"{}\"><td><code>{SCRIPT_ESC}</code></td><td>0.5</td><td>0.25 – 0.75</td><td>10</td><td>{QUOTES_ESC}</td><td><a href=\"#{}\"><code>0123456789ab ({QUOTES_ESC})</code></a></td></tr>",
            anchor("m", SCRIPT),
            lineage_anchor("0123456789abcdef", Some(QUOTES)),
        );
        assert_eq!(html, expected);
    }

    #[test]
    fn report_gradcam_panel_escapes_hostile_patient() {
        let images = [(QUOTES.to_string(), vec![0u8, 1, 2])];
        let html = cam_panel(SCRIPT, &images).render();
        assert_eq!(
            html,
            format!("<div class=\"cam\"><p>patient <code>{SCRIPT_ESC}</code></p><figure><img alt=\"{QUOTES_ESC}\" src=\"data:image/png;base64,AAEC\"><figcaption>{QUOTES_ESC}</figcaption></figure></div>")
        );
    }
}
