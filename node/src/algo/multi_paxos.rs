//! `multi-paxos`: a replicated key-value store on a log of Paxos instances, one per slot,
//! with a distinguished leader (Lamport, *Paxos Made Simple* §3; van Renesse & Altinbuken,
//! *Paxos Made Moderately Complex*).
//!
//! Seed 003 ends by building a replicated state machine from a sequence of consensus
//! instances: run one synod per log position and apply the chosen commands in order.
//! Running phase 1 for every slot would cost two round trips per command, so a leader
//! runs **phase 1 once for all slots from its first unchosen one on**: a `prepare` with
//! ballot `b` and `from` is a promise request for every slot `>= from`, and each acceptor
//! answers with everything it has accepted there. With promises from a majority the
//! leader knows, for each of those slots, the only value that may have been chosen (the
//! highest-ballot accepted one in the quorum), and:
//!
//! - **re-proposes** that value in its own ballot for every slot that has one;
//! - **fills every hole** below the highest such slot with a no-op, since a slot nobody in
//!   the quorum accepted was chosen by nobody, and the log cannot be applied past a hole;
//! - then runs **phase 2 alone** for each new command, in the next free slot.
//!
//! A slot is chosen when a majority accepted it in one ballot; the leader tells the others
//! ([`Msg::Decide`]), and a node that missed some asks for them ([`Msg::Learn`]) when the
//! leader's heartbeat shows it is behind. Every node applies chosen commands in slot
//! order to its [`Kv`]; the node that took a client request answers it when it applies
//! its slot, so reads go through the log like writes.
//!
//! **Batching and group commit**: a leader does not send one `accept` per slot: it
//! gives each new command its slot at once and, `batch_ms` (default 2 ms; `batch_us` sets
//! it in microseconds) after the first one, sends one [`Msg::Accept`] with every slot
//! assigned since (at most [`BATCH_SLOTS_MAX`] per message). An acceptor persists them
//! all and syncs once before its one [`Msg::Accepted`]; the leader decides every slot
//! that message completes in one [`Msg::Decide`]. `batch_ms=0` (or `batch_us=0`) turns
//! it off: one `accept`, and one sync per acceptor, per slot.
//!
//! **Leadership** is only a liveness matter: a node that hears no heartbeat from a ballot
//! at least as high as its promise for a randomized election timeout runs phase 1 with a
//! higher round; a `nack` (someone promised higher) sends a leader or candidate back to
//! following. Two leaders at once are safe, because the invariant is the synod's: **if a
//! value is chosen in slot `s` at ballot `b`, every higher ballot that reaches phase 2 in
//! `s` proposes it** — the new leader's promise quorum meets the accepting quorum of `b`.
//! It rests on promises and acceptances being synced before the reply leaves, and on a
//! node never reusing a round after a restart (each round is synced before its `prepare`).
//!
//! **Mutants** (`--bug`):
//! - `skip-phase1`: a node that times out becomes leader with a higher ballot at once,
//!   without asking anyone what they accepted, and proposes its commands in slots it
//!   believes free: a slot chosen behind its back is chosen again with another command.
//! - `no-hole-fill`: a new leader re-proposes what its promises report but leaves the
//!   slots nobody accepted empty; no node can apply past the hole, so the store stops
//!   answering (liveness only).
//! - `leader-local-read`: the leader answers reads from its own state at once, without a
//!   slot: a deposed leader cut off by a partition answers with overwritten values.
//!
//! No log compaction: acceptors keep every slot for the run, and a `promise` carries at
//! most [`PROMISE_SLOTS_MAX`] slots.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::Ballot;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::raft::kv::{batch_us, timing, Command, Forwarded, Intake, Kv, Waiting};
use super::{check_bugs, check_params, Algorithm, ClientReq, Config, Ctx, NodeId};

/// Most accepted slots a `promise` reports (a frame stays far below `FRAME_BYTES_MAX`).
pub const PROMISE_SLOTS_MAX: usize = 4096;
/// Most chosen slots one `decide` carries.
pub const DECIDE_SLOTS_MAX: usize = 64;
/// Most unchosen slots a leader re-sends per heartbeat.
pub const RESEND_SLOTS_MAX: usize = 64;
/// Most slots one `accept` carries.
pub const BATCH_SLOTS_MAX: usize = 64;

const PARAMS: &[&str] = &["election_ms", "heartbeat_ms", "batch_ms", "batch_us"];

/// A command an acceptor accepted in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slotted {
    /// The slot.
    pub slot: u64,
    /// The ballot it was accepted in.
    pub ballot: Ballot,
    /// The command.
    pub command: Command,
}

