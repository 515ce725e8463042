//! `coordinator`: one bully-chosen node holds the write-once variable; everyone else asks it.
//!
//! From *Consensus, FLP and Paxos* (seed 003, "Write-Once Variables"): `DistributedWriteOnce`
//! picks `coordinatorId = bullyAlgorithm(nodeIds)` — "the biggest guy wins", here the
//! largest node id in natural order (`n10` > `n9`) — with no message exchanged, since every
//! node runs the same rule on the same list. The coordinator serves the remote calls
//! `tryInitialize(value)` and `finalValue()` from a local, locked variable: the first
//! `tryInitialize` wins and later ones are no-ops. Seed 002 tells the same design as "A
//! Leader-Based Algorithm".
//!
//! Messages keep the seed's names: [`Msg::TryInitialize`] and [`Msg::FinalValue`] go to the
//! coordinator, [`Msg::Value`] comes back. Reads are answered from local knowledge, so the
//! coordinator also pushes each decision to every node until each acknowledges
//! ([`Msg::ValueOk`]); a node that reads a key it knows nothing of also asks `finalValue`
//! in the background. A node persists a proposal before forwarding it, so a restart resumes
//! the forwarding instead of silently dropping a proposal that may be under way.
//!
//! **Why it is safe.** One node decides, first come first served, and syncs the decision
//! to its log before anyone hears of it, so even a SIGKILL and restart of the coordinator
//! cannot make it decide twice.
//!
//! **How it fails.** "The coordinator is a single point of failure — if it crashes, or loses
//! power, or gets disconnected from the network, [...] nobody else is going to be able to
//! propose or query" (seed 002). Nodes keep re-sending `tryInitialize` to the coordinator
//! (exponential backoff, `--param retry_ms`, `retry_ms_max`) and never fail over to another
//! node: seed 002 explains that appointing a new leader is itself a consensus problem and
//! failing over without solving it gives split-brain. So while the coordinator is down or
//! cut off, no proposal anywhere terminates; once it is back, the waiting ones do.
//!
//! **Mutant** `failover` (seed 002, "How do we fix this?"): a node whose `tryInitialize`
//! goes unanswered [`FAILOVER_AFTER`] times suspects the coordinator and re-elects by the
//! same bully rule among the nodes it does not suspect; it trusts a suspect again as soon
//! as it hears from it. Nothing makes the nodes agree on the new leader, so a partition or
//! a long pause of the coordinator gives two coordinators, each deciding on its own side:
//! split brain, two values for one instance.

use std::collections::{BTreeMap, BTreeSet};

use super::announce::{Announcements, Retry};
use super::{
    check_bugs, check_params, not_supported, propose_ok, wait_or_refuse, Algorithm, ClientReq,
    Config, Ctx, NodeId,
};
use proto::ops::{ClientOp, ClientReply};
use proto::Report;
use serde::{Deserialize, Serialize};

const PARAMS: &[&str] = &["retry_ms", "retry_ms_max"];

/// Unanswered `tryInitialize` sends after which the `failover` mutant suspects the
/// coordinator.
pub const FAILOVER_AFTER: u32 = 2;

/// The bully algorithm: the largest id, comparing numeric suffixes as numbers.
pub fn bully(node_ids: &[NodeId]) -> NodeId {
    node_ids
        .iter()
        .max_by_key(|id| natural_key(id))
        .expect("a cluster has nodes")
        .clone()
}

fn natural_key(id: &str) -> (String, u64, String) {
    let prefix: String = id.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let digits: String = id[prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    (prefix, digits.parse().unwrap_or(0), id.to_string())
}

/// Node-to-node messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// To the coordinator: initialize `key` to `value` unless it already is.
    TryInitialize {
        /// The instance.
        key: u64,
        /// The proposed value.
        value: u64,
    },
    /// To the coordinator: what is `key`?
    FinalValue {
        /// The instance.
        key: u64,
    },
    /// From the coordinator: `key` is `value` (`None`: not initialized yet).
    Value {
        /// The instance.
        key: u64,
        /// The decided value, if any.
        value: Option<u64>,
    },
    /// To the coordinator: I know the value of `key` now.
    ValueOk {
        /// The instance.
        key: u64,
    },
}

/// Named timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Re-send `tryInitialize` for `key`.
    Retry {
        /// The instance.
        key: u64,
    },
    /// Coordinator: re-send the value of `key` to nodes that have not acknowledged it.
    Announce {
        /// The instance.
        key: u64,
    },
}

