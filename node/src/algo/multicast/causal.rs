//! `causal`: causal multicast with vector clocks (seed 004, "Implementing multicast
//! ordering 2").
//!
//! Each process Pi keeps a vector Pi[1..N], all zero at first; Pi[j] is the latest
//! multicast from Pj that Pi has delivered. To multicast, Pj sets Pj[j] = Pj[j] + 1 and
//! sends its whole vector M = Pj[1..N] with the message. Pi holds a message from Pj with
//! vector M back until both
//!
//! 1. it is the next one Pi expects from Pj: M[j] = Pi[j] + 1, and
//! 2. every multicast anywhere in the group that happened before it has been delivered
//!    at Pi: for all k ≠ j, M[k] ≤ Pi[k] — written here as M[k] < Pi[k] + 1;
//!
//! then delivers it and sets Pi[j] = M[j], and looks at the hold-back queue again.
//!
//! The invariant: if multicast(m) → multicast(m') then every process delivers m before
//! m', because m' carries in its vector a count that includes m and waits for it. Causal
//! implies FIFO (condition 1). It is not total: two concurrent multicasts (neither
//! delivered at the other's sender before it sent) may be delivered in opposite orders
//! at two receivers.
//!
//! Mutant `deliver-early`: condition 2 with `<=` for `<` (M[k] ≤ Pi[k] + 1), so a
//! message may be delivered while one multicast it depends on is still missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{multicast_node, slot, Deliveries, Multicast, HOLDBACK_MAX};
use crate::algo::{Config, Ctx, NodeId};

/// The guarantee `causal` claims.
pub const GUARANTEE: &str = "causal";

/// The causal-multicast node.
pub struct Causal {
    log: Deliveries,
    /// This node's slot in the vectors.
    me: usize,
    /// Pi[1..N].
    clock: Vec<u64>,
    /// Messages received ahead of their turn, by `(sender slot, M[sender])`: M and value.
    holdback: BTreeMap<(usize, u64), (Vec<u64>, u64)>,
    deliver_early: bool,
}

/// Messages between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// A multicast with its sender's vector.
    Data {
        /// M[1..N]: the sender's vector right after it counted this multicast.
        vector: Vec<u64>,
        /// The value.
        value: u64,
    },
}

impl Causal {
    /// The seed's delivery rule for a message from slot `j` carrying vector `m`.
    fn deliverable(&self, j: usize, m: &[u64]) -> bool {
        let next = m[j] == self.clock[j] + 1;
        let past = (0..m.len()).filter(|k| *k != j).all(|k| {
            if self.deliver_early {
                m[k] <= self.clock[k] + 1
            } else {
                m[k] < self.clock[k] + 1
            }
        });
        next && past
    }

    /// Delivers held-back messages until none is deliverable.
    fn drain(&mut self, ctx: &mut Ctx<Self>) {
        loop {
            let ready = self
                .holdback
                .iter()
                .find(|((j, _), (m, _))| self.deliverable(*j, m))
                .map(|(key, _)| *key);
            let Some(key) = ready else { return };
            let (m, value) = self.holdback.remove(&key).expect("found just now");
            self.log.deliver(value, ctx);
            self.clock[key.0] = m[key.0];
        }
    }
}

multicast_node!(Causal, Msg, &["deliver-early"]);

impl Multicast for Causal {
    fn build(config: &Config) -> Self {
        Causal {
            log: Deliveries::default(),
            me: slot(config, &config.id),
            clock: vec![0; config.node_ids.len()],
            holdback: BTreeMap::new(),
            deliver_early: config.has_bug("deliver-early"),
        }
    }

    fn receive(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        let Msg::Data { vector, value } = msg;
        let j = slot(ctx.config(), &from);
        assert_eq!(vector.len(), self.clock.len(), "one entry per member");
        if vector[j] <= self.clock[j] || self.holdback.len() >= HOLDBACK_MAX {
            return;
        }
        self.holdback.insert((j, vector[j]), (vector, value));
        self.drain(ctx);
    }

    fn multicast(&mut self, value: u64, ctx: &mut Ctx<Self>) {
        self.clock[self.me] += 1;
        let vector = self.clock.clone();
        ctx.broadcast(Msg::Data { vector, value });
        self.log.deliver(value, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{deliver_link, delivered, hold_all, mcast};
    use super::*;
    use crate::sim::{Options, Sim};

    /// The seed's causal example (the social-network comment): P1 multicasts m, P2
    /// delivers it and multicasts its reply m', and m' reaches P3 before m. P3 holds m'
    /// ([1,1,0] needs P3[1] ≥ 1) until m arrives, then delivers m, m'. The mutant
    /// (M[k] ≤ P3[k] + 1) lets m' through first. Returns P3's deliveries after m' alone
    /// arrived, and after both.
    fn seed_causal_example(options: Options) -> (Vec<u64>, Vec<u64>) {
        let mut sim: Sim<Causal> = Sim::with_options(3, 1, options).unwrap();
        mcast(&mut sim, "n1", 1);
        hold_all(&mut sim);
        assert_eq!(deliver_link(&mut sim, "n1", "n2"), 1);
        assert_eq!(delivered(&sim, "n2"), vec![1]);
        mcast(&mut sim, "n2", 2);
        hold_all(&mut sim);
        assert_eq!(deliver_link(&mut sim, "n2", "n3"), 1);
        let early = delivered(&sim, "n3");
        assert_eq!(deliver_link(&mut sim, "n1", "n3"), 1);
        (early, delivered(&sim, "n3"))
    }

    #[test]
    fn causal_replays_the_seeds_causal_example() {
        assert_eq!(
            seed_causal_example(Options::default()),
            (vec![], vec![1, 2])
        );
        let early = Options::default().bug("deliver-early");
        assert_eq!(seed_causal_example(early), (vec![2], vec![2, 1]));
    }

    #[test]
    fn causal_orders_concurrent_multicasts_differently_at_two_receivers() {
        // Not total: n1's and n2's concurrent multicasts cross, each delivered first at
        // its own sender.
        let mut sim: Sim<Causal> = Sim::new(2, 1);
        mcast(&mut sim, "n1", 1);
        mcast(&mut sim, "n2", 2);
        sim.run_until_quiet();
        assert_eq!(delivered(&sim, "n1"), vec![1, 2]);
        assert_eq!(delivered(&sim, "n2"), vec![2, 1]);
    }
}
