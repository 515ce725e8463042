//! The lockstep world: nodes, the simulated network, virtual clients, faults, and the
//! single-threaded loop that delivers one event at a time.
//!
//! This file holds the state, the start, the steps and what nodes answer, the event
//! dispatch and the phases; `faults` holds schedule events, triggers and the process
//! lifecycle; `flow` the clients' ops.
//!
//! Everything here runs on one blocking thread. Wall-clock time is read only for the
//! guards (a node's step, a node's start) and for the wall duration in `metrics.json`;
//! the order of events depends only on the seed and on what the nodes answer.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use proto::body::Control;
use proto::envelope::frame_raw;
use proto::lockstep::Lockstep;
use proto::ops::{ClientOp, Response};
use proto::{EnvelopeHead, Report, HARNESS};
use serde::Serialize;
use tokio::sync::watch;
use workloads::verdict::{FaultSpan, TimedReport};
use workloads::Workload;

use super::clients::{Answer, HistoryWriter, VClient};
use super::conn::{is_step_done, is_sync_wait, Listener, NodeConn, StepEnd};
use super::queue::{EventQueue, Lane};
use super::trace::{TraceKind, TraceRecord, TraceWriter};
use super::{HOP_US, STARTUP_TIMEOUT};
use crate::nemesis::{
    Action, Confirmations, Decision, LinkTable, ProcessAction, ScheduleEvent, SpanBook, TriggerSet,
};
use crate::supervisor::Supervisor;
use crate::text::truncate;
use crate::verdict::FaultBook;

mod faults;
mod flow;

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

/// What the run configuration asks of the world.
pub struct WorldOpts {
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
}

/// The whole lockstep run state.
pub struct World {
    handle: tokio::runtime::Handle,
    listener: Listener,
    sup: Supervisor,
    interrupt: watch::Receiver<bool>,
    opts: WorldOpts,
    nodes: Vec<NodeState>,
    node_index: BTreeMap<String, usize>,
    clients: Vec<VClient>,
    client_index: BTreeMap<String, usize>,
    queue: EventQueue<Ev>,
    links: LinkTable,
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
    interval_us: u64,
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

/// Everything [`World::new`] needs beyond the options.
pub struct WorldParts {
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

impl World {
    /// A world at virtual time 0 with no node connected yet.
    pub fn new(opts: WorldOpts, parts: WorldParts) -> World {
        let WorldParts {
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
        World {
            handle,
            listener,
            sup,
            interrupt,
            queue: EventQueue::new(crate::nemesis::derive_seed(opts.seed, &["lockstep"])),
            links: LinkTable::new(schedule.seed, &opts.node_ids),
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
            interval_us,
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

    fn record(&mut self, node: &str, kind: TraceKind, line: String) -> anyhow::Result<()> {
        self.trace.append(&TraceRecord {
            step: self.steps,
            at_us: self.now_us(),
            node: node.to_string(),
            kind,
            line,
        })
    }

    fn interrupted_now(&mut self) -> bool {
        if !self.interrupted && *self.interrupt.borrow() {
            self.interrupted = true;
        }
        self.interrupted
    }

    // ---------------------------------------------------------------- startup

    /// Accepts a node's connection and reads its `hello` by `deadline`.
    fn accept_hello(&mut self, deadline: Instant) -> Option<(String, NodeConn)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let accepted = self
                .handle
                .block_on(tokio::time::timeout(left, self.listener.accept()));
            let stream = match accepted {
                Ok(Ok((stream, _))) => stream,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
                Err(_) => return None,
            };
            let Ok(std_stream) = stream.into_std() else {
                continue;
            };
            let Ok(mut conn) = NodeConn::new(std_stream) else {
                continue;
            };
            // A refused connection is counted by the gate and closed, blaming no node.
            if let Some(node_id) = conn.read_hello(deadline, self.listener.gate()) {
                return Some((node_id, conn));
            }
        }
    }

    /// Connects every spawned node and runs their init steps in node order. Returns the
    /// first node that answered `init_ok` without lockstep, if any.
    pub fn start(&mut self) -> anyhow::Result<Option<String>> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut waiting = self.nodes.len();
        while waiting > 0 {
            let Some((id, conn)) = self.accept_hello(deadline) else {
                break;
            };
            match self.node_index.get(&id).copied() {
                Some(i) if self.nodes[i].conn.is_none() => {
                    self.nodes[i].conn = Some(conn);
                    waiting -= 1;
                }
                _ => self.fault(&id, "said hello with an unknown or duplicate node id"),
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].conn.is_none() {
                continue;
            }
            if self.init_node(i)? == InitResult::NoLockstep {
                return Ok(Some(self.nodes[i].id.clone()));
            }
        }
        Ok(None)
    }

