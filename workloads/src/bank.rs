//! `bank`: money moves between nodes' accounts; global snapshots must see all of it.
//!
//! Every node holds one account of [`BANK_INITIAL_BALANCE`]. Clients ask node `i` to
//! `transfer {to, amount}` to another node (→ `transfer_ok {seq}`, the transfer's number
//! on the link `i → to`, or error 22 for insufficient funds: definite, nothing moved); the
//! transfer travels as a message between the nodes. Some ops ask a node to start a global
//! snapshot (`snapshot` → `snapshot_ok {id}`). Nodes report each piece of a snapshot to
//! the harness (PROTOCOL.md §8): `snapshot_local` (balance and, per peer, transfers sent
//! and applied at the recording point) and `snapshot_channel` (the transfers recorded on
//! one incoming channel). Final ops read every node's balance (`read` → `read_ok
//! {value}`).
//!
//! **Checkers.** [`SnapshotChecker`] assembles each snapshot from the reports. A snapshot
//! is complete when every node reported its state and every directed channel its
//! content. A complete snapshot must
//! - conserve money: the balances plus the money recorded in channels is exactly the
//!   bank's total (property `snapshot-total`);
//! - be a consistent cut: on every link `i → j`, no transfer applied at `j` inside the cut
//!   was sent by `i` outside it (`received_max ≤ sent`), no recorded channel message was
//!   sent outside the cut, and every transfer sent inside and not received inside is in
//!   the channel's record (`sent − received = count`) (property `consistent-cut`);
//! - agree with the harness's own record: each transfer a channel lists was made by a
//!   client op the history has (`transfer_ok` names its link and number), for that amount
//!   (property `channel-record`). The history is complete, unlike the router's message
//!   log, which keeps only the first and last 100,000 copies.
//!
//! Snapshots that never complete (a marker lost with a node, a dropped message) are
//! counted and named; a run in which snapshots started but none completed is `unknown`,
//! never `valid`. [`FinalTotal`] asks that the final balances add up to the total: with
//! no node killed (accounts live in memory) and no message dropped, no money may vanish.
//! [`Termination`] is the seed's stable-property detection: each snapshot taken in the
//! quiet window (a final op at every node) says whether the transfers have terminated in
//! its cut, and a "terminated" that the history contradicts is invalid.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::{ClientOp, BANK_INITIAL_BALANCE};
use proto::report::SNAPSHOT_SEQS_MAX;
use proto::Report;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::Outcome;
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::{Target, Workload, WorkloadOpts};

/// Percent of ops that start a snapshot; the rest are transfers.
pub const SNAPSHOT_PERCENT: u32 = 5;
/// The largest amount a transfer moves (amounts are 1..=this).
pub const AMOUNT_MAX: u64 = 20;
/// Snapshots an invalid verdict's evidence lists at most.
pub const EVIDENCE_SNAPSHOTS_MAX: usize = 5;

/// The bank's op generator.
#[derive(Debug, Clone)]
pub struct BankWorkload {
    nodes: usize,
}

impl BankWorkload {
    /// A bank of `opts.nodes` accounts.
    pub fn new(opts: &WorkloadOpts) -> Self {
        BankWorkload {
            nodes: opts.nodes.max(2),
        }
    }
}

/// The node ids of a cluster of `nodes`, as the harness names them.
pub fn node_ids(nodes: usize) -> Vec<String> {
    (1..=nodes).map(|i| format!("n{i}")).collect()
}

/// The op shape the snapshot workloads share: a node drawn from `nodes`, which either
/// starts a snapshot (`snapshot_percent` of the time) or gets `toward(peer, rng)` aimed
/// at another node drawn uniformly among the rest.
pub fn snapshot_or_toward_peer(
    nodes: usize,
    snapshot_percent: u32,
    rng: &mut ChaCha8Rng,
    toward: impl FnOnce(String, &mut ChaCha8Rng) -> ClientOp,
) -> (ClientOp, Target) {
    let from = rng.gen_range(0..nodes);
    if rng.gen_range(0..100) < snapshot_percent {
        return (ClientOp::Snapshot, Target::Node(from));
    }
    let peer = (from + rng.gen_range(1..nodes)) % nodes;
    (toward(format!("n{}", peer + 1), rng), Target::Node(from))
}

