//! The HTML of the `report` stage: one self-contained page (inline SVG, PNG
//! as data URIs, no script, nothing fetched). Tables arrive as the Markdown the
//! stages write, with every number cited (`[[m:<id>|<text>]]`); each becomes a
//! link to the metric's entry, which links to its lineage.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::esc;

/// Escape a stage's Markdown text, keeping the pieces of HTML stages write
/// on purpose (`<sup>`, `</sup>`, `&nbsp;`).
fn esc_markdown(s: &str) -> String {
    esc(s).replace("&lt;sup&gt;", "<sup>").replace("&lt;/sup&gt;", "</sup>").replace("&amp;nbsp;", "&nbsp;")
}

/// A fragment identifier for `id` under `prefix`: letters, digits, `-` and `_`
/// kept, anything else hex-escaped as `_<hex>_`.
pub fn anchor(prefix: &str, id: &str) -> String {
    let mut out = format!("{prefix}-");
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else {
            let _ = write!(out, "_{:x}_", c as u32);
        }
    }
    out
}

/// A link to metric `id` showing `text`.
pub fn metric_link(id: &str, text: &str) -> String {
    format!("<a class=\"m\" href=\"#{}\" title=\"{}\">{}</a>", anchor("m", id), esc(id), esc(text))
}

/// `code` spans of already-escaped text.
fn code_spans(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() < 3 {
        return s.to_string();
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        match (i % 2, i + 1 == parts.len()) {
            (1, false) => {
                let _ = write!(out, "<code>{p}</code>");
            }
            (1, true) => {
                out.push('`');
                out.push_str(p);
            }
            _ => out.push_str(p),
        }
    }
    out
}

/// Inline Markdown to HTML: citations become metric links (their ids are
/// added to `cited`), code spans become `<code>`.
pub fn inline(text: &str, cited: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    for (piece, id) in super::citations(text) {
        match id {
            Some(id) => {
                out.push_str(&metric_link(&id, &piece));
                cited.insert(id);
            }
            None => out.push_str(&code_spans(&esc_markdown(&piece))),
        }
    }
    out
}

/// The cells of a pipe-table row; a `|` inside a citation does not split.
fn row_cells(row: &str) -> Vec<String> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    let (mut cells, mut cell, mut depth) = (Vec::new(), String::new(), 0usize);
    let chars: Vec<char> = row.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let two = |a: char, b: char| chars[i] == a && chars.get(i + 1) == Some(&b);
        if two('[', '[') {
            depth += 1;
            cell.push_str("[[");
            i += 2;
        } else if two(']', ']') && depth > 0 {
            depth -= 1;
            cell.push_str("]]");
            i += 2;
        } else if chars[i] == '|' && depth == 0 {
            cells.push(cell.trim().to_string());
            cell.clear();
            i += 1;
        } else {
            cell.push(chars[i]);
            i += 1;
        }
    }
    cells.push(cell.trim().to_string());
    cells
}

fn is_separator(row: &str) -> bool {
    row.contains('-') && row.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// The Markdown stages write (pipe tables, paragraphs, notes) as HTML.
pub fn markdown(marked: &str, cited: &mut BTreeSet<String>) -> String {
    let lines: Vec<&str> = marked.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with('|') {
            let start = i;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                i += 1;
            }
            let rows = &lines[start..i];
            out.push_str("<table>\n<thead><tr>");
            for c in row_cells(rows[0]) {
                let _ = write!(out, "<th>{}</th>", inline(&c, cited));
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for r in rows[1..].iter().filter(|r| !is_separator(r.trim())) {
                out.push_str("<tr>");
                for c in row_cells(r) {
                    let _ = write!(out, "<td>{}</td>", inline(&c, cited));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
        } else if line.is_empty() {
            i += 1;
        } else {
            let start = i;
            while i < lines.len() && !lines[i].trim().is_empty() && !lines[i].trim().starts_with('|') {
                i += 1;
            }
            let text: Vec<String> = lines[start..i].iter().map(|l| inline(l.trim(), cited)).collect();
            let _ = writeln!(out, "<p>{}</p>", text.join("<br>\n"));
        }
    }
    out
}

/// The page's style: readable tables and figures, print-friendly.
pub const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}a.m{color:inherit;text-decoration:none;border-bottom:1px dotted #1f77b4}a.m:hover{background:#eef5fb}\
figure{display:inline-block;margin:.5em;vertical-align:top}figcaption{font-size:.8em;color:#555}\
.cam img{width:160px;height:160px;image-rendering:pixelated;margin:2px}code{background:#f6f6f6;padding:0 .2em}\
details{margin:.3em 0}summary{cursor:pointer}.lineage td{font-family:ui-monospace,monospace;font-size:.8em}\
:target{background:#fff6d5}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_with_citations_become_linked_html() {
        let md = "| Cohort | AUC (95% CI) |\n|---|---|\n| internal | [[m:t2/internal/DLS/auc|0.811]] ([[m:t2/internal/DLS/auc|0.70]]–[[m:t2/internal/DLS/auc|0.92]]) |\n\nAUC by `DeLong`; <sup>a</sup> t test.\n";
        let mut cited = BTreeSet::new();
        let html = markdown(md, &mut cited);
        assert_eq!(cited.into_iter().collect::<Vec<_>>(), vec!["t2/internal/DLS/auc".to_string()]);
        assert_eq!(html.matches("<a class=\"m\" href=\"#m-t2_2f_internal_2f_DLS_2f_auc\"").count(), 3);
        assert!(html.contains("<td>internal</td>"));
        assert!(html.contains("<code>DeLong</code>") && html.contains("<sup>a</sup>"));
        assert!(!html.contains("[[m:"));
    }

    #[test]
    fn anchors_keep_distinct_ids_distinct() {
        assert_ne!(anchor("m", "a/b"), anchor("m", "a_b"));
        assert_ne!(anchor("m", "a/b"), anchor("m", "a-b"));
    }
}
