//! `raft`: a replicated key-value store on Raft (Ongaro & Ousterhout, *In Search of an
//! Understandable Consensus Algorithm*, 2014; message names from its Figure 2).
//!
//! Seed 003 ends by building a replicated state machine from a log of consensus
//! instances; Raft builds the same log with one leader per **term** (a term is not a
//! Paxos ballot: it numbers elections, and each term has at most one leader). Client
//! commands are appended to the leader's log, copied to the followers by
//! [`Msg::AppendEntries`], and applied in log order once **committed** (stored on a
//! majority). Every replica applies the same commands in the same order to the same
//! [`kv::Kv`], so they agree on every answer.
//!
//! - **Election**: a follower that hears no leader for a randomized election timeout
//!   (`election_ms` to twice that) becomes a candidate for the next term, votes for
//!   itself and sends [`Msg::RequestVote`]. A node grants at most one vote per term, and
//!   only to a candidate whose log is at least as up-to-date as its own (last term, then
//!   last index: §5.4.1). A majority of votes makes a leader, which appends a no-op in its
//!   term at once so that earlier entries commit (§5.4.2, §8).
//! - **Replication**: [`Msg::AppendEntries`] carries the entry before the new ones
//!   (`prev_index`, `prev_term`); a follower whose log does not hold it refuses, and the
//!   leader backs `next_index` off to the follower's hint. A follower deletes an entry that
//!   conflicts with a new one (same index, other term) and everything after it.
//! - **Commitment**: the leader commits index `N` once a majority's `match_index` reaches
//!   it *and* entry `N` is of the current term. Counting replicas of an older term's entry
//!   is not enough (Figure 8): a leader of a later term whose log has another entry there
//!   may still be elected and overwrite it.
//! - **Durability**: `current_term`, `voted_for` and the log are synced before any reply
//!   that depends on them leaves (a vote, an append acknowledgement), so a SIGKILL cannot
//!   make a node vote twice in a term or forget entries a leader counted. A restarted node
//!   replays its records ([`Record`]) and learns the commit index from the leader.
//! - **Clients**: any node takes `read`, `write` and `cas`; a follower forwards them to
//!   the leader it knows ([`Msg::Forward`]), and answers 11 (temporarily unavailable,
//!   definite) when it knows none. The node that took a request answers it when it
//!   applies the entry. Reads go through the log like writes, so a read is answered by
//!   the state at its own log position, never by a deposed leader's stale copy.
//! - **Batching**: a leader does not sync per request: it persists each new entry and
//!   syncs once per `batch_ms` (default 2 ms; `batch_us` sets it in microseconds) for
//!   everything appended since, then sends one `append_entries` per follower with all of
//!   them. A follower syncs once per message, however many entries it carries (at most
//!   [`BATCH_ENTRIES_MAX`]). `batch_ms=0` (or `batch_us=0`) turns batching off: the
//!   leader syncs and sends each entry as it is appended (what `squall bench kv
//!   --batching off` measures).
//!
//! **The invariant that matters** (State Machine Safety): no two replicas apply different
//! commands at one index. It follows from Leader Completeness (a committed entry is in
//! every later leader's log), which rests on the vote restriction, on committing only
//! current-term entries by counting, and on votes and entries surviving restarts.
//!
//! **Mutants** (`--bug`), each breaking one of those legs:
//! - `commit-old-term`: the leader commits by counting replicas whatever the entry's term
//!   (Figure 8): an entry it committed can be overwritten by a later leader. It also
//!   appends no no-op on election, as in the figure: with the no-op in the same batch,
//!   every acknowledgement that covers an old entry covers the leader's own entry too, and
//!   the slip could never show.
//! - `vote-any-log`: votes are granted without the up-to-date check, so a node that missed
//!   committed entries can win and truncate them away.
//! - `stale-read`: a leader answers reads from its own state at once, without a log entry
//!   or any check that it still leads: a deposed leader cut off by a partition returns
//!   values the new majority has overwritten.
//! - `no-sync-vote`: the vote is persisted but not synced before the `vote` reply, so a
//!   node killed right after voting votes again in the same term: two leaders per term.
//! - `ack-before-sync`: a follower acknowledges appended entries before it syncs them; a
//!   kill in between loses entries the leader counted towards a commit.
//!
//! No log compaction: the log lives in memory and on disk for the whole run (runs are
//! minutes long; a snapshot would bound it).

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{check_bugs, check_params, Algorithm, ClientReq, Config, Ctx, NodeId};

