//! The table model of the statistics stages. A stage computes its typed
//! results, builds one [`Document`] from them (its tables, then notes and
//! footnotes), and writes it three ways: `table.md` (for people),
//! `table.linked.md` (each number cited as `[[m:<metric id>|<text>]]`) and
//! `table.json` (the value itself), which the report reads and renders as
//! HTML (every cited number a link to its metric, all text escaped).
//! Citations are data: a [`Span::Cited`] holds the text shown and the id of
//! the metric in the stage's `metrics.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Display;

use super::html::{metric_link, Element, Node};

/// A piece of text in a cell or a paragraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Span {
    /// Plain text.
    Text(String),
    /// A number shown as `text` that cites `metric`, an id of `metrics.json`.
    Cited { text: String, metric: String },
    /// A name set as code (a column, a file, an expression).
    Code(String),
    /// A footnote mark, set as superscript.
    Mark(String),
}

/// Text with citations: a sequence of spans.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rich(pub Vec<Span>);

impl Rich {
    /// Empty text, to add spans to.
    pub fn new() -> Rich {
        Rich::default()
    }

    /// Add plain text (even empty: a cell with empty text is not blank).
    pub fn text(mut self, s: impl Into<String>) -> Rich {
        self.0.push(Span::Text(s.into()));
        self
    }

    /// Add a number citing `metric`.
    pub fn cite(mut self, metric: &str, text: impl Display) -> Rich {
        self.0.push(Span::Cited { text: text.to_string(), metric: metric.to_string() });
        self
    }

    /// Add code.
    pub fn code(mut self, s: impl Into<String>) -> Rich {
        self.0.push(Span::Code(s.into()));
        self
    }

    /// Add a footnote mark.
    pub fn mark(mut self, m: impl Into<String>) -> Rich {
        self.0.push(Span::Mark(m.into()));
        self
    }

    /// Add the spans of `other`.
    pub fn then(mut self, other: Rich) -> Rich {
        self.0.extend(other.0);
        self
    }

    /// The text as shown, without citations or markup (for CSV).
    pub fn plain(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Span::Text(t) | Span::Code(t) | Span::Mark(t) => t.as_str(),
                Span::Cited { text, .. } => text.as_str(),
            })
            .collect()
    }

    /// Markdown; with `linked`, cited numbers as `[[m:<id>|<text>]]`.
    pub fn markdown(&self, linked: bool) -> String {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Span::Text(t) => out.push_str(t),
                Span::Cited { text, metric } if linked => out.push_str(&format!("[[m:{metric}|{text}]]")),
                Span::Cited { text, .. } => out.push_str(text),
                Span::Code(t) => out.push_str(&format!("`{t}`")),
                Span::Mark(m) => out.push_str(&format!("<sup>{m}</sup>")),
            }
        }
        out
    }

    /// HTML nodes; the ids of cited metrics are added to `cited`.
    pub fn html(&self, cited: &mut BTreeSet<String>) -> Vec<Node> {
        self.0
            .iter()
            .map(|s| match s {
                Span::Text(t) => Node::text(t.as_str()),
                Span::Cited { text, metric } => {
                    cited.insert(metric.clone());
                    metric_link(metric, text).into()
                }
                Span::Code(t) => Element::new("code").child(t.as_str()).into(),
                Span::Mark(m) => Element::new("sup").child(m.as_str()).into(),
            })
            .collect()
    }
}

impl From<&str> for Rich {
    fn from(s: &str) -> Rich {
        Rich::new().text(s)
    }
}

impl From<String> for Rich {
    fn from(s: String) -> Rich {
        Rich::new().text(s)
    }
}

/// A table cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// A sub-row's label (a category under its variable), indented.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub indent: bool,
    /// The content; no spans at all is a blank cell (nothing to show there).
    pub content: Rich,
}

impl Cell {
    /// A cell with nothing to show (as opposed to an empty value).
    pub fn blank() -> Cell {
        Cell::default()
    }

