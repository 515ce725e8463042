//! A wrong global snapshot (workload `bank`), drawn so a reader sees why: per node the
//! recorded balance and its transfer counts, each recorded channel, the total against
//! the bank's, the transfers that crossed the cut the wrong way (counted at both ends,
//! or by nobody), and the faults active while it was taken. The same evidence gives the
//! sequence diagram its window ([`window`]): the snapshot's markers and the crossing
//! transfers on the lifelines, each node's recording point and each crossing send
//! marked.
//!
//! Everything is read from the `snapshots` checker's evidence (`cut`, `snapshots[0]`,
//! `marks`); a run without a wrong snapshot has no such section.

use std::fmt::Write;

use serde_json::Value;

use super::html::{compact, esc, ms};
use super::sequence::{Mark, Msg, Window};
use super::RunData;

/// Slack after the last mark, so the markers that close the channels are in the window.
const AFTER_NS: u64 = 2_000_000;

/// The `snapshots` checker's evidence when it judged a snapshot wrong.
pub(crate) fn evidence(verdict: &Value) -> Option<&Value> {
    verdict["checkers"]
        .as_array()?
        .iter()
        .find(|c| c["checker"] == "snapshots" && c["verdict"] == "invalid")
        .map(|c| &c["evidence"])
        .filter(|e| e["cut"].is_string())
}

/// The section: the first wrong snapshot's recorded state and what crossed its cut.
pub(crate) fn section(s: &mut String, run: &RunData) {
    let Some(ev) = evidence(&run.verdict) else {
        return;
    };
    let snap = &ev["snapshots"][0];
    let total = ev["total"].as_u64().unwrap_or(0);
    let seen = snap["seen"].as_u64().unwrap_or(0);
    let gap = if seen < total {
        format!("lost {}", total - seen)
    } else {
        format!("made {}", seen - total)
    };
    let _ = write!(
        s,
        "<section id=\"snapshot-section\"><h2>Snapshot {} — holds {seen}, the bank holds \
         {total}: {gap}</h2>",
        esc(snap["id"].as_str().unwrap_or("?"))
    );
    s.push_str("<ul>");
    for v in snap["violations"].as_array().into_iter().flatten() {
        let _ = write!(s, "<li>{}</li>", esc(v.as_str().unwrap_or("")));
    }
    s.push_str("</ul>");
    nodes_table(s, snap);
    channels_table(s, snap, total, seen);
    crossed_table(s, snap);
    faults(s, snap);
    s.push_str("</section>\n");
}

/// Per node: balance at its recording point, when it recorded, sent and applied per peer.
fn nodes_table(s: &mut String, snap: &Value) {
    s.push_str(
        "<h3>Each node's recorded state</h3><table class=\"grid\" id=\"snapshot-nodes\">\
         <tr><th>node</th><th>balance</th><th>recorded at</th><th>transfers sent, per peer\
         </th><th>transfers applied, per peer</th></tr>",
    );
    let per_peer = |m: &Value| {
        let parts: Vec<String> = m
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}: {}", compact(v)))
            .collect();
        esc(&parts.join(", "))
    };
    for (node, n) in snap["nodes"].as_object().into_iter().flatten() {
        let at = n["recorded_ns"].as_u64().map_or("?".into(), ms);
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(node),
            compact(&n["balance"]),
            esc(&at),
            per_peer(&n["sent"]),
            per_peer(&n["received"])
        );
    }
    s.push_str("</table>");
}

/// The non-empty recorded channels, and the total against the bank's.
fn channels_table(s: &mut String, snap: &Value, total: u64, seen: u64) {
    s.push_str(
        "<h3>Recorded channels</h3><table class=\"grid\" id=\"snapshot-channels\"><tr>\
         <th>channel</th><th>transfers</th><th>amount</th><th>numbers</th></tr>",
    );
    let channels = snap["channels"].as_object();
    if channels.is_none_or(|c| c.is_empty()) {
        s.push_str("<tr><td colspan=\"4\">every channel was recorded empty</td></tr>");
    }
    for (link, c) in channels.into_iter().flatten() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(link),
            compact(&c["count"]),
            compact(&c["amount"]),
            esc(&compact(&c["seqs"]))
        );
    }
    let balances: u64 = snap["nodes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n["balance"].as_u64())
        .sum();
    let _ = write!(
        s,
        "</table><p><b>Total:</b> balances {balances} + channels {} = <b>{seen}</b>; the \
         bank holds <b>{total}</b>.</p>",
        seen.saturating_sub(balances)
    );
}

