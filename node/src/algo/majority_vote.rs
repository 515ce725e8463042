//! `majority-vote`: every node votes for the first candidate it hears; a value with a strict
//! majority of the votes wins.
//!
//! This is the "Basic Voting Algorithm" of *Consensus, FLP and Paxos* (seed 003, Part 2),
//! also told as "The Majority-Rules Voting Algorithm" in *Zero to Consensus* (seed 002).
//! `tryInitialize(value)` sends `onCandidate(value)` to every node. A node that has not voted
//! yet votes for the candidate and broadcasts `onVote(value)`; it never changes its vote.
//! Every node tallies the votes it receives and decides a value once it holds
//! `> N/2` of them. The messages keep those names: [`Msg::Candidate`] and [`Msg::Vote`].
//!
//! **Why it is safe.** Each node casts one vote and every node counts the same votes, so at
//! most one value can ever reach a majority. The vote is persisted and synced before it is
//! broadcast, so a restarted node cannot vote twice.
//!
//! **How it fails.** "Majority-rules voting is vulnerable to a situation called a split
//! vote, where no candidate receives a majority of the votes, even once all votes have been
//! cast and counted" (seed 003, "Split Votes"). With three proposals racing on seven nodes a
//! 3-2-2 tally leaves every node waiting forever: no termination, and nothing a retry could
//! fix, since nobody may change a vote. Seed 002 shows the same window with two values: 3-3
//! on seven nodes and the seventh node crashes before voting.
//!
//! **Retransmission.** The seed notes that "to be fault tolerant, we actually need to keep
//! broadcasting `onCandidate` and `onVote` messages forever". Here an undecided node that
//! lacks some peer's vote re-sends its own candidate to that peer, with exponential backoff
//! (`--param retry_ms`, `retry_ms_max`). A `candidate` doubles as a question: a node that
//! has already voted answers it with its vote, one that has decided answers with
//! [`Msg::Decided`]. Once a node holds all N votes nothing more can change and it goes
//! quiet, so a split vote costs no traffic; lost messages alone therefore never block a
//! decision, and the only way to get stuck is the split vote itself.
//!
//! **Learning.** A node that decides from its tally tells every peer ([`Msg::Decided`])
//! until each has acknowledged ([`Msg::DecidedOk`]), with the same backoff, resuming after a
//! restart; a node that learns a decision this way adopts it. So after a heal every live
//! node, even one that never saw a candidate, ends up able to answer `read`.
//!
//! The same machinery, with a different [`Rule`] for when to decide, runs the tie-break
//! variants in [`super::tiebreak`].

use std::collections::{BTreeMap, BTreeSet};

use super::announce::{Announcements, Retry};
use super::{
    check_bugs, check_params, not_supported, propose_ok, wait_or_refuse, Algorithm, ClientReq,
    Config, Ctx, NodeId,
};
use proto::ops::{ClientOp, ClientReply};
use proto::Report;
use serde::{Deserialize, Serialize};

/// Parameters every voting variant accepts.
const PARAMS: &[&str] = &["retry_ms", "retry_ms_max"];

/// When a voting node decides.
pub trait Rule: Sized + 'static {
    /// Parameters this rule reads, besides the common ones.
    const PARAMS: &'static [&'static str] = &[];

    /// Builds the rule from the node's parameters.
    fn new(config: &Config) -> Result<Self, String>;

    /// The decision the tally allows, if any; called after every new vote.
    fn on_tally(&self, tally: &Tally, nodes: usize) -> Option<u64>;

    /// How long after voting a node stops waiting for more votes, if ever.
    fn timeout_ms(&self) -> Option<u64> {
        None
    }

    /// The decision once [`Rule::timeout_ms`] has passed.
    fn on_timeout(&self, _tally: &Tally) -> Option<u64> {
        None
    }
}

/// Plain majority voting: only a strict majority decides.
#[derive(Debug, Clone)]
pub struct Majority;

impl Rule for Majority {
    fn new(_config: &Config) -> Result<Self, String> {
        Ok(Majority)
    }

    fn on_tally(&self, tally: &Tally, nodes: usize) -> Option<u64> {
        tally.majority(nodes)
    }
}

/// The `majority-vote` algorithm.
pub type MajorityVote = Voting<Majority>;

/// The votes one node has seen for one instance, counted per value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<u64, usize>,
    voters: usize,
}

impl Tally {
    /// Counts `votes` (one per voter).
    pub fn of(votes: &BTreeMap<NodeId, u64>) -> Tally {
        let mut counts = BTreeMap::new();
        for value in votes.values() {
            *counts.entry(*value).or_insert(0) += 1;
        }
        Tally {
            counts,
            voters: votes.len(),
        }
    }

    /// How many nodes have voted.
    pub fn voters(&self) -> usize {
        self.voters
    }