    /// An indented label.
    pub fn indented(content: impl Into<Rich>) -> Cell {
        Cell { indent: true, content: content.into() }
    }

    fn markdown(&self, linked: bool) -> String {
        let indent = if self.indent { "&nbsp;&nbsp;" } else { "" };
        format!("{indent}{}", self.content.markdown(linked))
    }

    fn html(&self, cited: &mut BTreeSet<String>) -> Vec<Node> {
        let mut nodes = Vec::new();
        if self.indent {
            nodes.extend([Node::Entity("nbsp"), Node::Entity("nbsp")]);
        }
        nodes.extend(self.content.html(cited));
        nodes
    }
}

impl From<Rich> for Cell {
    fn from(content: Rich) -> Cell {
        Cell { indent: false, content }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Rich::from(s).into()
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Rich::from(s).into()
    }
}

/// A table: a title (what it shows), column headers and rows of cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Cell>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these headers and no rows yet.
    pub fn new(title: impl Into<String>, columns: Vec<Cell>) -> Table {
        Table { title: title.into(), columns, rows: Vec::new() }
    }

    /// A table with plain-text headers and no rows yet.
    pub fn with_headers(title: impl Into<String>, headers: &[&str]) -> Table {
        Table::new(title, headers.iter().map(|&h| Cell::from(h)).collect())
    }

    fn markdown(&self, linked: bool) -> String {
        let row = |cells: &[Cell]| -> String {
            let mut s = String::from("|");
            for c in cells {
                if c.content.0.is_empty() && !c.indent {
                    s.push_str(" |");
                } else {
                    s.push_str(&format!(" {} |", c.markdown(linked)));
                }
            }
            s + "\n"
        };
        let mut out = row(&self.columns);
        out.push('|');
        out.push_str(&"---|".repeat(self.columns.len()));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out
    }

    fn html(&self, cited: &mut BTreeSet<String>) -> Element {
        let mut head = Element::new("tr");
        for c in &self.columns {
            head.push(Element::new("th").children(c.html(cited)));
        }
        let mut body = Element::new("tbody").child("\n");
        for r in &self.rows {
            let mut tr = Element::new("tr");
            for c in r {
                tr.push(Element::new("td").children(c.html(cited)));
            }
            body = body.child(tr).child("\n");
        }
        Element::new("table").child("\n").child(Element::new("thead").child(head)).child("\n").child(body).child("\n")
    }
}

/// A footnote: its mark and its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footnote {
    pub mark: String,
    pub text: String,
}

/// A part of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    Table(Table),
    /// Lines of one paragraph.
    Paragraph(Vec<Rich>),
    /// Footnotes, one a line (none: nothing is shown).
    Footnotes(Vec<Footnote>),
}

/// What a statistics stage shows: tables, notes and footnotes, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub blocks: Vec<Block>,
}

