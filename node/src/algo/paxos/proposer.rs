//! The proposer: ballots, the two phases, retransmission and randomized backoff (the
//! `forget-accepted` mutant ignores what the promises report).

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
}

impl Paxos {
    /// How long to wait before the retry that follows `started` ballots.
    pub fn backoff_ms(&self, started: u32, rng: &mut impl Rng) -> u64 {
        match self.backoff {
            Backoff::None => 0,
            Backoff::Fixed => self.backoff_base_ms,
            Backoff::ExpRandom => {
                let shift = started.saturating_sub(1).min(BACKOFF_SHIFT_MAX);
                let cap = self
                    .backoff_base_ms
                    .saturating_mul(1 << shift)
                    .min(self.backoff_max_ms);
                rng.gen_range(0..=cap)
            }
        }
    }

    pub(super) fn start_ballot(&mut self, key: u64, ctx: &mut Ctx<Self>) {
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
            node: ctx.id().clone(),
        };
        p.ballot = ballot.clone();
        p.started += 1;
        p.phase = Phase::Prepare {
            promises: BTreeMap::new(),
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
        let delay = self.backoff_ms(started, ctx.rng());
        ctx.set_timer(Timer::Proposer { key }, delay);
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
            None => {
                let ballot = Ballot {
                    round: 0,
                    node: ctx.id().clone(),
                };
                let phase = Phase::Backoff;
                inst.proposer = Some(Proposer {
                    value,
                    ballot,
                    phase,
                    started: 0,
                    pending: vec![req],
                });
                self.start_ballot(key, ctx);
            }
        }
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
        let Phase::Prepare { promises, .. } = &mut p.phase else {
            return;
        };
        promises.insert(from, accepted);
        if promises.len() < self.quorum {
            return;
        }
        let adopted = promises
            .values()
            .flatten()
            .max_by(|a, b| a.ballot.cmp(&b.ballot));
        let value = match adopted {
            Some(prior) if !self.forget_accepted => prior.value,
            _ => p.value,
        };
        p.phase = Phase::Accept {
            value,
            accepted: BTreeSet::new(),
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
        if p.ballot != ballot {
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
            let value = *value;
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
            Phase::Prepare { promises, resends } if *resends < self.resend_max => {
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
