//! The report: figures as SVG (`svg`), and the HTML page of the `report`
//! stage (`html`), in which every number links to the metric it shows and
//! that metric's lineage. Tables reach the report as Markdown whose numbers are
//! cited as `[[m:<metric id>|<text>]]` (`stages::study::cite`).

pub mod html;
pub mod svg;

/// Escape text for HTML and SVG (XML).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Split cited text into pieces: `(text, Some(metric id))` for a cited number,
/// `(text, None)` between them. Unterminated marks stay text.
pub fn citations(marked: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = marked;
    while let Some(start) = rest.find("[[m:") {
        let Some(len) = rest[start..].find("]]") else { break };
        let inner = &rest[start + 4..start + len];
        let Some((id, text)) = inner.split_once('|') else { break };
        if start > 0 {
            out.push((rest[..start].to_string(), None));
        }
        out.push((text.to_string(), Some(id.to_string())));
        rest = &rest[start + len + 2..];
    }
    if !rest.is_empty() {
        out.push((rest.to_string(), None));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn citations_split_text_and_numbers() {
        let parts = super::citations("| a | [[m:t/x/auc|0.811]] ([[m:t/x/auc_lo|0.70]]) | [[m:bad");
        assert_eq!(parts[1], ("0.811".to_string(), Some("t/x/auc".to_string())));
        assert_eq!(parts[3], ("0.70".to_string(), Some("t/x/auc_lo".to_string())));
        let plain: String = parts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(plain, "| a | 0.811 (0.70) | [[m:bad");
    }
}
