//! The reference pipeline as a user runs it (`pipelines/demo.yaml`, the same
//! graph as `pipelines/hnscc_pdl1.yaml`), on the `tiny` synthetic cohorts with
//! small settings given by `--set`: the end-to-end run, the report (every
//! numeric cell followed to a metric and its action), caching, cohort swaps,
//! incremental growth, per-cohort lineage and byte-identical reruns.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The pipeline, the tiny overrides, then `extra`.
fn tail<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = tiny_args();
    v.extend_from_slice(extra);
    v
}

fn args<'a>(cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd];
    v.extend(tail(extra));
    v
}

fn run(ws: &Workspace, extra: &[&str]) -> RunResult {
    let r = ws.run(&tail(extra));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

/// Every metric of every `metrics.json` under results/, by id.
fn all_metrics(ws: &Workspace) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(ws.path("results")).unwrap() {
        let path = entry.unwrap().path().join("metrics.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            for m in serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap() {
                out.insert(m["id"].as_str().unwrap().to_string(), m.clone());
            }
        }
    }
    out
}

/// Text content of an HTML fragment: tags removed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The cells (`<td>`, `<th>`) of an HTML page, as raw inner HTML, with their
/// column index.
fn cells(html: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for row in html.split("<tr").skip(1) {
        let row = &row[..row.find("</tr>").unwrap_or(row.len())];
        let mut rest = row;
        let mut col = 0;
        while let Some(i) = rest.find("<t") {
            let tag = &rest[i..];
            let close = if tag.starts_with("<td>") {
                "</td>"
            } else if tag.starts_with("<th>") {
                "</th>"
            } else {
                rest = &rest[i + 2..];
                continue;
            };
            let after = &tag[4..];
            let j = after.find(close).unwrap();
            out.push((col, after[..j].to_string()));
            col += 1;
            rest = &after[j..];
        }
    }
    out
}

/// Links to metrics in a cell: (metric id, shown text); and the cell's text outside them.
fn metric_links(cell: &str) -> (Vec<(String, String)>, String) {
    let mut links = Vec::new();
    let mut outside = String::new();
    let mut rest = cell;
    while let Some(i) = rest.find("<a class=\"m\"") {
        outside.push_str(&rest[..i]);
        let a = &rest[i..];
        let title = a.find("title=\"").map(|t| &a[t + 7..]).unwrap();
        let id = title[..title.find('"').unwrap()].to_string();
        let body_start = a.find('>').unwrap() + 1;
        let end = a.find("</a>").unwrap();
        links.push((id, a[body_start..end].to_string()));
        rest = &a[end + 4..];
    }
    outside.push_str(rest);
    (links, text_of(&outside))
}

/// A number in text: digits with a decimal point, or a cell that is only digits.
fn has_number(text: &str) -> bool {
    let t = text.replace("&nbsp;", " ");
    let t = t.trim();
    let chars: Vec<char> = t.chars().collect();
    let decimal = chars.windows(3).any(|w| w[0].is_ascii_digit() && w[1] == '.' && w[2].is_ascii_digit());
    decimal || (!t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '%' || c == ' '))
}

