//! `fifo`: FIFO multicast with per-sender sequence numbers and a hold-back queue (seed
//! 004, "Implementing multicast ordering 1").
//!
//! Each process Pi keeps a vector Pi[1..N] of sequence numbers, all zero at first; Pi[j]
//! is the latest multicast from Pj that Pi has delivered. To multicast, Pj sets
//! Pj[j] = Pj[j] + 1 and sends that number S with the message. When Pi receives a
//! message from Pj with number S: if S = Pi[j] + 1 it delivers it and sets Pi[j] = S (and
//! then delivers any held-back message that has become next); if S is larger it holds
//! the message back until the ones before it arrive; if S ≤ Pi[j] it is a copy of a
//! message already delivered and is ignored.
//!
//! The invariant: Pi delivers Pj's messages exactly in the order 1, 2, 3, .. that Pj
//! sent them, whatever order the network hands them over in. Messages from different
//! senders are not ordered against each other, so a message that causally follows
//! another (sent by a node after it delivered that one) may still arrive first and be
//! delivered first: FIFO is not causal.
//!
//! Mutant `no-holdback`: a message whose number is not next is delivered at once instead
//! of held back (and Pi[j] jumps to S), so a link that reorders breaks FIFO.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{multicast_node, Deliveries, Multicast, HOLDBACK_MAX};
use crate::algo::{Config, Ctx, NodeId};

/// The guarantee `fifo` claims.
pub const GUARANTEE: &str = "fifo";

/// The FIFO-multicast node.
pub struct Fifo {
    log: Deliveries,
    /// Pi[j]: the last sequence number delivered from each sender (this node included).
    delivered_seq: BTreeMap<NodeId, u64>,
    /// Messages received ahead of their turn, by `(sender, S)`.
    holdback: BTreeMap<(NodeId, u64), u64>,
    no_holdback: bool,
}

/// Messages between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// The sender's multicast number `seq`.
    Data {
        /// S: the sender's sequence number for it, from 1.
        seq: u64,
        /// The value.
        value: u64,
    },
}

impl Fifo {
    fn last(&self, from: &str) -> u64 {
        self.delivered_seq.get(from).copied().unwrap_or(0)
    }

    /// Delivers every held-back message of `from` that is next in its sequence.
    fn drain(&mut self, from: &str, ctx: &mut Ctx<Self>) {
        loop {
            let next = self.last(from) + 1;
            let Some(value) = self.holdback.remove(&(from.to_string(), next)) else {
                return;
            };
            self.log.deliver(value, ctx);
            self.delivered_seq.insert(from.to_string(), next);
        }
    }
}

multicast_node!(Fifo, Msg, &["no-holdback"]);

impl Multicast for Fifo {
    fn build(config: &Config) -> Self {
        Fifo {
            log: Deliveries::default(),
            delivered_seq: BTreeMap::new(),
            holdback: BTreeMap::new(),
            no_holdback: config.has_bug("no-holdback"),
        }
    }

    fn receive(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        let Msg::Data { seq, value } = msg;
        assert!(seq > 0, "sequence numbers start at 1");
        if seq <= self.last(&from) {
            return;
        }
        if self.no_holdback {
            self.log.deliver(value, ctx);
            self.delivered_seq.insert(from, seq);
            return;
        }
        if self.holdback.len() >= HOLDBACK_MAX {
            return;
        }
        self.holdback.insert((from.clone(), seq), value);
        self.drain(&from, ctx);
    }

    fn multicast(&mut self, value: u64, ctx: &mut Ctx<Self>) {
        let me = ctx.id().clone();
        let seq = self.last(&me) + 1;
        self.delivered_seq.insert(me, seq);
        ctx.broadcast(Msg::Data { seq, value });
        self.log.deliver(value, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{deliver_link, delivered, held, mcast};
    use super::*;
    use crate::sim::{Options, Sim};

    /// The seed's hold-back example: P1 multicasts M1:1 then M1:2; P2 receives M1:2
    /// first. S = 2 is not P2[1] + 1 = 1, so M1:2 waits; M1:1 arrives, is delivered, and
    /// so is M1:2 behind it. With `no-holdback`, M1:2 is delivered on arrival and M1:1,
    /// now below P2[1], is dropped as old.
    fn seed_holdback_example(options: Options) -> Vec<u64> {
        let sim: Sim<Fifo> = Sim::with_options(3, 1, options).unwrap();
        let mut sim = held(sim, &[("n1", 1), ("n1", 2)]);
        let to_n2 = sim.select(|e| e.to == "n2");
        assert_eq!(to_n2.len(), 2);
        sim.deliver(to_n2[1]);
        let early = delivered(&sim, "n2");
        sim.deliver(to_n2[0]);
        assert_eq!(deliver_link(&mut sim, "n1", "n3"), 2);
        assert_eq!(delivered(&sim, "n3"), vec![1, 2]);
        [early, vec![0], delivered(&sim, "n2")].concat()
    }

    #[test]
    fn fifo_replays_the_seeds_holdback_example() {
        assert_eq!(seed_holdback_example(Options::default()), vec![0, 1, 2]);
        assert_eq!(
            seed_holdback_example(Options::default().bug("no-holdback")),
            vec![2, 0, 2]
        );
    }

    #[test]
    fn fifo_ignores_a_duplicated_message() {
        let mut sim: Sim<Fifo> = Sim::new(2, 1);
        mcast(&mut sim, "n1", 5);
        let id = sim.select(|_| true)[0];
        sim.duplicate(id);
        sim.run_until_quiet();
        assert_eq!(delivered(&sim, "n2"), vec![5]);
    }
}
