//! Writes the sequence section: lifelines, fault shading, arrows, marks and notes.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::layout::{events, layout, Ev, EvKind};
use super::{Mark, Msg, Window, TRACE_BIN};
use crate::report::html::{esc, ms, short_ns};
use crate::report::svg::{fault_colour, span_label, swatch, text_width, WIDTH};
use crate::report::RunData;
use crate::trace::HOP_US;

const ROW_H: f64 = 18.0;
const TOP: f64 = 34.0;
const LEFT: f64 = 92.0;

/// The colour of a message type.
fn type_colour(ty: &str) -> &'static str {
    const P: [&str; 8] = [
        "#2f6fd0", "#16a085", "#8e44ad", "#c2185b", "#2e7d32", "#d35400", "#607d8b", "#8d6e63",
    ];
    match ty {
        "prepare" => P[0],
        "promise" => P[1],
        "accept" => P[2],
        "accepted" => P[3],
        "decided" => P[4],
        "nack" => P[5],
        "decided_ok" => P[6],
        other => {
            P[other
                .bytes()
                .fold(7usize, |h, b| h.wrapping_mul(31) + b as usize)
                % P.len()]
        }
    }
}

/// The sequence section.
pub(crate) fn section(s: &mut String, run: &RunData, w: &Window) {
    let _ = write!(
        s,
        "<section id=\"sequence-section\" data-key=\"{}\"><h2>Message sequence — {}</h2>",
        w.key.map_or(String::new(), |k| k.to_string()),
        esc(&w.title)
    );
    if let Some(why) = &w.empty_because {
        let _ = writeln!(
            s,
            "<p class=\"note\">No diagram: {}.</p></section>",
            esc(why)
        );
        return;
    }
    let d = Diagram::new(run, w);
    d.legend(s);
    let _ = write!(
        s,
        r#"<svg id="sequence" data-key="{}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}">"#,
        w.key.map_or(String::new(), |k| k.to_string()),
        d.height(),
        d.height()
    );
    s.push_str(r##"<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>"##);
    d.faults(s, run, w);
    d.lifelines(s);
    d.gutter(s);
    d.arrows(s);
    d.marks(s);
    s.push_str("</svg>");
    notes(s, run, w, &d.arrows);
    as_text(s, &d.arrows);
    s.push_str("</section>\n");
}

/// The laid-out diagram: lifelines, arrows, marks and every event's row.
struct Diagram {
    nodes: Vec<String>,
    arrows: Vec<Msg>,
    marks: Vec<Mark>,
    events: Vec<Ev>,
    rows: Vec<usize>,
    gaps: Vec<(usize, u64)>,
    n_rows: usize,
    /// Per arrow: (row, column) of its send, and of its delivery if it had one.
    send_at: BTreeMap<usize, (usize, usize)>,
    recv_at: BTreeMap<usize, (usize, usize)>,
}

impl Diagram {
    fn new(run: &RunData, w: &Window) -> Diagram {
        let nodes = lifeline_nodes(run, w);
        let col_of = |n: &str| nodes.iter().position(|m| m == n);
        let arrows: Vec<Msg> = w
            .msgs
            .iter()
            .filter(|m| col_of(&m.src).is_some() && col_of(&m.dest).is_some())
            .cloned()
            .collect();
        let mut marks = context_marks(run, w);
        marks.retain(|m| col_of(&m.node).is_some());
        // Arrows were filtered and marks retained to nodes with a lifeline.
        let mut events = events(&arrows, &marks, |n| col_of(n).expect("a lifeline"));
        let (rows, gaps) = layout(&mut events, &arrows, nodes.len());
        let n_rows = rows.iter().max().map_or(1, |r| r + 1) + 1;
        let mut send_at = BTreeMap::new();
        let mut recv_at = BTreeMap::new();
        for (e, &r) in events.iter().zip(&rows) {
            match e.kind {
                EvKind::Send => {
                    send_at.insert(e.item, (r, e.col));
                }
                EvKind::Recv => {
                    recv_at.insert(e.item, (r, e.col));
                }
                EvKind::Mark => {}
            }
        }
        Diagram {
            nodes,
            arrows,
            marks,
            events,
            rows,
            gaps,
            n_rows,
            send_at,
            recv_at,
        }
    }

    fn height(&self) -> f64 {
        TOP + self.n_rows as f64 * ROW_H + 24.0
    }

    fn col_of(&self, n: &str) -> Option<usize> {
        self.nodes.iter().position(|m| m == n)
    }

    fn x(&self, col: usize) -> f64 {
        let span_w = (WIDTH - LEFT - 40.0) / self.nodes.len().max(1) as f64;
        LEFT + span_w * (col as f64 + 0.5)
    }

    fn y(&self, row: usize) -> f64 {
        TOP + 10.0 + row as f64 * ROW_H
    }

    fn bottom(&self) -> f64 {
        self.y(self.n_rows - 1)
    }

    /// Each row's time: that of its first event.
    fn row_times(&self) -> BTreeMap<usize, u64> {
        let mut row_time = BTreeMap::new();
        for (e, &r) in self.events.iter().zip(&self.rows) {
            row_time.entry(r).or_insert(e.at_ns);
        }
        row_time
    }

    /// The y of time `t`: just above the first row at or after it.
    fn y_of_time(&self, row_time: &BTreeMap<usize, u64>, t: u64) -> f64 {
        match row_time.iter().find(|(_, &rt)| rt >= t) {
            Some((&r, _)) => self.y(r) - ROW_H / 2.0,
            None => self.bottom(),
        }
    }

    fn legend(&self, s: &mut String) {
        let mut types: Vec<&str> = Vec::new();
        for m in &self.arrows {
            if !types.contains(&m.ty.as_str()) {
                types.push(&m.ty);
            }
        }
        let _ = write!(
            s,
            "<div class=\"legend\">{}<span>· ✕ dropped by the nemesis · ◆ decided · ▸ ◂ client op invoked / completed</span></div>",
            types
                .iter()
                .map(|t| swatch(type_colour(t), t))
                .collect::<String>()
        );
    }

    /// Faults active in the window: a band across the diagram for network faults, a
    /// strip over the lifeline for a node's kill, pause or clog; labels on the right.
    fn faults(&self, s: &mut String, run: &RunData, w: &Window) {
        let row_time = self.row_times();
        let mut band = 0;
        for sp in &run.spans {
            if !sp.overlaps(w.from_ns, w.to_ns) {
                continue;
            }
            let end = sp.end.unwrap_or(u64::MAX);
            let y0 = if sp.start <= w.from_ns {
                TOP
            } else {
                self.y_of_time(&row_time, sp.start)
            };
            let y1 = if end >= w.to_ns {
                self.bottom()
            } else {
                self.y_of_time(&row_time, end)
            };
            let h = (y1 - y0).max(2.0);
            let c = fault_colour(&sp.kind);
            let kind = esc(&sp.kind);
            let label = esc(&span_label(sp));
            let per_node: Vec<usize> = sp.nodes.iter().filter_map(|n| self.col_of(n)).collect();
            if sp.kind != "link_faults" && !per_node.is_empty() {
                for col in per_node {
                    let _ = write!(
                        s,
                        r##"<rect class="fault-shade" data-kind="{kind}" x="{:.1}" y="{y0:.1}" width="26" height="{h:.1}" fill="{c}" fill-opacity="0.16"><title>{label}</title></rect>"##,
                        self.x(col) - 13.0,
                    );
                }
            } else {
                let _ = write!(
                    s,
                    r##"<rect class="fault-shade" data-kind="{kind}" x="{LEFT}" y="{y0:.1}" width="{:.1}" height="{h:.1}" fill="{c}" fill-opacity="0.07"><title>{label}</title></rect>"##,
                    WIDTH - LEFT - 4.0,
                );
            }
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="{c}" font-weight="600" text-anchor="end">{label}</text>"##,
                WIDTH - 8.0,
                y0 + 12.0 + band as f64 * 13.0,
            );
            band += 1;
        }
    }

    fn lifelines(&self, s: &mut String) {
        for (c, n) in self.nodes.iter().enumerate() {
            let xc = self.x(c);
            let _ = write!(
                s,
                r##"<line x1="{xc:.1}" y1="{:.1}" x2="{xc:.1}" y2="{:.1}" stroke="#9aa3b5" stroke-width="1.2"/><rect x="{:.1}" y="4" width="48" height="20" rx="4" fill="#1d2330"/><text x="{xc:.1}" y="18.5" font-size="12.5" fill="#fff" text-anchor="middle" font-weight="600">{}</text>"##,
                TOP - 6.0,
                self.bottom(),
                xc - 24.0,
                esc(n)
            );
        }
    }

    /// Times in the left gutter where the time moves on, and the gaps.
    fn gutter(&self, s: &mut String) {
        let mut last_label = None;
        for (r, t) in self.row_times() {
            let text = ms(t);
            if last_label.as_ref() == Some(&text) {
                continue;
            }
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#5d6678" text-anchor="end">{}</text>"##,
                LEFT - 10.0,
                self.y(r) + 3.5,
                esc(&text)
            );
            last_label = Some(text);
        }
        for &(r, dt) in &self.gaps {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10.5" fill="#5d6678" font-style="italic">⋯ {} later ⋯</text>"##,
                LEFT + 4.0,
                self.y(r) + 3.5,
                esc(&short_ns(dt as f64))
            );
        }
    }

    fn arrows(&self, s: &mut String) {
        // A fan-out (one row, one source, one type) is labelled once, with its count.
        let mut fan_out: BTreeMap<(usize, usize, &str), usize> = BTreeMap::new();
        for (i, m) in self.arrows.iter().enumerate() {
            let (sr, sc) = self.send_at[&i];
            *fan_out.entry((sr, sc, m.ty.as_str())).or_insert(0) += 1;
        }
        s.push_str("<g id=\"arrows\">");
        for (i, m) in self.arrows.iter().enumerate() {
            let (sr, sc) = self.send_at[&i];
            let dc = self.col_of(&m.dest).expect("filtered");
            let (x0, y0) = (self.x(sc), self.y(sr));
            let c = type_colour(&m.ty);
            let dir = if dc >= sc { 1.0 } else { -1.0 };
            let _ = write!(
                s,
                r#"<g class="msg {}"><title>{}</title>"#,
                esc(&m.fate),
                esc(&tip(m))
            );
            match self.recv_at.get(&i) {
                Some(&(rr, _)) if sc == dc => {
                    let (y1, bend) = (self.y(rr), x0 + 34.0);
                    let _ = write!(
                        s,
                        r#"<path d="M{x0:.1},{y0:.1} C{bend:.1},{y0:.1} {bend:.1},{y1:.1} {:.1},{y1:.1}" fill="none" stroke="{c}" stroke-width="1.3" marker-end="url(#ah)"/>"#,
                        x0 + 2.0
                    );
                }
                Some(&(rr, _)) => {
                    let dash = if m.dup {
                        r#" stroke-dasharray="6,3""#
                    } else {
                        ""
                    };
                    let _ = write!(
                        s,
                        r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="1.3"{dash} marker-end="url(#ah)"/>"#,
                        self.x(dc) - dir * 2.0,
                        self.y(rr)
                    );
                }
                None => {
                    // Dropped, held or still in flight: a dashed line that stops short
                    // of its destination with a cross, the fate written before it.
                    let x1 = if sc == dc {
                        x0 + 30.0
                    } else {
                        self.x(dc) - dir * 14.0
                    };
                    let y1 = y0 + ROW_H * 0.8;
                    let red = if m.fate == "held" || m.fate == "in_flight" {
                        "#8a8a8a"
                    } else {
                        "#d93b3b"
                    };
                    let _ = write!(
                        s,
                        r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="{c}" stroke-width="1.2" stroke-dasharray="4,3"/><path d="M{:.1},{:.1}l8,8m0,-8l-8,8" stroke="{red}" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="10" fill="{red}" text-anchor="{}" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text>"##,
                        x1 - 4.0,
                        y1 - 4.0,
                        x1 - dir * 8.0,
                        y1 + 11.0,
                        if dir > 0.0 { "end" } else { "start" },
                        esc(&m.fate)
                    );
                }
            }
            if let Some(count) = fan_out.remove(&(sr, sc, m.ty.as_str())) {
                let mut label = m.ty.clone();
                if !m.detail.is_empty() {
                    label = format!("{label} {}", m.detail);
                }
                if count > 1 {
                    label = format!("{label} ×{count}");
                }
                let anchor = if dir > 0.0 { "start" } else { "end" };
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" font-size="10.5" fill="{c}" text-anchor="{anchor}" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text>"##,
                    x0 + dir * 8.0,
                    y0 - 3.0,
                    esc(&label)
                );
            }
            s.push_str("</g>");
        }
        s.push_str("</g>");
    }

    /// Decisions and client ops, left of their lifeline.
    fn marks(&self, s: &mut String) {
        s.push_str("<g id=\"marks\">");
        for (e, &r) in self.events.iter().zip(&self.rows) {
            if e.kind != EvKind::Mark {
                continue;
            }
            let m = &self.marks[e.item];
            let (xc, yc) = (self.x(e.col), self.y(r));
            let decided = m.label.starts_with("decided");
            let (fill, weight) = match (m.strong, decided) {
                (true, _) => ("#b3122e", "700"),
                (false, true) => ("#2e7d32", "600"),
                (false, false) => ("#1d2330", "400"),
            };
            let shape = if decided {
                format!(
                    r#"<path d="M{xc:.1},{:.1}l5,5l-5,5l-5,-5z" fill="{fill}"/>"#,
                    yc - 5.0
                )
            } else {
                format!(r#"<circle cx="{xc:.1}" cy="{yc:.1}" r="3" fill="{fill}"/>"#)
            };
            let _ = write!(
                s,
                r##"<g class="mark"><title>{} at {} ({})</title>{shape}<text x="{:.1}" y="{:.1}" font-size="10.5" fill="{fill}" font-weight="{weight}" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text></g>"##,
                esc(&m.label),
                esc(&m.node),
                ms(m.at_ns),
                (xc - 8.0 - text_width(&m.label, 10.5)).max(2.0),
                yc + 3.5,
                esc(&m.label)
            );
        }
        s.push_str("</g>");
    }
}

