//! The header: what ran, the verdict in colour, and each checker's explanation —
//! consensus evidence (instance, values, witnesses, faults active) and linearizability
//! windows get their own rendering, anything else is shown as its JSON.

use std::fmt::Write;

use serde::Deserialize as _;
use serde_json::Value;
use workloads::VerdictKind;

use super::html::{compact, esc, json_html, ms};
use super::RunData;

/// The verdict's CSS class and word (anything unreadable is unknown).
pub fn verdict_class(v: &Value) -> (&'static str, &'static str) {
    let kind = VerdictKind::deserialize(v).unwrap_or(VerdictKind::Unknown);
    let class = match kind {
        VerdictKind::Valid => "v-valid",
        VerdictKind::Unknown => "v-unknown",
        VerdictKind::Invalid => "v-invalid",
    };
    (class, kind.word())
}

/// Writes the header section.
pub fn header(s: &mut String, run: &RunData) {
    let r = &run.run;
    let v = &run.verdict;
    let _ = write!(
        s,
        "<section id=\"header\"><h1>Run {}</h1>",
        esc(&run.run_id())
    );
    let mut algo = r["algorithm"].as_str().unwrap_or("?").to_string();
    if let Some(bugs) = r["bugs"].as_array() {
        for b in bugs.iter().filter_map(Value::as_str) {
            algo.push_str(&format!(" --bug {b}"));
        }
    }
    if let Some(cmd) = r["node_cmd"].as_array() {
        let argv: Vec<String> = cmd.iter().map(compact).collect();
        algo = format!("node-cmd: {}", argv.join(" "));
    }
    let kinds: Vec<String> = r["nemesis"]["kinds"]
        .as_array()
        .map(|a| a.iter().map(compact).collect())
        .unwrap_or_default();
    let counts = &run.metrics["ops"];
    let facts: Vec<(&str, String)> = vec![
        ("workload", compact(&r["workload"])),
        ("algorithm", algo),
        ("nodes", compact(&r["nodes"])),
        ("clients", compact(&r["clients"])),
        ("rate", format!("{}/s", compact(&r["rate"]))),
        ("seed", compact(&r["seed"])),
        (
            "mode",
            if run.lockstep {
                "lockstep (virtual time)".into()
            } else {
                "free-running".into()
            },
        ),
        ("time limit", format!("{} ms", compact(&r["time_limit_ms"]))),
        (
            "nemesis",
            if kinds.is_empty() {
                "none".into()
            } else {
                kinds.join(", ")
            },
        ),
        (
            "ops",
            format!(
                "{} ({} ok, {} fail, {} info, {} pending)",
                compact(&counts["total"]),
                compact(&counts["ok"]),
                compact(&counts["fail"]),
                compact(&counts["info"]),
                compact(&counts["pending"])
            ),
        ),
    ];
    s.push_str("<div class=\"facts\">");
    for (k, val) in facts {
        let _ = write!(s, "<span>{k} <b>{}</b></span>", esc(&val));
    }
    s.push_str("</div>");
    let (class, word) = verdict_class(&v["verdict"]);
    let _ = write!(
        s,
        "<div id=\"verdict\"><span class=\"verdict {class}\">{word}</span><span class=\"reason\">{}</span></div>",
        esc(v["reason"].as_str().unwrap_or(""))
    );
    if v["interrupted"] == true {
        s.push_str("<p class=\"note\">Interrupted: the history is partial.</p>");
    }
    if let Some(faulty) = v["faulty_nodes"].as_array().filter(|a| !a.is_empty()) {
        s.push_str("<h3>Faulty nodes</h3>");
        s.push_str(&json_html(&Value::Array(faulty.clone()), 3, 20));
    }
    if let Some(w) = v["warnings"].as_array().filter(|a| !a.is_empty()) {
        warnings(s, w);
    }
    if let Some(checkers) = v["checkers"].as_array() {
        let overall = v["reason"].as_str().unwrap_or("");
        // The instance the consensus evidence (and the sequence diagram) is about.
        let consensus_key = checkers
            .iter()
            .filter(|c| c["verdict"] == "invalid")
            .find_map(|c| c["evidence"]["key"].as_u64());
        for c in checkers {
            checker(s, c, overall, consensus_key);
        }
    }
    s.push_str("</section>\n");
}

/// The warnings, one per cause with its count; those about a requested fault that
/// never took effect first and in the invalid colour. Reads the collapsed objects of
/// `verdict.json` and, from older run directories, plain strings.
fn warnings(s: &mut String, w: &[Value]) {
    let is_fault = |w: &Value| w["kind"] == "fault_never_took_effect";
    let faults = w.iter().filter(|w| is_fault(w)).count();
    let _ = write!(s, "<h3>Warnings ({})</h3>", w.len());
    if faults > 0 {
        let _ = write!(
            s,
            "<p class=\"warn-fault\">A requested fault never took effect ({faults} \
             cause{}): part of what this run was asked to test did not happen.</p>",
            if faults == 1 { "" } else { "s" }
        );
    }
    s.push_str("<ul>");
    let ordered = w
        .iter()
        .filter(|w| is_fault(w))
        .chain(w.iter().filter(|w| !is_fault(w)));
    for item in ordered.take(20) {
        let Some(message) = item["message"].as_str() else {
            let _ = write!(s, "<li>{}</li>", esc(&compact(item)));
            continue;
        };
        let count = item["count"].as_u64().unwrap_or(1);
        let times = if count > 1 {
            format!("<b>{count}&times;</b> ")
        } else {
            String::new()
        };
        let class = if is_fault(item) {
            " class=\"warn-fault\""
        } else {
            ""
        };
        let _ = write!(s, "<li{class}>{times}{}", esc(message));
        let examples: Vec<&str> = super::items(&item["examples"])
            .filter_map(Value::as_str)
            .collect();
        if !examples.is_empty() {
            let _ = write!(
                s,
                "<br><span class=\"small\">{}{}</span>",
                if count > examples.len() as u64 {
                    "e.g. "
                } else {
                    ""
                },
                esc(&examples.join("; "))
            );
        }
        s.push_str("</li>");
    }
    s.push_str("</ul>");
}

