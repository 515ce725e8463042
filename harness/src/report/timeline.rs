//! The client-op timeline (one lane per process, a bar from invoke to completion
//! coloured by outcome, faults as a labelled strip and as shading) and latency against
//! invoke time with a percentile table.

use std::collections::BTreeMap;
use std::fmt::Write;

use workloads::history::{Op, Outcome};

use super::html::{brief, esc, ms, short_ns};
use super::sequence::Window;
use super::svg::{self, TimeScale, GUTTER, WIDTH};
use super::RunData;

/// Process lanes drawn at most; past this, processes whose lifetimes do not overlap
/// share a lane, and past that again the latest processes are left out.
pub const LANES_MAX: usize = 40;
/// Op bars drawn at most (every op that is not `ok` is kept; `ok` ops are thinned).
pub const BARS_MAX: usize = 4_000;
/// Points of the latency scatter at most (thinned the same way).
pub const POINTS_MAX: usize = 3_000;

/// Lane height for many lanes, and for a few (up to [`ROOMY_LANES`]).
const LANE_H: f64 = 13.0;
const ROOMY_LANE_H: f64 = 20.0;
const ROOMY_LANES: usize = 12;

fn outcome_colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#2e9d4f",
        Outcome::Fail => "#d93b3b",
        Outcome::Info => "#e8890c",
        Outcome::Pending => "#8a8a8a",
    }
}

pub(super) fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
        Outcome::Pending => "pending",
    }
}

/// Indices of the ops to draw: all of them up to `cap`; past it, every op that is not
/// `ok` and an even sample of the `ok` ones.
pub fn thin(ops: &[&Op], cap: usize) -> Vec<usize> {
    if ops.len() <= cap {
        return (0..ops.len()).collect();
    }
    let not_ok = ops.iter().filter(|o| o.outcome != Outcome::Ok).count();
    let ok = ops.len() - not_ok;
    let room = cap.saturating_sub(not_ok).max(1);
    let stride = ok.div_ceil(room).max(1);
    let mut seen_ok = 0usize;
    let mut keep = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        if o.outcome != Outcome::Ok {
            keep.push(i);
        } else {
            if seen_ok.is_multiple_of(stride) {
                keep.push(i);
            }
            seen_ok += 1;
        }
    }
    keep
}

/// Lanes for processes: one each while they fit, else processes whose lifetimes do
/// not overlap share one. Returns each process's lane and the lanes' labels; a process
/// with no lane is left out.
fn lanes(ops: &[Op]) -> (BTreeMap<u64, usize>, Vec<String>) {
    // Lifetimes [first invoke, last completion] by first invoke.
    let mut life: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in ops {
        let end = op.complete_time.unwrap_or(u64::MAX);
        let e = life.entry(op.process).or_insert((op.invoke_time, end));
        e.0 = e.0.min(op.invoke_time);
        e.1 = e.1.max(end);
    }
    let mut procs: Vec<(u64, u64, u64)> = life.iter().map(|(&p, &(a, b))| (a, b, p)).collect();
    procs.sort_unstable();
    let mut lane_of = BTreeMap::new();
    let mut labels: Vec<String> = Vec::new();
    if procs.len() <= LANES_MAX {
        for (i, &(_, _, p)) in procs.iter().enumerate() {
            lane_of.insert(p, i);
            labels.push(format!("p{p}"));
        }
        return (lane_of, labels);
    }
    let mut lane_end: Vec<u64> = Vec::new();
    let mut members: Vec<Vec<u64>> = Vec::new();
    for &(start, end, p) in &procs {
        let lane = match lane_end.iter().position(|&e| e < start) {
            Some(l) => l,
            None if lane_end.len() < LANES_MAX => {
                lane_end.push(0);
                members.push(Vec::new());
                lane_end.len() - 1
            }
            None => continue,
        };
        lane_end[lane] = end;
        members[lane].push(p);
        lane_of.insert(p, lane);
    }
    for m in members {
        let label = match m.as_slice() {
            [one] => format!("p{one}"),
            [first, .., last] => format!("p{first}…p{last}"),
            [] => String::new(),
        };
        labels.push(label);
    }
    (lane_of, labels)
}

