//! Line charts as hand-written SVG (ROC, calibration, decision and Kaplan-Meier
//! curves). Written by hand rather than with `plotters`: the charts need only
//! axes, polylines, a legend and a table of numbers at risk, and this keeps the
//! build free of a plotting crate and its font stack (SVG text is rendered by
//! the viewer). Output is deterministic, so figures cache like other outputs.

use std::fmt::Write;

use super::esc;

/// One curve.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw as a right-continuous step function (Kaplan-Meier).
    pub step: bool,
    pub dashed: bool,
}

/// A shaded band between a lower and an upper curve (a confidence band), in
/// the colour of one of the chart's series, drawn under the curves.
pub struct Band {
    /// The series whose colour the band takes (its index in `Chart::series`).
    pub series: usize,
    /// (x, lower, upper), in x order; points with a non-finite value are skipped.
    pub points: Vec<(f64, f64, f64)>,
    /// Right-continuous steps (a Kaplan-Meier band).
    pub step: bool,
}

/// A chart: axes over fixed ranges, curves, and optional rows of numbers under
/// the x axis (numbers at risk, one row per series, at the x ticks).
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub series: Vec<Series>,
    pub table: Vec<(String, Vec<String>)>,
    pub table_title: String,
}

const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/// About five round tick positions covering [lo, hi].
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// [lo, hi] widened to whole tick steps, so the last tick is not inside the data.
pub fn nice_range(lo: f64, hi: f64) -> (f64, f64) {
    let t = ticks(lo, hi);
    if t.len() < 2 {
        return (lo, hi);
    }
    let step = t[1] - t[0];
    ((lo / step).floor() * step, (hi / step - 1e-9).ceil() * step)
}

