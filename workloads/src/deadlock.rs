//! `deadlock`: nodes wait for each other; snapshots must find the deadlocks, and only real
//! ones.
//!
//! Clients ask node `i` to `wait {on: j}` (→ `wait_ok`: `i` now waits for `j` until `j`
//! grants it; error 22 when `i` already waits, definite). A node grants when it is not
//! waiting itself, so waits chain, and a cycle of waits is a deadlock that never clears.
//! Some ops ask a node for a global snapshot (`snapshot` → `snapshot_ok {id}`); its
//! initiator reports the cycle it found in the cut's wait-for graph, or none
//! (`deadlock {id, cycle, waits}`, PROTOCOL.md §8). Final ops ask every node whom it
//! waits for (`read` → `read_ok {value: K}` for `nK`, null when free) and start one more
//! snapshot at every node.
//!
//! **Ground truth.** The detector's answer is the algorithm's; the checker's is the
//! history's. Nothing starts a wait once clients stop, so in the quiet window the
//! wait-for graph only loses edges: a cycle among the final reads stood at the earliest
//! of those reads, and a deadlock never clears, so it stood from the moment the last of
//! its waits was acknowledged (`wait_ok`) to the end of the run. [`DeadlockChecker`]
//! judges every detection:
//! - `phantom-deadlock`: a reported cycle must be real: for each edge `i → j`, `i`'s
//!   final read says it still waits for `j` and `i`'s last acknowledged wait (on `j`) was
//!   asked for before the report. A cycle through a wait that was later granted, or
//!   replaced by a newer one, was not standing.
//! - `missed-deadlock`: a snapshot asked for after a deadlock of the final reads had
//!   formed (after its last `wait_ok`) that completes must report a cycle.
//!
//! A node whose final read is missing leaves the edges through it undecided: a report
//! judged on them is counted, not failed. A run with no completed detection is
//! `unknown`.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::ClientOp;
use proto::Report;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::{Op, Outcome};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::{Target, Workload, WorkloadOpts};

/// Percent of ops that start a snapshot; the rest are waits.
pub const SNAPSHOT_PERCENT: u32 = 20;
/// Detections an invalid verdict's evidence lists at most.
pub const EVIDENCE_MAX: usize = 5;

/// The op generator.
#[derive(Debug, Clone)]
pub struct DeadlockWorkload {
    nodes: usize,
}

impl DeadlockWorkload {
    /// Waits among `opts.nodes` nodes.
    pub fn new(opts: &WorkloadOpts) -> Self {
        DeadlockWorkload {
            nodes: opts.nodes.max(2),
        }
    }
}

impl Workload for DeadlockWorkload {
    fn next_targeted(&mut self, rng: &mut ChaCha8Rng) -> (ClientOp, Target) {
        crate::bank::snapshot_or_toward_peer(self.nodes, SNAPSHOT_PERCENT, rng, |on, _| {
            ClientOp::Wait { on }
        })
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        self.next_targeted(rng).0
    }

    fn name(&self) -> &'static str {
        "deadlock"
    }

    /// Whom every node waits for, and a snapshot from every node.
    fn final_ops(&self) -> Vec<ClientOp> {
        vec![ClientOp::Read { key: 0 }, ClientOp::Snapshot]
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(DeadlockChecker { nodes: self.nodes })]
    }

    fn default_algorithm(&self) -> &'static str {
        "wait-for"
    }

    fn instances_default(&self) -> Option<u64> {
        Some(1)
    }
}

/// One detection: the initiator's report.
#[derive(Debug, Clone)]
struct Detection {
    id: String,
    at: u64,
    cycle: Vec<String>,
    waits: BTreeMap<String, String>,
}

/// What the history says about the waits.
#[derive(Debug, Default)]
struct Truth {
    /// Per node, its last acknowledged wait: (on, invoke time, complete time).
    last_wait: BTreeMap<String, (String, u64, u64)>,
    /// Per node, whom its last final read said it waits for (`None`: free).
    at_end: BTreeMap<String, Option<String>>,
}

