//! `kind: report`: one self-contained HTML page (`index.html`) with the tables
//! and figures of its input stages laid out as the study's figures, Grad-CAM
//! panels, a "study vs this run" table, the environment, and every number
//! linked to its metric and the metric's lineage.
//!
//! ```yaml
//! report:
//!   kind: report
//!   input: [ingest, table1, table2, pfs_by_dls, dcb, embed, fuse]
//!   figures:                         # lettered panel grids, as the study's figures
//!     - title: "Figure 3"
//!       caption: "ROC (a, d), decision (b, e) and calibration curves (c, f): training (a-c), internal validation (d-f)"
//!       columns: 3
//!       panels: [table2/roc_train, table2/decision_curve_train, table2/calibration_train,
//!                table2/roc_internal, table2/decision_curve_internal, table2/calibration_internal]
//!   gradcam: { stage: embed, score: fuse.dls, cohort: external, patients: 1,
//!              select: by_label, label: pdl1_high, positive: 1, threshold: table2/train/DLS/threshold }
//!   reference:                       # the study's published values
//!     - { metric: table2/external/DLS/auc, value: 0.80, ci: [0.735, 0.870], label: "DLS AUC, external validation" }
//! ```
//!
//! The page, after a table of contents: the tables of the input stages (the
//! typed document of each cohort-level node's `table.json`, in which each
//! number cites its metric id), in `input` order; the `figures:` grids, each
//! panel `<input stage>/<figure>` (an SVG the stage wrote, inline, scaled to
//! its grid cell) lettered a, b, c... row by row; "Other figures": every SVG
//! of an input placed in no grid, by stage, so nothing is dropped (a panel
//! whose stage did not write that figure in this run, as survival does for a
//! cohort all on one side of its cut-off, is shown as such, naming the
//! panel's YAML field and the figures the stage did write); Grad-CAM; "study
//! vs this run"; then the appendix: the environment, the cited metrics and
//! their lineage.
//!
//! Grad-CAM (`gradcam:`): `select: by_score` (the default) shows the
//! `patients` highest- and lowest-scoring patients of `cohort`; `select:
//! by_label` shows, as the study's Fig. 4, patients by their label (`label`, a
//! column of the ingested table, so the ingest stage must be an input; the
//! value `positive` counts as positive) and their classification at
//! `threshold` (a metric id of an input, e.g. the training Youden cut-off
//! `table2/train/DLS/threshold`; `score >= threshold` is positive): true
//! positives and false negatives (label positive), true negatives and false
//! positives, `patients` of each, the most extreme scores of each group
//! (highest for those classified positive, lowest for the others). Each
//! panel names the patient, label, score and threshold (cited).
//!
//! "Study vs this run" names the CI method on both sides: the study's as the
//! `reference` entry's `ci_method` states it ("not stated" otherwise), this
//! run's from its metric's `method`. When the cohorts come from `radpipe
//! synth` (a `design.txt` in the folder above a cohort's folder, found at plan
//! time and read as a source, so it enters the report's key), the page says
//! that agreement with the study reflects the generator's design.
//!
//! Every cited number links to an appendix entry of its metric (value, CI, n,
//! method, the key of the action that computed it), and that key to its
//! lineage, walked from the store's action records as `radpipe lineage` does:
//! stage, kind, version, parameters, the patient set (count and digest) and
//! the source files with their digests. Published values are this node's own
//! metrics (`<stage>/reference/<metric id>`, in its `metrics.json`). Outputs:
//! `index.html`, `metrics.json`, `tables/<stage>.{md,csv}` and
//! `figures/<stage>_<name>.svg`.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::study::{self, Metric, Study};
use super::{InputArtifact, InputRef, Inputs, NodeDecl, RunContext, Stage, StageError};
use crate::report::html::{self, anchor, grid, letter, metric_link, panel_caption, Element, Node, STYLE};
use crate::report::table::{Block, Document};
use radpipe_engine::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use radpipe_engine::lineage::Step;
use radpipe_engine::plan::PlanContext;
use radpipe_engine::stage::Records;

pub const VERSION: u32 = 2;

/// The file `radpipe synth` writes beside its cohort folders.
const DESIGN: &str = "design.txt";

/// The study's report.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The stages to show, in this order (tables and figures of their cohort-level nodes).
    pub input: Inputs,
    #[serde(default = "default_title")]
    pub title: String,
    /// Lettered panel grids of the inputs' figures, as the study's figures; figures in no grid follow under "Other figures".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
    /// Grad-CAM panels: by score (highest and lowest) or by label and classification.
    #[serde(default)]
    pub gradcam: Option<GradCam>,
    /// Published values to put beside this run's.
    #[serde(default)]
    pub reference: Vec<Reference>,
}

fn default_title() -> String {
    "radpipe report".into()
}

/// One figure of the page: a grid of lettered panels.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// The heading, e.g. "Figure 3: training and internal validation".
    pub title: String,
    /// What the panels show, under the grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Panels per row.
    #[serde(default = "default_columns")]
    pub columns: usize,
    /// `<input stage>/<figure>`: an SVG the stage writes, named without `.svg` (`table2/roc_train`, `pfs_by_dls/km_external`); lettered a, b, c... row by row.
    pub panels: Vec<String>,
}

fn default_columns() -> usize {
    3
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GradCam {
    /// The `embed` stage whose per-patient nodes hold `gradcam/*.png`.
    pub stage: String,
    /// The score that ranks (and with `by_label` classifies) patients, `<stage>.<name>` (e.g. `fuse.dls`).
    pub score: String,
    /// Only patients of this ingest cohort (default: all).
    #[serde(default)]
    pub cohort: Option<String>,
    /// Patients shown at each end (`by_score`) or in each group (`by_label`).
    #[serde(default = "default_patients")]
    pub patients: usize,
    /// How patients are chosen.
    #[serde(default)]
    pub select: Select,
    /// `by_label`: the binary label column of the ingested table (the ingest stage among `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `by_label`: the label value that counts as positive (default 1).
    #[serde(default = "default_positive")]
    pub positive: Value,
    /// `by_label`: the metric id of the cut-off (`score >= threshold` is classified positive), e.g. `table2/train/DLS/threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
}

fn default_patients() -> usize {
    2
}

fn default_positive() -> Value {
    Value::from(1)
}

/// How the Grad-CAM patients are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The highest- and the lowest-scoring patients.
    #[default]
    ByScore,
    /// By label and classification at the threshold: true positives, false negatives, true negatives, false positives.
    ByLabel,
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
    /// How the study computed its CI, where it says so (e.g. `DeLong`); shown as "not stated" otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_method: Option<String>,
    /// What the number is, in words.
    pub label: String,
}

/// One SVG figure of an input stage.
struct Svg {
    stage: String,
    /// The file name without `.svg`.
    name: String,
    markup: String,
}

