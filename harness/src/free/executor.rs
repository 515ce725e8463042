//! The nemesis's executor in a free-running run: carries a fault schedule out.
//!
//! The [`nemesis`](crate::nemesis) decides; this module acts. [`FaultPolicy`] is the
//! router's link policy for a run with faults: the nemesis' [`LinkTable`] decides each
//! message's fate and its [`TriggerSet`] sees every message, so a trigger fires on the
//! very message that matches. [`NemesisExecutor`] is the run loop's executor: it fires timed events
//! when their time comes, carries out the process part of triggered ones through the
//! supervisor, confirms every event with its evidence, tracks which faults were active
//! when (the [`FaultSpan`]s checkers explain violations with), and at the end heals
//! everything.
//!
//! Schedule time 0 is the moment clients start, after every node has answered `init`:
//! a fault before there is any traffic would test nothing. [`FaultSpan`] times, like
//! history times, are nanoseconds since the run started (before the nodes were spawned).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use workloads::verdict::FaultSpan;

use crate::nemesis::{
    Action, Confirmations, Ended, FaultKind, FaultReport, Link, LinkCounters, LinkStatus,
    LinkTable, NetAction, ProcessAction, ProcessCounters, Schedule, ScheduleEvent, SpanBook,
    TriggerSet, Warning,
};
use crate::router::{Decision, LinkPolicy, Router};
use crate::supervisor::{ExitEvent, Supervisor};

/// How long a restart waits for the killed process to be reaped.
const REAP_WAIT_MS: u64 = 2_000;

/// An event a trigger fired inside the router; its process part is still to be done.
#[derive(Debug, Clone)]
pub struct Fired {
    /// The schedule event.
    pub id: u32,
    /// Its action, with `$src` / `$dest` resolved.
    pub action: Action,
    /// When the matching message was routed, in µs since the run started.
    pub at_us: u64,
}

/// The router's policy in a run with faults.
pub struct FaultPolicy {
    table: LinkTable,
    /// The cluster's nodes when service links are faulted (`--fault-services`): a
    /// partition of them also cuts [`crate::services::partition_cut`]'s links.
    service_cut: Option<Vec<String>>,
    triggers: TriggerSet,
    /// Router time (µs) of schedule time 0.
    origin_us: u64,
    fired: mpsc::UnboundedSender<Fired>,
    released: Vec<Link>,
}

impl FaultPolicy {
    fn apply(&mut self, action: &NetAction) {
        let opened = match (action, &self.service_cut) {
            (NetAction::Partition { cut, mode }, Some(nodes)) => {
                let mut cut = cut.clone();
                cut.extend(crate::services::partition_cut(nodes, &cut));
                self.table.apply(&NetAction::Partition { cut, mode: *mode })
            }
            _ => self.table.apply(action),
        };
        self.released.extend(opened);
    }
}

impl LinkPolicy for FaultPolicy {
    fn decide(&mut self, src: &str, dest: &str, ty: &str, now_us: u64) -> Decision {
        if !self.triggers.is_empty() {
            let now_ms = now_us.saturating_sub(self.origin_us) / 1_000;
            for (id, action) in self.triggers.observe(src, dest, ty, now_ms) {
                if let Some(net) = action.net() {
                    self.apply(&net);
                }
                let _ = self.fired.send(Fired {
                    id,
                    action,
                    at_us: now_us,
                });
            }
        }
        <LinkTable as LinkPolicy>::decide(&mut self.table, src, dest, ty, now_us)
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn take_released(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.released)
    }
}

/// Runs `f` on the run's [`FaultPolicy`]; `R::default()` if none is installed (the run
/// ended before schedule time began, e.g. nodes failed to start).
fn with_faults<R: Default>(router: &Router, f: impl FnOnce(&mut FaultPolicy) -> R) -> R {
    router.with_policy(|p| {
        p.as_any_mut()
            .downcast_mut::<FaultPolicy>()
            .map(f)
            .unwrap_or_default()
    })
}