impl Workload for BankWorkload {
    fn next_targeted(&mut self, rng: &mut ChaCha8Rng) -> (ClientOp, Target) {
        snapshot_or_toward_peer(self.nodes, SNAPSHOT_PERCENT, rng, |to, rng| {
            ClientOp::Transfer {
                to,
                amount: rng.gen_range(1..=AMOUNT_MAX),
            }
        })
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        self.next_targeted(rng).0
    }

    fn name(&self) -> &'static str {
        "bank"
    }

    /// Every node's balance, and a snapshot from every node for termination detection.
    fn final_ops(&self) -> Vec<ClientOp> {
        vec![ClientOp::Read { key: 0 }, ClientOp::Snapshot]
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![
            Box::new(SnapshotChecker { nodes: self.nodes }),
            Box::new(FinalTotal { nodes: self.nodes }),
            Box::new(Termination {
                ids: node_ids(self.nodes),
            }),
        ]
    }

    fn default_algorithm(&self) -> &'static str {
        "chandy-lamport"
    }

    fn instances_default(&self) -> Option<u64> {
        Some(1)
    }
}

/// A node's recorded state.
#[derive(Debug, Clone, PartialEq)]
struct Local {
    balance: u64,
    sent: BTreeMap<String, u64>,
    received: BTreeMap<String, u64>,
    received_max: BTreeMap<String, u64>,
}

/// A channel's recorded content.
#[derive(Debug, Clone, PartialEq)]
struct Chan {
    count: u64,
    amount: u64,
    seqs: Vec<u64>,
}

/// Every piece reported for one snapshot, and when the pieces arrived.
#[derive(Debug, Default)]
struct Pieces {
    locals: BTreeMap<String, Local>,
    channels: BTreeMap<(String, String), Chan>,
    twice: Vec<String>,
    first: u64,
    last: u64,
    /// When each node's state report arrived (its recording point, as near as the
    /// harness sees it).
    recorded_at: BTreeMap<String, u64>,
}

impl Pieces {
    /// Whether every node of `ids` reported its state and every channel its content.
    fn complete(&self, ids: &[String]) -> bool {
        ids.iter().all(|n| self.locals.contains_key(n))
            && self.channels.len() == ids.len() * (ids.len() - 1)
            && self
                .channels
                .keys()
                .all(|(f, t)| ids.contains(f) && ids.contains(t))
    }

    /// The detector's answer: the computation has terminated in this cut when no
    /// transfer is on any channel and every link's receiver applied all its sender sent.
    fn says_terminated(&self) -> bool {
        self.channels.iter().all(|((from, to), c)| {
            let sent = self.locals[from].sent.get(to).copied().unwrap_or(0);
            let received = self.locals[to].received.get(from).copied().unwrap_or(0);
            c.count == 0 && sent == received
        })
    }
}

/// Gathers the snapshot reports by snapshot id.
fn gather(input: &CheckInput) -> BTreeMap<String, Pieces> {
    let mut out: BTreeMap<String, Pieces> = BTreeMap::new();
    for r in &input.reports {
        let (id, at) = match &r.report {
            Report::SnapshotLocal { id, .. } | Report::SnapshotChannel { id, .. } => (id, r.at()),
            _ => continue,
        };
        let p = out.entry(id.clone()).or_insert_with(|| Pieces {
            first: at,
            ..Pieces::default()
        });
        p.first = p.first.min(at);
        p.last = p.last.max(at);
        match &r.report {
            Report::SnapshotLocal {
                balance,
                sent,
                received,
                received_max,
                ..
            } => {
                let local = Local {
                    balance: *balance,
                    sent: sent.clone(),
                    received: received.clone(),
                    received_max: received_max.clone(),
                };
                p.recorded_at.entry(r.node.clone()).or_insert(at);
                if p.locals.insert(r.node.clone(), local).is_some() {
                    p.twice.push(format!("{} recorded its state twice", r.node));
                }
            }
            Report::SnapshotChannel {
                from,
                count,
                amount,
                seqs,
                ..
            } => {
                let chan = Chan {
                    count: *count,
                    amount: *amount,
                    seqs: seqs.clone(),
                };
                let link = (from.clone(), r.node.clone());
                if p.channels.insert(link, chan).is_some() {
                    p.twice
                        .push(format!("{from}->{} was recorded twice", r.node));
                }
            }
            _ => {}
        }
    }
    out
}

/// A transfer the history says was made: its amount and when the client heard of it.
#[derive(Debug, Clone, Copy)]
struct Made {
    amount: u64,
    at: u64,
}

