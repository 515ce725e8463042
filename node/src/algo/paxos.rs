//! `paxos`: the synod algorithm, one instance per key, with randomized backoff.
//!
//! The idea, as *Consensus, FLP and Paxos* (seed 003, end of Part 3) arrives at it: split
//! votes are fatal because a node chooses between two candidates. So vote in numbered
//! rounds, each on a single candidate, where the choice is "this value, or move to the next
//! round". A round that may already have chosen a value must be respected by every later
//! round: "assume conservatively that it did choose A. So in the next round, propose A
//! again". Rounds never end by themselves, which is how FLP is sidestepped: termination is
//! likely, not guaranteed, and "collision avoidance" (randomized backoff) makes it likelier.
//! The protocol is Lamport's (*Paxos Made Simple*, §2.2–2.3) in the phases of seed 004's
//! "Paxos, Simply":
//!
//! - **Phase 1 (election)**: a proposer picks a ballot `(round, node)` higher than any it has
//!   seen ([`Ballot`] orders by round, then node) and sends [`Msg::Prepare`]. An acceptor
//!   that has promised nothing higher records the promise on disk ("processes also log
//!   received ballot ID on disk") and answers [`Msg::Promise`] with the highest-ballot value
//!   it has accepted, if any; otherwise it answers [`Msg::Nack`] naming its promise.
//! - **Phase 2 (bill)**: with promises from a majority, the proposer sends [`Msg::Accept`]
//!   with the value of the highest-ballot accepted proposal among them, or its own value if
//!   there is none ("use v=v' if some process already [...] sent you its decided value").
//!   An acceptor accepts unless it has promised a higher ballot, syncs the acceptance and
//!   answers [`Msg::Accepted`].
//! - **Phase 3 (law)**: with a majority of acceptances the value is chosen; the proposer
//!   sends [`Msg::Decided`] to every node and repeats it (backoff from `phase_ms` up to
//!   `backoff_max_ms`) until each acknowledges with [`Msg::DecidedOk`], resuming after a
//!   restart. Any node that knows the decision answers every later request for the key
//!   with it, and a node asked to `read` a key it knows nothing about asks its peers
//!   ([`Msg::Learn`]). So after a heal every live node learns the outcome.
//!
//! **The invariant that matters**: if a value `v` is chosen at ballot `b`, every ballot above
//! `b` that reaches phase 2 proposes `v` — because its promise quorum intersects the
//! acceptance quorum of `b` in some acceptor that reports `v` (or a later value which, by
//! induction, is `v`). It rests on three things this file makes sure of: quorums are
//! majorities; an acceptor's promise and acceptance are synced to disk *before* the reply
//! leaves, so a restart cannot forget them; and a proposer never reuses a ballot with a
//! different value (it syncs each ballot it starts, so a restart picks a higher one).
//!
//! **Liveness**: a proposer persists each ballot with its value, so a proposer killed in
//! the middle of an instance resumes it after restart even though its client is gone. It
//! retransmits a phase to silent acceptors `--param resend_max`
//! times (default 2), every `phase_ms` (default 100); then, or on a `nack`, it backs off and
//! starts a higher ballot. `--param backoff=exp-random` (default) waits a uniform random
//! time up to `min(backoff_max_ms, backoff_base_ms * 2^(k-1))` before its k-th retry (full
//! jitter, drawn in microseconds; defaults 10 and 1000 ms), `fixed` waits `backoff_base_ms`, `none` retries at
//! once. Every undecided proposer keeps retrying, so once faults heal and a majority can
//! talk, the instance decides. `rounds` in the reply and report is the number of ballots
//! this node started for the key; [`proto::Report::BallotStarted`] and
//! [`proto::Report::Accepted`] give the harness the ground truth.
//!
//! **Mutants** (`--bug`), each breaking one leg of the invariant:
//! - `skip-fsync`: promises are persisted but not synced before the `promise` leaves. An
//!   acceptor that promises ballot 2, is killed and restarts has forgotten it and accepts
//!   ballot 1, completing a quorum for a value that ballot 2's proposer never saw.
//! - `forget-accepted`: the proposer ignores accepted values in promises and proposes its
//!   own, so a later ballot overwrites a value that was already chosen (needs contention
//!   and a delayed `decided`).
//! - `small-quorum`: quorums of `N/2` instead of `N/2+1`; two sides of a partition decide
//!   independently.
//! - `no-backoff`: liveness only — retry at once (`backoff=none`); proposers duel longer but
//!   safety is untouched.
//! - `ack-before-sync`: the acceptor sends `promise` and `accepted` first and syncs the
//!   record after, so a kill between the two loses a promise or acceptance that a proposer
//!   already counted (caught in lockstep, which can kill a node in the middle of a step).
//! - `no-promise-check`: the acceptor accepts whatever ballot an `accept` carries without
//!   comparing it to its promise, so a stale proposer overwrites a chosen value.
//! - `ballot-no-node-id`: ballots are a round counter only (the node part is blank), so two
//!   proposers that pick the same round share a ballot and each counts the other's
//!   promises and acceptances as its own.
//! - `first-accepted-value`: phase 2 adopts the accepted value of the first promise that
//!   carries one, not the one with the highest ballot.
//! - `learn-mixed-ballots`: the proposer counts `accepted` per key, not per ballot, so
//!   acceptances of its earlier ballots help a later one (with another value) to a quorum.
//! - `forget-learned`: a decision is kept in memory only; after a restart the node answers
//!   reads of a key it had answered with `null` until it learns it again.
//!
//! **Recovery**: a decision reaches the other nodes only from the proposer that saw the
//! quorum. If that proposer is crashed for good first, nobody would ever learn it, so a
//! node asked to `read` an undecided key whose acceptor has accepted a value runs a
//! recovery ballot for it, unless it is proposing the key itself: phase 1 finds the chosen
//! value (the highest accepted one in any promise quorum) and phases 2 and 3 spread it.
//! It waits `(resend_max + 2) * phase_ms` first, so a read during a healthy ballot does
//! not start a duel with it.

