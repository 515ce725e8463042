//! Faults in the lockstep stepper: schedule events and triggers, the link table's
//! network actions and held messages, and the process lifecycle (kill, crash, restart,
//! pause, resume). Everything happens between steps, except a kill that a node's own
//! output triggers: it lands right after that line, in the middle of the step (see
//! `Stepper::step`).

use std::time::{Duration, Instant};

use serde_json::json;

use super::{action_json, InitResult, Stepper};
use crate::nemesis::{Action, Link, ProcessAction};
use crate::trace::TraceKind;
use proto::HARNESS;

impl Stepper {
    /// Shows a message to the triggers and applies what they fire: network actions now,
    /// process actions after the current step.
    pub(super) fn observe(&mut self, src: &str, dest: &str, ty: &str) -> anyhow::Result<()> {
        if !self.triggers_on || self.triggers.is_empty() {
            return Ok(());
        }
        let now_ms = self.now_us() / 1_000;
        for (id, action) in self.triggers.observe(src, dest, ty, now_ms) {
            self.record(HARNESS, TraceKind::Fault, &action_json(&action))?;
            self.net_action(Some(id), &action);
            if let Some(p) = action.process() {
                self.deferred.push((Some(id), p));
            }
        }
        Ok(())
    }

    /// Applies a schedule event's action (network part, then process part).
    pub(super) fn apply_action(&mut self, id: Option<u32>, action: &Action) -> anyhow::Result<()> {
        self.record(HARNESS, TraceKind::Fault, &action_json(action))?;
        self.net_action(id, action);
        if let Some(p) = action.process() {
            self.process_action(id, p)?;
        }
        Ok(())
    }

    pub(super) fn net_action(&mut self, id: Option<u32>, action: &Action) {
        let Some(net) = action.net() else { return };
        self.track(id, action);
        let released = self.links.apply(&net);
        let count = self.release(&released);
        if let Some(id) = id {
            let now_ms = self.now_us() / 1_000;
            self.confirms.applied(
                id,
                now_ms,
                json!({"links_released": released.len(), "messages_released": count}),
            );
        }
    }

    /// Puts the held messages of `links` back on their links, in order, now.
    pub(super) fn release(&mut self, links: &[Link]) -> usize {
        let mut count = 0;
        let now = self.now_us();
        for (src, dest) in links {
            let (Some(&s), Some(&d)) = (self.node_index.get(src), self.node_index.get(dest)) else {
                continue;
            };
            let lane = self.link_lane(s, d);
            for ev in self.held.remove(&(s, d)).unwrap_or_default() {
                count += 1;
                self.queue.push(now, Some(lane), ev);
            }
        }
        count
    }

    pub(super) fn process_action(
        &mut self,
        id: Option<u32>,
        action: ProcessAction,
    ) -> anyhow::Result<()> {
        let now_ms = self.now_us() / 1_000;
        let node = |w: &Stepper, name: &str| w.node_index.get(name).copied();
        let outcome: Result<serde_json::Value, String> = match &action {
            ProcessAction::Kill { node: name } => match node(self, name) {
                Some(i) if self.nodes[i].up => {
                    self.kill(i);
                    self.process.kills += 1;
                    self.track(id, &Action::Kill { node: name.clone() });
                    Ok(json!({"node": name, "signal": "SIGKILL"}))
                }
                Some(_) => Err(format!("{name} was not running")),
                None => Err(format!("unknown node {name}")),
            },
            ProcessAction::Crash { node: name } => match node(self, name) {
                Some(i) if self.nodes[i].up => {
                    self.kill(i);
                    self.nodes[i].crashed = true;
                    self.process.kills += 1;
                    self.track(id, &Action::Crash { node: name.clone() });
                    Ok(json!({"node": name, "signal": "SIGKILL", "for_good": true}))
                }
                Some(_) => Err(format!("{name} was not running")),
                None => Err(format!("unknown node {name}")),
            },
            ProcessAction::Restart {
                node: name,
                amnesia,
            } => match node(self, name) {
                Some(i) if !self.nodes[i].up && !self.nodes[i].crashed => {
                    if self.restart(i, *amnesia)? {
                        Ok(json!({"node": name, "amnesia": amnesia}))
                    } else {
                        Err(format!("{name} did not come back"))
                    }
                }
                Some(_) => Err(format!("{name} was already running")),
                None => Err(format!("unknown node {name}")),
            },
            ProcessAction::Pause { node: name } => match node(self, name) {
                Some(i) if self.nodes[i].up && !self.nodes[i].paused => {
                    self.nodes[i].paused = true;
                    self.process.pauses += 1;
                    self.track(id, &Action::Pause { node: name.clone() });
                    Ok(json!({"node": name, "lockstep": "takes no events until resumed"}))
                }
                Some(_) => Err(format!("{name} was not running or already paused")),
                None => Err(format!("unknown node {name}")),
            },
            ProcessAction::Resume { node: name } => match node(self, name) {
                Some(i) if self.nodes[i].paused => {
                    self.resume(i);
                    Ok(json!({"node": name}))
                }
                Some(_) => Err(format!("{name} was not paused")),
                None => Err(format!("unknown node {name}")),
            },
            ProcessAction::RestoreAll => {
                let restarted = self.restore_all()?;
                Ok(json!({"restarted": restarted}))
            }
        };
        if let Some(id) = id {
            match outcome {
                Ok(evidence) => self.confirms.applied(id, now_ms, evidence),
                Err(reason) => self.confirms.not_applied(id, now_ms, reason),
            }
        }
        Ok(())
    }