/// An entry of the table of contents: anchor, title, sub-entries.
struct Toc(String, String, Vec<(String, String)>);

impl Report {
    /// The published values beside this run's, each number linked to its metric
    /// (those cited are added to `cited`), with each side's CI method.
    fn study_vs_run(&self, me: &str, metrics: &BTreeMap<String, Value>, cited: &mut BTreeSet<String>) -> Element {
        let mut rows = Vec::new();
        for r in &self.reference {
            let pid = format!("{me}/reference/{}", r.metric);
            let published = with_ci(&pid, r.value, r.ci, 3);
            let study_method = match (&r.ci, &r.ci_method) {
                (None, _) => "no CI published".to_string(),
                (Some(_), Some(m)) => m.clone(),
                (Some(_), None) => "not stated".to_string(),
            };
            let (run, run_method) = match metrics.get(&r.metric) {
                Some(m) => {
                    let v = m.get("value").and_then(Value::as_f64);
                    let ci = m.get("ci").and_then(|c| Some([c.get(0)?.as_f64()?, c.get(1)?.as_f64()?]));
                    let method = m.get("method").and_then(Value::as_str).unwrap_or("not recorded").to_string();
                    (v.map(|v| with_ci(&r.metric, v, ci, 3)).unwrap_or_else(|| vec![Node::text("not estimable")]), method)
                }
                None => (vec![Node::text("not computed in this run (see the stage's notes)")], String::new()),
            };
            cited.insert(pid);
            if metrics.contains_key(&r.metric) {
                cited.insert(r.metric.clone());
            }
            let row = Element::new("tr")
                .child(Element::new("td").child(r.label.as_str()))
                .child(td(code(r.metric.as_str())))
                .child(Element::new("td").children(published))
                .child(td(study_method))
                .child(Element::new("td").children(run))
                .child(td(run_method));
            rows.push(row);
        }
        let head = ["Quantity", "Metric", "Published (95% CI)", "Study's CI method", "This run (95% CI)", "This run's method"];
        wide(table(Element::new("table"), &head, rows))
    }