/// The transfers that crossed the cut the wrong way.
fn crossed_table(s: &mut String, snap: &Value) {
    let Some(crossed) = snap["crossed"].as_array().filter(|c| !c.is_empty()) else {
        s.push_str(
            "<p class=\"note\">No transfer can be named as crossing the cut; the counts \
             above disagree.</p>",
        );
        return;
    };
    s.push_str(
        "<h3>Transfers that crossed the cut</h3><table class=\"grid\" id=\"snapshot-crossed\">\
         <tr><th>transfer</th><th>amount</th><th>sent at</th><th>counted</th><th>why</th></tr>",
    );
    for c in crossed {
        let at = c["sent_ns"].as_u64().map_or("?".into(), ms);
        let how = match c["how"].as_str() {
            Some("twice") => "twice",
            Some("lost") => "by nobody",
            _ => "?",
        };
        let _ = write!(
            s,
            "<tr><td>{} #{}</td><td class=\"num\">{}</td><td>{}</td><td>{how}</td><td>{}</td></tr>",
            esc(c["link"].as_str().unwrap_or("?")),
            compact(&c["seq"]),
            compact(&c["amount"]),
            esc(&at),
            esc(c["why"].as_str().unwrap_or(""))
        );
    }
    s.push_str("</table>");
}

fn faults(s: &mut String, snap: &Value) {
    let faults = match snap["faults"].as_array() {
        Some(list) if !list.is_empty() => {
            let what: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            esc(&what.join("; "))
        }
        _ => "none".to_string(),
    };
    let _ = write!(
        s,
        "<p><b>Faults active while it was taken</b> ({} → {}): {faults}</p>",
        ms(snap["recorded_from_ns"].as_u64().unwrap_or(0)),
        ms(snap["recorded_to_ns"].as_u64().unwrap_or(0)),
    );
}

/// The sequence diagram's window for a wrong snapshot: its markers and the crossing
/// transfers, from the first recording point to just after the last mark.
pub(crate) fn window(ev: &Value, msgs: &[Msg]) -> Window {
    let id = ev["cut"].as_str().unwrap_or("?");
    let mut marks: Vec<Mark> = ev["marks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(Mark {
                at_ns: m["time_ns"].as_u64()?,
                node: m["node"].as_str()?.to_string(),
                label: m["label"].as_str()?.to_string(),
                strong: true,
            })
        })
        .collect();
    marks.sort_by_key(|m| m.at_ns);
    let from_ns = marks.first().map_or(0, |m| m.at_ns);
    let to_ns = marks.last().map_or(from_ns, |m| m.at_ns) + AFTER_NS;
    let crossed: Vec<(String, String, String)> = ev["snapshots"][0]["crossed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c["from"].as_str()?.to_string(),
                c["to"].as_str()?.to_string(),
                c["seq"].to_string(),
            ))
        })
        .collect();
    let shown = |m: &&Msg| match m.ty.as_str() {
        "marker" => m.detail.contains(id),
        "transfer" => {
            let seq = m.detail.split(' ').next().unwrap_or("");
            crossed
                .iter()
                .any(|(f, t, s)| *f == m.src && *t == m.dest && s == seq)
        }
        _ => false,
    };
    let chosen: Vec<Msg> = msgs.iter().filter(shown).cloned().collect();
    let to_ns = chosen
        .iter()
        .filter_map(|m| m.at_ns)
        .max()
        .map_or(to_ns, |t| t.max(to_ns));
    let n = chosen.len();
    let mut msgs = chosen;
    msgs.truncate(super::sequence::ARROWS_MAX);
    Window {
        key: None,
        from_ns,
        to_ns,
        title: format!("snapshot {id}: its markers and the transfers that crossed its cut"),
        marks,
        marks_caption: "each node's recording point and the crossing transfers' sends".into(),
        msgs,
        in_window: n,
        kept: "the first sent",
        ..Window::default()
    }
}
