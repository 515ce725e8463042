//! The multicast checkers on hand-made runs, one violation of each property at a time.

use std::collections::BTreeMap;

use proto::Report;
use serde_json::json;

use super::checks::for_guarantee;
use super::{Guarantee, Order};
use crate::history::{Event, EventType, History};
use crate::verdict::{CheckInput, FaultSpan, TimedReport, Verdict, VerdictKind};

/// A run written by hand: multicasts, deliveries and kills, in time order.
#[derive(Default)]
struct Run {
    events: Vec<Event>,
    reports: Vec<TimedReport>,
    faults: Vec<FaultSpan>,
    seq: BTreeMap<String, u64>,
}

impl Run {
    /// `node` is asked at `t` to multicast `value`, answers at `t + 1`.
    fn mcast(mut self, node: &str, value: u64, t: u64) -> Self {
        let v = json!({ "value": value });
        for (ty, time) in [(EventType::Invoke, t), (EventType::Ok, t + 1)] {
            let e = Event::row(self.events.len(), value, ty, "mcast", &v, time);
            self.events.push(e.on(node));
        }
        self
    }

    /// `node` reports delivering `value` at `t`.
    fn deliver(mut self, node: &str, value: u64, t: u64) -> Self {
        let seq = self.seq.entry(node.to_string()).or_insert(0);
        *seq += 1;
        self.reports.push(TimedReport {
            time: t,
            made: None,
            node: node.to_string(),
            report: Report::Delivered { value, seq: *seq },
        });
        self
    }

    /// `node` delivers `values` in order, from `t` on.
    fn delivers(self, node: &str, values: &[u64], t: u64) -> Self {
        values
            .iter()
            .enumerate()
            .fold(self, |run, (i, v)| run.deliver(node, *v, t + i as u64))
    }

    /// `node` is killed at `t` for good.
    fn crash(mut self, node: &str, t: u64) -> Self {
        self.faults.push(FaultSpan {
            start: t,
            end: None,
            what: format!("crash {node}"),
            kind: "kill".into(),
            nodes: vec![node.to_string()],
        });
        self
    }

    /// The verdicts of the checkers of `order` (and reliability), by checker name.
    fn check(self, order: Order, reliable: bool) -> BTreeMap<&'static str, Verdict> {
        let input = CheckInput {
            history: History {
                events: self.events,
            },
            reports: self.reports,
            faults: self.faults,
            quiet_from: Some(1_000_000),
            live_nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        };
        for_guarantee(Guarantee { order, reliable })
            .iter()
            .map(|c| (c.name(), c.check(&input)))
            .collect()
    }
}

