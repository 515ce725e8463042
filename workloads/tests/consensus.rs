//! The consensus checker, judged on small recorded runs in `testdata/consensus/`, plus the
//! rounds statistics and the `write-once` registry entry.
//!
//! A data file is the checker's input, a line `----`, then the expected verdict as JSON.
//! Input lines are one of:
//!
//! - a history event exactly as in `history.jsonl` (`{"index":0,"process":..}`), indices
//!   consecutive from 0;
//! - `report {"time":..,"node":"n1","report":{"type":"decided",..}}`;
//! - `fault {"start":..,"end":..,"what":"isolate n1"}`;
//! - `quiet_from <ns>` and `live <node> <node> ..`;
//! - `# comment` or blank.
//!
//! `UPDATE_EXPECT=1 cargo test -p workloads --test consensus` rewrites every expectation
//! with what the checker says now; review the diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proto::ops::Ballot;
use proto::Report;
use serde_json::{json, Value};
use workloads::consensus::{ground_truth_rounds, rounds_summary, ConsensusChecker, GroundTruth};
use workloads::history::{Event, History};
use workloads::verdict::{CheckInput, Checker, FaultSpan, TimedReport, Verdict, VerdictKind};
use workloads::workload::{workload_by_name, WorkloadOpts};

const SEPARATOR: &str = "----";

fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/consensus")
}

fn parse_input(text: &str) -> Result<CheckInput, String> {
    let mut input = CheckInput::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = |e: &dyn std::fmt::Display| format!("line {}: {e}", i + 1);
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "" => {}
            w if w.starts_with('#') => {}
            w if w.starts_with('{') => {
                let event: Event = serde_json::from_str(line).map_err(|e| at(&e))?;
                if event.index != input.history.events.len() as u64 {
                    return Err(at(&format!("event index {} out of sequence", event.index)));
                }
                input.history.events.push(event);
            }
            "report" => input
                .reports
                .push(serde_json::from_str(rest).map_err(|e| at(&e))?),
            "fault" => input
                .faults
                .push(serde_json::from_str(rest).map_err(|e| at(&e))?),
            "quiet_from" => input.quiet_from = Some(rest.parse().map_err(|e| at(&e))?),
            "live" => input.live_nodes = rest.split_whitespace().map(String::from).collect(),
            other => return Err(at(&format!("unknown line kind {other:?}"))),
        }
    }
    Ok(input)
}

/// Checks one data file; with `update`, rewrites its expectation instead of comparing.
/// Returns the verdict it got.
fn check(path: &Path, update: bool) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (input_text, expected_text) = match text.split_once(&format!("\n{SEPARATOR}\n")) {
        Some((i, e)) => (i, Some(e)),
        None => (text.as_str(), None),
    };
    let input = parse_input(input_text)?;
    let got = serde_json::to_value(ConsensusChecker.check(&input)).expect("verdicts serialise");
    let pretty = serde_json::to_string_pretty(&got).expect("json");
    if update {
        let rewritten = format!("{input_text}\n{SEPARATOR}\n{pretty}\n");
        std::fs::write(path, rewritten).map_err(|e| e.to_string())?;
        return Ok(got);
    }
    let expected_text =
        expected_text.ok_or("no `----` line and no expectation (run with UPDATE_EXPECT=1)")?;
    let expected: Value =
        serde_json::from_str(expected_text).map_err(|e| format!("expectation: {e}"))?;
    if got != expected {
        return Err(format!(
            "expected\n{}\ngot\n{pretty}",
            serde_json::to_string_pretty(&expected).unwrap()
        ));
    }
    Ok(got)
}

