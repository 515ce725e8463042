//! The message sequence diagram: one lifeline per node, time downwards, an arrow per
//! message copy from its send to its delivery, labelled by type; dropped copies end in
//! a cross. Decisions and client ops on the instance are marked on the lifelines, and
//! faults active in the window are shaded.
//!
//! Which messages: for an invalid run whose evidence names an instance (`key`), that
//! instance's messages from its first one to just after the conflicting decisions; for
//! a linearizability window, the window's key and times; otherwise the busiest
//! instance, or the traffic from the start of the last fault. A wrong global snapshot's
//! window is [`super::snapshot::window`]. At most [`ARROWS_MAX`]
//! arrows: those nearest the conflicting decisions are kept.
//!
//! Messages come from `messages.jsonl` (free-running: the router's times of taking and
//! handing over each copy) or `trace.bin` (lockstep: deliveries in virtual time; the
//! trace has no send record, so a send is placed at the sender's last step at least
//! [`HOP_US`] before the delivery, and copies the nemesis dropped are not there). In
//! both modes an arrow is labelled with its type and the body's salient fields
//! (ballot, value, round: [`msglog::label`]), read by the same code.
//!
//! Choosing and loading are here; `layout` gives events their rows and `draw` writes
//! the section.

use std::collections::BTreeMap;

use serde_json::Value;

use super::html::ms;
use super::RunData;
use crate::router::msglog;
use crate::trace::{TraceKind, HOP_US};

mod draw;
mod layout;

pub(crate) use draw::section;

/// Arrows drawn at most.
pub const ARROWS_MAX: usize = 80;
/// Slack after the last conflicting decision.
const AFTER_NS: u64 = 1_000_000;
/// How far before the first conflicting decision traffic is shown when messages carry
/// no key.
const KEYLESS_BEFORE_NS: u64 = 20_000_000;

/// One copy of a message, in ns since the run's start.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub sent_ns: u64,
    /// Delivery (or drop) time; `None` when it was still held or delayed at the end.
    pub at_ns: Option<u64>,
    pub src: String,
    pub dest: String,
    pub ty: String,
    pub key: Option<u64>,
    pub fate: String,
    pub dup: bool,
    /// The body's other fields, short: the same [`msglog::label`] in both modes.
    pub detail: String,
}

/// Something to mark on a lifeline: a decision, a client op's invoke or completion.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub at_ns: u64,
    pub node: String,
    pub label: String,
    /// A conflicting decision (drawn strong) rather than context.
    pub strong: bool,
}

/// The messages the diagram shows and why.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    pub key: Option<u64>,
    pub from_ns: u64,
    pub to_ns: u64,
    /// `instance 29: the agreement violation` and the like.
    pub title: String,
    /// The conflicting decisions (also drawn on the timeline).
    pub marks: Vec<Mark>,
    pub marks_caption: String,
    pub msgs: Vec<Msg>,
    /// Copies in the window before the cap.
    pub in_window: usize,
    /// Why there is nothing to draw, when there is not.
    pub empty_because: Option<String>,
    /// Which copies were kept when the window held more than [`ARROWS_MAX`].
    pub kept: &'static str,
    /// The file the messages came from: [`MESSAGES_JSONL`] or [`TRACE_BIN`].
    pub source: &'static str,
}

/// A free run's message log.
pub(crate) const MESSAGES_JSONL: &str = "messages.jsonl";
/// A lockstep run's trace.
pub(crate) const TRACE_BIN: &str = "trace.bin";

/// Reads the run's messages: `messages.jsonl`, else `trace.bin`.
pub(crate) fn load_messages(run: &RunData) -> Result<(Vec<Msg>, &'static str), String> {
    let jsonl = run.dir.join(MESSAGES_JSONL);
    if jsonl.is_file() {
        let lines =
            crate::results::read_jsonl::<msglog::MessageLine>(&jsonl).map_err(|e| e.to_string())?;
        let msgs = lines
            .into_iter()
            .map(|m| Msg {
                sent_ns: m.sent_us * 1_000,
                at_ns: m.at_us.map(|t| t * 1_000),
                src: m.src,
                dest: m.dest,
                ty: m.ty,
                key: m.key,
                fate: m.fate,
                dup: m.dup,
                detail: m.label,
            })
            .collect();
        return Ok((msgs, MESSAGES_JSONL));
    }
    let trace = run.dir.join(TRACE_BIN);
    if trace.is_file() {
        let records = crate::trace::read_trace(&trace).map_err(|e| format!("{e:#}"))?;
        return Ok((from_trace(&records), TRACE_BIN));
    }
    Err("this run directory has neither messages.jsonl nor trace.bin".into())
}