    fn check(&self, ctx: &PlanContext, stage: &str) -> Result<(), Diagnostics> {
        let refs = self.input.refs();
        let inputs: Vec<String> = refs.iter().map(|r| r.stage.clone()).collect();
        let mut problems = Vec::new();
        if let Some(g) = &self.gradcam {
            if !inputs.contains(&g.stage) {
                problems.push(
                    Diagnostic::new(ctx.origin(stage, &["gradcam", "stage"]), format!("`{}` is not among the report's inputs", g.stage))
                        .hint("add it to `input:`"),
                );
            }
            match g.score.split_once('.') {
                Some((s, _)) if inputs.iter().any(|i| i == s) => {}
                _ => problems.push(Diagnostic::new(
                    ctx.origin(stage, &["gradcam", "score"]),
                    format!("score `{}`: write `<stage>.<name>` with the stage among the report's inputs", g.score),
                )),
            }
            if g.patients == 0 {
                problems.push(Diagnostic::new(ctx.origin(stage, &["gradcam", "patients"]), "patients must be at least 1"));
            }
            problems.extend(check_gradcam_label(ctx, stage, &refs, g));
        }
        let mut placed: HashMap<&str, String> = HashMap::new();
        for (i, f) in self.figures.iter().enumerate() {
            let at = |field: &[&str]| {
                let index = i.to_string();
                let mut path = vec!["figures", index.as_str()];
                path.extend_from_slice(field);
                ctx.origin(stage, &path)
            };
            if f.columns == 0 {
                problems.push(Diagnostic::new(at(&["columns"]), format!("`figures.{i}.columns` must be at least 1")));
            }
            if f.panels.is_empty() {
                problems.push(
                    Diagnostic::new(at(&["panels"]), format!("`figures.{i}`: figure `{}` has no panels", f.title))
                        .hint("list `<input stage>/<figure>`, e.g. `table2/roc_train`"),
                );
            }
            for (j, p) in f.panels.iter().enumerate() {
                let field = format!("figures.{i}.panels.{j}");
                let here = || at(&["panels", &j.to_string()]);
                match p.split_once('/') {
                    Some((s, name)) if inputs.iter().any(|i| i == s) && !name.is_empty() && !name.contains('/') => {
                        if name.ends_with(".svg") {
                            problems.push(
                                Diagnostic::new(here(), format!("`{field}`: panel `{p}`: name the figure without `.svg`"))
                                    .hint(format!("`{}`", p.trim_end_matches(".svg"))),
                            );
                        }
                    }
                    Some((s, _)) if !inputs.iter().any(|i| i == s) => problems
                        .push(Diagnostic::new(here(), format!("`{field}`: panel `{p}`: `{s}` is not among the report's inputs")).hint("add it to `input:`")),
                    _ => problems.push(Diagnostic::new(here(), format!("`{field}`: panel `{p}`: write `<input stage>/<figure>`, e.g. `table2/roc_train`"))),
                }
                if let Some(first) = placed.insert(p.as_str(), field.clone()) {
                    problems.push(Diagnostic::new(here(), format!("`{field}`: panel `{p}` is placed twice (also at `{first}`)")));
                }
            }
        }
        for (i, r) in self.reference.iter().enumerate() {
            let owner = r.metric.split('/').next().unwrap_or_default();
            if !inputs.iter().any(|s| s == owner) {
                problems.push(
                    Diagnostic::new(
                        ctx.origin(stage, &["reference", &i.to_string(), "metric"]),
                        format!("metric `{}` belongs to no input of the report", r.metric),
                    )
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

    /// The `design.txt` files of `radpipe synth` for the cohorts behind the
    /// inputs (`DIR/design.txt` beside `DIR/<cohort>/<table>`), workspace-relative.
    fn synth_designs(&self, ctx: &PlanContext) -> Vec<String> {
        let mut todo: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        let mut seen = BTreeSet::new();
        let mut cohorts = BTreeSet::new();
        while let Some(s) = todo.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(spec) = ctx.stage_spec(&s) {
                cohorts.extend(spec.cohorts());
                todo.extend(spec.inputs().into_iter().map(|r| r.stage));
            }
        }
        let designs: BTreeSet<String> = cohorts
            .iter()
            .filter_map(|c| ctx.cohort_spec(c))
            .filter_map(|c| Some(Path::new(&c.table).parent()?.parent()?.join(DESIGN)))
            .filter(|p| ctx.workspace.join(p).is_file())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        designs.into_iter().collect()
    }
}

/// Plan-time checks of `gradcam.select: by_label` (label, ingest input,
/// threshold), and that its fields are not given under `by_score`.
fn check_gradcam_label(ctx: &PlanContext, stage: &str, refs: &[InputRef], g: &GradCam) -> Vec<Diagnostic> {
    let at = |field: &str| ctx.origin(stage, &["gradcam", field]);
    let mut out = Vec::new();
    if g.select == Select::ByScore {
        for (field, given) in [("label", g.label.is_some()), ("threshold", g.threshold.is_some())] {
            if given {
                out.push(
                    Diagnostic::new(at(field), format!("`gradcam.{field}` is used only with `select: by_label`")).hint("add `select: by_label`, or remove it"),
                );
            }
        }
        return out;
    }
    match &g.label {
        None => out.push(
            Diagnostic::new(at("select"), "`select: by_label` needs `gradcam.label`: the binary label column of the ingested table")
                .hint("e.g. `label: pdl1_high`"),
        ),
        Some(label) => {
            let ingests: Vec<&dyn Stage> = refs.iter().filter_map(|r| ctx.stage_spec(&r.stage)).filter(|s| s.writes_clinical_table()).collect();
            if ingests.is_empty() {
                out.push(
                    Diagnostic::new(
                        at("label"),
                        format!("`gradcam.label: {label}` is read from the ingested table, but no ingest stage is among the report's inputs"),
                    )
                    .hint("add the ingest stage to `input:`"),
                );
            } else {
                let mut known: Vec<String> = ingests.iter().filter_map(|s| s.label(ctx)).collect();
                for s in &ingests {
                    for c in s.cohorts() {
                        if let Ok(t) = ctx.cohort(&c, at("label")) {
                            known.extend(t.df.get_column_names().iter().map(|n| n.to_string()));
                        }
                    }
                }
                if !known.contains(label) {
                    let d = Diagnostic::new(
                        at("label"),
                        format!("`gradcam.label`: `{label}` is neither the ingest stage's label nor a column of its cohorts' tables"),
                    );
                    out.push(match did_you_mean(label, known.iter().map(String::as_str)) {
                        Some(s) => d.hint(format!("did you mean `{s}`?")),
                        None => d,
                    });
                }
            }
        }
    }
    let fitted: Vec<String> = refs.iter().filter_map(|r| ctx.stage_spec(&r.stage)?.fitted_threshold_id(&r.stage, &g.score)).collect();
    let hint = match fitted.as_slice() {
        [] => "a metric id of an input stage, e.g. `table2/train/DLS/threshold`".to_string(),
        ids => format!("the inputs fit: {}", ids.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")),
    };
    match &g.threshold {
        None => out.push(Diagnostic::new(at("select"), "`select: by_label` needs `gradcam.threshold`: the metric id of the cut-off").hint(hint)),
        Some(t) => {
            let owner = t.split('/').next().unwrap_or_default();
            if !refs.iter().any(|r| r.stage == owner) {
                out.push(Diagnostic::new(at("threshold"), format!("`gradcam.threshold`: metric `{t}` belongs to no input of the report")).hint(hint));
            }
        }
    }
    out
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
        let params = serde_json::to_value(self).map_err(|e| Diagnostics::from(Diagnostic::new(ctx.origin(stage, &[]), e.to_string())))?;
        // The generator's design files are sources: their digests enter the key.
        Ok(vec![NodeDecl { deps: self.synth_designs(ctx), ..NodeDecl::single(params) }])
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let me = ctx.node_id.to_string();
        let store = ctx.records;
        let mut metrics: BTreeMap<String, Value> = BTreeMap::new();
        let mut cited: BTreeSet<String> = BTreeSet::new();
        let out = ctx.out_dir;
        for dir in ["tables", "figures"] {
            std::fs::create_dir_all(out.join(dir)).map_err(|e| StageError::new(format!("stage `{me}`: {e}")))?;
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
                let m = Metric::new(format!("{me}/reference/{}", r.metric), r.value, 0).method(format!("published: {}", r.label));
                let m = Metric { lineage: ctx.key.to_string(), ..m };
                match r.ci {
                    Some([lo, hi]) => m.ci(lo, hi),
                    None => m,
                }
            })
            .collect();
        study::write_metrics(out, &own, ctx.key)?;
        for m in &own {
            metrics.insert(m.id.clone(), serde_json::to_value(m).map_err(|e| StageError::new(e.to_string()))?);
        }

        let order: Vec<String> = self.input.refs().into_iter().map(|r| r.stage).collect();
        let mut toc: Vec<Toc> = Vec::new();
        let mut body = String::new();
        let (tables, entries) = tables_section(&me, &order, ctx.inputs, out, &mut cited)?;
        if !entries.is_empty() {
            body.push_str(&h2("tables", "Tables"));
            body.push_str(&tables);
            toc.push(Toc("tables".into(), "Tables".into(), entries));
        }
        let svgs = input_figures(&me, &order, ctx.inputs, out)?;
        let (figures, entries) = self.figures_section(&svgs, ctx.log);
        if !entries.is_empty() {
            body.push_str(&h2("figures", "Figures"));
            body.push_str(&figures);
            toc.push(Toc("figures".into(), "Figures".into(), entries));
        }
        if let Some(g) = &self.gradcam {
            body.push_str(&gradcam_section(&me, g, ctx.inputs, &metrics, &mut cited)?);
            toc.push(Toc("gradcam".into(), "Grad-CAM".into(), Vec::new()));
        }
        if !self.reference.is_empty() {
            let mut nodes = lines([Element::new("h2").attr("id", "study-vs-run").child("Study vs this run")]);
            nodes.extend(synthetic_note(&me, ctx.workspace, &ctx.decl.deps)?);
            nodes.extend(lines([self.study_vs_run(&me, &metrics, &mut cited)]));
            body.push_str(&html::render(&nodes));
            toc.push(Toc("study-vs-run".into(), "Study vs this run".into(), Vec::new()));
        }
        body.push_str(&environment(&store, ctx.inputs));
        body.push_str(&appendix(&me, &store, &metrics, &cited, ctx.key)?);
        let appendix_entries = [("environment", "Environment"), ("metrics", "Metrics"), ("lineage", "Lineage")];
        toc.push(Toc("environment".into(), "Appendix".into(), appendix_entries.iter().map(|(a, t)| (a.to_string(), t.to_string())).collect()));

        let mut head = String::new();
        let _ = writeln!(head, "{}", Element::new("h1").child(self.title.as_str()).render());
        let intro = Element::new("p").child("Every number links to its metric (value, confidence interval, method) and from there to its lineage: the stages, parameters, patient sets and source files (with BLAKE3 digests) behind it.");
        head.push_str(&html::render(&lines([intro, contents(&toc)])));
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{}\n<style>{STYLE}</style>\n</head>\n<body>\n{head}{body}</body>\n</html>\n",
            Element::new("title").child(self.title.as_str()).render()
        );
        study::write(out, "index.html", &html)?;
        let _ = writeln!(ctx.log, "report: {} numbers cited, {} figures, {} bytes", cited.len(), svgs.len(), html.len());
        Ok(())
    }
}

impl Report {
    /// The `figures:` grids, then "Other figures": every figure in no grid,
    /// by stage. A panel its stage did not write in this run is shown as such
    /// (and logged). Returns the HTML and the table-of-contents entries.
    fn figures_section(&self, svgs: &[Svg], log: &mut dyn std::io::Write) -> (String, Vec<(String, String)>) {
        let mut nodes = Vec::new();
        let mut entries = Vec::new();
        let mut placed: HashSet<(&str, &str)> = HashSet::new();
        for (i, f) in self.figures.iter().enumerate() {
            let id = format!("fig-{}", i + 1);
            let mut panels = Vec::new();
            for (j, p) in f.panels.iter().enumerate() {
                let l = letter(j);
                let (stage, name) = p.split_once('/').unwrap_or((p.as_str(), ""));
                let panel = |class: &str| Element::new("figure").attr("class", class).attr("id", format!("{id}-{l}")).attr("data-source", p.as_str());
                let caption = panel_caption(&l, vec![code(p.as_str()).into()]);
                let panel = match svgs.iter().find(|s| s.stage == stage && s.name == name) {
                    Some(svg) => {
                        placed.insert((stage, name));
                        panel("panel").child(caption).child(Node::Trusted(svg.markup.clone()))
                    }
                    None => {
                        let _ = writeln!(log, "note: figures.{i}.panels.{j}: `{stage}` wrote no `{name}.svg` in this run");
                        let mut why =
                            Element::new("p").child("Not drawn in this run: ").child(code(stage)).child(" wrote no ").child(code(format!("{name}.svg")));
                        why = why.child(" (see its notes; it wrote ");
                        let wrote: Vec<&Svg> = svgs.iter().filter(|s| s.stage == stage).collect();
                        if wrote.is_empty() {
                            why = why.child("no figures");
                        }
                        for (k, s) in wrote.iter().enumerate() {
                            why = why.child(if k == 0 { "" } else { ", " }).child(code(s.name.as_str()));
                        }
                        why = why.child("). This panel is ").child(code(format!("figures.{i}.panels.{j}"))).child(" of the report.");
                        panel("panel empty").child(caption).child(why)
                    }
                };
                panels.push(panel);
            }
            let mut figure = vec![Element::new("h3").attr("id", id.as_str()).child(f.title.as_str()), grid(Some(f.columns.max(1)), panels)];
            if let Some(c) = &f.caption {
                figure.push(Element::new("p").attr("class", "caption").child(c.as_str()));
            }
            nodes.extend(lines(figure));
            entries.push((id, f.title.clone()));
        }
        let mut stages: Vec<&str> = Vec::new();
        for s in svgs.iter().filter(|s| !placed.contains(&(s.stage.as_str(), s.name.as_str()))) {
            if !stages.contains(&s.stage.as_str()) {
                stages.push(&s.stage);
            }
        }
        if !stages.is_empty() {
            let title = if self.figures.is_empty() { "Figures by stage" } else { "Other figures" };
            nodes.extend(lines([Element::new("h3").attr("id", "other-figures").child(title)]));
            for stage in stages {
                let panels: Vec<Element> = svgs
                    .iter()
                    .filter(|s| s.stage == stage && !placed.contains(&(s.stage.as_str(), s.name.as_str())))
                    .map(|s| {
                        let source = format!("{}/{}", s.stage, s.name);
                        Element::new("figure")
                            .attr("class", "panel")
                            .attr("data-source", source.as_str())
                            .child(Element::new("figcaption").child(code(source.as_str())))
                            .child(Node::Trusted(s.markup.clone()))
                    })
                    .collect();
                nodes.extend(lines([Element::new("h4").attr("id", anchor("f", stage)).child(stage), grid(None, panels)]));
            }
            entries.push(("other-figures".to_string(), title.to_string()));
        }
        (html::render(&nodes), entries)
    }
}

/// `<h2 id="id">title</h2>` and a line break.
fn h2(id: &str, title: &str) -> String {
    html::render(&lines([Element::new("h2").attr("id", id).child(title)]))
}

/// The table of contents: links to the sections and their parts.
fn contents(toc: &[Toc]) -> Element {
    let link = |id: &str, title: &str| Element::new("a").attr("href", format!("#{id}")).child(title);
    let mut list = Element::new("ol").child("\n");
    for Toc(id, title, parts) in toc {
        let mut item = Element::new("li").child(link(id, title));
        if !parts.is_empty() {
            let sub = parts.iter().map(|(id, title)| Element::new("li").child(link(id, title)));
            item = item.child(Element::new("ol").children(sub.map(Node::from)));
        }
        list = list.child(item).child("\n");
    }
    Element::new("nav").attr("id", "contents").child(Element::new("h2").child("Contents")).child("\n").child(list)
}

/// The tables of the input stages in `order` (from `table.json`, each cited
/// number a link, whose id is added to `cited`), also written to `tables/`
/// under `out`; with their table-of-contents entries.
fn tables_section(
    me: &str,
    order: &[String],
    inputs: &[InputArtifact],
    out: &Path,
    cited: &mut BTreeSet<String>,
) -> Result<(String, Vec<(String, String)>), StageError> {
    let mut html_out = String::new();
    let mut entries = Vec::new();
    for stage in order {
        for a in inputs.iter().filter(|a| &a.stage == stage && a.item.is_none()) {
            let Some(path) = a.file(study::TABLE_JSON) else { continue };
            let doc: Document = serde_json::from_str(&read(me, a, path)?)
                .map_err(|e| StageError::new(format!("stage `{me}`: {} of `{}` is not a table document: {e}", study::TABLE_JSON, a.node)))?;
            let id = anchor("s", stage);
            // The stage, and what its first table shows.
            let title = match doc.blocks.iter().find_map(|b| if let Block::Table(t) = b { Some(&t.title) } else { None }) {
                Some(t) => format!("{stage}: {t}"),
                None => stage.clone(),
            };
            let heading = Element::new("h3").attr("id", id.as_str()).child(title.as_str());
            let tables = Element::new("div").attr("class", "wide").child("\n").children(doc.html(cited));
            html_out.push_str(&html::render(&lines([heading, tables])));
            std::fs::write(out.join("tables").join(format!("{stage}.md")), doc.markdown(false)).map_err(|e| StageError::new(e.to_string()))?;
            if let Some(csv) = a.file("table.csv") {
                std::fs::copy(csv, out.join("tables").join(format!("{stage}.csv"))).map_err(|e| StageError::new(e.to_string()))?;
            }
            entries.push((id, title));
        }
    }
    Ok((html_out, entries))
}

/// The SVG figures of the input stages' cohort-level nodes, in `order`
/// (by [`figure_rank`] within a stage), also written to `figures/` under `out`.
fn input_figures(me: &str, order: &[String], inputs: &[InputArtifact], out: &Path) -> Result<Vec<Svg>, StageError> {
    let mut svgs = Vec::new();
    for stage in order {
        for a in inputs.iter().filter(|a| &a.stage == stage && a.item.is_none()) {
            let mut files: Vec<&(String, PathBuf)> = a.files.iter().filter(|(n, _)| n.ends_with(".svg") && !n.contains('/')).collect();
            files.sort_by_key(|(n, _)| figure_rank(n));
            for (name, path) in files {
                let svg = read(me, a, path)?;
                std::fs::write(out.join("figures").join(format!("{stage}_{name}")), &svg).map_err(|e| StageError::new(e.to_string()))?;
                svgs.push(Svg { stage: stage.clone(), name: name.trim_end_matches(".svg").to_string(), markup: strip_xml_declaration(&svg).to_string() });
            }
        }
    }
    Ok(svgs)
}

/// One sentence when the cohorts are `radpipe synth`'s (its `design.txt`
/// files, `designs`, relative to `workspace`): agreement with the study then
/// reflects the generator's design.
fn synthetic_note(me: &str, workspace: &Path, designs: &[String]) -> Result<Vec<Node>, StageError> {
    if designs.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Element::new("p").attr("class", "synthetic").child("The cohorts are synthetic, from ").child(code("radpipe synth"));
    for (i, d) in designs.iter().enumerate() {
        let text = std::fs::read_to_string(workspace.join(d)).map_err(|e| StageError::new(format!("stage `{me}`: cannot read {d}: {e}")))?;
        // The first line names the preset: "... preset 'demo'."
        p = p.child(if i == 0 { " (" } else { "; " });
        if let Some(preset) = text.lines().next().and_then(|l| l.split('\'').nth(1)) {
            p = p.child("preset ").child(code(preset)).child(", ");
        }
        p = p.child(code(d.as_str()));
    }
    p = p.child("): agreement with the study reflects the generator's design, not a replication of its findings.");
    Ok(lines([p]))
}

fn read(me: &str, a: &InputArtifact, path: &Path) -> Result<String, StageError> {
    std::fs::read_to_string(path).map_err(|e| StageError::new(format!("stage `{me}`: cannot read {} of `{}`: {e}", path.display(), a.node)))
}

fn read_metrics(me: &str, a: &InputArtifact, path: &Path) -> Result<Vec<Value>, StageError> {
    let text = read(me, a, path)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(v)) => Ok(v),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(StageError::new(format!("stage `{me}`: metrics.json of `{}` is not JSON: {e}", a.node))),
    }
}