pub mod kv;

use kv::{batch_us, timing, Command, Forwarded, Intake, Kv, Waiting};

/// Most entries one `append_entries` carries.
pub const BATCH_ENTRIES_MAX: usize = 64;

const PARAMS: &[&str] = &["election_ms", "heartbeat_ms", "batch_ms", "batch_us"];

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: u64,
    /// The command.
    pub command: Command,
}

/// Node-to-node messages (Figure 2's RPCs, replies as messages of their own).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// A candidate asks for a vote.
    RequestVote {
        /// The candidate's term.
        term: u64,
        /// Index of its last entry.
        last_log_index: u64,
        /// Term of its last entry.
        last_log_term: u64,
    },
    /// The answer to `request_vote`.
    Vote {
        /// The voter's term.
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// The leader replicates entries (none: a heartbeat).
    AppendEntries {
        /// The leader's term.
        term: u64,
        /// Index of the entry before `entries`.
        prev_index: u64,
        /// Its term.
        prev_term: u64,
        /// New entries.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: u64,
    },
    /// The answer to `append_entries`.
    AppendOk {
        /// The follower's term.
        term: u64,
        /// Whether the entries fit after `prev_index`.
        success: bool,
        /// On success, the index of the last entry the follower now holds from this
        /// message; on failure, the index the leader should try next minus one.
        index: u64,
    },
    /// A client request taken by another node, for the leader to append.
    Forward(Forwarded),
}

/// Named timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Leader: sync the entries appended since the last batch and send them.
    Batch,
    /// No word from a leader: stand for election.
    Election,
    /// Leader: send `append_entries` to every follower.
    Heartbeat,
}