#[test]
fn testdata() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(testdata_dir())
        .expect("testdata/consensus exists")
        .map(|e| e.expect("readable dir").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    let mut failures = Vec::new();
    let mut violated = BTreeSet::new();
    for path in &paths {
        match check(path, update) {
            Ok(v) => {
                if v["verdict"] == "invalid" {
                    violated.insert(
                        v["evidence"]["property"]
                            .as_str()
                            .unwrap_or("?")
                            .to_string(),
                    );
                }
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
    // A checker that cannot fail is a defect: every property has a case where it fails.
    let all: BTreeSet<String> = ["agreement", "validity", "termination"]
        .map(String::from)
        .into();
    assert_eq!(violated, all, "properties seen violated in testdata");
}

fn report(time: u64, node: &str, report: Report) -> TimedReport {
    TimedReport {
        time,
        made: None,
        node: node.into(),
        report,
    }
}

fn ballot(round: u64, node: &str) -> Ballot {
    Ballot {
        round,
        node: node.into(),
    }
}

fn accepted(time: u64, node: &str, key: u64, b: &Ballot, value: u64) -> TimedReport {
    report(
        time,
        node,
        Report::Accepted {
            key,
            ballot: b.clone(),
            value,
        },
    )
}

#[test]
fn ground_truth_is_the_first_ballot_a_majority_accepted() {
    let (b1, b2) = (ballot(1, "n1"), ballot(2, "n2"));
    let reports = vec![
        report(
            1,
            "n1",
            Report::BallotStarted {
                key: 0,
                ballot: b1.clone(),
            },
        ),
        report(
            2,
            "n2",
            Report::BallotStarted {
                key: 0,
                ballot: b2.clone(),
            },
        ),
        // Ballot 1 reaches one acceptor, twice: a duplicate is not a majority.
        accepted(3, "n1", 0, &b1, 10),
        accepted(4, "n1", 0, &b1, 10),
        accepted(5, "n2", 0, &b2, 20),
        accepted(6, "n3", 0, &b2, 20),
        // Too late to matter: ballot 2 already had its majority.
        accepted(7, "n2", 0, &b1, 10),
        report(
            8,
            "n1",
            Report::Decided {
                key: 0,
                value: 20,
                rounds: Some(3),
            },
        ),
        report(
            9,
            "n2",
            Report::Decided {
                key: 0,
                value: 20,
                rounds: Some(2),
            },
        ),
        // Instance 1: started, accepted by a minority only.
        report(
            10,
            "n3",
            Report::BallotStarted {
                key: 1,
                ballot: ballot(1, "n3"),
            },
        ),
        accepted(11, "n3", 1, &ballot(1, "n3"), 30),
    ];
    let truth = ground_truth_rounds(&reports, 3);
    let expected = GroundTruth {
        chosen_round: Some(2),
        chosen_value: Some(20),
        chosen_ballot: Some(b2),
        chosen_time: Some(6),
        ballots_started: 2,
        winner_rounds: Some(2),
    };
    assert_eq!(truth[&0], expected);
    assert_eq!(
        truth[&1],
        GroundTruth {
            ballots_started: 1,
            ..Default::default()
        }
    );
    // With five acceptors two are not a majority.
    assert_eq!(ground_truth_rounds(&reports, 5)[&0].chosen_round, None);
}

#[test]
fn ground_truth_orders_acceptances_by_when_the_nodes_made_them() {
    let (b1, b2) = (ballot(1, "n1"), ballot(2, "n2"));
    let made = |r: TimedReport, at: u64| TimedReport {
        made: Some(at),
        ..r
    };
    // Ballot 1's majority arrives last but was complete first (made at 4, 5); ballot 2's
    // reports overtook them on the way to the harness.
    let reports = vec![
        made(accepted(50, "n1", 0, &b1, 10), 4),
        made(accepted(20, "n2", 0, &b2, 20), 6),
        made(accepted(30, "n3", 0, &b2, 20), 7),
        made(accepted(40, "n2", 0, &b1, 10), 5),
    ];
    let t = &ground_truth_rounds(&reports, 3)[&0];
    assert_eq!(
        (t.chosen_value, t.chosen_round, t.chosen_time),
        (Some(10), Some(1), Some(5))
    );
    // Without stamps, arrival decides.
    let arrived: Vec<TimedReport> = reports
        .into_iter()
        .map(|r| TimedReport { made: None, ..r })
        .collect();
    let t = &ground_truth_rounds(&arrived, 3)[&0];
    assert_eq!((t.chosen_value, t.chosen_time), (Some(20), Some(30)));
}

fn history(lines: &[&str]) -> History {
    let events = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect();
    History { events }
}

/// The consensus checker's verdict on the history `lines` alone.
fn check_lines(lines: &[&str]) -> Verdict {
    let input = CheckInput {
        history: history(lines),
        ..Default::default()
    };
    ConsensusChecker.check(&input)
}

/// Asserts that the history `lines` breaks validity, with a reason that says `why`.
fn assert_invalid_validity(lines: &[&str], why: &str) {
    let v = check_lines(lines);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
    assert_eq!(v.evidence["property"], "validity");
    assert!(v.reason.contains(why), "{}", v.reason);
}

#[test]
fn rounds_summary_of_all_replies_and_of_winners() {
    let propose = |i: u64, p: u64, key: u64, proposed: u64, decided: u64, rounds: u64| {
        [
            format!(
                r#"{{"index":{},"process":{p},"type":"invoke","f":"propose","value":{{"key":{key},"value":{proposed}}},"time":{}}}"#,
                2 * i,
                2 * i
            ),
            format!(
                r#"{{"index":{},"process":{p},"type":"ok","f":"propose","value":{{"key":{key},"value":{decided},"rounds":{rounds}}},"time":{}}}"#,
                2 * i + 1,
                2 * i + 1
            ),
        ]
    };
    let lines: Vec<String> = [
        propose(0, 0, 0, 1, 1, 1), // winner of 0
        propose(1, 1, 0, 2, 1, 3),
        propose(2, 2, 1, 3, 4, 2),
        propose(3, 3, 1, 4, 4, 4), // winner of 1
    ]
    .concat();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let input = CheckInput {
        history: history(&lines),
        ..Default::default()
    };
    assert_eq!(
        rounds_summary(&input),
        json!({
            "count": 4, "mean": 2.5, "p50": 2, "p99": 4, "max": 4,
            "winners": {"count": 2, "mean": 2.5, "p50": 1, "p99": 4, "max": 4},
        })
    );
    assert_eq!(
        rounds_summary(&CheckInput::default()),
        json!({
            "count": 0, "mean": null, "p50": null, "p99": null, "max": null,
            "winners": {"count": 0, "mean": null, "p50": null, "p99": null, "max": null},
        })
    );
}

#[test]
fn write_once_is_registered_and_judged_by_consensus_linearizability_and_stable_reads() {
    let w = workload_by_name(
        "write-once",
        &WorkloadOpts {
            instances: 5,
            contention: 3,
            ..WorkloadOpts::default()
        },
    )
    .expect("registered");
    assert_eq!(w.name(), "write-once");
    assert_eq!(w.default_algorithm(), "paxos");
    let names: Vec<&str> = w.checkers().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["consensus", "linearizability", "stable-reads"]);
    assert_eq!(w.final_ops().len(), 5);
    assert!(workloads::workload::WORKLOADS
        .iter()
        .any(|(n, _)| *n == "write-once"));
}

#[test]
fn faults_are_named_in_an_agreement_reason() {
    let lines = [
        r#"{"index":0,"process":0,"type":"invoke","f":"propose","value":{"key":0,"value":1},"time":1000000,"node":"n1"}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"propose","value":{"key":0,"value":1},"time":2000000,"node":"n1"}"#,
    ];
    let input = CheckInput {
        history: history(&lines),
        reports: vec![report(
            3_000_000,
            "n2",
            Report::Decided {
                key: 0,
                value: 2,
                rounds: None,
            },
        )],
        faults: vec![
            FaultSpan {
                start: 0,
                end: Some(500_000),
                what: "kill n3".into(),
                kind: "kill".into(),
                nodes: vec!["n3".into()],
            },
            FaultSpan {
                start: 1_500_000,
                end: None,
                what: "isolate n1".into(),
                kind: "partition".into(),
                nodes: Vec::new(),
            },
        ],
        ..Default::default()
    };
    let v = ConsensusChecker.check(&input);
    assert_eq!(v.verdict, VerdictKind::Invalid);
    assert!(
        v.reason.contains("faults active then: isolate n1"),
        "{}",
        v.reason
    );
    assert!(!v.reason.contains("kill n3"), "{}", v.reason);
}

/// A value whose only propose failed with a definite error was promised never to be
/// decided: seeing it decided breaks validity.
#[test]
fn validity_rejects_a_value_whose_only_propose_failed() {
    let lines = [
        r#"{"index":0,"process":0,"type":"invoke","f":"propose","value":{"key":0,"value":5},"time":1000,"node":"n1"}"#,
        r#"{"index":1,"process":0,"type":"fail","f":"propose","value":{"key":0,"value":5},"time":2000,"node":"n1","error":"error 11: x"}"#,
        r#"{"index":2,"process":1,"type":"invoke","f":"read","value":{"key":0},"time":3000,"node":"n2"}"#,
        r#"{"index":3,"process":1,"type":"ok","f":"read","value":{"key":0,"value":5},"time":4000,"node":"n2"}"#,
    ];
    assert_invalid_validity(&lines, "failed");
}

/// A value seen decided before anyone proposed it was made up by a node.
#[test]
fn validity_rejects_a_value_seen_before_it_was_proposed() {
    let lines = [
        r#"{"index":0,"process":1,"type":"invoke","f":"read","value":{"key":0},"time":1000,"node":"n2"}"#,
        r#"{"index":1,"process":1,"type":"ok","f":"read","value":{"key":0,"value":5},"time":2000,"node":"n2"}"#,
        r#"{"index":2,"process":0,"type":"invoke","f":"propose","value":{"key":0,"value":5},"time":3000,"node":"n1"}"#,
        r#"{"index":3,"process":0,"type":"ok","f":"propose","value":{"key":0,"value":5},"time":4000,"node":"n1"}"#,
    ];
    assert_invalid_validity(&lines, "before any propose");

    // A report that arrives before the propose was sent is just as early.
    let lines = &lines[2..];
    let input = CheckInput {
        history: history(lines),
        reports: vec![report(
            2_000,
            "n3",
            Report::Decided {
                key: 0,
                value: 5,
                rounds: None,
            },
        )],
        ..Default::default()
    };
    assert_eq!(ConsensusChecker.check(&input).verdict, VerdictKind::Invalid);
}

/// An `info` propose may have won: its value is valid when seen after its invoke.
#[test]
fn validity_accepts_the_value_of_an_info_propose_seen_after_it() {
    let lines = [
        r#"{"index":0,"process":0,"type":"invoke","f":"propose","value":{"key":0,"value":5},"time":1000,"node":"n1"}"#,
        r#"{"index":1,"process":0,"type":"info","f":"propose","value":{"key":0,"value":5},"time":2000,"node":"n1","error":"timeout"}"#,
        r#"{"index":2,"process":1,"type":"invoke","f":"read","value":{"key":0},"time":3000,"node":"n2"}"#,
        r#"{"index":3,"process":1,"type":"ok","f":"read","value":{"key":0,"value":5},"time":4000,"node":"n2"}"#,
    ];
    let v = check_lines(&lines);
    assert_ne!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
}
