//! Multicast to the group, in the orders of seed 004's lecture notes.
//!
//! A client asks one node to `mcast` a value; the node sends it to every member of the
//! group and each member *delivers* it to its application when the algorithm's rule
//! allows, which may be later than the moment it *receives* it: messages that arrive too
//! early wait in a hold-back queue. Every delivery is reported to the harness
//! (`delivered {value, seq}`) in order, and `mcast_read` answers with the whole delivery
//! sequence, so the harness can judge the guarantees from outside:
//!
//! - FIFO: multicasts by one sender are delivered in the order it sent them, everywhere;
//! - causal: if `multicast(m) → multicast(m')` (Lamport's happens-before), every process
//!   that delivers `m'` has already delivered `m`; causal implies FIFO, not the reverse;
//! - total ("atomic broadcast"): every two processes deliver their common messages in the
//!   same order, whoever sent them;
//! - reliable: every correct process delivers the same set of multicasts, even when a
//!   sender fails halfway through its sends. Reliability is orthogonal to ordering.
//!
//! One file per algorithm under `multicast/`: [`best_effort`] (plain send to all, the
//! baseline every guarantee breaks), [`fifo`], [`causal`], [`total_sequencer`],
//! [`total_isis`] and [`reliable`]. Each declares the guarantee it claims in
//! `GUARANTEE` (`--list-json` carries it; the multicast checker judges that unless
//! `--order`/`--reliable` say otherwise). None of them keeps durable state: a node killed
//! and restarted comes back as a fresh member that never received the past, so these
//! algorithms are judged under crash-stop (`crash`), not crash-recovery (`kill`).
//!
//! Every algorithm delivers its own multicasts at once, without a trip through the
//! network; its peers get one copy each. Message identity is `(origin, sequence)`, so a
//! duplicated copy is recognised and delivered once.

use proto::ops::{ClientOp, ClientReply};
use proto::{ErrorCode, Report};

use super::{not_supported, Algorithm, ClientReq, Config, Ctx, NodeId};

pub mod best_effort;
pub mod causal;
pub mod fifo;
pub mod reliable;
pub mod total_isis;
pub mod total_sequencer;

/// The most values a node delivers in one incarnation. A multicast asked of a node whose
/// log is full is refused before it is sent (a definite error); a message that becomes
/// deliverable at a full log is not delivered, and shows up as a lost message.
pub const DELIVERED_MAX: usize = 40_000;

/// The most messages a node holds back at once; a message arriving at a full queue is
/// dropped, as a full buffer would, and shows up as a lost message.
pub const HOLDBACK_MAX: usize = 10_000;

/// A `mcast_read` reply lists every delivered value: it must fit in one frame (at most 20
/// digits and a comma per value, and the reply's other fields).
const _: () = assert!(DELIVERED_MAX * 21 + 256 < proto::FRAME_BYTES_MAX);

/// What every multicast node keeps: the values it delivered, in order.
#[derive(Debug, Default)]
pub struct Deliveries {
    delivered: Vec<u64>,
}

impl Deliveries {
    /// Delivers `value` to the application: appends it and reports it to the harness.
    pub fn deliver<A: Algorithm>(&mut self, value: u64, ctx: &mut Ctx<A>) {
        if self.delivered.len() >= DELIVERED_MAX {
            return;
        }
        self.delivered.push(value);
        let seq = self.delivered.len() as u64;
        ctx.report(Report::Delivered { value, seq });
    }

    /// The delivered values, in delivery order.
    pub fn values(&self) -> &[u64] {
        &self.delivered
    }

    /// Takes a client request: answers `mcast_read` and anything the algorithm does not
    /// serve, refuses a multicast when the log is full, and returns the value of a
    /// `mcast` the algorithm must now send.
    fn intake<A: Algorithm>(&self, req: &ClientReq, ctx: &mut Ctx<A>) -> Option<u64> {
        match &req.op {
            ClientOp::Mcast { value } if self.delivered.len() < DELIVERED_MAX => Some(*value),
            ClientOp::Mcast { .. } => {
                let text = format!("{} values delivered: the log is full", self.delivered.len());
                let code = ErrorCode::TemporarilyUnavailable;
                ctx.reply(req, ClientReply::Error { code, text });
                None
            }
            ClientOp::McastRead => {
                let delivered = self.delivered.clone();
                ctx.reply(req, ClientReply::McastReadOk { delivered });
                None
            }
            other => {
                ctx.reply(req, not_supported(other));
                None
            }
        }
    }
}

/// A node's delivery log; [`multicast_node!`] implements it for the node's `log` field.
pub trait Logged {
    /// The values delivered here.
    fn log(&self) -> &Deliveries;
}

/// A multicast algorithm: what [`multicast_node!`] needs to make it an [`Algorithm`].
pub trait Multicast: Algorithm + Logged {
    /// A fresh node (its mutants already checked).
    fn build(config: &Config) -> Self;
    /// A message from peer `from`.
    fn receive(&mut self, from: NodeId, msg: Self::Msg, ctx: &mut Ctx<Self>);
    /// Sends `value` to the group as this node's next multicast (and delivers it here).
    fn multicast(&mut self, value: u64, ctx: &mut Ctx<Self>);
}