impl Truth {
    fn of(input: &CheckInput) -> Truth {
        let mut t = Truth::default();
        let quiet = input.quiet_from.unwrap_or(u64::MAX);
        for op in input.history.ops() {
            let Some(node) = &op.node else { continue };
            if op.outcome != Outcome::Ok {
                continue;
            }
            match op.f.as_str() {
                "wait" => {
                    let on = op.input["on"].as_str().unwrap_or("?").to_string();
                    let done = op.complete_time.unwrap_or(op.invoke_time);
                    let newer = t
                        .last_wait
                        .get(node)
                        .is_none_or(|(_, invoked, _)| *invoked <= op.invoke_time);
                    if newer {
                        t.last_wait.insert(node.clone(), (on, op.invoke_time, done));
                    }
                }
                "read" if op.invoke_time >= quiet => {
                    let value = read_value(&op);
                    t.at_end.insert(node.clone(), value);
                }
                _ => {}
            }
        }
        t
    }

    /// The deadlocks of the final reads: each cycle with the time its last wait was
    /// acknowledged (from then on it stood).
    fn deadlocks(&self) -> Vec<(Vec<String>, u64)> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for start in self.at_end.keys() {
            let mut path: Vec<&String> = Vec::new();
            let mut at = start;
            while let Some(Some(next)) = self.at_end.get(at) {
                if seen.contains(at) || path.len() > self.at_end.len() {
                    break;
                }
                path.push(at);
                if let Some(pos) = path.iter().position(|n| *n == next) {
                    let cycle: Vec<String> = path[pos..].iter().map(|n| (*n).clone()).collect();
                    let formed = cycle
                        .iter()
                        .filter_map(|n| self.last_wait.get(n).map(|w| w.2))
                        .max()
                        .unwrap_or(0);
                    out.push((cycle, formed));
                    break;
                }
                at = next;
            }
            seen.extend(path.into_iter().cloned());
        }
        out
    }

    /// Why edge `from → on` of a cycle reported at `at` was not standing, if it was
    /// not; `Err` when the history cannot tell.
    fn edge_flaw(&self, from: &str, on: &str, at: u64) -> Result<Option<String>, String> {
        let Some(end) = self.at_end.get(from) else {
            return Err(format!("{from} gave no final read"));
        };
        if end.as_deref() != Some(on) {
            let now = end.as_deref().map_or("nobody".into(), |e| e.to_string());
            return Ok(Some(format!(
                "{from} waited for {now} at the end, not {on}: its wait was granted"
            )));
        }
        match self.last_wait.get(from) {
            Some((_, invoked, _)) if *invoked > at => Ok(Some(format!(
                "{from}'s wait for {on} that stands at the end was asked for after the \
                 report: the one the cut saw was granted"
            ))),
            _ => Ok(None),
        }
    }
}

/// A final read's value as a node id.
fn read_value(op: &Op) -> Option<String> {
    let out = op.output.as_ref()?;
    out["value"].as_u64().map(|k| format!("n{k}"))
}

/// Gathers the detections.
fn detections(input: &CheckInput) -> BTreeMap<String, Detection> {
    let mut out = BTreeMap::new();
    for r in &input.reports {
        if let Report::Deadlock { id, cycle, waits } = &r.report {
            let d = Detection {
                id: id.clone(),
                at: r.at(),
                cycle: cycle.clone(),
                waits: waits.clone(),
            };
            out.entry(id.clone()).or_insert(d);
        }
    }
    out
}

/// Judges every deadlock detection against the history.
#[derive(Debug, Clone)]
pub struct DeadlockChecker {
    /// Nodes in the cluster.
    pub nodes: usize,
}

