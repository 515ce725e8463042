//! The phases of a lockstep run, in the order of [`crate::lifecycle`]: startup (every
//! node's hello and init step), the faulty part up to the time limit, the final heal,
//! the quiet window, the final ops; and the end (connections closed, unexpected exits
//! noted).

use super::*;

impl Stepper {
    /// Accepts a node's connection and reads its `hello` by `deadline`.
    pub(super) fn accept_hello(&mut self, deadline: Instant) -> Option<(String, NodeConn)> {
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
            let Ok(mut conn) = NodeConn::new(std_stream, self.opts.guard) else {
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
        let deadline = Instant::now() + self.opts.guard;
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
            match self.init_node(i)? {
                InitResult::NoLockstep => return Ok(Some(self.nodes[i].id.clone())),
                _ if self.stalled.is_some() => break,
                _ => {}
            }
        }
        Ok(None)
    }

    pub(super) fn init_node(&mut self, i: usize) -> anyhow::Result<InitResult> {
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
            _ if self.stalled.is_some() => InitResult::Failed,
            _ => {
                if self.nodes[i].up {
                    self.crash(i, "did not answer init with init_ok");
                }
                InitResult::Failed
            }
        })
    }

    /// Runs the whole sequence: faulty part, heal, quiet window, final ops.
    pub fn run(&mut self) -> anyhow::Result<()> {
        for c in 0..self.clients.len() {
            let at = self.clients[c].clock.next_start();
            self.queue.push(at, None, Ev::Issue { client: c });
        }
        self.run_until(Some(self.limit_us), false)?;
        if self.halted() {
            return Ok(());
        }
        self.heal()?;
        let recovery_end = self
            .limit_us
            .saturating_add(self.opts.recovery_ms.saturating_mul(1_000));
        self.run_until(Some(recovery_end), false)?;
        if self.halted() {
            return Ok(());
        }
        self.start_final();
        self.run_until(None, true)
    }

    /// Delivers events until virtual time `end_us` (exclusive), or until every client
    /// is done when `until_done`.
    pub(super) fn run_until(
        &mut self,
        end_us: Option<u64>,
        until_done: bool,
    ) -> anyhow::Result<()> {
        loop {
            if self.halted() {
                return Ok(());
            }
            if until_done && self.clients.iter().all(VClient::is_done) {
                return Ok(());
            }
            let tq = self.queue.next_time();
            let tp = self.adversary.as_ref().and_then(Adversary::next_time);
            let ts = (self.phase == Phase::Main)
                .then(|| self.timed.get(self.timed_next))
                .flatten()
                .and_then(|e| e.at_ms)
                .map(|ms| ms.saturating_mul(1_000));
            let Some(t) = [tq, ts, tp].into_iter().flatten().min() else {
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
            if tp.is_some_and(|tp| tq.is_none_or(|tq| tp < tq)) {
                self.queue.advance_to(t);
                self.deliver_held()?;
                continue;
            }
            let (_, ev) = self.queue.pop().expect("an event is pending");
            self.handle(ev)?;
        }
    }

    /// Delivers the adversary's next message and lets it learn from what the receiver
    /// reported.
    fn deliver_held(&mut self) -> anyhow::Result<()> {
        let now = self.now_us();
        let Some(p) = self.adversary.as_mut().and_then(|a| a.pop(now)) else {
            return Ok(());
        };
        let before = self.reports.len();
        let ty = p.ty;
        self.handle(Ev::Deliver {
            dest: p.dest,
            epoch: p.epoch,
            lane: None,
            kind: TraceKind::Message,
            line: p.line,
        })?;
        if let Some(adv) = self.adversary.as_mut() {
            adv.observe(&ty, self.reports[before..].iter().map(|r| &r.report));
        }
        Ok(())
    }

    /// The end of the faulty part: remaining timed events up to the limit, then every
    /// fault lifted, every killed node restarted, every paused node resumed (and the
    /// adversary stops holding messages).
    pub(super) fn heal(&mut self) -> anyhow::Result<()> {
        self.phase = Phase::Recovery;
        if let Some(adv) = self.adversary.as_mut() {
            adv.release();
        }
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
