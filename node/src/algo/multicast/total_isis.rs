//! `total-isis`: leaderless total order by agreed priorities, as in the ISIS toolkit's
//! ABCAST (Birman and Joseph, "Reliable communication in the presence of failures", 1987);
//! seed 004 names ISIS as the system behind virtual synchrony and asks for total order
//! without a sequencer.
//!
//! The sender sends M to the group. Each receiver proposes a priority for M — one more
//! than any priority it has proposed or seen agreed, made unique by its own node slot —
//! puts M in its hold-back queue marked *undeliverable* with that priority, and tells the
//! sender. Once the sender has every member's proposal it takes the largest as the
//! *agreed* priority and sends it to the group; each receiver gives M that priority,
//! marks it *deliverable* and re-sorts its queue. A process delivers from the head of its
//! queue while the head is deliverable.
//!
//! The invariant: a message's agreed priority is at least every priority any member
//! proposed for it, and a member never proposes below a priority it has already seen
//! agreed, so when the head of a queue is deliverable no message still undecided can end
//! up ahead of it. All members deliver in agreed-priority order: total order. The price is
//! that one silent member blocks everyone — the sender waits for all N proposals — so
//! it is judged under delay, reorder, clogs and pauses, not crashes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{multicast_node, slot, Deliveries, Multicast, HOLDBACK_MAX};
use crate::algo::{Config, Ctx, NodeId};

/// The guarantee `total-isis` claims.
pub const GUARANTEE: &str = "total";

/// A multicast's identity: its origin and the origin's count.
type MsgId = (NodeId, u64);

/// A priority: a counter made unique by the slot of the node that proposed it.
type Priority = (u64, usize);

#[derive(Debug)]
struct Held {
    value: u64,
    priority: Priority,
    deliverable: bool,
}

/// The ISIS total-order node.
pub struct TotalIsis {
    log: Deliveries,
    me: usize,
    members: usize,
    sent: u64,
    /// The largest counter proposed here or seen agreed.
    highest: u64,
    /// The hold-back queue, by identity; `by_priority` sorts it.
    held: BTreeMap<MsgId, Held>,
    by_priority: BTreeSet<(Priority, MsgId)>,
    /// At the sender: the proposals collected for each of its multicasts still undecided.
    proposals: BTreeMap<u64, BTreeMap<NodeId, Priority>>,
    /// Multicasts delivered here.
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
    /// A receiver's proposed priority for the sender's multicast `id`.
    Propose {
        /// Which of the sender's multicasts.
        id: u64,
        /// The proposed counter.
        counter: u64,
        /// The proposer's slot, which breaks ties.
        slot: usize,
    },
    /// The sender's agreed priority for its multicast `id`.
    Agreed {
        /// Which of the sender's multicasts.
        id: u64,
        /// The agreed counter.
        counter: u64,
        /// The slot that proposed it.
        slot: usize,
    },
}

impl TotalIsis {
    /// Receives M: holds it back undeliverable with a fresh proposal, and answers the
    /// sender (the same proposal again for a copy).
    fn on_data(&mut self, key: MsgId, value: u64, ctx: &mut Ctx<Self>) {
        if self.done.contains(&key) {
            return;
        }
        let proposal = match self.held.get(&key) {
            Some(h) if h.deliverable => return,
            Some(h) => h.priority,
            None if self.held.len() >= HOLDBACK_MAX => return,
            None => {
                self.highest += 1;
                let priority = (self.highest, self.me);
                self.held.insert(
                    key.clone(),
                    Held {
                        value,
                        priority,
                        deliverable: false,
                    },
                );
                self.by_priority.insert((priority, key.clone()));
                priority
            }
        };
        let (origin, id) = key;
        if origin == *ctx.id() {
            let me = origin.clone();
            self.on_propose(me, id, proposal, ctx);
        } else {
            let (counter, slot) = proposal;
            ctx.send(&origin, Msg::Propose { id, counter, slot });
        }
    }