use std::collections::{BTreeMap, BTreeSet};

use super::announce::Announcements;
use super::{check_bugs, check_params, not_supported, Algorithm, ClientReq, Config, Ctx, NodeId};
use proto::ops::{Ballot, ClientOp, ClientReply};
use serde::{Deserialize, Serialize};

mod acceptor;
mod learner;
mod proposer;

use acceptor::Acceptor;
use learner::Decision;
use proposer::{Phase, Proposer};

/// The largest power of two the exponential backoff multiplies by.
const BACKOFF_SHIFT_MAX: u32 = 20;

const PARAMS: &[&str] = &[
    "backoff",
    "backoff_base_ms",
    "backoff_max_ms",
    "phase_ms",
    "resend_max",
];

/// How a proposer waits between ballots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Uniform in `0..=min(max, base * 2^(k-1))` before the k-th retry.
    ExpRandom,
    /// Always `base`.
    Fixed,
    /// Retry at once.
    None,
}

impl std::str::FromStr for Backoff {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exp-random" => Ok(Backoff::ExpRandom),
            "fixed" => Ok(Backoff::Fixed),
            "none" => Ok(Backoff::None),
            other => Err(format!("backoff={other} (valid: exp-random, fixed, none)")),
        }
    }
}

/// A value proposed in a ballot, as an acceptor holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The ballot it was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub value: u64,
}

/// Node-to-node messages (Lamport's names).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Phase 1a: promise to ignore ballots below `ballot`.
    Prepare {
        /// The instance.
        key: u64,
        /// The proposer's new ballot.
        ballot: Ballot,
    },
    /// Phase 1b: promised; here is what I accepted last.
    Promise {
        /// The instance.
        key: u64,
        /// The ballot promised.
        ballot: Ballot,
        /// The highest-ballot proposal this acceptor accepted, if any.
        accepted: Option<Proposal>,
    },
    /// Phase 2a: accept `value` in `ballot`.
    Accept {
        /// The instance.
        key: u64,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: u64,
    },
    /// Phase 2b: accepted.
    Accepted {
        /// The instance.
        key: u64,
        /// The ballot accepted.
        ballot: Ballot,
    },
    /// Refused: the acceptor promised a higher ballot.
    Nack {
        /// The instance.
        key: u64,
        /// The refused ballot.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
    /// Phase 3: `value` was chosen in `ballot`.
    Decided {
        /// The instance.
        key: u64,
        /// The chosen value.
        value: u64,
        /// The ballot that chose it.
        ballot: Ballot,
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
    /// The proposer of `key` retransmits, gives up its ballot, or starts the next one.
    Proposer {
        /// The instance.
        key: u64,
    },
    /// Re-send the decision to nodes that have not acknowledged it.
    Announce {
        /// The instance.
        key: u64,
    },
    /// A read found `key` undecided here: if it still is, run a recovery ballot.
    Recover {
        /// The instance.
        key: u64,
    },
}

/// Durable records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The proposer started a ballot with this round; it never uses it again.
    Ballot {
        /// The instance.
        key: u64,
        /// The round.
        round: u64,
        /// The proposer's own value, to resume with after a restart.
        value: u64,
    },
    /// The acceptor promised `ballot`.
    Promised {
        /// The instance.
        key: u64,
        /// The ballot.
        ballot: Ballot,
    },
    /// The acceptor accepted `value` in `ballot`.
    Accepted {
        /// The instance.
        key: u64,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: u64,
    },
    /// The node learned that `value` was chosen in `ballot`.
    Decided {
        /// The instance.
        key: u64,
        /// The value.
        value: u64,
        /// The ballot.
        ballot: Ballot,
        /// Whether this node owes the others the news (its proposer saw the quorum).
        announce: bool,
    },
    /// Every node has acknowledged the decision of `key`.
    Announced {
        /// The instance.
        key: u64,
    },
}