impl Document {
    /// Add a block.
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }

    /// Add a one-line paragraph.
    pub fn paragraph(&mut self, line: impl Into<Rich>) {
        self.blocks.push(Block::Paragraph(vec![line.into()]));
    }

    /// Markdown, blocks apart by an empty line; with `linked`, cited numbers
    /// as `[[m:<id>|<text>]]`.
    pub fn markdown(&self, linked: bool) -> String {
        let blocks: Vec<String> = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Table(t) => t.markdown(linked),
                Block::Paragraph(lines) => lines.iter().map(|l| l.markdown(linked) + "\n").collect(),
                Block::Footnotes(notes) => notes.iter().map(|n| format!("<sup>{}</sup> {}  \n", n.mark, n.text)).collect(),
            })
            .collect();
        blocks.join("\n")
    }

    /// HTML nodes; the ids of cited metrics are added to `cited`.
    pub fn html(&self, cited: &mut BTreeSet<String>) -> Vec<Node> {
        let mut out = Vec::new();
        for b in &self.blocks {
            let lines: Vec<Vec<Node>> = match b {
                Block::Table(t) => {
                    out.extend([t.html(cited).into(), Node::text("\n")]);
                    continue;
                }
                Block::Paragraph(lines) => lines.iter().map(|l| l.html(cited)).collect(),
                Block::Footnotes(notes) => {
                    notes.iter().map(|n| vec![Element::new("sup").child(n.mark.as_str()).into(), Node::text(format!(" {}", n.text))]).collect()
                }
            };
            if lines.is_empty() {
                continue;
            }
            let mut p = Element::new("p");
            for (i, line) in lines.into_iter().enumerate() {
                if i > 0 {
                    p = p.child(Element::void("br")).child("\n");
                }
                p = p.children(line);
            }
            out.extend([p.into(), Node::text("\n")]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::render;

    fn sample() -> Document {
        let mut doc = Document::default();
        let mut t = Table::new("AUC", vec!["Cohort".into(), "AUC (95% CI)".into(), "P".into()]);
        let id = "t2/internal/DLS/auc";
        t.rows.push(vec![
            "internal".into(),
            Rich::new().cite(id, "0.811").text(" (").cite(id, "0.70").text("–").cite(id, "0.92").text(")").into(),
            Rich::new().text("").into(),
        ]);
        t.rows.push(vec![Cell::indented("male"), Cell::blank(), Rich::new().cite("t2/all/sex/p_value", "0.5").mark("a").into()]);
        doc.push(Block::Table(t));
        doc.push(Block::Footnotes(vec![Footnote { mark: "a".into(), text: "t test.".into() }]));
        doc.push(Block::Paragraph(vec![Rich::new().text("AUC by ").code("DeLong").text(";"), "second line".into()]));
        doc
    }

    #[test]
    fn markdown_plain_and_linked() {
        let doc = sample();
        assert_eq!(
            doc.markdown(false),
            "| Cohort | AUC (95% CI) | P |\n|---|---|---|\n| internal | 0.811 (0.70–0.92) |  |\n| &nbsp;&nbsp;male | | 0.5<sup>a</sup> |\n\n<sup>a</sup> t test.  \n\nAUC by `DeLong`;\nsecond line\n"
        );
        assert!(doc
            .markdown(true)
            .contains("| internal | [[m:t2/internal/DLS/auc|0.811]] ([[m:t2/internal/DLS/auc|0.70]]–[[m:t2/internal/DLS/auc|0.92]]) |  |"));
    }

    #[test]
    fn html_links_every_cited_number() {
        let mut cited = BTreeSet::new();
        let html = render(&sample().html(&mut cited));
        assert_eq!(cited.into_iter().collect::<Vec<_>>(), vec!["t2/all/sex/p_value".to_string(), "t2/internal/DLS/auc".to_string()]);
        assert_eq!(html.matches("<a class=\"m\" href=\"#m-t2_2f_internal_2f_DLS_2f_auc\"").count(), 3);
        assert!(html.starts_with("<table>\n<thead><tr><th>Cohort</th><th>AUC (95% CI)</th><th>P</th></tr></thead>\n<tbody>\n<tr><td>internal</td>"), "{html}");
        assert!(html.contains("<tr><td>&nbsp;&nbsp;male</td><td></td><td><a class=\"m\""));
        assert!(html.contains("<p><sup>a</sup> t test.</p>\n<p>AUC by <code>DeLong</code>;<br>\nsecond line</p>\n"), "{html}");
    }

    #[test]
    fn hostile_cells_stay_text() {
        let mut t = Table::new("<script>alert(1)</script>", vec!["\"&'<>".into()]);
        t.rows.push(vec![Rich::new().cite("x\"><script>", "<b>1</b>").code("</code>").into()]);
        let mut doc = Document::default();
        doc.push(Block::Table(t));
        let html = render(&doc.html(&mut BTreeSet::new()));
        assert!(!html.contains("<script") && !html.contains("<b>") && !html.contains("</code></code>"), "{html}");
        assert!(html.contains("<th>&quot;&amp;'&lt;&gt;</th>"), "{html}");
    }

    #[test]
    fn json_round_trip() {
        let doc = sample();
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<Document>(&text).unwrap(), doc);
    }
}
