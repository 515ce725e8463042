//! `broadcast`: Maelstrom's broadcast workload, with its bodies.
//!
//! Every node first gets a `topology` (its neighbours under one of Maelstrom's shapes,
//! [`topology`]); then clients send `broadcast {message}` (answered `broadcast_ok`) and
//! `read` (answered `read_ok {messages}`) to any node. After the final heal every node
//! up is read until its read holds every acknowledged message or the quiet window ends.
//!
//! The checker ([`BroadcastChecker`]) holds one property: every message whose
//! `broadcast` was acknowledged is in the final read of every node (a message missing
//! from one is *lost*, named with the nodes that miss it); and one sanity rule: no read
//! returns a message no client broadcast. It also measures what Maelstrom measures:
//! *stale* reads (an ok read that began after a message was acknowledged and lacks it,
//! which eventual consistency allows) and the *stable latency* of each message (from its
//! `broadcast_ok` until no later read of any node lacks it). Messages per op are in
//! `metrics.json` from the router's counters. Each read is looked at once per message it
//! holds, so the checker is linear in the size of the history.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::{Op, Outcome};
use crate::maelstrom::{body_op, NO_BUNDLED_NODE};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::{Workload, WorkloadOpts};

pub mod topology;

pub use topology::{topology, TOPOLOGIES, TOPOLOGY_DEFAULT};

/// Percent of ops that are `broadcast`; the rest are `read`.
pub const BROADCAST_PERCENT: u32 = 50;
/// Lost messages, and nodes per message, named in a verdict's evidence.
pub const NAMED_MAX: usize = 20;

/// The broadcast op generator.
#[derive(Debug, Clone)]
pub struct BroadcastWorkload {
    topology: String,
    next: u64,
    acked: BTreeSet<u64>,
}

impl BroadcastWorkload {
    /// A generator whose setup sends the topology named in `opts`.
    pub fn new(opts: &WorkloadOpts) -> Self {
        BroadcastWorkload {
            topology: opts.topology.clone(),
            next: 0,
            acked: BTreeSet::new(),
        }
    }
}

impl Workload for BroadcastWorkload {
    fn name(&self) -> &'static str {
        "broadcast"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        if rng.gen_range(0..100) < BROADCAST_PERCENT {
            self.next += 1;
            broadcast_op(self.next)
        } else {
            read_op()
        }
    }

    fn setup_ops(&self, nodes: &[String]) -> Vec<(String, ClientOp)> {
        let topology = topology(&self.topology, nodes).unwrap_or_default();
        nodes
            .iter()
            .map(|n| {
                let op = body_op("topology", json!({ "topology": topology }), &[]);
                (n.clone(), op)
            })
            .collect()
    }

    fn observe(&mut self, op: &ClientOp, reply: &ClientReply) {
        if let (ClientOp::Body(b), ClientReply::Body(_)) = (op, reply) {
            if let ("broadcast", Some(m)) = (b.f, b.fields.get("message").and_then(Value::as_u64)) {
                self.acked.insert(m);
            }
        }
    }

    fn final_ops(&self) -> Vec<ClientOp> {
        vec![read_op()]
    }

    /// A final read settles once it holds every message acknowledged so far.
    fn final_settled(&self, op: &ClientOp, reply: &ClientReply) -> bool {
        match (op, reply) {
            (ClientOp::Body(b), ClientReply::Body(r)) if b.f == "read" => {
                let got: HashSet<u64> = r
                    .get("messages")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                self.acked.iter().all(|m| got.contains(m))
            }
            _ => true,
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(BroadcastChecker)]
    }

    fn default_algorithm(&self) -> &'static str {
        NO_BUNDLED_NODE
    }
}

/// `broadcast {message}`, answered by `broadcast_ok`.
pub fn broadcast_op(message: u64) -> ClientOp {
    body_op("broadcast", json!({ "message": message }), &[])
}

/// Broadcast's `read`, answered by `read_ok {messages}`.
pub fn read_op() -> ClientOp {
    body_op("read", json!({}), &["messages"])
}

/// The messages an ok `read` returned, if `op` is one.
fn read_messages(op: &Op) -> Option<Vec<u64>> {
    if op.f != "read" || op.outcome != Outcome::Ok {
        return None;
    }
    let list = op.output.as_ref()?.get("messages")?.as_array()?;
    Some(list.iter().filter_map(Value::as_u64).collect())
}

/// Every acknowledged message is read by every node after the heal.
pub struct BroadcastChecker;

