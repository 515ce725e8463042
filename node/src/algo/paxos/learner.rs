//! The learner: a decision is synced, reported and answered, and the node whose proposer
//! saw the quorum repeats it to every node until each acknowledges (the `forget-learned`
//! mutant keeps decisions in memory only).

use super::{Msg, Paxos, Record, Timer};
use crate::algo::Ctx;
use proto::ops::{Ballot, ClientReply};
use proto::Report;

/// What this node knows of a decided key.
#[derive(Debug, Clone)]
pub(super) struct Decision {
    pub(super) value: u64,
    pub(super) ballot: Ballot,
    pub(super) rounds: u32,
}

impl Paxos {
    /// Learns that `value` was chosen in `ballot`; `announce` if this node's proposer saw
    /// the quorum of acceptances and so owes everyone the news.
    pub(super) fn decide(
        &mut self,
        key: u64,
        value: u64,
        ballot: Ballot,
        announce: bool,
        ctx: &mut Ctx<Self>,
    ) {
        assert!(
            !self.decided.contains_key(&key),
            "a key is decided once per node"
        );
        let inst = self.instances.remove(&key).unwrap_or_default();
        let rounds = inst.proposer.as_ref().map(|p| p.started).filter(|r| *r > 0);
        if !self.bugs.forget_learned {
            ctx.persist(Record::Decided {
                key,
                value,
                ballot: ballot.clone(),
                announce,
            });
            ctx.sync();
        }
        ctx.cancel_timer(Timer::Proposer { key });
        ctx.report(Report::Decided { key, value, rounds });
        let rounds = rounds.unwrap_or(0);
        if let Some(p) = inst.proposer {
            for req in p.pending {
                let reply = ClientReply::ProposeOk {
                    value,
                    rounds: Some(rounds),
                    ballot: Some(ballot.clone()),
                };
                ctx.reply(&req, reply);
            }
        }
        self.decided.insert(
            key,
            Decision {
                value,
                ballot,
                rounds,
            },
        );
        if announce {
            self.announce(key, ctx);
        }
    }

    pub(super) fn announce(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let msg = decided_msg(&self.decided[&key], key);
        self.announcing
            .announce(key, msg, Timer::Announce { key }, ctx);
    }

    /// `peer` knows the decision of `key`.
    pub(super) fn acked(&mut self, key: u64, peer: &str, ctx: &mut Ctx<Self>) {
        let (timer, done) = (Timer::Announce { key }, Record::Announced { key });
        self.announcing.acked(key, peer, timer, done, ctx);
    }

    pub(super) fn on_announce_timer(&mut self, key: u64, ctx: &mut Ctx<Self>) {
        let Some(d) = self.decided.get(&key) else {
            return;
        };
        // Built only if some peer still owes an acknowledgement.
        let msg = || decided_msg(d, key);
        self.announcing
            .repeat(key, msg, Timer::Announce { key }, ctx);
    }
}

/// The announcement of `key`'s decision.
fn decided_msg(d: &Decision, key: u64) -> Msg {
    Msg::Decided {
        key,
        value: d.value,
        ballot: d.ballot.clone(),
    }
}