/// Lifelines: every node of a small cluster, else the ones the messages involve.
fn lifeline_nodes(run: &RunData, w: &Window) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for m in &w.msgs {
        for n in [&m.src, &m.dest] {
            if !seen.contains(n) {
                seen.push(n.clone());
            }
        }
    }
    if run.nodes.is_empty() {
        return seen;
    }
    let mut nodes = run.nodes.clone();
    if nodes.len() > 9 {
        nodes.retain(|n| seen.contains(n));
    }
    nodes
}

/// Decisions reported and client ops invoked or completed on the window's instance; a
/// window with no instance has only its own marks (the multicast checkers' multicasts
/// and deliveries).
fn context_marks(run: &RunData, w: &Window) -> Vec<Mark> {
    let Some(key) = w.key else {
        return w.marks.clone();
    };
    let within = |t: u64| t >= w.from_ns && t <= w.to_ns;
    let value = |v: &Value| match v {
        Value::Null => String::new(),
        v => format!(" {v}"),
    };
    let mut marks = Vec::new();
    for r in &run.reports {
        let rep = &r["report"];
        let t = r["time"].as_u64().unwrap_or(0);
        if rep["type"] == "decided" && rep["key"].as_u64() == Some(key) && within(t) {
            let node = r["node"].as_str().unwrap_or("?").to_string();
            let strong = w.marks.iter().any(|m| m.node == node && m.at_ns == t);
            marks.push(Mark {
                at_ns: t,
                label: format!("decided {}", rep["value"]),
                node,
                strong,
            });
        }
    }
    for op in &run.ops {
        let Some(node) = op
            .node
            .clone()
            .filter(|_| op.input["key"].as_u64() == Some(key))
        else {
            continue;
        };
        if within(op.invoke_time) {
            marks.push(Mark {
                at_ns: op.invoke_time,
                label: format!("▸ p{} {}{}", op.process, op.f, value(&op.input["value"])),
                node: node.clone(),
                strong: false,
            });
        }
        if let Some(c) = op.complete_time.filter(|&c| within(c)) {
            let out = op
                .output
                .as_ref()
                .map(|o| value(&o["value"]))
                .unwrap_or_default();
            let word = crate::report::timeline::outcome_word(op.outcome);
            marks.push(Mark {
                at_ns: c,
                label: format!("◂ p{} {word}{out}", op.process),
                node,
                strong: false,
            });
        }
    }
    marks
}