    fn init_node(&mut self, i: usize) -> anyhow::Result<InitResult> {
        self.init_msg_id += 1;
        let id = self.nodes[i].id.clone();
        let body = proto::lockstep::init_body(self.init_msg_id, &id, &self.opts.node_ids, true);
        let line = envelope(HARNESS, &id, &body);
        self.init_ok = None;
        self.nodes[i].up = true;
        self.in_init = true;
        let stepped = self.step(i, TraceKind::Init, line);
        self.in_init = false;
        stepped?;
        Ok(match self.init_ok.take() {
            Some(true) if self.nodes[i].up => InitResult::Ready,
            Some(false) => InitResult::NoLockstep,
            _ => {
                if self.nodes[i].up {
                    self.crash(i, "did not answer init with init_ok");
                }
                InitResult::Failed
            }
        })
    }

    // ---------------------------------------------------------------- steps

    /// Delivers `line` to node `i` and handles everything it answers.
    fn step(&mut self, i: usize, kind: TraceKind, line: String) -> anyhow::Result<()> {
        self.steps += 1;
        *self.steps_by_kind.entry(kind_name(kind)).or_default() += 1;
        let mut record = TraceRecord {
            step: self.steps,
            at_us: self.now_us(),
            node: self.nodes[i].id.clone(),
            kind,
            line,
        };
        self.trace.append(&record)?;
        record.line.push('\n');
        let mut lines = std::mem::take(&mut self.scratch);
        let init = kind == TraceKind::Init;
        let mut sent = match self.nodes[i].conn.as_mut() {
            None => false,
            Some(conn) => conn.send(record.line.as_bytes()).is_ok(),
        };
        // A kill the step's own output fires lands right after that line: the lines
        // after it never leave, and a node waiting at `sync_wait` never syncs.
        let mut dying = false;
        let end = loop {
            lines.clear();
            let end = match self.nodes[i].conn.as_mut() {
                Some(conn) if sent => conn.read_step_with(&mut lines, |l| {
                    is_step_done(l) || is_sync_wait(l) || (init && refuses_lockstep(l))
                }),
                _ => StepEnd::Closed,
            };
            let mut at_sync = false;
            for line in lines.drain(..) {
                if dying {
                    self.cut_mid_step += 1;
                } else if is_sync_wait(&line) {
                    at_sync = true;
                } else {
                    self.on_output(i, line)?;
                    dying = self.kill_pending(i);
                }
            }
            if end != StepEnd::Done || !at_sync || dying {
                break end;
            }
            let id = self.nodes[i].id.clone();
            let go = serde_json::to_string(&Lockstep::SyncGo)?;
            let go = format!("{}\n", envelope(HARNESS, &id, &go));
            sent = self.nodes[i]
                .conn
                .as_mut()
                .is_some_and(|c| c.send(go.as_bytes()).is_ok());
        };
        self.scratch = lines;
        if dying {
            self.kills_mid_step += 1;
        }
        match end {
            StepEnd::Done => {}
            StepEnd::Leftover => {
                let id = self.nodes[i].id.clone();
                let what = end.fault().unwrap_or_default();
                self.fault(&id, what);
            }
            other => {
                if !(init && self.init_ok == Some(false)) {
                    let what = other.fault().unwrap_or_default();
                    self.crash(i, what);
                }
            }
        }
        let deferred = std::mem::take(&mut self.deferred);
        for (id, action) in deferred {
            self.process_action(id, action)?;
        }
        Ok(())
    }