fn op_tip(op: &Op) -> String {
    let out = match &op.output {
        Some(v) => format!(" → {} {}", outcome_word(op.outcome), brief(&v.to_value())),
        None => format!(" → {}", outcome_word(op.outcome)),
    };
    let node = op
        .node
        .as_deref()
        .map_or(String::new(), |n| format!(" at {n}"));
    let when = match op.complete_time {
        Some(c) => format!(
            "{} → {} ({})",
            ms(op.invoke_time),
            ms(c),
            short_ns(c.saturating_sub(op.invoke_time) as f64)
        ),
        None => format!("{} → never", ms(op.invoke_time)),
    };
    format!(
        "p{} {} {}{}{node}, {when}",
        op.process,
        op.f,
        brief(&op.input.to_value()),
        out
    )
}

/// The timeline section.
pub fn ops_timeline(s: &mut String, run: &RunData, window: &Window) {
    let scale = TimeScale { end_ns: run.end_ns };
    let _ = write!(
        s,
        "<section id=\"timeline-section\"><h2>Client ops over time</h2><div class=\"legend\">{}{}{}{}<span>· shaded: faults (strip on top, by kind)</span></div>",
        svg::swatch(outcome_colour(Outcome::Ok), "ok"),
        svg::swatch(outcome_colour(Outcome::Fail), "fail"),
        svg::swatch(outcome_colour(Outcome::Info), "info (indefinite)"),
        svg::swatch(outcome_colour(Outcome::Pending), "pending"),
    );
    if run.ops.is_empty() {
        s.push_str("<p class=\"note\">No client ops were recorded.</p></section>\n");
        return;
    }
    let (lane_of, labels) = lanes(&run.ops);
    let drawable: Vec<&Op> = run
        .ops
        .iter()
        .filter(|o| lane_of.contains_key(&o.process))
        .collect();
    let keep = thin(&drawable, BARS_MAX);

    let mut body = String::new();
    let strip_top = 4.0;
    let strip_h = svg::fault_strip(&mut body, &run.spans, &scale, strip_top);
    let marks_top = strip_top + strip_h + 2.0;
    let marks = window.marks.as_slice();
    let marks_h = if marks.is_empty() { 0.0 } else { 28.0 };
    let lanes_top = marks_top + marks_h;
    let lane_h = if labels.len() <= ROOMY_LANES {
        ROOMY_LANE_H
    } else {
        LANE_H
    };
    let bar_h = lane_h - 4.0;
    let lanes_bottom = lanes_top + labels.len() as f64 * lane_h;
    let height = lanes_bottom + 22.0;

    let mut svg_s = String::new();
    let _ = write!(
        svg_s,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}">"#
    );
    scale.axis(&mut svg_s, lanes_top, lanes_bottom);
    svg::fault_shading(&mut svg_s, &run.spans, &scale, lanes_top, lanes_bottom);
    svg_s.push_str(&body);
    if window.empty_because.is_none() {
        let w = window;
        // The sequence diagram's window, bracketed on the lanes.
        let x0 = scale.x(w.from_ns);
        let x1 = scale.x(w.to_ns).max(x0 + 2.0);
        let _ = write!(
            svg_s,
            r##"<rect id="sequence-window" x="{x0:.1}" y="{lanes_top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#1d2330" stroke-width="1" stroke-dasharray="2,2"><title>the window of the sequence diagram below</title></rect>"##,
            x1 - x0,
            lanes_bottom - lanes_top
        );
    }
    for (i, m) in marks.iter().enumerate() {
        let x = scale.x(m.at_ns);
        let y = marks_top + 11.0 + (i % 2) as f64 * 13.0;
        let anchor = if x > WIDTH * 0.8 { "end" } else { "start" };
        let dx = if anchor == "end" { -3.0 } else { 3.0 };
        let _ = write!(
            svg_s,
            r##"<g class="mark"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{lanes_bottom:.1}" stroke="#b3122e" stroke-width="1.2"/><text x="{:.1}" y="{y:.1}" font-size="11" fill="#b3122e" font-weight="600" text-anchor="{anchor}">{}</text></g>"##,
            y - 9.0,
            x + dx,
            esc(&m.label)
        );
    }
    svg_s.push_str(r#"<g id="lanes">"#);
    for (i, label) in labels.iter().enumerate() {
        let y = lanes_top + i as f64 * lane_h;
        if i % 2 == 1 {
            let _ = write!(
                svg_s,
                r##"<rect x="{GUTTER}" y="{y:.1}" width="{:.1}" height="{lane_h}" fill="#000" fill-opacity="0.025"/>"##,
                WIDTH - GUTTER - svg::RIGHT
            );
        }
        let _ = write!(
            svg_s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10.5" fill="#5d6678" text-anchor="end">{}</text>"##,
            GUTTER - 4.0,
            y + lane_h / 2.0 + 3.5,
            esc(label)
        );
    }
    svg_s.push_str("</g><g id=\"ops\">");
    for &i in &keep {
        let op = drawable[i];
        let lane = lane_of[&op.process];
        let y = lanes_top + lane as f64 * lane_h + (lane_h - bar_h) / 2.0;
        let x0 = scale.x(op.invoke_time);
        let x1 = scale
            .x(op.complete_time.unwrap_or(run.end_ns))
            .max(x0 + 1.5);
        let _ = write!(
            svg_s,
            r#"<rect class="op {}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{bar_h}" fill="{}"><title>{}</title></rect>"#,
            outcome_word(op.outcome),
            x1 - x0,
            outcome_colour(op.outcome),
            esc(&op_tip(op))
        );
    }
    svg_s.push_str("</g></svg>");
    s.push_str(&svg_s);
    let left_out = run.ops.len() - drawable.len();
    if keep.len() < drawable.len() || left_out > 0 {
        let _ = write!(
            s,
            "<p class=\"note\">Drawn: {} of {} ops (every op that is not ok; ok ops evenly thinned){}.</p>",
            keep.len(),
            run.ops.len(),
            if left_out > 0 {
                format!("; {left_out} ops of processes past {LANES_MAX} lanes left out")
            } else {
                String::new()
            }
        );
    }
    if window.empty_because.is_none() {
        let w = window;
        let red = if w.marks.is_empty() {
            String::new()
        } else {
            format!("Red lines: {}. ", w.marks_caption)
        };
        let _ = write!(
            s,
            "<p class=\"note\">{}The dashed box is the window of the sequence diagram.</p>",
            esc(&red)
        );
    }
    s.push_str("</section>\n");
}

