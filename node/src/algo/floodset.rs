//! `floodset`: synchronous consensus in f+1 rounds of flooding, decide the minimum.
//!
//! From the lecture notes of seed 004, "Consensus In Synchronous Systems": with at most `f`
//! crash failures, "the algorithm proceeds in f+1 rounds (with timeout), using reliable
//! communication to all members". `Values^r_i` is the set of proposed values `p_i` knows at
//! the start of round `r`; each round every process multicasts its set and unions in every
//! set it receives; after round f+1 it decides `d_i = minimum(Values^{f+1}_i)`. The message
//! is [`Msg::Values`]. The notes' proof: if two correct processes ended with different
//! sets, a distinct process must have crashed in each of the f+1 rounds — more than `f`.
//!
//! **Rounds by timeout.** The synchronous model is emulated with timers: round `r` lasts
//! `--param round_ms` (default 200) and a round-`r` set is only merged while the receiver
//! is still in round `r` or earlier; a message that arrives after its round has ended is
//! discarded, as the model says it cannot exist. `--param f` defaults to `(N-1)/2`.
//!
//! **Starting an instance.** A `propose` at a node that has not heard of the key starts the
//! instance there: `Values^1 = {v}`, round 1 begins and its set is multicast at once. A node
//! that first hears of the key from a round-`r` set joins in round `r` with that set and
//! its own round clock; its proposal value, if a propose arrives later, is *not* added: a
//! value entering after round 1 could reach only some nodes by the last round. Two
//! proposals that start the key on two nodes concurrently both count, because each start
//! happens before the node has heard of the other and both round-1 sets arrive within
//! round 1. So with delays well under `round_ms` and no faults, all nodes end with the same
//! set and decide the same minimum; replies carry `rounds = f+1`.
//!
//! **How it fails.** Correct only while the synchrony assumption holds: every message
//! arrives within its round, and at most `f` nodes crash. A delay longer than `round_ms`
//! (a slow link, a pause, a partition) turns into a silent omission: a value reaches some
//! nodes but not others by round f+1, and they decide different minimums — an agreement
//! violation that the round count cannot repair. Rounds are never retransmitted: in the
//! model, links are reliable.
//!
//! **Learning.** A node that decides at the end of its rounds tells every peer
//! ([`Msg::Decided`]) until each acknowledges ([`Msg::DecidedOk`]), retrying with backoff
//! (`--param retry_ms`, `retry_ms_max`) and resuming after a restart; it also answers a
//! late set or a [`Msg::Learn`] with the decision. An undecided node adopts a decision it
//! is told. That lets a node that missed the instance (crashed, cut off) answer reads after
//! heal, but cannot undo a disagreement: a node that already decided keeps its value.

use std::collections::{BTreeMap, BTreeSet};

use super::announce::{Announcements, Retry};
use super::{
    check_bugs, check_params, not_supported, propose_ok, wait_or_refuse, Algorithm, ClientReq,
    Config, Ctx, NodeId,
};
use proto::ops::{ClientOp, ClientReply};
use proto::Report;
use serde::{Deserialize, Serialize};

const PARAMS: &[&str] = &["round_ms", "f", "retry_ms", "retry_ms_max"];

/// Node-to-node messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// The sender's `Values^round`: every value it knows for `key`.
    Values {
        /// The instance.
        key: u64,
        /// The sender's round, from 1.
        round: u32,
        /// The values it knows.
        values: BTreeSet<u64>,
    },
    /// The sender decided `value`.
    Decided {
        /// The instance.
        key: u64,
        /// The decided value.
        value: u64,
    },
    /// The sender knows the decision of `key` now.
    DecidedOk {
        /// The instance.
        key: u64,
    },
    /// Tell me the decision of `key` if you know it.
    Learn {
        /// The instance.
        key: u64,
    },
}

/// Named timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The current round of `key` ends.
    Round {
        /// The instance.
        key: u64,
    },
    /// Re-send the decision to peers that have not acknowledged it.
    Announce {
        /// The instance.
        key: u64,
    },
}