/// Implements [`Algorithm`] for a [`Multicast`] node: messages `$msg`, mutants `$bugs`,
/// no timers and no durable records; peers' messages go to `receive`, clients to
/// [`serve`]; and [`Logged`] for its `log` field. Generic parameters of the type come
/// first, in brackets.
macro_rules! multicast_node {
    ([$($generics:tt)*] $node:ty, $msg:ty, $bugs:expr) => {
        impl<$($generics)*> $crate::algo::Algorithm for $node {
            type Msg = $msg;
            type Timer = ();
            type Record = ();

            const BUGS: &'static [&'static str] = $bugs;

            fn new(config: &$crate::algo::Config) -> Result<Self, String> {
                $crate::algo::check_bugs(config, Self::BUGS)?;
                Ok(<Self as $crate::algo::multicast::Multicast>::build(config))
            }

            fn on_start(&mut self, _recovered: Vec<()>, _ctx: &mut $crate::algo::Ctx<Self>) {}

            fn on_msg(
                &mut self,
                from: $crate::algo::NodeId,
                msg: $msg,
                ctx: &mut $crate::algo::Ctx<Self>,
            ) {
                $crate::algo::multicast::Multicast::receive(self, from, msg, ctx);
            }

            fn on_client(&mut self, req: $crate::algo::ClientReq, ctx: &mut $crate::algo::Ctx<Self>) {
                $crate::algo::multicast::serve(self, req, ctx);
            }

            fn on_timer(&mut self, _timer: (), _ctx: &mut $crate::algo::Ctx<Self>) {}
        }

        impl<$($generics)*> $crate::algo::multicast::Logged for $node {
            fn log(&self) -> &$crate::algo::multicast::Deliveries {
                &self.log
            }
        }
    };
    ($node:ty, $msg:ty, $bugs:expr) => {
        multicast_node!([] $node, $msg, $bugs);
    };
}
pub(crate) use multicast_node;

/// A multicast algorithm's `on_client`: a `mcast` is multicast and answered `mcast_ok`
/// once sent; everything else is [`Deliveries`]'s to answer.
pub fn serve<A: Multicast>(algo: &mut A, req: ClientReq, ctx: &mut Ctx<A>) {
    let Some(value) = algo.log().intake(&req, ctx) else {
        return;
    };
    algo.multicast(value, ctx);
    ctx.reply(&req, ClientReply::McastOk);
}

/// The position of node `id` in the cluster: its slot in a vector of per-sender counters.
pub fn slot(config: &Config, id: &str) -> usize {
    config
        .node_ids
        .iter()
        .position(|n| n == id)
        .expect("messages come from cluster members")
}

/// The guarantee each bundled multicast algorithm claims, by name: an order (`none`,
/// `fifo`, `causal`, `total`, `fifo-total`, `causal-total`), then `+reliable` if it
/// also promises that every correct node delivers the same set.
pub fn guarantee(name: &str) -> Option<&'static str> {
    Some(match name {
        "best-effort" => best_effort::GUARANTEE,
        "fifo" => fifo::GUARANTEE,
        "causal" => causal::GUARANTEE,
        "total-sequencer" => total_sequencer::GUARANTEE,
        "total-isis" => total_isis::GUARANTEE,
        "reliable" => reliable::GUARANTEE,
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers the algorithms' simulated-network tests share.

    use proto::ops::ClientOp;
    use proto::Report;

    use crate::algo::Algorithm;
    use crate::sim::Sim;

    /// Asks `node` to multicast `value`.
    pub fn mcast<A: Algorithm>(sim: &mut Sim<A>, node: &str, value: u64) {
        sim.client(node, ClientOp::Mcast { value });
    }

    /// What `node` delivered so far, from its reports, in order.
    pub fn delivered<A: Algorithm>(sim: &Sim<A>, node: &str) -> Vec<u64> {
        sim.reports()
            .iter()
            .filter(|r| r.node == node)
            .filter_map(|r| match r.report {
                Report::Delivered { value, .. } => Some(value),
                _ => None,
            })
            .collect()
    }

    /// `sim` after each `(node, value)` was multicast, every copy held.
    pub fn held<A: Algorithm>(mut sim: Sim<A>, sends: &[(&str, u64)]) -> Sim<A> {
        for (node, value) in sends {
            mcast(&mut sim, node, *value);
        }
        hold_all(&mut sim);
        sim
    }

    /// Holds every message in flight; returns how many.
    pub fn hold_all<A: Algorithm>(sim: &mut Sim<A>) -> usize {
        sim.hold_where(|_| true)
    }

    /// Delivers the held messages from `from` to `to`, in send order; returns how many.
    pub fn deliver_link<A: Algorithm>(sim: &mut Sim<A>, from: &str, to: &str) -> usize {
        sim.deliver_where(|e| e.from == from && e.to == to)
    }
}
