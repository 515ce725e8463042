//! SVG pieces shared by the time-based charts: the time scale and its ticks, colours,
//! and the fault strip with its shading.

use std::fmt::Write;

use super::html::{esc, short_ns};
use super::Span;

/// Width of every chart, in SVG units (the page scales it to the window).
pub const WIDTH: f64 = 1340.0;
/// Left gutter of the time charts (lane labels).
pub const GUTTER: f64 = 56.0;
/// Right margin of the time charts.
pub const RIGHT: f64 = 14.0;

/// Nanoseconds since the run's start to x.
#[derive(Debug, Clone, Copy)]
pub struct TimeScale {
    /// The last time shown (ns).
    pub end_ns: u64,
}

impl TimeScale {
    /// x of time `ns`.
    pub fn x(&self, ns: u64) -> f64 {
        let w = WIDTH - GUTTER - RIGHT;
        GUTTER + w * (ns.min(self.end_ns) as f64 / self.end_ns.max(1) as f64)
    }

    /// Tick marks and labels along `y` from `top` (grid lines down to `bottom`).
    pub fn axis(&self, s: &mut String, top: f64, bottom: f64) {
        let step = nice_step(self.end_ns as f64 / 10.0);
        let mut t = 0.0;
        while t <= self.end_ns as f64 + 1.0 {
            let x = self.x(t as u64);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e6e8ee"/><text x="{x:.1}" y="{:.1}" font-size="10.5" fill="#5d6678" text-anchor="middle">{}</text>"##,
                bottom + 12.0,
                esc(&short_ns(t))
            );
            t += step;
        }
    }
}

/// A round step (1, 2 or 5 × 10ⁿ) near `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The colour of a fault kind.
pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "partition" => "#7b4fd6",
        "kill" => "#d93b3b",
        "pause" => "#e8890c",
        "clog" => "#1d8fb8",
        "link_faults" => "#8a6d3b",
        _ => "#6b7280",
    }
}

/// A fault span's label: its kind, what it did and the nodes it acts on
/// (`partition: isolate n2`, `kill n1`, `link faults: delay 5+20 ms on 8 links (n1 n3)`).
pub fn span_label(sp: &Span) -> String {
    let kind = sp.kind.replace('_', " ");
    let mut label = if kind.is_empty() || sp.what.starts_with(&kind) {
        sp.what.clone()
    } else {
        format!("{kind}: {}", sp.what)
    };
    if !sp.nodes.iter().all(|n| label.contains(n.as_str())) {
        let mut nodes = sp.nodes.clone();
        nodes.sort_by_key(|n| (n.len(), n.clone()));
        label = format!("{label} ({})", nodes.join(" "));
    }
    if sp.end.is_none() {
        label.push_str(" (never ended)");
    }
    label
}

/// Approximate width of `text` at `font_px`, for layout.
pub fn text_width(text: &str, font_px: f64) -> f64 {
    text.chars().count() as f64 * font_px * 0.62
}

/// Rows for the fault strip: each span in the first row where it and its label fit.
pub fn pack_rows(spans: &[Span], scale: &TimeScale, font_px: f64) -> Vec<usize> {
    let mut row_end: Vec<f64> = Vec::new();
    let mut rows = Vec::with_capacity(spans.len());
    for sp in spans {
        let x0 = scale.x(sp.start);
        let x1 = scale.x(sp.end.unwrap_or(scale.end_ns));
        let right = x1.max(x0 + text_width(&span_label(sp), font_px) + 8.0);
        let row = match row_end.iter().position(|&end| end + 2.0 <= x0) {
            Some(r) => r,
            None => {
                row_end.push(0.0);
                row_end.len() - 1
            }
        };
        row_end[row] = right;
        rows.push(row);
    }
    rows
}

/// Height of one fault-strip row.
pub const STRIP_ROW: f64 = 17.0;

