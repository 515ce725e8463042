//! The lockstep stepper: nodes, the simulated network, virtual clients, faults, and the
//! single-threaded loop that delivers one event at a time.
//!
//! This file holds the state and the event dispatch; `phases` the start and the phases
//! of the run; `steps` one step and what the node answers; `faults` schedule events, triggers and the process
//! lifecycle; `client_ops` the clients' ops.
//!
//! Everything here runs on one blocking thread. Wall-clock time is read only for the
//! guards (a node's step, a node's start) and for the wall duration in `metrics.json`;
//! the order of events depends only on the seed and on what the nodes answer.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use proto::body::Control;
use proto::envelope::frame_raw;
use proto::lockstep::Lockstep;
use proto::ops::ClientOp;
use proto::{EnvelopeHead, Report, HARNESS};
use serde::Serialize;
use tokio::sync::watch;
use workloads::verdict::{FaultSpan, TimedReport};
use workloads::Workload;

use super::adversary::{Adversary, InstanceProgress, Scheduler};
use super::clients::{Answer, HistoryWriter, VClient};
use super::conn::{is_step_done, is_sync_wait, Listener, NodeConn, StepEnd};
use super::queue::{EventQueue, Lane};
use super::{guard_text, HOP_US};
use crate::nemesis::{
    Action, Confirmations, Decision, LinkTable, ProcessAction, ScheduleEvent, SpanBook, TriggerSet,
};
use crate::supervisor::Supervisor;
use crate::text::truncate;
use crate::trace::{TraceKind, TraceWriter};
use crate::verdict::FaultBook;

mod client_ops;
mod faults;
mod phases;
mod steps;

/// Process faults carried out, for `metrics.json`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessCounts {
    /// SIGKILLs by the nemesis.
    pub kills: u64,
    /// Restarts.
    pub restarts: u64,
    /// Pauses (the node takes no events).
    pub pauses: u64,
    /// Resumes.
    pub resumes: u64,
    /// Nodes treated as crashed after a protocol fault or a step timeout.
    pub crashes: u64,
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients issue ops; the schedule's faults apply.
    Main,
    /// Healed; ops in flight finish, nobody issues.
    Recovery,
    /// Final ops.
    Final,
}

/// One pending event.
enum Ev {
    /// A line for a node: a node message or a client request.
    Deliver {
        dest: usize,
        epoch: u64,
        lane: Option<Lane>,
        kind: TraceKind,
        line: String,
    },
    /// A timer of a node.
    Timer {
        node: usize,
        epoch: u64,
        timer_id: u64,
        gen: u64,
    },
    /// A client's next op is due.
    Issue { client: usize },
    /// A reply reaches a client.
    Reply {
        client: usize,
        from: String,
        body: String,
    },
    /// A client's op times out.
    Timeout { client: usize, msg_id: u64 },
}

struct NodeState {
    id: String,
    conn: Option<NodeConn>,
    /// Running and past its init step.
    up: bool,
    /// Bumped at every kill and restart: events for an older epoch are dropped.
    epoch: u64,
    paused: bool,
    /// Crashed for good (`crash`): never restarted.
    crashed: bool,
    /// Events that came due while paused, in order.
    parked: Vec<(Option<Lane>, Ev)>,
}

/// What the run configuration asks of the stepper.
pub struct StepperOpts {
    /// The run seed.
    pub seed: u64,
    /// Node ids, in order.
    pub node_ids: Vec<String>,
    /// Client workers.
    pub clients: usize,
    /// Target ops per second over all clients.
    pub rate: f64,
    /// End of the faulty part, virtual ms.
    pub time_limit_ms: u64,
    /// Quiet window after the heal, virtual ms.
    pub recovery_ms: u64,
    /// Client op timeout, virtual ms.
    pub op_timeout_ms: u64,
    /// Per-message hop latency drawn from the seed; `None`: [`HOP_US`] each.
    pub latency: Option<crate::trace::HopLatency>,
    /// Who orders node messages (`--scheduler`).
    pub scheduler: Scheduler,
    /// The bundled algorithm's name (the adversary's defaults).
    pub algorithm: String,
    /// The wall-clock guard on every step and on the nodes' start.
    pub guard: Duration,
}

