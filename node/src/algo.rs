//! The algorithm interface: events in, effects out.
//!
//! An algorithm is a state machine driven by four handlers. It never touches a socket, a
//! clock, a thread or the disk: it records what it wants done as [`Effect`]s in a [`Ctx`],
//! and a shell (the TCP runtime, the lockstep driver, or the in-process [`crate::sim`])
//! carries them out in order. Effects are applied in the order recorded, so
//! `persist; sync; send` guarantees the record is on disk before the message leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::str::FromStr;

use proto::ops::{ClientOp, ClientReply};
use proto::Report;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub mod announce;
pub mod chandy_lamport;
pub mod coordinator;
pub mod echo;
pub mod floodset;
pub mod majority_vote;
pub mod multi_paxos;
pub mod multicast;
pub mod paxos;
pub mod raft;
pub mod restart_counter;
pub mod tiebreak;
pub mod wait_for;

/// A node address: `n1`, `n2`, ...
pub type NodeId = String;

/// What an algorithm is told at construction.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// Every node in the cluster, this one included, in cluster order.
    pub node_ids: Vec<NodeId>,
    /// Mutants switched on with `--bug`.
    pub bugs: BTreeSet<String>,
    /// Tuning parameters from `--param key=value`.
    pub params: BTreeMap<String, String>,
}

impl Config {
    /// A config for `id` in a cluster of `node_ids`, no bugs or params.
    pub fn new(id: &str, node_ids: &[NodeId]) -> Self {
        Config {
            id: id.to_string(),
            node_ids: node_ids.to_vec(),
            ..Config::default()
        }
    }

    /// Every node but this one.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.node_ids.iter().filter(move |n| **n != self.id)
    }

    /// The smallest strict majority of the cluster.
    pub fn majority(&self) -> usize {
        self.node_ids.len() / 2 + 1
    }

    /// Whether mutant `bug` is on.
    pub fn has_bug(&self, bug: &str) -> bool {
        self.bugs.contains(bug)
    }

    /// Parameter `key` parsed as `T`, or `default` when absent.
    pub fn param<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.params.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| format!("param {key}={raw} does not parse")),
        }
    }
}

/// A client request as an algorithm sees it. Keep it to reply later, or forward it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReq {
    /// The client address (`c3`).
    pub client: String,
    /// The request's `msg_id`; the reply names it.
    pub msg_id: u64,
    /// The operation.
    pub op: ClientOp,
}

/// One thing an algorithm wants done.
#[derive(Debug, Clone)]
pub enum Effect<A: Algorithm> {
    /// Send `msg` to node `to` (through the router; sends to self are allowed).
    Send {
        /// Destination node.
        to: NodeId,
        /// The message.
        msg: A::Msg,
    },
    /// Answer a client request.
    Reply {
        /// The client address.
        client: String,
        /// The request's `msg_id`.
        in_reply_to: u64,
        /// The answer.
        reply: ClientReply,
    },
    /// Fire `timer` after `after_us` microseconds, replacing an earlier setting of it.
    SetTimer {
        /// Which timer.
        timer: A::Timer,
        /// Delay in microseconds.
        after_us: u64,
    },
    /// Forget `timer` if it is set.
    CancelTimer {
        /// Which timer.
        timer: A::Timer,
    },
    /// Append a record to the durable log (lost on a crash until [`Effect::Sync`]).
    Persist(A::Record),
    /// Make every record persisted so far durable.
    Sync,
    /// Tell the harness something (evidence for checkers, ground truth for benchmarks).
    Report(Report),
}

/// The effect recorder handed to every handler.
pub struct Ctx<A: Algorithm> {
    config: Config,
    rng: ChaCha8Rng,
    effects: Vec<Effect<A>>,
}