/// Durable records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// This node decided `value`; written before anyone is told.
    Decided {
        /// The instance.
        key: u64,
        /// The decided value.
        value: u64,
        /// Whether this node owes its peers the news (it ran the rounds to the end).
        announce: bool,
    },
    /// Every peer has acknowledged the decision of `key`.
    Announced {
        /// The instance.
        key: u64,
    },
}

#[derive(Debug)]
struct Instance {
    round: u32,
    values: BTreeSet<u64>,
    pending: Vec<ClientReq>,
}

/// A flooding node.
pub struct FloodSet {
    f: u32,
    round_ms: u64,
    instances: BTreeMap<u64, Instance>,
    decided: BTreeMap<u64, u64>,
    announcing: Announcements,
}

impl FloodSet {
    /// The number of crashes tolerated; the algorithm runs `f + 1` rounds.
    pub fn f(&self) -> u32 {
        self.f
    }

    /// The value this node decided for `key`, if any.
    pub fn decided(&self, key: u64) -> Option<u64> {
        self.decided.get(&key).copied()
    }

    /// The round `key` is in here, if it is running.
    pub fn round(&self, key: u64) -> Option<u32> {
        self.instances.get(&key).map(|i| i.round)
    }

    fn flood(&self, key: u64, ctx: &mut Ctx<Self>) {
        let inst = &self.instances[&key];
        ctx.broadcast(Msg::Values {
            key,
            round: inst.round,
            values: inst.values.clone(),
        });
    }

    /// Decides `value`: after `rounds` of its own, or learned from a peer (`None`).
    fn decide(&mut self, key: u64, value: u64, rounds: Option<u32>, ctx: &mut Ctx<Self>) {
        assert!(
            !self.decided.contains_key(&key),
            "an instance is decided once"
        );
        let pending = self
            .instances
            .remove(&key)
            .map(|i| i.pending)
            .unwrap_or_default();
        ctx.cancel_timer(Timer::Round { key });
        let announce = rounds.is_some();
        ctx.persist(Record::Decided {
            key,
            value,
            announce,
        });
        ctx.sync();
        self.decided.insert(key, value);
        if announce {
            self.announce(key, value, ctx);
        }
        ctx.report(Report::Decided { key, value, rounds });
        for req in pending {
            ctx.reply(
                &req,
                ClientReply::ProposeOk {
                    value,
                    rounds,
                    ballot: None,
                },
            );
        }
    }

    fn announce(&mut self, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        let msg = Msg::Decided { key, value };
        self.announcing
            .announce(key, msg, Timer::Announce { key }, ctx);
    }

    /// `peer` knows the decision of `key`.
    fn acked(&mut self, key: u64, peer: &str, ctx: &mut Ctx<Self>) {
        let (timer, done) = (Timer::Announce { key }, Record::Announced { key });
        self.announcing.acked(key, peer, timer, done, ctx);
    }

    fn propose(&mut self, req: ClientReq, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        if let Some(d) = self.decided(key) {
            ctx.reply(&req, propose_ok(d));
            return;
        }
        if let Some(inst) = self.instances.get_mut(&key) {
            // Too late for this value: the instance runs; wait for its outcome.
            wait_or_refuse(&mut inst.pending, req, key, ctx);
            return;
        }
        let inst = Instance {
            round: 1,
            values: BTreeSet::from([value]),
            pending: vec![req],
        };
        self.instances.insert(key, inst);
        self.flood(key, ctx);
        ctx.set_timer(Timer::Round { key }, self.round_ms);
    }
}