/// Node-to-node deliveries of a lockstep trace, with estimated send times.
fn from_trace(records: &[crate::trace::TraceRecord]) -> Vec<Msg> {
    let mut steps: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in records {
        if matches!(
            r.kind,
            TraceKind::Init | TraceKind::Message | TraceKind::Request | TraceKind::Timer
        ) {
            steps.entry(r.node.as_str()).or_default().push(r.at_us);
        }
    }
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.kind == TraceKind::Message) {
        let Ok(head) = proto::EnvelopeHead::parse(r.line.as_bytes()) else {
            continue;
        };
        let src = head.src.to_string();
        let (ty, salient) = msglog::read_body(head.body.get()).unwrap_or_default();
        let latest = r.at_us.saturating_sub(HOP_US);
        let sent_us = steps
            .get(src.as_str())
            .and_then(|t| {
                let i = t.partition_point(|&x| x <= latest);
                i.checked_sub(1).map(|i| t[i])
            })
            .unwrap_or(latest);
        out.push(Msg {
            sent_ns: sent_us * 1_000,
            at_ns: Some(r.at_us * 1_000),
            src,
            dest: r.node.clone(),
            ty: if ty.is_empty() {
                "?".into()
            } else {
                ty.into_owned()
            },
            key: salient.key,
            fate: "delivered".into(),
            dup: false,
            detail: salient.label.as_str().to_string(),
        });
    }
    out.sort_by_key(|m| m.sent_ns);
    out
}

/// The first checker's evidence that names an instance or a window.
fn violation(run: &RunData) -> Option<&Value> {
    run.verdict["checkers"]
        .as_array()?
        .iter()
        .filter(|c| c["verdict"] == "invalid")
        .map(|c| &c["evidence"])
        .find(|e| e["key"].is_u64() || e["marks"].is_array() || super::lin_window_of(e).is_some())
}

/// Chooses what the diagram shows (and what the timeline marks).
pub(crate) fn choose_window(run: &RunData) -> Window {
    let (msgs, source) = match load_messages(run) {
        Ok(m) => m,
        Err(why) => {
            return Window {
                title: "no messages".into(),
                empty_because: Some(why),
                ..Window::default()
            }
        }
    };
    let mut w = match violation(run) {
        Some(ev) if ev["cut"].is_string() => super::snapshot::window(ev, &msgs),
        Some(ev) if ev["marks"].is_array() => marks_window(ev, &msgs),
        Some(ev) if ev["key"].is_u64() => consensus_window(ev, &msgs),
        Some(ev) => match super::lin_window_of(ev) {
            Some(lw) => lin_window(lw, &msgs),
            None => quiet_window(run, &msgs),
        },
        None => quiet_window(run, &msgs),
    };
    w.source = source;
    if w.msgs.is_empty() && w.empty_because.is_none() {
        w.empty_because = Some(if msgs.is_empty() {
            "no node-to-node messages were recorded in this run".into()
        } else {
            "no node-to-node message falls in this window".into()
        });
    }
    w
}