/// Colours for op functions in the scatter.
fn f_colour(i: usize) -> &'static str {
    const P: [&str; 6] = [
        "#2f6fd0", "#8e44ad", "#16a085", "#c0392b", "#d35400", "#7f8c8d",
    ];
    P[i % P.len()]
}

/// The latency section: scatter and percentiles.
pub fn latency(s: &mut String, run: &RunData) {
    s.push_str("<section id=\"latency-section\"><h2>Latency over time</h2>");
    let done: Vec<&Op> = run
        .ops
        .iter()
        .filter(|o| o.complete_time.is_some())
        .collect();
    if done.is_empty() {
        s.push_str("<p class=\"note\">No completed ops.</p></section>\n");
        return;
    }
    let lat = |o: &Op| {
        o.complete_time
            .unwrap_or(o.invoke_time)
            .saturating_sub(o.invoke_time)
            .max(1) as f64
            / 1e6
    };
    let fs: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for o in &done {
            if !v.contains(&o.f) {
                v.push(o.f.clone());
            }
        }
        v
    };
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for o in &done {
        let l = lat(o);
        lo = lo.min(l);
        hi = hi.max(l);
    }
    let lo_exp = lo.log10().floor();
    let hi_exp = hi.log10().ceil().max(lo_exp + 1.0);
    let scale = TimeScale { end_ns: run.end_ns };
    let (top, plot_h) = (8.0, 240.0);
    let bottom = top + plot_h;
    let y = |l: f64| bottom - (l.log10() - lo_exp) / (hi_exp - lo_exp) * plot_h;
    let height = bottom + 24.0;
    let _ = write!(
        s,
        "<div class=\"legend\">{}<span>· × info (timed out) · ■ fail · shaded: faults</span></div>",
        fs.iter()
            .enumerate()
            .map(|(i, f)| svg::swatch(f_colour(i), f))
            .collect::<String>()
    );
    let _ = write!(
        s,
        r#"<svg id="latency" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}">"#
    );
    scale.axis(s, top, bottom);
    svg::fault_shading(s, &run.spans, &scale, top, bottom);
    let mut e = lo_exp;
    while e <= hi_exp {
        let yy = y(10f64.powf(e));
        let label = short_ns(10f64.powf(e) * 1e6);
        let _ = write!(
            s,
            r##"<line x1="{GUTTER}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e6e8ee"/><text x="{:.1}" y="{:.1}" font-size="10.5" fill="#5d6678" text-anchor="end">{}</text>"##,
            WIDTH - svg::RIGHT,
            GUTTER - 4.0,
            yy + 3.5,
            esc(&label)
        );
        e += 1.0;
    }
    let keep = thin(&done, POINTS_MAX);
    s.push_str("<g id=\"points\">");
    for &i in &keep {
        let o = done[i];
        let x = scale.x(o.invoke_time);
        let yy = y(lat(o));
        let c = f_colour(fs.iter().position(|f| *f == o.f).unwrap_or(0));
        let tip = esc(&format!(
            "p{} {} {}: {} at {}",
            o.process,
            o.f,
            outcome_word(o.outcome),
            short_ns(lat(o) * 1e6),
            ms(o.invoke_time)
        ));
        match o.outcome {
            Outcome::Info => {
                let _ = write!(
                    s,
                    r##"<path d="M{:.1},{:.1}l6,6m0,-6l-6,6" stroke="#e8890c" stroke-width="1.6"><title>{tip}</title></path>"##,
                    x - 3.0,
                    yy - 3.0
                );
            }
            Outcome::Fail => {
                let _ = write!(
                    s,
                    r##"<rect x="{:.1}" y="{:.1}" width="5" height="5" fill="#d93b3b"><title>{tip}</title></rect>"##,
                    x - 2.5,
                    yy - 2.5
                );
            }
            _ => {
                let _ = write!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{yy:.1}" r="2.2" fill="{c}" fill-opacity="0.7"><title>{tip}</title></circle>"#
                );
            }
        }
    }
    s.push_str("</g></svg>");
    if keep.len() < done.len() {
        let _ = write!(
            s,
            "<p class=\"note\">Drawn: {} of {} completed ops (all that are not ok; ok ops evenly thinned).</p>",
            keep.len(),
            done.len()
        );
    }
    percentiles(s, run);
    s.push_str("</section>\n");
}