/// Each checker's outcome, by name.
fn kinds(verdicts: &BTreeMap<&'static str, Verdict>) -> BTreeMap<&'static str, VerdictKind> {
    verdicts.iter().map(|(n, v)| (*n, v.verdict)).collect()
}

use VerdictKind::{Invalid, Valid};

#[test]
fn fifo_checker_catches_one_senders_messages_swapped() {
    let run = Run::default()
        .mcast("n1", 1, 10)
        .mcast("n1", 2, 20)
        .delivers("n1", &[1, 2], 22)
        .delivers("n2", &[2, 1], 30)
        .delivers("n3", &[1, 2], 30);
    let v = run.check(Order::CausalTotal, false);
    let k = kinds(&v);
    assert_eq!(k["multicast-integrity"], Valid);
    assert_eq!(k["multicast-fifo"], Invalid);
    assert_eq!(k["multicast-causal"], Invalid);
    assert_eq!(k["multicast-total"], Invalid);
    let e = &v["multicast-fifo"].evidence;
    assert_eq!(e["property"], "fifo");
    assert_eq!(e["node"], "n2");
    assert_eq!(e["earlier"]["value"], 1);
    assert_eq!(e["later"]["value"], 2);
    assert_eq!(e["seen"], "n2 delivered 2 (#1) before 1 (#2)");
}

#[test]
fn causal_checker_catches_a_reply_delivered_before_its_cause() {
    // n2 delivers n1's 1, then multicasts 2: 1 → 2. n3 delivers 2 first. FIFO holds
    // (different senders); causal does not.
    let run = Run::default()
        .mcast("n1", 1, 10)
        .deliver("n1", 1, 11)
        .deliver("n2", 1, 15)
        .mcast("n2", 2, 20)
        .deliver("n2", 2, 21)
        .deliver("n1", 2, 25)
        .delivers("n3", &[2, 1], 30);
    let v = run.check(Order::Causal, false);
    let k = kinds(&v);
    assert_eq!(k["multicast-fifo"], Valid);
    assert_eq!(k["multicast-causal"], Invalid);
    let e = &v["multicast-causal"].evidence;
    assert_eq!(e["node"], "n3");
    assert_eq!(e["at_sender"], json!(["n2 delivered 1 (#1) before 2 (#2)"]));
    assert!(e["why"]
        .as_str()
        .unwrap()
        .contains("n2 reported delivering 1"));
}

#[test]
fn causal_checker_takes_no_causality_from_a_delivery_reported_after_the_multicast() {
    // n2 reports delivering 1 only after 2 was invoked there: concurrent, either order.
    let run = Run::default()
        .mcast("n1", 1, 10)
        .deliver("n1", 1, 11)
        .mcast("n2", 2, 20)
        .deliver("n2", 2, 21)
        .deliver("n2", 1, 22)
        .deliver("n1", 2, 25)
        .delivers("n3", &[2, 1], 30);
    let k = kinds(&run.check(Order::Causal, false));
    assert_eq!(k["multicast-causal"], Valid);
}

#[test]
fn causal_checker_follows_chains_of_deliveries() {
    // 1 → 2 (n2 delivered 1 before multicasting 2) → 3 (n3 delivered 2 before 3): n1
    // delivering 3 before 1 breaks causality though 1 and 3 are never related directly.
    let run = Run::default()
        .mcast("n1", 1, 10)
        .deliver("n2", 1, 15)
        .mcast("n2", 2, 20)
        .deliver("n3", 2, 25)
        .mcast("n3", 3, 30)
        .deliver("n1", 3, 35)
        .deliver("n1", 1, 36);
    let v = run.check(Order::Causal, false);
    assert_eq!(v["multicast-causal"].verdict, Invalid);
    let why = v["multicast-causal"].evidence["why"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("chain"), "{why}");
}

#[test]
fn total_checker_catches_concurrent_messages_in_two_orders() {
    let run = Run::default()
        .mcast("n1", 1, 10)
        .mcast("n2", 2, 10)
        .delivers("n1", &[1, 2], 12)
        .delivers("n2", &[2, 1], 12)
        .delivers("n3", &[1, 2], 12);
    let v = run.check(Order::CausalTotal, false);
    let k = kinds(&v);
    assert_eq!(k["multicast-causal"], Valid);
    assert_eq!(k["multicast-total"], Invalid);
    let e = &v["multicast-total"].evidence;
    assert_eq!(e["nodes"], json!(["n1", "n2"]));
    assert_eq!(
        e["seen"],
        json!([
            "n1 delivered 1 (#1) before 2 (#2)",
            "n2 delivered 2 (#1) before 1 (#2)"
        ])
    );
}

#[test]
fn order_checkers_forgive_what_a_crashed_node_never_delivered() {
    // n2 delivers 2 and never 1. While n2 is correct that breaks FIFO (and total against
    // n1); once n2 crashed, what it missed is not held against the order.
    let run = || {
        Run::default()
            .mcast("n1", 1, 10)
            .mcast("n1", 2, 20)
            .delivers("n1", &[1, 2], 22)
            .deliver("n2", 2, 30)
    };
    let k = kinds(&run().check(Order::FifoTotal, false));
    assert_eq!(k["multicast-fifo"], Invalid);
    assert_eq!(k["multicast-total"], Invalid);
    let k = kinds(&run().crash("n2", 40).check(Order::FifoTotal, false));
    assert_eq!(k["multicast-fifo"], Valid);
    assert_eq!(k["multicast-total"], Valid);
}

#[test]
fn integrity_checker_catches_duplicates_and_values_never_sent() {
    let dup = Run::default()
        .mcast("n1", 1, 10)
        .delivers("n2", &[1, 1], 20);
    let v = dup.check(Order::None, false);
    assert_eq!(v["multicast-integrity"].verdict, Invalid);
    assert!(v["multicast-integrity"].reason.contains("twice"));
    let forged = Run::default()
        .mcast("n1", 1, 10)
        .delivers("n2", &[1, 9], 20);
    let v = forged.check(Order::None, false);
    assert!(v["multicast-integrity"].reason.contains("never multicast"));
}

#[test]
fn reliable_checker_catches_a_message_only_some_correct_nodes_delivered() {
    let run = || {
        Run::default()
            .mcast("n1", 1, 10)
            .delivers("n1", &[1], 11)
            .delivers("n2", &[1], 12)
    };
    let v = run().check(Order::None, true);
    assert_eq!(v["multicast-reliable"].verdict, Invalid);
    let e = &v["multicast-reliable"].evidence;
    assert_eq!(e["property"], "reliable-agreement");
    assert_eq!(e["missing_at"], json!(["n3"]));
    // n3 crashed: no longer owed anything.
    let v = run().crash("n3", 5).check(Order::None, true);
    assert_eq!(v["multicast-reliable"].verdict, Valid);
}

#[test]
fn reliable_checker_catches_a_correct_sender_that_never_delivered_its_own() {
    let run = Run::default().mcast("n1", 1, 10).delivers("n2", &[], 0);
    let v = run.check(Order::None, true);
    assert_eq!(
        v["multicast-reliable"].evidence["property"],
        "reliable-validity"
    );
}

#[test]
fn guarantee_reads_what_algorithms_declare() {
    let g: Guarantee = "none+reliable".parse().unwrap();
    assert_eq!(
        g,
        Guarantee {
            order: Order::None,
            reliable: true
        }
    );
    assert_eq!(g.to_string(), "none+reliable");
    assert_eq!(
        "causal-total".parse::<Guarantee>().unwrap().order,
        Order::CausalTotal
    );
    assert!("sorted".parse::<Guarantee>().is_err());
}
