//! The proposer: ballots, the two phases, retransmission and randomized backoff, and the
//! recovery ballot a node runs for a key it accepted whose decision never reached it.
//! Mutants here: `forget-accepted` ignores what the promises report,
//! `first-accepted-value` adopts the first reported value instead of the highest-ballot
//! one, `ballot-no-node-id` leaves the node out of its ballots, and `learn-mixed-ballots`
//! counts acceptances of any of its ballots toward the current one.

use std::collections::{BTreeMap, BTreeSet};

use super::{Backoff, Msg, Paxos, Proposal, Record, Timer, BACKOFF_SHIFT_MAX};
use crate::algo::{wait_or_refuse, ClientReq, Ctx, NodeId};
use proto::ops::{Ballot, ClientReply};
use proto::Report;
use rand::Rng;

/// Where a proposer's current ballot stands.
#[derive(Debug)]
pub(super) enum Phase {
    Prepare {
        promises: BTreeMap<NodeId, Option<Proposal>>,
        /// The accepted proposal of the first promise that carried one (what the
        /// `first-accepted-value` mutant adopts).
        first: Option<Proposal>,
        resends: u32,
    },
    Accept {
        value: u64,
        accepted: BTreeSet<NodeId>,
        resends: u32,
    },
    Backoff,
}

/// One proposer's state for one key, from the first client request to the decision.
#[derive(Debug)]
pub(super) struct Proposer {
    /// This node's own candidate: the first value a client proposed here.
    pub(super) value: u64,
    pub(super) ballot: Ballot,
    pub(super) phase: Phase,
    /// Ballots started so far: the rounds this proposer needed.
    pub(super) started: u32,
    pub(super) pending: Vec<ClientReq>,
    /// `learn-mixed-ballots` only: every acceptor that accepted any of this proposer's
    /// ballots, never reset.
    pub(super) acked: BTreeSet<NodeId>,
}

impl Paxos {
    /// How long to wait, in microseconds, before the retry that follows `started`
    /// ballots. The jitter is drawn in microseconds so that two proposers' retries differ
    /// by less than one decision's time as often as by more.
    pub fn backoff_us(&self, started: u32, rng: &mut impl Rng) -> u64 {
        match self.backoff {
            Backoff::None => 0,
            Backoff::Fixed => self.backoff_base_ms.saturating_mul(1_000),
            Backoff::ExpRandom => {
                let shift = started.saturating_sub(1).min(BACKOFF_SHIFT_MAX);
                let cap_ms = self
                    .backoff_base_ms
                    .saturating_mul(1 << shift)
                    .min(self.backoff_max_ms);
                rng.gen_range(0..=cap_ms.saturating_mul(1_000))
            }
        }
    }

    /// The node part of this node's ballots: its id, or nothing for `ballot-no-node-id`.
    pub(super) fn ballot_node(&self, ctx: &Ctx<Self>) -> NodeId {
        if self.bugs.ballot_no_node_id {
            NodeId::new()
        } else {
            ctx.id().clone()
        }
    }

    pub(super) fn start_ballot(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let node = self.ballot_node(ctx);
        let inst = self
            .instances
            .get_mut(&key)
            .expect("a proposer has an instance");
        let p = inst
            .proposer
            .as_mut()
            .expect("ballots are started by a proposer");
        inst.round_max += 1;
        let ballot = Ballot {
            round: inst.round_max,
            node,
        };
        p.ballot = ballot.clone();
        p.started += 1;
        p.phase = Phase::Prepare {
            promises: BTreeMap::new(),
            first: None,
            resends: 0,
        };
        ctx.persist(Record::Ballot {
            key,
            round: ballot.round,
            value: p.value,
        });
        ctx.sync();
        ctx.report(Report::BallotStarted {
            key,
            ballot: ballot.clone(),
        });
        ctx.send_all(Msg::Prepare { key, ballot });
        ctx.set_timer(Timer::Proposer { key }, self.phase_ms);
    }

    pub(super) fn give_up(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let Some(p) = self
            .instances
            .get_mut(&key)
            .and_then(|i| i.proposer.as_mut())
        else {
            return;
        };
        p.phase = Phase::Backoff;
        let started = p.started;
        let delay = self.backoff_us(started, ctx.rng());
        ctx.set_timer_us(Timer::Proposer { key }, delay);
    }

    pub(super) fn propose(&mut self, req: ClientReq, key: u64, value: u64, ctx: &mut Ctx<Self>) {
        if let Some(d) = self.decided.get(&key) {
            let reply = ClientReply::ProposeOk {
                value: d.value,
                rounds: Some(d.rounds),
                ballot: Some(d.ballot.clone()),
            };
            ctx.reply(&req, reply);
            return;
        }
        let inst = self.instances.entry(key).or_default();
        match inst.proposer.as_mut() {
            Some(p) => {
                wait_or_refuse(&mut p.pending, req, key, ctx);
            }
            None => self.new_proposer(key, value, vec![req], ctx),
        }
    }

    /// Starts proposing `value` for `key` (which has no proposer here yet) at once.
    fn new_proposer(&mut self, key: u64, value: u64, pending: Vec<ClientReq>, ctx: &mut Ctx<Self>) {
        let ballot = Ballot {
            round: 0,
            node: self.ballot_node(ctx),
        };
        let inst = self.instances.entry(key).or_default();
        assert!(inst.proposer.is_none(), "one proposer per key and node");
        inst.proposer = Some(Proposer {
            value,
            ballot,
            phase: Phase::Backoff,
            started: 0,
            pending,
            acked: BTreeSet::new(),
        });
        self.start_ballot(key, ctx);
    }

