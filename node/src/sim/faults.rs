//! Faults beyond single messages: partitions, heal, and the seeded random driver.

use std::collections::BTreeSet;

use rand::Rng;

use super::Sim;
use crate::algo::{Algorithm, NodeId};

/// Fault rates for [`Sim::run_random`]. Probabilities are per mille.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// Each message's latency is uniform in `0..=latency_ms_max` (this is what reorders).
    pub latency_ms_max: u64,
    /// Chance a message is lost.
    pub drop_per_mille: u32,
    /// Chance a message is delivered twice.
    pub duplicate_per_mille: u32,
    /// Chance, after each event, that a random live node crashes.
    pub crash_per_mille: u32,
    /// At most this many nodes are down at once.
    pub crashed_max: usize,
    /// A crashed node restarts this long after its crash.
    pub restart_after_ms: u64,
    /// Chance, after each event, that a random partition starts (if none is active).
    pub partition_per_mille: u32,
    /// How long a partition lasts.
    pub partition_ms: u64,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            latency_ms_max: 20,
            drop_per_mille: 100,
            duplicate_per_mille: 50,
            crash_per_mille: 2,
            crashed_max: 1,
            restart_after_ms: 300,
            partition_per_mille: 2,
            partition_ms: 400,
        }
    }
}

/// A split of the cluster: `side` against the rest, until `until_ms`.
pub(super) struct Partition {
    pub(super) side: BTreeSet<NodeId>,
    pub(super) hold: bool,
    pub(super) until_ms: u64,
}

impl<A: Algorithm> Sim<A> {
    /// Runs for `duration_ms` of virtual time with the faults of `chaos` drawn from the
    /// simulation's seed: random latencies (reordering), drops, duplicates, crashes with
    /// restarts, and partitions that hold or cut. Faults stay active at the end; call
    /// [`Sim::heal`] before checking termination.
    pub fn run_random(&mut self, chaos: &Chaos, duration_ms: u64) {
        self.router = None;
        self.chaos = Some(chaos.clone());
        let until = self.now_ms + duration_ms;
        loop {
            let next = self
                .next_event_ms()
                .unwrap_or(until)
                .min(self.next_restart_ms());
            if next > until {
                break;
            }
            if next == self.next_restart_ms() {
                self.now_ms = self.now_ms.max(next);
                self.restart_due();
            } else if !self.step() {
                break;
            }
            self.end_partition_due();
            self.inject(chaos);
        }
        self.now_ms = until;
        self.restart_due();
        self.end_partition_due();
    }

    fn next_restart_ms(&self) -> u64 {
        self.nodes
            .values()
            .filter_map(|n| n.restart_at_ms)
            .min()
            .unwrap_or(u64::MAX)
    }

    fn restart_due(&mut self) {
        let now = self.now_ms;
        let due: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.restart_at_ms.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.restart(&id);
        }
    }

    fn end_partition_due(&mut self) {
        if self
            .partition
            .as_ref()
            .is_some_and(|p| p.until_ms <= self.now_ms)
        {
            self.partition = None;
            self.release_all();
        }
    }

    fn inject(&mut self, chaos: &Chaos) {
        let down = self.nodes.values().filter(|n| n.algo.is_none()).count();
        if down < chaos.crashed_max && self.rng.gen_range(0..1000) < chaos.crash_per_mille {
            let victim = self.ids[self.rng.gen_range(0..self.ids.len())].clone();
            if self.is_up(&victim) {
                self.crash(&victim);
                let at = self.now_ms + chaos.restart_after_ms;
                self.nodes
                    .get_mut(&victim)
                    .expect("known node")
                    .restart_at_ms = Some(at);
            }
        }
        if self.partition.is_none() && self.rng.gen_range(0..1000) < chaos.partition_per_mille {
            let side: BTreeSet<NodeId> = self
                .ids
                .iter()
                .filter(|_| self.rng.gen_bool(0.5))
                .cloned()
                .collect();
            if side.is_empty() || side.len() == self.ids.len() {
                return;
            }
            let hold = self.rng.gen_bool(0.5);
            self.counters.partitions += 1;
            self.partition = Some(Partition {
                side,
                hold,
                until_ms: self.now_ms + chaos.partition_ms,
            });
        }
    }

    /// Splits the cluster: messages between `side` and the rest are held (`hold`) or lost.
    pub fn partition(&mut self, side: &[&str], hold: bool) {
        let side = side.iter().map(|s| s.to_string()).collect();
        self.counters.partitions += 1;
        self.partition = Some(Partition {
            side,
            hold,
            until_ms: u64::MAX,
        });
    }

    /// Ends every fault: default network, no partition, held messages released, crashed
    /// nodes restarted.
    pub fn heal(&mut self) {
        self.router = None;
        self.chaos = None;
        self.partition = None;
        self.release_all();
        let down: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.algo.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in down {
            self.restart(&id);
        }
    }
}