/// The instance's messages up to just after its conflicting decisions.
fn consensus_window(ev: &Value, msgs: &[Msg]) -> Window {
    let key = ev["key"].as_u64();
    let property = ev["property"].as_str().unwrap_or("property");
    let mut marks = Vec::new();
    for val in ev["values"].as_array().into_iter().flatten() {
        let v = val["value"].to_string();
        let seen = val["seen"].as_array().cloned().unwrap_or_default();
        let report = seen
            .iter()
            .filter(|w| w["source"] == "report")
            .filter_map(|w| Some((w["time"].as_u64()?, w["node"].as_str()?.to_string())))
            .min();
        let op = seen
            .iter()
            .filter_map(|w| {
                Some((
                    w["complete_time"].as_u64()?,
                    w["node"].as_str().unwrap_or("?").to_string(),
                ))
            })
            .min();
        let (at_ns, node, how) = match (report, op) {
            (Some((t, n)), _) => (t, n, "decided"),
            (None, Some((t, n))) => (t, n, "returned"),
            (None, None) => continue,
        };
        marks.push(Mark {
            at_ns,
            label: format!("{how} {v} at {node}"),
            node,
            strong: true,
        });
    }
    marks.sort_by_key(|m| m.at_ns);
    let first_mark = marks.first().map_or(0, |m| m.at_ns);
    // With no decision to mark (a termination violation), every message of the key.
    let last_mark = marks.last().map(|m| m.at_ns);
    let to_ns = last_mark.map_or(u64::MAX, |l| l.saturating_add(AFTER_NS));
    let mut of_key: Vec<&Msg> = msgs.iter().filter(|m| m.key == key).collect();
    let keyless = of_key.is_empty();
    if keyless {
        // Messages that do not name their instance: all traffic shortly before the
        // decisions.
        of_key = msgs
            .iter()
            .filter(|m| m.sent_ns.saturating_add(KEYLESS_BEFORE_NS) >= first_mark)
            .collect();
    }
    let from_ns = of_key.first().map_or(first_mark, |m| m.sent_ns);
    let in_window: Vec<&Msg> = of_key
        .into_iter()
        .filter(|m| m.sent_ns >= from_ns && m.sent_ns <= to_ns)
        .collect();
    let n = in_window.len();
    let kept = nearest(in_window, first_mark, last_mark.unwrap_or(u64::MAX));
    let (from_ns, to_ns) = extent(&kept, from_ns, to_ns);
    let caption = format!(
        "the conflicting decisions on instance {}",
        key.map_or("?".into(), |k| k.to_string())
    );
    Window {
        key,
        from_ns,
        to_ns: to_ns.max(last_mark.unwrap_or(0)),
        title: format!(
            "instance {}: the {property} violation{}",
            key.map_or("?".into(), |k| k.to_string()),
            if keyless {
                " (its messages carry no key: all traffic around the decisions)"
            } else {
                ""
            }
        ),
        marks,
        marks_caption: caption,
        msgs: kept,
        in_window: n,
        kept: "those sent nearest the violation",
        ..Window::default()
    }
}

/// A violation whose evidence lists lifeline marks (the multicast order checkers: each
/// message's multicast and its deliveries at the nodes that disagree): the copies that
/// carry the evidence's `pair` (a body whose last field is the value), sent between the
/// first mark and just after the last; all traffic then if none does.
fn marks_window(ev: &Value, msgs: &[Msg]) -> Window {
    let mark = |m: &Value| {
        Some(Mark {
            at_ns: m["time_ns"].as_u64()?,
            node: m["node"].as_str()?.to_string(),
            label: m["label"].as_str()?.to_string(),
            strong: true,
        })
    };
    let mut marks: Vec<Mark> = super::items(&ev["marks"]).filter_map(mark).collect();
    marks.sort_by_key(|m| m.at_ns);
    let from_ns = marks.first().map_or(0, |m| m.at_ns);
    let to_ns = marks
        .last()
        .map_or(from_ns, |m| m.at_ns)
        .saturating_add(AFTER_NS);
    let values: Vec<String> = super::items(&ev["pair"]).map(Value::to_string).collect();
    let in_range = |m: &&Msg| m.sent_ns >= from_ns && m.sent_ns <= to_ns;
    let carries = |m: &&Msg| {
        m.detail
            .rsplit(' ')
            .next()
            .is_some_and(|last| values.iter().any(|v| v == last))
    };
    let mut chosen: Vec<&Msg> = msgs.iter().filter(in_range).filter(carries).collect();
    if chosen.is_empty() {
        chosen = msgs.iter().filter(in_range).collect();
    }
    let n = chosen.len();
    let property = ev["property"].as_str().unwrap_or("order");
    Window {
        key: None,
        from_ns,
        to_ns,
        title: format!(
            "the {property} violation: messages {}",
            values.join(" and ")
        ),
        marks,
        marks_caption: "the two messages' multicasts and their deliveries".into(),
        msgs: nearest(chosen, from_ns, to_ns),
        in_window: n,
        kept: "those sent nearest the violation",
        ..Window::default()
    }
}

