//! The metrics: messages per op by type (bars), rounds to decision, fault counters per
//! link total and per node, and every fault event with when it was applied.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::html::{compact, esc, json_html, short_ns};
use super::RunData;

/// Fault events listed at most.
pub const EVENTS_MAX: usize = 200;

/// The metrics section.
pub fn section(s: &mut String, run: &RunData) {
    s.push_str("<section id=\"metrics-section\"><h2>Metrics</h2><div class=\"cols\">");
    messages(s, run);
    rounds(s, run);
    s.push_str("</div>");
    faults(s, run);
    s.push_str("</section>\n");
}

fn messages(s: &mut String, run: &RunData) {
    let m = &run.metrics["messages"];
    let Some(by_type) = m["by_type"].as_object().filter(|o| !o.is_empty()) else {
        s.push_str("<div><h3>Messages</h3><p class=\"note\">No message counts.</p></div>");
        return;
    };
    let mut rows: Vec<(&String, u64, f64)> = by_type
        .iter()
        .map(|(t, n)| {
            (
                t,
                n.as_u64().unwrap_or(0),
                m["per_op"][t.as_str()].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let max = rows.iter().map(|r| r.2).fold(0.0f64, f64::max).max(1e-9);
    let _ = write!(
        s,
        "<div><h3>Messages per op by type</h3><p class=\"note\">{} messages in all; per op = count ÷ client ops.</p><table class=\"grid\" id=\"messages-per-op\"><tr><th>type</th><th>count</th><th>per op</th><th></th></tr>",
        compact(&m["total"])
    );
    for (t, n, per) in rows {
        let _ = write!(
            s,
            r##"<tr><td>{}</td><td class="num">{n}</td><td class="num">{per:.3}</td><td><svg width="220" height="10" viewBox="0 0 220 10"><rect width="{:.1}" height="10" fill="#2f6fd0" fill-opacity="0.75"/></svg></td></tr>"##,
            esc(t),
            (per / max * 220.0).max(1.0)
        );
    }
    s.push_str("</table></div>");
}

/// Rounds to decision from the ok proposes that say how many rounds they took.
fn rounds(s: &mut String, run: &RunData) {
    let mut hist: BTreeMap<u64, u64> = BTreeMap::new();
    for op in &run.ops {
        if op.outcome != workloads::history::Outcome::Ok {
            continue;
        }
        if let Some(r) = op.output.as_ref().and_then(|o| o["rounds"].as_u64()) {
            *hist.entry(r).or_insert(0) += 1;
        }
    }
    if hist.is_empty() {
        return;
    }
    let ran: Vec<(u64, u64)> = hist
        .iter()
        .filter(|(r, _)| **r > 0)
        .map(|(&r, &n)| (r, n))
        .collect();
    let total: u64 = ran.iter().map(|(_, n)| n).sum();
    let mean = if total > 0 {
        ran.iter().map(|(r, n)| r * n).sum::<u64>() as f64 / total as f64
    } else {
        0.0
    };
    let _ = write!(
        s,
        "<div><h3>Rounds to decision</h3><p class=\"note\">Ok proposes by the rounds (ballots) their proposer ran; 0: the instance was already decided. Mean over proposes that ran: {mean:.2}.</p><table class=\"grid\" id=\"rounds\"><tr><th>rounds</th><th>proposes</th></tr>"
    );
    for (r, n) in &hist {
        let _ = write!(
            s,
            "<tr><td class=\"num\">{r}</td><td class=\"num\">{n}</td></tr>"
        );
    }
    s.push_str("</table></div>");
}

fn faults(s: &mut String, run: &RunData) {
    let f = &run.metrics["faults"];
    s.push_str("<h3>Faults</h3>");
    if f.is_null() {
        s.push_str("<p class=\"note\">No fault counters.</p>");
        return;
    }
    s.push_str("<div class=\"cols\">");
    by_kind(s, run);
    if let Some(total) = f["total"].as_object() {
        s.push_str("<div><p class=\"note\">What the nemesis did to node-to-node messages</p><table class=\"grid\" id=\"fault-totals\"><tr>");
        for k in total.keys() {
            let _ = write!(s, "<th>{}</th>", esc(k));
        }
        s.push_str("</tr><tr>");
        for v in total.values() {
            let _ = write!(s, "<td class=\"num\">{}</td>", esc(&compact(v)));
        }
        s.push_str("</tr></table></div>");
    }
    let procs = if f["processes"].is_object() {
        &f["processes"]
    } else {
        &run.metrics["processes"]
    };
    if let Some(procs) = procs.as_object().filter(|p| !p.is_empty()) {
        let cols = ["kills", "restarts", "pauses", "resumes", "crashes"];
        let present: Vec<&str> = cols
            .iter()
            .copied()
            .filter(|c| procs.values().any(|p| !p[*c].is_null()))
            .collect();
        s.push_str("<div><p class=\"note\">Process faults per node</p><table class=\"grid\" id=\"process-faults\"><tr><th>node</th>");
        for c in &present {
            let _ = write!(s, "<th>{c}</th>");
        }
        s.push_str("</tr>");
        for (node, p) in procs {
            let _ = write!(s, "<tr><td>{}</td>", esc(node));
            for c in &present {
                let _ = write!(s, "<td class=\"num\">{}</td>", esc(&compact(&p[*c])));
            }
            s.push_str("</tr>");
        }
        s.push_str("</table></div>");
    }
    s.push_str("</div>");
    let events = f["events"]["events"]
        .as_array()
        .or(run.metrics["confirmations"]["events"].as_array());
    if let Some(events) = events.filter(|e| !e.is_empty()) {
        s.push_str("<p class=\"note\">Schedule events: when each was applied (schedule time, ms from the clients' start) and its evidence</p><table class=\"grid\" id=\"fault-events\"><tr><th>id</th><th>event</th><th>applied</th><th>at</th><th>evidence</th></tr>");
        for e in events.iter().take(EVENTS_MAX) {
            let applied = match &e["applied"] {
                Value::Bool(true) => "yes".to_string(),
                Value::Bool(false) => "no".to_string(),
                other => compact(other),
            };
            let at = e["applied_at_ms"]
                .as_u64()
                .map_or("—".into(), |t| format!("{t} ms"));
            let evidence = match &e["evidence"] {
                Value::Array(items) => items
                    .iter()
                    .map(evidence_text)
                    .collect::<Vec<_>>()
                    .join("; "),
                Value::Null => String::new(),
                other => evidence_text(other),
            };
            let reason = e["reason"]
                .as_str()
                .map_or(String::new(), |r| format!(" ({r})"));
            let _ = write!(
                s,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&compact(&e["id"])),
                esc(&compact(&e["what"])),
                esc(&applied),
                esc(&reason),
                esc(&at),
                esc(&evidence)
            );
        }
        s.push_str("</table>");
        if events.len() > EVENTS_MAX {
            let _ = write!(
                s,
                "<p class=\"note\">… {} more events in metrics.json</p>",
                events.len() - EVENTS_MAX
            );
        }
    }
    if let Some(log) = run.metrics["message_log"].as_object() {
        s.push_str("<details><summary>message log</summary>");
        s.push_str(&json_html(&Value::Object(log.clone()), 2, 10));
        s.push_str("</details>");
    }
}

/// Spans per fault kind and how long they were on in all (open ones to the end).
fn by_kind(s: &mut String, run: &RunData) {
    if run.spans.is_empty() {
        return;
    }
    let mut kinds: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for sp in &run.spans {
        let e = kinds.entry(sp.kind.as_str()).or_insert((0, 0));
        e.0 += 1;
        e.1 += sp.end.unwrap_or(run.end_ns).saturating_sub(sp.start);
    }
    s.push_str("<div><p class=\"note\">Faults by kind</p><table class=\"grid\" id=\"fault-kinds\"><tr><th>kind</th><th>times</th><th>active in all</th></tr>");
    for (kind, (n, ns)) in kinds {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{}</td></tr>",
            esc(kind),
            esc(&short_ns(ns as f64))
        );
    }
    s.push_str("</table></div>");
}

/// `links_cut 6, while_active: cut 918 delivered 1336`: nonzero fields only.
fn evidence_text(v: &Value) -> String {
    match v {
        Value::Object(o) => o
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Number(n) if n.as_u64() == Some(0)))
            .map(|(k, v)| match v {
                Value::Object(_) => format!("{k}: {}", evidence_text(v)),
                other => format!("{k} {}", compact(other)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => compact(other),
    }
}