/// ROC first, then calibration, decision curves, Kaplan-Meier; by name within.
fn figure_rank(name: &str) -> (usize, String) {
    let rank = ["roc", "calibration", "decision", "km"].iter().position(|p| name.starts_with(p)).unwrap_or(9);
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
        Some([lo, hi]) if lo.is_finite() && hi.is_finite() => vec![f(value), Node::text(" ("), f(lo), Node::text("–"), f(hi), Node::text(")")],
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
            for i in action.inputs.iter().filter(|i| i.node.ends_with(".fit") || i.node.contains(".fit[")) {
                fits.insert(i.node.clone(), i.key.clone());
            }
        }
    }
    for (node, key) in &fits {
        let Some(bytes) = store.action(key).and_then(|action| store.output(&action, "fit.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        for (k, val) in v.get("environment").and_then(Value::as_object).into_iter().flatten() {
            rows.push((format!("{k} ({node})"), val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string())));
        }
    }
    let items = rows.into_iter().map(|(k, v)| Element::new("li").child(format!("{k}: ")).child(code(v)));
    let list = Element::new("ul").child("\n").children(lines(items));
    let heading = Element::new("h2").attr("id", "environment").child("Appendix: environment");
    html::render(&lines([heading, list]))
}

/// One Grad-CAM panel to show: the group's title, and the patient with
/// their score (`None`: the group has no further patient).
struct CamSlot<'a> {
    group: String,
    patient: Option<(&'a str, f64)>,
}

