//! A step of the lockstep stepper: one event delivered to one node, and everything the
//! node writes until its `step_done` (messages, timers, replies, reports, faults of its
//! own) taken in, in the order written.

use super::*;
use serde_json::json;

impl Stepper {
    /// Delivers `line` to node `i` and handles everything it answers.
    pub(super) fn step(&mut self, i: usize, kind: TraceKind, line: String) -> anyhow::Result<()> {
        if self.stalled.is_some() {
            return Ok(());
        }
        self.steps += 1;
        *self.steps_by_kind.entry(kind_name(kind)).or_default() += 1;
        let step = self.steps;
        let at_us = self.now_us();
        self.trace
            .append_parts(step, at_us, &self.nodes[i].id, kind, &line)?;
        let mut line = line;
        line.push('\n');
        let mut lines = std::mem::take(&mut self.scratch);
        let init = kind == TraceKind::Init;
        let mut sent = match self.nodes[i].conn.as_mut() {
            None => false,
            Some(conn) => conn.send(line.as_bytes()).is_ok(),
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
                let at_us = self.now_us();
                self.trace.append_parts(
                    self.steps,
                    at_us,
                    &self.nodes[i].id,
                    TraceKind::Output,
                    &line,
                )?;
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
            StepEnd::Timeout => {
                let what = format!("finish step {step}");
                self.stall(i, &what);
                return Ok(());
            }
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
    pub(super) fn on_output(&mut self, i: usize, line: String) -> anyhow::Result<()> {
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
            let decision = self.links.decide(&src, &dest, &ty, now);
            let what = match &decision {
                Decision::Deliver { copies } => json!({
                    "send": "deliver", "src": src, "dest": dest,
                    "delays_us": copies.iter().map(|c| c.delay_us).collect::<Vec<_>>(),
                    "reordered": copies.iter().any(|c| !c.fifo),
                }),
                Decision::Drop { cause } => json!({
                    "send": "drop", "src": src, "dest": dest, "cause": cause.as_str(),
                }),
                Decision::Hold => json!({"send": "hold", "src": src, "dest": dest}),
            };
            self.record(HARNESS, TraceKind::Decision, &what.to_string())?;
            match decision {
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
                        let hop = self.hop_us();
                        match (self.adversary.as_mut(), ev) {
                            (
                                Some(adv),
                                Ev::Deliver {
                                    dest, epoch, line, ..
                                },
                            ) => adv.push(i, dest, epoch, line, now, hop + copy.delay_us),
                            (_, ev) => self.queue.push(now + hop + copy.delay_us, lane, ev),
                        }
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

    pub(super) fn on_harness_line(&mut self, i: usize, ty: &str, body: &str) -> anyhow::Result<()> {
        let id = self.nodes[i].id.clone();
        match ty {
            "timer_set" | "timer_cancel" | "step_done" | "timer_fired" | "sync_wait"
            | "sync_go" => match serde_json::from_str::<Lockstep>(body) {
                Ok(set @ Lockstep::TimerSet { timer_id, .. }) => {
                    let Some(delay_us) = set.timer_delay_us() else {
                        self.fault(&id, "timer_set without after_us or after_ms");
                        return Ok(());
                    };
                    let delay_us = delay_us.max(1);
                    self.timer_gen += 1;
                    let gen = self.timer_gen;
                    self.timers.insert((i, timer_id), gen);
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
                    self.progress.report(&report, self.steps, self.now_us());
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

    pub(super) fn count(&mut self, ty: &str) {
        match self.by_type.get_mut(ty) {
            Some(n) => *n += 1,
            None => {
                self.by_type.insert(ty.to_string(), 1);
            }
        }
    }

    pub(super) fn link_lane(&self, src: usize, dest: usize) -> Lane {
        (src * self.nodes.len() + dest) as Lane
    }
}
