//! `write-once`: many write-once variables ("instances"), each raced for by several clients.
//!
//! The seeds' `WriteOnce<T>` has `tryInitialize(v)` and `finalValue()`. Here `propose {key,
//! value}` does both: it offers `value` for instance `key` and returns the value decided for
//! it (plus the decision's `rounds` and `ballot` where the algorithm has them). `read {key}`
//! returns the decided value, or null while nothing is decided. A consensus algorithm is an
//! implementation of this interface, so the [`crate::consensus`] checker judges the run by
//! the properties of consensus: agreement, validity, termination.
//!
//! The op stream comes in groups. A group is `contention` consecutive proposals of distinct
//! values to one fresh instance: the harness hands consecutive ops to different clients, so
//! the group's proposers race each other for that instance. In [`CONTENDED_READ_PERCENT`]
//! of the groups, reads of the group's instance aimed at every node in turn follow its
//! proposals at once: a node that answers with a value it has merely accepted, not
//! learned as chosen, is seen doing it while the race is still being decided, when the
//! accepted value may still lose. (Reads woven between the proposals would space them
//! out and soften the very race they watch, and so would reads after every group: a
//! read of a crashed node holds its client for a whole op timeout. With either,
//! `tiebreak-wait-all` under crashes stopped splitting its votes.)
//!
//! Between groups come two other kinds of op. With probability `late_percent`, a **late
//! proposal**: a fresh value offered for an instance proposed to before (most likely
//! decided by now), aimed preferably at a node that was restarted during the run. A
//! correct node answers with the decided value; an acceptor that lost its promises and
//! acceptances in a restart, or a proposer that forgot what it learned, lets a second
//! value be chosen, which the checkers see as disagreement. With probability
//! [`READ_PERCENT`], a read of an instance already proposed to. Instances are taken in
//! order 0, 1, .., `instances - 1`; after the last one the generator wraps around and
//! keeps proposing new values to instances that are already decided.
//!
//! Values are a counter from 1, so every proposed value is proposed exactly once in the
//! run and a decided value names the op that proposed it.

use std::collections::VecDeque;

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::consensus::ConsensusChecker;
use crate::linearizable::WriteOnceLinearizability;
use crate::stable_reads::StableReads;
use crate::verdict::Checker;
use crate::workload::{Target, Workload, WorkloadOpts};

/// Chance, in percent, that a read of a proposed instance comes between two groups.
pub const READ_PERCENT: u32 = 15;
/// Chance, in percent, that a group's instance is read at every node while contended.
pub const CONTENDED_READ_PERCENT: u32 = 20;
/// The most `late_percent` may be: late proposals and reads must not starve groups.
pub const LATE_PERCENT_MAX: u32 = 50;

const _: () = assert!(
    READ_PERCENT + LATE_PERCENT_MAX < 100,
    "reads and late proposals between groups must not starve fresh instances"
);
const _: () = assert!(CONTENDED_READ_PERCENT <= 100);

/// The write-once op generator.
#[derive(Debug, Clone)]
pub struct WriteOnceWorkload {
    /// Instances are keys `0..instances`.
    instances: u64,
    /// Proposals per group.
    contention: u64,
    /// Nodes to aim contended reads at.
    nodes: usize,
    /// Percent of op slots between groups that are late proposals.
    late_percent: u32,
    /// Groups started so far; the current group's key is `(groups - 1) % instances`.
    groups: u64,
    /// The current group's ops still to hand out, in order.
    queued: VecDeque<(ClientOp, Target)>,
    /// The last value proposed; values start at 1.
    value_last: u64,
}

impl WriteOnceWorkload {
    /// A generator for `opts.instances` instances with `opts.contention` proposers each.
    /// Zero for either is taken as one: a run with no instance or no proposer has nothing
    /// to decide.
    pub fn new(opts: &WorkloadOpts) -> Self {
        WriteOnceWorkload {
            instances: opts.instances.max(1),
            contention: opts.contention.max(1),
            nodes: opts.nodes.max(1),
            late_percent: opts.late_percent.min(LATE_PERCENT_MAX),
            groups: 0,
            queued: VecDeque::new(),
            value_last: 0,
        }
    }

    /// Instances proposed to so far: keys `0..keys_proposed()`.
    pub fn keys_proposed(&self) -> u64 {
        self.groups.min(self.instances)
    }