impl Checker for BroadcastChecker {
    fn name(&self) -> &'static str {
        "broadcast"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let ops = input.history.ops();
        // Message -> completion time of its broadcast_ok; every message ever sent.
        let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
        let mut sent: HashSet<u64> = HashSet::new();
        for op in ops.iter().filter(|op| op.f == "broadcast") {
            let Some(m) = op.input.get("message").and_then(Value::as_u64) else {
                continue;
            };
            sent.insert(m);
            if op.outcome == Outcome::Ok {
                acked.insert(m, op.complete_time.unwrap_or(op.invoke_time));
            }
        }
        // Reads per node in invoke order, and each node's last final read.
        let mut reads: BTreeMap<String, Vec<(u64, Vec<u64>)>> = BTreeMap::new();
        let mut finals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut unsent: BTreeMap<u64, String> = BTreeMap::new();
        for op in &ops {
            let Some(msgs) = read_messages(op) else {
                continue;
            };
            let node = op.node.clone().unwrap_or_default();
            for m in &msgs {
                if !sent.contains(m) {
                    unsent.entry(*m).or_insert_with(|| node.clone());
                }
            }
            if input.quiet_from.is_some_and(|q| op.invoke_time >= q) {
                finals.insert(node.clone(), msgs.clone());
            }
            reads.entry(node).or_default().push((op.invoke_time, msgs));
        }
        if let Some((m, node)) = unsent.iter().next() {
            return Verdict::invalid(
                self.name(),
                format!(
                    "{} read message {m}, which no client broadcast ({} such messages in all)",
                    node,
                    unsent.len()
                ),
                json!({"property": "never-broadcast", "messages": unsent.keys().take(NAMED_MAX).collect::<Vec<_>>(), "first_node": node}),
            );
        }
        let stats = latency(&acked, &reads);
        let mut lost: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (node, msgs) in &finals {
            let got: HashSet<u64> = msgs.iter().copied().collect();
            for m in acked.keys().filter(|m| !got.contains(m)) {
                lost.entry(*m).or_default().push(node.clone());
            }
        }
        let unread: Vec<&String> = input
            .live_nodes
            .iter()
            .filter(|n| !finals.contains_key(*n))
            .collect();
        let evidence = |extra: Value| {
            let mut e = json!({
                "acknowledged": acked.len(),
                "final_reads": finals.len(),
                "stale_reads": stats.stale_reads,
                "stable_latency_ms": stats.quantiles(),
            });
            if let (Value::Object(e), Value::Object(x)) = (&mut e, extra) {
                e.extend(x);
            }
            e
        };
        if let Some((m, nodes)) = lost.iter().next() {
            let named: BTreeMap<String, Vec<String>> = lost
                .iter()
                .take(NAMED_MAX)
                .map(|(m, n)| (m.to_string(), n.iter().take(NAMED_MAX).cloned().collect()))
                .collect();
            return Verdict::invalid(
                self.name(),
                format!(
                    "acknowledged message {m} is missing from the final read of {}; {} of {} acknowledged messages lost",
                    nodes.join(", "),
                    lost.len(),
                    acked.len()
                ),
                evidence(json!({"property": "lost", "lost": named})),
            );
        }
        if input.quiet_from.is_none() || finals.is_empty() {
            return Verdict::unknown(
                self.name(),
                "no final read after the heal, so no message can be called delivered",
                evidence(json!({})),
            );
        }
        if !unread.is_empty() {
            return Verdict::unknown(
                self.name(),
                format!(
                    "no ok final read from {}",
                    unread
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                evidence(json!({"unread": unread})),
            );
        }
        let q = stats.quantiles();
        let mut v = Verdict::valid(
            self.name(),
            format!(
                "all {} acknowledged messages read at all {} nodes after the heal; stable latency p50 {} ms, max {} ms; {} stale reads",
                acked.len(),
                finals.len(),
                q["p50"],
                q["max"],
                stats.stale_reads
            ),
        );
        v.evidence = evidence(json!({}));
        v
    }
}

/// What the checker measures besides its verdict.
#[derive(Debug, Default)]
struct Latency {
    /// Per acknowledged message that became stable: ms from its ack until stable.
    stable_ms: Vec<f64>,
    /// Ok reads that began after a message was acknowledged and lack it.
    stale_reads: u64,
}

impl Latency {
    fn quantiles(&self) -> Value {
        let mut v = self.stable_ms.clone();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| -> Value {
            if v.is_empty() {
                return Value::Null;
            }
            let i = ((v.len() - 1) as f64 * q).round() as usize;
            json!((v[i] * 1000.0).round() / 1000.0)
        };
        json!({"count": v.len(), "p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)})
    }
}

/// Stable latency and stale reads, linear in the size of the reads: per node, reads are
/// walked from the last back ([`since_per_message`]), and a read is stale when fewer of
/// its messages were acknowledged before it began than all messages acknowledged by then.
fn latency(acked: &BTreeMap<u64, u64>, reads: &BTreeMap<String, Vec<(u64, Vec<u64>)>>) -> Latency {
    let mut out = Latency::default();
    let mut done_times: Vec<u64> = acked.values().copied().collect();
    done_times.sort_unstable();
    // Message -> the latest, over nodes, of when it became stable there; messages
    // absent from some node's last read never became stable.
    let mut stable: BTreeMap<u64, u64> = BTreeMap::new();
    let mut unstable: HashSet<u64> = HashSet::new();
    for node_reads in reads.values() {
        let since = since_per_message(node_reads);
        unstable.extend(acked.keys().filter(|m| !since.contains_key(m)));
        for (m, at) in since {
            let s = stable.entry(m).or_insert(at);
            *s = (*s).max(at);
        }
        for (t, msgs) in node_reads {
            let due = done_times.partition_point(|d| d <= t);
            let held = msgs
                .iter()
                .filter(|m| acked.get(m).is_some_and(|d| d <= t))
                .collect::<HashSet<_>>()
                .len();
            out.stale_reads += u64::from(held < due);
        }
    }
    for (m, done) in acked {
        if let (false, Some(at)) = (unstable.contains(m), stable.get(m)) {
            out.stable_ms
                .push(at.saturating_sub(*done) as f64 / 1_000_000.0);
        }
    }
    out
}

/// Per message in a node's last read, the invoke time of the first read of the unbroken
/// run of reads, ending at the last, that all hold it.
fn since_per_message(node_reads: &[(u64, Vec<u64>)]) -> BTreeMap<u64, u64> {
    let mut out: BTreeMap<u64, u64> = BTreeMap::new();
    let Some((_, last)) = node_reads.last() else {
        return out;
    };
    let mut alive: HashSet<u64> = last.iter().copied().collect();
    for (t, msgs) in node_reads.iter().rev() {
        let held: HashSet<u64> = msgs.iter().copied().collect();
        alive.retain(|m| held.contains(m));
        for m in &alive {
            out.insert(*m, *t);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
