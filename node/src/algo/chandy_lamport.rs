//! A bank of one account per node, with Chandy and Lamport's global snapshot.
//!
//! Every node starts with [`BANK_INITIAL_BALANCE`]; a client's `transfer {to, amount}`
//! debits the asked node and sends a `transfer` message to `to`, which credits it on
//! arrival. Transfers are numbered 1, 2, .. per directed link, so each is named by
//! (sender, receiver, number). The money in the accounts plus the money in transfers still
//! on the wire never changes: that total is what a snapshot must see.
//!
//! The snapshot (Chandy and Lamport, "Distributed Snapshots: Determining Global States of
//! Distributed Systems", 1985; the seed's lecture notes, "Global Snapshot Algorithm"):
//!
//! - The initiator records its own state, sends a `marker` on every outgoing channel and
//!   starts recording every incoming channel.
//! - A node that receives its first marker of a snapshot on channel C_ki records its own
//!   state, marks C_ki empty, sends a marker on every outgoing channel and starts
//!   recording every other incoming channel.
//! - A later marker on C_ki closes C_ki: its state is every transfer that arrived on it
//!   since recording began.
//! - The node's part ends when every incoming channel is closed.
//!
//! Each recorded piece goes to the harness as a report (`snapshot_local` for the node's
//! state, `snapshot_channel` for each incoming channel); the harness's checker assembles
//! them. The invariant that matters is that the recorded states form a *consistent cut*:
//! no transfer is received inside the cut whose send lies outside it. It rests on FIFO
//! channels: a transfer sent after the sender recorded travels behind the sender's marker,
//! so the receiver has recorded before it arrives. Reorder the channel and the transfer may
//! overtake the marker: the receiver counts money the sender still counts too.
//!
//! A balance `read` (the final reads) is answered only once every peer has answered a
//! `flush` sent with it: on FIFO links every transfer a peer sent before its `flushed`
//! has been applied by then, so with clients stopped the final balances add up to the
//! total.
//!
//! Several snapshots may run at once (each is keyed by its id, `n1#3`), at most
//! [`SNAPSHOTS_MAX`] in progress per node. State lives in memory only: a killed node
//! loses its account, as the seed's model has no failures.
//!
//! Mutants (`--bug`):
//! - `no-channel-state`: records local states only; every channel is reported empty, so
//!   money in transit at the cut is missing from the snapshot.
//! - `late-record`: on its first marker a node records its state only after it has
//!   applied the next transfer to arrive (as if the marker rode on that transfer): that
//!   transfer was sent after its sender recorded, so its money is counted twice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proto::ops::{ClientOp, ClientReply, BANK_INITIAL_BALANCE};
use proto::report::SNAPSHOT_SEQS_MAX;
use proto::{ErrorCode, Report};
use serde::{Deserialize, Serialize};

use super::{
    check_bugs, check_params, not_supported, Algorithm, ClientReq, Config, Ctx, NodeId, PENDING_MAX,
};

/// Snapshots one node may have in progress at once; a `snapshot` request beyond this is
/// refused (a definite error). Markers of others' snapshots are always followed, so a
/// node holds at most this many per initiator.
pub const SNAPSHOTS_MAX: usize = 64;

/// Finished snapshot ids a node remembers, so a late marker does not start a snapshot
/// again; the oldest are forgotten first.
pub const DONE_MAX: usize = 4096;

/// Messages between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Money moving to the receiver: transfer number `seq` on this link.
    Transfer {
        /// The transfer's number on its link (1, 2, ..).
        seq: u64,
        /// How much.
        amount: u64,
    },
    /// Chandy-Lamport's marker of snapshot `snapshot`.
    Marker {
        /// The snapshot's id.
        snapshot: String,
    },
    /// A balance read asks every peer to answer once everything it sent before is here.
    Flush {
        /// The read's number at the asking node.
        read: u64,
    },
    /// The answer to [`Msg::Flush`]: on a FIFO link, every transfer the peer sent before
    /// it has been applied by the time it arrives.
    Flushed {
        /// The read's number.
        read: u64,
    },
}

