//! The linearizability explanation, drawn: the failing window's ops as bars on a time
//! axis, one lane per process, the op the search got stuck on in red, the ops it did
//! linearize numbered in the order it found, and a short text of why.
//!
//! It reads the checker's evidence as `verdict.json` has it: `{"explanation":
//! {"partitions": [{key, linearized, state, stuck}], "window": {key, ops, minimal,
//! relaxed}}}` (lincheck's `Explanation`), or a bare window ([`super::lin_window_of`]).
//! The window is a certificate (a small sub-history that is still not linearizable);
//! without one, the failing partition's search is drawn: the last [`SEARCH_OPS_MAX`]
//! ops it linearized and the op it got stuck on.
//!
//! When the consensus section shows another instance than the one the window is about,
//! the page says why (the linearizability checker stops at the first instance it proves
//! invalid) and, when that instance is among the failing partitions, draws its search
//! too, so both sections can be read about the same instance.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::html::{compact, esc, short_ns};
use super::svg::{nice_step, text_width, GUTTER, RIGHT, WIDTH};

/// Ops of a search drawn at most (the last ones it linearized, then the stuck one).
pub const SEARCH_OPS_MAX: usize = 30;
/// Ops of a window drawn at most.
pub const WINDOW_OPS_MAX: usize = 60;

const LANE_H: f64 = 30.0;
const TOP: f64 = 8.0;

/// One op to draw.
#[derive(Debug, Clone)]
struct Bar {
    index: u64,
    process: String,
    text: String,
    call: u64,
    ret: Option<u64>,
}

impl Bar {
    fn from(v: &Value) -> Option<Bar> {
        let text = v["op"].as_str()?.to_string();
        let process = text.split(' ').next().unwrap_or("?").to_string();
        Some(Bar {
            index: v["index"].as_u64()?,
            process,
            text,
            call: v["call"].as_u64()?,
            ret: v["ret"].as_u64(),
        })
    }
}

/// Whether a checker's evidence is a linearizability explanation this draws.
pub fn is_lin_evidence(ev: &Value) -> bool {
    ev["explanation"]["partitions"].is_array() || super::lin_window_of(ev).is_some()
}

/// Writes the explanation: text, chart(s), and a note when `consensus_key` (the
/// instance the consensus section shows) is another one.
pub fn section(s: &mut String, ev: &Value, consensus_key: Option<u64>) {
    let ex = &ev["explanation"];
    let partitions: Vec<&Value> = ex["partitions"].as_array().into_iter().flatten().collect();
    let window = if ex["window"]["ops"].is_array() {
        Some(&ex["window"])
    } else {
        super::lin_window_of(ev)
    };
    let key = window
        .map(|w| &w["key"])
        .or_else(|| partitions.first().map(|p| &p["key"]))
        .cloned()
        .unwrap_or(Value::Null);
    let partition_of = |k: &Value| partitions.iter().copied().find(|p| &p["key"] == k);
    let first = partition_of(&key);
    why(s, &key, first, window);
    match window {
        Some(w) => {
            let bars: Vec<Bar> = super::items(&w["ops"])
                .filter_map(Bar::from)
                .take(WINDOW_OPS_MAX)
                .collect();
            chart(s, &key, &bars, first, "lin-window");
        }
        None => {
            if let Some(p) = first {
                chart(s, &key, &search_bars(p), Some(p), "lin-window");
            }
        }
    }
    let Some(other) = consensus_key.filter(|k| key.as_u64() != Some(*k)) else {
        return;
    };
    let unknown = ex["unknown_partitions"].as_u64().unwrap_or(0);
    let _ = write!(
        s,
        "<p class=\"note\">The consensus section shows instance {other}; this checker \
         explains instance {}: it stops at the first instance it proves not linearizable \
         ({} failing, {unknown} left unchecked) and shrinks that one to a window.",
        esc(&compact(&key)),
        partitions.len()
    );
    match partition_of(&Value::from(other)) {
        Some(p) => {
            s.push_str(" Instance ");
            let _ = write!(s, "{other} fails here too; its search:</p>");
            why(s, &p["key"], Some(p), None);
            chart(
                s,
                &p["key"],
                &search_bars(p),
                Some(p),
                "lin-consensus-instance",
            );
        }
        None => {
            let _ = write!(
                s,
                " Instance {other} was not among the instances it got to.</p>"
            );
        }
    }
}

/// The last ops a partition's search linearized, then the op it got stuck on.
fn search_bars(p: &Value) -> Vec<Bar> {
    let lin: Vec<Bar> = super::items(&p["linearized"])
        .filter_map(Bar::from)
        .collect();
    let skip = lin.len().saturating_sub(SEARCH_OPS_MAX);
    let mut bars: Vec<Bar> = lin.into_iter().skip(skip).collect();
    bars.extend(Bar::from(&p["stuck"]));
    bars
}

