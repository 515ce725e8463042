//! The multicast workload end to end, CI-sized: correct algorithms stay valid under the
//! faults their guarantee survives, and lockstep runs (deterministic: the seed is the
//! run) catch the sequencer's lost messages and causal multicast's missing total order.
//! `scripts/teeth.sh` has the full rows, free-running, 20 seeds each.

mod common;

use common::*;
use harness::shrink::violated_properties;
use serde_json::Value;

/// The sequencer n1 crashes for good 1.5 s into a 5 s run.
const SEQUENCER_CRASH: &str = "scripts/plans/sequencer-crash.json";

/// One multicast run on five nodes; returns the violated properties (empty if none)
/// and the verdict.
fn multicast(flags: &[&str], seed: u64) -> (Vec<String>, Value) {
    let (violated, verdict, _) = multicast_in(flags, seed);
    (violated, verdict)
}

/// [`multicast`], and the run directory.
fn multicast_in(flags: &[&str], seed: u64) -> (Vec<String>, Value, std::path::PathBuf) {
    let seed_text = seed.to_string();
    let plan = repo_root().join(SEQUENCER_CRASH).display().to_string();
    let mut args = vec!["run", "--workload", "multicast", "--nodes", "5"];
    for f in flags {
        args.push(if *f == SEQUENCER_CRASH {
            plan.as_str()
        } else {
            f
        });
    }
    if !flags.contains(&"--schedule") {
        args.extend(["--time-limit", "2s", "--recovery-time", "2s"]);
    }
    args.extend(["--seed", &seed_text]);
    let (_, dir) = run_ok(&args);
    let verdict = json(&dir.join("verdict.json"));
    (violated_properties(&verdict), verdict, dir)
}

/// The checkers that judged the run.
fn checkers(verdict: &Value) -> Vec<String> {
    verdict["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .filter_map(|c| c["checker"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn causal_multicast_is_valid_under_delay_reorder_clogs_and_pauses() {
    let (violated, verdict) = multicast(
        &[
            "--algorithm",
            "causal",
            "--nemesis",
            "delay,reorder,clog,pause",
        ],
        1,
    );
    assert_eq!(verdict["verdict"], "valid", "{violated:?}: {verdict:#}");
    let judged = checkers(&verdict);
    for c in ["multicast-integrity", "multicast-fifo", "multicast-causal"] {
        assert!(judged.iter().any(|j| j == c), "{c} not in {judged:?}");
    }
}

#[test]
fn reliable_multicast_is_valid_when_a_member_crashes_for_good() {
    let (violated, verdict) = multicast(
        &["--algorithm", "reliable", "--schedule", SEQUENCER_CRASH],
        1,
    );
    assert_eq!(verdict["verdict"], "valid", "{violated:?}: {verdict:#}");
    assert!(checkers(&verdict).iter().any(|c| c == "multicast-reliable"));
}

#[test]
fn sequencer_without_reliability_loses_messages_when_the_sequencer_crashes_lockstep() {
    let flags = [
        "--algorithm",
        "total-sequencer",
        "--reliable",
        "--mode",
        "lockstep",
        "--schedule",
        SEQUENCER_CRASH,
    ];
    let (violated, verdict) = multicast(&flags, 1);
    assert_eq!(violated, vec!["reliable-validity"], "{verdict:#}");
    assert!(
        reason(&verdict).contains("crash n1"),
        "{}",
        reason(&verdict)
    );
}

#[test]
fn causal_multicast_is_not_total_lockstep() {
    let flags = [
        "--algorithm",
        "causal",
        "--order",
        "causal-total",
        "--mode",
        "lockstep",
        "--nemesis",
        "none",
    ];
    let (violated, verdict, dir) = multicast_in(&flags, 1);
    assert_eq!(violated, vec!["total"], "{verdict:#}");
    // The report draws the pair's multicasts and deliveries on the lifelines.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(
        html.contains("the total violation: messages"),
        "no sequence title"
    );
    let drawn = html
        .split("</text>")
        .filter_map(|t| t.rsplit('>').next())
        .filter(|label| label.starts_with("delivered ") || label.starts_with("multicast "))
        .count();
    assert!(drawn >= 4, "{drawn} multicast and delivery marks drawn");
    let evidence = verdict["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checker"] == "multicast-total")
        .map(|c| c["evidence"].clone())
        .unwrap();
    assert_eq!(
        evidence["seen"].as_array().unwrap().len(),
        2,
        "{evidence:#}"
    );
}