/// Durable records, replayed in order at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// `current_term` and `voted_for` changed.
    Term {
        /// The term.
        term: u64,
        /// Whom this node voted for in it.
        voted_for: Option<NodeId>,
    },
    /// The log from index `from` on is replaced by `entries` (a truncation when a
    /// follower's entry conflicts, a plain append otherwise).
    Entries {
        /// The first index written (1-based).
        from: u64,
        /// The entries.
        entries: Vec<Entry>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bugs {
    commit_old_term: bool,
    vote_any_log: bool,
    stale_read: bool,
    no_sync_vote: bool,
    ack_before_sync: bool,
}

impl Bugs {
    /// Whether any mutant is on (invariants it may break are then not asserted).
    fn any(self) -> bool {
        self.commit_old_term
            || self.vote_any_log
            || self.stale_read
            || self.no_sync_vote
            || self.ack_before_sync
    }
}

/// A Raft replica of the key-value store.
pub struct Raft {
    id: NodeId,
    majority: usize,
    bugs: Bugs,
    election_ms: u64,
    heartbeat_ms: u64,
    batch_us: u64,
    // Durable.
    term: u64,
    voted_for: Option<NodeId>,
    log: Vec<Entry>,
    // Volatile.
    role: Role,
    leader: Option<NodeId>,
    votes: BTreeSet<NodeId>,
    commit: u64,
    applied: u64,
    kv: Kv,
    waiting: Waiting,
    next_index: BTreeMap<NodeId, u64>,
    match_index: BTreeMap<NodeId, u64>,
    /// Leader: entries up to here are synced on this node.
    synced: u64,
    batch_pending: bool,
}

impl Raft {
    /// Index of the last entry (0 for an empty log).
    pub fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    fn term_at(&self, index: u64) -> u64 {
        if index == 0 {
            0
        } else {
            self.log[index as usize - 1].term
        }
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Whether this node believes it leads.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The commit index.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// The whole log, committed or not.
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// The committed prefix of the log (what this replica has applied or will).
    pub fn committed(&self) -> &[Entry] {
        &self.log[..self.commit as usize]
    }

    fn persist_term(&mut self, ctx: &mut Ctx<Self>) {
        ctx.persist(Record::Term {
            term: self.term,
            voted_for: self.voted_for.clone(),
        });
    }

    fn reset_election(&mut self, ctx: &mut Ctx<Self>) {
        let ms = self.election_ms + ctx.rng().gen_range(0..=self.election_ms);
        ctx.set_timer(Timer::Election, ms);
    }

    /// Adopts a higher term seen in any message, as a follower (not yet synced).
    fn observe_term(&mut self, term: u64, ctx: &mut Ctx<Self>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_term(ctx);
            if self.role == Role::Leader {
                ctx.cancel_timer(Timer::Heartbeat);
                self.reset_election(ctx);
            }
            self.role = Role::Follower;
            self.leader = None;
        }
    }

    fn start_election(&mut self, ctx: &mut Ctx<Self>) {
        self.term += 1;
        self.role = Role::Candidate;
        self.voted_for = Some(self.id.clone());
        self.leader = None;
        self.votes = BTreeSet::from([self.id.clone()]);
        self.persist_term(ctx);
        ctx.sync();
        self.reset_election(ctx);
        if self.votes.len() >= self.majority {
            self.become_leader(ctx);
            return;
        }
        ctx.broadcast(Msg::RequestVote {
            term: self.term,
            last_log_index: self.last_index(),
            last_log_term: self.term_at(self.last_index()),
        });
    }

    fn become_leader(&mut self, ctx: &mut Ctx<Self>) {
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        ctx.cancel_timer(Timer::Election);
        let next = self.last_index() + 1;
        let peers: Vec<NodeId> = ctx.config().peers().cloned().collect();
        self.next_index = peers.iter().map(|p| (p.clone(), next)).collect();
        self.match_index = peers.iter().map(|p| (p.clone(), 0)).collect();
        self.synced = self.last_index();
        // A no-op of this term, so that entries of earlier terms commit with it. (The
        // commit-old-term mutant leaves it out, as in the paper's Figure 8: with it, every
        // acknowledgement that covers an old entry also covers the no-op.)
        if !self.bugs.commit_old_term {
            self.append(Command::noop(), ctx);
        }
        self.flush(ctx);
        ctx.set_timer(Timer::Heartbeat, self.heartbeat_ms);
    }

    /// Leader: appends `command` in the current term (persisted, synced by the batch).
    fn append(&mut self, command: Command, ctx: &mut Ctx<Self>) {
        let entry = Entry {
            term: self.term,
            command,
        };
        ctx.persist(Record::Entries {
            from: self.last_index() + 1,
            entries: vec![entry.clone()],
        });
        self.log.push(entry);
        if self.batch_us == 0 {
            self.flush(ctx);
        } else if !self.batch_pending {
            self.batch_pending = true;
            ctx.set_timer_us(Timer::Batch, self.batch_us);
        }
    }

    /// Leader: syncs what was appended and sends it.
    fn flush(&mut self, ctx: &mut Ctx<Self>) {
        self.batch_pending = false;
        ctx.cancel_timer(Timer::Batch);
        if self.synced < self.last_index() {
            ctx.sync();
            self.synced = self.last_index();
        }
        self.advance_commit(ctx);
        self.replicate_all(ctx);
    }

    fn replicate_all(&mut self, ctx: &mut Ctx<Self>) {
        let peers: Vec<NodeId> = self.next_index.keys().cloned().collect();
        for p in peers {
            self.replicate(&p, ctx);
        }
    }

    fn replicate(&mut self, peer: &str, ctx: &mut Ctx<Self>) {
        let next = self.next_index[peer].clamp(1, self.synced + 1);
        let prev_index = next - 1;
        let end = self.synced.min(prev_index + BATCH_ENTRIES_MAX as u64);
        let entries = self.log[prev_index as usize..end as usize].to_vec();
        // Pipelined: the next message goes on from here; a refusal sets it back.
        self.next_index.insert(peer.to_string(), end + 1);
        ctx.send(
            peer,
            Msg::AppendEntries {
                term: self.term,
                prev_index,
                prev_term: self.term_at(prev_index),
                entries,
                commit: self.commit,
            },
        );
    }

    fn advance_commit(&mut self, ctx: &mut Ctx<Self>) {
        let mut n = self.synced;
        while n > self.commit {
            if self.term_at(n) != self.term && !self.bugs.commit_old_term {
                break;
            }
            let replicas = 1 + self.match_index.values().filter(|m| **m >= n).count();
            if replicas >= self.majority {
                self.commit = n;
                break;
            }
            n -= 1;
        }
        self.apply_committed(ctx);
    }

    fn apply_committed(&mut self, ctx: &mut Ctx<Self>) {
        while self.applied < self.commit {
            self.applied += 1;
            let command = self.log[self.applied as usize - 1].command.clone();
            let reply = self.kv.apply(&command);
            self.waiting.answer(&self.id, &command, reply, ctx);
        }
    }

    /// A client request this node took, or one forwarded to it.
    fn submit(&mut self, command: Command, hops: u32, ctx: &mut Ctx<Self>) {
        if self.role == Role::Leader {
            self.append(command, ctx);
            return;
        }
        let leader = self.leader.as_ref();
        self.waiting
            .to_leader(&self.id, leader, command, hops, Msg::Forward, ctx);
    }

    fn on_request_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        ctx: &mut Ctx<Self>,
    ) {
        self.observe_term(term, ctx);
        let my_last_term = self.term_at(self.last_index());
        let up_to_date = last_log_term > my_last_term
            || (last_log_term == my_last_term && last_log_index >= self.last_index());
        let free = self.voted_for.is_none() || self.voted_for.as_ref() == Some(&from);
        let granted = term == self.term && free && (up_to_date || self.bugs.vote_any_log);
        if granted {
            self.voted_for = Some(from.clone());
            self.persist_term(ctx);
            self.reset_election(ctx);
        }
        if !(granted && self.bugs.no_sync_vote) {
            ctx.sync();
        }
        ctx.send(
            &from,
            Msg::Vote {
                term: self.term,
                granted,
            },
        );
    }

    fn on_vote(&mut self, from: NodeId, term: u64, granted: bool, ctx: &mut Ctx<Self>) {
        self.observe_term(term, ctx);
        if self.role != Role::Candidate || term != self.term || !granted {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= self.majority {
            ctx.sync();
            self.become_leader(ctx);
        }
    }

    /// Refuses an `append_entries` (synced first: the term it may have adopted), telling
    /// the leader to try after `index`.
    fn refuse_append(&mut self, to: &str, index: u64, ctx: &mut Ctx<Self>) {
        ctx.sync();
        let reply = Msg::AppendOk {
            term: self.term,
            success: false,
            index,
        };
        ctx.send(to, reply);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_entries(
        &mut self,
        from: NodeId,
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        ctx: &mut Ctx<Self>,
    ) {
        self.observe_term(term, ctx);
        if term < self.term {
            self.refuse_append(&from, prev_index, ctx);
            return;
        }
        // Two leaders in one term cannot happen unless a mutant broke the vote; then the
        // leader steps aside and the damage shows in the clients' answers, not a crash.
        assert!(
            self.role != Role::Leader || self.bugs.any(),
            "two leaders in term {term}"
        );
        if self.role == Role::Leader {
            ctx.cancel_timer(Timer::Heartbeat);
        }
        self.role = Role::Follower;
        self.leader = Some(from.clone());
        self.reset_election(ctx);
        if prev_index > self.last_index() || self.term_at(prev_index) != prev_term {
            let hint = (prev_index - 1).min(self.last_index());
            self.refuse_append(&from, hint, ctx);
            return;
        }
        let end = prev_index + entries.len() as u64;
        // The first new entry that is missing here or conflicts with ours.
        let mut write_from = None;
        for (i, e) in entries.iter().enumerate() {
            let index = prev_index + 1 + i as u64;
            if index > self.last_index() || self.term_at(index) != e.term {
                write_from = Some(i);
                break;
            }
        }
        if let Some(i) = write_from {
            let from_index = prev_index + 1 + i as u64;
            assert!(
                from_index > self.commit || self.bugs.any(),
                "a committed entry conflicts"
            );
            self.log.truncate(from_index as usize - 1);
            self.commit = self.commit.min(from_index - 1);
            let new = entries[i..].to_vec();
            self.log.extend(new.iter().cloned());
            ctx.persist(Record::Entries {
                from: from_index,
                entries: new,
            });
        }
        let reply = Msg::AppendOk {
            term: self.term,
            success: true,
            index: end,
        };
        if self.bugs.ack_before_sync {
            ctx.send(&from, reply);
            ctx.sync();
        } else {
            ctx.sync();
            ctx.send(&from, reply);
        }
        let new_commit = commit.min(end);
        if new_commit > self.commit {
            self.commit = new_commit;
            self.apply_committed(ctx);
        }
    }

    fn on_append_ok(
        &mut self,
        from: NodeId,
        term: u64,
        success: bool,
        index: u64,
        ctx: &mut Ctx<Self>,
    ) {
        self.observe_term(term, ctx);
        if self.role != Role::Leader || term != self.term {
            return;
        }
        let Some(next) = self.next_index.get(&from).copied() else {
            return;
        };
        if success {
            let m = self.match_index.entry(from.clone()).or_insert(0);
            *m = (*m).max(index);
            self.next_index.insert(from.clone(), next.max(index + 1));
            self.advance_commit(ctx);
            if next.max(index + 1) <= self.synced {
                self.replicate(&from, ctx);
            }
        } else {
            let next = (index + 1).min(next).max(1);
            self.next_index.insert(from.clone(), next);
            self.replicate(&from, ctx);
        }
    }
}

/// The mutants (`--bug`), each described in the module docs.
pub const MUTANTS: &[&str] = &[
    "commit-old-term",
    "vote-any-log",
    "stale-read",
    "no-sync-vote",
    "ack-before-sync",
];

impl Algorithm for Raft {
    const BUGS: &'static [&'static str] = MUTANTS;
    type Msg = Msg;
    type Timer = Timer;
    type Record = Record;

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        check_params(config, PARAMS)?;
        let (heartbeat_ms, election_ms) = timing(config)?;
        Ok(Raft {
            id: config.id.clone(),
            majority: config.majority(),
            bugs: Bugs {
                commit_old_term: config.has_bug("commit-old-term"),
                vote_any_log: config.has_bug("vote-any-log"),
                stale_read: config.has_bug("stale-read"),
                no_sync_vote: config.has_bug("no-sync-vote"),
                ack_before_sync: config.has_bug("ack-before-sync"),
            },
            election_ms,
            heartbeat_ms,
            batch_us: batch_us(config)?,
            term: 0,
            voted_for: None,
            log: Vec::new(),
            role: Role::Follower,
            leader: None,
            votes: BTreeSet::new(),
            commit: 0,
            applied: 0,
            kv: Kv::default(),
            waiting: Waiting::default(),
            next_index: BTreeMap::new(),
            match_index: BTreeMap::new(),
            synced: 0,
            batch_pending: false,
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        for record in recovered {
            match record {
                Record::Term { term, voted_for } => {
                    assert!(term >= self.term, "terms only grow on disk");
                    self.term = term;
                    self.voted_for = voted_for;
                }
                Record::Entries { from, entries } => {
                    assert!(
                        from >= 1 && from <= self.last_index() + 1,
                        "no gap in the log"
                    );
                    self.log.truncate(from as usize - 1);
                    self.log.extend(entries);
                }
            }
        }
        self.reset_election(ctx);
    }

    fn on_msg(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<Self>) {
        match msg {
            Msg::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_request_vote(from, term, last_log_index, last_log_term, ctx),
            Msg::Vote { term, granted } => self.on_vote(from, term, granted, ctx),
            Msg::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.on_append_entries(from, term, prev_index, prev_term, entries, commit, ctx),
            Msg::AppendOk {
                term,
                success,
                index,
            } => self.on_append_ok(from, term, success, index, ctx),
            Msg::Forward(f) => self.submit(f.command, f.hops, ctx),
        }
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        let local_read = self.bugs.stale_read && self.role == Role::Leader;
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
                if self.role != Role::Leader {
                    self.start_election(ctx);
                }
            }
            Timer::Heartbeat => {
                if self.role == Role::Leader {
                    self.flush(ctx);
                    ctx.set_timer(Timer::Heartbeat, self.heartbeat_ms);
                }
            }
            Timer::Batch => {
                if self.role == Role::Leader {
                    self.flush(ctx);
                } else {
                    self.batch_pending = false;
                }
            }
        }
    }
}