/// The whole lockstep run state.
pub struct Stepper {
    handle: tokio::runtime::Handle,
    listener: Listener,
    sup: Supervisor,
    interrupt: watch::Receiver<bool>,
    opts: StepperOpts,
    nodes: Vec<NodeState>,
    node_index: BTreeMap<String, usize>,
    clients: Vec<VClient>,
    client_index: BTreeMap<String, usize>,
    queue: EventQueue<Ev>,
    /// Draws hop latencies (`--lockstep-latency`), from its own stream of the seed.
    latency_rng: rand_chacha::ChaCha8Rng,
    links: LinkTable,
    /// `--scheduler adversary`: node messages wait in its pool instead of the queue.
    adversary: Option<Adversary>,
    /// How long each instance stayed undecided.
    pub progress: InstanceProgress,
    triggers: TriggerSet,
    triggers_on: bool,
    timed: Vec<ScheduleEvent>,
    timed_next: usize,
    held: BTreeMap<(usize, usize), VecDeque<Ev>>,
    timers: BTreeMap<(usize, u64), u64>,
    timer_gen: u64,
    deferred: Vec<(Option<u32>, ProcessAction)>,
    trace: TraceWriter,
    history: HistoryWriter,
    workload: Box<dyn Workload>,
    final_ops: Vec<ClientOp>,
    init_msg_id: u64,
    /// During an init step: `Some(lockstep)` once `init_ok` was seen.
    init_ok: Option<bool>,
    /// Whether the current step is an init step (the only place `init_ok` may come).
    in_init: bool,
    scratch: Vec<String>,
    limit_us: u64,
    phase: Phase,
    next_process: u64,
    /// Steps delivered to nodes.
    pub steps: u64,
    /// Steps per kind of event.
    pub steps_by_kind: BTreeMap<&'static str, u64>,
    /// Events dropped because their node was down or restarted since.
    pub stale: u64,
    /// Kills that landed in the middle of the killed node's step.
    pub kills_mid_step: u64,
    /// Output lines discarded because their node was killed earlier in the step.
    pub cut_mid_step: u64,
    /// Ops issued after their open-loop start time.
    pub late_ops: u64,
    /// Routed messages by body type (node to node, requests, replies, reports).
    pub by_type: BTreeMap<String, u64>,
    /// Reports, stamped with virtual time.
    pub reports: Vec<TimedReport>,
    /// Node faults.
    pub faulty: FaultBook,
    /// Per schedule event: applied or not, and evidence.
    pub confirms: Confirmations,
    /// Process faults.
    pub process: ProcessCounts,
    /// Virtual ns of the final heal, if reached.
    pub quiet_from: Option<u64>,
    /// When each fault was on.
    book: SpanBook,
    /// Whether Ctrl-C ended the run early.
    pub interrupted: bool,
    /// Why the wall-clock guard stopped the run, if it did (the run ends `unknown`).
    pub stalled: Option<String>,
}

/// How a node's init step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitResult {
    /// `init_ok` with `lockstep: true` and `step_done`.
    Ready,
    /// `init_ok` without `lockstep: true`.
    NoLockstep,
    /// No answer, or the node failed.
    Failed,
}

/// Everything [`Stepper::new`] needs beyond the options.
pub struct StepperParts {
    /// The runtime the supervisor and the listener belong to.
    pub handle: tokio::runtime::Handle,
    /// The loopback listener the nodes connect to.
    pub listener: Listener,
    /// The supervisor, nodes already spawned.
    pub sup: Supervisor,
    /// Ctrl-C.
    pub interrupt: watch::Receiver<bool>,
    /// The schedule's link-fault seed, triggers, timed events and confirmations.
    pub schedule: crate::nemesis::Schedule,
    /// The op generator.
    pub workload: Box<dyn Workload>,
    /// `trace.bin`.
    pub trace: TraceWriter,
    /// `history.jsonl`.
    pub history: HistoryWriter,
}