/// Node-to-node messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Phase 1a for every slot `>= from`.
    Prepare {
        /// The leader's ballot.
        ballot: Ballot,
        /// The first slot it does not know chosen.
        from: u64,
    },
    /// Phase 1b: promised, and what I accepted in slots `>= from`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// Accepted commands, slot order.
        accepted: Vec<Slotted>,
    },
    /// Phase 2a, for one or more slots.
    Accept {
        /// The ballot.
        ballot: Ballot,
        /// `(slot, command)` pairs, slot order.
        slots: Vec<(u64, Command)>,
    },
    /// Phase 2b: accepted (and synced) every slot of one `accept`.
    Accepted {
        /// The ballot.
        ballot: Ballot,
        /// The slots.
        slots: Vec<u64>,
    },
    /// Refused: the acceptor promised a higher ballot.
    Nack {
        /// The refused ballot.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
    /// These slots are chosen.
    Decide {
        /// `(slot, command)` pairs.
        chosen: Vec<(u64, Command)>,
    },
    /// The leader is alive; it has applied every slot below `applied`.
    Heartbeat {
        /// Its ballot.
        ballot: Ballot,
        /// Its count of applied slots.
        applied: u64,
    },
    /// Send me the chosen slots from `from` on.
    Learn {
        /// The first slot the sender lacks.
        from: u64,
    },
    /// A client request taken by another node.
    Forward(Forwarded),
}

/// Named timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// No heartbeat from a leader: run phase 1.
    Election,
    /// Leader: heartbeat and re-send unchosen slots.
    Heartbeat,
    /// Leader: send the slots assigned since the last batch.
    Batch,
}

/// Durable records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// This node started a ballot of this round; it never uses it again.
    Round {
        /// The round.
        round: u64,
    },
    /// The acceptor promised `ballot` (for every slot).
    Promised {
        /// The ballot.
        ballot: Ballot,
    },
    /// The acceptor accepted `command` in `slot` at `ballot`.
    Accepted {
        /// The slot.
        slot: u64,
        /// The ballot.
        ballot: Ballot,
        /// The command.
        command: Command,
    },
    /// The node learned that `slot` chose `command`.
    Chosen {
        /// The slot.
        slot: u64,
        /// The command.
        command: Command,
    },
}