/// Draws the fault strip (one labelled bar per span, rows from `top`) and returns its
/// height. Spans still on at the end run to the end.
pub fn fault_strip(s: &mut String, spans: &[Span], scale: &TimeScale, top: f64) -> f64 {
    if spans.is_empty() {
        return 0.0;
    }
    let rows = pack_rows(spans, scale, 11.0);
    let n_rows = rows.iter().max().map_or(0, |r| r + 1);
    let _ = write!(
        s,
        r##"<g id="fault-strip"><text x="4" y="{:.1}" font-size="11" fill="#5d6678">faults</text>"##,
        top + 12.0
    );
    for (sp, row) in spans.iter().zip(rows) {
        let x0 = scale.x(sp.start);
        let x1 = scale.x(sp.end.unwrap_or(scale.end_ns)).max(x0 + 2.0);
        let y = top + row as f64 * STRIP_ROW;
        let c = fault_colour(&sp.kind);
        let label = span_label(sp);
        let _ = write!(
            s,
            r##"<g class="fault" data-kind="{kind}"><title>{tip}</title><rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}" fill-opacity="0.22" stroke="{c}" stroke-width="1"/><text x="{tx:.1}" y="{ty:.1}" font-size="11" fill="{c}" font-weight="600">{label}</text></g>"##,
            kind = esc(&sp.kind),
            tip = esc(&format!(
                "{}: {} → {}",
                label,
                short_ns(sp.start as f64),
                sp.end.map_or("the end".to_string(), |e| short_ns(e as f64))
            )),
            w = x1 - x0,
            h = STRIP_ROW - 3.0,
            tx = x0 + 3.0,
            ty = y + 11.0,
            label = esc(&label),
        );
    }
    s.push_str("</g>");
    n_rows as f64 * STRIP_ROW
}

/// Shades each span's interval from `top` to `bottom` (behind the data).
pub fn fault_shading(s: &mut String, spans: &[Span], scale: &TimeScale, top: f64, bottom: f64) {
    for sp in spans {
        let x0 = scale.x(sp.start);
        let x1 = scale.x(sp.end.unwrap_or(scale.end_ns)).max(x0 + 1.0);
        let c = fault_colour(&sp.kind);
        let _ = write!(
            s,
            r##"<rect class="fault-shade" data-kind="{}" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{c}" fill-opacity="0.09"/><line x1="{x0:.1}" y1="{top:.1}" x2="{x0:.1}" y2="{bottom:.1}" stroke="{c}" stroke-opacity="0.5" stroke-dasharray="3,3"/>"##,
            esc(&sp.kind),
            x1 - x0,
            bottom - top
        );
    }
}

/// A legend entry: a swatch and a label.
pub fn swatch(colour: &str, label: &str) -> String {
    format!(
        r#"<span><span class="sw" style="background:{colour}"></span>{}</span>"#,
        esc(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_ms: u64, end_ms: Option<u64>, what: &str) -> Span {
        Span {
            start: start_ms * 1_000_000,
            end: end_ms.map(|e| e * 1_000_000),
            what: what.into(),
            kind: "partition".into(),
            nodes: Vec::new(),
        }
    }

    #[test]
    fn labels_name_the_kind_and_the_nodes() {
        let mut sp = span(0, None, "delay 5+20 ms on 4 links");
        sp.kind = "link_faults".into();
        sp.nodes = vec!["n3".into(), "n1".into()];
        assert_eq!(
            span_label(&sp),
            "link faults: delay 5+20 ms on 4 links (n1 n3) (never ended)"
        );
        let mut kill = span(0, Some(1), "kill n2");
        kill.kind = "kill".into();
        kill.nodes = vec!["n2".into()];
        assert_eq!(span_label(&kill), "kill n2");
        assert_eq!(
            span_label(&span(0, Some(1), "partition: isolate n1")),
            "partition: isolate n1"
        );
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(480_000_000.0), 500_000_000.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(120.0), 100.0);
    }

    #[test]
    fn overlapping_spans_get_their_own_rows() {
        let scale = TimeScale {
            end_ns: 10_000_000_000,
        };
        let spans = [
            span(0, Some(5_000), "a"),
            span(1_000, Some(2_000), "b"),
            span(6_000, None, "c"),
        ];
        assert_eq!(pack_rows(&spans, &scale, 11.0), vec![0, 1, 0]);
    }
}