    fn fresh_value(&mut self) -> u64 {
        self.value_last += 1;
        self.value_last
    }

    /// Queues the next group: its proposals back to back (so they race), then, if
    /// `read`, a read of its instance at every node while the race is being decided.
    fn start_group(&mut self, read: bool) {
        self.groups += 1;
        let key = (self.groups - 1) % self.instances;
        for _ in 0..self.contention {
            let value = self.fresh_value();
            self.queued
                .push_back((ClientOp::Propose { key, value }, Target::Any));
        }
        if read {
            for i in 0..self.nodes {
                self.queued
                    .push_back((ClientOp::Read { key }, Target::Node(i)));
            }
        }
    }
}

impl Workload for WriteOnceWorkload {
    fn name(&self) -> &'static str {
        "write-once"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        self.next_targeted(rng).0
    }

    fn next_targeted(&mut self, rng: &mut ChaCha8Rng) -> (ClientOp, Target) {
        if let Some(next) = self.queued.pop_front() {
            return next;
        }
        let proposed = self.keys_proposed();
        let roll = rng.gen_range(0..100);
        if proposed > 0 && roll < self.late_percent {
            let key = rng.gen_range(0..proposed);
            let value = self.fresh_value();
            return (ClientOp::Propose { key, value }, Target::Restarted);
        }
        if proposed > 0 && roll < self.late_percent + READ_PERCENT {
            let key = rng.gen_range(0..proposed);
            return (ClientOp::Read { key }, Target::Any);
        }
        let read = rng.gen_range(0..100) < CONTENDED_READ_PERCENT;
        self.start_group(read);
        self.queued.pop_front().expect("a group has a proposal")
    }

    /// A read of every instance, proposed to or not: a node that returns a value for an
    /// instance nobody proposed to breaks validity.
    fn final_ops(&self) -> Vec<ClientOp> {
        (0..self.instances)
            .map(|key| ClientOp::Read { key })
            .collect()
    }

    /// A read of an instance proposed to settles once it returns a value; a read of one
    /// nobody proposed to settles at once (null is its right answer).
    fn final_settled(&self, op: &ClientOp, reply: &ClientReply) -> bool {
        match (op, reply) {
            (ClientOp::Read { key }, ClientReply::ReadOk { value: None }) => {
                *key >= self.keys_proposed()
            }
            _ => true,
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![
            Box::new(ConsensusChecker),
            Box::new(WriteOnceLinearizability),
            Box::new(StableReads),
        ]
    }

    fn default_algorithm(&self) -> &'static str {
        "paxos"
    }
}