    /// Restarts every node that is down and resumes every paused one; returns the
    /// restarted nodes.
    pub(super) fn restore_all(&mut self) -> anyhow::Result<Vec<String>> {
        let mut restarted = Vec::new();
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            if self.nodes[i].crashed {
                continue;
            }
            if !self.nodes[i].up && self.restart(i, false)? {
                restarted.push(self.nodes[i].id.clone());
            }
        }
        Ok(restarted)
    }

    pub(super) fn resume(&mut self, i: usize) {
        self.nodes[i].paused = false;
        let id = self.nodes[i].id.clone();
        self.book
            .close(&format!("pause {id}"), self.now_us() * 1_000);
        self.process.resumes += 1;
        let now = self.now_us();
        for (lane, ev) in std::mem::take(&mut self.nodes[i].parked) {
            self.queue.push(now, lane, ev);
        }
    }

    /// Whether a kill or crash of node `i` waits among the deferred process actions (its
    /// step's own output fired it).
    pub(super) fn kill_pending(&self, i: usize) -> bool {
        let id = &self.nodes[i].id;
        self.deferred.iter().any(|(_, a)| {
            matches!(a, ProcessAction::Kill { node } | ProcessAction::Crash { node } if node == id)
        })
    }

    /// SIGKILLs node `i` and forgets its pending events.
    pub(super) fn kill(&mut self, i: usize) {
        let id = self.nodes[i].id.clone();
        self.sup.kill(&id);
        let n = &mut self.nodes[i];
        n.conn = None;
        n.up = false;
        n.paused = false;
        n.parked.clear();
        n.epoch += 1;
        self.timers.retain(|&(node, _), _| node != i);
        self.wait_exit(&id);
    }

    /// A node that broke its step: recorded as faulty and treated as crashed.
    pub(super) fn crash(&mut self, i: usize, what: impl Into<String>) {
        let id = self.nodes[i].id.clone();
        let what = what.into();
        let line = serde_json::json!({"crash": id, "why": what}).to_string();
        if let Err(e) = self.record(HARNESS, TraceKind::Decision, &line) {
            tracing::warn!(error = %e, "could not append to the trace");
        }
        self.fault(&id, what);
        if self.nodes[i].up {
            self.kill(i);
            self.process.crashes += 1;
        }
    }

    /// Waits (real time, bounded) until the supervisor has seen node `id` exit.
    pub(super) fn wait_exit(&mut self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.sup.is_running(id) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .handle
                .block_on(tokio::time::timeout(left, self.sup.next_exit()))
            {
                Ok(Some((ev, expected))) => {
                    if !expected {
                        let what = format!("exited unexpectedly ({})", ev.status);
                        self.fault(&ev.node.clone(), what);
                    }
                }
                _ => break,
            }
        }
    }

    /// Starts node `i` again and runs its init step; false if it did not come back.
    pub(super) fn restart(&mut self, i: usize, amnesia: bool) -> anyhow::Result<bool> {
        if self.stalled.is_some() {
            return Ok(false);
        }
        let id = self.nodes[i].id.clone();
        match self.handle.block_on(self.sup.restart(&id, amnesia)) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                self.fault(&id, format!("could not be restarted: {e}"));
                return Ok(false);
            }
        }
        self.process.restarts += 1;
        self.nodes[i].epoch += 1;
        let deadline = Instant::now() + self.opts.guard;
        loop {
            match self.accept_hello(deadline) {
                Some((hello_id, conn)) if hello_id == id => {
                    self.nodes[i].conn = Some(conn);
                    break;
                }
                Some((other, _)) => {
                    self.fault(&other, format!("said hello while {id} was restarting"));
                }
                None => {
                    // Slow, not faulty: the run stops here rather than go on without it.
                    self.stall(i, "say hello after its restart");
                    return Ok(false);
                }
            }
        }
        match self.init_node(i)? {
            InitResult::Ready => {
                self.book.node_back(&id, self.now_us() * 1_000);
                Ok(true)
            }
            InitResult::NoLockstep => {
                self.crash(i, "answered init_ok without lockstep after a restart");
                Ok(false)
            }
            InitResult::Failed => Ok(false),
        }
    }
}
