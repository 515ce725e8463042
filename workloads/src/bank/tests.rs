//! The snapshot checker on hand-made reports of a three-node bank (total 300).

use super::*;
use crate::history::{Event, EventType, History};
use crate::verdict::{TimedReport, VerdictKind};

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn local(node: &str, balance: u64, sent: &[(&str, u64)], received: &[(&str, u64)]) -> TimedReport {
    TimedReport {
        time: 10,
        made: None,
        node: node.to_string(),
        report: Report::SnapshotLocal {
            id: "n1#1".into(),
            balance,
            sent: map(sent),
            received: map(received),
            received_max: map(received),
        },
    }
}

fn channel(from: &str, to: &str, amount: u64, seqs: &[u64]) -> TimedReport {
    TimedReport {
        time: 20,
        made: None,
        node: to.to_string(),
        report: Report::SnapshotChannel {
            id: "n1#1".into(),
            from: from.into(),
            count: seqs.len() as u64,
            amount,
            seqs: seqs.to_vec(),
        },
    }
}

/// Every channel of three nodes, empty unless listed.
fn channels(busy: &[TimedReport]) -> Vec<TimedReport> {
    let ids = node_ids(3);
    let mut out = busy.to_vec();
    for from in &ids {
        for to in ids.iter().filter(|t| *t != from) {
            let listed = busy.iter().any(|r| {
                matches!(&r.report, Report::SnapshotChannel { from: f, .. } if f == from)
                    && r.node == *to
            });
            if !listed {
                out.push(channel(from, to, 0, &[]));
            }
        }
    }
    out
}

/// A history in which n1 made transfer n1->n2 #1 of 30.
fn history() -> History {
    let row = |index, ty, value: Value| Event {
        index,
        process: 0,
        ty,
        f: "transfer".into(),
        value: value.into(),
        time: index,
        node: Some("n1".into()),
        error: None,
    };
    History {
        events: vec![
            row(0, EventType::Invoke, json!({"to": "n2", "amount": 30})),
            row(
                1,
                EventType::Ok,
                json!({"to": "n2", "amount": 30, "seq": 1}),
            ),
        ],
    }
}

fn check(reports: Vec<TimedReport>) -> Verdict {
    let input = CheckInput {
        history: history(),
        reports,
        ..CheckInput::default()
    };
    SnapshotChecker { nodes: 3 }.check(&input)
}

/// n1 sent 30 to n2 before recording; n2 recorded before it arrived.
fn in_transit(channel_amount: Option<u64>) -> Vec<TimedReport> {
    let mut reports = vec![
        local("n1", 70, &[("n2", 1)], &[]),
        local("n2", 100, &[], &[]),
        local("n3", 100, &[], &[]),
    ];
    let busy: Vec<TimedReport> = channel_amount
        .map(|a| channel("n1", "n2", a, &[1]))
        .into_iter()
        .collect();
    reports.extend(channels(&busy));
    reports
}

#[test]
fn a_snapshot_with_the_money_in_transit_recorded_is_valid() {
    let v = check(in_transit(Some(30)));
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
    assert_eq!(v.evidence["complete"], 1);
}

#[test]
fn a_snapshot_that_loses_the_money_in_transit_is_invalid() {
    let v = check(in_transit(None));
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "consistent-cut");
    let props = v.evidence["properties"].to_string();
    assert!(props.contains("snapshot-total"), "{props}");
    assert!(v.reason.contains("holds 270"), "{}", v.reason);
    // The report names the transfer nobody counted, with its amount from the history.
    let crossed = &v.evidence["snapshots"][0]["crossed"][0];
    assert_eq!(crossed["link"], "n1->n2", "{crossed}");
    assert_eq!(
        (&crossed["seq"], &crossed["amount"]),
        (&json!(1), &json!(30))
    );
    assert_eq!(crossed["how"], "lost", "{crossed}");
    assert_eq!(v.evidence["cut"], "n1#1");
}