/// Ops the generator hands out per group started, on average, for sizing runs: the
/// group's proposals and contended reads, and the late proposals and reads between
/// groups.
pub fn ops_per_group(contention: u64, nodes: usize, late_percent: u32) -> f64 {
    let late = late_percent.min(LATE_PERCENT_MAX) as f64 / 100.0;
    let between = late + READ_PERCENT as f64 / 100.0;
    let group =
        contention.max(1) as f64 + CONTENDED_READ_PERCENT as f64 / 100.0 * nodes.max(1) as f64;
    group + between / (1.0 - between)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rand::SeedableRng;

    use super::*;

    fn opts(instances: u64, contention: u64, late_percent: u32) -> WorkloadOpts {
        WorkloadOpts {
            instances,
            contention,
            nodes: 5,
            late_percent,
            ..WorkloadOpts::default()
        }
    }

    fn ops(o: &WorkloadOpts, seed: u64, n: usize) -> Vec<(ClientOp, Target)> {
        let mut w = WriteOnceWorkload::new(o);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| w.next_targeted(&mut rng)).collect()
    }

    #[test]
    fn every_value_is_proposed_once_and_fresh_keys_come_in_order() {
        for k in [1, 2, 3, 5] {
            let ops = ops(&opts(1_000, k, 10), 7, 800);
            let mut values = BTreeSet::new();
            let mut per_key: BTreeMap<u64, u64> = BTreeMap::new();
            let mut first_seen: Vec<u64> = Vec::new();
            for (op, target) in &ops {
                if let ClientOp::Propose { key, value } = op {
                    assert!(*value > 0);
                    assert!(values.insert(*value), "value {value} proposed twice");
                    if *target == Target::Any {
                        *per_key.entry(*key).or_default() += 1;
                        if !first_seen.contains(key) {
                            first_seen.push(*key);
                        }
                    }
                }
            }
            let keys: Vec<u64> = (0..first_seen.len() as u64).collect();
            assert_eq!(first_seen, keys, "fresh keys in order");
            // Every group but the last (maybe still open) has k racing proposals.
            let last = *first_seen.last().expect("groups");
            assert!(per_key.iter().all(|(key, n)| *n == k || *key == last));
        }
    }

    #[test]
    fn contended_reads_at_every_node_follow_the_racing_proposals() {
        let ops = ops(&opts(1_000, 2, 10), 3, 600);
        let mut after_race = 0;
        for w in ops.windows(3) {
            if let (
                (ClientOp::Propose { key: a, .. }, Target::Any),
                (ClientOp::Propose { key: b, .. }, Target::Any),
                (ClientOp::Read { key: c }, Target::Node(0)),
            ) = (&w[0], &w[1], &w[2])
            {
                assert!(a == b && b == c);
                after_race += 1;
            }
        }
        assert!(
            after_race > 10,
            "{after_race} groups read right after their race"
        );
        let nodes: BTreeSet<usize> = ops
            .iter()
            .filter_map(|(_, t)| match t {
                Target::Node(i) => Some(*i),
                _ => None,
            })
            .collect();
        assert_eq!(nodes, (0..5).collect());
    }

    #[test]
    fn late_proposals_go_to_instances_proposed_before_aimed_at_restarted_nodes() {
        let ops = ops(&opts(1_000, 2, 20), 11, 1_000);
        let mut proposed = BTreeSet::new();
        let mut late = 0;
        for (op, target) in &ops {
            match (op, target) {
                (ClientOp::Propose { key, .. }, Target::Restarted) => {
                    late += 1;
                    assert!(proposed.contains(key), "late proposal to fresh key {key}");
                }
                (ClientOp::Propose { key, .. }, _) => {
                    proposed.insert(*key);
                }
                (ClientOp::Read { key }, _) => {
                    assert!(proposed.contains(key), "read of unproposed key {key}")
                }
                (other, _) => panic!("unexpected op {other:?}"),
            }
        }
        assert!(late > 50 && late < 300, "{late} late proposals in 1000 ops");
        let none = self::ops(&opts(1_000, 2, 0), 11, 1_000);
        assert!(none.iter().all(|(_, t)| *t != Target::Restarted));
    }

    #[test]
    fn same_seed_same_ops_other_seed_other_ops() {
        let o = opts(10, 3, 10);
        assert_eq!(ops(&o, 42, 300), ops(&o, 42, 300));
        assert_ne!(ops(&o, 42, 300), ops(&o, 43, 300));
    }

    #[test]
    fn keys_wrap_around_with_fresh_values() {
        let ops = ops(&opts(3, 2, 0), 5, 200);
        let mut keys: Vec<u64> = Vec::new();
        for (op, target) in &ops {
            if let (ClientOp::Propose { key, .. }, Target::Any) = (op, target) {
                if keys.last() != Some(key) {
                    keys.push(*key);
                }
            }
        }
        assert_eq!(&keys[..7], [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn final_ops_read_every_instance_and_zero_opts_are_one() {
        let w = WriteOnceWorkload::new(&opts(4, 2, 10));
        assert_eq!(
            w.final_ops(),
            (0..4).map(|key| ClientOp::Read { key }).collect::<Vec<_>>()
        );
        let ops = ops(&opts(0, 0, 10), 9, 5);
        assert!(ops.iter().all(|(op, _)| matches!(
            op,
            ClientOp::Propose { key: 0, .. } | ClientOp::Read { key: 0 }
        )));
        assert_eq!(
            WriteOnceWorkload::new(&WorkloadOpts::default()).default_algorithm(),
            "paxos"
        );
    }

    #[test]
    fn ops_per_group_counts_what_the_generator_hands_out() {
        let o = opts(1_000_000, 2, 10);
        let n = 20_000;
        let ops = ops(&o, 1, n);
        let mut w = WriteOnceWorkload::new(&o);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..n {
            w.next_targeted(&mut rng);
        }
        let measured = ops.len() as f64 / w.groups as f64;
        let predicted = ops_per_group(2, 5, 10);
        assert!(
            (measured - predicted).abs() / predicted < 0.05,
            "measured {measured}, predicted {predicted}"
        );
    }
}
