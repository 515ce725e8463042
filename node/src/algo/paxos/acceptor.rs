//! The acceptor: promises and acceptances, each synced before the reply leaves (the
//! `skip-fsync` mutant leaves promises unsynced, `ack-before-sync` answers first and syncs
//! after, `no-promise-check` accepts below its promise).

use super::{Msg, Paxos, Proposal, Record};
use crate::algo::Ctx;
use proto::ops::Ballot;
use proto::Report;

/// One acceptor's state for one key: what it promised and what it accepted last.
#[derive(Debug, Default)]
pub(super) struct Acceptor {
    pub(super) promised: Option<Ballot>,
    pub(super) accepted: Option<Proposal>,
}

impl Paxos {
    /// The acceptor of `key`, once the instance's highest round seen counts `ballot`.
    fn acceptor_seeing(&mut self, key: u64, ballot: &Ballot) -> &mut Acceptor {
        let inst = self.instances.entry(key).or_default();
        inst.round_max = inst.round_max.max(ballot.round);
        &mut inst.acceptor
    }

    pub(super) fn on_prepare(&mut self, from: &str, key: u64, ballot: Ballot, ctx: &mut Ctx<Self>) {
        let bugs = self.bugs;
        let acc = self.acceptor_seeing(key, &ballot);
        if let Some(promised) = acc.promised.as_ref().filter(|p| ballot < **p) {
            return nack(ctx, from, key, ballot, promised);
        }
        let promise = Msg::Promise {
            key,
            ballot: ballot.clone(),
            accepted: acc.accepted.clone(),
        };
        if bugs.ack_before_sync {
            ctx.send(from, promise.clone());
        }
        if acc.promised.as_ref() != Some(&ballot) {
            acc.promised = Some(ballot.clone());
            ctx.persist(Record::Promised { key, ballot });
            if !bugs.skip_fsync {
                ctx.sync();
            }
        }
        if !bugs.ack_before_sync {
            ctx.send(from, promise);
        }
    }

    pub(super) fn on_accept(
        &mut self,
        from: &str,
        key: u64,
        ballot: Ballot,
        value: u64,
        ctx: &mut Ctx<Self>,
    ) {
        let bugs = self.bugs;
        let acc = self.acceptor_seeing(key, &ballot);
        let refused = acc.promised.as_ref().filter(|p| ballot < **p);
        if let Some(promised) = refused.filter(|_| !bugs.no_promise_check) {
            return nack(ctx, from, key, ballot, promised);
        }
        let accepted = Msg::Accepted {
            key,
            ballot: ballot.clone(),
        };
        if bugs.ack_before_sync {
            ctx.send(from, accepted.clone());
        }
        if acc.accepted.as_ref().map(|a| &a.ballot) != Some(&ballot) {
            if acc.promised.as_ref().is_none_or(|p| ballot > *p) {
                acc.promised = Some(ballot.clone());
            }
            acc.accepted = Some(Proposal {
                ballot: ballot.clone(),
                value,
            });
            ctx.persist(Record::Accepted {
                key,
                ballot: ballot.clone(),
                value,
            });
            ctx.sync();
            ctx.report(Report::Accepted { key, ballot, value });
        }
        if !bugs.ack_before_sync {
            ctx.send(from, accepted);
        }
    }
}

/// Refuses `ballot` of `from`: this acceptor promised the higher `promised`.
fn nack(ctx: &mut Ctx<Paxos>, from: &str, key: u64, ballot: Ballot, promised: &Ballot) {
    let promised = promised.clone();
    ctx.send(
        from,
        Msg::Nack {
            key,
            ballot,
            promised,
        },
    );
}