/// p50/p90/p99/max per op function over the ok ops: the figures `metrics.json` has
/// (the same function on the same history).
fn percentiles(s: &mut String, run: &RunData) {
    s.push_str(
        "<table class=\"grid\" id=\"percentiles\"><tr><th>op</th><th>ok ops</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>",
    );
    let rows = crate::metrics::latency_by_kind(&run.ops)
        .into_iter()
        .map(|(f, l)| (f, l.count, [l.p50, l.p90, l.p99, l.max]));
    for (f, n, q) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{:.3} ms</td><td class=\"num\">{:.3} ms</td><td class=\"num\">{:.3} ms</td><td class=\"num\">{:.3} ms</td></tr>",
            esc(&f),
            q[0],
            q[1],
            q[2],
            q[3]
        );
    }
    s.push_str("</table>");
    if run.lockstep {
        s.push_str("<p class=\"note\">Lockstep: latencies are in virtual time.</p>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u64, t: u64, outcome: Outcome) -> Op {
        Op {
            process,
            f: "read".into(),
            input: serde_json::Value::Null.into(),
            output: None,
            outcome,
            invoke_time: t,
            complete_time: Some(t + 5),
            node: None,
            invoke_index: t,
            complete_index: Some(t + 1),
        }
    }

    #[test]
    fn thinning_keeps_every_op_that_is_not_ok() {
        let ops: Vec<Op> = (0..100)
            .map(|i| {
                op(
                    0,
                    i * 10,
                    if i % 10 == 3 {
                        Outcome::Info
                    } else {
                        Outcome::Ok
                    },
                )
            })
            .collect();
        let refs: Vec<&Op> = ops.iter().collect();
        let keep = thin(&refs, 30);
        assert!(keep.len() <= 30 + 1);
        assert_eq!(
            keep.iter()
                .filter(|&&i| ops[i].outcome == Outcome::Info)
                .count(),
            10
        );
        assert_eq!(thin(&refs, 1000).len(), 100);
    }

    #[test]
    fn many_short_lived_processes_share_lanes() {
        // 100 processes one after another: they fit in one lane.
        let ops: Vec<Op> = (0..100).map(|p| op(p, p * 100, Outcome::Info)).collect();
        let (lane_of, labels) = lanes(&ops);
        assert_eq!(labels, vec!["p0…p99".to_string()]);
        assert_eq!(lane_of.len(), 100);
    }
}