    /// At the sender: one member's proposal; with all of them, the agreed priority.
    fn on_propose(&mut self, from: NodeId, id: u64, priority: Priority, ctx: &mut Ctx<Self>) {
        let Some(got) = self.proposals.get_mut(&id) else {
            return;
        };
        got.insert(from, priority);
        if got.len() < self.members {
            return;
        }
        let agreed = *got.values().max().expect("every member proposed");
        self.proposals.remove(&id);
        let (counter, slot) = agreed;
        ctx.broadcast(Msg::Agreed { id, counter, slot });
        let me = ctx.id().clone();
        self.on_agreed((me, id), agreed, ctx);
    }

    /// M's agreed priority: re-sort it, mark it deliverable, deliver from the head.
    fn on_agreed(&mut self, key: MsgId, agreed: Priority, ctx: &mut Ctx<Self>) {
        self.highest = self.highest.max(agreed.0);
        let Some(h) = self.held.get_mut(&key) else {
            return;
        };
        if h.deliverable {
            return;
        }
        self.by_priority.remove(&(h.priority, key.clone()));
        h.priority = agreed;
        h.deliverable = true;
        self.by_priority.insert((agreed, key));
        while let Some((_, head)) = self.by_priority.first().cloned() {
            if !self.held[&head].deliverable {
                return;
            }
            self.by_priority.pop_first();
            let h = self.held.remove(&head).expect("indexed messages are held");
            self.log.deliver(h.value, ctx);
            self.done.insert(head);
        }
    }
}

multicast_node!(TotalIsis, Msg, &[]);

impl Multicast for TotalIsis {
    fn build(config: &Config) -> Self {
        TotalIsis {
            log: Deliveries::default(),
            me: slot(config, &config.id),
            members: config.node_ids.len(),
            sent: 0,
            highest: 0,
            held: BTreeMap::new(),
            by_priority: BTreeSet::new(),
            proposals: BTreeMap::new(),
            done: BTreeSet::new(),
        }
    }

    fn receive(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Data { id, value } => self.on_data((from, id), value, ctx),
            Msg::Propose { id, counter, slot } => self.on_propose(from, id, (counter, slot), ctx),
            Msg::Agreed { id, counter, slot } => self.on_agreed((from, id), (counter, slot), ctx),
        }
    }

    /// Also opens the collection of proposals for it, its own included.
    fn multicast(&mut self, value: u64, ctx: &mut Ctx<Self>) {
        self.sent += 1;
        let id = self.sent;
        self.proposals.insert(id, BTreeMap::new());
        ctx.broadcast(Msg::Data { id, value });
        self.on_data((ctx.id().clone(), id), value, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{deliver_link, delivered, held};
    use super::*;
    use crate::sim::Sim;

    #[test]
    fn total_isis_agrees_on_one_order_for_crossing_multicasts() {
        // n1 and n2 multicast at once; each first proposes priority 1 for its own
        // message, so the two agreed priorities are decided by the other proposals and
        // the slot tie-break, and both nodes deliver in that one order.
        let mut sim: Sim<TotalIsis> = held(Sim::new(3, 1), &[("n1", 1), ("n2", 2)]);
        // n3 hears n2 first: it proposes (1, n3) for m2 and (2, n3) for m1.
        assert_eq!(deliver_link(&mut sim, "n2", "n3"), 1);
        assert_eq!(deliver_link(&mut sim, "n1", "n3"), 1);
        sim.release_all();
        sim.run_until_quiet();
        let order = delivered(&sim, "n1");
        assert_eq!(order.len(), 2);
        // m1: max((1,n1), (2,n2), (2,n3)) = (2, n3); m2: max((2,n1), (1,n2), (1,n3)) =
        // (2, n1). (2, n1) < (2, n3): m2 first.
        assert_eq!(order, vec![2, 1]);
        assert_eq!(delivered(&sim, "n2"), order);
        assert_eq!(delivered(&sim, "n3"), order);
    }
}