#[derive(Debug, Default)]
struct Instance {
    acceptor: Acceptor,
    proposer: Option<Proposer>,
    /// The highest round seen for this key in any ballot; the next ballot goes above.
    round_max: u64,
}

/// The mutants switched on, one flag each (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
struct Bugs {
    skip_fsync: bool,
    forget_accepted: bool,
    ack_before_sync: bool,
    no_promise_check: bool,
    ballot_no_node_id: bool,
    first_accepted_value: bool,
    learn_mixed_ballots: bool,
    forget_learned: bool,
}

impl Bugs {
    fn of(config: &Config) -> Bugs {
        Bugs {
            skip_fsync: config.has_bug("skip-fsync"),
            forget_accepted: config.has_bug("forget-accepted"),
            ack_before_sync: config.has_bug("ack-before-sync"),
            no_promise_check: config.has_bug("no-promise-check"),
            ballot_no_node_id: config.has_bug("ballot-no-node-id"),
            first_accepted_value: config.has_bug("first-accepted-value"),
            learn_mixed_ballots: config.has_bug("learn-mixed-ballots"),
            forget_learned: config.has_bug("forget-learned"),
        }
    }
}

/// A Paxos node: proposer, acceptor and learner for every key.
pub struct Paxos {
    quorum: usize,
    bugs: Bugs,
    backoff: Backoff,
    backoff_base_ms: u64,
    backoff_max_ms: u64,
    phase_ms: u64,
    resend_max: u32,
    instances: BTreeMap<u64, Instance>,
    decided: BTreeMap<u64, Decision>,
    announcing: Announcements,
    /// Keys with a [`Timer::Recover`] pending.
    recovering: BTreeSet<u64>,
}

impl Paxos {
    /// The number of promises or acceptances that makes a quorum.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// The value this node knows is chosen for `key`.
    pub fn decided(&self, key: u64) -> Option<u64> {
        self.decided.get(&key).map(|d| d.value)
    }

    /// The ballot this node's acceptor promised for `key` (undecided keys only).
    pub fn promised(&self, key: u64) -> Option<&Ballot> {
        self.instances
            .get(&key)
            .and_then(|i| i.acceptor.promised.as_ref())
    }

    /// What this node's acceptor accepted for `key` (undecided keys only).
    pub fn accepted(&self, key: u64) -> Option<&Proposal> {
        self.instances
            .get(&key)
            .and_then(|i| i.acceptor.accepted.as_ref())
    }
}

impl Algorithm for Paxos {
    type Msg = Msg;
    type Timer = Timer;
    type Record = Record;

