//! The txn-rw-register checker on hand-made histories, one per anomaly, under both
//! models; the flag's parsing; the generator's unique values.

use std::collections::BTreeSet;

use rand_chacha::rand_core::SeedableRng;
use serde_json::{json, Value};

use super::check::TxnChecker;
use super::*;
use crate::history::EventType::{self, *};
use crate::maelstrom::testing::{input, Row};
use crate::verdict::{Verdict, VerdictKind};

/// A txn on `n0` by process `p`: `asked` micro-ops, answered with `got` (reads filled
/// in) when `end` is `Ok`.
fn txn(p: u64, end: EventType, asked: Value, got: Value) -> [Row<'static>; 2] {
    let done = if end == Ok { got } else { asked.clone() };
    [
        (p, Invoke, "txn", json!({ "txn": asked }), "n0"),
        (p, end, "txn", json!({ "txn": done }), "n0"),
    ]
}

/// An `ok` txn whose reads are given: the invoke has them as `null`.
fn ok(p: u64, got: Value) -> [Row<'static>; 2] {
    let asked: Vec<Value> = got
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| match m[0].as_str() {
            Some("r") => json!(["r", m[1], null]),
            _ => m.clone(),
        })
        .collect();
    txn(p, Ok, json!(asked), got)
}

fn check(model: Consistency, txns: &[[Row<'static>; 2]]) -> Verdict {
    let rows: Vec<Row> = txns.concat();
    TxnChecker::new(model).check(&input(&rows, rows.len() as u64, &["n0"]))
}

/// The anomaly an invalid verdict names, or the verdict's word.
fn named(v: &Verdict) -> String {
    match v.verdict {
        VerdictKind::Invalid => v.evidence["property"].as_str().unwrap_or("?").to_string(),
        other => other.word().to_string(),
    }
}

const RC: Consistency = Consistency::ReadCommitted;
const RU: Consistency = Consistency::ReadUncommitted;

#[test]
fn reads_of_committed_writes_and_of_unwritten_keys_are_valid() {
    let h = [
        ok(0, json!([["r", 0, null], ["w", 0, 1], ["w", 1, 1]])),
        ok(1, json!([["r", 0, 1], ["w", 0, 2], ["r", 0, 2]])),
        ok(2, json!([["r", 1, 1], ["r", 0, 2], ["r", 2, null]])),
    ];
    for model in [RC, RU] {
        let v = check(model, &h);
        assert_eq!(v.verdict, VerdictKind::Valid, "{model:?}: {}", v.reason);
    }
}

#[test]
fn a_txn_that_misses_its_own_write_is_internal_under_every_model() {
    let h = [
        ok(0, json!([["w", 0, 1]])),
        ok(1, json!([["w", 0, 2], ["r", 0, 1]])),
    ];
    for model in [RC, RU] {
        let v = check(model, &h);
        assert_eq!(named(&v), "internal", "{model:?}");
        assert_eq!(v.evidence["anomalies"]["internal"][0]["keys"], json!(["0"]));
    }
}

#[test]
fn a_read_of_a_value_never_written_is_garbage_under_every_model() {
    let h = [ok(0, json!([["w", 0, 1]])), ok(1, json!([["r", 0, 7]]))];
    assert_eq!(named(&check(RC, &h)), "garbage-read");
    assert_eq!(named(&check(RU, &h)), "garbage-read");
}

#[test]
fn writes_that_follow_reads_in_a_cycle_are_g0_under_every_model() {
    // T1 read T2's x then wrote x; T2 read T1's y then wrote y: each overwrote the other.
    let h = [
        ok(0, json!([["r", 0, 2], ["w", 0, 1], ["w", 1, 1]])),
        ok(1, json!([["r", 1, 1], ["w", 1, 2], ["w", 0, 2]])),
    ];
    for model in [RC, RU] {
        let v = check(model, &h);
        assert_eq!(named(&v), "G0", "{model:?}: {}", v.reason);
        let g0 = &v.evidence["anomalies"]["G0"][0];
        assert_eq!(g0["txns"].as_array().map(Vec::len), Some(2));
        assert!(g0["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["dep"] == "ww"));
    }
}

#[test]
fn a_read_of_a_failed_txns_write_is_g1a_under_read_committed_only() {
    let h = [
        txn(0, Fail, json!([["w", 0, 1]]), json!(null)),
        ok(1, json!([["r", 0, 1]])),
    ];
    let v = check(RC, &h);
    assert_eq!(named(&v), "G1a", "{}", v.reason);
    assert!(v.reason.contains("G1a"), "{}", v.reason);
    assert_eq!(check(RU, &h).verdict, VerdictKind::Valid);
}

#[test]
fn a_read_of_an_indefinite_txns_write_is_no_anomaly() {
    let h = [
        txn(0, Info, json!([["w", 0, 1]]), json!(null)),
        ok(1, json!([["r", 0, 1]])),
    ];
    assert_eq!(check(RC, &h).verdict, VerdictKind::Valid);
}

#[test]
fn a_read_of_a_value_its_txn_overwrote_is_g1b_under_read_committed_only() {
    let h = [
        ok(0, json!([["w", 0, 1], ["w", 0, 2]])),
        ok(1, json!([["r", 0, 1]])),
    ];
    assert_eq!(named(&check(RC, &h)), "G1b");
    assert_eq!(check(RU, &h).verdict, VerdictKind::Valid);
}

#[test]
fn txns_that_read_each_others_writes_are_g1c_under_read_committed_only() {
    let h = [
        ok(0, json!([["w", 0, 1], ["r", 1, 1]])),
        ok(1, json!([["w", 1, 1], ["r", 0, 1]])),
    ];
    let v = check(RC, &h);
    assert_eq!(named(&v), "G1c", "{}", v.reason);
    let steps = v.evidence["anomalies"]["G1c"][0]["steps"]
        .as_array()
        .expect("steps")
        .clone();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().any(|s| s["dep"] == "wr"));
    assert_eq!(check(RU, &h).verdict, VerdictKind::Valid);
}

#[test]
fn a_cycle_of_blind_writes_cannot_be_seen() {
    // T1 and T2 both blindly write x and y; a reader sees T1's x and T2's y. In any
    // serial order one of the reads would be stale, but no version order is inferred
    // from blind writes and read-committed allows the mix, so this is valid.
    let h = [
        ok(0, json!([["w", 0, 1], ["w", 1, 1]])),
        ok(1, json!([["w", 0, 2], ["w", 1, 2]])),
        ok(2, json!([["r", 0, 1], ["r", 1, 2]])),
    ];
    assert_eq!(check(RC, &h).verdict, VerdictKind::Valid);
}

#[test]
fn a_txn_ok_that_changes_a_write_or_drops_a_micro_op_is_malformed() {
    let changed = [txn(0, Ok, json!([["w", 0, 1]]), json!([["w", 0, 2]]))];
    assert_eq!(named(&check(RC, &changed)), "malformed");
    let short = [txn(
        0,
        Ok,
        json!([["w", 0, 1], ["r", 0, null]]),
        json!([["w", 0, 1]]),
    )];
    assert_eq!(named(&check(RC, &short)), "malformed");
}

#[test]
fn consistency_models_parse_as_maelstroms_flag_and_the_strongest_is_judged() {
    assert_eq!("read-uncommitted".parse(), std::result::Result::Ok(RU));
    assert_eq!(
        "read-uncommitted,read-committed".parse(),
        std::result::Result::Ok(RC)
    );
    assert!("serializable".parse::<Consistency>().is_err());
    assert_eq!(Consistency::default(), RC);
}

#[test]
fn generated_txns_write_each_value_of_a_key_once() {
    let mut w = TxnWorkload::new(&WorkloadOpts {
        instances: KEYS_DEFAULT,
        ..WorkloadOpts::default()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut seen = BTreeSet::new();
    for _ in 0..500 {
        let ClientOp::Body(b) = w.next_op(&mut rng) else {
            panic!("txn ops are bodies");
        };
        assert_eq!(b.f, "txn");
        let mops = b.fields["txn"].as_array().expect("a list").clone();
        assert!(!mops.is_empty() && mops.len() <= TXN_LEN_MAX + 1);
        for m in mops.iter().filter(|m| m[0] == "w") {
            assert!(m[1].as_u64().expect("int key") < KEYS_DEFAULT);
            assert!(seen.insert((m[1].to_string(), m[2].to_string())), "{m}");
        }
    }
}