/// One incoming channel being recorded.
#[derive(Debug, Default, Clone)]
struct Channel {
    count: u64,
    amount: u64,
    seqs: Vec<u64>,
}

/// What a marker does at a node ([`Cuts::on_marker`]).
#[derive(Debug)]
pub enum MarkerStep<C> {
    /// A marker of a snapshot already finished here, or on a channel already closed
    /// (only a duplicate does that): nothing.
    Ignore,
    /// The node's first marker of this snapshot: it must record its state now
    /// ([`Cuts::start`]).
    First,
    /// A later marker: it closed its channel, whose record is this; `finished` when it
    /// was the node's last open channel of the snapshot.
    Closed {
        /// The channel's record.
        record: C,
        /// Whether the node's part of the snapshot is over.
        finished: bool,
    },
}

/// The bookkeeping of Chandy and Lamport's cuts that does not depend on what a channel
/// carries: the snapshots this node has recorded its state for, with the incoming
/// channels each still records (one `C` per channel), and the finished snapshots it
/// remembers (at most [`DONE_MAX`]), so that a late marker starts nothing again.
#[derive(Debug)]
pub struct Cuts<C> {
    recording: BTreeMap<String, BTreeMap<NodeId, C>>,
    done: BTreeSet<String>,
    done_order: VecDeque<String>,
    next_snapshot: u64,
}

impl<C: Default> Default for Cuts<C> {
    fn default() -> Self {
        Cuts {
            next_snapshot: 1,
            recording: BTreeMap::new(),
            done: BTreeSet::new(),
            done_order: VecDeque::new(),
        }
    }
}

impl<C: Default> Cuts<C> {
    /// Snapshots whose part here is still open.
    pub fn in_progress(&self) -> usize {
        self.recording.len()
    }

    /// The id of a new snapshot initiated by node `me` (`n1#3`), or the refusal when
    /// [`SNAPSHOTS_MAX`] are already in progress here.
    pub fn fresh_id(&mut self, me: &str) -> Result<String, ClientReply> {
        if self.in_progress() >= SNAPSHOTS_MAX {
            return Err(refuse(
                ErrorCode::TemporarilyUnavailable,
                format!("{SNAPSHOTS_MAX} snapshots already in progress here"),
            ));
        }
        let id = format!("{me}#{}", self.next_snapshot);
        self.next_snapshot += 1;
        Ok(id)
    }

    /// Whether this node has recorded its state for `snapshot`.
    pub fn known(&self, snapshot: &str) -> bool {
        self.recording.contains_key(snapshot) || self.done.contains(snapshot)
    }

    /// The node recorded its state for `snapshot`: every incoming channel but `first`'s
    /// (the first marker's sender; none at the initiator) is recorded from now on.
    /// Returns whether the node's part is already over (no channel left open).
    pub fn start(&mut self, snapshot: &str, peers: &[NodeId], first: Option<&str>) -> bool {
        assert!(!self.known(snapshot), "recorded twice");
        let open = peers
            .iter()
            .filter(|p| Some(p.as_str()) != first)
            .map(|p| (p.clone(), C::default()))
            .collect();
        self.recording.insert(snapshot.to_string(), open);
        self.finish_if_closed(snapshot)
    }