/// A linearizability failure's window ([`super::lin_window_of`]): its key (when a
/// number) and its ops' times.
fn lin_window(w: &Value, msgs: &[Msg]) -> Window {
    let key = w["key"].as_u64();
    let ops = w["ops"].as_array().cloned().unwrap_or_default();
    let from_ns = ops
        .iter()
        .filter_map(|o| o["call"].as_u64())
        .min()
        .unwrap_or(0);
    let to_ns = ops
        .iter()
        .filter_map(|o| o["ret"].as_u64().or(o["call"].as_u64()))
        .max()
        .unwrap_or(from_ns);
    let in_window: Vec<&Msg> = msgs
        .iter()
        .filter(|m| key.is_none() || m.key == key)
        .filter(|m| m.sent_ns >= from_ns && m.sent_ns <= to_ns)
        .collect();
    let n = in_window.len();
    let kept = nearest(in_window, from_ns, to_ns);
    Window {
        key,
        from_ns,
        to_ns,
        title: match key {
            Some(k) => format!("key {k}: the failing window"),
            None => "the failing window".into(),
        },
        msgs: kept,
        in_window: n,
        kept: "the first ones",
        ..Window::default()
    }
}

/// How eventful an instance was: ballots started on it, copies the nemesis dropped,
/// copies in all; the earliest wins a tie.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Eventful {
    ballots: u64,
    dropped: u64,
    copies: u64,
}

/// A run without a located violation: its most eventful instance (most ballots, then
/// most dropped copies, then most copies), or the traffic from the start of the last
/// fault when messages carry no key.
fn quiet_window(run: &RunData, msgs: &[Msg]) -> Window {
    let mut by_key: BTreeMap<u64, (Eventful, u64)> = BTreeMap::new();
    for m in msgs {
        if let Some(k) = m.key {
            let e = by_key.entry(k).or_insert((Eventful::default(), m.sent_ns));
            e.0.copies += 1;
            if m.fate != "delivered" {
                e.0.dropped += 1;
            }
        }
    }
    for r in &run.reports {
        if r["report"]["type"] == "ballot_started" {
            if let Some(e) = r["report"]["key"].as_u64().and_then(|k| by_key.get_mut(&k)) {
                e.0.ballots += 1;
            }
        }
    }
    let chosen_key = by_key
        .iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
        .map(|(&k, &(ev, _))| (k, ev));
    let (key, title, chosen): (Option<u64>, String, Vec<&Msg>) = match chosen_key {
        Some((k, ev)) => (
            Some(k),
            if ev.ballots > 0 {
                format!(
                    "instance {k}: the most contended instance ({} ballots, {} copies dropped)",
                    ev.ballots, ev.dropped
                )
            } else {
                format!(
                    "instance {k}: the most eventful instance ({} copies, {} dropped)",
                    ev.copies, ev.dropped
                )
            },
            msgs.iter().filter(|m| m.key == Some(k)).collect(),
        ),
        None => {
            let from = run
                .spans
                .iter()
                .rev()
                .map(|s| s.start)
                .find(|&t| msgs.iter().any(|m| m.sent_ns >= t))
                .unwrap_or(0);
            let title = if from > 0 {
                format!("traffic from the last fault, at {}", ms(from))
            } else {
                "the first messages of the run".into()
            };
            (
                None,
                title,
                msgs.iter().filter(|m| m.sent_ns >= from).collect(),
            )
        }
    };
    let n = chosen.len();
    let kept: Vec<Msg> = chosen.into_iter().take(ARROWS_MAX).cloned().collect();
    let (from_ns, to_ns) = extent(&kept, 0, 0);
    Window {
        key,
        from_ns,
        to_ns,
        title,
        msgs: kept,
        in_window: n,
        kept: "the first ones",
        ..Window::default()
    }
}