#[derive(Debug)]
enum Role {
    Follower,
    /// Phase 1 in progress.
    Candidate {
        ballot: Ballot,
        from: u64,
        promises: BTreeMap<NodeId, Vec<Slotted>>,
    },
    /// Phase 2 for each new slot.
    Leader {
        ballot: Ballot,
        next_slot: u64,
        /// Unchosen slots: the command and who accepted it in this ballot.
        open: BTreeMap<u64, (Command, BTreeSet<NodeId>)>,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Bugs {
    skip_phase1: bool,
    no_hole_fill: bool,
    leader_local_read: bool,
}

/// A multi-Paxos replica of the key-value store.
pub struct MultiPaxos {
    id: NodeId,
    majority: usize,
    bugs: Bugs,
    election_ms: u64,
    heartbeat_ms: u64,
    batch_us: u64,
    // Durable.
    round_max: u64,
    promised: Option<Ballot>,
    accepted: BTreeMap<u64, (Ballot, Command)>,
    chosen: BTreeMap<u64, Command>,
    // Volatile.
    role: Role,
    leader: Option<NodeId>,
    applied: u64,
    kv: Kv,
    waiting: Waiting,
    /// Leader: slots assigned but not yet sent in an `accept` (the batch).
    unsent: Vec<u64>,
}

impl MultiPaxos {
    /// Whether this node believes it leads.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// The leader's ballot, if it leads.
    pub fn ballot(&self) -> Option<&Ballot> {
        match &self.role {
            Role::Leader { ballot, .. } => Some(ballot),
            _ => None,
        }
    }

    /// The chosen slots this node knows.
    pub fn chosen(&self) -> &BTreeMap<u64, Command> {
        &self.chosen
    }

    /// Slots applied so far (every slot below this one).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    fn reset_election(&mut self, ctx: &mut Ctx<Self>) {
        let ms = self.election_ms + ctx.rng().gen_range(0..=self.election_ms);
        ctx.set_timer(Timer::Election, ms);
    }

    fn my_ballot(&self) -> Option<&Ballot> {
        match &self.role {
            Role::Candidate { ballot, .. } | Role::Leader { ballot, .. } => Some(ballot),
            Role::Follower => None,
        }
    }

    fn step_down(&mut self, ctx: &mut Ctx<Self>) {
        if self.is_leader() {
            ctx.cancel_timer(Timer::Heartbeat);
            ctx.cancel_timer(Timer::Batch);
        }
        self.unsent.clear();
        self.role = Role::Follower;
        self.leader = None;
        self.reset_election(ctx);
    }

    fn start_phase1(&mut self, ctx: &mut Ctx<Self>) {
        self.round_max += 1;
        let ballot = Ballot {
            round: self.round_max,
            node: self.id.clone(),
        };
        ctx.persist(Record::Round {
            round: self.round_max,
        });
        ctx.sync();
        self.leader = None;
        self.reset_election(ctx);
        if self.bugs.skip_phase1 {
            // Leads at once, in slots it believes free.
            self.promise(&ballot, ctx);
            ctx.sync();
            let next_slot = self.next_free_slot();
            self.become_leader(ballot, next_slot, BTreeMap::new(), ctx);
            return;
        }
        let from = self.applied;
        self.role = Role::Candidate {
            ballot: ballot.clone(),
            from,
            promises: BTreeMap::new(),
        };
        ctx.send_all(Msg::Prepare { ballot, from });
    }

    fn next_free_slot(&self) -> u64 {
        let chosen = self.chosen.keys().next_back().map_or(0, |s| s + 1);
        let accepted = self.accepted.keys().next_back().map_or(0, |s| s + 1);
        chosen.max(accepted).max(self.applied)
    }

    /// The acceptor promises `ballot` (persisted, not yet synced).
    fn promise(&mut self, ballot: &Ballot, ctx: &mut Ctx<Self>) {
        if self.promised.as_ref() != Some(ballot) {
            self.promised = Some(ballot.clone());
            ctx.persist(Record::Promised {
                ballot: ballot.clone(),
            });
        }
        self.round_max = self.round_max.max(ballot.round);
        if self.my_ballot().is_some_and(|mine| mine < ballot) {
            self.step_down(ctx);
        }
    }

    fn become_leader(
        &mut self,
        ballot: Ballot,
        next_slot: u64,
        proposals: BTreeMap<u64, Command>,
        ctx: &mut Ctx<Self>,
    ) {
        ctx.cancel_timer(Timer::Election);
        self.leader = Some(self.id.clone());
        let open = proposals
            .iter()
            .map(|(s, c)| (*s, (c.clone(), BTreeSet::new())))
            .collect();
        self.role = Role::Leader {
            ballot: ballot.clone(),
            next_slot,
            open,
        };
        self.unsent.clear();
        send_accepts(&ballot, proposals.into_iter().collect(), ctx);
        self.heartbeat(ctx);
    }

    /// Leader: sends the batch of slots assigned since the last one.
    fn flush(&mut self, ctx: &mut Ctx<Self>) {
        ctx.cancel_timer(Timer::Batch);
        let unsent = std::mem::take(&mut self.unsent);
        let Role::Leader { ballot, open, .. } = &self.role else {
            return;
        };
        let slots = unsent
            .into_iter()
            .filter_map(|slot| open.get(&slot).map(|(c, _)| (slot, c.clone())))
            .collect();
        send_accepts(ballot, slots, ctx);
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<Self>) {
        let Role::Leader { ballot, open, .. } = &self.role else {
            return;
        };
        ctx.broadcast(Msg::Heartbeat {
            ballot: ballot.clone(),
            applied: self.applied,
        });
        // Slots still in the batch go out with it, not here.
        let resend = open
            .iter()
            .filter(|(slot, _)| !self.unsent.contains(slot))
            .take(RESEND_SLOTS_MAX)
            .map(|(slot, (command, _))| (*slot, command.clone()))
            .collect();
        send_accepts(ballot, resend, ctx);
        ctx.set_timer(Timer::Heartbeat, self.heartbeat_ms);
    }

    /// Records that `slot` chose `command` (persisting it unless it was read back from
    /// disk) and applies every slot that is now contiguous.
    fn learn(&mut self, slot: u64, command: Command, persist: bool, ctx: &mut Ctx<Self>) {
        if self.chosen.contains_key(&slot) || slot < self.applied {
            return;
        }
        if persist {
            ctx.persist(Record::Chosen {
                slot,
                command: command.clone(),
            });
        }
        self.chosen.insert(slot, command);
        if let Role::Leader { open, .. } = &mut self.role {
            open.remove(&slot);
        }
        while let Some(command) = self.chosen.get(&self.applied).cloned() {
            self.applied += 1;
            let reply = self.kv.apply(&command);
            self.waiting.answer(&self.id, &command, reply, ctx);
        }
    }

    fn submit(&mut self, command: Command, hops: u32, ctx: &mut Ctx<Self>) {
        if let Role::Leader {
            ballot,
            next_slot,
            open,
        } = &mut self.role
        {
            let slot = *next_slot;
            *next_slot += 1;
            open.insert(slot, (command.clone(), BTreeSet::new()));
            if self.batch_us == 0 {
                send_accepts(ballot, vec![(slot, command)], ctx);
                return;
            }
            if self.unsent.is_empty() {
                ctx.set_timer_us(Timer::Batch, self.batch_us);
            }
            self.unsent.push(slot);
            if self.unsent.len() >= BATCH_SLOTS_MAX {
                self.flush(ctx);
            }
            return;
        }
        let leader = self.leader.as_ref();
        self.waiting
            .to_leader(&self.id, leader, command, hops, Msg::Forward, ctx);
    }

    fn on_prepare(&mut self, from: NodeId, ballot: Ballot, first: u64, ctx: &mut Ctx<Self>) {
        if self.promised.as_ref().is_some_and(|p| *p > ballot) {
            let promised = self.promised.clone().expect("checked");
            ctx.send(&from, Msg::Nack { ballot, promised });
            return;
        }
        self.promise(&ballot, ctx);
        ctx.sync();
        let accepted = self
            .accepted
            .range(first..)
            .take(PROMISE_SLOTS_MAX)
            .map(|(slot, (b, c))| Slotted {
                slot: *slot,
                ballot: b.clone(),
                command: c.clone(),
            })
            .collect();
        ctx.send(&from, Msg::Promise { ballot, accepted });
    }

    fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Vec<Slotted>,
        ctx: &mut Ctx<Self>,
    ) {
        let Role::Candidate {
            ballot: mine,
            from: first,
            promises,
        } = &mut self.role
        else {
            return;
        };
        if *mine != ballot {
            return;
        }
        promises.insert(from, accepted);
        if promises.len() < self.majority {
            return;
        }
        let first = *first;
        // Per slot, the highest-ballot accepted command in the quorum.
        let mut best: BTreeMap<u64, (Ballot, Command)> = BTreeMap::new();
        for s in promises.values().flatten() {
            if best.get(&s.slot).is_none_or(|(b, _)| *b < s.ballot) {
                best.insert(s.slot, (s.ballot.clone(), s.command.clone()));
            }
        }
        // Every slot up to the last one anybody here knows of: the quorum's, and this
        // node's own accepted or chosen slots (a slot it accepted that the quorum did
        // not report was chosen by nobody, and would be a hole for good if skipped).
        let top = best
            .keys()
            .next_back()
            .map_or(first, |s| s + 1)
            .max(self.next_free_slot());
        let mut proposals = BTreeMap::new();
        for slot in first..top {
            if self.chosen.contains_key(&slot) {
                continue;
            }
            match best.remove(&slot) {
                Some((_, command)) => {
                    proposals.insert(slot, command);
                }
                None if !self.bugs.no_hole_fill => {
                    proposals.insert(slot, Command::noop());
                }
                None => {}
            }
        }
        self.become_leader(ballot, top, proposals, ctx);
    }

    fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slots: Vec<(u64, Command)>,
        ctx: &mut Ctx<Self>,
    ) {
        if self.promised.as_ref().is_some_and(|p| *p > ballot) {
            let promised = self.promised.clone().expect("checked");
            ctx.send(&from, Msg::Nack { ballot, promised });
            return;
        }
        self.promise(&ballot, ctx);
        if from != self.id {
            self.leader = Some(from.clone());
            if !self.is_leader() {
                self.reset_election(ctx);
            }
        }
        let mut accepted = Vec::with_capacity(slots.len());
        for (slot, command) in slots {
            ctx.persist(Record::Accepted {
                slot,
                ballot: ballot.clone(),
                command: command.clone(),
            });
            self.accepted.insert(slot, (ballot.clone(), command));
            accepted.push(slot);
        }
        ctx.sync();
        ctx.send(
            &from,
            Msg::Accepted {
                ballot,
                slots: accepted,
            },
        );
    }

    fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slots: Vec<u64>, ctx: &mut Ctx<Self>) {
        let Role::Leader {
            ballot: mine, open, ..
        } = &mut self.role
        else {
            return;
        };
        if *mine != ballot {
            return;
        }
        let mut chosen = Vec::new();
        for slot in slots {
            let Some((command, voters)) = open.get_mut(&slot) else {
                continue;
            };
            voters.insert(from.clone());
            if voters.len() >= self.majority {
                chosen.push((slot, command.clone()));
            }
        }
        for (slot, command) in &chosen {
            self.learn(*slot, command.clone(), true, ctx);
        }
        for part in chosen.chunks(DECIDE_SLOTS_MAX) {
            ctx.broadcast(Msg::Decide {
                chosen: part.to_vec(),
            });
        }
    }
}