/// Durable records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A client proposed `value` for `key` here; written before it is forwarded.
    Proposed {
        /// The instance.
        key: u64,
        /// The value.
        value: u64,
    },
    /// `key` is `value`: decided here (coordinator) or learned from the coordinator.
    Decided {
        /// The instance.
        key: u64,
        /// The value.
        value: u64,
    },
    /// Coordinator: every node has acknowledged the value of `key`.
    Announced {
        /// The instance.
        key: u64,
    },
}

#[derive(Debug)]
struct Waiting {
    value: u64,
    reqs: Vec<ClientReq>,
    retry_ms: u64,
    /// Sends to the current coordinator so far (for the `failover` mutant).
    sent: u32,
}

/// A coordinator-based write-once node.
pub struct Coordinator {
    me: NodeId,
    node_ids: Vec<NodeId>,
    /// The `failover` mutant: re-elect on a timeout.
    failover: bool,
    /// Nodes this one believes dead (only the `failover` mutant suspects anyone).
    suspected: BTreeSet<NodeId>,
    coordinator: NodeId,
    is_coordinator: bool,
    retry: Retry,
    decided: BTreeMap<u64, u64>,
    waiting: BTreeMap<u64, Waiting>,
    announcing: Announcements,
}

impl Coordinator {
    /// The node every request goes to.
    pub fn coordinator(&self) -> &NodeId {
        &self.coordinator
    }

    /// The value known here for `key`, if any.
    pub fn decided(&self, key: u64) -> Option<u64> {
        self.decided.get(&key).copied()
    }

    /// Records `value` for `key` (first time only) and answers local waiters.
    fn learn(&mut self, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        if self.decided.contains_key(&key) {
            return;
        }
        ctx.persist(Record::Decided { key, value });
        ctx.sync();
        self.decided.insert(key, value);
        ctx.report(Report::Decided {
            key,
            value,
            rounds: None,
        });
        if let Some(w) = self.waiting.remove(&key) {
            ctx.cancel_timer(Timer::Retry { key });
            for req in w.reqs {
                ctx.reply(&req, propose_ok(value));
            }
        }
    }

    /// The coordinator's `tryInitialize`: the first value wins.
    fn try_initialize(&mut self, key: u64, value: u64, ctx: &mut Ctx<Self>) -> u64 {
        assert!(self.is_coordinator, "only the coordinator initializes");
        if let Some(d) = self.decided(key) {
            return d;
        }
        self.learn(key, value, ctx);
        self.announce(key, value, ctx);
        value
    }

    fn announce(&mut self, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        let msg = Msg::Value {
            key,
            value: Some(value),
        };
        self.announcing
            .announce(key, msg, Timer::Announce { key }, ctx);
    }

    /// `peer` knows the decision of `key`.
    fn acked(&mut self, key: u64, peer: &str, ctx: &mut Ctx<Self>) {
        let (timer, done) = (Timer::Announce { key }, Record::Announced { key });
        self.announcing.acked(key, peer, timer, done, ctx);
    }

    fn forward(&mut self, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        let to = self.coordinator.clone();
        ctx.send(&to, Msg::TryInitialize { key, value });
        ctx.set_timer(Timer::Retry { key }, self.retry.base_ms);
    }

    /// Re-runs the bully rule among the nodes not suspected.
    fn elect(&mut self) {
        let alive: Vec<NodeId> = self
            .node_ids
            .iter()
            .filter(|n| !self.suspected.contains(*n))
            .cloned()
            .collect();
        self.coordinator = bully(&alive);
        self.is_coordinator = self.coordinator == self.me;
    }

    /// The `failover` mutant gave up on the coordinator for `key`: suspect it, elect
    /// another, and either decide here or forward to the new one.
    fn fail_over(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let old = self.coordinator.clone();
        self.suspected.insert(old);
        self.elect();
        for w in self.waiting.values_mut() {
            w.sent = 0;
            w.retry_ms = self.retry.base_ms;
        }
        let Some(w) = self.waiting.get_mut(&key) else {
            return;
        };
        w.sent = 1;
        let value = w.value;
        if self.is_coordinator {
            self.try_initialize(key, value, ctx);
        } else {
            self.forward(key, value, ctx);
        }
    }

    fn propose(&mut self, req: ClientReq, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        if let Some(d) = self.decided(key) {
            ctx.reply(&req, propose_ok(d));
            return;
        }
        if self.is_coordinator {
            let d = self.try_initialize(key, value, ctx);
            ctx.reply(&req, propose_ok(d));
            return;
        }
        if let Some(w) = self.waiting.get_mut(&key) {
            wait_or_refuse(&mut w.reqs, req, key, ctx);
            return;
        }
        ctx.persist(Record::Proposed { key, value });
        ctx.sync();
        let w = Waiting {
            value,
            reqs: vec![req],
            retry_ms: self.retry.base_ms,
            sent: 1,
        };
        self.waiting.insert(key, w);
        self.forward(key, value, ctx);
    }
}