    /// Handles one line node `i` wrote during its step.
    fn on_output(&mut self, i: usize, line: String) -> anyhow::Result<()> {
        let (dest, ty, body) = {
            let Ok(head) = EnvelopeHead::parse(line.as_bytes()) else {
                let id = self.nodes[i].id.clone();
                self.fault(
                    &id,
                    format!(
                        "wrote a line that is not an envelope: {}",
                        truncate(&line, 120)
                    ),
                );
                return Ok(());
            };
            if head.src != self.nodes[i].id {
                let id = self.nodes[i].id.clone();
                let what = format!("sent a line with src {:?}", head.src);
                self.fault(&id, what);
                return Ok(());
            }
            let ty = head.body_type().unwrap_or_default();
            let body = if head.dest == HARNESS || self.client_index.contains_key(head.dest) {
                head.body.get().to_string()
            } else {
                String::new()
            };
            (head.dest.to_string(), ty, body)
        };
        if dest == HARNESS {
            return self.on_harness_line(i, &ty, &body);
        }
        let src = self.nodes[i].id.clone();
        if let Some(&d) = self.node_index.get(&dest) {
            self.count(&ty);
            self.observe(&src, &dest, &ty)?;
            let now = self.now_us();
            match self.links.decide(&src, &dest, &ty, now) {
                Decision::Deliver { copies } => {
                    let n = copies.len();
                    let mut line = Some(line);
                    for (k, copy) in copies.iter().enumerate() {
                        let text = if k + 1 == n {
                            line.take().unwrap_or_default()
                        } else {
                            line.clone().unwrap_or_default()
                        };
                        let lane = copy.fifo.then(|| self.link_lane(i, d));
                        let ev = Ev::Deliver {
                            dest: d,
                            epoch: self.nodes[d].epoch,
                            lane,
                            kind: TraceKind::Message,
                            line: text,
                        };
                        self.queue.push(now + HOP_US + copy.delay_us, lane, ev);
                    }
                }
                Decision::Drop { .. } => {}
                Decision::Hold => {
                    let ev = Ev::Deliver {
                        dest: d,
                        epoch: self.nodes[d].epoch,
                        lane: Some(self.link_lane(i, d)),
                        kind: TraceKind::Message,
                        line,
                    };
                    self.held.entry((i, d)).or_default().push_back(ev);
                }
            }
        } else if let Some(&c) = self.client_index.get(&dest) {
            self.count(&ty);
            self.observe(&src, &dest, &ty)?;
            let at = self.now_us() + HOP_US;
            self.queue.push(
                at,
                None,
                Ev::Reply {
                    client: c,
                    from: src,
                    body,
                },
            );
        } else {
            self.fault(&src, format!("sent a message to unknown address {dest:?}"));
        }
        Ok(())
    }

    fn on_harness_line(&mut self, i: usize, ty: &str, body: &str) -> anyhow::Result<()> {
        let id = self.nodes[i].id.clone();
        match ty {
            "timer_set" | "timer_cancel" | "step_done" | "timer_fired" | "sync_wait"
            | "sync_go" => match serde_json::from_str::<Lockstep>(body) {
                Ok(Lockstep::TimerSet { timer_id, after_ms }) => {
                    self.timer_gen += 1;
                    let gen = self.timer_gen;
                    self.timers.insert((i, timer_id), gen);
                    let delay_us = after_ms.saturating_mul(1_000).max(1);
                    let ev = Ev::Timer {
                        node: i,
                        epoch: self.nodes[i].epoch,
                        timer_id,
                        gen,
                    };
                    self.queue
                        .push(self.now_us().saturating_add(delay_us), None, ev);
                }
                Ok(Lockstep::TimerCancel { timer_id }) => {
                    self.timers.remove(&(i, timer_id));
                }
                Ok(Lockstep::StepDone | Lockstep::SyncWait) => {}
                Ok(Lockstep::TimerFired { .. } | Lockstep::SyncGo) => {
                    self.fault(&id, format!("sent {ty}, which only the harness sends"));
                }
                Err(e) => self.fault(&id, format!("malformed {ty}: {e}")),
            },
            "init_ok" => match serde_json::from_str::<Control>(body) {
                Ok(Control::InitOk { lockstep, .. }) if self.in_init && self.init_ok.is_none() => {
                    self.init_ok = Some(lockstep);
                }
                _ => self.fault(&id, format!("unexpected init_ok: {}", truncate(body, 120))),
            },
            _ => match serde_json::from_str::<Report>(body) {
                Ok(report) => {
                    self.count(ty);
                    self.observe(&id, HARNESS, ty)?;
                    self.reports.push(TimedReport {
                        time: self.now_us() * 1_000,
                        made: None,
                        node: id,
                        report,
                    });
                }
                Err(_) => {
                    let what = format!(
                        "sent the harness an unknown message: {}",
                        truncate(body, 120)
                    );
                    self.fault(&id, what);
                }
            },
        }
        Ok(())
    }