impl Checker for DeadlockChecker {
    fn name(&self) -> &'static str {
        "deadlock-detection"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let truth = Truth::of(input);
        let found = detections(input);
        let deadlocks = truth.deadlocks();
        // When each snapshot was asked for.
        let asked: BTreeMap<String, u64> = input
            .history
            .ops()
            .iter()
            .filter(|o| o.f == "snapshot" && o.outcome == Outcome::Ok)
            .filter_map(|o| {
                let id = o.output.as_ref()?["id"].as_str()?.to_string();
                Some((id, o.invoke_time))
            })
            .collect();
        let mut flaws: Vec<Value> = Vec::new();
        let mut properties: BTreeSet<&'static str> = BTreeSet::new();
        let mut undecided = 0usize;
        let mut reported = 0usize;
        for d in found.values() {
            if !d.cycle.is_empty() {
                reported += 1;
                let mut why = Vec::new();
                for (k, from) in d.cycle.iter().enumerate() {
                    let on = &d.cycle[(k + 1) % d.cycle.len()];
                    match truth.edge_flaw(from, on, d.at) {
                        Ok(Some(w)) => why.push(w),
                        Ok(None) => {}
                        Err(_) => undecided += 1,
                    }
                }
                if !why.is_empty() {
                    properties.insert("phantom-deadlock");
                    let from = asked.get(&d.id).copied().unwrap_or(d.at);
                    flaws.push(self.evidence(input, d, from, "phantom-deadlock", why));
                }
                continue;
            }
            let Some(started) = asked.get(&d.id) else {
                continue;
            };
            if let Some((cycle, formed)) = deadlocks.iter().find(|(_, f)| f < started) {
                properties.insert("missed-deadlock");
                let why = vec![format!(
                    "the cycle {} stood from {} ms, before the snapshot was asked for at {} \
                     ms, and the snapshot found no cycle",
                    cycle.join(" -> "),
                    formed / 1_000_000,
                    started / 1_000_000
                )];
                flaws.push(self.evidence(input, d, *started, "missed-deadlock", why));
            }
        }
        let counts = json!({
            "detections": found.len(),
            "cycles_reported": reported,
            "edges_undecided": undecided,
            "deadlocks_at_end": deadlocks.iter().map(|(c, f)| json!({"cycle": c, "formed_ns": f})).collect::<Vec<_>>(),
        });
        if let Some(first) = flaws.first() {
            let reason = format!(
                "snapshot {}: {} ({} of {} detections wrong)",
                first["id"].as_str().unwrap_or("?"),
                first["why"][0].as_str().unwrap_or("?"),
                flaws.len(),
                found.len()
            );
            let property = *properties.iter().next().expect("a flaw has one");
            flaws.truncate(EVIDENCE_MAX);
            let evidence = json!({
                "property": property,
                "properties": properties,
                "detections": flaws,
                "counts": counts,
            });
            return Verdict::invalid(self.name(), reason, evidence);
        }
        if found.is_empty() {
            return Verdict::unknown(self.name(), "no snapshot completed a detection", counts);
        }
        let reason = format!(
            "{} detections, {reported} reported a cycle, each standing at the end; every \
             snapshot asked for after a deadlock formed found one",
            found.len()
        );
        let mut v = Verdict::valid(self.name(), reason);
        v.evidence = counts;
        v
    }
}

impl DeadlockChecker {
    fn evidence(
        &self,
        input: &CheckInput,
        d: &Detection,
        asked: u64,
        property: &str,
        why: Vec<String>,
    ) -> Value {
        // The faults active while the snapshot ran, from its request to its report.
        let faults: Vec<&str> = input
            .faults_during(asked.min(d.at), d.at)
            .iter()
            .map(|f| f.what.as_str())
            .collect();
        json!({
            "id": d.id,
            "property": property,
            "cycle": d.cycle,
            "waits": d.waits,
            "asked_ns": asked,
            "reported_ns": d.at,
            "why": why,
            "faults": faults,
        })
    }
}

#[cfg(test)]
#[path = "deadlock/tests.rs"]
mod tests;