/// The nemesis's executor in one free-running run: it carries the schedule out.
pub struct NemesisExecutor {
    schedule: Schedule,
    requested: Vec<FaultKind>,
    timed: Vec<ScheduleEvent>,
    next: usize,
    /// Schedule time 0 (`None` until clients start).
    origin: Option<Instant>,
    run_start: Instant,
    fired_tx: mpsc::UnboundedSender<Fired>,
    /// Triggered events whose process part is due.
    pub fired_rx: mpsc::UnboundedReceiver<Fired>,
    confirm: Confirmations,
    book: SpanBook,
    /// Link counters when each event's span opened, for its `while_active` evidence.
    counters_at_open: BTreeMap<u32, LinkCounters>,
    healed: bool,
    /// Whether links to the services are faulted too (`--fault-services`).
    fault_services: bool,
}

impl NemesisExecutor {
    /// An executor for `schedule`; `requested` are the kinds the user asked for.
    pub fn new(
        schedule: Schedule,
        requested: Vec<FaultKind>,
        run_start: Instant,
    ) -> NemesisExecutor {
        let timed = schedule.timed_events().into_iter().cloned().collect();
        // Unbounded by design: a triggered event fires at most once, so the channel
        // holds at most the schedule's events (EVENTS_MAX).
        let (fired_tx, fired_rx) = mpsc::unbounded_channel();
        NemesisExecutor {
            confirm: Confirmations::new(&schedule),
            schedule,
            requested,
            timed,
            next: 0,
            origin: None,
            run_start,
            fired_tx,
            fired_rx,
            book: SpanBook::default(),
            counters_at_open: BTreeMap::new(),
            healed: false,
            fault_services: false,
        }
    }

    /// Lets the schedule's link faults and partitions reach the links between nodes and
    /// the services ([`crate::services::SERVICES`]); off by default, as in Maelstrom.
    pub fn fault_services(&mut self) {
        self.fault_services = true;
    }

    /// Whether the schedule has anything to do at all.
    pub fn is_empty(&self) -> bool {
        self.schedule.events.is_empty()
    }

    /// Starts schedule time: installs the fault policy in the router.
    pub fn begin(&mut self, router: &Router) {
        let now = Instant::now();
        self.origin = Some(now);
        if self.is_empty() {
            return;
        }
        let nodes = &self.schedule.nodes;
        let services = crate::services::SERVICES.iter().map(|s| s.to_string());
        let endpoints: Vec<String> = if self.fault_services {
            nodes.iter().cloned().chain(services).collect()
        } else {
            nodes.clone()
        };
        let policy = FaultPolicy {
            table: LinkTable::new(self.schedule.seed, &endpoints),
            service_cut: self.fault_services.then(|| nodes.clone()),
            triggers: TriggerSet::new(&self.schedule),
            origin_us: self.ns_since_start(now) / 1_000,
            fired: self.fired_tx.clone(),
            released: Vec::new(),
        };
        router.set_policy(Box::new(policy));
    }

    /// When the next timed event is due.
    pub fn next_at(&self) -> Option<Instant> {
        let origin = self.origin?;
        if self.healed {
            return None;
        }
        let e = self.timed.get(self.next)?;
        Some(origin + Duration::from_millis(e.at_ms.unwrap_or(0)))
    }

    /// Carries out every timed event that is due (with `all`, every one left: the run
    /// is at its time limit). Returns the process exits it had to wait for (a restart
    /// waits for the killed process to be reaped), for the caller to account for.
    pub async fn run_due(
        &mut self,
        router: &Router,
        sup: &mut Supervisor,
        all: bool,
    ) -> Vec<(ExitEvent, bool)> {
        let mut exits = Vec::new();
        while let Some(at) = self.next_at() {
            if !all && at > Instant::now() {
                break;
            }
            let event = self.timed[self.next].clone();
            self.next += 1;
            if let Some(net) = event.action.net() {
                with_faults(router, |p| p.apply(&net));
            }
            exits.extend(self.carry_out(event.id, &event.action, router, sup).await);
        }
        exits
    }

