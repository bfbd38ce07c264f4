//! The HTML of the `report` stage: one self-contained page (inline SVG, PNG
//! as data URIs, no script, nothing fetched), built as a tree of typed nodes:
//! elements, lettered panel grids for figures, and the page style.
//! Text and attribute values are escaped when the tree is written, so a
//! title, label or table cell can never become markup; tag and attribute
//! names are `&'static str`, never data.

use std::fmt::Write;

use super::esc;

/// A node of an HTML tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An element with its attributes and children.
    Element(Element),
    /// Text, escaped when written.
    Text(String),
    /// A named character reference such as `nbsp`, written `&nbsp;`.
    Entity(&'static str),
    /// Markup written as it is: only for documents this pipeline's stages
    /// wrote as markup themselves (their SVG figures).
    Trusted(String),
}

impl Node {
    /// A text node.
    pub fn text(s: impl Into<String>) -> Node {
        Node::Text(s.into())
    }

    /// Append this node's HTML to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Node::Element(e) => e.write_to(out),
            Node::Text(t) => out.push_str(&esc(t)),
            Node::Entity(name) => {
                let _ = write!(out, "&{name};");
            }
            Node::Trusted(markup) => out.push_str(markup),
        }
    }
}

impl From<Element> for Node {
    fn from(e: Element) -> Node {
        Node::Element(e)
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::Text(s.to_string())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Node {
        Node::Text(s)
    }
}

/// An HTML element: `<name attr="value">children</name>`, or `<name>` alone
/// for a void element (`br`, `img`, `meta`).
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Node>,
    void: bool,
}

impl Element {
    /// An element with children.
    pub fn new(name: &'static str) -> Element {
        Element { name, attrs: Vec::new(), children: Vec::new(), void: false }
    }

    /// A void element: no children, no closing tag.
    pub fn void(name: &'static str) -> Element {
        Element { void: true, ..Element::new(name) }
    }

    /// Add an attribute (its value is escaped when written).
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Element {
        self.attrs.push((name, value.into()));
        self
    }

    /// Add a child node.
    pub fn child(mut self, node: impl Into<Node>) -> Element {
        self.push(node);
        self
    }

    /// Add child nodes.
    pub fn children(mut self, nodes: impl IntoIterator<Item = Node>) -> Element {
        self.children.extend(nodes);
        self
    }

    /// Add a child node in place.
    pub fn push(&mut self, node: impl Into<Node>) {
        self.children.push(node.into());
    }

    /// Append this element's HTML to `out`.
    pub fn write_to(&self, out: &mut String) {
        let _ = write!(out, "<{}", self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", esc(v));
        }
        out.push('>');
        if self.void {
            return;
        }
        for c in &self.children {
            c.write_to(out);
        }
        let _ = write!(out, "</{}>", self.name);
    }

    /// This element's HTML.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }
}

/// Nodes' HTML, one after another.
pub fn render(nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        n.write_to(&mut out);
    }
    out
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
pub fn metric_link(id: &str, text: &str) -> Element {
    Element::new("a").attr("class", "m").attr("href", format!("#{}", anchor("m", id))).attr("title", id).child(text)
}

/// The letter of panel `i` (0-based) of a figure: `a` to `z`, then `aa`, `ab`...
pub fn letter(i: usize) -> String {
    let mut out = Vec::new();
    let mut n = i + 1;
    while n > 0 {
        n -= 1;
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A grid of panels (CSS grid), `columns` a row; `None`: as many as fit.
pub fn grid(columns: Option<usize>, panels: Vec<Element>) -> Element {
    let mut grid = Element::new("div").attr("class", "grid");
    if let Some(c) = columns {
        grid = grid.attr("style", format!("grid-template-columns:repeat({c},minmax(0,1fr))"));
    }
    grid.child("\n").children(panels.into_iter().flat_map(|p| [Node::from(p), Node::text("\n")]))
}

/// A panel's caption: its letter in bold, then `caption`.
pub fn panel_caption(letter: &str, caption: Vec<Node>) -> Element {
    Element::new("figcaption").child(Element::new("b").attr("class", "letter").child(letter)).child(" ").children(caption)
}

/// The page's style: readable tables, figures as grids of panels that scale
/// to their cell (inline SVG with a viewBox at 100% width), print-friendly.
pub const STYLE: &str =
    "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}a.m{color:inherit;text-decoration:none;border-bottom:1px dotted #1f77b4}a.m:hover{background:#eef5fb}\
.wide{overflow-x:auto}nav ol{margin:.3em 0}nav li{margin:.1em 0}\
figure{margin:.5em 0}figcaption{font-size:.85em;color:#444}p.caption{font-size:.9em;color:#333;margin-top:0}\
.grid{display:grid;gap:1em;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));align-items:start;margin:.5em 0}\
.panel{margin:0;min-width:0}.panel svg{display:block;width:100%;height:auto}b.letter{font-size:1.15em;margin-right:.2em}\
.panel.empty{border:1px dashed #bbb;padding:.5em;color:#555;min-height:4em}\
.cam .imgs{display:grid;gap:2px;align-items:center;font-size:.75em;color:#555}.cam img{width:100%;height:auto;image-rendering:pixelated}\
code{background:#f6f6f6;padding:0 .2em}\
details{margin:.3em 0}summary{cursor:pointer}.lineage td{font-family:ui-monospace,monospace;font-size:.8em;overflow-wrap:anywhere}\
.metrics{font-size:.8em;line-height:1.25}.metrics td{padding:.1em .4em}\
:target{background:#fff6d5}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_title_and_label_stay_text() {
        let title = "<script>alert(1)</script>";
        let label = "\"&'<>";
        let page = Element::new("h1").child(title).render();
        assert_eq!(page, "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>");
        let cell = Element::new("td").attr("title", label).child(label).render();
        assert_eq!(cell, "<td title=\"&quot;&amp;'&lt;&gt;\">&quot;&amp;'&lt;&gt;</td>");
        let link = metric_link(label, title).render();
        assert!(!link.contains("<script") && !link.contains("\"&'"), "{link}");
    }

    #[test]
    fn void_elements_and_entities() {
        let p = Element::new("p").child("a").child(Element::void("br")).child(Node::Entity("nbsp")).render();
        assert_eq!(p, "<p>a<br>&nbsp;</p>");
    }

    #[test]
    fn letters_run_a_to_z_then_aa() {
        let l: Vec<String> = [0, 1, 25, 26, 27, 51, 52].iter().map(|&i| letter(i)).collect();
        assert_eq!(l, ["a", "b", "z", "aa", "ab", "az", "ba"]);
    }

    #[test]
    fn grids_name_their_columns_and_escape_captions() {
        let g = grid(Some(3), vec![Element::new("figure").attr("class", "panel").child(panel_caption("a", vec![Node::text("<x>")]))]).render();
        assert_eq!(
            g,
            "<div class=\"grid\" style=\"grid-template-columns:repeat(3,minmax(0,1fr))\">\n<figure class=\"panel\"><figcaption><b class=\"letter\">a</b> &lt;x&gt;</figcaption></figure>\n</div>"
        );
        assert_eq!(grid(None, Vec::new()).render(), "<div class=\"grid\">\n</div>");
    }

    #[test]
    fn anchors_keep_distinct_ids_distinct() {
        assert_ne!(anchor("m", "a/b"), anchor("m", "a_b"));
        assert_ne!(anchor("m", "a/b"), anchor("m", "a-b"));
    }
}