/// Grad-CAM overlays (`gradcam/<sequence>_<plane>.png`, as data URIs) of
/// the patients `g` selects, as one grid of lettered panels: by score, the
/// highest in one row and the lowest in the next; by label, a row of the
/// label-positive patients (true positives, false negatives) and a row of the
/// others (true negatives, false positives). The threshold is cited.
fn gradcam_section(
    me: &str,
    g: &GradCam,
    inputs: &[InputArtifact],
    metrics: &BTreeMap<String, Value>,
    cited: &mut BTreeSet<String>,
) -> Result<String, StageError> {
    let (score_stage, score_name) = g.score.split_once('.').unwrap_or((g.score.as_str(), ""));
    let scores = study::stage_scores(me, inputs, score_stage, score_name)?;
    let cohort_of: BTreeMap<&str, Option<&str>> = inputs.iter().filter_map(|a| a.item.as_ref()).map(|i| (i.id.as_str(), i.cohort.as_deref())).collect();
    let mut ranked: Vec<(f64, &str)> = scores
        .iter()
        .filter_map(|(p, s)| s.map(|s| (s, p.as_str())))
        .filter(|(_, p)| g.cohort.is_none() || cohort_of.get(p).copied().flatten() == g.cohort.as_deref())
        .collect();
    if ranked.is_empty() {
        let in_cohort = g.cohort.as_ref().map(|c| format!(" in cohort `{c}`")).unwrap_or_default();
        return Err(StageError::new(format!("stage `{me}`: no patient has a score `{}`{in_cohort}", g.score)));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let score = || code(g.score.as_str());
    let mut intro = Element::new("p").child(
        "Class-activation maps on layer4 of each sequence's network for the class of interest, over the three planes of the 2.5D input, for the patients",
    );
    if let Some(c) = &g.cohort {
        intro = intro.child(" of cohort ").child(code(c.as_str()));
    }
    // Each patient's label, from the ingested table (by_label only).
    let labels: BTreeMap<String, Option<String>> = match &g.label {
        Some(label) => {
            let st = Study::load(me, inputs)?;
            st.ids.iter().cloned().zip(st.text(label)?).collect()
        }
        None => BTreeMap::new(),
    };
    // Rows of slots, and the threshold (by_label).
    let (rows, threshold): (Vec<Vec<CamSlot>>, Option<(String, f64)>) = match g.select {
        Select::ByScore => {
            let k = g.patients.min(ranked.len().div_ceil(2));
            intro = intro.child(" with the highest and the lowest ").child(score()).child(".");
            let high = ranked.iter().take(k).map(|(s, p)| CamSlot { group: format!("Highest {}", g.score), patient: Some((*p, *s)) }).collect();
            let low = ranked.iter().rev().take(k).map(|(s, p)| CamSlot { group: format!("Lowest {}", g.score), patient: Some((*p, *s)) }).collect();
            (vec![high, low], None)
        }
        Select::ByLabel => {
            let (rows, threshold, tail) = by_label(me, g, metrics, &labels, &ranked)?;
            intro = intro.children(tail);
            (rows, threshold)
        }
    };
    if let Some((id, _)) = &threshold {
        cited.insert(id.clone());
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(1);
    let mut panels = Vec::new();
    for slot in rows.iter().flatten() {
        let l = letter(panels.len());
        let mut caption = vec![Node::text(format!("{}: ", slot.group))];
        let panel = match slot.patient {
            Some((p, s)) => {
                caption.extend([Node::text("patient "), code(p).into()]);
                if let (Some(label), Some(Some(v))) = (&g.label, labels.get(p)) {
                    caption.extend([Node::text(", "), code(label.as_str()).into(), Node::text(format!(" = {v}"))]);
                }
                caption.extend([Node::text(", "), score().into(), Node::text(format!(" {s:.3}"))]);
                if let Some((id, t)) = &threshold {
                    let side = if s >= *t { " ≥ " } else { " < " };
                    caption.extend([Node::text(format!("{side}threshold ")), metric_link(id, &format!("{t:.3}")).into()]);
                }
                cam_panel(&l, caption, &patient_images(me, g, inputs, p)?)
            }
            None => {
                caption.push(Node::text("no (further) patient in this group"));
                Element::new("figure").attr("class", "panel cam empty").child(panel_caption(&l, caption))
            }
        };
        panels.push(panel);
    }
    let page = lines([Element::new("h2").attr("id", "gradcam").child("Grad-CAM"), intro, grid(Some(columns), panels)]);
    Ok(html::render(&page))
}

/// `by_label`: the slots of the true positives and false negatives (one row)
/// and of the true negatives and false positives (the next), `g.patients` of
/// each, the most extreme scores first (highest where classified positive);
/// the threshold (its metric id and value), and the end of the section's
/// introduction. `ranked` is by score, highest first; `labels` by patient.
type ByLabel<'a> = (Vec<Vec<CamSlot<'a>>>, Option<(String, f64)>, Vec<Node>);
fn by_label<'a>(
    me: &str,
    g: &GradCam,
    metrics: &BTreeMap<String, Value>,
    labels: &BTreeMap<String, Option<String>>,
    ranked: &[(f64, &'a str)],
) -> Result<ByLabel<'a>, StageError> {
    let (Some(label), Some(tid)) = (&g.label, &g.threshold) else {
        return Err(StageError::new(format!("stage `{me}`: `gradcam.select: by_label` needs `gradcam.label` and `gradcam.threshold`")));
    };
    let t = metrics.get(tid).and_then(|m| m.get("value")).and_then(Value::as_f64).ok_or_else(|| {
        StageError::new(format!("stage `{me}`: `gradcam.threshold`: metric `{tid}` is in no input's metrics.json, or has no value in this run"))
    })?;
    let positive = study::value_text(&g.positive);
    let mut labelled = Vec::new();
    let mut values = BTreeSet::new();
    for &(s, p) in ranked {
        if let Some(Some(v)) = labels.get(p) {
            values.insert(v.clone());
            labelled.push((s, p, *v == positive));
        }
    }
    if values.len() > 2 || (values.len() == 2 && !values.contains(&positive)) {
        let known: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return Err(StageError::new(format!(
            "stage `{me}`: `gradcam.label`: `{label}` is not a binary label with positive value `{positive}` (its values: {})",
            known.join(", ")
        )));
    }
    let k = g.patients;
    let group = |title: &str, positive_label: bool, classified: bool| -> Vec<CamSlot<'a>> {
        let mut members: Vec<(f64, &'a str)> =
            labelled.iter().filter(|(s, _, y)| *y == positive_label && (*s >= t) == classified).map(|(s, p, _)| (*s, *p)).collect();
        if !classified {
            members.reverse();
        }
        (0..k).map(|i| CamSlot { group: title.to_string(), patient: members.get(i).map(|(s, p)| (*p, *s)) }).collect()
    };
    let high = group("True positive", true, true).into_iter().chain(group("False negative", true, false)).collect();
    let low = group("True negative", false, false).into_iter().chain(group("False positive", false, true)).collect();
    let tail = vec![
        Node::text(" by "),
        code(label.as_str()).into(),
        Node::text(format!(" (positive: {positive}) and their classification by ")),
        code(g.score.as_str()).into(),
        Node::text(" at "),
        metric_link(tid, &format!("{t:.3}")).into(),
        Node::text(" ("),
        code(tid.as_str()).into(),
        Node::text(format!(
            "; at or above is positive): {k} of each group, the highest scores of those classified positive and the lowest of the others; label-positive patients in the first row, the others in the second."
        )),
    ];
    Ok((vec![high, low], Some((tid.clone(), t)), tail))
}


/// The Grad-CAM images of patient `p` (label, PNG bytes), by name.
fn patient_images(me: &str, g: &GradCam, inputs: &[InputArtifact], p: &str) -> Result<Vec<(String, Vec<u8>)>, StageError> {
    let node = inputs.iter().find(|a| a.stage == g.stage && a.item.as_ref().is_some_and(|i| i.id == p));
    let Some(node) = node else {
        return Err(StageError::new(format!("stage `{me}`: patient {p}: no `{}` node among the inputs", g.stage)));
    };
    let mut pngs: Vec<&(String, PathBuf)> = node.files.iter().filter(|(n, _)| n.starts_with("gradcam/") && n.ends_with(".png")).collect();
    pngs.sort_by(|a, b| a.0.cmp(&b.0));
    if pngs.is_empty() {
        return Err(StageError::new(format!("stage `{me}`: patient {p}: `{}` wrote no Grad-CAM images", node.node)));
    }
    pngs.into_iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(path).map_err(|e| StageError::new(format!("stage `{me}`: patient {p}: {name}: {e}")))?;
            let label = name.trim_start_matches("gradcam/").trim_end_matches(".png");
            Ok((label.to_string(), bytes))
        })
        .collect()
}

