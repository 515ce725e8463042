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
//! the group's proposers race each other for that instance. Between groups, with
//! probability [`READ_PERCENT`], comes a read of an instance already proposed to (possibly
//! the one still being decided). Instances are taken in order 0, 1, .., `instances - 1`;
//! after the last one the generator wraps around and keeps proposing new values to
//! instances that are already decided, which must answer with the value decided before:
//! late proposers are where a forgotten acceptance shows up as disagreement.
//!
//! Values are a counter from 1, so every proposed value is proposed exactly once in the
//! run and a decided value names the op that proposed it.

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::consensus::ConsensusChecker;
use crate::linearizable::WriteOnceLinearizability;
use crate::stable_reads::StableReads;
use crate::verdict::Checker;
use crate::workload::{Workload, WorkloadOpts};

/// Chance, in percent, that a read comes between two groups of proposals.
pub const READ_PERCENT: u32 = 25;

const _: () = assert!(
    READ_PERCENT < 100,
    "reads between groups must not starve proposals"
);

/// The write-once op generator.
#[derive(Debug, Clone)]
pub struct WriteOnceWorkload {
    /// Instances are keys `0..instances`.
    instances: u64,
    /// Proposals per group.
    contention: u64,
    /// Groups started so far; the current group's key is `(groups - 1) % instances`.
    groups: u64,
    /// Proposals still to come in the current group.
    group_left: u64,
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
            groups: 0,
            group_left: 0,
            value_last: 0,
        }
    }

    /// Instances proposed to so far: keys `0..keys_proposed()`.
    pub fn keys_proposed(&self) -> u64 {
        self.groups.min(self.instances)
    }
}

impl Workload for WriteOnceWorkload {
    fn name(&self) -> &'static str {
        "write-once"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        if self.group_left == 0 {
            let proposed = self.keys_proposed();
            if proposed > 0 && rng.gen_range(0..100) < READ_PERCENT {
                return ClientOp::Read {
                    key: rng.gen_range(0..proposed),
                };
            }
            self.groups += 1;
            self.group_left = self.contention;
        }
        self.group_left -= 1;
        self.value_last += 1;
        ClientOp::Propose {
            key: (self.groups - 1) % self.instances,
            value: self.value_last,
        }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;

    fn ops(instances: u64, contention: u64, seed: u64, n: usize) -> Vec<ClientOp> {
        let mut w = WriteOnceWorkload::new(&WorkloadOpts {
            instances,
            contention,
        });
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| w.next_op(&mut rng)).collect()
    }

    /// The proposals, grouped by runs of consecutive proposals to one key (reads split
    /// nothing: they only come between groups).
    fn groups(ops: &[ClientOp]) -> Vec<(u64, Vec<u64>)> {
        let mut groups: Vec<(u64, Vec<u64>)> = Vec::new();
        let mut open = false;
        for op in ops {
            match op {
                ClientOp::Propose { key, value } => match groups.last_mut() {
                    Some((k, values)) if open && k == key => values.push(*value),
                    _ => {
                        groups.push((*key, vec![*value]));
                        open = true;
                    }
                },
                _ => open = false,
            }
        }
        groups
    }

    #[test]
    fn contention_k_gives_k_distinct_proposals_per_fresh_key() {
        for k in [1, 2, 3, 5] {
            let ops = ops(1_000, k, 7, 500);
            let groups = groups(&ops);
            assert!(groups.len() > 10);
            let mut values = BTreeSet::new();
            for (i, (key, vs)) in groups.iter().enumerate() {
                assert_eq!(*key, i as u64, "keys are fresh and in order");
                // The last group may still be open when the op stream stops.
                if i + 1 < groups.len() {
                    assert_eq!(vs.len() as u64, k, "group of key {key}");
                }
                for v in vs {
                    assert!(*v > 0);
                    assert!(values.insert(*v), "value {v} proposed twice");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_ops_other_seed_other_reads() {
        assert_eq!(ops(10, 3, 42, 300), ops(10, 3, 42, 300));
        assert_ne!(ops(10, 3, 42, 300), ops(10, 3, 43, 300));
    }

    #[test]
    fn reads_only_of_proposed_keys_and_some_reads_at_all() {
        let ops = ops(1_000, 2, 1, 400);
        let mut proposed = BTreeSet::new();
        let mut reads = 0;
        for op in &ops {
            match op {
                ClientOp::Propose { key, .. } => {
                    proposed.insert(*key);
                }
                ClientOp::Read { key } => {
                    reads += 1;
                    assert!(proposed.contains(key), "read of unproposed key {key}");
                }
                other => panic!("unexpected op {other:?}"),
            }
        }
        assert!(reads > 20 && reads < 200, "{reads} reads in 400 ops");
    }

    #[test]
    fn keys_wrap_around_with_fresh_values() {
        let ops = ops(3, 2, 5, 100);
        let groups = groups(&ops);
        let keys: Vec<u64> = groups.iter().map(|(k, _)| *k).take(7).collect();
        assert_eq!(keys, [0, 1, 2, 0, 1, 2, 0]);
        let values: Vec<u64> = groups.iter().flat_map(|(_, vs)| vs.clone()).collect();
        assert_eq!(values, (1..=values.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn final_ops_read_every_instance_and_zero_opts_are_one() {
        let w = WriteOnceWorkload::new(&WorkloadOpts {
            instances: 4,
            contention: 2,
        });
        assert_eq!(
            w.final_ops(),
            (0..4).map(|key| ClientOp::Read { key }).collect::<Vec<_>>()
        );
        let ops = ops(0, 0, 9, 5);
        assert!(ops.iter().all(|op| matches!(
            op,
            ClientOp::Propose { key: 0, .. } | ClientOp::Read { key: 0 }
        )));
        assert_eq!(
            WriteOnceWorkload::new(&WorkloadOpts::default()).default_algorithm(),
            "paxos"
        );
    }
}