fn fmt_tick(t: f64) -> String {
    let s = format!("{:.4}", t);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

impl Chart {
    pub fn render(&self) -> String {
        self.render_with_bands(&[])
    }

    /// The chart with shaded `bands` under its curves.
    pub fn render_with_bands(&self, bands: &[Band]) -> String {
        let (w, plot_h) = (640.0, 400.0);
        let (left, top, right) = (70.0, 40.0, 170.0);
        let table_h = if self.table.is_empty() { 0.0 } else { 30.0 + 18.0 * self.table.len() as f64 };
        let h = top + plot_h + 50.0 + table_h;
        let pw = w - left - right;
        let (x0, x1) = self.x_range;
        let (y0, y1) = self.y_range;
        let sx = |x: f64| left + (x.clamp(x0, x1) - x0) / (x1 - x0).max(1e-300) * pw;
        let sy = |y: f64| top + plot_h - (y.clamp(y0, y1) - y0) / (y1 - y0).max(1e-300) * plot_h;
        let mut s = String::new();
        let _ =
            writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#);
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#, left + pw / 2.0, esc(&self.title));
        let _ = writeln!(s, r#"<rect x="{left}" y="{top}" width="{pw}" height="{plot_h}" fill="none" stroke="black"/>"#);
        let xt = ticks(x0, x1);
        for t in &xt {
            let x = sx(*t);
            let _ = writeln!(
                s,
                r#"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="black"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"#,
                top + plot_h,
                top + plot_h + 5.0,
                top + plot_h + 18.0,
                fmt_tick(*t)
            );
        }
        for t in ticks(y0, y1) {
            let y = sy(t);
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{y:.2}" x2="{left}" y2="{y:.2}" stroke="black"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"#,
                left - 5.0,
                left - 8.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#, left + pw / 2.0, top + plot_h + 36.0, esc(&self.x_label));
        let _ = writeln!(
            s,
            r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
            top + plot_h / 2.0,
            top + plot_h / 2.0,
            esc(&self.y_label)
        );
        write_bands(&mut s, &sx, &sy, bands);
        self.write_series(&mut s, &sx, &sy, (left + pw, top));
        if !self.table.is_empty() {
            self.write_table(&mut s, &sx, &xt, top + plot_h + 60.0);
        }
        s.push_str("</svg>\n");
        s
    }

    /// The curves, and their legend right of the plot (from `legend` = (x, y)).
    fn write_series(&self, s: &mut String, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64, legend: (f64, f64)) {
        let (legend_x, top) = legend;
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut pts: Vec<(f64, f64)> = Vec::new();
            for (k, &(x, y)) in series.points.iter().enumerate() {
                if !(x.is_finite() && y.is_finite()) {
                    continue;
                }
                if series.step && k > 0 {
                    if let Some(&(_, py)) = pts.last() {
                        pts.push((x, py));
                    }
                }
                pts.push((x, y));
            }
            let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y))).collect();
            let dash = if series.dashed { r#" stroke-dasharray="5,4""# } else { "" };
            let _ = writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{}"/>"#, path.join(" "));
            let ly = top + 10.0 + 18.0 * i as f64;
            let lx = legend_x + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 20.0,
                lx + 25.0,
                ly + 4.0,
                esc(&series.name)
            );
        }
    }

    /// The rows of numbers under the x axis (at the x ticks `xt`), from `ty` down.
    fn write_table(&self, s: &mut String, sx: &dyn Fn(f64) -> f64, xt: &[f64], ty: f64) {
        let _ = writeln!(s, r#"<text x="4" y="{ty}" font-weight="bold">{}</text>"#, esc(&self.table_title));
        for (r, (name, cells)) in self.table.iter().enumerate() {
            let y = ty + 18.0 * (r + 1) as f64;
            let color = COLORS[r % COLORS.len()];
            let _ = writeln!(s, r#"<text x="4" y="{y}" fill="{color}">{}</text>"#, esc(name));
            for (t, c) in xt.iter().zip(cells) {
                let _ = writeln!(s, r#"<text x="{:.2}" y="{y}" text-anchor="middle">{}</text>"#, sx(*t), esc(c));
            }
        }
    }
}

/// Each band as one translucent polygon: the upper edge left to right, the lower edge back.
fn write_bands(s: &mut String, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64, bands: &[Band]) {
    for band in bands {
        let mut upper: Vec<(f64, f64)> = Vec::new();
        let mut lower: Vec<(f64, f64)> = Vec::new();
        for &(x, lo, hi) in band.points.iter().filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite()) {
            if let (true, Some(&(_, pu)), Some(&(_, pl))) = (band.step, upper.last(), lower.last()) {
                upper.push((x, pu));
                lower.push((x, pl));
            }
            upper.push((x, hi));
            lower.push((x, lo));
        }
        if upper.is_empty() {
            continue;
        }
        let path: Vec<String> = upper.iter().chain(lower.iter().rev()).map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y))).collect();
        let color = COLORS[band.series % COLORS.len()];
        let _ = writeln!(s, r#"<polygon fill="{color}" fill-opacity="0.15" stroke="none" points="{}"/>"#, path.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(ticks(0.0, 60.0), vec![0.0, 20.0, 40.0, 60.0]);
        assert_eq!(nice_range(0.0, 52.0), (0.0, 60.0));
        assert_eq!(nice_range(0.0, 1.0), (0.0, 1.0));
    }

    #[test]
    fn a_chart_is_one_svg_document_with_escaped_text() {
        let c = Chart {
            title: "ROC <external>".into(),
            x_label: "1 - specificity".into(),
            y_label: "sensitivity".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            series: vec![Series { name: "DLS & co".into(), points: vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)], step: true, dashed: false }],
            table: vec![("DLS".into(), vec!["10".into(), "5".into()])],
            table_title: "At risk".into(),
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("ROC &lt;external&gt;") && svg.contains("DLS &amp; co"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg, c.render_with_bands(&[]), "no bands, the same chart");
    }

    #[test]
    fn a_step_band_is_one_shaded_polygon_under_its_curve() {
        let c = Chart {
            title: "KM".into(),
            x_label: "months".into(),
            y_label: "survival".into(),
            x_range: (0.0, 10.0),
            y_range: (0.0, 1.0),
            series: vec![Series { name: "high".into(), points: vec![(0.0, 1.0), (5.0, 0.5), (10.0, 0.5)], step: true, dashed: false }],
            table: Vec::new(),
            table_title: String::new(),
        };
        let band = Band { series: 0, points: vec![(0.0, 1.0, 1.0), (5.0, 0.2, 0.8), (f64::NAN, 0.1, 0.9), (10.0, 0.2, 0.8)], step: true };
        let svg = c.render_with_bands(&[band]);
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert!(svg.find("<polygon").unwrap() < svg.find("<polyline").unwrap(), "the band lies under the curve");
        let polygon = &svg[svg.find("<polygon").unwrap()..];
        let points = &polygon[polygon.find("points=\"").unwrap() + 8..];
        let points: Vec<&str> = points[..points.find('"').unwrap()].split(' ').collect();
        // 3 finite points as steps: 5 vertices along the top, 5 back along the bottom.
        assert_eq!(points.len(), 10);
        // The plot is x 70..470 and y 40..440: up to x = 5 at the old upper 1, then down to 0.8.
        assert_eq!(&points[..3], &["70.00,40.00", "270.00,40.00", "270.00,120.00"]);
        assert_eq!(points[9], "70.00,40.00");
        assert!(polygon.contains(r##"fill="#1f77b4" fill-opacity="0.15""##));
    }
}