impl Stepper {
    /// A stepper at virtual time 0 with no node connected yet.
    pub fn new(opts: StepperOpts, parts: StepperParts) -> Stepper {
        let StepperParts {
            handle,
            listener,
            sup,
            interrupt,
            schedule,
            workload,
            trace,
            history,
        } = parts;
        let nodes: Vec<NodeState> = opts
            .node_ids
            .iter()
            .map(|id| NodeState {
                id: id.clone(),
                conn: None,
                up: false,
                epoch: 0,
                paused: false,
                crashed: false,
                parked: Vec::new(),
            })
            .collect();
        let node_index = opts
            .node_ids
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let interval_us = ((opts.clients as f64 / opts.rate) * 1e6).max(1.0) as u64;
        let clients: Vec<VClient> = (0..opts.clients)
            .map(|i| VClient::new(i, opts.seed, i as u64, interval_us))
            .collect();
        let client_index = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.addr.clone(), i))
            .collect();
        let final_ops = workload.final_ops();
        Stepper {
            handle,
            listener,
            sup,
            interrupt,
            queue: EventQueue::new(crate::nemesis::derive_seed(opts.seed, &["lockstep"])),
            latency_rng: rand_chacha::rand_core::SeedableRng::seed_from_u64(
                crate::nemesis::derive_seed(opts.seed, &["lockstep", "latency"]),
            ),
            links: LinkTable::new(schedule.seed, &opts.node_ids),
            adversary: match &opts.scheduler {
                Scheduler::Random => None,
                Scheduler::Adversary { hold } => {
                    Some(Adversary::new(hold.as_deref(), &opts.algorithm))
                }
            },
            progress: InstanceProgress::default(),
            triggers: TriggerSet::new(&schedule),
            triggers_on: true,
            timed: schedule.timed_events().into_iter().cloned().collect(),
            timed_next: 0,
            confirms: Confirmations::new(&schedule),
            nodes,
            node_index,
            next_process: clients.len() as u64,
            clients,
            client_index,
            held: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_gen: 0,
            deferred: Vec::new(),
            trace,
            history,
            workload,
            final_ops,
            init_msg_id: 0,
            init_ok: None,
            in_init: false,
            scratch: Vec::new(),
            limit_us: opts.time_limit_ms.saturating_mul(1_000),
            opts,
            phase: Phase::Main,
            steps: 0,
            steps_by_kind: BTreeMap::new(),
            stale: 0,
            kills_mid_step: 0,
            cut_mid_step: 0,
            late_ops: 0,
            by_type: BTreeMap::new(),
            reports: Vec::new(),
            faulty: FaultBook::default(),
            process: ProcessCounts::default(),
            quiet_from: None,
            book: SpanBook::default(),
            interrupted: false,
            stalled: None,
        }
    }

    /// Records what the carried-out event `id` (0 for the harness's own) does to the
    /// fault spans, now.
    pub(super) fn track(&mut self, id: Option<u32>, action: &Action) {
        let now_ns = self.now_us() * 1_000;
        self.book.track(id.unwrap_or(0), action, now_ns);
    }

    /// Every fault span, ended or still on, by start.
    pub fn fault_spans(&self) -> Vec<FaultSpan> {
        self.book.spans()
    }

    /// Events handled when more than one was ready: where the seed chose the order.
    pub fn choices(&self) -> u64 {
        self.queue.choices()
    }

    /// Virtual time, µs.
    pub fn now_us(&self) -> u64 {
        self.queue.now_us()
    }

    /// Nodes running at the end, in order.
    pub fn live_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.up)
            .map(|n| n.id.clone())
            .collect()
    }

    /// Nodes that never became ready.
    pub fn not_ready(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !n.up)
            .map(|n| n.id.clone())
            .collect()
    }

    /// The link table's fault counters.
    pub fn fault_counters(&self) -> crate::nemesis::FaultCounters {
        self.links.counters()
    }

    /// What the adversary did, for `metrics.json` (`None` under `random`).
    pub fn adversary_summary(&self) -> Option<serde_json::Value> {
        self.adversary.as_ref().map(Adversary::summary)
    }

    /// The supervisor (for teardown and its records).
    pub fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.sup
    }

    /// The trace and history writers and the supervisor, for the caller to finish.
    pub fn into_writers(self) -> (TraceWriter, HistoryWriter, Supervisor) {
        (self.trace, self.history, self.sup)
    }

    fn fault(&mut self, node: &str, what: impl Into<String>) {
        let what = what.into();
        tracing::warn!(node = %node, what = %what, "node fault (lockstep)");
        let at_us = self.now_us();
        self.faulty.add(node, "step", what, at_us);
    }

    fn record(&mut self, node: &str, kind: TraceKind, line: &str) -> anyhow::Result<()> {
        let at_us = self.now_us();
        self.trace.append_parts(self.steps, at_us, node, kind, line)
    }

    /// The virtual time a node-to-node message spends on the wire: [`HOP_US`], or a
    /// draw from `--lockstep-latency`.
    pub(super) fn hop_us(&mut self) -> u64 {
        match self.opts.latency {
            None => HOP_US,
            Some(l) => rand::Rng::gen_range(&mut self.latency_rng, l.min_us..=l.max_us),
        }
    }

    /// Whether the run must stop now: Ctrl-C, or the guard fired.
    fn halted(&mut self) -> bool {
        if !self.interrupted && *self.interrupt.borrow() {
            self.interrupted = true;
        }
        self.interrupted || self.stalled.is_some()
    }

    /// Stops the run: node `i` took longer than the guard to `what` (the first stall
    /// wins). Nothing is recorded against the node and nothing reaches the algorithm:
    /// the run ends `unknown`.
    pub(super) fn stall(&mut self, i: usize, what: &str) {
        if self.stalled.is_some() {
            return;
        }
        let why = format!(
            "node {} did not {what} within {} (the lockstep wall-clock guard; {} sets it); \
             the run stopped there, at virtual {} us",
            self.nodes[i].id,
            guard_text(self.opts.guard),
            super::conn::GUARD_ENV,
            self.now_us(),
        );
        tracing::warn!(why = %why, "lockstep run stalled");
        self.stalled = Some(why);
    }

    // ---------------------------------------------------------------- events

    fn handle(&mut self, ev: Ev) -> anyhow::Result<()> {
        match ev {
            Ev::Deliver {
                dest,
                epoch,
                lane,
                kind,
                line,
            } => {
                let n = &mut self.nodes[dest];
                if !n.up || n.epoch != epoch {
                    self.stale += 1;
                } else if n.paused {
                    let ev = Ev::Deliver {
                        dest,
                        epoch,
                        lane,
                        kind,
                        line,
                    };
                    n.parked.push((lane, ev));
                } else {
                    self.step(dest, kind, line)?;
                }
            }
            Ev::Timer {
                node,
                epoch,
                timer_id,
                gen,
            } => {
                let n = &mut self.nodes[node];
                let current = self.timers.get(&(node, timer_id)) == Some(&gen);
                if !current || !n.up || n.epoch != epoch {
                    // Re-set, cancelled, or the node died since: nothing fires.
                } else if n.paused {
                    let ev = Ev::Timer {
                        node,
                        epoch,
                        timer_id,
                        gen,
                    };
                    n.parked.push((None, ev));
                } else {
                    self.timers.remove(&(node, timer_id));
                    let body = serde_json::to_string(&Lockstep::TimerFired { timer_id })?;
                    let id = n.id.clone();
                    self.step(node, TraceKind::Timer, envelope(HARNESS, &id, &body))?;
                }
            }
            Ev::Issue { client } => self.issue(client)?,
            Ev::Reply { client, from, body } => {
                // Only a body naming the op in flight answers it; one that names it but is
                // no reply is the node's protocol fault.
                let names_inflight = crate::clients::in_reply_to(&body).is_some_and(|id| {
                    self.clients[client]
                        .inflight
                        .as_ref()
                        .is_some_and(|f| f.msg_id == id && f.node == from)
                });
                if names_inflight {
                    let answer = match &self.clients[client].inflight {
                        Some(f) => crate::clients::parse_answer(&f.op, &body),
                        None => Answer::Timeout,
                    };
                    let addr = self.clients[client].addr.clone();
                    self.record(&addr, TraceKind::Reply, &body)?;
                    self.complete(client, answer)?;
                }
            }
            Ev::Timeout { client, msg_id } => {
                let current = self.clients[client]
                    .inflight
                    .as_ref()
                    .is_some_and(|f| f.msg_id == msg_id);
                if current {
                    let addr = self.clients[client].addr.clone();
                    self.record(&addr, TraceKind::Timeout, &msg_id.to_string())?;
                    self.complete(client, Answer::Timeout)?;
                }
            }
        }
        Ok(())
    }
}

/// Whether `line` is an `init_ok` that does not say `"lockstep": true`.
fn refuses_lockstep(line: &str) -> bool {
    line.contains("init_ok")
        && EnvelopeHead::parse(line.as_bytes()).is_ok_and(|h| {
            h.dest == HARNESS
                && matches!(
                    serde_json::from_str::<Control>(h.body.get()),
                    Ok(Control::InitOk {
                        lockstep: false,
                        ..
                    })
                )
        })
}

/// An envelope line without its newline.
fn envelope(src: &str, dest: &str, body: &str) -> String {
    let mut raw = frame_raw(src, dest, body);
    raw.pop();
    String::from_utf8(raw).expect("frame_raw writes UTF-8")
}

fn action_json(action: &Action) -> String {
    serde_json::to_string(action).unwrap_or_else(|_| action.name().to_string())
}

fn kind_name(kind: TraceKind) -> &'static str {
    kind.name()
}
