//! The kafka checker on hand-written histories: each way it must fail, and a pass.

use serde_json::json;

use super::*;
use crate::history::{EventType::*, History};
use crate::verdict::VerdictKind;

fn check(h: History, quiet: Option<u64>) -> Verdict {
    KafkaChecker.check(&CheckInput {
        history: h,
        quiet_from: quiet.map(|i| i * 1_000_000),
        ..Default::default()
    })
}

type Row = (u64, EventType, &'static str, Value, &'static str);

fn send(p: u64, msg: u64, offset: u64) -> [Row; 2] {
    [
        (p, Invoke, "send", json!({"key": "k0", "msg": msg}), "n0"),
        (
            p,
            Ok,
            "send",
            json!({"key": "k0", "msg": msg, "offset": offset}),
            "n0",
        ),
    ]
}

fn poll(p: u64, from: u64, pairs: Value) -> [Row; 2] {
    [
        (p, Invoke, "poll", json!({"offsets": {"k0": from}}), "n0"),
        (
            p,
            Ok,
            "poll",
            json!({"offsets": {"k0": from}, "msgs": {"k0": pairs}}),
            "n0",
        ),
    ]
}

fn commit(p: u64, offset: u64) -> [Row; 2] {
    [
        (
            p,
            Invoke,
            "commit_offsets",
            json!({"offsets": {"k0": offset}}),
            "n0",
        ),
        (
            p,
            Ok,
            "commit_offsets",
            json!({"offsets": {"k0": offset}}),
            "n0",
        ),
    ]
}

fn list(p: u64, listed: Value) -> [Row; 2] {
    [
        (
            p,
            Invoke,
            "list_committed_offsets",
            json!({"keys": ["k0"]}),
            "n0",
        ),
        (
            p,
            Ok,
            "list_committed_offsets",
            json!({"keys": ["k0"], "offsets": listed}),
            "n0",
        ),
    ]
}

fn run(parts: &[[Row; 2]], quiet: Option<u64>) -> Verdict {
    let rows: Vec<Row> = parts.iter().flatten().cloned().collect();
    check(History::script(&rows), quiet)
}

#[test]
fn a_log_polled_whole_with_commits_forward_is_valid() {
    let v = run(
        &[
            send(0, 1, 0),
            send(1, 2, 3),
            poll(2, 0, json!([[0, 1], [3, 2]])),
            commit(3, 3),
            list(4, json!({"k0": 3})),
            poll(5, 0, json!([[0, 1], [3, 2]])),
        ],
        Some(10),
    );
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
}

#[test]
fn two_messages_at_one_offset_is_invalid() {
    // What a node that restarts its offset counter does.
    let v = run(&[send(0, 1, 0), send(1, 2, 0)], None);
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "duplicate-offset");
}

#[test]
fn a_poll_skipping_a_known_offset_is_invalid() {
    let v = run(
        &[
            send(0, 1, 0),
            send(1, 2, 1),
            send(2, 3, 2),
            poll(3, 0, json!([[0, 1], [2, 3]])),
        ],
        None,
    );
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["violations"]["skip"][0]["skipped_offset"], 1);
}

#[test]
fn a_poll_starting_past_a_known_offset_it_asked_for_skips_it() {
    let v = run(&[send(0, 1, 5), poll(1, 2, json!([[6, 9]]))], None);
    assert_eq!(
        v.evidence["violations"]["skip"][0]["skipped_offset"], 5,
        "{v:?}"
    );
}

#[test]
fn offsets_out_of_order_in_a_poll_is_invalid() {
    let v = run(&[poll(0, 0, json!([[3, 1], [2, 2]]))], None);
    assert_eq!(v.evidence["property"], "not-increasing", "{v:?}");
}

#[test]
fn an_acked_send_missing_from_the_final_poll_is_lost() {
    let v = run(
        &[send(0, 1, 0), send(1, 2, 1), poll(2, 0, json!([[0, 1]]))],
        Some(4),
    );
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "lost");
    assert_eq!(v.evidence["violations"]["lost"][0]["msg"], 2);
    // Without a final poll and with no poll past it, the send is only unconfirmed.
    let v = run(
        &[send(0, 1, 0), send(1, 2, 1), poll(2, 0, json!([[0, 1]]))],
        None,
    );
    assert_eq!(v.verdict, VerdictKind::Unknown, "{v:?}");
}

#[test]
fn a_committed_offset_going_backwards_is_invalid() {
    let v = run(
        &[
            commit(0, 5),
            list(1, json!({"k0": 5})),
            list(2, json!({"k0": 2})),
        ],
        None,
    );
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "backwards-commit");
    let v = run(&[commit(0, 5), list(1, json!({}))], None);
    assert_eq!(v.evidence["property"], "backwards-commit", "{v:?}");
}

#[test]
fn the_checker_is_fast_on_a_big_history() {
    // 50,000 sends and 5,000 polls of 50 messages each: one pass, no search.
    let mut rows: Vec<Row> = Vec::new();
    for i in 0..50_000u64 {
        rows.extend(send(i % 8, i + 1, i));
        if i % 10 == 9 {
            let from = i.saturating_sub(49);
            let pairs: Vec<Value> = (from..=i).map(|o| json!([o, o + 1])).collect();
            rows.extend(poll(8, from, Value::Array(pairs)));
        }
    }
    let v = check(History::script(&rows), None);
    assert_eq!(v.verdict, VerdictKind::Valid, "{}", v.reason);
}

#[test]
fn final_polls_settle_only_past_every_acked_offset() {
    let mut w = KafkaWorkload::new(&WorkloadOpts::default());
    let ok = crate::broadcast::tests::ok;
    w.observe(
        &send_op("k0", 1),
        &ok(json!({"type": "send_ok", "offset": 7})),
    );
    let op = &w.final_ops()[0];
    let got = |o: u64| ok(json!({"type": "poll_ok", "msgs": {"k0": [[o, 1]]}}));
    assert!(!w.final_settled(op, &got(6)));
    assert!(w.final_settled(op, &got(7)));
}