/// The short text: what the search managed, where it got stuck, and what the window is.
fn why(s: &mut String, key: &Value, p: Option<&Value>, window: Option<&Value>) {
    let _ = write!(s, "<p><b>Instance {}</b>: ", esc(&compact(key)));
    if let Some(p) = p {
        let n = p["linearized"].as_array().map_or(0, Vec::len);
        let state = p["state"].as_str().unwrap_or("?");
        let _ = write!(
            s,
            "the checker put {n} op{} of this instance in an order that respects real time \
             (numbered on the bars), leaving the model in state <code>{}</code>. ",
            if n == 1 { "" } else { "s" },
            esc(state)
        );
        match p["stuck"]["op"].as_str() {
            Some(op) => {
                let _ = write!(
                    s,
                    "Then it got stuck on <code class=\"stuck\">{}</code> (red): no order of \
                     the ops, each taking effect between its invoke and its return, explains \
                     what it returned. ",
                    esc(op)
                );
            }
            None => s.push_str("No op could follow them. "),
        }
    }
    if let Some(w) = window {
        let n = w["ops"].as_array().map_or(0, Vec::len);
        let _ = write!(
            s,
            "The {n} ops drawn are a failing window: still not linearizable on their own{}{}.",
            if w["minimal"] == true {
                ", and dropping any one of them makes them linearizable"
            } else {
                " (not shrunk to a minimum: the budget ran out)"
            },
            match w["relaxed"].as_u64() {
                Some(r) if r > 0 => format!("; {r} other ops were relaxed"),
                _ => String::new(),
            }
        );
    }
    s.push_str("</p>");
}

