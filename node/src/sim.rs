//! In-process simulated network for algorithm unit tests (no sockets, no clocks).
//!
//! A [`Sim`] holds N nodes of one [`Algorithm`], a pool of messages in flight and a virtual
//! clock. Nothing happens by itself: the test (or the seeded [`Sim::run_random`] driver)
//! decides which message is delivered, dropped, duplicated or held, when timers fire, and
//! which node crashes. Every event runs one handler to completion and applies its effects in
//! order, exactly as the runtime does, so `persist; sync; send` means the same here.
//!
//! - Messages: each send becomes an [`Envelope`] with a delivery time chosen by the network
//!   (fixed latency by default, random under [`Chaos`], or a custom router set with
//!   [`Sim::set_router`]). Held messages wait for [`Sim::release`] or [`Sim::heal`].
//!   Distinct delivery times are what reorders messages.
//! - Time: virtual milliseconds (a timer set in microseconds rounds up to the next whole
//!   one). Events (deliveries, timer firings) run in time order, ties broken by the order
//!   they were scheduled.
//! - Crashes: [`Sim::crash`] drops the node's memory, its timers and every record it
//!   persisted but did not sync; [`Sim::restart`] builds a new instance and hands it the
//!   synced records in `on_start`, like a SIGKILL and restart with the same data directory.
//! - Observations: client replies ([`Sim::replies`]) and reports ([`Sim::reports`]), each
//!   stamped with node and virtual time.
//! - Encoding: every message goes through JSON and every record through bincode, as on the
//!   wire and on disk, so a type that would not survive the real runtime fails here too.
//!
//! The design follows raft-rs's `harness::Network` and stateright's actor model: the
//! algorithm is the real one, only the world around it is simulated.

use std::collections::BTreeMap;

use proto::ops::{ClientOp, ClientReply};
use proto::Report;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::algo::{Algorithm, ClientReq, Config, Ctx, Effect, NodeId};
use crate::runtime::node_seed;

mod faults;

pub use faults::Chaos;
use faults::Partition;

/// Events [`Sim::run_until_quiet`] processes before it gives up on reaching quiet.
pub const QUIET_STEPS_MAX: u64 = 1_000_000;

/// Latency of a message under the default network, in virtual milliseconds.
pub const LATENCY_MS_DEFAULT: u64 = 1;

/// The client address the simulation sends requests from.
pub const CLIENT: &str = "c1";

/// A message in flight.
#[derive(Debug, Clone)]
pub struct Envelope<M> {
    /// Unique per simulation, in send order.
    pub id: u64,
    /// Sender.
    pub from: NodeId,
    /// Destination.
    pub to: NodeId,
    /// The message.
    pub msg: M,
    /// Virtual time of the send.
    pub sent_at_ms: u64,
    /// When it will be delivered; `None` while held.
    pub deliver_at_ms: Option<u64>,
}

/// What the network does with a message that was just sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it after `after_ms`.
    Deliver {
        /// Latency in milliseconds.
        after_ms: u64,
    },
    /// Lose it.
    Drop,
    /// Keep it until released ([`Sim::release`], [`Sim::heal`]): a clogged link.
    Hold,
    /// Deliver it twice.
    Duplicate {
        /// Latency of the first copy.
        after_ms: u64,
        /// Latency of the second copy.
        again_after_ms: u64,
    },
}

/// A custom network: decides the fate of every message sent while it is installed.
pub type Router<M> = Box<dyn FnMut(&Envelope<M>, &mut ChaCha8Rng) -> Verdict>;

/// A client reply as captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replied {
    /// The node that replied.
    pub node: NodeId,
    /// The request's `msg_id`.
    pub msg_id: u64,
    /// The reply.
    pub reply: ClientReply,
    /// Virtual time of the reply.
    pub at_ms: u64,
}

/// A report as captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// The node that reported.
    pub node: NodeId,
    /// The report.
    pub report: Report,
    /// Virtual time of the report.
    pub at_ms: u64,
}

