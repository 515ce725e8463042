//! Waits across nodes, and deadlock detection on a Chandy-Lamport snapshot.
//!
//! A client's `wait {on: j}` blocks the asked node `i` on `j`: `i` sends `j` a `request`
//! and stays blocked until `j` answers with a `grant`. A node grants a request at once
//! when it is not blocked itself, else when it is granted in turn (it queues the
//! requesters meanwhile). A blocked node refuses another `wait` (error 22, definite). So
//! `i → j` is an edge of the wait-for graph from `i`'s request to the grant's arrival,
//! and a cycle of edges is a deadlock: every node on it waits for the next, none is free
//! to grant, and it stands forever. A `read` answers whom the node waits for (the number
//! of `nK`, or null).
//!
//! Detection is the seed's use of a global snapshot for a stable property (Chandy and
//! Lamport, 1985, §5; the seed's lecture notes, "detecting stable properties such as
//! deadlock"): a `snapshot` at a node starts the marker algorithm of
//! [`super::chandy_lamport`] (the same [`Cuts`]). A node records whom it waits for; a
//! channel's record is whether a `grant` arrived on it between the receiver's recording
//! and the sender's marker. When its part is over the node sends this `piece` to the
//! initiator, which builds the cut's wait-for graph: `i → j` when `i` recorded waiting
//! for `j` and no grant from `j` was on the channel `j → i`. A grant on the wire at the
//! cut is a wait already answered. On a consistent cut a cycle in that graph is a real
//! deadlock, and a deadlock that stood when the snapshot began is in it; the initiator
//! reports the cycle it found, or none (`deadlock {id, cycle, waits}`).
//!
//! Mutant (`--bug`):
//! - `local-view`: the initiator builds the graph from the nodes' recorded states alone
//!   and ignores the grants recorded on the channels, so a wait whose grant was on the
//!   wire looks as if it still stood: a cycle through it is a phantom deadlock.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::{ClientOp, ClientReply};
use proto::{ErrorCode, Report};
use serde::{Deserialize, Serialize};

use super::chandy_lamport::{refuse, Cuts, MarkerStep, SNAPSHOTS_MAX};
use super::{check_bugs, check_params, not_supported, Algorithm, ClientReq, Config, Ctx, NodeId};

/// Messages between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// The sender waits for the receiver until it is granted.
    Request,
    /// The receiver's wait for the sender is over.
    Grant,
    /// Chandy-Lamport's marker of snapshot `snapshot`.
    Marker {
        /// The snapshot's id.
        snapshot: String,
    },
    /// One node's part of snapshot `snapshot`, sent to its initiator.
    Piece {
        /// The snapshot's id.
        snapshot: String,
        /// Whom the sender waited for when it recorded.
        waits_for: Option<NodeId>,
        /// The peers whose grant the sender recorded on their channel.
        granted_by: BTreeSet<NodeId>,
    },
}

/// One incoming channel being recorded: whether a grant arrived on it.
#[derive(Debug, Default, Clone, Copy)]
struct Channel {
    grant: bool,
}

/// A node's part of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    /// Whom the node waited for when it recorded.
    pub waits_for: Option<NodeId>,
    /// The peers whose grant it recorded on their channel.
    pub granted_by: BTreeSet<NodeId>,
}

/// The first cycle of the wait-for graph `waits` (each node waits for at most one),
/// starting at its smallest node; empty when there is none.
pub fn find_cycle(waits: &BTreeMap<NodeId, NodeId>) -> Vec<NodeId> {
    for start in waits.keys() {
        let mut path: Vec<&NodeId> = vec![start];
        let mut at = start;
        // A walk of more than `waits.len()` steps has repeated a node.
        while let Some(next) = waits.get(at) {
            if let Some(pos) = path.iter().position(|n| *n == next) {
                let cycle = &path[pos..];
                let low = (0..cycle.len())
                    .min_by_key(|k| cycle[*k])
                    .expect("a cycle has a node");
                return (0..cycle.len())
                    .map(|k| cycle[(low + k) % cycle.len()].clone())
                    .collect();
            }
            if path.len() > waits.len() {
                break;
            }
            path.push(next);
            at = next;
        }
    }
    Vec::new()
}