/// One patient's Grad-CAM panel, lettered `l` with `caption`: the images
/// (`<sequence>_<plane>`, PNG bytes) as data URIs in a grid, a row per
/// sequence and a column per plane.
fn cam_panel(l: &str, caption: Vec<Node>, images: &[(String, Vec<u8>)]) -> Element {
    let split = |name: &str| name.rsplit_once('_').map(|(s, p)| (s.to_string(), p.to_string())).unwrap_or((name.to_string(), String::new()));
    let mut sequences: Vec<String> = Vec::new();
    let mut planes: Vec<String> = Vec::new();
    for (name, _) in images {
        let (s, p) = split(name);
        if !sequences.contains(&s) {
            sequences.push(s);
        }
        if !planes.contains(&p) {
            planes.push(p);
        }
    }
    let mut cells = Element::new("div").attr("class", "imgs").attr("style", format!("grid-template-columns:auto repeat({},1fr)", planes.len()));
    cells.push(Element::new("span"));
    for p in &planes {
        cells.push(Element::new("span").child(p.as_str()));
    }
    for s in &sequences {
        cells.push(Element::new("span").child(s.as_str()));
        for p in &planes {
            let found = images.iter().find(|(name, _)| split(name) == (s.clone(), p.clone()));
            cells.push(match found {
                Some((name, bytes)) => {
                    let src = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes));
                    Element::void("img").attr("alt", name.as_str()).attr("src", src)
                }
                None => Element::new("span"),
            });
        }
    }
    Element::new("figure").attr("class", "panel cam").child(panel_caption(l, caption)).child(cells)
}

