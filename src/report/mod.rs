//! The report: figures as SVG (`svg`), the typed table model the statistics
//! stages write (`table`: tables whose numbers cite metric ids, rendered as
//! Markdown and HTML), and the HTML builder of the `report` stage's page
//! (`html`), in which every number links to the metric it shows and that
//! metric's lineage.

pub mod html;
pub mod svg;
pub mod table;

/// Escape text for HTML and SVG (XML).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