/// A node that waits for others and detects deadlocks.
#[derive(Debug)]
pub struct WaitFor {
    id: NodeId,
    peers: Vec<NodeId>,
    nodes: usize,
    waits_for: Option<NodeId>,
    /// Requests that came while this node was blocked, granted when it is freed.
    queued: BTreeSet<NodeId>,
    cuts: Cuts<Channel>,
    /// This node's recorded part of each snapshot still in progress here.
    recorded: BTreeMap<String, Piece>,
    /// Pieces of this node's own snapshots, by snapshot number, at most
    /// [`SNAPSHOTS_MAX`] snapshots (the oldest is dropped).
    assembling: BTreeMap<u64, BTreeMap<NodeId, Piece>>,
    local_view: bool,
}

impl WaitFor {
    /// Whom this node waits for now.
    pub fn waits_for(&self) -> Option<&str> {
        self.waits_for.as_deref()
    }

    /// The cut's wait-for graph from every node's piece.
    fn graph(&self, pieces: &BTreeMap<NodeId, Piece>) -> BTreeMap<NodeId, NodeId> {
        pieces
            .iter()
            .filter_map(|(n, p)| {
                let on = p.waits_for.as_ref()?;
                let answered = p.granted_by.contains(on) && !self.local_view;
                (!answered).then(|| (n.clone(), on.clone()))
            })
            .collect()
    }

    fn record(&mut self, snapshot: &str, first: Option<&str>, ctx: &mut Ctx<Self>) {
        let piece = Piece {
            waits_for: self.waits_for.clone(),
            granted_by: BTreeSet::new(),
        };
        self.recorded.insert(snapshot.to_string(), piece);
        let finished = self.cuts.start(snapshot, &self.peers, first);
        ctx.broadcast(Msg::Marker {
            snapshot: snapshot.to_string(),
        });
        if finished {
            self.send_piece(snapshot, ctx);
        }
    }

    fn send_piece(&mut self, snapshot: &str, ctx: &mut Ctx<Self>) {
        let piece = self.recorded.remove(snapshot).expect("recorded first");
        let initiator = snapshot.split('#').next().unwrap_or_default();
        if initiator == self.id {
            let id = self.id.clone();
            self.on_piece(&id, snapshot, piece, ctx);
        } else {
            let Piece {
                waits_for,
                granted_by,
            } = piece;
            let msg = Msg::Piece {
                snapshot: snapshot.to_string(),
                waits_for,
                granted_by,
            };
            ctx.send(initiator, msg);
        }
    }

    fn on_piece(&mut self, from: &str, snapshot: &str, piece: Piece, ctx: &mut Ctx<Self>) {
        let number = snapshot.rsplit('#').next().and_then(|n| n.parse().ok());
        let Some(number) = number else {
            return;
        };
        let pieces = self.assembling.entry(number).or_default();
        pieces.insert(from.to_string(), piece);
        if pieces.len() == self.nodes {
            let pieces = self.assembling.remove(&number).expect("just seen");
            let waits = self.graph(&pieces);
            ctx.report(Report::Deadlock {
                id: snapshot.to_string(),
                cycle: find_cycle(&waits),
                waits,
            });
        }
        while self.assembling.len() > SNAPSHOTS_MAX {
            self.assembling.pop_first();
        }
    }

    fn on_marker(&mut self, from: &str, snapshot: String, ctx: &mut Ctx<Self>) {
        match self.cuts.on_marker(&snapshot, from) {
            MarkerStep::Ignore => {}
            MarkerStep::First => self.record(&snapshot, Some(from), ctx),
            MarkerStep::Closed { record, finished } => {
                if record.grant {
                    let piece = self.recorded.get_mut(&snapshot).expect("recording");
                    piece.granted_by.insert(from.to_string());
                }
                if finished {
                    self.send_piece(&snapshot, ctx);
                }
            }
        }
    }