/// The cited metrics, then the lineage of every action behind them.
fn appendix(me: &str, store: &Records, metrics: &BTreeMap<String, Value>, cited: &BTreeSet<String>, own_key: &str) -> Result<String, StageError> {
    let mut rows = Vec::new();
    // (action key, group whose patients the metric stands on) -> those
    // patients; each action's patients.json is read once, however many of its
    // metrics are cited.
    let mut blocks: BTreeMap<(String, Option<String>), Option<HashSet<String>>> = BTreeMap::new();
    let mut groups: HashMap<(String, String), Option<HashSet<String>>> = HashMap::new();
    for id in cited {
        let Some(m) = metrics.get(id) else {
            return Err(StageError::new(format!("stage `{me}`: a table cites `{id}`, which no input's metrics.json holds")));
        };
        let key = m.get("lineage").and_then(Value::as_str).unwrap_or_default().to_string();
        let patients = id.split('/').nth(1).and_then(|g| {
            let found = groups.entry((key.clone(), g.to_string())).or_insert_with(|| store.action(&key).and_then(|a| store.group_patients(&a, g)));
            found.clone().map(|p| (g.to_string(), p))
        });
        let group = patients.as_ref().map(|(g, _)| g.clone());
        rows.push(metric_row(id, m, &key, group.as_deref()));
        blocks.insert((key, group), patients.map(|(_, p)| p));
    }
    let head = ["Metric", "Value", "95% CI", "n", "Method", "Computed by"];
    let mut page = lines([
        Element::new("h2").attr("id", "metrics").child("Metrics"),
        wide(table(Element::new("table").attr("class", "metrics"), &head, rows)),
        Element::new("h2").attr("id", "lineage").child("Lineage"),
    ]);
    for ((key, group), patients) in &blocks {
        let mut heading = Element::new("h3").attr("id", lineage_anchor(key, group.as_deref())).child("Action ").child(code(key.as_str()));
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
        let steps = store.steps(key, patients.as_ref()).map_err(|e| StageError::new(format!("stage `{me}`: lineage of {key}: {e}")))?;
        page.extend(lines([wide(render_steps(&steps))]));
    }
    Ok(html::render(&page))
}

/// The appendix row of metric `id` (its JSON `m`), computed by action `key`
/// on the patients of `group`.
fn metric_row(id: &str, m: &Value, key: &str, group: Option<&str>) -> Element {
    let value = m.get("value").map(|v| v.to_string()).unwrap_or_default();
    let ci = m.get("ci").and_then(Value::as_array).map(|c| c.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" – ")).unwrap_or_default();
    let n = m.get("n").map(|v| v.to_string()).unwrap_or_default();
    let method = m.get("method").and_then(Value::as_str).unwrap_or_default();
    let computed_by = format!("{}{}", key.get(..12).unwrap_or(key), group.map(|g| format!(" ({g})")).unwrap_or_default());
    let link = Element::new("a").attr("href", format!("#{}", lineage_anchor(key, group))).child(code(computed_by));
    Element::new("tr").attr("id", anchor("m", id)).child(td(code(id))).child(td(value)).child(td(ci)).child(td(n)).child(td(method)).child(td(link))
}

fn lineage_anchor(key: &str, group: Option<&str>) -> String {
    anchor("lin", &format!("{key}/{}", group.unwrap_or("")))
}