/// Transfers the history says were made, by (from, to, seq).
type MadeMap = BTreeMap<(String, String, u64), Made>;

/// Transfers the history says were made.
fn transfers_made(input: &CheckInput) -> MadeMap {
    let mut made = BTreeMap::new();
    for op in input.history.ops() {
        if op.f != "transfer" || op.outcome != Outcome::Ok {
            continue;
        }
        let (Some(from), Some(out)) = (&op.node, &op.output) else {
            continue;
        };
        let (Some(to), Some(seq), Some(amount)) = (
            out["to"].as_str(),
            out["seq"].as_u64(),
            out["amount"].as_u64(),
        ) else {
            continue;
        };
        let at = op.complete_time.unwrap_or(op.invoke_time);
        made.insert((from.clone(), to.to_string(), seq), Made { amount, at });
    }
    made
}

/// Judges every snapshot of a `bank` run.
#[derive(Debug, Clone)]
pub struct SnapshotChecker {
    /// Nodes in the cluster.
    pub nodes: usize,
}

/// One violation in one snapshot.
struct Flaw {
    property: &'static str,
    what: String,
}

impl SnapshotChecker {
    /// The flaws of one complete snapshot, in property order.
    fn flaws(&self, p: &Pieces, made: &MadeMap, total: u64) -> Vec<Flaw> {
        let mut flaws: Vec<Flaw> = p
            .twice
            .iter()
            .map(|what| Flaw {
                property: "snapshot-reports",
                what: what.clone(),
            })
            .collect();
        let seen: u64 = p.locals.values().map(|l| l.balance).sum::<u64>()
            + p.channels.values().map(|c| c.amount).sum::<u64>();
        if seen != total {
            flaws.push(Flaw {
                property: "snapshot-total",
                what: format!("the snapshot holds {seen}, the bank holds {total}"),
            });
        }
        for ((from, to), chan) in &p.channels {
            let sent = p.locals[from].sent.get(to).copied().unwrap_or(0);
            let local_to = &p.locals[to];
            let received = local_to.received.get(from).copied().unwrap_or(0);
            let received_max = local_to.received_max.get(from).copied().unwrap_or(0);
            if received_max > sent {
                flaws.push(Flaw {
                    property: "consistent-cut",
                    what: format!(
                        "{to} had applied transfer {from}->{to} #{received_max} when it \
                         recorded, but {from} had sent only {sent} when it recorded"
                    ),
                });
            }
            if let Some(late) = chan.seqs.iter().find(|s| **s > sent) {
                flaws.push(Flaw {
                    property: "consistent-cut",
                    what: format!(
                        "channel {from}->{to} holds transfer #{late}, sent after {from} \
                         recorded (it had sent {sent})"
                    ),
                });
            }
            if sent.checked_sub(received) != Some(chan.count) {
                flaws.push(Flaw {
                    property: "consistent-cut",
                    what: format!(
                        "{from} had sent {sent} transfers to {to} and {to} applied \
                         {received}, but the channel holds {}",
                        chan.count
                    ),
                });
            }
            if chan.seqs.len() as u64 == chan.count && chan.seqs.len() <= SNAPSHOT_SEQS_MAX {
                let known: Option<u64> = chan
                    .seqs
                    .iter()
                    .map(|s| made.get(&(from.clone(), to.clone(), *s)).map(|m| m.amount))
                    .sum();
                if let Some(amount) = known.filter(|a| *a != chan.amount) {
                    flaws.push(Flaw {
                        property: "channel-record",
                        what: format!(
                            "channel {from}->{to} says {} in transfers {:?}; the history \
                             has {amount} for them",
                            chan.amount, chan.seqs
                        ),
                    });
                }
            }
        }
        flaws
    }
}