    fn on_grant(&mut self, from: &str, ctx: &mut Ctx<Self>) {
        for ch in self.cuts.open_from(from) {
            ch.grant = true;
        }
        if self.waits_for.as_deref() != Some(from) {
            return; // only a duplicate grants a wait that is over
        }
        self.waits_for = None;
        for requester in std::mem::take(&mut self.queued) {
            ctx.send(&requester, Msg::Grant);
        }
    }
}

/// The number of node id `nK`, as a `read` answers it.
fn number_of(id: &str) -> Option<u64> {
    id.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

impl Algorithm for WaitFor {
    type Msg = Msg;
    type Timer = ();
    type Record = ();

    const BUGS: &'static [&'static str] = &["local-view"];

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, &[])?;
        Ok(WaitFor {
            id: config.id.clone(),
            peers: config.peers().cloned().collect(),
            nodes: config.node_ids.len(),
            waits_for: None,
            queued: BTreeSet::new(),
            cuts: Cuts::default(),
            recorded: BTreeMap::new(),
            assembling: BTreeMap::new(),
            local_view: config.has_bug("local-view"),
        })
    }

    fn on_start(&mut self, _recovered: Vec<()>, _ctx: &mut Ctx<Self>) {}

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Request if self.waits_for.is_none() => ctx.send(&from, Msg::Grant),
            Msg::Request => {
                self.queued.insert(from);
            }
            Msg::Grant => self.on_grant(&from, ctx),
            Msg::Marker { snapshot } => self.on_marker(&from, snapshot, ctx),
            Msg::Piece {
                snapshot,
                waits_for,
                granted_by,
            } => {
                let piece = Piece {
                    waits_for,
                    granted_by,
                };
                self.on_piece(&from, &snapshot, piece, ctx);
            }
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        let reply = match &req.op {
            ClientOp::Wait { on } if !self.peers.contains(on) => refuse(
                ErrorCode::MalformedRequest,
                format!("{on} is no other node"),
            ),
            ClientOp::Wait { .. } if self.waits_for.is_some() => refuse(
                ErrorCode::PreconditionFailed,
                format!(
                    "{} already waits for {}",
                    self.id,
                    self.waits_for.as_deref().unwrap_or("?")
                ),
            ),
            ClientOp::Wait { on } => {
                self.waits_for = Some(on.clone());
                ctx.send(on, Msg::Request);
                ClientReply::WaitOk
            }
            ClientOp::Read { .. } => ClientReply::ReadOk {
                value: self.waits_for.as_deref().and_then(number_of),
            },
            ClientOp::Snapshot => match self.cuts.fresh_id(&self.id) {
                Ok(id) => {
                    self.record(&id, None, ctx);
                    ClientReply::SnapshotOk { id }
                }
                Err(refusal) => refusal,
            },
            other => not_supported(other),
        };
        ctx.reply(&req, reply);
    }

    fn on_timer(&mut self, _timer: (), _ctx: &mut Ctx<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<NodeId, NodeId> {
        edges
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_cycle_is_found_and_starts_at_its_smallest_node() {
        let waits = graph(&[("n1", "n3"), ("n3", "n4"), ("n4", "n2"), ("n2", "n4")]);
        assert_eq!(find_cycle(&waits), ["n2", "n4"]);
        let waits = graph(&[("n3", "n1"), ("n1", "n2"), ("n2", "n3")]);
        assert_eq!(find_cycle(&waits), ["n1", "n2", "n3"]);
    }

    #[test]
    fn a_chain_is_no_cycle() {
        let waits = graph(&[("n1", "n2"), ("n2", "n3"), ("n4", "n3")]);
        assert!(find_cycle(&waits).is_empty());
        assert!(find_cycle(&BTreeMap::new()).is_empty());
    }
}