impl Algorithm for FloodSet {
    type Msg = Msg;
    type Timer = Timer;
    type Record = Record;

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, PARAMS)?;
        let n = config.node_ids.len() as u32;
        let f = config.param("f", n.saturating_sub(1) / 2)?;
        let round_ms = config.param("round_ms", 200u64)?;
        if f >= n.max(1) {
            return Err(format!("f={f} must be below the cluster size {n}"));
        }
        if round_ms == 0 {
            return Err("round_ms must be positive".to_string());
        }
        let retry = Retry::from_params(config)?;
        Ok(FloodSet {
            f,
            round_ms,
            instances: BTreeMap::new(),
            decided: BTreeMap::new(),
            announcing: retry.announcements(),
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        // Rounds in progress are not recovered: a restarted node rejoins from later sets or
        // learns the outcome from a peer.
        let mut owed = BTreeSet::new();
        for record in recovered {
            match record {
                Record::Decided {
                    key,
                    value,
                    announce,
                } => {
                    let earlier = self.decided.insert(key, value);
                    assert!(earlier.is_none(), "the log holds one decision per key");
                    if announce {
                        owed.insert(key);
                    }
                }
                Record::Announced { key } => {
                    assert!(self.decided.contains_key(&key), "announced after decided");
                    owed.remove(&key);
                }
            }
        }
        for key in owed {
            self.announce(key, self.decided[&key], ctx);
        }
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Values { key, round, values } => {
                if let Some(d) = self.decided(key) {
                    ctx.send(&from, Msg::Decided { key, value: d });
                    return;
                }
                if round == 0 || round > self.f + 1 {
                    return;
                }
                match self.instances.get_mut(&key) {
                    None => {
                        let inst = Instance {
                            round,
                            values,
                            pending: Vec::new(),
                        };
                        self.instances.insert(key, inst);
                        ctx.set_timer(Timer::Round { key }, self.round_ms);
                    }
                    Some(inst) if round >= inst.round => inst.values.extend(values),
                    // Its round is over here: in the synchronous model it does not exist.
                    Some(_) => {}
                }
            }
            Msg::Decided { key, value } => {
                ctx.send(&from, Msg::DecidedOk { key });
                self.acked(key, &from, ctx);
                if !self.decided.contains_key(&key) {
                    self.decide(key, value, None, ctx);
                }
            }
            Msg::DecidedOk { key } => self.acked(key, &from, ctx),
            Msg::Learn { key } => {
                if let Some(d) = self.decided(key) {
                    ctx.send(&from, Msg::Decided { key, value: d });
                }
            }
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        match req.op {
            ClientOp::Propose { key, value } => self.propose(req, key, value, ctx),
            ClientOp::Read { key } => {
                let value = self.decided(key);
                if value.is_none() && !self.instances.contains_key(&key) {
                    ctx.broadcast(Msg::Learn { key });
                }
                ctx.reply(&req, ClientReply::ReadOk { value });
            }
            ref other => ctx.reply(&req, not_supported(other)),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<Self>) {
        let key = match timer {
            Timer::Round { key } => key,
            Timer::Announce { key } => {
                let decided = &self.decided;
                let msg = || Msg::Decided {
                    key,
                    value: decided[&key],
                };
                self.announcing
                    .repeat(key, msg, Timer::Announce { key }, ctx);
                return;
            }
        };
        let Some(inst) = self.instances.get_mut(&key) else {
            return;
        };
        if inst.round > self.f {
            let value = *inst
                .values
                .first()
                .expect("an instance starts with a value");
            self.decide(key, value, Some(self.f + 1), ctx);
            return;
        }
        inst.round += 1;
        self.flood(key, ctx);
        ctx.set_timer(Timer::Round { key }, self.round_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: usize, params: &[(&str, &str)]) -> Config {
        let ids: Vec<NodeId> = (1..=n).map(|i| format!("n{i}")).collect();
        let mut c = Config::new("n1", &ids);
        c.params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c
    }

    #[test]
    fn f_defaults_to_a_minority_and_is_bounded() {
        assert_eq!(FloodSet::new(&config(5, &[])).unwrap().f(), 2);
        assert_eq!(FloodSet::new(&config(4, &[])).unwrap().f(), 1);
        assert_eq!(FloodSet::new(&config(1, &[])).unwrap().f(), 0);
        assert_eq!(FloodSet::new(&config(3, &[("f", "2")])).unwrap().f(), 2);
        assert!(FloodSet::new(&config(3, &[("f", "3")])).is_err());
        assert!(FloodSet::new(&config(3, &[("round_ms", "0")])).is_err());
        assert!(FloodSet::new(&config(3, &[("tiebreak_ms", "5")])).is_err());
    }
}
