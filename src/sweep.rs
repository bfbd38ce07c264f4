//! A sweep's summary, `results/sweeps/<sweep>/summary.{csv,md,json}`: one row
//! per metric id found in the members' `metrics.json` files, each member's
//! value with the action key that produced it (so every value has lineage),
//! then the spread over the members: mean, SD, min, max and the 95% CI of the
//! mean by Student's t (`radpipe_stats::spread`).

use serde::Serialize;
use serde_json::Value;
use std::io;
use std::path::Path;

use crate::report::table::{Block, Cell, Document, Rich, Table};
use crate::stages::study::num;
use radpipe_engine::plan::RESULTS;
use radpipe_engine::store::{RunRecord, Store};
use radpipe_engine::sweep::{Member, Sweep};

/// How the summary's interval is obtained, as the files state it.
const CI_METHOD: &str = "95% CI of the mean over the members: mean +- t(0.975, k-1) * SD / sqrt(k)";

/// One member's value of a metric and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct MemberValue {
    pub member: String,
    pub value: f64,
    pub node: String,
    /// The action whose `metrics.json` holds the value (`radpipe lineage` starts there).
    pub key: String,
}

/// One metric over the members.
#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    pub id: String,
    pub values: Vec<MemberValue>,
    #[serde(flatten)]
    pub spread: Option<radpipe_stats::Spread>,
}

/// How a member ended: only complete members enter the metrics.
#[derive(Debug, Clone)]
pub enum MemberOutcome {
    Complete(Box<RunRecord>),
    /// A node failed; the run's id.
    Failed(String),
    /// The sweep stopped before it (a failure without `--keep-going`).
    NotRun,
}

/// A member as the summary lists it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberEntry {
    pub name: String,
    pub overrides: Vec<String>,
    /// `complete`, `failed` or `not run`.
    pub status: &'static str,
    pub run: Option<String>,
    pub results: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub sweep: String,
    pub pipeline: String,
    /// `--set` overrides shared by every member.
    pub fixed: Vec<String>,
    pub varied: Vec<(String, Vec<String>)>,
    pub members: Vec<MemberEntry>,
    pub ci: &'static str,
    pub metrics: Vec<MetricRow>,
}

/// The numeric metrics of a run: `(id, value, node, key)` from every
/// `metrics.json` (an array of `{id, value, ...}`) of its nodes' actions.
fn run_metrics(store: &Store, run: &RunRecord) -> Vec<(String, f64, String, String)> {
    let mut out = Vec::new();
    for (node, key) in &run.nodes {
        let Some(action) = store.read_action(key) else { continue };
        for name in action.outputs.keys().filter(|n| *n == "metrics.json" || n.ends_with("/metrics.json")) {
            let Some(Value::Array(entries)) = store.read_output(&action, name).and_then(|b| serde_json::from_slice(&b).ok()) else { continue };
            for e in entries {
                if let (Some(id), Some(v)) = (e.get("id").and_then(Value::as_str), e.get("value").and_then(Value::as_f64)) {
                    out.push((id.to_string(), v, node.clone(), key.clone()));
                }
            }
        }
    }
    out
}

/// The summary of a sweep's members (in member order); the metrics come
/// from the complete ones.
pub fn summarize(store: &Store, sweep: &Sweep, pipeline: &Path, fixed: &[String], outcomes: &[(&Member, MemberOutcome)]) -> Summary {
    let mut metrics: Vec<MetricRow> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (member, outcome) in outcomes {
        let MemberOutcome::Complete(run) = outcome else { continue };
        for (id, value, node, key) in run_metrics(store, run) {
            let i = *index.entry(id.clone()).or_insert_with(|| {
                metrics.push(MetricRow { id, values: Vec::new(), spread: None });
                metrics.len() - 1
            });
            metrics[i].values.push(MemberValue { member: member.name.clone(), value, node, key });
        }
    }
    for m in &mut metrics {
        m.spread = radpipe_stats::spread(&m.values.iter().map(|v| v.value).collect::<Vec<_>>());
    }
    let members = outcomes
        .iter()
        .map(|(m, outcome)| {
            let (status, run) = match outcome {
                MemberOutcome::Complete(r) => ("complete", Some(r.id.clone())),
                MemberOutcome::Failed(id) => ("failed", Some(id.clone())),
                MemberOutcome::NotRun => ("not run", None),
            };
            let results = Path::new(RESULTS).join("sweeps").join(&sweep.name).join(&m.name).to_string_lossy().into_owned();
            MemberEntry { name: m.name.clone(), overrides: m.overrides.clone(), status, run, results }
        })
        .collect();
    Summary {
        sweep: sweep.name.clone(),
        pipeline: pipeline.display().to_string(),
        fixed: fixed.to_vec(),
        varied: sweep.varied.iter().map(|v| (v.path.clone(), v.values.clone())).collect(),
        members,
        ci: CI_METHOD,
        metrics,
    }
}

fn value_of<'a>(row: &'a MetricRow, member: &str) -> Option<&'a MemberValue> {
    row.values.iter().find(|v| v.member == member)
}