impl<A: Algorithm> Ctx<A> {
    /// A context for `config`, its RNG seeded from `seed` (and nothing else).
    pub fn new(config: Config, seed: u64) -> Self {
        Ctx {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            effects: Vec::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.config.id
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every node id, this one included.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.config.node_ids
    }

    /// The seeded RNG: the only randomness an algorithm may use.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Sends `msg` to `to`.
    pub fn send(&mut self, to: &str, msg: A::Msg) {
        self.effects.push(Effect::Send {
            to: to.to_string(),
            msg,
        });
    }

    /// Sends `msg` to every other node.
    pub fn broadcast(&mut self, msg: A::Msg) {
        let peers: Vec<NodeId> = self.config.peers().cloned().collect();
        for p in peers {
            self.send(&p, msg.clone());
        }
    }

    /// Sends `msg` to every node, this one included.
    pub fn send_all(&mut self, msg: A::Msg) {
        let all = self.config.node_ids.clone();
        for n in all {
            self.send(&n, msg.clone());
        }
    }

    /// Answers `req`.
    pub fn reply(&mut self, req: &ClientReq, reply: ClientReply) {
        self.effects.push(Effect::Reply {
            client: req.client.clone(),
            in_reply_to: req.msg_id,
            reply,
        });
    }

    /// Sets (or resets) `timer` to fire after `after_ms` milliseconds.
    pub fn set_timer(&mut self, timer: A::Timer, after_ms: u64) {
        self.set_timer_us(timer, after_ms.saturating_mul(1_000));
    }

    /// Sets (or resets) `timer` to fire after `after_us` microseconds: for delays finer
    /// than a millisecond, such as randomized backoff drawn below one decision's time.
    pub fn set_timer_us(&mut self, timer: A::Timer, after_us: u64) {
        self.effects.push(Effect::SetTimer { timer, after_us });
    }

    /// Cancels `timer`.
    pub fn cancel_timer(&mut self, timer: A::Timer) {
        self.effects.push(Effect::CancelTimer { timer });
    }

    /// Appends `record` to the durable log (not yet durable).
    pub fn persist(&mut self, record: A::Record) {
        self.effects.push(Effect::Persist(record));
    }

    /// Makes all persisted records durable before any later effect.
    pub fn sync(&mut self) {
        self.effects.push(Effect::Sync);
    }

    /// Reports to the harness.
    pub fn report(&mut self, report: Report) {
        self.effects.push(Effect::Report(report));
    }

    /// Takes the effects recorded so far, in order.
    pub fn take_effects(&mut self) -> Vec<Effect<A>> {
        std::mem::take(&mut self.effects)
    }
}

/// A distributed algorithm as a sans-IO state machine.
pub trait Algorithm: Sized + 'static {
    /// Node-to-node messages; serialised as a body tagged by `type`.
    type Msg: Serialize + DeserializeOwned + Debug + Clone;
    /// Named timers.
    type Timer: Clone + Ord + Debug;
    /// Durable log records.
    type Record: Serialize + DeserializeOwned + Debug + Clone;

    /// Mutants this algorithm accepts behind `--bug`.
    const BUGS: &'static [&'static str] = &[];

    /// Builds a node; fails on a bug or param it does not know.
    fn new(config: &Config) -> Result<Self, String>;

    /// Called once per incarnation, with every record that was synced before the last crash.
    fn on_start(&mut self, recovered: Vec<Self::Record>, ctx: &mut Ctx<Self>);

    /// A message from node `from`.
    fn on_msg(&mut self, from: NodeId, msg: Self::Msg, ctx: &mut Ctx<Self>);

    /// A client request.
    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>);

    /// A timer fired.
    fn on_timer(&mut self, timer: Self::Timer, ctx: &mut Ctx<Self>);
}

/// Rejects bugs the algorithm does not know; algorithms call this from `new`.
pub fn check_bugs(config: &Config, known: &[&str]) -> Result<(), String> {
    for bug in &config.bugs {
        if !known.contains(&bug.as_str()) {
            let valid = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(format!("unknown bug '{bug}' (valid: {valid})"));
        }
    }
    Ok(())
}

/// Rejects params the algorithm does not know; algorithms call this from `new`.
pub fn check_params(config: &Config, known: &[&str]) -> Result<(), String> {
    match config.params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "unknown param '{key}' (valid: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// Client proposals that may wait on one instance; more are refused before they take
/// effect (a definite error), so a hot key cannot grow a node's memory without bound.
pub const PENDING_MAX: usize = 64;

/// Queues `req` among the proposals waiting on instance `key`, or refuses it when
/// [`PENDING_MAX`] already wait. Returns whether it was queued.
pub fn wait_or_refuse<A: Algorithm>(
    pending: &mut Vec<ClientReq>,
    req: ClientReq,
    key: u64,
    ctx: &mut Ctx<A>,
) -> bool {
    if pending.len() >= PENDING_MAX {
        let text = format!("{PENDING_MAX} proposals already wait on key {key}");
        let code = proto::ErrorCode::TemporarilyUnavailable;
        ctx.reply(&req, ClientReply::Error { code, text });
        return false;
    }
    pending.push(req);
    true
}

/// The reply to a propose whose instance decided `value`, when the algorithm has no
/// rounds or ballot to tell.
pub fn propose_ok(value: u64) -> ClientReply {
    ClientReply::ProposeOk {
        value,
        rounds: None,
        ballot: None,
    }
}

/// The reply for an op an algorithm does not serve.
pub fn not_supported(op: &ClientOp) -> ClientReply {
    ClientReply::Error {
        code: proto::ErrorCode::NotSupported,
        text: format!("{} is not supported by this algorithm", op.f()),
    }
}
