//! `best-effort`: the "first-cut" multicast of seed 004 — the sender sends the message to
//! every member of the group, one unicast after the other, and a receiver delivers it the
//! moment it arrives.
//!
//! Nothing is held back, so nothing is ordered: a link that reorders delivers one
//! sender's messages out of send order (FIFO broken), and two senders' messages reach two
//! receivers in opposite orders (total broken). Nothing is repeated either: "if the sender
//! fails, some correct processes might receive multicast M, while other correct processes
//! might not" (reliability broken). The only promise kept is integrity: a copy seen twice
//! (`(origin, id)` again) is delivered once. It is the baseline every checker must fail.
//!
//! [`Flood`] is also the core of [`super::reliable`], which adds the receivers' relay.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{multicast_node, Deliveries, Multicast};
use crate::algo::{Config, Ctx, NodeId};

/// The guarantee `best-effort` claims: no order, no reliability.
pub const GUARANTEE: &str = "none";

/// Plain send-to-all; with `RELAY`, every receiver sends a message on to the group the
/// first time it sees it ([`super::reliable`]).
pub struct Flood<const RELAY: bool> {
    log: Deliveries,
    sent: u64,
    seen: BTreeSet<(NodeId, u64)>,
}

/// The best-effort node.
pub type BestEffort = Flood<false>;

/// Messages between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Multicast number `id` of node `origin`.
    Data {
        /// The node a client asked to multicast it.
        origin: NodeId,
        /// The origin's count of its multicasts, from 1.
        id: u64,
        /// The value.
        value: u64,
    },
}

multicast_node!([const RELAY: bool] Flood<RELAY>, Msg, &[]);

impl<const RELAY: bool> Multicast for Flood<RELAY> {
    fn build(_config: &Config) -> Self {
        Flood {
            log: Deliveries::default(),
            sent: 0,
            seen: BTreeSet::new(),
        }
    }

    fn receive(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        let Msg::Data { origin, id, value } = msg;
        if !self.seen.insert((origin.clone(), id)) {
            return;
        }
        if RELAY {
            // Passed on before it is delivered, so a node that delivers has already done
            // its part; not back to the copy's sender or the origin: both have it.
            let peers: Vec<NodeId> = ctx
                .config()
                .peers()
                .filter(|p| **p != from && **p != origin)
                .cloned()
                .collect();
            for peer in peers {
                let data = Msg::Data {
                    origin: origin.clone(),
                    id,
                    value,
                };
                ctx.send(&peer, data);
            }
        }
        self.log.deliver(value, ctx);
    }

    fn multicast(&mut self, value: u64, ctx: &mut Ctx<Self>) {
        self.sent += 1;
        let origin = ctx.id().clone();
        self.seen.insert((origin.clone(), self.sent));
        let id = self.sent;
        ctx.broadcast(Msg::Data { origin, id, value });
        self.log.deliver(value, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{deliver_link, delivered, held};
    use super::*;
    use crate::sim::Sim;

    #[test]
    fn best_effort_delivers_in_arrival_order_and_once() {
        let mut sim: Sim<BestEffort> = held(Sim::new(3, 1), &[("n1", 1), ("n1", 2)]);
        // n1's second message overtakes its first on the way to n2.
        let late = sim.select(|e| e.to == "n2");
        sim.deliver(late[1]);
        sim.duplicate(late[0]);
        sim.release_all();
        sim.run_until_quiet();
        assert_eq!(delivered(&sim, "n1"), vec![1, 2]);
        assert_eq!(delivered(&sim, "n2"), vec![2, 1], "no hold-back queue");
        assert_eq!(delivered(&sim, "n3"), vec![1, 2]);
        assert_eq!(deliver_link(&mut sim, "n1", "n2"), 0);
    }
}