/// Message counters, for tests that want to see a fault bite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages sent by algorithms.
    pub sent: u64,
    /// Messages handed to a live node.
    pub delivered: u64,
    /// Messages lost: dropped by the network or addressed to a crashed node.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions started.
    pub partitions: u64,
}

struct Node<A: Algorithm> {
    /// `None` while crashed.
    algo: Option<A>,
    ctx: Ctx<A>,
    synced: Vec<A::Record>,
    unsynced: Vec<A::Record>,
    incarnation: u64,
    timers: BTreeMap<A::Timer, (u64, u64)>,
    restart_at_ms: Option<u64>,
}

/// Construction options beyond the cluster size.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Mutants for every node.
    pub bugs: Vec<String>,
    /// `key=value` parameters for every node.
    pub params: Vec<(String, String)>,
}

impl Options {
    /// Switches on mutant `bug`.
    pub fn bug(mut self, bug: &str) -> Self {
        self.bugs.push(bug.to_string());
        self
    }

    /// Sets parameter `key` to `value`.
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.params.push((key.to_string(), value.to_string()));
        self
    }
}

/// A simulated cluster of algorithm `A`.
pub struct Sim<A: Algorithm> {
    ids: Vec<NodeId>,
    options: Options,
    seed: u64,
    nodes: BTreeMap<NodeId, Node<A>>,
    rng: ChaCha8Rng,
    now_ms: u64,
    seq: u64,
    next_msg_id: u64,
    in_flight: BTreeMap<u64, Envelope<A::Msg>>,
    msg_due: BTreeMap<(u64, u64), u64>,
    due_of: BTreeMap<u64, (u64, u64)>,
    timer_due: BTreeMap<(u64, u64), (NodeId, A::Timer)>,
    latency_ms: u64,
    router: Option<Router<A::Msg>>,
    chaos: Option<Chaos>,
    partition: Option<Partition>,
    replies: Vec<Replied>,
    reports: Vec<Reported>,
    counters: Counters,
}

impl<A: Algorithm> Sim<A> {
    /// A cluster of `n` nodes `n1..nN`, every node started; panics if `A::new` refuses.
    pub fn new(n: usize, seed: u64) -> Self {
        Self::with_options(n, seed, Options::default()).expect("algorithm accepts no options")
    }

    /// A cluster of `n` nodes with bugs and params; fails as `A::new` does.
    pub fn with_options(n: usize, seed: u64, options: Options) -> Result<Self, String> {
        assert!(n > 0, "a cluster has nodes");
        let ids: Vec<NodeId> = (1..=n).map(|i| format!("n{i}")).collect();
        let mut sim = Sim {
            ids: ids.clone(),
            options,
            seed,
            nodes: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: 0,
            seq: 0,
            next_msg_id: 1,
            in_flight: BTreeMap::new(),
            msg_due: BTreeMap::new(),
            due_of: BTreeMap::new(),
            timer_due: BTreeMap::new(),
            latency_ms: LATENCY_MS_DEFAULT,
            router: None,
            chaos: None,
            partition: None,
            replies: Vec::new(),
            reports: Vec::new(),
            counters: Counters::default(),
        };
        for id in &ids {
            let config = sim.config(id);
            let algo = A::new(&config)?;
            let ctx = Ctx::new(config, node_seed(seed, id, 0));
            let node = Node {
                algo: Some(algo),
                ctx,
                synced: Vec::new(),
                unsynced: Vec::new(),
                incarnation: 0,
                timers: BTreeMap::new(),
                restart_at_ms: None,
            };
            sim.nodes.insert(id.clone(), node);
        }
        for id in &ids {
            sim.start(id, Vec::new());
        }
        Ok(sim)
    }

    fn config(&self, id: &str) -> Config {
        let mut config = Config::new(id, &self.ids);
        config.bugs = self.options.bugs.iter().cloned().collect();
        config.params = self.options.params.iter().cloned().collect();
        config
    }

