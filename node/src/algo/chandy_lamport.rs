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

/// A snapshot this node has recorded its state for, with the channels still open.
#[derive(Debug, Default)]
struct Recording {
    open: BTreeMap<NodeId, Channel>,
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
    next_snapshot: u64,
    recording: BTreeMap<String, Recording>,
    done: BTreeSet<String>,
    done_order: VecDeque<String>,
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
        self.recording.len() + self.late.len()
    }

    fn known(&self, snapshot: &str) -> bool {
        self.recording.contains_key(snapshot)
            || self.done.contains(snapshot)
            || self.late.contains_key(snapshot)
    }

    /// Records this node's state for `snapshot`, with the channel from `first` (the first
    /// marker's sender; none at the initiator) already closed empty; sends the markers.
    fn record(&mut self, snapshot: &str, first: Option<&str>, ctx: &mut Ctx<Self>) {
        assert!(!self.recording.contains_key(snapshot), "recorded twice");
        ctx.report(Report::SnapshotLocal {
            id: snapshot.to_string(),
            balance: self.balance,
            sent: self.sent.clone(),
            received: self.received.clone(),
            received_max: self.received_max.clone(),
        });
        let mut rec = Recording::default();
        for peer in &self.peers {
            if Some(peer.as_str()) != first {
                rec.open.insert(peer.clone(), Channel::default());
            }
        }
        self.recording.insert(snapshot.to_string(), rec);
        if let Some(from) = first {
            report_channel(snapshot, from, &Channel::default(), ctx);
        }
        let marker = Msg::Marker {
            snapshot: snapshot.to_string(),
        };
        ctx.broadcast(marker);
        self.finish_if_closed(snapshot);
    }

    fn finish_if_closed(&mut self, snapshot: &str) {
        if self
            .recording
            .get(snapshot)
            .is_some_and(|r| r.open.is_empty())
        {
            self.recording.remove(snapshot);
            self.done.insert(snapshot.to_string());
            self.done_order.push_back(snapshot.to_string());
            if self.done_order.len() > DONE_MAX {
                let old = self.done_order.pop_front().expect("over the bound");
                self.done.remove(&old);
            }
        }
    }

    fn on_transfer(&mut self, from: &str, seq: u64, amount: u64, ctx: &mut Ctx<Self>) {
        self.balance += amount;
        *self.received.entry(from.to_string()).or_default() += 1;
        let max = self.received_max.entry(from.to_string()).or_default();
        *max = (*max).max(seq);
        for rec in self.recording.values_mut() {
            if let Some(ch) = rec.open.get_mut(from) {
                if !self.no_channel_state {
                    ch.count += 1;
                    ch.amount += amount;
                    if ch.seqs.len() < SNAPSHOT_SEQS_MAX {
                        ch.seqs.push(seq);
                    }
                }
            }
        }
        // `late-record`: the transfer behind the marker has been applied; record now.
        for (snapshot, first) in std::mem::take(&mut self.late) {
            self.record(&snapshot, Some(&first), ctx);
        }
    }

    fn on_marker(&mut self, from: &str, snapshot: String, ctx: &mut Ctx<Self>) {
        if self.done.contains(&snapshot) {
            return;
        }
        if let Some(rec) = self.recording.get_mut(&snapshot) {
            let Some(ch) = rec.open.remove(from) else {
                return; // a second marker on a closed channel: only a duplicate does this
            };
            report_channel(&snapshot, from, &ch, ctx);
            self.finish_if_closed(&snapshot);
            return;
        }
        if self.late_record {
            if let Some(first) = self.late.remove(&snapshot) {
                // A second marker before any transfer: record now, then close this one.
                self.record(&snapshot, Some(&first), ctx);
                return self.on_marker(from, snapshot, ctx);
            }
            self.late.insert(snapshot, from.to_string());
            return;
        }
        self.record(&snapshot, Some(from), ctx);
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

fn refuse(code: ErrorCode, text: String) -> ClientReply {
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
            next_snapshot: 1,
            recording: BTreeMap::new(),
            done: BTreeSet::new(),
            done_order: VecDeque::new(),
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
            ClientOp::Snapshot if self.recording.len() >= SNAPSHOTS_MAX => refuse(
                ErrorCode::TemporarilyUnavailable,
                format!("{SNAPSHOTS_MAX} snapshots already in progress here"),
            ),
            ClientOp::Snapshot => {
                let id = format!("{}#{}", self.id, self.next_snapshot);
                self.next_snapshot += 1;
                assert!(!self.known(&id), "snapshot ids are fresh");
                self.record(&id, None, ctx);
                ClientReply::SnapshotOk { id }
            }
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