/// The bars, one lane per process, on the window's own time axis.
fn chart(s: &mut String, key: &Value, bars: &[Bar], p: Option<&Value>, id: &str) {
    if bars.is_empty() {
        s.push_str("<p class=\"note\">No ops to draw.</p>");
        return;
    }
    let stuck = p.and_then(|p| p["stuck"]["index"].as_u64());
    let order: BTreeMap<u64, usize> = p
        .and_then(|p| p["linearized"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|o| o["index"].as_u64())
        .enumerate()
        .map(|(i, index)| (index, i + 1))
        .collect();
    let mut lanes: Vec<&str> = bars.iter().map(|b| b.process.as_str()).collect();
    lanes.sort_by_key(|p| {
        (
            p.trim_start_matches('p').parse::<u64>().unwrap_or(u64::MAX),
            *p,
        )
    });
    lanes.dedup();
    let from = bars.iter().map(|b| b.call).min().unwrap_or(0);
    let last = bars
        .iter()
        .map(|b| b.ret.unwrap_or(b.call))
        .max()
        .unwrap_or(from);
    let span = (last - from).max(1) as f64 * 1.08;
    let w = WIDTH - GUTTER - RIGHT;
    let x = |t: u64| GUTTER + w * ((t.saturating_sub(from)) as f64 / span);
    let bottom = TOP + LANE_H * lanes.len() as f64;
    let height = bottom + 34.0;
    let _ = write!(
        s,
        r#"<svg id="{id}" class="lin-chart" data-key="{}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}">"#,
        esc(&compact(key))
    );
    // Time axis: offsets from the first invoke, which is given in the caption.
    let step = nice_step(span / 8.0);
    let mut t = 0.0;
    while t <= span {
        let tx = GUTTER + w * (t / span);
        let _ = write!(
            s,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{bottom:.1}" stroke="#e6e8ee"/><text x="{tx:.1}" y="{:.1}" font-size="10.5" fill="#5d6678" text-anchor="middle">+{}</text>"##,
            bottom + 12.0,
            esc(&short_ns(t))
        );
        t += step;
    }
    let _ = write!(
        s,
        r##"<text x="{GUTTER}" y="{:.1}" font-size="10.5" fill="#5d6678">time since the first op's invoke, at {} in the run</text>"##,
        bottom + 27.0,
        esc(&short_ns(from as f64))
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = TOP + LANE_H * i as f64;
        let _ = write!(
            s,
            r##"<text x="6" y="{:.1}" font-size="11" fill="#39414f">{}</text>"##,
            y + LANE_H / 2.0 + 4.0,
            esc(lane)
        );
    }
    for b in bars {
        let lane = lanes.iter().position(|l| *l == b.process).unwrap_or(0);
        let y = TOP + LANE_H * lane as f64 + 5.0;
        let h = LANE_H - 10.0;
        let x0 = x(b.call);
        let x1 = b.ret.map_or(WIDTH - RIGHT, x).max(x0 + 3.0);
        let is_stuck = Some(b.index) == stuck;
        let (fill, stroke, class) = if is_stuck {
            ("#f8d4d4", "#d93b3b", "lin-op stuck")
        } else if order.contains_key(&b.index) {
            ("#d7e6f7", "#3a78c2", "lin-op linearized")
        } else {
            ("#e9ebf0", "#8a93a6", "lin-op")
        };
        let dash = if b.ret.is_none() {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let returned = b.ret.map_or("never returned".to_string(), |r| {
            format!("returned at {}", short_ns(r as f64))
        });
        let _ = write!(
            s,
            r##"<g class="{class}" data-index="{}"><title>{} — invoked at {}, {returned}</title><rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="{}"{dash}/>"##,
            b.index,
            esc(&b.text),
            esc(&short_ns(b.call as f64)),
            x1 - x0,
            if is_stuck { 2.2 } else { 1.2 }
        );
        let mut label = b.text.clone();
        if let Some(n) = order.get(&b.index) {
            label = format!("{n}. {label}");
        }
        if is_stuck {
            label = format!("stuck: {label}");
        }
        // Inside the bar when it fits, else after it, else before it.
        let tw = text_width(&label, 10.5);
        let inside = tw + 8.0 <= x1 - x0;
        let (tx, anchor) = if inside {
            (x0 + 4.0, "start")
        } else if x1 + 4.0 + tw <= WIDTH - RIGHT {
            (x1 + 4.0, "start")
        } else {
            (x0 - 4.0, "end")
        };
        let _ = write!(
            s,
            r##"<text x="{tx:.1}" y="{:.1}" font-size="10.5" text-anchor="{anchor}" fill="{}" stroke="#fff" stroke-width="{}" paint-order="stroke">{}</text></g>"##,
            y + h / 2.0 + 4.0,
            if is_stuck { "#a32020" } else { "#26303f" },
            if inside { 0 } else { 3 },
            esc(&label)
        );
    }
    s.push_str("</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence() -> Value {
        serde_json::json!({"property": "linearizability", "explanation": {
            "partitions": [{"key": 42, "ops": 9, "state": "decided 85",
                "linearized": [{"call": 1_412_797_207u64, "index": 100, "op": "p3 propose[42] 85 => 85", "ret": 1_480_838_375u64}],
                "stuck": {"call": 1_433_146_685u64, "index": 101, "op": "p2 propose[42] 86 => 86", "ret": 1_513_866_886u64}}],
            "unknown_partitions": 11,
            "window": {"key": 42, "minimal": true, "relaxed": 0, "tests": 7, "truncated_at": 1_513_866_886u64,
                "ops": [{"call": 1_412_797_207u64, "index": 100, "op": "p3 propose[42] 85 => 85", "ret": 1_480_838_375u64},
                        {"call": 1_433_146_685u64, "index": 101, "op": "p2 propose[42] 86 => 86", "ret": 1_513_866_886u64}]}}})
    }

    #[test]
    fn the_window_is_bars_per_process_with_the_stuck_op_in_red() {
        let mut s = String::new();
        let ev = evidence();
        assert!(is_lin_evidence(&ev));
        section(&mut s, &ev, Some(42));
        assert!(
            s.contains(r#"<svg id="lin-window" class="lin-chart" data-key="42""#),
            "{s}"
        );
        assert_eq!(s.matches("<g class=\"lin-op").count(), 2);
        assert!(
            s.contains(r#"<g class="lin-op stuck" data-index="101">"#),
            "{s}"
        );
        assert!(
            s.contains(r#"<g class="lin-op linearized" data-index="100">"#),
            "{s}"
        );
        assert!(s.contains("1. p3 propose[42] 85 =&gt; 85"), "{s}");
        assert!(s.contains("stuck: p2 propose[42] 86 =&gt; 86"), "{s}");
        assert!(
            s.contains(">p2</text>") && s.contains(">p3</text>"),
            "one lane each"
        );
        assert!(s.contains("got stuck on"), "{s}");
        assert!(!s.contains("\"explanation\""), "no JSON dump");
        assert!(!s.contains("consensus section"), "same instance: no note");
    }

    #[test]
    fn another_consensus_instance_is_explained_and_drawn_when_it_fails_too() {
        let mut ev = evidence();
        let mut other = ev["explanation"]["partitions"][0].clone();
        other["key"] = 7.into();
        ev["explanation"]["partitions"]
            .as_array_mut()
            .expect("partitions")
            .push(other);
        let mut s = String::new();
        section(&mut s, &ev, Some(7));
        assert!(s.contains("The consensus section shows instance 7"), "{s}");
        assert!(s.contains(r#"<svg id="lin-consensus-instance" class="lin-chart" data-key="7""#));
        let mut s = String::new();
        section(&mut s, &evidence(), Some(9));
        assert!(
            s.contains("Instance 9 was not among the instances it got to"),
            "{s}"
        );
    }
}