    /// A client read undecided `key` here: recover it after a while, unless already armed.
    pub(super) fn arm_recovery(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let accepted = self
            .instances
            .get(&key)
            .is_some_and(|i| i.proposer.is_none() && i.acceptor.accepted.is_some());
        if accepted && self.recovering.insert(key) {
            let after_ms = self.phase_ms.saturating_mul(u64::from(self.resend_max) + 2);
            ctx.set_timer(Timer::Recover { key }, after_ms);
        }
    }

    /// Someone asked about undecided `key`: if this node's acceptor accepted a value for it
    /// and no proposer here is working on it, run a ballot for that value. Its phase 1
    /// adopts the chosen value if there is one, so this only finishes what was started:
    /// the decision reaches everyone even when the proposer that saw the quorum is gone.
    pub(super) fn recover(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let Some(inst) = self.instances.get(&key) else {
            return;
        };
        if inst.proposer.is_some() || self.decided.contains_key(&key) {
            return;
        }
        let Some(accepted) = inst.acceptor.accepted.as_ref() else {
            return;
        };
        let value = accepted.value;
        self.new_proposer(key, value, Vec::new(), ctx);
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        key: u64,
        ballot: Ballot,
        accepted: Option<Proposal>,
        ctx: &mut Ctx<Self>,
    ) {
        let Some(inst) = self.instances.get_mut(&key) else {
            return;
        };
        if let Some(a) = &accepted {
            inst.round_max = inst.round_max.max(a.ballot.round);
        }
        let Some(p) = inst.proposer.as_mut().filter(|p| p.ballot == ballot) else {
            return;
        };
        let Phase::Prepare {
            promises, first, ..
        } = &mut p.phase
        else {
            return;
        };
        if first.is_none() {
            first.clone_from(&accepted);
        }
        promises.insert(from, accepted);
        if promises.len() < self.quorum {
            return;
        }
        let adopted = if self.bugs.first_accepted_value {
            first.as_ref()
        } else {
            promises
                .values()
                .flatten()
                .max_by(|a, b| a.ballot.cmp(&b.ballot))
        };
        let value = match adopted {
            Some(prior) if !self.bugs.forget_accepted => prior.value,
            _ => p.value,
        };
        // The mutant's count carries over from its earlier ballots.
        let accepted = match self.bugs.learn_mixed_ballots {
            true => p.acked.clone(),
            false => BTreeSet::new(),
        };
        p.phase = Phase::Accept {
            value,
            accepted,
            resends: 0,
        };
        ctx.send_all(Msg::Accept { key, ballot, value });
        ctx.set_timer(Timer::Proposer { key }, self.phase_ms);
    }

    pub(super) fn on_accepted(
        &mut self,
        from: NodeId,
        key: u64,
        ballot: Ballot,
        ctx: &mut Ctx<Self>,
    ) {
        let Some(p) = self
            .instances
            .get_mut(&key)
            .and_then(|i| i.proposer.as_mut())
        else {
            return;
        };
        let mixed = self.bugs.learn_mixed_ballots;
        if mixed && ballot.node == p.ballot.node && ballot.round <= p.ballot.round {
            p.acked.insert(from.clone());
        }
        if p.ballot != ballot && !mixed {
            return;
        }
        let Phase::Accept {
            value, accepted, ..
        } = &mut p.phase
        else {
            return;
        };
        accepted.insert(from);
        if accepted.len() >= self.quorum {
            let (value, ballot) = (*value, p.ballot.clone());
            self.decide(key, value, ballot, true, ctx);
        }
    }

    pub(super) fn on_nack(
        &mut self,
        key: u64,
        ballot: Ballot,
        promised: Ballot,
        ctx: &mut Ctx<Self>,
    ) {
        let Some(inst) = self.instances.get_mut(&key) else {
            return;
        };
        inst.round_max = inst.round_max.max(promised.round);
        let Some(p) = inst.proposer.as_ref() else {
            return;
        };
        if p.ballot == ballot && !matches!(p.phase, Phase::Backoff) {
            self.give_up(key, ctx);
        }
    }

    pub(super) fn on_proposer_timer(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let Some(p) = self
            .instances
            .get_mut(&key)
            .and_then(|i| i.proposer.as_mut())
        else {
            return;
        };
        let ballot = p.ballot.clone();
        let all = ctx.node_ids().to_vec();
        match &mut p.phase {
            Phase::Prepare {
                promises, resends, ..
            } if *resends < self.resend_max => {
                *resends += 1;
                for n in all.iter().filter(|n| !promises.contains_key(*n)) {
                    ctx.send(
                        n,
                        Msg::Prepare {
                            key,
                            ballot: ballot.clone(),
                        },
                    );
                }
                ctx.set_timer(Timer::Proposer { key }, self.phase_ms);
            }
            Phase::Accept {
                value,
                accepted,
                resends,
            } if *resends < self.resend_max => {
                *resends += 1;
                for n in all.iter().filter(|n| !accepted.contains(*n)) {
                    ctx.send(
                        n,
                        Msg::Accept {
                            key,
                            ballot: ballot.clone(),
                            value: *value,
                        },
                    );
                }
                ctx.set_timer(Timer::Proposer { key }, self.phase_ms);
            }
            Phase::Prepare { .. } | Phase::Accept { .. } => self.give_up(key, ctx),
            Phase::Backoff => self.start_ballot(key, ctx),
        }
    }
}
