//! The clients' side of the lockstep stepper: issuing ops open loop in virtual time,
//! recording their completions, and the final ops after the quiet window.

use proto::ops::{ClientOp, Request};
use workloads::history::EventType;

use super::{envelope, Ev, Phase, Stepper};
use crate::clients::{pick_node, Restarts};
use crate::lifecycle::{final_settled, FINAL_RETRY_LOCKSTEP};
use crate::lockstep::clients::{record_completion, split_final_ops, Answer, FinalOp, InFlight};
use crate::trace::TraceKind;
use crate::trace::HOP_US;

impl Stepper {
    /// A client's next op is due.
    pub(super) fn issue(&mut self, client: usize) -> anyhow::Result<()> {
        if self.clients[client].inflight.is_some() {
            return Ok(());
        }
        let now = self.now_us();
        match self.phase {
            Phase::Main if now < self.limit_us => {
                let c = &mut self.clients[client];
                if c.clock.take(now) {
                    self.late_ops += 1;
                }
                let (op, target) = self.workload.next_targeted(&mut c.rng);
                if let ClientOp::Propose { key, .. } = &op {
                    let key = *key;
                    self.progress.proposed(key, self.steps, now);
                }
                // Restarts by count: virtual time orders nothing here that the count
                // does not, and the rule stays the free-running one.
                let restarts: Vec<Restarts> = self
                    .nodes
                    .iter()
                    .map(|n| Restarts {
                        count: n.epoch,
                        last_ns: 0,
                    })
                    .collect();
                let c = &mut self.clients[client];
                let node = self.opts.node_ids[pick_node(target, &restarts, &mut c.rng)].clone();
                self.invoke(client, node, op, 0)
            }
            Phase::Final => match self.clients[client].work.pop_front() {
                Some(FinalOp {
                    node,
                    op,
                    retries_left,
                }) => self.invoke(client, node, op, retries_left),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    pub(super) fn invoke(
        &mut self,
        client: usize,
        node: String,
        op: ClientOp,
        retries_left: u32,
    ) -> anyhow::Result<()> {
        let now = self.now_us();
        let c = &mut self.clients[client];
        c.next_msg_id += 1;
        let msg_id = c.next_msg_id;
        let (process, addr) = (c.process, c.addr.clone());
        let value = workloads::history::op_value(&op);
        self.history.record(
            now * 1_000,
            process,
            EventType::Invoke,
            op.f(),
            value,
            Some(&node),
            None,
        )?;
        let body = serde_json::to_string(&Request {
            msg_id,
            op: op.clone(),
        })?;
        self.count(op.f());
        self.observe(&addr, &node, op.f())?;
        let d = self.node_index[&node];
        let ev = Ev::Deliver {
            dest: d,
            epoch: self.nodes[d].epoch,
            lane: None,
            kind: TraceKind::Request,
            line: envelope(&addr, &node, &body),
        };
        self.queue.push(now + HOP_US, None, ev);
        let timeout_us = self.opts.op_timeout_ms.saturating_mul(1_000);
        self.queue
            .push(now + timeout_us, None, Ev::Timeout { client, msg_id });
        self.clients[client].inflight = Some(InFlight {
            msg_id,
            node,
            process,
            op,
            retries_left,
        });
        Ok(())
    }

    pub(super) fn complete(&mut self, client: usize, answer: Answer) -> anyhow::Result<()> {
        let now = self.now_us();
        let Some(done) = self.clients[client].inflight.take() else {
            return Ok(());
        };
        let process = done.process;
        let (retire, fault) = record_completion(
            &mut self.history,
            now * 1_000,
            process,
            &done.node,
            &done.op,
            &answer,
        )?;
        if let Some(what) = fault {
            self.fault(&done.node, what);
        }
        if let Some(reply) = answer.reply() {
            self.workload.observe(&done.op, reply);
        }
        // A client already moved to a fresh process need not retire it again.
        if retire && self.clients[client].process == process {
            self.clients[client].process = self.next_process;
            self.next_process += 1;
        }
        match self.phase {
            Phase::Main => {
                let at = self.clients[client].clock.next_start().max(now);
                if at < self.limit_us {
                    self.queue.push(at, None, Ev::Issue { client });
                }
            }
            Phase::Recovery => {}
            Phase::Final => {
                // The final-op rule of both modes; the retries are lockstep's own.
                let settled = final_settled(&*self.workload, &done.op, answer.reply());
                let mut at = now;
                if !settled && done.retries_left > 0 {
                    self.clients[client].work.push_front(FinalOp {
                        node: done.node,
                        op: done.op,
                        retries_left: done.retries_left - 1,
                    });
                    at = now + FINAL_RETRY_LOCKSTEP.pause_ms * 1_000;
                }
                if !self.clients[client].work.is_empty() {
                    self.queue.push(at, None, Ev::Issue { client });
                }
            }
        }
        Ok(())
    }

    pub(super) fn start_final(&mut self) {
        self.phase = Phase::Final;
        let live = self.live_nodes();
        let split = split_final_ops(
            &live,
            &self.final_ops,
            self.clients.len(),
            FINAL_RETRY_LOCKSTEP.tries.unwrap_or(0),
        );
        let now = self.now_us();
        for (c, work) in split.into_iter().enumerate() {
            if work.is_empty() {
                continue;
            }
            let client = &mut self.clients[c];
            client.work = work.into();
            client.process = self.next_process;
            self.next_process += 1;
            if client.inflight.is_none() {
                self.queue.push(now, None, Ev::Issue { client: c });
            }
        }
    }
}