    /// The records of every open channel from `from`, one per snapshot in progress.
    pub fn open_from<'a>(&'a mut self, from: &'a str) -> impl Iterator<Item = &'a mut C> + 'a {
        self.recording
            .values_mut()
            .filter_map(move |open| open.get_mut(from))
    }

    /// A marker of `snapshot` arrived from `from`.
    pub fn on_marker(&mut self, snapshot: &str, from: &str) -> MarkerStep<C> {
        if self.done.contains(snapshot) {
            return MarkerStep::Ignore;
        }
        let Some(open) = self.recording.get_mut(snapshot) else {
            return MarkerStep::First;
        };
        let Some(record) = open.remove(from) else {
            return MarkerStep::Ignore;
        };
        let finished = self.finish_if_closed(snapshot);
        MarkerStep::Closed { record, finished }
    }

    fn finish_if_closed(&mut self, snapshot: &str) -> bool {
        if !self.recording.get(snapshot).is_some_and(|o| o.is_empty()) {
            return false;
        }
        self.recording.remove(snapshot);
        self.done.insert(snapshot.to_string());
        self.done_order.push_back(snapshot.to_string());
        if self.done_order.len() > DONE_MAX {
            let old = self.done_order.pop_front().expect("over the bound");
            self.done.remove(&old);
        }
        true
    }
}

/// A node of the bank.
#[derive(Debug)]
pub struct ChandyLamport {
    id: NodeId,
    peers: Vec<NodeId>,
    balance: u64,
    sent: BTreeMap<NodeId, u64>,
    received: BTreeMap<NodeId, u64>,
    received_max: BTreeMap<NodeId, u64>,
    cuts: Cuts<Channel>,
    /// `late-record`: snapshots whose first marker came from this peer, waiting for the
    /// next transfer before recording.
    late: BTreeMap<String, NodeId>,
    no_channel_state: bool,
    late_record: bool,
    /// Balance reads waiting for peers' `flushed`, by read number.
    reads: BTreeMap<u64, (ClientReq, BTreeSet<NodeId>)>,
    next_read: u64,
}

impl ChandyLamport {
    /// The node's balance now.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// Snapshots whose part here is still open.
    pub fn in_progress(&self) -> usize {
        self.cuts.in_progress() + self.late.len()
    }

    fn known(&self, snapshot: &str) -> bool {
        self.cuts.known(snapshot) || self.late.contains_key(snapshot)
    }

    /// Records this node's state for `snapshot`, with the channel from `first` (the first
    /// marker's sender; none at the initiator) already closed empty; sends the markers.
    fn record(&mut self, snapshot: &str, first: Option<&str>, ctx: &mut Ctx<Self>) {
        ctx.report(Report::SnapshotLocal {
            id: snapshot.to_string(),
            balance: self.balance,
            sent: self.sent.clone(),
            received: self.received.clone(),
            received_max: self.received_max.clone(),
        });
        self.cuts.start(snapshot, &self.peers, first);
        if let Some(from) = first {
            report_channel(snapshot, from, &Channel::default(), ctx);
        }
        ctx.broadcast(Msg::Marker {
            snapshot: snapshot.to_string(),
        });
    }

    fn on_transfer(&mut self, from: &str, seq: u64, amount: u64, ctx: &mut Ctx<Self>) {
        self.balance += amount;
        *self.received.entry(from.to_string()).or_default() += 1;
        let max = self.received_max.entry(from.to_string()).or_default();
        *max = (*max).max(seq);
        if !self.no_channel_state {
            for ch in self.cuts.open_from(from) {
                ch.count += 1;
                ch.amount += amount;
                if ch.seqs.len() < SNAPSHOT_SEQS_MAX {
                    ch.seqs.push(seq);
                }
            }
        }
        // `late-record`: the transfer behind the marker has been applied; record now.
        for (snapshot, first) in std::mem::take(&mut self.late) {
            self.record(&snapshot, Some(&first), ctx);
        }
    }

    fn on_marker(&mut self, from: &str, snapshot: String, ctx: &mut Ctx<Self>) {
        if self.late_record {
            if let Some(first) = self.late.remove(&snapshot) {
                // A second marker before any transfer: record now, then close this one.
                self.record(&snapshot, Some(&first), ctx);
                return self.on_marker(from, snapshot, ctx);
            }
        }
        match self.cuts.on_marker(&snapshot, from) {
            MarkerStep::Ignore => {}
            MarkerStep::Closed { record, .. } => report_channel(&snapshot, from, &record, ctx),
            MarkerStep::First if self.late_record => {
                self.late.insert(snapshot, from.to_string());
            }
            MarkerStep::First => self.record(&snapshot, Some(from), ctx),
        }
    }
}

