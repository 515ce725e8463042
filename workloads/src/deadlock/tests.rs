//! The deadlock checker on hand-made histories of three nodes: n1 and n2 wait for each
//! other (a real deadlock) or n1's wait was granted before the end (a phantom).

use super::*;
use crate::history::{Event, EventType, History};
use crate::verdict::{TimedReport, VerdictKind};

/// One op: node, f, input, output (`None`: it failed), invoke and complete times.
type Row = (String, &'static str, Value, Option<Value>, u64, u64);

/// Builds a history from ops; every op runs in its own process.
fn history(ops: &[Row]) -> History {
    let mut events = Vec::new();
    for (p, (node, f, input, output, invoke, complete)) in ops.iter().enumerate() {
        let row = |ty, value: &Value, time: u64| Event {
            index: 0,
            process: p as u64,
            ty,
            f: f.to_string(),
            value: value.clone().into(),
            time,
            node: Some(node.clone()),
            error: None,
        };
        events.push(row(EventType::Invoke, input, *invoke));
        match output {
            Some(out) => events.push(row(EventType::Ok, out, *complete)),
            None => events.push(row(EventType::Fail, input, *complete)),
        }
    }
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    History { events }
}

fn wait(node: &str, on: &str, at: u64) -> Row {
    (
        node.into(),
        "wait",
        json!({"on": on}),
        Some(json!({"on": on})),
        at,
        at + 1,
    )
}

fn read(node: &str, value: Option<u64>, at: u64) -> Row {
    (
        node.into(),
        "read",
        json!({"key": 0}),
        Some(json!({"key": 0, "value": value})),
        at,
        at + 1,
    )
}

fn snapshot(node: &str, id: &str, at: u64) -> Row {
    (
        node.into(),
        "snapshot",
        json!({}),
        Some(json!({"id": id})),
        at,
        at + 1,
    )
}

fn detection(id: &str, at: u64, cycle: &[&str]) -> TimedReport {
    let waits = cycle
        .iter()
        .enumerate()
        .map(|(k, n)| (n.to_string(), cycle[(k + 1) % cycle.len()].to_string()))
        .collect();
    TimedReport {
        time: at,
        made: None,
        node: "n1".into(),
        report: Report::Deadlock {
            id: id.into(),
            cycle: cycle.iter().map(|n| n.to_string()).collect(),
            waits,
        },
    }
}

fn check(history: History, reports: Vec<TimedReport>) -> Verdict {
    let input = CheckInput {
        history,
        reports,
        quiet_from: Some(1_000),
        ..CheckInput::default()
    };
    DeadlockChecker { nodes: 3 }.check(&input)
}

/// n1 waits for n2 at 10, n2 for n1 at 20: a deadlock from 21 to the end.
fn deadlocked() -> Vec<Row> {
    vec![
        wait("n1", "n2", 10),
        wait("n2", "n1", 20),
        snapshot("n3", "n3#1", 30),
        read("n1", Some(2), 1_000),
        read("n2", Some(1), 1_001),
        read("n3", None, 1_002),
    ]
}

#[test]
fn a_reported_deadlock_that_stands_at_the_end_is_valid() {
    let v = check(
        history(&deadlocked()),
        vec![detection("n3#1", 40, &["n1", "n2"])],
    );
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
    assert_eq!(v.evidence["cycles_reported"], 1);
}

#[test]
fn a_snapshot_after_the_deadlock_formed_that_finds_none_missed_it() {
    let v = check(history(&deadlocked()), vec![detection("n3#1", 40, &[])]);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "missed-deadlock");
    assert!(v.reason.contains("n1 -> n2"), "{}", v.reason);
}

#[test]
fn a_snapshot_asked_for_before_the_deadlock_formed_may_find_none() {
    let mut ops = deadlocked();
    ops[2] = snapshot("n3", "n3#1", 15);
    let v = check(history(&ops), vec![detection("n3#1", 40, &[])]);
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
}

#[test]
fn a_cycle_through_a_wait_granted_before_the_end_is_a_phantom_deadlock() {
    // n1's wait for n2 was granted: at the end n1 waits for nobody.
    let mut ops = deadlocked();
    ops[3] = read("n1", None, 1_000);
    let v = check(history(&ops), vec![detection("n3#1", 40, &["n1", "n2"])]);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "phantom-deadlock");
    let why = v.evidence["detections"][0]["why"].to_string();
    assert!(why.contains("n1 waited for nobody at the end"), "{why}");
}

#[test]
fn a_cycle_whose_wait_was_asked_again_after_the_report_is_a_phantom_deadlock() {
    // The cut saw n1's first wait for n2; it was granted and n1 waited for n2 again at 50,
    // after the report at 40.
    let mut ops = deadlocked();
    ops.push(wait("n1", "n2", 50));
    let v = check(history(&ops), vec![detection("n3#1", 40, &["n1", "n2"])]);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "phantom-deadlock");
}

#[test]
fn no_detection_is_unknown() {
    let v = check(history(&deadlocked()), Vec::new());
    assert_eq!(v.verdict, VerdictKind::Unknown, "{v:?}");
}