    fn count(&mut self, ty: &str) {
        match self.by_type.get_mut(ty) {
            Some(n) => *n += 1,
            None => {
                self.by_type.insert(ty.to_string(), 1);
            }
        }
    }

    fn link_lane(&self, src: usize, dest: usize) -> Lane {
        (src * self.nodes.len() + dest) as Lane
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
                    let answer = match serde_json::from_str::<Response>(&body) {
                        Ok(r) => Answer::Reply(r.reply),
                        Err(_) => Answer::Malformed(crate::text::truncate(&body, 120)),
                    };
                    let addr = self.clients[client].addr.clone();
                    self.record(&addr, TraceKind::Reply, body)?;
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
                    self.record(&addr, TraceKind::Timeout, msg_id.to_string())?;
                    self.complete(client, Answer::Timeout)?;
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- phases

    /// Runs the whole sequence: faulty part, heal, quiet window, final ops.
    pub fn run(&mut self) -> anyhow::Result<()> {
        for c in 0..self.clients.len() {
            let at = self.clients[c].next_start_us;
            self.queue.push(at, None, Ev::Issue { client: c });
        }
        self.run_until(Some(self.limit_us), false)?;
        if self.interrupted {
            return Ok(());
        }
        self.heal()?;
        let recovery_end = self
            .limit_us
            .saturating_add(self.opts.recovery_ms.saturating_mul(1_000));
        self.run_until(Some(recovery_end), false)?;
        if self.interrupted {
            return Ok(());
        }
        self.start_final();
        self.run_until(None, true)
    }

    /// Delivers events until virtual time `end_us` (exclusive), or until every client
    /// is done when `until_done`.
    fn run_until(&mut self, end_us: Option<u64>, until_done: bool) -> anyhow::Result<()> {
        loop {
            if self.interrupted_now() {
                return Ok(());
            }
            if until_done && self.clients.iter().all(VClient::is_done) {
                return Ok(());
            }
            let tq = self.queue.next_time();
            let ts = (self.phase == Phase::Main)
                .then(|| self.timed.get(self.timed_next))
                .flatten()
                .and_then(|e| e.at_ms)
                .map(|ms| ms.saturating_mul(1_000));
            let Some(t) = [tq, ts].into_iter().flatten().min() else {
                return Ok(());
            };
            if let Some(end) = end_us {
                if t >= end {
                    self.queue.advance_to(end);
                    return Ok(());
                }
            }
            if ts.is_some_and(|ts| tq.is_none_or(|tq| ts <= tq)) {
                self.queue.advance_to(t);
                let event = self.timed[self.timed_next].clone();
                self.timed_next += 1;
                self.apply_action(Some(event.id), &event.action)?;
                continue;
            }
            let (_, ev) = self.queue.pop().expect("an event is pending");
            self.handle(ev)?;
        }
    }

    /// The end of the faulty part: remaining timed events up to the limit, then every
    /// fault lifted, every killed node restarted, every paused node resumed.
    fn heal(&mut self) -> anyhow::Result<()> {
        self.phase = Phase::Recovery;
        while let Some(event) = self.timed.get(self.timed_next).cloned() {
            if event
                .at_ms
                .is_none_or(|ms| ms.saturating_mul(1_000) > self.limit_us)
            {
                break;
            }
            self.timed_next += 1;
            self.apply_action(Some(event.id), &event.action)?;
        }
        self.triggers_on = false;
        self.confirms
            .note_unfired(&self.triggers, self.now_us() / 1_000);
        self.apply_action(None, &Action::HealAll {})?;
        self.quiet_from = Some(self.now_us() * 1_000);
        Ok(())
    }

    /// Closes every connection (nodes exit on EOF) ahead of the supervisor's teardown.
    pub fn disconnect_all(&mut self) {
        for n in &mut self.nodes {
            n.conn = None;
        }
    }

    /// Records exits the supervisor saw that squall did not cause.
    pub fn note_unexpected_exits(&mut self) {
        while let Some((ev, expected)) = self.sup.try_next_exit() {
            if !expected {
                let what = format!("exited unexpectedly ({})", ev.status);
                self.fault(&ev.node.clone(), what);
            }
        }
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
    match kind {
        TraceKind::Init => "init",
        TraceKind::Message => "message",
        TraceKind::Request => "request",
        TraceKind::Timer => "timer",
        TraceKind::Fault => "fault",
        TraceKind::Reply => "reply",
        TraceKind::Timeout => "timeout",
    }
}