#[test]
fn a_transfer_received_inside_the_cut_but_sent_outside_is_an_inconsistent_cut() {
    // n1 recorded before sending #1 (balance 100, nothing sent); n2 applied #1 before it
    // recorded: the 30 is counted at both ends.
    let mut reports = vec![
        local("n1", 100, &[], &[]),
        local("n2", 130, &[], &[("n1", 1)]),
        local("n3", 100, &[], &[]),
    ];
    reports.extend(channels(&[]));
    let v = check(reports);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "consistent-cut");
    let text = v.evidence["snapshots"][0]["violations"].to_string();
    assert!(text.contains("n2 had applied transfer n1->n2 #1"), "{text}");
    assert!(text.contains("holds 330"), "{text}");
    let crossed = &v.evidence["snapshots"][0]["crossed"][0];
    assert_eq!(
        (&crossed["seq"], &crossed["how"]),
        (&json!(1), &json!("twice"))
    );
}

#[test]
fn a_channel_amount_the_history_contradicts_is_caught() {
    let mut reports = in_transit(Some(30));
    reports[0] = local("n1", 80, &[("n2", 1)], &[]);
    let last = reports.iter_mut().find(|r| {
        matches!(&r.report, Report::SnapshotChannel { from, .. } if from == "n1") && r.node == "n2"
    });
    last.expect("listed").report = Report::SnapshotChannel {
        id: "n1#1".into(),
        from: "n1".into(),
        count: 1,
        amount: 20,
        seqs: vec![1],
    };
    let v = check(reports);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "channel-record");
}

#[test]
fn snapshots_that_never_complete_are_unknown_not_valid() {
    let mut reports = in_transit(Some(30));
    reports.retain(|r| r.node != "n3");
    let v = check(reports);
    assert_eq!(v.verdict, VerdictKind::Unknown, "{v:?}");
    assert_eq!(v.evidence["incomplete"], 1);
    assert_eq!(
        v.evidence["incomplete_examples"][0]["states_missing"],
        json!(["n3"])
    );
    assert!(v.reason.contains("none of the 1 snapshots"), "{}", v.reason);
}

#[test]
fn no_snapshot_at_all_is_unknown() {
    let v = check(Vec::new());
    assert_eq!(v.verdict, VerdictKind::Unknown, "{v:?}");
}

#[test]
fn a_state_reported_twice_is_caught() {
    let mut reports = in_transit(Some(30));
    reports.push(local("n3", 100, &[], &[]));
    let v = check(reports);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "snapshot-reports");
}

/// The transfer of [`history`], then a snapshot asked for in the quiet window.
fn quiet_input(reports: Vec<TimedReport>) -> CheckInput {
    let mut history = history();
    let row = |index, ty, value: Value| Event {
        index,
        process: 1,
        ty,
        f: "snapshot".into(),
        value: value.into(),
        time: 5 + index,
        node: Some("n1".into()),
        error: None,
    };
    history.events.push(row(2, EventType::Invoke, json!({})));
    history
        .events
        .push(row(3, EventType::Ok, json!({"id": "n1#1"})));
    CheckInput {
        history,
        reports,
        quiet_from: Some(3),
        ..CheckInput::default()
    }
}

#[test]
fn a_quiet_snapshot_that_saw_every_transfer_arrive_detects_termination() {
    let mut reports = vec![
        local("n1", 70, &[("n2", 1)], &[]),
        local("n2", 130, &[], &[("n1", 1)]),
        local("n3", 100, &[], &[]),
    ];
    reports.extend(channels(&[]));
    let v = Termination { ids: node_ids(3) }.check(&quiet_input(reports));
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
    assert_eq!(v.evidence["detected"], 1);
}

#[test]
fn a_quiet_snapshot_with_money_in_transit_does_not_claim_termination() {
    let v = Termination { ids: node_ids(3) }.check(&quiet_input(in_transit(Some(30))));
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
    assert_eq!(v.evidence["judged"], 1);
    assert_eq!(v.evidence["detected"], 0);
}

#[test]
fn claiming_termination_with_a_transfer_unapplied_is_false_termination() {
    // Every node reports nothing sent and nothing received, so the detector says
    // terminated; the history knows n1 made n1->n2 #1 before the snapshot.
    let mut reports = vec![
        local("n1", 100, &[], &[]),
        local("n2", 100, &[], &[]),
        local("n3", 100, &[], &[]),
    ];
    reports.extend(channels(&[]));
    let v = Termination { ids: node_ids(3) }.check(&quiet_input(reports));
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "false-termination");
}