    /// Carries out the process part of an event a trigger fired (its network part was
    /// applied inside the router already).
    pub async fn run_fired(
        &mut self,
        fired: Fired,
        router: &Router,
        sup: &mut Supervisor,
    ) -> Vec<(ExitEvent, bool)> {
        if self.healed {
            let now_ms = self.schedule_ms(Instant::now());
            self.confirm
                .not_applied(fired.id, now_ms, "fired after the final heal; ignored");
            return Vec::new();
        }
        self.confirm.add_evidence(
            fired.id,
            json!({"fired_at_ms": self.schedule_ms_of_us(fired.at_us)}),
        );
        self.carry_out(fired.id, &fired.action, router, sup).await
    }

    /// Applies `action`'s process part, then confirms the event and updates spans.
    async fn carry_out(
        &mut self,
        id: u32,
        action: &Action,
        router: &Router,
        sup: &mut Supervisor,
    ) -> Vec<(ExitEvent, bool)> {
        let now = Instant::now();
        let now_ms = self.schedule_ms(now);
        let mut exits = Vec::new();
        let outcome: Result<Value, String> = match action.process() {
            None => Ok(self.net_evidence(action, router)),
            Some(p) => self.process(&p, router, sup, &mut exits).await,
        };
        match outcome {
            Ok(evidence) => {
                self.confirm.applied(id, now_ms, evidence);
                self.track(id, action, now, router);
            }
            Err(reason) => self.confirm.not_applied(id, now_ms, reason),
        }
        exits
    }

    async fn process(
        &mut self,
        action: &ProcessAction,
        router: &Router,
        sup: &mut Supervisor,
        exits: &mut Vec<(ExitEvent, bool)>,
    ) -> Result<Value, String> {
        match action {
            ProcessAction::Kill { node } | ProcessAction::Crash { node } => {
                let for_good = matches!(action, ProcessAction::Crash { .. });
                let pid = sup.pid(node);
                let done = if for_good {
                    sup.crash(node)
                } else {
                    sup.kill(node)
                };
                if done {
                    router.disconnect(node);
                }
                let mut evidence = json!({"signal": "SIGKILL", "pid": pid});
                if for_good {
                    evidence["for_good"] = json!(true);
                }
                signalled(done, node, evidence, "running")
            }
            ProcessAction::Restart { node, amnesia } => restart(node, *amnesia, sup, exits).await,
            ProcessAction::Pause { node } | ProcessAction::Resume { node } => {
                let pid = sup.pid(node);
                let (done, signal, state) = match action {
                    ProcessAction::Pause { .. } => (sup.pause(node), "SIGSTOP", "running"),
                    _ => (sup.resume(node), "SIGCONT", "paused"),
                };
                signalled(done, node, json!({"signal": signal, "pid": pid}), state)
            }
            ProcessAction::RestoreAll => {
                let (restarted, resumed) = restore_all(sup, exits).await;
                let evidence = self.net_evidence(&Action::HealAll {}, router);
                Ok(json!({
                    "restarted": restarted,
                    "resumed": resumed,
                    "links": evidence,
                }))
            }
        }
    }

    /// The link table's state after a network action: how many links are cut or held.
    fn net_evidence(&self, action: &Action, router: &Router) -> Value {
        let nodes = self.schedule.nodes.clone();
        let (cut, held) = with_faults(router, |p| {
            let mut cut = 0;
            let mut held = 0;
            for s in &nodes {
                for d in nodes.iter().filter(|d| *d != s) {
                    match p.table.status(s, d) {
                        LinkStatus::Cut => cut += 1,
                        LinkStatus::Held => held += 1,
                        LinkStatus::Open => {}
                    }
                }
            }
            (cut, held)
        });
        let mut v = json!({"links_cut": cut, "links_held": held});
        if let Action::LinkFaults { links, .. } = action {
            let n = nodes.len();
            let count = match links {
                crate::nemesis::LinkSet::All => n * n.saturating_sub(1),
                crate::nemesis::LinkSet::Only(l) => l.len(),
            };
            v["links_faulted"] = json!(count);
        }
        v
    }