    fn start(&mut self, id: &str, recovered: Vec<A::Record>) {
        let node = self.nodes.get_mut(id).expect("known node");
        let algo = node.algo.as_mut().expect("started node is up");
        algo.on_start(recovered, &mut node.ctx);
        self.apply(id);
    }

    /// Every node id, in cluster order.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The virtual time.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The algorithm state of `id`, `None` while it is crashed.
    pub fn algo(&self, id: &str) -> Option<&A> {
        self.nodes.get(id).and_then(|n| n.algo.as_ref())
    }

    /// Whether `id` is running.
    pub fn is_up(&self, id: &str) -> bool {
        self.algo(id).is_some()
    }

    /// The records `id` has made durable.
    pub fn synced(&self, id: &str) -> &[A::Record] {
        &self.nodes.get(id).expect("known node").synced
    }

    /// Every reply so far, in order.
    pub fn replies(&self) -> &[Replied] {
        &self.replies
    }

    /// The reply to request `msg_id`, if there is one.
    pub fn reply(&self, msg_id: u64) -> Option<&ClientReply> {
        self.replies
            .iter()
            .find(|r| r.msg_id == msg_id)
            .map(|r| &r.reply)
    }

    /// Every report so far, in order.
    pub fn reports(&self) -> &[Reported] {
        &self.reports
    }

    /// Message counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Messages in flight (held ones included), in send order.
    pub fn in_flight(&self) -> impl Iterator<Item = &Envelope<A::Msg>> {
        self.in_flight.values()
    }

    /// Ids of the messages in flight that match `pred`, in send order.
    pub fn select(&self, mut pred: impl FnMut(&Envelope<A::Msg>) -> bool) -> Vec<u64> {
        self.in_flight
            .values()
            .filter(|e| pred(e))
            .map(|e| e.id)
            .collect()
    }

    // ---- clients ----

    /// Sends `op` from client [`CLIENT`] to `node` now; returns its `msg_id`. A request to a
    /// crashed node is lost, as it would be on the wire.
    pub fn client(&mut self, node: &str, op: ClientOp) -> u64 {
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        let n = self.nodes.get_mut(node).expect("known node");
        if let Some(algo) = n.algo.as_mut() {
            let req = ClientReq {
                client: CLIENT.to_string(),
                msg_id,
                op,
            };
            algo.on_client(req, &mut n.ctx);
            self.apply(node);
        }
        msg_id
    }

    /// `propose {key, value}` at `node`.
    pub fn propose(&mut self, node: &str, key: u64, value: u64) -> u64 {
        self.client(node, ClientOp::Propose { key, value })
    }

    /// `read {key}` at `node`.
    pub fn read(&mut self, node: &str, key: u64) -> u64 {
        self.client(node, ClientOp::Read { key })
    }

    // ---- the network ----

    /// Sets the latency of the default network.
    pub fn set_latency(&mut self, ms: u64) {
        self.latency_ms = ms;
    }

    /// Installs a custom network for every later send (replaces chaos and partitions).
    pub fn set_router(
        &mut self,
        router: impl FnMut(&Envelope<A::Msg>, &mut ChaCha8Rng) -> Verdict + 'static,
    ) {
        self.router = Some(Box::new(router));
    }

    /// Goes back to the default network (fixed latency, nothing lost).
    pub fn reset_router(&mut self) {
        self.router = None;
    }

    /// Delivers message `id` now, wherever it is in the schedule. False if it is gone.
    pub fn deliver(&mut self, id: u64) -> bool {
        let Some(env) = self.take(id) else {
            return false;
        };
        self.hand_over(env);
        true
    }

    /// Delivers, now and in send order, every message in flight that matches `pred`;
    /// returns how many. Messages those deliveries cause are not included.
    pub fn deliver_where(&mut self, pred: impl FnMut(&Envelope<A::Msg>) -> bool) -> usize {
        let ids = self.select(pred);
        ids.iter().filter(|id| self.deliver(**id)).count()
    }