fn csv_bytes(s: &Summary) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["metric".to_string()];
    header.extend(s.members.iter().map(|m| m.name.clone()));
    header.extend(["k", "mean", "sd", "min", "max", "ci95_low", "ci95_high"].map(String::from));
    header.extend(s.members.iter().map(|m| format!("key {}", m.name)));
    w.write_record(&header)?;
    for row in &s.metrics {
        let mut rec = vec![row.id.clone()];
        rec.extend(s.members.iter().map(|m| value_of(row, &m.name).map(|v| num(v.value)).unwrap_or_default()));
        match &row.spread {
            Some(sp) => {
                let (lo, hi) = sp.ci95.map_or((String::new(), String::new()), |(a, b)| (num(a), num(b)));
                rec.extend([sp.k.to_string(), num(sp.mean), sp.sd.map(num).unwrap_or_default(), num(sp.min), num(sp.max), lo, hi]);
            }
            None => rec.extend(std::iter::repeat_n(String::new(), 7)),
        }
        rec.extend(s.members.iter().map(|m| value_of(row, &m.name).map(|v| v.key.clone()).unwrap_or_default()));
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// A number for reading: integers as such, else four decimals, or four
/// significant digits below 0.01 (p-values, small SDs).
fn show(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e9 {
        format!("{x:.0}")
    } else if x.abs() < 0.01 {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

fn markdown(s: &Summary) -> String {
    let mut doc = Document::default();
    let varied: Vec<String> = s.varied.iter().map(|(p, v)| format!("`{p}` = {}", v.join(", "))).collect();
    doc.paragraph(Rich::new().text(format!(
        "Sweep `{}` of `{}` over {} ({} members{}). Each value is one member's result; the spread is over the members, and the interval is the {CI_METHOD}: it locates the mean over such runs, not one run's uncertainty.",
        s.sweep,
        s.pipeline,
        varied.join("; "),
        s.members.len(),
        if s.fixed.is_empty() { String::new() } else { format!(", with {}", s.fixed.join(" ")) }
    )));
    let mut columns: Vec<Cell> = vec!["metric".into()];
    columns.extend(s.members.iter().map(|m| Cell::from(m.name.clone())));
    columns.extend(["k", "mean +- SD", "min - max", "95% CI of the mean"].map(Cell::from));
    let mut table = Table::new("Metrics over the members", columns);
    for row in &s.metrics {
        let mut cells: Vec<Cell> = vec![Rich::new().code(row.id.clone()).into()];
        cells.extend(s.members.iter().map(|m| value_of(row, &m.name).map_or_else(Cell::blank, |v| show(v.value).into())));
        match &row.spread {
            Some(sp) => {
                cells.push(sp.k.to_string().into());
                cells.push(sp.sd.map_or_else(|| show(sp.mean), |sd| format!("{} +- {}", show(sp.mean), show(sd))).into());
                cells.push(format!("{} - {}", show(sp.min), show(sp.max)).into());
                cells.push(sp.ci95.map_or_else(Cell::blank, |(lo, hi)| format!("{} - {}", show(lo), show(hi)).into()));
            }
            None => cells.extend([Cell::blank(), Cell::blank(), Cell::blank(), Cell::blank()]),
        }
        table.rows.push(cells);
    }
    doc.push(Block::Table(table));
    let mut members = Table::with_headers("Members", &["member", "overrides", "status", "run", "results"]);
    for m in &s.members {
        let run = m.run.as_ref().map_or_else(Cell::blank, |r| Rich::new().code(r.clone()).into());
        members.rows.push(vec![m.name.clone().into(), Rich::new().code(m.overrides.join(" ")).into(), m.status.into(), run, m.results.clone().into()]);
    }
    doc.push(Block::Table(members));
    // The actions behind the values: one per node and member.
    let mut sources = Table::with_headers("Where the values come from", &["node", "member", "action key"]);
    let mut seen = std::collections::BTreeSet::new();
    for v in s.metrics.iter().flat_map(|r| &r.values) {
        if seen.insert((v.node.as_str(), v.member.as_str())) {
            sources.rows.push(vec![Rich::new().code(v.node.clone()).into(), v.member.clone().into(), Rich::new().code(v.key.clone()).into()]);
        }
    }
    doc.push(Block::Table(sources));
    doc.paragraph(
        Rich::new()
            .text("The lineage of a member's value: ")
            .code(format!("radpipe lineage {} <metric> --run <run>", s.pipeline))
            .text("; summary.csv and summary.json name the action key of every value."),
    );
    doc.markdown(false)
}

/// Write `summary.{csv,md,json}` into `dir` (each file atomically).
pub fn write(store: &Store, summary: &Summary, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    store.write_atomic(&dir.join("summary.csv"), &csv_bytes(summary).map_err(io::Error::other)?)?;
    store.write_atomic(&dir.join("summary.md"), markdown(summary).as_bytes())?;
    let mut json = serde_json::to_vec_pretty(summary).map_err(io::Error::other)?;
    json.push(b'\n');
    store.write_atomic(&dir.join("summary.json"), &json)
}