/// Measures every panel, figure, SVG and image of the page (document
/// coordinates) once it has loaded, and writes the result into the page as
/// JSON, for `--dump-dom` to return.
const LAYOUT_PROBE: &str = r#"<script>
window.addEventListener('load', function () {
  var box = function (e) { var b = e.getBoundingClientRect(); return { x: b.left + scrollX, y: b.top + scrollY, w: b.width, h: b.height }; };
  var named = function (sel) { return Array.from(document.querySelectorAll(sel)).map(function (e) { var b = box(e); b.name = e.id || e.getAttribute('data-source') || e.getAttribute('alt') || e.tagName; return b; }); };
  var top = function (id) { var e = document.getElementById(id); return e ? box(e).y : -1; };
  var out = { width: document.documentElement.clientWidth, scroll_width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
    appendix: top('environment'), panels: named('.panel'), figures: named('figure, .panel > svg, .cam img') };
  var pre = document.createElement('pre'); pre.id = 'radpipe-layout'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"#;

/// Chromium, headless, at 1400 x 1000 on `url`, with `extra` arguments; its stdout.
fn chromium(extra: &[&str], url: &str) -> String {
    let mut args = vec!["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = std::process::Command::new("chromium").args(&args).output().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}): install it as .ci/run does: `command -v chromium || (apt-get update && apt-get install -y chromium)`")
    });
    assert!(out.status.success(), "chromium {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report as Chromium lays it out at 1400 px: no two panels overlap;
/// every figure, SVG and image has a size and lies within the page's width
/// (and nothing makes the page scroll sideways); the grids put panels side
/// by side, a figure's row by row, so the figures take far fewer rows than
/// there are panels (the page before this layout stacked every figure in one
/// column). The page's heights are printed, and a screenshot of the part
/// before the appendix is written to the workspace (`layout/report.png`) and
/// to `CARGO_TARGET_TMPDIR/report_layout.png`, for people to look at.
fn report_layout_in_a_browser(ws: &Workspace) {
    let html = ws.read("results/report/index.html");
    ws.write("layout/probe.html", &html.replace("</body>", &format!("{LAYOUT_PROBE}</body>")));
    let url = |path: &str| format!("file://{}", ws.path(path).display());
    let dom = chromium(&["--window-size=1400,1000", "--dump-dom"], &url("layout/probe.html"));
    let start = dom.find("<pre id=\"radpipe-layout\">").expect("the layout probe ran") + "<pre id=\"radpipe-layout\">".len();
    let json = dom[start..start + dom[start..].find("</pre>").unwrap()].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
    let layout: Value = serde_json::from_str(&json).unwrap();
    let rect = |v: &Value| {
        (v["x"].as_f64().unwrap(), v["y"].as_f64().unwrap(), v["w"].as_f64().unwrap(), v["h"].as_f64().unwrap(), v["name"].as_str().unwrap().to_string())
    };
    let width = layout["width"].as_f64().unwrap();
    assert!(layout["scroll_width"].as_f64().unwrap() <= width, "the page scrolls sideways: {} > {width}", layout["scroll_width"]);
    let panels: Vec<_> = layout["panels"].as_array().unwrap().iter().map(rect).collect();
    assert!(panels.len() >= 12 + 4, "Fig. 3, Fig. 5 and four Grad-CAM panels at least: {}", panels.len());
    for (i, a) in panels.iter().enumerate() {
        for b in &panels[i + 1..] {
            let overlap_x = (a.0 + a.2).min(b.0 + b.2) - a.0.max(b.0);
            let overlap_y = (a.1 + a.3).min(b.1 + b.3) - a.1.max(b.1);
            assert!(overlap_x <= 0.5 || overlap_y <= 0.5, "panels {} and {} overlap: {a:?} {b:?}", a.4, b.4);
        }
    }
    let figures = layout["figures"].as_array().unwrap();
    for f in figures.iter().map(rect) {
        assert!(f.2 > 0.0 && f.3 > 0.0, "{} has no size: {f:?}", f.4);
        assert!(f.0 >= 0.0 && f.0 + f.2 <= width + 0.5, "{} lies outside the page's width {width}: {f:?}", f.4);
    }
    // Rows: distinct tops of the panels (rounded to a pixel).
    let rows: BTreeSet<i64> = panels.iter().map(|p| p.1.round() as i64).collect();
    assert!(2 * rows.len() <= panels.len(), "{} panels on {} rows: the figures are not side by side", panels.len(), rows.len());
    // Within a grid of 3 columns, a, b, c share a row, left to right, and d is under a.
    let panel = |name: &str| panels.iter().find(|p| p.4 == name).unwrap_or_else(|| panic!("no panel {name}"));
    let (a, b, c, d) = (panel("fig-1-a"), panel("fig-1-b"), panel("fig-1-c"), panel("fig-1-d"));
    assert!(a.1 == b.1 && b.1 == c.1 && a.0 < b.0 && b.0 < c.0, "{a:?} {b:?} {c:?}");
    assert!(d.0 == a.0 && d.1 >= a.1 + a.3, "{a:?} {d:?}");
    let (height, appendix) = (layout["height"].as_f64().unwrap(), layout["appendix"].as_f64().unwrap());
    eprintln!("report layout at 1400 px: page {height} px tall, the appendix from {appendix} px; {} panels on {} rows", panels.len(), rows.len());
    let shot = ws.path("layout/report.png");
    chromium(&[&format!("--window-size=1400,{}", appendix.ceil() as i64), &format!("--screenshot={}", shot.display())], &url("results/report/index.html"));
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 0).unwrap_or(false), "no screenshot written");
    let _ = std::fs::copy(&shot, Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_layout.png"));
}

// One scenario over one trained workspace (training it once per step would
// multiply the test's time); each step is commented.
#[allow(clippy::too_many_lines)]
#[test]
fn the_demo_pipeline_end_to_end_report_swaps_growth_and_lineage() {
    let ws = tiny_workspace();
    let first = run(&ws, &[]);
    for stage in [
        "ingest",
        "split",
        "register[E-0001]",
        "resample[E-0001]",
        "slice[E-0001]",
        "embed.fit",
        "pca.fit",
        "fuse.fit",
        "table1",
        "table2",
        "pfs_by_dls",
        "pfs_by_pdl1",
        "dcb",
        "report",
    ] {
        assert!(first.executed.contains(stage), "{stage} did not run: {:?}", first.executed);
    }

    // The report: one self-contained page with every table and figure.
    let html = ws.read("results/report/index.html");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<script"), "the report must open offline");
    assert!(html.contains("<nav id=\"contents\">"), "the report lacks its table of contents");
    for section in [
        "id=\"s-table1\"",
        "id=\"s-table2\"",
        "id=\"s-pfs_by_dls\"",
        "id=\"s-dcb\"",
        "id=\"s-table_s2\"",
        "id=\"fig-1\"",
        "id=\"fig-2\"",
        "id=\"other-figures\"",
        "id=\"study-vs-run\"",
        "id=\"gradcam\"",
        "id=\"environment\"",
        "id=\"lineage\"",
    ] {
        assert!(html.contains(section), "the report lacks {section}");
        assert!(html.contains(&format!("href=\"#{}", &section[4..])), "the table of contents lacks {section}");
    }
    // Tables, figure grids, Grad-CAM, study vs this run, then the appendix.
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s}"));
    let order = ["id=\"s-table1\"", "id=\"fig-1\"", "id=\"gradcam\"", "id=\"study-vs-run\"", "id=\"environment\"", "id=\"metrics\"", "id=\"lineage\""];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "sections out of order: {:?}", order.map(at));
    // Fig. 3 and Fig. 5 as lettered grids; every figure of the inputs is on
    // the page once, in a grid or under "Other figures". (On these tiny
    // cohorts a validation cohort may fall on one side of the DLS cut-off:
    // survival then notes it instead of drawing its curves, and the panel says so.)
    for (panel, source) in [
        ("fig-1-a", "table2/roc_train"),
        ("fig-1-c", "table2/calibration_train"),
        ("fig-1-d", "table2/roc_internal"),
        ("fig-2-a", "table2/roc_external"),
        ("fig-2-d", "pfs_by_dls/km_internal"),
        ("fig-2-f", "dcb/roc_ici"),
    ] {
        assert!(html.contains(&format!("id=\"{panel}\" data-source=\"{source}\"")), "the report lacks panel {panel} ({source})");
    }
    for stage in ["table2", "pfs_by_dls", "pfs_by_pdl1", "dcb"] {
        for entry in std::fs::read_dir(ws.path(&format!("results/{stage}"))).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".svg") {
                assert_eq!(html.matches(&format!("data-source=\"{stage}/{stem}\"")).count(), 1, "{stage}/{stem} must be on the page once");
            }
        }
    }
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    // Grad-CAM as Fig. 4: by PD-L1 status and classification at the training cut-off.
    let gradcam = &html[at("id=\"gradcam\"")..at("id=\"study-vs-run\"")];
    let shown = gradcam.matches("data:image/png;base64,").count();
    let empty = gradcam.matches("no (further) patient in this group").count();
    assert_eq!(shown + 9 * empty, 4 * 9, "one patient of each of the four groups, 3 sequences x 3 planes each");
    assert!(shown > 0);
    for group in ["True positive: ", "False negative: ", "True negative: ", "False positive: "] {
        assert!(gradcam.contains(group), "Grad-CAM lacks {group}");
    }
    assert_eq!(gradcam.matches("title=\"table2/train/DLS/threshold\"").count(), 1 + shown / 9, "the cut-off, cited in the introduction and each panel");
    // Study vs this run: each side's CI method, and what synthetic cohorts mean.
    let compared = &html[at("id=\"study-vs-run\"")..at("id=\"environment\"")];
    assert!(compared.contains("<th>Study's CI method</th>") && compared.contains("<td>not stated</td>") && compared.contains("<td>DeLong</td>"), "{compared}");
    assert!(compared.contains("<code>data/design.txt</code>): agreement with the study reflects the generator's design"), "{compared}");
    assert!(html.contains("libtorch"), "the report states the environment");
    for t in ["table1", "table2", "pfs_by_dls", "dcb"] {
        assert!(
            ws.path(&format!("results/report/tables/{t}.md")).is_file() && ws.path(&format!("results/report/tables/{t}.csv")).is_file(),
            "{t} as Markdown and CSV"
        );
    }

    // Every numeric cell of the report (before the appendix) links to a
    // metric of some metrics.json, whose action is in the store, and the
    // link's target exists in the page.
    let metrics = all_metrics(&ws);
    let body = &html[..html.find("<h2 id=\"metrics\">").unwrap()];
    let mut followed = 0;
    for (col, cell) in cells(body) {
        let (links, outside) = metric_links(&cell);
        // The first two columns label rows (cohort, score, group, category),
        // and a group or category may be a value such as `0` or `1`.
        let label = col < 2 && !outside.contains('.');
        assert!(label || !has_number(&outside), "a number without a link in cell {cell:?}");
        for (id, shown) in links {
            assert!(has_number(&shown) || shown.starts_with("&lt;0.") || shown == "NR", "{id}: {shown:?}");
            let m = metrics.get(&id).unwrap_or_else(|| panic!("{id} is in no metrics.json"));
            let key = m["lineage"].as_str().unwrap();
            assert!(ws.path(&format!(".radpipe/actions/{key}.json")).is_file(), "{id}: action {key} is not in the store");
            let anchor: String = format!(
                "m-{}",
                id.chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_string() } else { format!("_{:x}_", c as u32) })
                    .collect::<String>()
            );
            assert!(html.contains(&format!("id=\"{anchor}\"")), "{id}: no entry #{anchor} in the page");
            followed += 1;
        }
    }
    assert!(followed > 300, "only {followed} numbers followed");
    // Table 2 is complete on the page: for every cohort and score, each cell of
    // the study's Table 2 and its counts and calibration, linked to its metric.
    let cited: BTreeSet<String> = cells(body).iter().flat_map(|(_, c)| metric_links(c).0).map(|(id, _)| id).collect();
    for cohort in ["train", "internal", "external"] {
        for score in ["DLS", "T1WI", "T2WI", "CE-T1WI"] {
            for metric in [
                "auc",
                "prevalence",
                "threshold",
                "accuracy",
                "sensitivity",
                "specificity",
                "ppv",
                "npv",
                "tp",
                "fp",
                "tn",
                "fn",
                "brier",
                "calibration_intercept",
                "calibration_slope",
            ] {
                let id = format!("table2/{cohort}/{score}/{metric}");
                if metric.starts_with("calibration_") && !metrics.contains_key(&id) {
                    // A recalibration that cannot be fitted (separation) is said on the page.
                    assert!(html.contains(&format!("{cohort}/{score}: no calibration intercept/slope")), "{id}: neither on the page nor explained");
                    continue;
                }
                assert!(cited.contains(&id), "Table 2 on the page lacks {id}");
                let ci = metrics[&id]["ci"].as_array().map(Vec::len);
                let with_ci = ["auc", "prevalence", "accuracy", "sensitivity", "specificity", "ppv", "npv", "calibration_intercept", "calibration_slope"];
                assert!(!with_ci.contains(&metric) || ci == Some(2), "{id} has its 95% CI");
            }
        }
    }
    assert!(html.contains("train (in-sample)"), "the training rows are marked in-sample");
    // The survival table's cut-off has the table's 3 decimals (metrics keep full precision).
    let km = ws.read("results/pfs_by_dls/table.md");
    let cut = km.split("`fuse.dls` >= ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("no cut-off in {km}"));
    assert!(cut.len() == 5 && cut.parse::<f64>().is_ok(), "cut-off `{cut}` is not 0.xxx");
    assert!(html.contains("P (paired DeLong, unadjusted)"), "the DeLong comparisons say they are unadjusted");
    // DCB: derived by its definition, the DLS compared between the classes, no calibration of a PD-L1 probability against DCB.
    for metric in ["auc", "sensitivity", "specificity", "mwu_p"] {
        assert!(cited.contains(&format!("dcb/ici/DLS/{metric}")), "dcb/ici/DLS/{metric} on the page");
    }
    assert!(!metrics.contains_key("dcb/ici/DLS/brier"), "the DLS is not a probability of DCB");
    assert!(html.contains("not of `pfs_gt_6m`"), "the page says why the DCB row has no calibration");
    // Published values sit beside this run's.
    let published: Value = serde_json::from_str(&ws.read("results/report/metrics.json")).unwrap();
    assert!(published.as_array().unwrap().iter().any(|m| m["id"] == "report/reference/table2/external/DLS/auc" && m["value"] == 0.803));
    // The generator's design file is a source of the report: its digest is in the key.
    let action: Value = serde_json::from_str(&ws.read(&format!(".radpipe/actions/{}.json", published[0]["lineage"].as_str().unwrap()))).unwrap();
    assert!(action["material"]["sources"]["data/design.txt"].is_string(), "{}", action["material"]);

    // The page as a browser lays it out: panels side by side, none over another.
    report_layout_in_a_browser(&ws);

    // A second run executes nothing.
    let again = run(&ws, &[]);
    assert!(again.executed.is_empty(), "{:?}", again.executed);

    // Lineage of an external AUC: every source file of the external patients,
    // none of another cohort's patients; the trained models by key.
    let out = ws.radpipe(&["lineage", "pipelines/demo.yaml", "table2/external/DLS/auc", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lineage: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut sources = BTreeSet::new();
    let mut models = BTreeSet::new();
    for step in lineage["steps"].as_array().unwrap() {
        for node in step["nodes"].as_array().unwrap() {
            sources.extend(node["sources"].as_object().unwrap().keys().cloned());
            if node["node"].as_str().unwrap().contains(".fit") {
                models.insert(node["node"].as_str().unwrap().to_string());
            }
        }
    }
    let external: Vec<String> = ws.read("data/external/clinical.csv").lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect();
    for p in &external {
        for f in ["t1", "t2", "ce_t1", "roi"] {
            assert!(sources.contains(&format!("data/external/images/{p}/{f}.nii.gz")), "{p}/{f} missing from the lineage");
        }
    }
    let images: Vec<&String> = sources.iter().filter(|s| s.ends_with(".nii.gz")).collect();
    assert_eq!(images.len(), 4 * external.len(), "only the external patients' images: {images:?}");
    assert_eq!(models, ["embed.fit", "fuse.fit", "pca.fit"].iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    assert!(sources.contains("data/external/clinical.csv"));

    // Another synthetic centre, to swap in and to grow from.
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "other", "--seed", "99"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Predict: a new patient's folder scored with the trained models; nothing
    // is retrained, and the pipeline's next run has nothing to do.
    std::fs::create_dir_all(ws.path("incoming/P-NEW")).unwrap();
    for f in ["t1", "t2", "ce_t1", "roi"] {
        std::fs::copy(ws.path(&format!("other/external/images/E-0003/{f}.nii.gz")), ws.path(&format!("incoming/P-NEW/{f}.nii.gz"))).unwrap();
    }
    let out = ws.radpipe(&args("predict", &["--patient", "incoming/P-NEW", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dls = p["dls"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&dls), "{p}");
    let t = p["threshold"].as_f64().unwrap();
    assert_eq!(p["threshold"], metrics["table2/train/DLS/threshold"]["value"], "the training Youden threshold");
    assert_eq!(p["class"].as_str().unwrap().starts_with("high"), dls >= t);
    assert_eq!(p["gradcam"].as_array().unwrap().len(), 9, "{p}");
    let executed: Vec<&str> = p["executed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(executed.contains(&"fuse[P-NEW]") && executed.contains(&"register[P-NEW]"), "{executed:?}");
    assert!(executed.iter().all(|n| n.ends_with("[P-NEW]")), "only the new patient's nodes run: {executed:?}");
    let bad = ws.radpipe(&args("predict", &["--patient", "other/external/clinical.csv"]));
    assert_eq!(bad.status.code(), Some(2), "a file is not a patient folder");
    std::fs::remove_file(ws.path("incoming/P-NEW/t2.nii.gz")).unwrap();
    let bad = ws.radpipe(&args("predict", &["--patient", "incoming/P-NEW"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("missing t2.nii.gz"), "{}", stderr(&bad));
    assert!(run(&ws, &[]).executed.is_empty(), "predict leaves the pipeline's runs alone");

    // Growth: two new patients in the external cohort preprocess and score
    // only them, and rerun the cohort-level nodes; no model is refitted.
    let new = ["E-0901", "E-0902"];
    let mut table = ws.read("data/external/clinical.csv");
    let other = ws.read("other/external/clinical.csv");
    for (i, p) in new.iter().enumerate() {
        let row = other.lines().nth(1 + i).unwrap();
        table.push_str(&format!("{p}{}\n", &row[row.find(',').unwrap()..]));
        let from = ws.path(&format!("other/external/images/E-000{}", i + 1));
        std::fs::create_dir_all(ws.path(&format!("data/external/images/{p}"))).unwrap();
        for f in std::fs::read_dir(from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), ws.path(&format!("data/external/images/{p}/{}", f.file_name().to_string_lossy()))).unwrap();
        }
    }
    ws.write("data/external/clinical.csv", &table);
    let status = stdout(&ws.radpipe(&args("status", &["--nodes"])));
    assert!(status.contains("E-0901"), "status names the new patients: {status}");
    let grown = run(&ws, &[]);
    let per_patient: BTreeSet<&String> = grown.executed.iter().filter(|n| n.contains('[') && !n.contains(".fit")).collect();
    let expected: BTreeSet<String> =
        new.iter().flat_map(|p| ["ingest", "register", "resample", "slice", "embed", "pca", "fuse"].map(|s| format!("{s}[{p}]"))).collect();
    assert_eq!(per_patient.into_iter().cloned().collect::<BTreeSet<_>>(), expected, "exactly the new patients' nodes: {:?}", grown.executed);
    assert!(!grown.executed.iter().any(|n| n.ends_with(".fit") || n.contains(".fit[")), "no model refits: {:?}", grown.executed);
    for node in ["table2", "report"] {
        assert!(grown.executed.contains(node), "{node} must rerun for the grown cohort");
    }

    // Swap: another centre as the external cohort; no model refits, and
    // institution 1's patients are not preprocessed again.
    let swap = ["--set", "cohorts.external.table=other/external/clinical.csv", "--set", "cohorts.external.images=other/external/images"];
    let status = stdout(&ws.radpipe(&args("status", &[&swap[..], &["--nodes"]].concat())));
    assert!(status.contains("external"), "{status}");
    let swapped = run(&ws, &swap);
    assert!(!swapped.executed.iter().any(|n| n.ends_with(".fit") || n.contains(".fit[")), "no model refits: {:?}", swapped.executed);
    assert!(!swapped.executed.iter().any(|n| n.contains("[I1-") || n.contains("[ICI-")), "other cohorts are not preprocessed again: {:?}", swapped.executed);
    assert!(swapped.executed.contains("register[E-0001]") && swapped.executed.contains("table2"), "{:?}", swapped.executed);
}

#[test]
fn two_clean_runs_give_byte_identical_metrics_and_tables() {
    let a = tiny_workspace();
    let b = tiny_workspace();
    run(&a, &[]);
    run(&b, &[]);
    for stage in ["table1", "table2", "pfs_by_dls", "dcb", "report"] {
        for file in ["metrics.json", "table.md", "table.csv"] {
            let (pa, pb) = (a.path(&format!("results/{stage}/{file}")), b.path(&format!("results/{stage}/{file}")));
            if pa.exists() || pb.exists() {
                assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap(), "{stage}/{file} differs between two clean runs");
            }
        }
    }
    assert_eq!(a.read("results/report/index.html"), b.read("results/report/index.html"));
}

#[test]
fn report_settings_that_cannot_work_are_refused_before_anything_runs() {
    let ws = tiny_workspace();
    let check = |set: &str, needle: &str| {
        let out = ws.radpipe(&args("validate", &["--set", set]));
        assert_eq!(out.status.code(), Some(2), "{set}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{set}: expected `{needle}` in {}", stderr(&out));
    };
    check("stages.report.gradcam.stage=slice", "`slice` is not among the report's inputs");
    check("stages.report.gradcam.score=dls", "score `dls`: write `<stage>.<name>`");
    check("stages.report.reference.0.metric=table3/external/DLS/auc", "metric `table3/external/DLS/auc` belongs to no input of the report");
    check("stages.report.gradcam.patients=0", "patients must be at least 1");
    check("stages.report.gradcam.label=pdl1", "`gradcam.label`: `pdl1` is neither the ingest stage's label nor a column of its cohorts' tables");
    check("stages.report.input.0=split", "`gradcam.label: pdl1_high` is read from the ingested table, but no ingest stage is among the report's inputs");
    check(
        "stages.report.gradcam.threshold=table3/train/DLS/threshold",
        "`gradcam.threshold`: metric `table3/train/DLS/threshold` belongs to no input of the report",
    );
    check("stages.report.gradcam.select=by_score", "`gradcam.label` is used only with `select: by_label`");
    check("stages.report.figures.0.panels.0=slice/roc_train", "`figures.0.panels.0`: panel `slice/roc_train`: `slice` is not among the report's inputs");
    check("stages.report.figures.1.panels.0=table2/roc_train", "`figures.1.panels.0`: panel `table2/roc_train` is placed twice (also at `figures.0.panels.0`)");
    check("stages.report.figures.0.panels.1=table2/roc_internal.svg", "`figures.0.panels.1`: panel `table2/roc_internal.svg`: name the figure without `.svg`");
    check("stages.report.figures.0.columns=0", "`figures.0.columns` must be at least 1");
    assert!(!ws.path("results").exists(), "validate runs nothing");
    // Predict scores new patients only, and never trains: without trained
    // models it refuses, naming them.
    let out = ws.radpipe(&args("predict", &["--patient", "data/external/images/E-0001"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("patient E-0001 is already in cohort `external`"), "{}", stderr(&out));
    std::fs::create_dir_all(ws.path("incoming/NEW-1")).unwrap();
    for f in ["t1", "t2", "ce_t1", "roi"] {
        std::fs::copy(ws.path(&format!("data/external/images/E-0001/{f}.nii.gz")), ws.path(&format!("incoming/NEW-1/{f}.nii.gz"))).unwrap();
    }
    let out = ws.radpipe(&args("predict", &["--patient", "incoming/NEW-1"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run the pipeline first"), "{}", stderr(&out));
    run(&ws, &["--only", "split"]);
    let out = ws.radpipe(&args("predict", &["--patient", "incoming/NEW-1"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("predict never trains") && stderr(&out).contains("embed.fit"), "{}", stderr(&out));
    assert!(!ws.path("results/register").exists(), "nothing ran for the new patient");
}