/// At most [`ARROWS_MAX`] of `msgs`: those sent nearest `[lo, hi]`, in send order.
fn nearest(msgs: Vec<&Msg>, lo: u64, hi: u64) -> Vec<Msg> {
    let mut idx: Vec<usize> = (0..msgs.len()).collect();
    if msgs.len() > ARROWS_MAX {
        let dist = |m: &Msg| {
            if m.sent_ns < lo {
                lo - m.sent_ns
            } else {
                m.sent_ns.saturating_sub(hi)
            }
        };
        idx.sort_by_key(|&i| (dist(msgs[i]), i));
        idx.truncate(ARROWS_MAX);
        idx.sort_unstable();
    }
    idx.into_iter().map(|i| msgs[i].clone()).collect()
}

fn extent(msgs: &[Msg], from: u64, to: u64) -> (u64, u64) {
    match (
        msgs.first(),
        msgs.iter().map(|m| m.at_ns.unwrap_or(m.sent_ns)).max(),
    ) {
        (Some(first), Some(last)) => (first.sent_ns, last.max(to.min(last + AFTER_NS))),
        _ => (from, to),
    }
}

/// A delivered copy about instance 1, for the diagram's tests.
#[cfg(test)]
fn test_msg(sent_us: u64, at_us: u64, src: &str, dest: &str, ty: &str) -> Msg {
    Msg {
        sent_ns: sent_us * 1000,
        at_ns: Some(at_us * 1000),
        src: src.into(),
        dest: dest.into(),
        ty: ty.into(),
        key: Some(1),
        fate: "delivered".into(),
        dup: false,
        detail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_msg as msg;
    use super::*;

    #[test]
    fn the_arrows_kept_are_those_nearest_the_violation() {
        let msgs: Vec<Msg> = (0..200)
            .map(|i| msg(i * 10, i * 10 + 1, "n1", "n2", "x"))
            .collect();
        let refs: Vec<&Msg> = msgs.iter().collect();
        let kept = nearest(refs, 1_500_000, 1_600_000);
        assert_eq!(kept.len(), ARROWS_MAX);
        assert!(kept
            .iter()
            .all(|m| m.sent_ns >= 1_100_000 && m.sent_ns <= 2_000_000));
        assert!(kept.windows(2).all(|w| w[0].sent_ns <= w[1].sent_ns));
    }

    #[test]
    fn a_violation_without_decisions_ends_its_window_at_its_last_message() {
        // A termination violation: the instance's values were never decided or returned.
        let ev = serde_json::json!({"key": 1, "property": "termination", "values": []});
        let msgs = [
            msg(100, 110, "n1", "n2", "prepare"),
            msg(200, 210, "n2", "n1", "promise"),
        ];
        let w = consensus_window(&ev, &msgs);
        assert_eq!(w.from_ns, 100_000);
        assert!(
            w.to_ns >= 210_000 && w.to_ns <= 210_000 + AFTER_NS,
            "{}",
            w.to_ns
        );
    }

    #[test]
    fn lockstep_sends_sit_at_the_senders_last_step_before_the_hop() {
        use crate::trace::TraceRecord;
        let rec = |at_us: u64, node: &str, kind: TraceKind, line: &str| TraceRecord {
            step: 0,
            at_us,
            node: node.into(),
            kind,
            line: line.into(),
        };
        let records = [
            rec(1000, "n1", TraceKind::Request, "{}"),
            rec(1050, "n1", TraceKind::Timer, "{}"),
            rec(
                1100,
                "n2",
                TraceKind::Message,
                r#"{"src":"n1","dest":"n2","body":{"type":"accept","key":4,"ballot":{"round":2,"node":"n1"},"value":9}}"#,
            ),
        ];
        let msgs = from_trace(&records);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].sent_ns, 1_000_000);
        assert_eq!(msgs[0].key, Some(4));
        assert_eq!(msgs[0].detail, "(2,n1) 9");
    }
}