fn report_channel(snapshot: &str, from: &str, ch: &Channel, ctx: &mut Ctx<ChandyLamport>) {
    ctx.report(Report::SnapshotChannel {
        id: snapshot.to_string(),
        from: from.to_string(),
        count: ch.count,
        amount: ch.amount,
        seqs: ch.seqs.clone(),
    });
}

/// A definite or retryable refusal of a client's request.
pub fn refuse(code: ErrorCode, text: String) -> ClientReply {
    ClientReply::Error { code, text }
}

impl Algorithm for ChandyLamport {
    type Msg = Msg;
    type Timer = ();
    type Record = ();

    const BUGS: &'static [&'static str] = &["no-channel-state", "late-record"];

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, &[])?;
        Ok(ChandyLamport {
            id: config.id.clone(),
            peers: config.peers().cloned().collect(),
            balance: BANK_INITIAL_BALANCE,
            sent: BTreeMap::new(),
            received: BTreeMap::new(),
            received_max: BTreeMap::new(),
            cuts: Cuts::default(),
            late: BTreeMap::new(),
            no_channel_state: config.has_bug("no-channel-state"),
            late_record: config.has_bug("late-record"),
            reads: BTreeMap::new(),
            next_read: 1,
        })
    }

    fn on_start(&mut self, _recovered: Vec<()>, _ctx: &mut Ctx<Self>) {}

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Transfer { seq, amount } => self.on_transfer(&from, seq, amount, ctx),
            Msg::Marker { snapshot } => self.on_marker(&from, snapshot, ctx),
            Msg::Flush { read } => ctx.send(&from, Msg::Flushed { read }),
            Msg::Flushed { read } => {
                let Some((_, waiting)) = self.reads.get_mut(&read) else {
                    return;
                };
                waiting.remove(&from);
                if waiting.is_empty() {
                    let (req, _) = self.reads.remove(&read).expect("just seen");
                    let value = Some(self.balance);
                    ctx.reply(&req, ClientReply::ReadOk { value });
                }
            }
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        if matches!(req.op, ClientOp::Read { .. }) && self.reads.len() < PENDING_MAX {
            let read = self.next_read;
            self.next_read += 1;
            ctx.broadcast(Msg::Flush { read });
            let waiting = self.peers.iter().cloned().collect();
            self.reads.insert(read, (req, waiting));
            return;
        }
        let reply = match &req.op {
            ClientOp::Transfer { to, amount } => {
                if !self.peers.contains(to) {
                    let text = format!("{to} is no other node of the bank");
                    refuse(ErrorCode::MalformedRequest, text)
                } else if *amount > self.balance {
                    let text = format!("insufficient funds: {} < {amount}", self.balance);
                    refuse(ErrorCode::PreconditionFailed, text)
                } else {
                    self.balance -= amount;
                    let seq = self.sent.entry(to.clone()).or_default();
                    *seq += 1;
                    let seq = *seq;
                    ctx.send(
                        to,
                        Msg::Transfer {
                            seq,
                            amount: *amount,
                        },
                    );
                    ClientReply::TransferOk { seq }
                }
            }
            ClientOp::Snapshot => match self.cuts.fresh_id(&self.id) {
                Ok(id) => {
                    assert!(!self.known(&id), "snapshot ids are fresh");
                    self.record(&id, None, ctx);
                    ClientReply::SnapshotOk { id }
                }
                Err(refusal) => refusal,
            },
            ClientOp::Read { .. } => refuse(
                ErrorCode::TemporarilyUnavailable,
                format!("{PENDING_MAX} reads already wait here"),
            ),
            other => not_supported(other),
        };
        ctx.reply(&req, reply);
    }

    fn on_timer(&mut self, _timer: (), _ctx: &mut Ctx<Self>) {}
}