/// Sends `slots` in `ballot` to every node (this one too), [`BATCH_SLOTS_MAX`] per
/// `accept`.
fn send_accepts(ballot: &Ballot, slots: Vec<(u64, Command)>, ctx: &mut Ctx<MultiPaxos>) {
    for part in slots.chunks(BATCH_SLOTS_MAX) {
        ctx.send_all(Msg::Accept {
            ballot: ballot.clone(),
            slots: part.to_vec(),
        });
    }
}

impl Algorithm for MultiPaxos {
    type Msg = Msg;
    type Timer = Timer;
    type Record = Record;

    const BUGS: &'static [&'static str] = &["skip-phase1", "no-hole-fill", "leader-local-read"];

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, PARAMS)?;
        let (heartbeat_ms, election_ms) = timing(config)?;
        Ok(MultiPaxos {
            id: config.id.clone(),
            majority: config.majority(),
            bugs: Bugs {
                skip_phase1: config.has_bug("skip-phase1"),
                no_hole_fill: config.has_bug("no-hole-fill"),
                leader_local_read: config.has_bug("leader-local-read"),
            },
            election_ms,
            heartbeat_ms,
            batch_us: batch_us(config)?,
            round_max: 0,
            promised: None,
            accepted: BTreeMap::new(),
            chosen: BTreeMap::new(),
            role: Role::Follower,
            leader: None,
            applied: 0,
            kv: Kv::default(),
            waiting: Waiting::default(),
            unsent: Vec::new(),
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        let mut chosen = Vec::new();
        for record in recovered {
            match record {
                Record::Round { round } => self.round_max = self.round_max.max(round),
                Record::Promised { ballot } => {
                    assert!(
                        self.promised.as_ref().is_none_or(|p| *p <= ballot),
                        "promises only grow on disk"
                    );
                    self.round_max = self.round_max.max(ballot.round);
                    self.promised = Some(ballot);
                }
                Record::Accepted {
                    slot,
                    ballot,
                    command,
                } => {
                    self.accepted.insert(slot, (ballot, command));
                }
                Record::Chosen { slot, command } => chosen.push((slot, command)),
            }
        }
        for (slot, command) in chosen {
            self.learn(slot, command, false, ctx);
        }
        self.reset_election(ctx);
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::Prepare {
                ballot,
                from: first,
            } => self.on_prepare(from, ballot, first, ctx),
            Msg::Promise { ballot, accepted } => self.on_promise(from, ballot, accepted, ctx),
            Msg::Accept { ballot, slots } => self.on_accept(from, ballot, slots, ctx),
            Msg::Accepted { ballot, slots } => self.on_accepted(from, ballot, slots, ctx),
            Msg::Nack { ballot, promised } => {
                self.round_max = self.round_max.max(promised.round);
                if self.my_ballot() == Some(&ballot) {
                    self.step_down(ctx);
                }
            }
            Msg::Decide { chosen } => {
                for (slot, command) in chosen {
                    self.learn(slot, command, true, ctx);
                }
            }
            Msg::Heartbeat { ballot, applied } => {
                if self.promised.as_ref().is_some_and(|p| *p > ballot) {
                    return;
                }
                if self.my_ballot().is_some_and(|mine| *mine < ballot) {
                    self.step_down(ctx);
                }
                if !self.is_leader() {
                    self.leader = Some(from.clone());
                    self.reset_election(ctx);
                }
                if applied > self.applied {
                    ctx.send(&from, Msg::Learn { from: self.applied });
                }
            }
            Msg::Learn { from: first } => {
                let chosen: Vec<(u64, Command)> = self
                    .chosen
                    .range(first..)
                    .take(DECIDE_SLOTS_MAX)
                    .map(|(s, c)| (*s, c.clone()))
                    .collect();
                if !chosen.is_empty() {
                    ctx.send(&from, Msg::Decide { chosen });
                }
            }
            Msg::Forward(f) => self.submit(f.command, f.hops, ctx),
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        let local_read = self.bugs.leader_local_read && self.is_leader();
        match self
            .waiting
            .intake(&req, &self.id, &mut self.kv, local_read)
        {
            Intake::Reply(reply) => ctx.reply(&req, reply),
            Intake::Log(command) => self.submit(command, 0, ctx),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<Self>) {
        match timer {
            Timer::Election => {
                if !self.is_leader() {
                    self.start_phase1(ctx);
                }
            }
            Timer::Heartbeat => self.heartbeat(ctx),
            Timer::Batch => self.flush(ctx),
        }
    }
}