/// An arrow's tooltip: who, what, when, and its fate.
fn tip(m: &Msg) -> String {
    format!(
        "{} → {} {}{}{} sent {}{}",
        m.src,
        m.dest,
        m.ty,
        m.key.map_or(String::new(), |k| format!(" key {k}")),
        if m.detail.is_empty() {
            String::new()
        } else {
            format!(" {}", m.detail)
        },
        ms(m.sent_ns),
        match (m.fate.as_str(), m.at_ns) {
            ("delivered", Some(t)) => format!(", delivered {}", ms(t)),
            (f, Some(t)) => format!(", {f} at {}", ms(t)),
            (f, None) => format!(", {f} at the end"),
        }
    )
}

/// What was left out, and what the times mean.
fn notes(s: &mut String, run: &RunData, w: &Window, arrows: &[Msg]) {
    let mut notes = Vec::new();
    if w.in_window > arrows.len() {
        notes.push(format!(
            "{} of the {} message copies in the window are drawn ({}).",
            arrows.len(),
            w.in_window,
            w.kept
        ));
    }
    if w.source == TRACE_BIN {
        notes.push(format!(
            "Lockstep, from trace.bin: times are virtual; each send is placed at the sender's last step at least {HOP_US} µs before the delivery, and copies the nemesis dropped are not in the trace."
        ));
    } else {
        notes.push("From messages.jsonl: a send is when the router took the copy, a delivery when it handed it to the destination's connection.".into());
        let log = &run.metrics["message_log"];
        if let Some(omitted) = log["omitted"].as_u64().filter(|&n| n > 0) {
            notes.push(format!(
                "The message log left out {omitted} copies in the middle of the run: it keeps the first {} and the last {}.",
                log["head_max"], log["tail_max"]
            ));
        }
        if let Some(unwritten) = log["unwritten"].as_u64().filter(|&n| n > 0) {
            notes.push(format!(
                "messages.jsonl reached its cap of {} bytes: the last {unwritten} copies it held were not written.",
                log["bytes_max"]
            ));
        }
    }
    for n in notes {
        let _ = write!(s, "<p class=\"note\">{}</p>", esc(&n));
    }
}

/// The drawn copies as text, folded.
fn as_text(s: &mut String, arrows: &[Msg]) {
    let _ = write!(
        s,
        "<details><summary>the {} drawn message copies as text</summary><pre><code>",
        arrows.len()
    );
    for m in arrows {
        let _ = writeln!(
            s,
            "{:>12}  {} → {}  {}{}{}  {}{}",
            ms(m.sent_ns),
            esc(&m.src),
            esc(&m.dest),
            esc(&m.ty),
            m.key.map_or(String::new(), |k| format!(" key={k}")),
            if m.detail.is_empty() {
                String::new()
            } else {
                format!(" {}", esc(&m.detail))
            },
            esc(&m.fate),
            m.at_ns.map_or(String::new(), |t| format!(" {}", ms(t)))
        );
    }
    s.push_str("</code></pre></details>");
}