/// One checker: its verdict, its reason (unless the header already says it) and its
/// evidence.
fn checker(s: &mut String, c: &Value, overall_reason: &str, consensus_key: Option<u64>) {
    let (class, word) = verdict_class(&c["verdict"]);
    let name = c["checker"].as_str().unwrap_or("checker");
    let reason = c["reason"].as_str().unwrap_or("");
    let _ = write!(
        s,
        "<div class=\"checker\"><h3>{} <span class=\"small {class}\">{word}</span></h3>",
        esc(name)
    );
    if overall_reason != format!("{name}: {reason}") {
        let _ = write!(s, "<p>{}</p>", esc(reason));
    }
    let ev = &c["evidence"];
    if ev["values"].is_array() {
        consensus_evidence(s, ev);
    } else if super::linchart::is_lin_evidence(ev) {
        super::linchart::section(s, ev, consensus_key);
    } else if let Some(map) = ev.as_object().filter(|o| !o.is_empty()) {
        // Anything else: the faults as a list, the rest as it is; a wrong snapshot's
        // pieces are drawn in their own section.
        faults_active(s, ev);
        let drawn = ev["cut"].is_string();
        if drawn {
            s.push_str("<p class=\"note\">The wrong snapshot is drawn below.</p>");
        }
        let rest: serde_json::Map<String, Value> = map
            .iter()
            .filter(|(k, _)| *k != "faults")
            .filter(|(k, _)| !(drawn && (*k == "marks" || *k == "snapshots")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        s.push_str(&json_html(&Value::Object(rest), 4, 20));
    }
    s.push_str("</div>");
}

/// The evidence's `faults` (spans active at the violation), as a list with times.
fn faults_active(s: &mut String, ev: &Value) {
    let Some(faults) = ev["faults"].as_array() else {
        return;
    };
    if faults.is_empty() {
        s.push_str("<p class=\"note\">No fault was active then.</p>");
        return;
    }
    s.push_str("<p>Faults active then:</p><ul>");
    for f in faults {
        let end = f["end"].as_u64().map_or("the end".to_string(), ms);
        let _ = write!(
            s,
            "<li>{} <span class=\"note\">({} → {})</span></li>",
            esc(f["what"].as_str().unwrap_or("")),
            ms(f["start"].as_u64().unwrap_or(0)),
            end
        );
    }
    s.push_str("</ul>");
}

/// Instance, values, their witnesses and the faults active then.
fn consensus_evidence(s: &mut String, ev: &Value) {
    let _ = write!(
        s,
        "<p><b>Instance {}</b> — {} violated.",
        esc(&compact(&ev["key"])),
        esc(ev["property"].as_str().unwrap_or("property"))
    );
    if let Some(v) = ev["violations"].as_object() {
        let parts: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = write!(s, " Violating instances: {}.", esc(&parts.join(", ")));
    }
    s.push_str("</p>");
    faults_active(s, ev);
    s.push_str("<div class=\"cols\">");
    for val in ev["values"].as_array().into_iter().flatten() {
        let _ = write!(
            s,
            "<div><b>value {}</b> <span class=\"note\">{} witnesses</span>\
             <table class=\"grid\"><tr><th>witness</th><th>node</th><th>process</th><th>time</th></tr>",
            esc(&compact(&val["value"])),
            esc(&compact(&val["witnesses"]))
        );
        let seen = val["seen"].as_array().cloned().unwrap_or_default();
        for w in seen.iter().take(12) {
            let time = match (w["time"].as_u64(), w["invoke_time"].as_u64()) {
                (Some(t), _) => ms(t),
                (None, Some(i)) => {
                    let c = w["complete_time"].as_u64().map_or("—".into(), ms);
                    format!("{} → {c}", ms(i))
                }
                _ => String::new(),
            };
            let what = match w["source"].as_str() {
                Some("report") => "decided report".to_string(),
                Some(other) => format!("{other} returned it"),
                None => String::new(),
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(&what),
                esc(&compact(&w["node"])),
                esc(&w["process"]
                    .as_u64()
                    .map_or(String::new(), |p| format!("p{p}"))),
                esc(&time)
            );
        }
        s.push_str("</table>");
        if seen.len() > 12 {
            let _ = write!(s, "<p class=\"note\">… {} more</p>", seen.len() - 12);
        }
        s.push_str("</div>");
    }
    s.push_str("</div>");
}
