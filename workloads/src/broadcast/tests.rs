//! The broadcast checker on hand-written histories: each way it must fail, and a pass.

use serde_json::json;

use super::*;
use crate::history::{EventType::*, History};
use crate::verdict::VerdictKind;

/// Checks `h` with the quiet window from event `quiet` on and nodes n0, n1 live.
fn check(h: History, quiet: Option<u64>) -> Verdict {
    BroadcastChecker.check(&CheckInput {
        history: h,
        quiet_from: quiet.map(|i| i * 1_000_000),
        live_nodes: vec!["n0".into(), "n1".into()],
        ..Default::default()
    })
}

/// A reply body as the harness holds it.
pub(crate) fn ok(v: Value) -> ClientReply {
    match v {
        Value::Object(m) => ClientReply::Body(m),
        _ => unreachable!("replies are objects"),
    }
}

fn read(msgs: &[u64]) -> Value {
    json!({ "messages": msgs })
}

/// Two broadcasts acked at n0, reads before the heal, final reads at both nodes.
fn history(final_n1: &[u64]) -> History {
    History::script(&[
        (0, Invoke, "broadcast", json!({"message": 1}), "n0"),
        (0, Ok, "broadcast", json!({"message": 1}), "n0"),
        (1, Invoke, "broadcast", json!({"message": 2}), "n1"),
        (1, Ok, "broadcast", json!({"message": 2}), "n1"),
        (2, Invoke, "read", json!({}), "n1"),
        (2, Ok, "read", read(&[2]), "n1"),
        (3, Invoke, "broadcast", json!({"message": 3}), "n1"),
        (3, Info, "broadcast", json!({"message": 3}), "n1"),
        (4, Invoke, "read", json!({}), "n0"),
        (4, Ok, "read", read(&[1, 2]), "n0"),
        (5, Invoke, "read", json!({}), "n1"),
        (5, Ok, "read", read(final_n1), "n1"),
    ])
}

#[test]
fn every_acked_message_at_every_node_is_valid() {
    let v = check(history(&[1, 2, 3]), Some(8));
    assert_eq!(v.verdict, VerdictKind::Valid, "{v:?}");
    // The read of n1 at event 4 lacked message 1, acked at event 1: one stale read.
    assert_eq!(v.evidence["stale_reads"], 1);
    assert_eq!(v.evidence["stable_latency_ms"]["count"], 2);
}

#[test]
fn lost_message_is_named_with_the_node_missing_it() {
    let v = check(history(&[2]), Some(8));
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "lost");
    assert_eq!(v.evidence["lost"]["1"], json!(["n1"]));
    assert!(v.reason.contains("message 1") && v.reason.contains("n1"));
}

#[test]
fn a_message_nobody_broadcast_is_invalid() {
    let v = check(history(&[1, 2, 99]), Some(8));
    assert_eq!(v.verdict, VerdictKind::Invalid, "{v:?}");
    assert_eq!(v.evidence["property"], "never-broadcast");
}

#[test]
fn no_final_read_or_a_live_node_unread_is_unknown() {
    assert_eq!(check(history(&[1, 2]), None).verdict, VerdictKind::Unknown);
    // Only n1 has a final read (from event 10 on), n0 is live too.
    let v = check(history(&[1, 2]), Some(10));
    assert_eq!(v.verdict, VerdictKind::Unknown, "{v:?}");
    assert!(v.reason.contains("n0"));
}

#[test]
fn final_reads_settle_only_when_they_hold_every_acked_message() {
    let mut w = BroadcastWorkload::new(&WorkloadOpts::default());
    w.observe(&broadcast_op(4), &ok(json!({"type": "broadcast_ok"})));
    let has = |m: &[u64]| ok(json!({"type": "read_ok", "messages": m}));
    assert!(!w.final_settled(&read_op(), &has(&[1])));
    assert!(w.final_settled(&read_op(), &has(&[1, 4])));
    let nodes: Vec<String> = (0..3).map(|i| format!("n{i}")).collect();
    let setup = w.setup_ops(&nodes);
    assert_eq!(setup.len(), 3);
    let ClientOp::Body(b) = &setup[0].1 else {
        panic!("topology is a body op")
    };
    assert_eq!(b.fields["topology"]["n0"], json!(["n1", "n2"]));
}