    /// Loses message `id`. False if it is gone.
    pub fn drop_message(&mut self, id: u64) -> bool {
        let gone = self.take(id).is_some();
        if gone {
            self.counters.dropped += 1;
        }
        gone
    }

    /// Loses every message in flight that matches `pred`; returns how many.
    pub fn drop_where(&mut self, pred: impl FnMut(&Envelope<A::Msg>) -> bool) -> usize {
        let ids = self.select(pred);
        ids.iter().filter(|id| self.drop_message(**id)).count()
    }

    /// Adds a copy of message `id`, due after the default latency. False if it is gone.
    pub fn duplicate(&mut self, id: u64) -> bool {
        let Some(env) = self.in_flight.get(&id).cloned() else {
            return false;
        };
        self.counters.duplicated += 1;
        let copy = self.envelope(env.from, env.to, env.msg);
        self.schedule(copy, Some(self.latency_ms));
        true
    }

    /// Holds every message in flight that matches `pred` until released; returns how many.
    pub fn hold_where(&mut self, pred: impl FnMut(&Envelope<A::Msg>) -> bool) -> usize {
        let ids = self.select(pred);
        for id in &ids {
            let env = self.take(*id).expect("selected message is in flight");
            self.schedule(env, None);
        }
        ids.len()
    }

    /// Reschedules message `id` (held or not) for delivery after `after_ms`.
    pub fn release(&mut self, id: u64, after_ms: u64) -> bool {
        let Some(env) = self.take(id) else {
            return false;
        };
        self.schedule(env, Some(after_ms));
        true
    }

    /// Releases every held message after the default latency.
    pub fn release_all(&mut self) {
        let held: Vec<u64> = self
            .in_flight
            .values()
            .filter(|e| e.deliver_at_ms.is_none())
            .map(|e| e.id)
            .collect();
        for id in held {
            self.release(id, self.latency_ms);
        }
    }

    fn take(&mut self, id: u64) -> Option<Envelope<A::Msg>> {
        let env = self.in_flight.remove(&id)?;
        if let Some(due) = self.due_of.remove(&id) {
            self.msg_due.remove(&due);
        }
        Some(env)
    }

    fn envelope(&mut self, from: NodeId, to: NodeId, msg: A::Msg) -> Envelope<A::Msg> {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        Envelope {
            id,
            from,
            to,
            msg,
            sent_at_ms: self.now_ms,
            deliver_at_ms: None,
        }
    }

    fn schedule(&mut self, mut env: Envelope<A::Msg>, after_ms: Option<u64>) {
        env.deliver_at_ms = after_ms.map(|ms| self.now_ms + ms);
        if let Some(at) = env.deliver_at_ms {
            self.seq += 1;
            self.msg_due.insert((at, self.seq), env.id);
            self.due_of.insert(env.id, (at, self.seq));
        }
        self.in_flight.insert(env.id, env);
    }

