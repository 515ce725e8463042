//! What `g-counter` and `pn-counter` (Maelstrom's) share: clients send `add {delta}` and
//! `read`, a node answers `add_ok` and `read_ok {value}`. The checker, [`Counter`]:
//!
//! - the last final read of every live node equals the sum of the acknowledged deltas
//!   plus the deltas of some subset of the adds whose outcome is unknown (`info`, or
//!   still pending), so nothing acknowledged is lost and nothing is counted twice, across
//!   kills and restarts;
//! - every read during the run lies between the sum of the negative deltas and the sum of
//!   the positive deltas of the adds invoked before the read completed: nothing is made
//!   up. Reads during the run may be stale (the counter is only eventually consistent),
//!   so they have no lower bound from the adds acknowledged before them.

use std::collections::BTreeSet;

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::history::{Op, Outcome};
use crate::maelstrom::{
    body_op, final_reads, invoked_before_completion, may_have_happened, read_op,
};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::Workload;

/// Percent of ops that are reads.
const READ_PERCENT: u32 = 30;
/// Largest |delta| an add carries.
const DELTA_MAX: i64 = 5;
/// Subset sums kept exactly up to this many; past it the checker uses their range.
const SUBSET_SUMS_MAX: usize = 100_000;

/// The counter op generator: `g-counter` adds deltas in 1..=5, `pn-counter` in -5..=5.
#[derive(Debug)]
pub struct CounterWorkload {
    name: &'static str,
    negative: bool,
}

impl CounterWorkload {
    /// The generator of workload `name`; `negative` allows negative deltas.
    pub fn new(name: &'static str, negative: bool) -> Self {
        CounterWorkload { name, negative }
    }
}

impl Workload for CounterWorkload {
    fn name(&self) -> &'static str {
        self.name
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        if rng.gen_range(0..100) < READ_PERCENT {
            return read_op();
        }
        let low = if self.negative { -DELTA_MAX } else { 1 };
        let delta = rng.gen_range(low..=DELTA_MAX);
        body_op("add", json!({ "delta": delta }), &[])
    }

    fn final_ops(&self) -> Vec<ClientOp> {
        vec![read_op()]
    }

    fn final_settled(&self, _op: &ClientOp, _reply: &ClientReply) -> bool {
        false
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(Counter { name: self.name })]
    }

    fn default_algorithm(&self) -> &'static str {
        crate::maelstrom::NO_BUNDLED_NODE
    }
}

/// Final reads equal the acknowledged sum plus a subset of the unknown deltas; no read is
/// out of the range the adds before it allow.
pub struct Counter {
    /// The workload's name, the checker's too.
    pub name: &'static str,
}

/// The sums some subset of `deltas` adds up to: exact while there are at most
/// [`SUBSET_SUMS_MAX`], else every integer of their range.
pub enum SubsetSums {
    /// Exactly these.
    Exact(BTreeSet<i64>),
    /// Any of `low..=high`.
    Range(i64, i64),
}

impl SubsetSums {
    /// The subset sums of `deltas`.
    pub fn of(deltas: &[i64]) -> SubsetSums {
        let mut sums = BTreeSet::from([0i64]);
        for &d in deltas {
            let shifted: Vec<i64> = sums.iter().map(|s| s + d).collect();
            sums.extend(shifted);
            if sums.len() > SUBSET_SUMS_MAX {
                let low = deltas.iter().filter(|d| **d < 0).sum();
                let high = deltas.iter().filter(|d| **d > 0).sum();
                return SubsetSums::Range(low, high);
            }
        }
        SubsetSums::Exact(sums)
    }

    /// Whether `base` plus one of the sums is `v`.
    pub fn reaches(&self, base: i64, v: i64) -> bool {
        let want = v - base;
        match self {
            SubsetSums::Exact(s) => s.contains(&want),
            SubsetSums::Range(low, high) => (*low..=*high).contains(&want),
        }
    }
}

fn delta(op: &Op) -> i64 {
    op.input["delta"].as_i64().unwrap_or(0)
}

fn read_value(op: &Op) -> Option<i64> {
    op.output.as_ref()?.get("value")?.as_i64()
}