    /// Updates the fault spans; an ended network fault gets, as evidence, what the link
    /// table did while it was on.
    fn track(&mut self, id: u32, action: &Action, now: Instant, router: &Router) {
        let counters = with_faults(router, |p| p.table.counters().total);
        let ended = self.book.track(id, action, self.ns_since_start(now));
        self.evidence_for(ended, &counters);
        if self.book.is_open(id) {
            self.counters_at_open.insert(id, counters);
        }
    }

    /// Adds to each ended span's event what the links did while it was on (a kill
    /// that cut nothing gets nothing).
    fn evidence_for(&mut self, ended: Vec<Ended>, counters: &LinkCounters) {
        for e in ended {
            let Some(at_open) = self.counters_at_open.remove(&e.id) else {
                continue;
            };
            let during = diff(counters, &at_open);
            if during != LinkCounters::default() || !e.key.starts_with("down ") {
                self.confirm
                    .add_evidence(e.id, json!({"while_active": during}));
            }
        }
    }

    /// A node answered `init`: if it was killed, it is back from now on. Until then
    /// requests sent to it were lost with the process, so its kill span ends here.
    pub fn node_ready(&mut self, node: &str, router: &Router) {
        let now_ns = self.ns_since_start(Instant::now());
        if let Some(ended) = self.book.node_back(node, now_ns) {
            let counters = with_faults(router, |p| p.table.counters().total);
            self.evidence_for(vec![ended], &counters);
        }
    }

    /// A node exited without squall killing it: from now on it is down exactly as a
    /// killed node is (checkers exempt what was lost with it), until it answers `init`
    /// again if anything restarts it.
    pub fn node_exited(&mut self, node: &str, status: &str) {
        let now_ns = self.ns_since_start(Instant::now());
        let what = format!("{node} exited on its own ({status})");
        self.book.exited(node, &what, now_ns);
    }

    /// The final heal: lifts every network fault, restarts every killed node, resumes
    /// every paused one, disarms triggers and skips the timed events left. Returns the
    /// time of the heal (ns since the run started) and the exits it waited for.
    pub async fn heal_all(
        &mut self,
        router: &Router,
        sup: &mut Supervisor,
    ) -> (u64, Vec<(ExitEvent, bool)>) {
        let now = Instant::now();
        let now_ms = self.schedule_ms(now);
        for e in &self.timed[self.next..] {
            self.confirm
                .not_applied(e.id, now_ms, "not reached before the run ended");
        }
        self.next = self.timed.len();
        self.healed = true;
        let mut exits = Vec::new();
        if !self.is_empty() {
            let triggers = with_faults(router, |p| {
                p.apply(&NetAction::HealAll);
                std::mem::take(&mut p.triggers)
            });
            self.confirm.note_unfired(&triggers, now_ms);
            restore_all(sup, &mut exits).await;
            let counters = with_faults(router, |p| p.table.counters().total);
            let ended = self.book.heal_all(self.ns_since_start(now));
            self.evidence_for(ended, &counters);
        }
        (self.ns_since_start(Instant::now()), exits)
    }

    /// Events whose trigger never matched become "not applied", saying why (the heal
    /// already did this for the triggers it disarmed).
    fn finish_triggers(&mut self, router: &Router) {
        let triggers = with_faults(router, |p| std::mem::take(&mut p.triggers));
        self.confirm
            .note_unfired(&triggers, self.schedule.time_limit_ms);
        let pending: Vec<u32> = self
            .schedule
            .events
            .iter()
            .filter(|e| e.on.is_some())
            .filter(|e| {
                self.confirm
                    .get(e.id)
                    .is_some_and(|c| c.applied_at_ms.is_none())
            })
            .map(|e| e.id)
            .collect();
        for id in pending {
            self.confirm
                .not_applied(id, self.schedule.time_limit_ms, "its trigger never matched");
        }
    }

    /// The fault spans so far (closed ones; open ones end at the heal).
    pub fn spans(&self) -> Vec<FaultSpan> {
        self.book.spans()
    }