impl Checker for SnapshotChecker {
    fn name(&self) -> &'static str {
        "snapshots"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let ids = node_ids(self.nodes);
        let total = BANK_INITIAL_BALANCE * self.nodes as u64;
        let made = transfers_made(input);
        let mut snapshots = gather(input);
        // Snapshots the history saw start but no node ever reported on.
        for op in input.history.ops() {
            let id = op.output.as_ref().and_then(|o| o["id"].as_str());
            if let (true, Outcome::Ok, Some(id)) = (op.f == "snapshot", op.outcome, id) {
                snapshots.entry(id.to_string()).or_default();
            }
        }
        let channels_n = self.nodes * (self.nodes - 1);
        let mut complete = 0usize;
        let mut incomplete: Vec<Value> = Vec::new();
        let mut bad: Vec<Value> = Vec::new();
        // The first wrong snapshot's recording points and crossing sends, for lifelines.
        let mut marks: Vec<Value> = Vec::new();
        let mut properties = BTreeSet::new();
        for (id, p) in &snapshots {
            let whole = p.complete(&ids);
            if !whole {
                let missing: Vec<&String> =
                    ids.iter().filter(|n| !p.locals.contains_key(*n)).collect();
                incomplete.push(json!({
                    "id": id,
                    "states_missing": missing,
                    "channels_recorded": p.channels.len(),
                    "channels": channels_n,
                }));
                continue;
            }
            complete += 1;
            let flaws = self.flaws(p, &made, total);
            if flaws.is_empty() {
                continue;
            }
            properties.extend(flaws.iter().map(|f| f.property));
            if bad.len() < EVIDENCE_SNAPSHOTS_MAX {
                let faults: Vec<&str> = input
                    .faults_during(p.first, p.last)
                    .iter()
                    .map(|f| f.what.as_str())
                    .collect();
                let crossed = story::crossed(p, &made);
                if bad.is_empty() {
                    marks = story::marks(p, &crossed);
                }
                bad.push(json!({
                    "id": id,
                    "violations": flaws.iter().map(|f| format!("{}: {}", f.property, f.what)).collect::<Vec<_>>(),
                    "balances": p.locals.iter().map(|(n, l)| (n.clone(), l.balance)).collect::<BTreeMap<_, _>>(),
                    "channels": p.channels.iter().filter(|(_, c)| c.count > 0).map(|((f, t), c)| (format!("{f}->{t}"), json!({"count": c.count, "amount": c.amount, "seqs": c.seqs}))).collect::<BTreeMap<_, _>>(),
                    "seen": p.locals.values().map(|l| l.balance).sum::<u64>() + p.channels.values().map(|c| c.amount).sum::<u64>(),
                    "nodes": story::nodes(p),
                    "crossed": crossed,
                    "recorded_from_ns": p.first,
                    "recorded_to_ns": p.last,
                    "faults": faults,
                }));
            }
        }
        let incomplete_n = incomplete.len();
        incomplete.truncate(EVIDENCE_SNAPSHOTS_MAX);
        if !properties.is_empty() {
            let property = *properties.iter().next().expect("non-empty");
            let first = &bad[0];
            let reason = format!(
                "snapshot {} is wrong: {} ({} of {complete} complete snapshots wrong)",
                first["id"].as_str().unwrap_or("?"),
                first["violations"][0].as_str().unwrap_or("?"),
                bad.len(),
            );
            return Verdict::invalid(
                self.name(),
                reason,
                json!({
                    "property": property,
                    "properties": properties,
                    "total": total,
                    "cut": first["id"],
                    "marks": marks,
                    "snapshots": bad,
                    "complete": complete,
                    "incomplete": incomplete_n,
                }),
            );
        }
        let evidence = json!({
            "complete": complete,
            "incomplete": incomplete_n,
            "incomplete_examples": incomplete,
        });
        if complete == 0 {
            let reason = match incomplete_n {
                0 => "no snapshot was taken".to_string(),
                n => format!("none of the {n} snapshots started completed"),
            };
            return Verdict::unknown(self.name(), reason, evidence);
        }
        let mut verdict = Verdict::valid(
            self.name(),
            format!(
                "{complete} complete snapshots each hold {total} and are consistent cuts; \
                 {incomplete_n} never completed"
            ),
        );
        verdict.evidence = evidence;
        verdict
    }
}

/// The final balances add up to the bank's total.
#[derive(Debug, Clone)]
pub struct FinalTotal {
    /// Nodes in the cluster.
    pub nodes: usize,
}