impl Algorithm for Coordinator {
    type Msg = Msg;
    type Timer = Timer;
    type Record = Record;

    const BUGS: &'static [&'static str] = &["failover"];

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, PARAMS)?;
        let retry = Retry::from_params(config)?;
        let coordinator = bully(&config.node_ids);
        Ok(Coordinator {
            me: config.id.clone(),
            node_ids: config.node_ids.clone(),
            failover: config.has_bug("failover"),
            suspected: BTreeSet::new(),
            is_coordinator: coordinator == config.id,
            coordinator,
            retry,
            decided: BTreeMap::new(),
            waiting: BTreeMap::new(),
            announcing: retry.announcements(),
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        let mut proposed = BTreeMap::new();
        let mut announced = BTreeSet::new();
        for record in recovered {
            match record {
                Record::Proposed { key, value } => {
                    proposed.entry(key).or_insert(value);
                }
                Record::Decided { key, value } => {
                    let earlier = self.decided.insert(key, value);
                    assert!(earlier.is_none(), "the log holds one value per key");
                }
                Record::Announced { key } => {
                    assert!(self.decided.contains_key(&key), "announced after decided");
                    announced.insert(key);
                }
            }
        }
        if self.is_coordinator {
            let owed: Vec<(u64, u64)> = self
                .decided
                .iter()
                .filter(|(k, _)| !announced.contains(*k))
                .map(|(k, v)| (*k, *v))
                .collect();
            for (key, value) in owed {
                self.announce(key, value, ctx);
            }
            return;
        }
        // A proposal forwarded before the crash may still be under way: keep forwarding it.
        for (key, value) in proposed {
            if !self.decided.contains_key(&key) {
                self.waiting.insert(
                    key,
                    Waiting {
                        value,
                        reqs: Vec::new(),
                        retry_ms: self.retry.base_ms,
                        sent: 1,
                    },
                );
                self.forward(key, value, ctx);
            }
        }
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        if self.suspected.remove(&from) {
            // It is alive after all: the bully rule may pick it again.
            self.elect();
        }
        match msg {
            Msg::TryInitialize { key, value } if self.is_coordinator => {
                let d = self.try_initialize(key, value, ctx);
                ctx.send(
                    &from,
                    Msg::Value {
                        key,
                        value: Some(d),
                    },
                );
            }
            Msg::FinalValue { key } if self.is_coordinator => {
                ctx.send(
                    &from,
                    Msg::Value {
                        key,
                        value: self.decided(key),
                    },
                );
            }
            Msg::Value {
                key,
                value: Some(value),
            } if from == self.coordinator => {
                ctx.send(&from, Msg::ValueOk { key });
                self.learn(key, value, ctx);
            }
            Msg::ValueOk { key } if self.is_coordinator => self.acked(key, &from, ctx),
            // Misrouted requests and empty answers carry nothing to act on.
            Msg::TryInitialize { .. }
            | Msg::FinalValue { .. }
            | Msg::Value { .. }
            | Msg::ValueOk { .. } => {}
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        match req.op {
            ClientOp::Propose { key, value } => self.propose(req, key, value, ctx),
            ClientOp::Read { key } => {
                let value = self.decided(key);
                if value.is_none() && !self.is_coordinator {
                    let to = self.coordinator.clone();
                    ctx.send(&to, Msg::FinalValue { key });
                }
                ctx.reply(&req, ClientReply::ReadOk { value });
            }
            ref other => ctx.reply(&req, not_supported(other)),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<Self>) {
        match timer {
            Timer::Retry { key } => {
                let failover = self.failover;
                let Some(w) = self.waiting.get_mut(&key) else {
                    return;
                };
                if failover && w.sent >= FAILOVER_AFTER {
                    return self.fail_over(key, ctx);
                }
                w.sent += 1;
                let to = self.coordinator.clone();
                ctx.send(
                    &to,
                    Msg::TryInitialize {
                        key,
                        value: w.value,
                    },
                );
                w.retry_ms = self.retry.next(w.retry_ms);
                ctx.set_timer(Timer::Retry { key }, w.retry_ms);
            }
            Timer::Announce { key } => {
                let decided = &self.decided;
                let msg = || Msg::Value {
                    key,
                    value: Some(decided[&key]),
                };
                self.announcing
                    .repeat(key, msg, Timer::Announce { key }, ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn bully_picks_the_largest_id_naturally() {
        assert_eq!(bully(&ids(&["n1", "n2", "n3"])), "n3");
        assert_eq!(bully(&ids(&["n9", "n10", "n2"])), "n10");
        assert_eq!(bully(&ids(&["n1"])), "n1");
    }
}
