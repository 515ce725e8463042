//! The kv bench plot, drawn by hand: one panel per (replicas, storage), p99 latency
//! against served ops/s, both on log10 axes, one line per series through its sweep; the
//! echo ceiling of the same replica count is drawn grey in every panel of that count,
//! and each knee is a ring.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Series;

/// A panel's width and height, and its margins: left, right, top, bottom.
const PANEL: (f64, f64) = (420.0, 300.0);
const MARGINS: [f64; 4] = [55.0, 15.0, 30.0, 45.0];
const LEGEND_H: f64 = 40.0;

const PALETTE: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
const ECHO: &str = "#999999";

/// Decades `10^lo ..= 10^hi` covering `[min, max]`.
fn decades(min: f64, max: f64) -> (i32, i32) {
    let lo = min.max(1e-3).log10().floor() as i32;
    let hi = (max.max(min * 10.0).log10().ceil() as i32).max(lo + 1);
    (lo, hi)
}

/// An SVG document plotting `series`.
pub fn svg(series: &[Series]) -> String {
    let panels: BTreeSet<(usize, String)> = series
        .iter()
        .filter(|s| s.algorithm != "echo")
        .map(|s| (s.nodes, s.storage.clone()))
        .collect();
    let labels: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for s in series.iter().filter(|s| s.algorithm != "echo") {
            let l = format!("{} batch {}", s.algorithm, s.batching);
            if !seen.contains(&l) {
                seen.push(l);
            }
        }
        seen
    };
    let colour = |s: &Series| {
        if s.algorithm == "echo" {
            return ECHO;
        }
        let l = format!("{} batch {}", s.algorithm, s.batching);
        let i = labels.iter().position(|x| *x == l).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let steps = series.iter().flat_map(|s| s.steps.iter());
    let (xmin, xmax, ymin, ymax) = steps.fold((f64::MAX, 1.0_f64, f64::MAX, 1.0_f64), |a, st| {
        (
            a.0.min(st.ops_per_s.max(1.0)),
            a.1.max(st.ops_per_s),
            a.2.min(st.p99_ms.max(0.01)),
            a.3.max(st.p99_ms),
        )
    });
    let (xlo, xhi) = decades(xmin.min(xmax), xmax);
    let (ylo, yhi) = decades(ymin.min(ymax), ymax);
    let cols = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(cols).max(1);
    let ((w, h), [left, right, top, bottom]) = (PANEL, MARGINS);
    let (width, height) = (cols as f64 * w, rows as f64 * h + LEGEND_H);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>"#
    );
    let mut lx = 10.0;
    for (i, l) in labels
        .iter()
        .enumerate()
        .map(|(i, l)| (PALETTE[i % PALETTE.len()], l.replace(" batch -", "")))
        .chain(std::iter::once((ECHO, "echo (ceiling)".to_string())))
    {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="10" width="14" height="4" fill="{i}"/><text x="{}" y="16">{l}</text>"#,
            lx + 18.0
        );
        lx += 30.0 + 6.5 * l.len() as f64;
    }
    for (pi, (nodes, storage)) in panels.iter().enumerate() {
        let ox = (pi % cols) as f64 * w;
        let oy = LEGEND_H + (pi / cols) as f64 * h;
        let (x0, x1, y0, y1) = (ox + left, ox + w - right, oy + h - bottom, oy + top);
        let px = |v: f64| x0 + (x1 - x0) * (v.max(1e-3).log10() - xlo as f64) / (xhi - xlo) as f64;
        let py = |v: f64| y0 - (y0 - y1) * (v.max(1e-3).log10() - ylo as f64) / (yhi - ylo) as f64;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{nodes} replicas, data on {storage}</text><rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            (x0 + x1) / 2.0,
            oy + top - 10.0,
            x1 - x0,
            y0 - y1
        );
        for e in xlo..=xhi {
            let x = px(10f64.powi(e));
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#eee"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + 14.0,
                10f64.powi(e)
            );
        }
        for e in ylo..=yhi {
            let y = py(10f64.powi(e));
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 - 4.0,
                y + 4.0,
                10f64.powi(e)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">served ops/s</text><text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">p99 latency (ms)</text>"#,
            (x0 + x1) / 2.0,
            y0 + 32.0,
            ox + 14.0,
            (y0 + y1) / 2.0,
            ox + 14.0,
            (y0 + y1) / 2.0
        );
        let here = series
            .iter()
            .filter(|x| x.nodes == *nodes && (x.algorithm == "echo" || x.storage == *storage));
        for sr in here {
            let c = colour(sr);
            let pts: Vec<String> = sr
                .steps
                .iter()
                .map(|st| format!("{:.1},{:.1}", px(st.ops_per_s), py(st.p99_ms)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
                pts.join(" ")
            );
            for (i, st) in sr.steps.iter().enumerate() {
                let knee = sr.knee == Some(i);
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}" stroke="{c}" stroke-width="2"><title>{}: offered {} ops/s, served {:.0}, p99 {:.2} ms</title></circle>"#,
                    px(st.ops_per_s),
                    py(st.p99_ms),
                    if knee { 5 } else { 2 },
                    if knee { "white" } else { c },
                    sr.label(),
                    st.rate,
                    st.ops_per_s,
                    st.p99_ms
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
