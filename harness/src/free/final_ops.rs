//! The final ops of a free-running run's quiet window: every final op of the workload on
//! every node that was up at the heal, retried until it settles or the window ends.
//!
//! The window is a deadline, not a number of passes. Every client works at once on one
//! shared queue of `(node, op)` items; an item that does not settle (no `ok`, or a read of
//! nothing) goes back to the queue with a try counted and a short pause. No call outlives
//! the window (its timeout is cut to what is left of it), no call starts after it, and a
//! node that never answers holds at most its share of the clients (`clients / nodes`,
//! at least one), so it cannot starve the others. What is still unsettled when the window
//! ends is reported with how many tries each item got ([`FinalReport`]).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clients::{self, Client, ClientShared, Recorder};
use crate::lifecycle::{final_settled, FINAL_RETRY_FREE};

/// The final ops of the quiet window: every op on every node that was up at the heal.
pub(super) struct FinalOps {
    pub(super) nodes: Vec<String>,
    pub(super) ops: Vec<proto::ClientOp>,
    pub(super) op_timeout: Duration,
    /// Unsettled ops are retried until this instant.
    pub(super) window_end: Instant,
}

/// A call with less than this left of the window is not started.
const FINAL_CALL_MS_MIN: u64 = 5;
/// Unsettled items listed by name in `verdict.json` (the rest are only counted).
const UNSETTLED_LISTED_MAX: usize = 50;

/// How the final ops went, for `verdict.json` (`final_ops`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FinalReport {
    /// Items (one op on one node).
    pub items: u64,
    /// Items that settled.
    pub settled: u64,
    /// Calls made in all.
    pub tries: u64,
    /// Items unsettled when the window ended.
    pub unsettled: u64,
    /// The first [`UNSETTLED_LISTED_MAX`] of them, with their tries.
    pub unsettled_items: Vec<Unsettled>,
}

/// One op on one node that never settled.
#[derive(Debug, Clone, Serialize)]
pub struct Unsettled {
    /// The node.
    pub node: String,
    /// The op's function (`read`, ...).
    pub f: String,
    /// The op's value as the history records it.
    pub value: serde_json::Value,
    /// Calls made for it (0: the window ended before its turn).
    pub tries: u32,
}

struct Item {
    node: usize,
    op: usize,
    tries: u32,
    not_before: Instant,
}

struct Queue {
    ready: VecDeque<Item>,
    /// Calls in flight per node.
    in_flight: Vec<usize>,
    /// Items a worker holds.
    busy: usize,
    done: Vec<Item>,
    tries: u64,
    settled: u64,
}

impl FinalOps {
    /// Runs each op on each node with every client at once; ops that did not settle are
    /// tried again until they settle or the window ends. Returns what happened.
    pub(super) async fn run(
        self,
        clients: Vec<Client>,
        shared: &Arc<ClientShared>,
        rec: &Recorder,
    ) -> FinalReport {
        let now = Instant::now();
        // Nodes interleaved, so every node's items start early.
        let mut ready = VecDeque::new();
        for op in 0..self.ops.len() {
            for node in 0..self.nodes.len() {
                ready.push_back(Item {
                    node,
                    op,
                    tries: 0,
                    not_before: now,
                });
            }
        }
        let items = ready.len() as u64;
        let per_node = clients.len().div_ceil(self.nodes.len().max(1)).max(1);
        let queue = Arc::new(Mutex::new(Queue {
            ready,
            in_flight: vec![0; self.nodes.len()],
            busy: 0,
            done: Vec::new(),
            tries: 0,
            settled: 0,
        }));
        let this = Arc::new(self);
        let mut set = JoinSet::new();
        for client in clients {
            let (this, queue, shared, rec) =
                (this.clone(), queue.clone(), shared.clone(), rec.clone());
            set.spawn(async move { this.worker(client, &queue, &shared, &rec, per_node).await });
        }
        while set.join_next().await.is_some() {}
        let q = queue.lock().expect("final ops queue lock");
        let mut left: Vec<&Item> = q.done.iter().chain(q.ready.iter()).collect();
        left.sort_by_key(|i| (i.node, i.op));
        FinalReport {
            items,
            settled: q.settled,
            tries: q.tries,
            unsettled: left.len() as u64,
            unsettled_items: left
                .iter()
                .take(UNSETTLED_LISTED_MAX)
                .map(|i| {
                    let op = &this.ops[i.op];
                    Unsettled {
                        node: this.nodes[i.node].clone(),
                        f: op.f().to_string(),
                        value: workloads::history::op_value(op),
                        tries: i.tries,
                    }
                })
                .collect(),
        }
    }

    /// One client taking items off the queue until it is empty or the window ends.
    async fn worker(
        &self,
        mut client: Client,
        queue: &Mutex<Queue>,
        shared: &ClientShared,
        rec: &Recorder,
        per_node: usize,
    ) {
        let mut process = shared.next_process.fetch_add(1, Ordering::SeqCst);
        loop {
            let now = Instant::now();
            let left = self.window_end.saturating_duration_since(now);
            if left < Duration::from_millis(FINAL_CALL_MS_MIN) {
                return;
            }
            let taken = {
                let mut q = queue.lock().expect("final ops queue lock");
                let pick = q
                    .ready
                    .iter()
                    .position(|i| i.not_before <= now && q.in_flight[i.node] < per_node);
                match pick {
                    Some(at) => {
                        let item = q.ready.remove(at).expect("picked item");
                        q.in_flight[item.node] += 1;
                        q.busy += 1;
                        q.tries += 1;
                        Ok(item)
                    }
                    None if q.ready.is_empty() && q.busy == 0 => return,
                    None => Err(q.ready.iter().map(|i| i.not_before).min()),
                }
            };
            let mut item = match taken {
                Ok(item) => item,
                Err(next) => {
                    // Nothing to do yet: the next retry, or a peer's call, frees work.
                    let soon = now + Duration::from_millis(10);
                    let wake = next.map_or(soon, |t| t.max(soon)).min(self.window_end);
                    tokio::time::sleep_until(wake).await;
                    continue;
                }
            };
            let node = &self.nodes[item.node];
            let op = &self.ops[item.op];
            let value = workloads::history::op_value(op);
            rec.record(
                process,
                workloads::EventType::Invoke,
                op.f(),
                value,
                Some(node),
                None,
            );
            let answer = client.call(node, op, self.op_timeout.min(left)).await;
            let replier = client.replier();
            if clients::record_call(rec, client.router(), replier, process, node, op, &answer) {
                process = shared.next_process.fetch_add(1, Ordering::SeqCst);
            }
            let settled = final_settled(
                &**shared.workload.lock().expect("workload lock"),
                op,
                answer.reply(),
            );
            item.tries += 1;
            let mut q = queue.lock().expect("final ops queue lock");
            q.in_flight[item.node] -= 1;
            q.busy -= 1;
            if settled {
                q.settled += 1;
            } else if Instant::now() + Duration::from_millis(FINAL_RETRY_FREE.pause_ms)
                < self.window_end
            {
                item.not_before = Instant::now() + Duration::from_millis(FINAL_RETRY_FREE.pause_ms);
                q.ready.push_back(item);
            } else {
                q.done.push(item);
            }
        }
    }
}