    /// Votes for `value`.
    pub fn count(&self, value: u64) -> usize {
        self.counts.get(&value).copied().unwrap_or(0)
    }

    /// Every value with at least one vote, smallest first.
    pub fn candidates(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts.keys().copied()
    }

    /// The value with more than `nodes / 2` votes, if there is one.
    pub fn majority(&self, nodes: usize) -> Option<u64> {
        self.counts
            .iter()
            .find(|(_, c)| **c > nodes / 2)
            .map(|(v, _)| *v)
    }
}

/// Node-to-node messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// `onCandidate`: vote for `value` unless you have voted; if you have, send me your vote.
    Candidate {
        /// The instance.
        key: u64,
        /// The candidate value.
        value: u64,
    },
    /// `onVote`: the sender voted for `value`, for good.
    Vote {
        /// The instance.
        key: u64,
        /// The sender's vote.
        value: u64,
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
    /// Re-send the candidate to peers whose vote is missing.
    Retransmit {
        /// The instance.
        key: u64,
    },
    /// Stop waiting for votes (rules with a timeout only).
    Tiebreak {
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
    /// This node voted `value`; written before the vote leaves.
    Voted {
        /// The instance.
        key: u64,
        /// The vote.
        value: u64,
    },
    /// This node decided `value`; written before anyone is told.
    Decided {
        /// The instance.
        key: u64,
        /// The decided value.
        value: u64,
        /// Whether this node owes its peers the news (it decided from its own tally).
        announce: bool,
    },
    /// Every peer has acknowledged the decision of `key`.
    Announced {
        /// The instance.
        key: u64,
    },
}

#[derive(Debug, Default)]
struct Instance {
    my_vote: Option<u64>,
    votes: BTreeMap<NodeId, u64>,
    pending: Vec<ClientReq>,
    retry_ms: u64,
}

/// A voting node, deciding by rule `R`.
pub struct Voting<R: Rule> {
    rule: R,
    retry: Retry,
    instances: BTreeMap<u64, Instance>,
    decided: BTreeMap<u64, u64>,
    announcing: Announcements,
}

impl<R: Rule> Voting<R> {
    /// The value this node decided for `key`, if any.
    pub fn decided(&self, key: u64) -> Option<u64> {
        self.decided.get(&key).copied()
    }

    /// This node's vote for `key`, if it voted and has not decided.
    pub fn vote(&self, key: u64) -> Option<u64> {
        self.instances.get(&key).and_then(|i| i.my_vote)
    }

    fn cast(&mut self, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        let me = ctx.id().clone();
        let inst = self.instances.entry(key).or_default();
        assert!(inst.my_vote.is_none(), "a node votes once per instance");
        inst.my_vote = Some(value);
        inst.votes.insert(me, value);
        inst.retry_ms = self.retry.base_ms;
        ctx.persist(Record::Voted { key, value });
        ctx.sync();
        ctx.broadcast(Msg::Vote { key, value });
        ctx.set_timer(Timer::Retransmit { key }, self.retry.base_ms);
        if let Some(ms) = self.rule.timeout_ms() {
            ctx.set_timer(Timer::Tiebreak { key }, ms);
        }
        self.evaluate(key, ctx);
    }

    fn evaluate(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let Some(inst) = self.instances.get(&key) else {
            return;
        };
        let tally = Tally::of(&inst.votes);
        if let Some(value) = self.rule.on_tally(&tally, ctx.node_ids().len()) {
            self.decide(key, value, true, ctx);
        }
    }

    /// Decides `value`; `announce` when the decision came from this node's own tally.
    fn decide(&mut self, key: u64, value: u64, announce: bool, ctx: &mut Ctx<Self>) {
        assert!(
            !self.decided.contains_key(&key),
            "an instance is decided once"
        );
        let inst = self.instances.remove(&key).unwrap_or_default();
        ctx.persist(Record::Decided {
            key,
            value,
            announce,
        });
        ctx.sync();
        self.decided.insert(key, value);
        ctx.cancel_timer(Timer::Retransmit { key });
        ctx.cancel_timer(Timer::Tiebreak { key });
        if announce {
            self.announce(key, value, ctx);
        }
        ctx.report(Report::Decided {
            key,
            value,
            rounds: None,
        });
        for req in inst.pending {
            ctx.reply(&req, propose_ok(value));
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
        let inst = self.instances.entry(key).or_default();
        if !wait_or_refuse(&mut inst.pending, req, key, ctx) {
            return;
        }
        let voted = inst.my_vote.is_some();
        ctx.broadcast(Msg::Candidate { key, value });
        if !voted {
            self.cast(key, value, ctx);
        }
    }
}

impl<R: Rule> Algorithm for Voting<R> {
    type Msg = Msg;
    type Timer = Timer;
    type Record = Record;

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        let known: Vec<&str> = PARAMS.iter().chain(R::PARAMS).copied().collect();
        check_params(config, &known)?;
        let retry = Retry::from_params(config)?;
        let rule = R::new(config)?;
        Ok(Voting {
            rule,
            retry,
            instances: BTreeMap::new(),
            decided: BTreeMap::new(),
            announcing: retry.announcements(),
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        let me = ctx.id().clone();
        let mut owed = BTreeSet::new();
        for record in recovered {
            match record {
                Record::Voted { key, value } => {
                    let inst = self.instances.entry(key).or_default();
                    assert!(
                        inst.my_vote.is_none(),
                        "the log holds one vote per instance"
                    );
                    inst.my_vote = Some(value);
                    inst.votes.insert(me.clone(), value);
                }
                Record::Decided {
                    key,
                    value,
                    announce,
                } => {
                    assert!(
                        !self.decided.contains_key(&key),
                        "the log holds one decision"
                    );
                    self.instances.remove(&key);
                    self.decided.insert(key, value);
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
        // Votes of others were in memory only: ask for them again.
        for (key, inst) in &mut self.instances {
            inst.retry_ms = self.retry.base_ms;
            ctx.set_timer(Timer::Retransmit { key: *key }, self.retry.base_ms);
            if let Some(ms) = self.rule.timeout_ms() {
                ctx.set_timer(Timer::Tiebreak { key: *key }, ms);
            }
        }
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Candidate { key, value } => {
                if let Some(d) = self.decided(key) {
                    ctx.send(&from, Msg::Decided { key, value: d });
                    return;
                }
                match self.instances.entry(key).or_default().my_vote {
                    None => self.cast(key, value, ctx),
                    Some(mine) => ctx.send(&from, Msg::Vote { key, value: mine }),
                }
            }
            Msg::Vote { key, value } => {
                if self.decided.contains_key(&key) {
                    return;
                }
                let inst = self.instances.entry(key).or_default();
                inst.votes.entry(from).or_insert(value);
                self.evaluate(key, ctx);
            }
            Msg::Decided { key, value } => {
                ctx.send(&from, Msg::DecidedOk { key });
                self.acked(key, &from, ctx);
                if !self.decided.contains_key(&key) {
                    self.decide(key, value, false, ctx);
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
                if value.is_none() {
                    ctx.broadcast(Msg::Learn { key });
                }
                ctx.reply(&req, ClientReply::ReadOk { value });
            }
            ref other => ctx.reply(&req, not_supported(other)),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<Self>) {
        match timer {
            Timer::Retransmit { key } => {
                let Some(inst) = self.instances.get_mut(&key) else {
                    return;
                };
                let Some(mine) = inst.my_vote else { return };
                let missing: Vec<NodeId> = ctx
                    .config()
                    .peers()
                    .filter(|p| !inst.votes.contains_key(*p))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return;
                }
                for peer in missing {
                    ctx.send(&peer, Msg::Candidate { key, value: mine });
                }
                inst.retry_ms = self.retry.next(inst.retry_ms);
                ctx.set_timer(Timer::Retransmit { key }, inst.retry_ms);
            }
            Timer::Announce { key } => {
                let decided = &self.decided;
                let msg = || Msg::Decided {
                    key,
                    value: decided[&key],
                };
                self.announcing
                    .repeat(key, msg, Timer::Announce { key }, ctx);
            }
            Timer::Tiebreak { key } => {
                let Some(inst) = self.instances.get(&key) else {
                    return;
                };
                if let Some(value) = self.rule.on_timeout(&Tally::of(&inst.votes)) {
                    self.decide(key, value, true, ctx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes(pairs: &[(&str, u64)]) -> BTreeMap<NodeId, u64> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn majority_needs_more_than_half() {
        let t = Tally::of(&votes(&[("n1", 7), ("n2", 7), ("n3", 9)]));
        assert_eq!(t.voters(), 3);
        assert_eq!(t.count(7), 2);
        assert_eq!(t.majority(3), Some(7));
        assert_eq!(t.majority(4), None);
        assert_eq!(t.majority(5), None);
    }

    #[test]
    fn split_vote_has_no_majority() {
        let t = Tally::of(&votes(&[
            ("n1", 1),
            ("n2", 1),
            ("n3", 1),
            ("n4", 2),
            ("n5", 2),
            ("n6", 3),
            ("n7", 3),
        ]));
        assert_eq!(t.voters(), 7);
        assert_eq!(t.majority(7), None);
        assert_eq!(t.candidates().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn unknown_params_are_refused() {
        let ids: Vec<NodeId> = vec!["n1".into()];
        let mut config = Config::new("n1", &ids);
        config.params.insert("retry_ms".into(), "50".into());
        assert!(MajorityVote::new(&config).is_ok());
        config.params.insert("round_ms".into(), "50".into());
        assert!(MajorityVote::new(&config).is_err());
    }
}
