//! `total-sequencer`: total order through a sequencer (seed 004, "Sequencer-based
//! approach").
//!
//! One process is the sequencer — here always the first node of the cluster, `n1`, never
//! re-elected. To multicast, Pi sends M to the group (the sequencer included). The
//! sequencer keeps a global number S, zero at first; when it receives a multicast M it
//! sets S = S + 1 and multicasts the order `<M, S>`. Every process keeps Si, the last
//! global number it delivered, and buffers M until it has both M and `<M, S(M)>` from the
//! sequencer with S(M) = Si + 1; then it delivers M and sets Si = Si + 1.
//!
//! The invariant: every process delivers in the order of S, which one process assigned,
//! so every two processes deliver their common messages in the same order. Nothing
//! more: a sender's two messages may reach the sequencer in either order over a link that
//! reorders (not FIFO), and the sequencer is a single point of failure — once it crashes
//! nothing is ordered any more, and an order it sent to some members but not others
//! leaves the group delivering different sets. It is total, not reliable.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{multicast_node, Deliveries, Multicast, HOLDBACK_MAX};
use crate::algo::{Config, Ctx, NodeId};

/// The guarantee `total-sequencer` claims.
pub const GUARANTEE: &str = "total";

/// A multicast's identity: its origin and the origin's count.
type MsgId = (NodeId, u64);

/// The sequencer-based total-order node.
pub struct TotalSequencer {
    log: Deliveries,
    sequencer: NodeId,
    /// This node's multicasts so far.
    sent: u64,
    /// S, at the sequencer: the last global number given out.
    global: u64,
    /// Si: the last global number delivered here.
    delivered_global: u64,
    /// Multicasts received and not yet delivered.
    waiting: BTreeMap<MsgId, u64>,
    /// Orders received and not yet delivered: S -> M.
    orders: BTreeMap<u64, MsgId>,
    /// Multicasts delivered here, so that a late copy is not held back forever.
    done: BTreeSet<MsgId>,
}

/// Messages between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Multicast number `id` of its sender.
    Data {
        /// The sender's count of its multicasts, from 1.
        id: u64,
        /// The value.
        value: u64,
    },
    /// `<M, S>` from the sequencer.
    Order {
        /// M's origin.
        origin: NodeId,
        /// M's number at its origin.
        id: u64,
        /// S(M).
        seq: u64,
    },
}

impl TotalSequencer {
    fn on_data(&mut self, key: MsgId, value: u64, ctx: &mut Ctx<Self>) {
        if self.done.contains(&key)
            || self.waiting.contains_key(&key)
            || self.waiting.len() >= HOLDBACK_MAX
        {
            return;
        }
        self.waiting.insert(key.clone(), value);
        if *ctx.id() == self.sequencer {
            self.global += 1;
            let (origin, id) = key;
            let seq = self.global;
            ctx.broadcast(Msg::Order {
                origin: origin.clone(),
                id,
                seq,
            });
            self.on_order((origin, id), seq, ctx);
        } else {
            self.drain(ctx);
        }
    }

    fn on_order(&mut self, key: MsgId, seq: u64, ctx: &mut Ctx<Self>) {
        if seq <= self.delivered_global || self.orders.len() >= HOLDBACK_MAX {
            return;
        }
        self.orders.insert(seq, key);
        self.drain(ctx);
    }

    /// Delivers while the next global number's order and message are both here.
    fn drain(&mut self, ctx: &mut Ctx<Self>) {
        loop {
            let next = self.delivered_global + 1;
            let Some(key) = self.orders.get(&next) else {
                return;
            };
            let Some(value) = self.waiting.remove(key) else {
                return;
            };
            let key = self.orders.remove(&next).expect("looked up just now");
            self.log.deliver(value, ctx);
            self.done.insert(key);
            self.delivered_global = next;
        }
    }
}

multicast_node!(TotalSequencer, Msg, &[]);

impl Multicast for TotalSequencer {
    fn build(config: &Config) -> Self {
        TotalSequencer {
            log: Deliveries::default(),
            sequencer: config.node_ids[0].clone(),
            sent: 0,
            global: 0,
            delivered_global: 0,
            waiting: BTreeMap::new(),
            orders: BTreeMap::new(),
            done: BTreeSet::new(),
        }
    }

    fn receive(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Data { id, value } => self.on_data((from, id), value, ctx),
            Msg::Order { origin, id, seq } => {
                if from == self.sequencer {
                    self.on_order((origin, id), seq, ctx);
                }
            }
        }
    }

    fn multicast(&mut self, value: u64, ctx: &mut Ctx<Self>) {
        self.sent += 1;
        ctx.broadcast(Msg::Data {
            id: self.sent,
            value,
        });
        self.on_data((ctx.id().clone(), self.sent), value, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{deliver_link, delivered, held, hold_all, mcast};
    use super::*;
    use crate::sim::Sim;

    #[test]
    fn total_sequencer_replays_the_seeds_sequencer_example() {
        // n2 and n3 multicast concurrently; n3's message reaches the sequencer n1 first,
        // so S(m3) = 1 and S(m2) = 2. n2 receives its own order last: it buffers n3's
        // message until <m3, 1> arrives, and delivers its own m2 only after it.
        let mut sim: Sim<TotalSequencer> = held(Sim::new(3, 1), &[("n2", 2), ("n3", 3)]);
        assert_eq!(deliver_link(&mut sim, "n3", "n1"), 1);
        assert_eq!(deliver_link(&mut sim, "n2", "n1"), 1);
        assert_eq!(delivered(&sim, "n1"), vec![3, 2]);
        assert_eq!(delivered(&sim, "n2"), Vec::<u64>::new(), "no order yet");
        assert_eq!(deliver_link(&mut sim, "n3", "n2"), 1);
        hold_all(&mut sim);
        let orders = sim.select(|e| e.to == "n2");
        assert_eq!(orders.len(), 2);
        sim.deliver(orders[1]);
        assert_eq!(
            delivered(&sim, "n2"),
            Vec::<u64>::new(),
            "S = 2 waits for S = 1"
        );
        sim.deliver(orders[0]);
        sim.release_all();
        sim.run_until_quiet();
        for n in ["n1", "n2", "n3"] {
            assert_eq!(delivered(&sim, n), vec![3, 2], "{n}");
        }
    }

    #[test]
    fn total_sequencer_stops_when_the_sequencer_crashes() {
        let mut sim: Sim<TotalSequencer> = Sim::new(3, 1);
        sim.crash("n1");
        mcast(&mut sim, "n2", 2);
        sim.run_until_quiet();
        assert_eq!(delivered(&sim, "n2"), Vec::<u64>::new());
        assert_eq!(delivered(&sim, "n3"), Vec::<u64>::new());
    }
}
