//! The run report end to end: every run writes a self-contained `report.html` with the
//! op timeline, fault shading and the message sequence; `squall report` writes it again
//! and refuses what is not a run directory; an invalid run's diagram is about the
//! violating instance.

mod common;

use std::path::Path;

use common::*;

fn report(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report.html"))
        .unwrap_or_else(|e| panic!("read {}/report.html: {e}", dir.display()))
}

/// Nothing in the page points outside it or runs code: the only URL is the SVG
/// namespace, no element loads anything, and `url()` only names the page's own markers.
fn assert_self_contained(html: &str) {
    let rest = html
        .replace(r#"xmlns="http://www.w3.org/2000/svg""#, "")
        .replace("url(#", "");
    for needle in [
        "http://", "https://", "<link", "<script", "<img", "<iframe", "@import", "url(", " src=\"",
        " href=\"",
    ] {
        assert!(
            !rest.contains(needle),
            "report.html contains {needle:?} near: {}",
            rest.find(needle)
                .map(|i| &rest[i.saturating_sub(80)..(i + 80).min(rest.len())])
                .unwrap_or("")
        );
    }
}

/// The part of the page from `<section id="{id}"` to its end.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let len = html[start..].find("</section>").expect("section ends");
    &html[start..start + len]
}

#[test]
fn a_free_running_run_writes_a_self_contained_report_and_squall_report_rewrites_it() {
    let (out, dir) = run_ok(&[
        "run",
        "--workload",
        "write-once",
        "--nodes",
        "3",
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "300ms",
        "--time-limit",
        "2s",
        "--recovery-time",
        "1s",
        "--seed",
        "4",
    ]);
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = report(&dir);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for id in [
        r#"id="verdict""#,
        r#"id="timeline""#,
        r#"id="fault-strip""#,
        r#"id="ops""#,
        r#"id="sequence""#,
        r#"id="arrows""#,
        r#"id="latency""#,
        r#"id="percentiles""#,
        r#"id="messages-per-op""#,
        r#"id="fault-events""#,
    ] {
        assert!(html.contains(id), "report.html has no {id}");
    }
    let spans = json(&dir.join("metrics.json"))["faults"]["spans"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(spans > 0, "the run had no fault spans to shade");
    assert!(html.contains(r#"class="fault-shade""#));
    assert!(html.contains(r#"<g class="fault""#));
    assert!(html.contains(r#"class="msg "#), "no message arrows");
    assert_self_contained(&html);

    // The router's message log is there and the metrics describe it.
    let log = json(&dir.join("metrics.json"))["message_log"].clone();
    let lines = std::fs::read_to_string(dir.join("messages.jsonl")).expect("messages.jsonl");
    assert_eq!(log["recorded"].as_u64(), Some(lines.lines().count() as u64));
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("a message")).expect("json line");
    assert!(first["sent_us"].is_u64() && first["type"].is_string() && first["fate"].is_string());

    // `squall report` writes the same page again and prints its path.
    std::fs::remove_file(dir.join("report.html")).expect("remove");
    let again = squall(&["report", dir.to_str().expect("utf8")])
        .output()
        .expect("squall report");
    assert_eq!(again.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&again.stdout);
    assert!(
        printed.trim().ends_with("report.html"),
        "printed {printed:?}"
    );
    assert_eq!(report(&dir), html);
}

#[test]
fn squall_report_refuses_what_is_not_a_run_directory() {
    let missing = squall(&["report", "/nonexistent/squall-run"])
        .output()
        .expect("squall report");
    assert_eq!(missing.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is not a directory"));

    let empty = tempfile::tempdir().expect("tempdir");
    let out = squall(&["report", empty.path().to_str().expect("utf8")])
        .output()
        .expect("squall report");
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a run directory") && err.contains("run.json"),
        "{err}"
    );
}

/// The violating instance named in `verdict.json`.
fn violating_key(dir: &Path) -> u64 {
    json(&dir.join("verdict.json"))["checkers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["verdict"] == "invalid")
        .and_then(|c| c["evidence"]["key"].as_u64())
        .expect("an invalid checker names the instance")
}

fn assert_sequence_is_about(dir: &Path, key: u64) {
    let html = report(dir);
    let seq = section(&html, "sequence-section");
    assert!(
        seq.starts_with(&format!(
            r#"<section id="sequence-section" data-key="{key}""#
        )),
        "sequence section is not about instance {key}: {}",
        &seq[..seq.len().min(200)]
    );
    assert!(seq.contains(&format!("instance {key}: the agreement violation")));
    assert!(seq.contains(&format!(r#"<svg id="sequence" data-key="{key}""#)));
    assert!(
        seq.contains(&format!("key={key}")),
        "no message of instance {key}"
    );
    assert!(seq.contains(r#"class="msg "#), "no arrows");
    // The conflicting decisions are marked on the timeline.
    assert!(section(&html, "timeline-section").contains(r#"<g class="mark">"#));
    assert_self_contained(&html);
}

/// The sequence diagram's arrows carry what the message said, not only its type: an
/// `accept` arrow is labelled `accept (round,node) value`, a `prepare` arrow with its
/// ballot — the same words in both modes.
fn assert_arrows_carry_ballots_and_values(dir: &Path) {
    let html = report(dir);
    let seq = section(&html, "sequence-section");
    let labels: Vec<&str> = seq
        .split("paint-order=\"stroke\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .collect();
    let ballot_value = |l: &&str| {
        let Some(rest) = l.strip_prefix("accept (") else {
            return false;
        };
        let Some((ballot, after)) = rest.split_once(") ") else {
            return false;
        };
        let value = after.split(' ').next().unwrap_or("");
        ballot.split_once(",n").is_some_and(|(round, node)| {
            round.parse::<u64>().is_ok() && node.parse::<u64>().is_ok()
        }) && value.parse::<u64>().is_ok()
    };
    assert!(
        labels.iter().any(ballot_value),
        "no accept arrow labelled with its ballot and value: {labels:?}"
    );
    assert!(
        labels
            .iter()
            .filter(|l| l.starts_with("prepare") || l.starts_with("promise"))
            .all(|l| l.contains(" (")),
        "a prepare or promise arrow without its ballot: {labels:?}"
    );
}

/// A linearizability failure is drawn, not dumped: the window's ops as bars with the
/// op the search got stuck on highlighted, and no raw evidence JSON.
fn assert_lin_explanation_is_drawn(dir: &Path) {
    let verdict = json(&dir.join("verdict.json"));
    let lin = verdict["checkers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["evidence"]["property"] == "linearizability")
        .expect("a linearizability checker");
    assert_eq!(lin["verdict"], "invalid", "{lin}");
    let html = report(dir);
    let header = section(&html, "header");
    let at = header
        .find("<h3>linearizability")
        .expect("the linearizability checker's part");
    let part = &header[at..];
    let part = &part[..part.find("</div>").unwrap_or(part.len())];
    assert!(
        part.contains(r#"<svg id="lin-window" class="lin-chart""#),
        "{part}"
    );
    assert!(
        part.contains(r#"class="lin-op stuck""#),
        "no stuck op: {part}"
    );
    assert!(part.contains("got stuck on"), "no text of why: {part}");
    for json_bit in ["\"explanation\"", "partitions", "<table"] {
        assert!(!part.contains(json_bit), "{json_bit} dumped: {part}");
    }
}

/// `squall run` of small-quorum Paxos under partitions, with `extra`: each test adds its
/// mode, time and seed.
fn small_quorum_run(extra: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    run_ok(&[&["run"][..], SMALL_QUORUM, extra].concat())
}

#[test]
fn an_invalid_lockstep_small_quorum_run_shows_the_violating_instance() {
    let mode = ["--mode", "lockstep", "--time-limit", "5s", "--seed", "1"];
    let (out, dir) = small_quorum_run(&mode);
    assert_exit(&out, 1);
    assert!(
        !dir.join("messages.jsonl").exists(),
        "lockstep reads trace.bin"
    );
    assert_sequence_is_about(&dir, violating_key(&dir));
    assert_arrows_carry_ballots_and_values(&dir);
    assert_lin_explanation_is_drawn(&dir);
}

#[test]
fn an_invalid_free_running_small_quorum_run_shows_the_violating_instance() {
    let mut seen = Vec::new();
    for seed in 1..=5u64 {
        let seed = seed.to_string();
        let extra = [
            "--time-limit",
            "3s",
            "--recovery-time",
            "2s",
            "--seed",
            &seed,
        ];
        let (_, dir) = small_quorum_run(&extra);
        let verdict = json(&dir.join("verdict.json"));
        if verdict["verdict"] == "invalid" {
            assert_sequence_is_about(&dir, violating_key(&dir));
            assert_arrows_carry_ballots_and_values(&dir);
            assert_lin_explanation_is_drawn(&dir);
            return;
        }
        seen.push(format!("seed {seed}: {}", verdict["verdict"]));
    }
    panic!("small-quorum did not fail within 5 seeds: {seen:?}");
}

#[test]
fn strings_from_the_run_are_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let evil = "<script>alert(1)</script>";
    std::fs::write(
        d.join("run.json"),
        serde_json::json!({"workload": evil, "algorithm": "<evil-b>x</evil-b>", "nodes": 2, "seed": 1,
            "bugs": ["<evil-i>bug</evil-i>"], "version": "<evil-v>"})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        d.join("verdict.json"),
        serde_json::json!({"verdict": "invalid", "reason": "<img src=x onerror=alert(1)>",
            "run_id": evil, "checkers": [{"checker": "<evil-c>", "verdict": "invalid",
            "reason": "<evil-r>", "evidence": {"key": 3, "property": "<evil-p>", "values": [
                {"value": 1, "witnesses": 1, "seen": [{"source": "report", "node": "<evil-n>", "time": 5}]}]}}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        d.join("metrics.json"),
        serde_json::json!({"faults": {"spans": [{"start": 0, "end": null, "what": "<evil-w>",
            "kind": "<evil-k>", "nodes": ["<evil-n>"]}], "events": {"events": [{"id": 1, "what": "<evil-e>",
            "applied": true, "applied_at_ms": 1, "evidence": [{"<evil-x>": "<evil-y>"}]}]}},
            "messages": {"total": 1, "by_type": {"<evil-t>": 1}, "per_op": {"<evil-t>": 1.0}}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        d.join("history.jsonl"),
        concat!(
            r#"{"index":0,"process":0,"type":"invoke","f":"<evil-f>","value":{"key":3,"value":"<evil-v>"},"time":1,"node":"n1"}"#,
            "\n",
            r#"{"index":1,"process":0,"type":"ok","f":"<evil-f>","value":{"key":3,"value":"<evil-v>"},"time":9,"node":"n1"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("messages.jsonl"),
        r#"{"sent_us":0,"src":"n1","dest":"n2","type":"<evil-t>","key":3,"fate":"delivered","at_us":1}"#,
    )
    .unwrap();
    let out = squall(&["report", d.to_str().unwrap()]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = report(d);
    for raw in ["<script>", "<img", "<evil"] {
        assert!(!html.contains(raw), "{raw} is not escaped");
    }
    assert!(html.contains("&lt;evil-t&gt;"), "the message type is shown");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_self_contained(&html);
}

/// A fault plan whose triggers never fire: one names a message type Paxos does not send
/// (`promis`), forty wait for the 1000th..1039th `accept` from n1 in a one-second run.
const STARVED_TRIGGERS_EVENTS: usize = 40;

fn starved_trigger_plan() -> String {
    let mut events = vec![serde_json::json!({"id": 1, "on": {"msg_type": "promis"},
        "action": "kill", "node": "n2"})];
    for i in 0..STARVED_TRIGGERS_EVENTS {
        events.push(serde_json::json!({"id": 2 + i,
            "on": {"msg_type": "accept", "src": "n1", "nth": 1000 + i},
            "action": "kill", "node": "n1"}));
    }
    serde_json::json!({"nodes": ["n1", "n2", "n3"], "time_limit_ms": 1000,
        "recovery_ms": 1500, "events": events})
    .to_string()
}

#[test]
fn a_trigger_that_never_fires_is_printed_under_the_verdict_and_collapsed_with_a_count() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = tmp.path().join("schedule.json");
    std::fs::write(&plan, starved_trigger_plan()).expect("write plan");
    let plan = plan.to_str().expect("utf8");
    let (out, dir) = run_ok(&paxos_plan_args(plan, &["--seed", "3"]));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.code().is_some_and(|c| c <= 2), "{}", text(&out));
    // The summary says it under the verdict line, not only in verdict.json.
    let verdict_at = printed.find("verdict   ").expect("a verdict line");
    let after = &printed[verdict_at..];
    assert!(
        after.contains(": a requested fault never took effect")
            || after.contains(": requested faults never took effect"),
        "{printed}"
    );
    assert!(
        after.contains("no 'promis' message was seen in the run at all"),
        "the never-seen type is named: {printed}"
    );
    assert!(
        after.contains(&format!(
            "! {STARVED_TRIGGERS_EVENTS}x requested fault never took effect"
        )),
        "the starved accept triggers are one line with a count: {printed}"
    );

    // verdict.json: one warning per cause, with its count.
    let verdict = json(&dir.join("verdict.json"));
    let warnings = verdict["warnings"].as_array().expect("warnings");
    let starved: Vec<&serde_json::Value> = warnings
        .iter()
        .filter(|w| {
            w["message"]
                .as_str()
                .unwrap_or("")
                .contains("'accept' from n1")
        })
        .collect();
    assert_eq!(starved.len(), 1, "{warnings:?}");
    assert_eq!(starved[0]["count"], STARVED_TRIGGERS_EVENTS as u64);
    assert_eq!(starved[0]["kind"], "fault_never_took_effect");
    assert_eq!(starved[0]["examples"].as_array().map(Vec::len), Some(3));

    // The report shows the count too.
    let html = report(&dir);
    assert!(
        html.contains("A requested fault never took effect"),
        "no banner"
    );
    assert!(html.contains(&format!("<b>{STARVED_TRIGGERS_EVENTS}&times;</b>")));
}