impl Checker for Counter {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name;
        let ops = input.history.ops();
        let adds: Vec<&Op> = ops.iter().filter(|o| o.f == "add").collect();
        for read in ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        {
            let Some(v) = read_value(read) else {
                return Verdict::invalid(
                    name,
                    format!("read at index {} returned no integer", read.invoke_index),
                    json!({"property": "shape", "op": read}),
                );
            };
            let before = adds
                .iter()
                .filter(|a| may_have_happened(a) && invoked_before_completion(a, read));
            let (low, high) = before.fold((0i64, 0i64), |(l, h), a| {
                let d = delta(a);
                (l + d.min(0), h + d.max(0))
            });
            if !(low..=high).contains(&v) {
                return Verdict::invalid(
                    name,
                    format!(
                        "read at index {} on {} returned {v}, outside {low}..={high}, what the adds invoked before it allow",
                        read.invoke_index,
                        read.node.as_deref().unwrap_or("?")
                    ),
                    json!({"property": "never-added", "op": read, "low": low, "high": high}),
                );
            }
        }
        let finals = match final_reads(input, name) {
            Ok(f) => f,
            Err(v) => return v,
        };
        let acked: i64 = adds
            .iter()
            .filter(|a| a.outcome == Outcome::Ok)
            .map(|a| delta(a))
            .sum();
        let unknown: Vec<i64> = adds
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Info | Outcome::Pending))
            .map(|a| delta(a))
            .collect();
        let sums = SubsetSums::of(&unknown);
        for (node, read) in &finals {
            let v = read_value(read).unwrap_or(i64::MIN);
            if !sums.reaches(acked, v) {
                let lost = v < acked + unknown.iter().filter(|d| **d < 0).sum::<i64>();
                return Verdict::invalid(
                    name,
                    format!(
                        "{node}'s final read is {v}; the acknowledged adds sum to {acked} and {} adds of unknown outcome cannot make up the difference",
                        unknown.len()
                    ),
                    json!({
                        "property": if lost { "lost" } else { "final-value" },
                        "node": node, "read": v, "acknowledged_sum": acked, "unknown_deltas": unknown.len(),
                    }),
                );
            }
        }
        Verdict::valid(
            name,
            format!(
                "every final read ({} nodes) is the acknowledged sum {acked} plus a subset of {} unknown adds",
                finals.len(),
                unknown.len()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::{self, *};
    use crate::maelstrom::testing::{input, Row};
    use crate::verdict::VerdictKind;

    fn add(p: u64, d: i64, end: EventType) -> [Row<'static>; 2] {
        [
            (p, Invoke, "add", json!({ "delta": d }), "n0"),
            (p, end, "add", json!({ "delta": d }), "n0"),
        ]
    }

    fn read(p: u64, node: &'static str, v: i64) -> [Row<'static>; 2] {
        [
            (p, Invoke, "read", json!({}), node),
            (p, Ok, "read", json!({ "value": v }), node),
        ]
    }

    /// Adds, then final reads of `n0` and `n1` returning `finals`.
    fn check(adds: &[(i64, EventType)], finals: [i64; 2]) -> VerdictKind {
        let mut rows: Vec<Row> = Vec::new();
        for (i, (d, end)) in adds.iter().enumerate() {
            rows.extend(add(i as u64, *d, *end));
        }
        let q = rows.len() as u64;
        rows.extend(read(100, "n0", finals[0]));
        rows.extend(read(101, "n1", finals[1]));
        let c = Counter { name: "pn-counter" };
        c.check(&input(&rows, q, &["n0", "n1"])).verdict
    }

    #[test]
    fn a_final_read_below_the_acknowledged_sum_is_a_lost_increment() {
        let adds = [(3, Ok), (2, Ok)];
        assert_eq!(check(&adds, [5, 5]), VerdictKind::Valid);
        assert_eq!(check(&adds, [5, 3]), VerdictKind::Invalid);
        assert_eq!(check(&adds, [5, 8]), VerdictKind::Invalid, "counted twice");
    }

    #[test]
    fn unknown_adds_may_count_or_not_but_only_as_whole_deltas() {
        let adds = [(3, Ok), (4, Info), (-2, Info), (5, Fail)];
        assert_eq!(check(&adds, [3, 7]), VerdictKind::Valid);
        assert_eq!(check(&adds, [1, 5]), VerdictKind::Valid);
        assert_eq!(
            check(&adds, [4, 3]),
            VerdictKind::Invalid,
            "no subset sums to 1"
        );
        assert_eq!(
            check(&adds, [8, 3]),
            VerdictKind::Invalid,
            "a failed add counted"
        );
    }

    #[test]
    fn a_read_during_the_run_may_be_stale_but_not_made_up() {
        let mut rows: Vec<Row> = add(0, 3, Ok).to_vec();
        rows.extend(read(1, "n1", 0));
        let q = rows.len() as u64;
        rows.extend(read(2, "n0", 3));
        rows.extend(read(3, "n1", 3));
        let c = Counter { name: "g-counter" };
        assert_eq!(
            c.check(&input(&rows, q, &["n0", "n1"])).verdict,
            VerdictKind::Valid
        );
        rows.insert(2, (4, Invoke, "read", json!({}), "n0"));
        rows.insert(3, (4, Ok, "read", json!({"value": 4}), "n0"));
        assert_eq!(
            c.check(&input(&rows, q + 2, &["n0", "n1"])).verdict,
            VerdictKind::Invalid
        );
    }

    #[test]
    fn subset_sums_fall_back_to_their_range_when_there_are_too_many() {
        let many: Vec<i64> = (0..17).map(|i| 1i64 << i).collect();
        assert!(SubsetSums::of(&many).reaches(0, 1));
        assert!(matches!(SubsetSums::of(&many), SubsetSums::Range(..)));
        assert!(!SubsetSums::of(&[2, 4]).reaches(0, 3));
    }
}