impl Checker for FinalTotal {
    fn name(&self) -> &'static str {
        "final-total"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let total = BANK_INITIAL_BALANCE * self.nodes as u64;
        let Some(quiet) = input.quiet_from else {
            return Verdict::unknown(self.name(), "no quiet window, no final reads", Value::Null);
        };
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for op in input.history.ops() {
            let value = op.output.as_ref().and_then(|o| o["value"].as_u64());
            if let (true, Outcome::Ok, true, Some(node), Some(value)) = (
                op.f == "read",
                op.outcome,
                op.invoke_time >= quiet,
                &op.node,
                value,
            ) {
                last.insert(node.clone(), value);
            }
        }
        let missing: Vec<String> = node_ids(self.nodes)
            .into_iter()
            .filter(|n| !last.contains_key(n))
            .collect();
        if !missing.is_empty() {
            let reason = format!("no final balance from {}", missing.join(", "));
            return Verdict::unknown(self.name(), reason, json!({ "balances": last }));
        }
        let sum: u64 = last.values().sum();
        if sum == total {
            return Verdict::valid(self.name(), format!("the final balances add up to {total}"));
        }
        let killed = input.faults.iter().any(|f| f.kind == "kill");
        let evidence =
            json!({"property": "final-total", "total": total, "sum": sum, "balances": last});
        if killed {
            let reason = format!(
                "the final balances add up to {sum}, not {total}, but a node was killed \
                 (accounts live in memory)"
            );
            return Verdict::unknown(self.name(), reason, evidence);
        }
        let reason = format!("the final balances add up to {sum}, not {total}");
        Verdict::invalid(self.name(), reason, evidence)
    }
}

/// Termination detection on the snapshots, the seed's stable property: once clients stop
/// (the quiet window), no transfer is ever sent again, so "no money in transit" holds
/// from some moment on and forever. Each snapshot taken in the quiet window (the final
/// ops start one at every node) answers whether the computation has terminated in its
/// cut ([`Pieces::says_terminated`]). The ground truth is the history: a snapshot that
/// says so must have seen, on every link, every transfer whose `transfer_ok` the history
/// records before the snapshot was asked for (property `false-termination`). A missed
/// detection is counted in the evidence, not judged: the final snapshots start with the
/// final reads, while a delayed transfer may still be on the wire.
#[derive(Debug, Clone)]
pub struct Termination {
    /// The cluster's node ids.
    pub ids: Vec<String>,
}

impl Checker for Termination {
    fn name(&self) -> &'static str {
        "termination-detection"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let Some(quiet) = input.quiet_from else {
            return Verdict::unknown(self.name(), "no quiet window", Value::Null);
        };
        let ids = &self.ids;
        let snapshots = gather(input);
        let ops = input.history.ops();
        let mut detected = 0usize;
        let mut judged = 0usize;
        for op in ops
            .iter()
            .filter(|o| o.f == "snapshot" && o.invoke_time >= quiet)
        {
            let id = op.output.as_ref().and_then(|o| o["id"].as_str());
            let Some(p) = id.and_then(|id| snapshots.get(id)) else {
                continue;
            };
            if !p.complete(ids) {
                continue;
            }
            judged += 1;
            if !p.says_terminated() {
                continue;
            }
            detected += 1;
            // Transfers made before the snapshot was asked for: the highest per link.
            let mut made: BTreeMap<(String, String), u64> = BTreeMap::new();
            for t in ops
                .iter()
                .filter(|t| t.f == "transfer" && t.outcome == Outcome::Ok)
            {
                let out = t.output.as_ref();
                let to = out.and_then(|o| o["to"].as_str());
                let seq = out.and_then(|o| o["seq"].as_u64());
                let done = t.complete_time.is_some_and(|c| c < op.invoke_time);
                if let (true, Some(from), Some(to), Some(seq)) = (done, &t.node, to, seq) {
                    let max = made.entry((from.clone(), to.to_string())).or_default();
                    *max = (*max).max(seq);
                }
            }
            for ((from, to), seq) in &made {
                let applied = p.locals.get(to).and_then(|l| l.received.get(from));
                if applied.copied().unwrap_or(0) < *seq {
                    let reason = format!(
                        "snapshot {} says the computation terminated, but transfer \
                         {from}->{to} #{seq} was made before it and {to} had not applied it",
                        id.unwrap_or("?")
                    );
                    let evidence = json!({"property": "false-termination", "snapshot": id});
                    return Verdict::invalid(self.name(), reason, evidence);
                }
            }
        }
        // Detection is judged for safety only: the final snapshots start with the final
        // reads, while a transfer delayed past the heal may still be on the wire, and a
        // lockstep run may end before their markers are all delivered.
        let reason = format!(
            "{detected} of {judged} complete quiet-window snapshots detected termination, \
             none falsely (a missed detection is not judged)"
        );
        let mut v = Verdict::valid(self.name(), reason);
        v.evidence = json!({"judged": judged, "detected": detected});
        v
    }
}

#[path = "bank/story.rs"]
mod story;

#[cfg(test)]
#[path = "bank/tests.rs"]
mod tests;