    const BUGS: &'static [&'static str] = &[
        "skip-fsync",
        "forget-accepted",
        "small-quorum",
        "no-backoff",
        "ack-before-sync",
        "no-promise-check",
        "ballot-no-node-id",
        "first-accepted-value",
        "learn-mixed-ballots",
        "forget-learned",
    ];

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, PARAMS)?;
        let n = config.node_ids.len();
        let quorum = if config.has_bug("small-quorum") {
            (n / 2).max(1)
        } else {
            config.majority()
        };
        let mut backoff: Backoff = config.param("backoff", Backoff::ExpRandom)?;
        if config.has_bug("no-backoff") {
            backoff = Backoff::None;
        }
        let backoff_base_ms = config.param("backoff_base_ms", 10u64)?;
        let backoff_max_ms = config.param("backoff_max_ms", 1000u64)?;
        let phase_ms = config.param("phase_ms", 100u64)?;
        let resend_max = config.param("resend_max", 2u32)?;
        if backoff_max_ms < backoff_base_ms {
            return Err("need backoff_base_ms <= backoff_max_ms".to_string());
        }
        if phase_ms == 0 {
            return Err("phase_ms must be positive".to_string());
        }
        Ok(Paxos {
            quorum,
            bugs: Bugs::of(config),
            backoff,
            backoff_base_ms,
            backoff_max_ms,
            phase_ms,
            resend_max,
            instances: BTreeMap::new(),
            decided: BTreeMap::new(),
            announcing: Announcements::new(phase_ms, backoff_max_ms.max(phase_ms)),
            recovering: BTreeSet::new(),
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        let mut owed = BTreeSet::new();
        let mut proposing = BTreeMap::new();
        for record in recovered {
            match record {
                Record::Decided {
                    key,
                    value,
                    ballot,
                    announce,
                } => {
                    self.instances.remove(&key);
                    let earlier = self.decided.insert(
                        key,
                        Decision {
                            value,
                            ballot,
                            rounds: 0,
                        },
                    );
                    assert!(earlier.is_none(), "the log holds one decision per key");
                    if announce {
                        owed.insert(key);
                    }
                }
                Record::Announced { key } => {
                    // The mutant that keeps decisions in memory still logs this one.
                    assert!(
                        self.bugs.forget_learned || self.decided.contains_key(&key),
                        "announced after decided"
                    );
                    owed.remove(&key);
                }
                _ if self.decided.contains_key(&record_key(&record)) => {}
                Record::Ballot { key, round, value } => {
                    let inst = self.instances.entry(key).or_default();
                    inst.round_max = inst.round_max.max(round);
                    proposing.insert(key, value);
                }
                Record::Promised { key, ballot } => {
                    let inst = self.instances.entry(key).or_default();
                    let acc = &mut inst.acceptor;
                    // Paired with on_prepare: a promise only ever rises.
                    assert!(
                        acc.promised.as_ref().is_none_or(|p| ballot >= *p),
                        "promises rise"
                    );
                    inst.round_max = inst.round_max.max(ballot.round);
                    acc.promised = Some(ballot);
                }
                Record::Accepted { key, ballot, value } => {
                    let inst = self.instances.entry(key).or_default();
                    let acc = &mut inst.acceptor;
                    // Paired with on_accept: nothing below the promise is ever accepted
                    // (except by the mutant that does not look).
                    assert!(
                        self.bugs.no_promise_check
                            || acc.promised.as_ref().is_none_or(|p| ballot >= *p),
                        "accepts rise"
                    );
                    inst.round_max = inst.round_max.max(ballot.round);
                    if acc.promised.as_ref().is_none_or(|p| ballot > *p) {
                        acc.promised = Some(ballot.clone());
                    }
                    acc.accepted = Some(Proposal { ballot, value });
                }
            }
        }
        for key in owed {
            self.announce(key, ctx);
        }
        // A proposer killed mid-instance finishes it, so the instance terminates after heal
        // even though the client that asked is gone.
        let me = self.ballot_node(ctx);
        for (key, value) in proposing {
            let Some(inst) = self.instances.get_mut(&key) else {
                continue;
            };
            let ballot = Ballot {
                round: 0,
                node: me.clone(),
            };
            let phase = Phase::Backoff;
            inst.proposer = Some(Proposer {
                value,
                ballot,
                phase,
                started: 0,
                pending: Vec::new(),
                acked: BTreeSet::new(),
            });
            let delay = self.backoff_us(1, ctx.rng());
            ctx.set_timer_us(Timer::Proposer { key }, delay);
        }
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Decided { key, value, ballot } => {
                ctx.send(&from, Msg::DecidedOk { key });
                self.acked(key, &from, ctx);
                if !self.decided.contains_key(&key) {
                    self.decide(key, value, ballot, false, ctx);
                }
                return;
            }
            Msg::DecidedOk { key } => return self.acked(key, &from, ctx),
            _ => {}
        }
        let key = msg_key(&msg);
        if let Some(d) = self.decided.get(&key) {
            // Anyone still working on a decided key is told the outcome instead.
            if matches!(
                msg,
                Msg::Prepare { .. } | Msg::Accept { .. } | Msg::Learn { .. }
            ) {
                let (value, ballot) = (d.value, d.ballot.clone());
                ctx.send(&from, Msg::Decided { key, value, ballot });
            }
            return;
        }
        match msg {
            Msg::Prepare { key, ballot } => self.on_prepare(&from, key, ballot, ctx),
            Msg::Promise {
                key,
                ballot,
                accepted,
            } => self.on_promise(from, key, ballot, accepted, ctx),
            Msg::Accept { key, ballot, value } => self.on_accept(&from, key, ballot, value, ctx),
            Msg::Accepted { key, ballot } => self.on_accepted(from, key, ballot, ctx),
            Msg::Nack {
                key,
                ballot,
                promised,
            } => self.on_nack(key, ballot, promised, ctx),
            Msg::Decided { .. } | Msg::DecidedOk { .. } | Msg::Learn { .. } => {}
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        match req.op {
            ClientOp::Propose { key, value } => self.propose(req, key, value, ctx),
            ClientOp::Read { key } => {
                let value = self.decided(key);
                if value.is_none() {
                    ctx.broadcast(Msg::Learn { key });
                    self.arm_recovery(key, ctx);
                }
                ctx.reply(&req, ClientReply::ReadOk { value });
            }
            ref other => ctx.reply(&req, not_supported(other)),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<Self>) {
        match timer {
            Timer::Proposer { key } => self.on_proposer_timer(key, ctx),
            Timer::Announce { key } => self.on_announce_timer(key, ctx),
            Timer::Recover { key } => {
                self.recovering.remove(&key);
                self.recover(key, ctx);
            }
        }
    }
}

fn msg_key(msg: &Msg) -> u64 {
    match msg {
        Msg::Prepare { key, .. }
        | Msg::Promise { key, .. }
        | Msg::Accept { key, .. }
        | Msg::Accepted { key, .. }
        | Msg::Nack { key, .. }
        | Msg::Decided { key, .. }
        | Msg::DecidedOk { key }
        | Msg::Learn { key } => *key,
    }
}

fn record_key(record: &Record) -> u64 {
    match record {
        Record::Ballot { key, .. }
        | Record::Promised { key, .. }
        | Record::Accepted { key, .. }
        | Record::Decided { key, .. }
        | Record::Announced { key } => *key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn paxos(n: usize, bugs: &[&str], params: &[(&str, &str)]) -> Result<Paxos, String> {
        let ids: Vec<NodeId> = (1..=n).map(|i| format!("n{i}")).collect();
        let mut c = Config::new("n1", &ids);
        c.bugs = bugs.iter().map(|b| b.to_string()).collect();
        c.params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Paxos::new(&c)
    }

    fn ballot(round: u64, node: &str) -> Ballot {
        Ballot {
            round,
            node: node.to_string(),
        }
    }

    #[test]
    fn ballots_order_by_round_then_node() {
        assert!(ballot(1, "n3") < ballot(2, "n1"));
        assert!(ballot(2, "n1") < ballot(2, "n2"));
    }

    #[test]
    fn quorums() {
        assert_eq!(paxos(3, &[], &[]).unwrap().quorum(), 2);
        assert_eq!(paxos(5, &[], &[]).unwrap().quorum(), 3);
        assert_eq!(paxos(4, &[], &[]).unwrap().quorum(), 3);
        assert_eq!(paxos(5, &["small-quorum"], &[]).unwrap().quorum(), 2);
        assert_eq!(paxos(1, &["small-quorum"], &[]).unwrap().quorum(), 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = paxos(
            3,
            &[],
            &[("backoff_base_ms", "10"), ("backoff_max_ms", "100")],
        )
        .unwrap();
        for _ in 0..100 {
            assert!(p.backoff_us(1, &mut rng) <= 10_000);
            assert!(p.backoff_us(3, &mut rng) <= 40_000);
            assert!(p.backoff_us(60, &mut rng) <= 100_000);
        }
        let late: u64 = (0..100).map(|_| p.backoff_us(60, &mut rng)).sum();
        assert!(late > 100 * 20_000, "waits spread over the capped range");
        let fixed = paxos(3, &[], &[("backoff", "fixed"), ("backoff_base_ms", "7")]).unwrap();
        assert_eq!(fixed.backoff_us(9, &mut rng), 7_000);
        assert_eq!(
            paxos(3, &["no-backoff"], &[])
                .unwrap()
                .backoff_us(9, &mut rng),
            0
        );
    }

    #[test]
    fn backoff_jitter_is_finer_than_a_millisecond() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let p = paxos(3, &[], &[]).unwrap();
        let off_the_ms = (0..100)
            .map(|_| p.backoff_us(1, &mut rng))
            .filter(|us| us / 1_000 * 1_000 != *us)
            .count();
        assert!(off_the_ms > 90, "jitter drawn in whole milliseconds");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(paxos(3, &["lose-everything"], &[]).is_err());
        assert!(paxos(3, &[], &[("backoff", "sometimes")]).is_err());
        assert!(paxos(3, &[], &[("backof", "none")]).is_err());
        assert!(paxos(
            3,
            &[],
            &[("backoff_base_ms", "50"), ("backoff_max_ms", "10")]
        )
        .is_err());
    }
}
