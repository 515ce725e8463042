//! The rounds plot, drawn by hand: one panel per (nodes, drop), rounds to decision against
//! k on a log2 axis, one colour per backoff strategy; solid lines are means, dashed p99.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Cell;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 260.0;
const MARGIN_L: f64 = 50.0;
const MARGIN_R: f64 = 15.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_B: f64 = 45.0;

fn colour(backoff: &str) -> &'static str {
    match backoff {
        "exp-random" => "#1f77b4",
        "fixed" => "#ff7f0e",
        "none" => "#d62728",
        _ => "#555555",
    }
}

/// An SVG document plotting `cells`.
pub fn svg(cells: &[Cell]) -> String {
    let panels: BTreeSet<(usize, u64)> = cells
        .iter()
        .map(|c| (c.nodes, (c.drop * 1e6) as u64))
        .collect();
    let ks: Vec<u64> = cells
        .iter()
        .map(|c| c.proposers)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let backoffs: Vec<String> = {
        let mut seen = Vec::new();
        for c in cells {
            if !seen.contains(&c.backoff) {
                seen.push(c.backoff.clone());
            }
        }
        seen
    };
    let ymax = cells
        .iter()
        .map(|c| (c.rounds_p99 as f64).max(c.rounds_mean))
        .fold(2.0_f64, f64::max);
    let top = ymax.log2().ceil().max(1.0);
    let cols = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(cols).max(1);
    let width = cols as f64 * PANEL_W;
    let height = rows as f64 * PANEL_H + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // Legend.
    let mut lx = 10.0;
    for b in &backoffs {
        let c = colour(b);
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="15" x2="{}" y2="15" stroke="{c}" stroke-width="2"/><text x="{}" y="19">{b} mean</text>"#,
            lx + 20.0,
            lx + 24.0
        );
        lx += 100.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="15" x2="{}" y2="15" stroke="{c}" stroke-width="2" stroke-dasharray="5,3"/><text x="{}" y="19">{b} p99</text>"#,
            lx + 20.0,
            lx + 24.0
        );
        lx += 95.0;
    }
    for (pi, &(nodes, drop_ppm)) in panels.iter().enumerate() {
        let ox = (pi % cols) as f64 * PANEL_W;
        let oy = 30.0 + (pi / cols) as f64 * PANEL_H;
        let x0 = ox + MARGIN_L;
        let x1 = ox + PANEL_W - MARGIN_R;
        let y0 = oy + PANEL_H - MARGIN_B;
        let y1 = oy + MARGIN_T;
        let xk = |k: u64| {
            let i = ks.iter().position(|&x| x == k).unwrap_or(0) as f64;
            let n = (ks.len().max(2) - 1) as f64;
            x0 + (x1 - x0) * i / n
        };
        let yr = |r: f64| y0 - (y0 - y1) * r.max(1.0).log2() / top;
        let drop = drop_ppm as f64 / 1e6;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">N = {nodes}, drop = {drop}</text>"#,
            (x0 + x1) / 2.0,
            oy + MARGIN_T - 12.0
        );
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            x1 - x0,
            y0 - y1
        );
        for e in 0..=(top as u32) {
            let v = 2f64.powi(e as i32);
            let y = yr(v);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{v}</text>"##,
                x0 - 4.0,
                y + 4.0
            );
        }
        for &k in &ks {
            let x = xk(k);
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle">{k}</text>"#,
                y0 + 15.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">contending proposers k</text>"#,
            (x0 + x1) / 2.0,
            y0 + 32.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">rounds to decision</text>"#,
            ox + 14.0,
            (y0 + y1) / 2.0,
            ox + 14.0,
            (y0 + y1) / 2.0
        );
        for b in &backoffs {
            let mut pts: Vec<&Cell> = cells
                .iter()
                .filter(|c| {
                    c.nodes == nodes && (c.drop * 1e6) as u64 == drop_ppm && &c.backoff == b
                })
                .collect();
            pts.sort_by_key(|c| c.proposers);
            if pts.is_empty() {
                continue;
            }
            let c = colour(b);
            for (dash, value) in [
                (
                    "",
                    Box::new(|c: &Cell| c.rounds_mean) as Box<dyn Fn(&Cell) -> f64>,
                ),
                (
                    r#" stroke-dasharray="5,3""#,
                    Box::new(|c: &Cell| c.rounds_p99 as f64),
                ),
            ] {
                let path: Vec<String> = pts
                    .iter()
                    .map(|p| format!("{:.1},{:.1}", xk(p.proposers), yr(value(p))))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
                    path.join(" ")
                );
                for p in &pts {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"><title>{b} k={} {:.2}</title></circle>"#,
                        xk(p.proposers),
                        yr(value(p)),
                        p.proposers,
                        value(p)
                    );
                }
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