    /// The `faults` section of `metrics.json` and the warnings for `verdict.json`.
    pub fn report(&mut self, router: &Router, sup: &Supervisor) -> (FaultReport, Vec<Warning>) {
        self.finish_triggers(router);
        let links = with_faults(router, |p| p.table.counters());
        let processes: BTreeMap<String, ProcessCounters> = sup
            .counters()
            .into_iter()
            .map(|(id, c)| {
                let p = ProcessCounters {
                    kills: c.kills,
                    restarts: c.restarts,
                    pauses: c.pauses,
                    resumes: c.resumes,
                };
                (id, p)
            })
            .collect();
        let mut total = ProcessCounters::default();
        for p in processes.values() {
            total.kills += p.kills;
            total.restarts += p.restarts;
            total.pauses += p.pauses;
            total.resumes += p.resumes;
        }
        let kinds = self.requested.iter().copied().collect();
        let mut warnings = crate::nemesis::warnings(&kinds, &links, &total);
        warnings.extend(self.confirm.warnings());
        let report = FaultReport {
            requested: self.requested.clone(),
            links,
            processes,
            process_total: total,
            events: self.confirm.clone(),
            spans: self.spans(),
        };
        (report, warnings)
    }

    fn ns_since_start(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.run_start).as_nanos() as u64
    }

    fn schedule_ms(&self, t: Instant) -> u64 {
        self.origin
            .map_or(0, |o| t.saturating_duration_since(o).as_millis() as u64)
    }

    fn schedule_ms_of_us(&self, at_us: u64) -> u64 {
        let origin_us = self.origin.map_or(0, |o| self.ns_since_start(o) / 1_000);
        at_us.saturating_sub(origin_us) / 1_000
    }
}

fn diff(now: &LinkCounters, then: &LinkCounters) -> LinkCounters {
    LinkCounters {
        delivered: now.delivered - then.delivered,
        dropped: now.dropped - then.dropped,
        cut: now.cut - then.cut,
        delayed: now.delayed - then.delayed,
        duplicated: now.duplicated - then.duplicated,
        reordered: now.reordered - then.reordered,
        held: now.held - then.held,
    }
}

/// Waits (bounded) until `node`'s killed process has been reaped.
async fn wait_reaped(node: &str, sup: &mut Supervisor, exits: &mut Vec<(ExitEvent, bool)>) {
    let deadline = Instant::now() + Duration::from_millis(REAP_WAIT_MS);
    while sup.dying().iter().any(|n| n == node) {
        match tokio::time::timeout_at(deadline, sup.next_exit()).await {
            Ok(Some(exit)) => exits.push(exit),
            _ => break,
        }
    }
}

async fn restart(
    node: &str,
    amnesia: bool,
    sup: &mut Supervisor,
    exits: &mut Vec<(ExitEvent, bool)>,
) -> Result<Value, String> {
    wait_reaped(node, sup, exits).await;
    if sup.is_running(node) {
        return Err(format!("{node} is running; nothing to restart"));
    }
    match sup.restart(node, amnesia).await {
        Ok(true) => Ok(json!({"pid": sup.pid(node), "amnesia": amnesia})),
        Ok(false) => Err(format!("{node} could not be restarted")),
        Err(e) => Err(format!("restart of {node} failed: {e}")),
    }
}

/// Restarts every node squall killed and resumes every paused one.
async fn restore_all(
    sup: &mut Supervisor,
    exits: &mut Vec<(ExitEvent, bool)>,
) -> (Vec<String>, Vec<String>) {
    for node in sup.dying() {
        wait_reaped(&node, sup, exits).await;
    }
    let mut restarted = Vec::new();
    for node in sup.killed() {
        if let Ok(true) = sup.restart(&node, false).await {
            restarted.push(node);
        }
    }
    let mut resumed = Vec::new();
    for node in sup.paused() {
        if sup.resume(&node) {
            resumed.push(node);
        }
    }
    (restarted, resumed)
}

/// The evidence of a signal that reached `node`'s process, or why none did: it was not
/// `state` (running, paused).
fn signalled(done: bool, node: &str, evidence: Value, state: &str) -> Result<Value, String> {
    if done {
        Ok(evidence)
    } else {
        Err(format!("{node} was not {state}"))
    }
}