    fn send(&mut self, from: &str, to: NodeId, msg: A::Msg) {
        self.counters.sent += 1;
        let json = serde_json::to_string(&msg).expect("messages encode as JSON");
        let msg: A::Msg = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("message {json} does not decode: {e}"));
        let env = self.envelope(from.to_string(), to, msg);
        let verdict = self.verdict(&env);
        match verdict {
            Verdict::Deliver { after_ms } => self.schedule(env, Some(after_ms)),
            Verdict::Drop => self.counters.dropped += 1,
            Verdict::Hold => self.schedule(env, None),
            Verdict::Duplicate {
                after_ms,
                again_after_ms,
            } => {
                self.counters.duplicated += 1;
                let copy = self.envelope(env.from.clone(), env.to.clone(), env.msg.clone());
                self.schedule(env, Some(after_ms));
                self.schedule(copy, Some(again_after_ms));
            }
        }
    }

    fn verdict(&mut self, env: &Envelope<A::Msg>) -> Verdict {
        if let Some(router) = self.router.as_mut() {
            return router(env, &mut self.rng);
        }
        if let Some(p) = &self.partition {
            if p.side.contains(&env.from) != p.side.contains(&env.to) {
                return if p.hold { Verdict::Hold } else { Verdict::Drop };
            }
        }
        let Some(chaos) = &self.chaos else {
            return Verdict::Deliver {
                after_ms: self.latency_ms,
            };
        };
        let roll = self.rng.gen_range(0..1000);
        let latency = self.rng.gen_range(0..=chaos.latency_ms_max);
        if roll < chaos.drop_per_mille {
            Verdict::Drop
        } else if roll < chaos.drop_per_mille + chaos.duplicate_per_mille {
            let again = self.rng.gen_range(0..=chaos.latency_ms_max);
            Verdict::Duplicate {
                after_ms: latency,
                again_after_ms: again,
            }
        } else {
            Verdict::Deliver { after_ms: latency }
        }
    }

    fn hand_over(&mut self, env: Envelope<A::Msg>) {
        let node = self
            .nodes
            .get_mut(&env.to)
            .expect("messages go to known nodes");
        let Some(algo) = node.algo.as_mut() else {
            self.counters.dropped += 1;
            return;
        };
        self.counters.delivered += 1;
        algo.on_msg(env.from, env.msg, &mut node.ctx);
        self.apply(&env.to);
    }

    // ---- effects and timers ----

    fn apply(&mut self, id: &str) {
        let effects = self
            .nodes
            .get_mut(id)
            .expect("known node")
            .ctx
            .take_effects();
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => {
                    assert!(
                        self.nodes.contains_key(&to),
                        "{id} sends to unknown node {to}"
                    );
                    self.send(id, to, msg);
                }
                Effect::Reply {
                    client,
                    in_reply_to,
                    reply,
                } => {
                    assert_eq!(client, CLIENT, "replies go to the simulated client");
                    let at_ms = self.now_ms;
                    self.replies.push(Replied {
                        node: id.to_string(),
                        msg_id: in_reply_to,
                        reply,
                        at_ms,
                    });
                }
                // The simulator's clock counts milliseconds: a finer delay rounds up.
                Effect::SetTimer { timer, after_us } => {
                    self.set_timer(id, timer, after_us.div_ceil(1_000))
                }
                Effect::CancelTimer { timer } => self.cancel_timer(id, &timer),
                Effect::Persist(record) => {
                    let bytes = bincode::serialize(&record).expect("records encode");
                    let record: A::Record =
                        bincode::deserialize(&bytes).expect("records decode as written");
                    self.nodes
                        .get_mut(id)
                        .expect("known node")
                        .unsynced
                        .push(record);
                }
                Effect::Sync => {
                    let node = self.nodes.get_mut(id).expect("known node");
                    let mut fresh = std::mem::take(&mut node.unsynced);
                    node.synced.append(&mut fresh);
                }
                Effect::Report(report) => {
                    let at_ms = self.now_ms;
                    self.reports.push(Reported {
                        node: id.to_string(),
                        report,
                        at_ms,
                    });
                }
            }
        }
    }

    fn set_timer(&mut self, id: &str, timer: A::Timer, after_ms: u64) {
        self.cancel_timer(id, &timer);
        self.seq += 1;
        let at = self.now_ms + after_ms;
        let node = self.nodes.get_mut(id).expect("known node");
        node.timers.insert(timer.clone(), (at, self.seq));
        self.timer_due
            .insert((at, self.seq), (id.to_string(), timer));
    }

    fn cancel_timer(&mut self, id: &str, timer: &A::Timer) {
        let node = self.nodes.get_mut(id).expect("known node");
        if let Some(due) = node.timers.remove(timer) {
            self.timer_due.remove(&due);
        }
    }

    /// The time of the next scheduled event, if any.
    pub fn next_event_ms(&self) -> Option<u64> {
        let msg = self.msg_due.keys().next().map(|k| k.0);
        let timer = self.timer_due.keys().next().map(|k| k.0);
        match (msg, timer) {
            (Some(m), Some(t)) => Some(m.min(t)),
            (m, t) => m.or(t),
        }
    }

    /// Runs the earliest scheduled event (a delivery or a timer), advancing the clock to it.
    /// False if nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let msg = self.msg_due.first_key_value().map(|(k, v)| (*k, *v));
        let timer = self.timer_due.keys().next().copied();
        match (msg, timer) {
            (Some((mk, id)), t) if t.is_none_or(|tk| mk <= tk) => {
                self.now_ms = self.now_ms.max(mk.0);
                let env = self.take(id).expect("scheduled message is in flight");
                self.hand_over(env);
            }
            (_, Some(tk)) => {
                self.now_ms = self.now_ms.max(tk.0);
                let (id, timer) = self.timer_due.remove(&tk).expect("due timer exists");
                let node = self.nodes.get_mut(&id).expect("known node");
                node.timers.remove(&timer);
                let algo = node.algo.as_mut().expect("crashed nodes have no timers");
                algo.on_timer(timer, &mut node.ctx);
                self.apply(&id);
            }
            (None, None) => return false,
            (Some(_), None) => unreachable!("guard covers a message without timers"),
        }
        true
    }

    /// Runs every event due up to `now + ms`, then sets the clock there.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        while self.next_event_ms().is_some_and(|at| at <= until) {
            self.step();
        }
        self.now_ms = until;
    }

    /// Runs events until none is scheduled (held messages do not count). Returns false if
    /// [`QUIET_STEPS_MAX`] events ran without reaching quiet, e.g. because a node retries
    /// forever.
    pub fn run_until_quiet(&mut self) -> bool {
        for _ in 0..QUIET_STEPS_MAX {
            if !self.step() {
                return true;
            }
        }
        false
    }

    // ---- process faults ----

    /// Kills `id`: memory, timers and unsynced records are lost; synced records stay.
    pub fn crash(&mut self, id: &str) {
        self.counters.crashes += 1;
        let node = self.nodes.get_mut(id).expect("known node");
        assert!(node.algo.is_some(), "crash of {id}, which is down");
        node.algo = None;
        node.unsynced.clear();
        let timers = std::mem::take(&mut node.timers);
        for due in timers.values() {
            self.timer_due.remove(due);
        }
    }

    /// Starts a new incarnation of crashed node `id` with its synced records.
    pub fn restart(&mut self, id: &str) {
        let config = self.config(id);
        let seed = self.seed;
        let node = self.nodes.get_mut(id).expect("known node");
        assert!(node.algo.is_none(), "restart of {id}, which is up");
        node.incarnation += 1;
        node.restart_at_ms = None;
        node.algo = Some(A::new(&config).expect("config was accepted before"));
        node.ctx = Ctx::new(config, node_seed(seed, id, node.incarnation));
        let recovered = node.synced.clone();
        self.start(id, recovered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::restart_counter::RestartCounter;

    fn read(sim: &mut Sim<RestartCounter>, node: &str, key: u64) -> Option<u64> {
        let id = sim.read(node, key);
        match sim.reply(id) {
            Some(ClientReply::ReadOk { value }) => *value,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    #[test]
    fn crash_keeps_synced_records_only() {
        let mut sim = Sim::<RestartCounter>::new(2, 1);
        assert_eq!(read(&mut sim, "n1", 0), Some(0));
        for _ in 0..3 {
            sim.crash("n1");
            assert!(!sim.is_up("n1"));
            sim.restart("n1");
        }
        assert_eq!(read(&mut sim, "n1", 0), Some(3));
        assert_eq!(read(&mut sim, "n1", 1), Some(0));
        assert_eq!(read(&mut sim, "n2", 0), Some(0));
    }

    #[test]
    fn requests_to_a_crashed_node_are_lost() {
        let mut sim = Sim::<RestartCounter>::new(1, 1);
        sim.crash("n1");
        let id = sim.read("n1", 0);
        assert_eq!(sim.reply(id), None);
        assert!(sim.run_until_quiet());
    }
}