/// The lineage table of one action: a row per step.
fn render_steps(steps: &[Step]) -> Element {
    let head = ["Stage", "Kind", "Version", "Nodes", "Patients (digest)", "Parameters", "Source files"];
    table(Element::new("table").attr("class", "lineage"), &head, steps.iter().map(step_row).collect())
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
    let fits: Vec<String> = st.nodes.iter().filter(|n| n.node.contains(".fit")).map(|n| format!("{} {}", n.node, n.key)).collect();
    let nodes = if fits.is_empty() { st.nodes.len().to_string() } else { format!("{} (models: {})", st.nodes.len(), fits.join("; ")) };
    let mut files = Element::new("td");
    if !sources.is_empty() {
        let mut details = Element::new("details").child(Element::new("summary").child(format!("{} files", sources.len())));
        for (path, digest) in &sources {
            details = details.child(format!("{path} ")).child(code(digest.as_str())).child(Element::void("br"));
        }
        files.push(details);
    }
    let patients = format!("{} ({})", st.items, st.items_digest.as_deref().unwrap_or("-"));
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

/// `element` in a box that scrolls sideways when it is wider than the page.
fn wide(element: Element) -> Element {
    Element::new("div").attr("class", "wide").child(element)
}

/// `<td>content</td>`.
fn td(content: impl Into<Node>) -> Element {
    Element::new("td").child(content)
}

/// Each element followed by a line break.
fn lines(elements: impl IntoIterator<Item = Element>) -> Vec<Node> {
    elements.into_iter().flat_map(|e| [Node::from(e), Node::text("\n")]).collect()
}

/// `table` with a header row of `head` and `rows`, each on its own line.
fn table(table: Element, head: &[&'static str], rows: Vec<Element>) -> Element {
    let head = Element::new("tr").children(head.iter().map(|h| Element::new("th").child(*h).into()));
    let body = Element::new("tbody").child("\n").children(lines(rows));
    table.child("\n").child(Element::new("thead").child(head)).child("\n").child(body).child("\n")
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
        let images = [(format!("{QUOTES}_axial"), vec![0u8, 1, 2])];
        let html = cam_panel("a", vec![Node::text("patient "), code(SCRIPT).into()], &images).render();
        assert_eq!(
            html,
            format!("<figure class=\"panel cam\"><figcaption><b class=\"letter\">a</b> patient <code>{SCRIPT_ESC}</code></figcaption><div class=\"imgs\" style=\"grid-template-columns:auto repeat(1,1fr)\"><span></span><span>axial</span><span>{QUOTES_ESC}</span><img alt=\"{QUOTES_ESC}_axial\" src=\"data:image/png;base64,AAEC\"></div></figure>")
        );
    }

    fn gradcam(select: Select) -> GradCam {
        GradCam {
            stage: "embed".into(),
            score: "fuse.dls".into(),
            cohort: None,
            patients: 1,
            select,
            label: Some("pdl1_high".into()),
            positive: Value::from(1),
            threshold: Some("table2/train/DLS/threshold".into()),
        }
    }

    /// Group title and patient of each slot, row by row.
    fn slots<'a>(rows: &[Vec<CamSlot<'a>>]) -> Vec<Vec<(String, Option<&'a str>)>> {
        rows.iter().map(|r| r.iter().map(|s| (s.group.split(' ').take(2).collect::<Vec<_>>().join(" "), s.patient.map(|p| p.0))).collect()).collect()
    }

    #[test]
    fn report_gradcam_by_label_picks_the_most_extreme_of_each_group() {
        let metrics = BTreeMap::from([("table2/train/DLS/threshold".to_string(), serde_json::json!({ "value": 0.5 }))]);
        // Label-positive: A (0.9), B (0.7) classified positive, C (0.2) negative; label-negative: D (0.6) positive, E (0.4), F (0.1) negative; G has no label.
        let scores = [(0.9, "A"), (0.7, "B"), (0.6, "D"), (0.5, "G"), (0.4, "E"), (0.2, "C"), (0.1, "F")];
        let label = |v: &str| Some(v.to_string());
        let labels = BTreeMap::from([
            ("A".to_string(), label("1")),
            ("B".to_string(), label("1")),
            ("C".to_string(), label("1")),
            ("D".to_string(), label("0")),
            ("E".to_string(), label("0")),
            ("F".to_string(), label("0")),
            ("G".to_string(), None),
        ]);
        let (rows, threshold, _) = by_label("report", &gradcam(Select::ByLabel), &metrics, &labels, &scores).unwrap();
        assert_eq!(threshold, Some(("table2/train/DLS/threshold".to_string(), 0.5)));
        let t = |g: &str| g.to_string();
        assert_eq!(
            slots(&rows),
            vec![
                vec![(t("True positive"), Some("A")), (t("False negative"), Some("C"))],
                vec![(t("True negative"), Some("F")), (t("False positive"), Some("D"))]
            ]
        );
        // Two of each: a group short of patients says so.
        let g = GradCam { patients: 2, ..gradcam(Select::ByLabel) };
        let (rows, _, _) = by_label("report", &g, &metrics, &labels, &scores).unwrap();
        let patients: Vec<Vec<Option<&str>>> = slots(&rows).into_iter().map(|r| r.into_iter().map(|s| s.1).collect()).collect();
        assert_eq!(patients, vec![vec![Some("A"), Some("B"), Some("C"), None], vec![Some("F"), Some("E"), Some("D"), None]]);
        // A score at the threshold is classified positive.
        let at = BTreeMap::from([("table2/train/DLS/threshold".to_string(), serde_json::json!({ "value": 0.2 }))]);
        let (rows, _, _) = by_label("report", &gradcam(Select::ByLabel), &at, &labels, &scores).unwrap();
        assert_eq!(slots(&rows)[0][1].1, None, "C (0.2) is a true positive at 0.2: no false negative");
    }

    #[test]
    fn report_gradcam_by_label_refuses_a_missing_threshold_and_a_non_binary_label() {
        let scores = [(0.9, "A"), (0.1, "B"), (0.5, "C")];
        let labels =
            BTreeMap::from([("A".to_string(), Some("1".to_string())), ("B".to_string(), Some("0".to_string())), ("C".to_string(), Some("2".to_string()))]);
        let err = by_label("report", &gradcam(Select::ByLabel), &BTreeMap::new(), &labels, &scores).err().unwrap();
        assert!(err.0.contains("`gradcam.threshold`: metric `table2/train/DLS/threshold` is in no input's metrics.json"), "{err}");
        let metrics = BTreeMap::from([("table2/train/DLS/threshold".to_string(), serde_json::json!({ "value": 0.5 }))]);
        let err = by_label("report", &gradcam(Select::ByLabel), &metrics, &labels, &scores).err().unwrap();
        assert!(err.0.contains("`pdl1_high` is not a binary label with positive value `1` (its values: `0`, `1`, `2`)"), "{err}");
    }

    fn svg(stage: &str, name: &str) -> Svg {
        Svg { stage: stage.into(), name: name.into(), markup: format!("<svg viewBox=\"0 0 10 10\"><title>{name}</title></svg>") }
    }

    #[test]
    fn report_figures_letter_panels_show_missing_ones_and_drop_nothing() {
        let report = Report {
            input: Inputs::Many(vec!["table2".into(), "pfs".into()]),
            title: String::new(),
            figures: vec![Figure {
                title: "Figure 5".into(),
                caption: Some("<b>".into()),
                columns: 2,
                panels: vec!["table2/roc_external".into(), "pfs/km_internal".into()],
            }],
            gradcam: None,
            reference: Vec::new(),
        };
        let svgs = [svg("table2", "roc_external"), svg("table2", "roc_train"), svg("pfs", "km_external")];
        let mut log = Vec::new();
        let (html, entries) = report.figures_section(&svgs, &mut log);
        assert_eq!(entries, [("fig-1".to_string(), "Figure 5".to_string()), ("other-figures".to_string(), "Other figures".to_string())]);
        assert!(html.contains("<h3 id=\"fig-1\">Figure 5</h3>\n<div class=\"grid\" style=\"grid-template-columns:repeat(2,minmax(0,1fr))\">"), "{html}");
        assert!(html.contains("<figure class=\"panel\" id=\"fig-1-a\" data-source=\"table2/roc_external\"><figcaption><b class=\"letter\">a</b> <code>table2/roc_external</code></figcaption><svg"), "{html}");
        assert!(html.contains("<figure class=\"panel empty\" id=\"fig-1-b\" data-source=\"pfs/km_internal\">"), "{html}");
        assert!(
            html.contains("<p>Not drawn in this run: <code>pfs</code> wrote no <code>km_internal.svg</code> (see its notes; it wrote <code>km_external</code>). This panel is <code>figures.0.panels.1</code> of the report.</p>"),
            "{html}"
        );
        assert!(html.contains("<p class=\"caption\">&lt;b&gt;</p>"), "{html}");
        // The figures in no grid follow, by stage; each figure appears once.
        for name in ["roc_external", "roc_train", "km_external"] {
            assert_eq!(html.matches(&format!("<title>{name}</title>")).count(), 1, "{name}: {html}");
        }
        let other = &html[html.find("id=\"other-figures\"").unwrap()..];
        assert!(
            other.contains("data-source=\"table2/roc_train\"") && other.contains("data-source=\"pfs/km_external\"") && !other.contains("roc_external"),
            "{other}"
        );
        assert!(String::from_utf8(log).unwrap().contains("figures.0.panels.1: `pfs` wrote no `km_internal.svg`"));
    }
}
