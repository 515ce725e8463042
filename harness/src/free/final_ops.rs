//! The final ops of a free-running run's quiet window: every final op of the workload on
//! every node that was up at the heal, retried until it settles or the window ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clients::{self, Client, ClientShared, Recorder};

/// The final ops of the quiet window: every op on every node that was up at the heal.
pub(super) struct FinalOps {
    pub(super) nodes: Vec<String>,
    pub(super) ops: Vec<proto::ClientOp>,
    pub(super) op_timeout: Duration,
    /// Unsettled ops are retried until this instant.
    pub(super) window_end: Instant,
}

/// Pause between retry passes of the final ops.
const FINAL_RETRY_MS: u64 = 200;

impl FinalOps {
    /// Runs each op on each node; ops that did not settle (no `ok`, or a read of
    /// nothing) are tried again, pass after pass, until they settle or the window ends.
    pub(super) async fn run(
        self,
        clients: Vec<Client>,
        shared: &Arc<ClientShared>,
        rec: &Recorder,
    ) {
        let mut work: Vec<(String, proto::ClientOp)> = Vec::new();
        for node in &self.nodes {
            for op in &self.ops {
                work.push((node.clone(), op.clone()));
            }
        }
        let mut clients = clients;
        loop {
            let chunk = work.len().div_ceil(clients.len()).max(1);
            let mut set = JoinSet::new();
            let parts: Vec<Vec<(String, proto::ClientOp)>> =
                work.chunks(chunk).map(<[_]>::to_vec).collect();
            let idle: Vec<Client> = clients.split_off(parts.len().min(clients.len()));
            for (client, part) in clients.into_iter().zip(parts) {
                let (shared, rec) = (shared.clone(), rec.clone());
                set.spawn(final_pass(client, part, shared, rec, self.op_timeout));
            }
            clients = idle;
            work.clear();
            while let Some(joined) = set.join_next().await {
                if let Ok((client, unsettled)) = joined {
                    clients.push(client);
                    work.extend(unsettled);
                }
            }
            let retry_at = Instant::now() + Duration::from_millis(FINAL_RETRY_MS);
            if work.is_empty() || clients.is_empty() || retry_at >= self.window_end {
                return;
            }
            tokio::time::sleep_until(retry_at).await;
        }
    }
}

/// One client's share of a final pass; returns the client and the ops to retry.
async fn final_pass(
    mut client: Client,
    part: Vec<(String, proto::ClientOp)>,
    shared: Arc<ClientShared>,
    rec: Recorder,
    op_timeout: Duration,
) -> (Client, Vec<(String, proto::ClientOp)>) {
    let mut unsettled = Vec::new();
    let mut process = shared.next_process.fetch_add(1, Ordering::SeqCst);
    for (node, op) in part {
        let value = workloads::history::op_value(&op);
        rec.record(
            process,
            workloads::EventType::Invoke,
            op.f(),
            value,
            Some(&node),
            None,
        );
        let answer = client.call(&node, &op, op_timeout).await;
        if clients::record_call(&rec, client.router(), process, &node, &op, &answer) {
            process = shared.next_process.fetch_add(1, Ordering::SeqCst);
        }
        let settled = match &answer {
            clients::Answer::Reply(proto::ClientReply::Error { .. })
            | clients::Answer::Timeout
            | clients::Answer::Malformed(_) => false,
            clients::Answer::Reply(reply) => shared
                .workload
                .lock()
                .expect("workload lock")
                .final_settled(&op, reply),
        };
        if !settled {
            unsettled.push((node, op));
        }
    }
    (client, unsettled)
}
