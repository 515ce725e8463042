//! `consensus`: agreement, validity and termination of every write-once instance.
//!
//! A consensus algorithm implements a write-once variable, and the seeds ("Properties of a
//! Consensus Algorithm") name what its callers rely on. Judged per instance (`key`):
//!
//! - **agreement**: no two values are ever decided. Every source of "this is decided"
//!   counts: `ok` propose replies (the reply's `value`), `ok` reads that returned a value,
//!   and the `decided` reports nodes send the harness. Reports matter: a node that decides
//!   a second value which no client happens to read has still broken agreement.
//! - **validity**: a decided value was proposed for that instance by a propose that did
//!   not definitely fail (an `info` propose may well have won; a `fail`ed one promised
//!   that its value is never decided), invoked before the value was first seen anywhere
//!   (a report, a read, a propose reply). Before is file order between ops (a squall
//!   history's file order is causal) and time against reports.
//! - **termination**: after the heal, an instance a client proposed to is readable on
//!   every live node. The evidence is the final reads: reads invoked at or after
//!   `quiet_from` with `node` set. A live node whose final reads of the instance all
//!   returned null or did not complete `ok` is "no termination". Only proposals invoked
//!   before the quiet window and not definitely failed oblige the instance: a `fail`ed
//!   propose had no effect, and one invoked inside the window races the final reads.
//!   Without a quiet window termination is not judged and the verdict is at best
//!   `unknown`; a live node with no final read of an obliged instance at all is missing
//!   evidence, which makes the verdict `unknown` too.
//!
//! The verdict names the first violation in a stable order (agreement, validity,
//! termination; lowest instance first) and counts the violating instances of each property
//! in `evidence.violations`. The evidence shapes are listed on [`ConsensusChecker`].
//!
//! [`rounds_summary`] and [`ground_truth_rounds`] are the rounds-to-decision statistics
//! for metrics; they judge nothing.

mod evidence;
mod rounds;

use std::collections::{BTreeMap, BTreeSet};

use proto::Report;
use serde_json::{json, Value};

use crate::history::{Op, Outcome};
use crate::verdict::{CheckInput, Checker, Verdict, VerdictKind};

use evidence::{counted, FinalRead, Witness};
pub use rounds::{ground_truth_rounds, rounds_summary, GroundTruth};

/// Judges agreement, validity and termination per instance of a write-once workload.
///
/// Evidence of an `invalid` verdict, by property (every shape also carries
/// `"violations": {"agreement": n, "validity": n, "termination": n}`, counting violating
/// instances, `"faults": [FaultSpan]` (at most 16) and `"faults_total": n`):
///
/// - `{"property": "agreement", "key", "values": [{"value", "witnesses": n, "seen":
///   [witness]}]}`, one entry per decided value, each with its first 8 witnesses by time
///   seen. A witness is `{"source": "propose" | "read", "process", "index", "node",
///   "invoke_time", "complete_time"}` or `{"source": "report", "node", "time"}`. Faults
///   are those active between the first sighting of each value.
/// - `{"property": "validity", "key", "value", "witnesses": n, "seen": [witness],
///   "proposed": [values proposed for the key, at most 16], "proposed_for": [other keys
///   the value was proposed for]}`. Faults are those active around its first sighting.
/// - `{"property": "termination", "key", "decided": value | null, "proposes": n,
///   "first_propose_time", "nodes": [{"node", "reads": [{"index", "outcome", "value"}]}]}`,
///   one entry per live node that did not read a value. Faults are those active from the
///   first propose to the quiet window.
///
/// `valid` carries `{"instances_proposed", "instances_decided", "ops",
/// "termination_judged"}`; `unknown` for missing final reads carries `{"property":
/// "termination", "missing": [{"key", "node"}] (at most 16), "missing_total"}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsensusChecker;

/// What the history and the reports say about one instance.
#[derive(Debug, Default)]
struct Instance {
    /// Value -> the proposes that offered it.
    proposed: BTreeMap<u64, Vec<Proposal>>,
    /// Propose invokes for this key.
    proposes: u64,
    /// Invoke time of the first propose.
    first_propose_time: Option<u64>,
    /// Some propose obliges the instance to terminate.
    obliged: bool,
    /// Decided value -> who saw it, sorted by time seen once all are in.
    decided: BTreeMap<u64, Vec<Witness>>,
    /// Live or not, node -> its final reads of this instance.
    final_reads: BTreeMap<String, Vec<FinalRead>>,
}

/// A propose that offered a value.
#[derive(Debug, Clone, Copy)]
struct Proposal {
    invoke_index: u64,
    invoke_time: u64,
    /// It ended with a definite error: its value must never be decided.
    failed: bool,
}

impl Proposal {
    /// Whether the propose was invoked before `w` saw a decided value: before the
    /// completion of the witnessing op in file order, at or before a report's arrival.
    fn precedes(&self, w: &Witness) -> bool {
        match w.complete_index() {
            Some(i) => self.invoke_index < i,
            None => self.invoke_time <= w.seen_time(),
        }
    }
}

/// Whether some propose of the value may have decided it: not definitely failed, and
/// invoked before every sighting of the value.
fn validly_proposed(proposals: Option<&Vec<Proposal>>, seen: &[Witness]) -> bool {
    proposals.is_some_and(|ps| {
        ps.iter()
            .any(|p| !p.failed && seen.iter().all(|w| p.precedes(w)))
    })
}

/// One property violated at one instance.
struct Violation {
    reason: String,
    evidence: Value,
}

/// The checker's name in verdicts.
const NAME: &str = "consensus";

impl Checker for ConsensusChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let ops = input.history.ops();
        let (instances, value_keys) = gather(input, &ops);

        let mut agreement = Vec::new();
        let mut validity = Vec::new();
        for (&key, inst) in &instances {
            if inst.decided.len() > 1 {
                agreement.push(evidence::agreement(input, key, inst));
            }
            if let Some((&value, seen)) = inst
                .decided
                .iter()
                .find(|(v, seen)| !validly_proposed(inst.proposed.get(v), seen))
            {
                validity.push(evidence::validity(
                    input,
                    key,
                    inst,
                    value,
                    seen,
                    &value_keys,
                ));
            }
        }
        let termination = judge_termination(input, &instances);
        let counts = json!({
            "agreement": agreement.len(),
            "validity": validity.len(),
            "termination": termination.violations.len(),
        });
        let total = agreement.len() + validity.len() + termination.violations.len();
        let first = agreement
            .into_iter()
            .chain(validity)
            .chain(termination.violations)
            .next();
        if let Some(v) = first {
            let mut evidence = v.evidence;
            evidence["violations"] = counts.clone();
            let mut reason = v.reason;
            if total > 1 {
                reason.push_str(&format!(
                    "; {total} violating instances in all ({} agreement, {} validity, {} termination)",
                    counts["agreement"], counts["validity"], counts["termination"]
                ));
            }
            return Verdict::invalid(NAME, reason, evidence);
        }

        let proposed = instances.values().filter(|i| i.proposes > 0).count();
        if proposed == 0 {
            // Checked after the violations: a value decided with no propose at all breaks
            // validity, it is not "nothing to judge".
            return Verdict::unknown(
                NAME,
                "no propose in the history, nothing to judge",
                json!({"ops": ops.len()}),
            );
        }
        let decided = instances.values().filter(|i| !i.decided.is_empty()).count();
        let summary = format!(
            "{} proposed, {decided} decided, {}",
            counted(proposed, "instance"),
            counted(ops.len(), "op")
        );
        let mut facts = json!({
            "instances_proposed": proposed,
            "instances_decided": decided,
            "ops": ops.len(),
            "termination_judged": termination.judged,
        });
        if let Some(unknown) = termination.unknown {
            facts
                .as_object_mut()
                .expect("an object")
                .extend(unknown.evidence.as_object().cloned().unwrap_or_default());
            return Verdict::unknown(
                NAME,
                format!(
                    "agreement and validity hold ({summary}); {}",
                    unknown.reason
                ),
                facts,
            );
        }
        if !termination.judged {
            if decided == 0 {
                return Verdict::unknown(
                    NAME,
                    format!(
                        "no instance decided and no quiet window, nothing to judge ({summary})"
                    ),
                    facts,
                );
            }
            // Termination is a property the run promised to check: without a quiet
            // window it is undecided, not held.
            return Verdict::unknown(
                NAME,
                format!("agreement and validity hold ({summary}); termination not judged: no quiet window"),
                facts,
            );
        }
        Verdict {
            checker: NAME.into(),
            verdict: VerdictKind::Valid,
            reason: format!("agreement, validity and termination hold ({summary})"),
            evidence: facts,
        }
    }
}

/// Collects per-instance facts, and for each proposed value the keys it was proposed for.
fn gather(
    input: &CheckInput,
    ops: &[Op],
) -> (BTreeMap<u64, Instance>, BTreeMap<u64, BTreeSet<u64>>) {
    let mut instances: BTreeMap<u64, Instance> = BTreeMap::new();
    let mut value_keys: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for op in ops {
        let Some(key) = op.input.get("key").and_then(Value::as_u64) else {
            continue;
        };
        let observed = match op.outcome {
            Outcome::Ok => op
                .output
                .as_ref()
                .and_then(|o| o.get("value"))
                .and_then(Value::as_u64),
            _ => None,
        };
        match op.f.as_str() {
            "propose" => {
                let Some(value) = op.input.get("value").and_then(Value::as_u64) else {
                    continue;
                };
                let inst = instances.entry(key).or_default();
                inst.proposed.entry(value).or_default().push(Proposal {
                    invoke_index: op.invoke_index,
                    invoke_time: op.invoke_time,
                    failed: op.outcome == Outcome::Fail,
                });
                inst.proposes += 1;
                inst.first_propose_time.get_or_insert(op.invoke_time);
                let before_quiet = input.quiet_from.is_none_or(|q| op.invoke_time < q);
                inst.obliged |=
                    op.outcome != Outcome::Fail && before_quiet && !lost_in_crash(input, op);
                value_keys.entry(value).or_default().insert(key);
                if let Some(v) = observed {
                    inst.decided
                        .entry(v)
                        .or_default()
                        .push(Witness::propose(op));
                }
            }
            "read" => {
                let inst = instances.entry(key).or_default();
                if let Some(v) = observed {
                    inst.decided.entry(v).or_default().push(Witness::read(op));
                }
                let is_final = input.quiet_from.is_some_and(|q| op.invoke_time >= q);
                if let (true, Some(node)) = (is_final, &op.node) {
                    let read = FinalRead {
                        index: op.invoke_index,
                        outcome: op.outcome,
                        value: observed,
                    };
                    inst.final_reads.entry(node.clone()).or_default().push(read);
                }
            }
            _ => {}
        }
    }
    for r in &input.reports {
        if let Report::Decided { key, value, .. } = r.report {
            let witness = Witness::Report {
                node: r.node.clone(),
                time: r.time,
            };
            instances
                .entry(key)
                .or_default()
                .decided
                .entry(value)
                .or_default()
                .push(witness);
        }
    }
    for inst in instances.values_mut() {
        for seen in inst.decided.values_mut() {
            seen.sort_by_key(Witness::seen_time);
        }
    }
    (instances, value_keys)
}

/// Whether the node a propose went to was killed while the request may still have been
/// unprocessed there: between the invoke and the completion, or, for an op without a
/// definite outcome, until the end of any pause of that node overlapping the op (a
/// paused node holds requests unread). Such a proposal may be lost with the process,
/// and consensus promises termination to correct processes only, so it obliges nothing.
fn lost_in_crash(input: &CheckInput, op: &Op) -> bool {
    let Some(node) = op.node.as_deref() else {
        return false;
    };
    let invoke = op.invoke_time;
    let completed = op.complete_time.unwrap_or(u64::MAX);
    let mut until = completed;
    if op.outcome != Outcome::Ok {
        for pause in &input.faults {
            if pause.holds("pause", node, invoke, completed) {
                until = until.max(pause.end.unwrap_or(u64::MAX));
            }
        }
    }
    input.faults.iter().any(|f| f.downs(node, invoke, until))
}

/// The termination judgement: violations, or missing evidence, or nothing to judge.
struct Termination {
    judged: bool,
    violations: Vec<Violation>,
    unknown: Option<Violation>,
}

fn judge_termination(input: &CheckInput, instances: &BTreeMap<u64, Instance>) -> Termination {
    let Some(quiet_from) = input.quiet_from else {
        return Termination {
            judged: false,
            violations: Vec::new(),
            unknown: None,
        };
    };
    let live: BTreeSet<&str> = input.live_nodes.iter().map(String::as_str).collect();
    let obliged = instances.values().filter(|i| i.obliged).count();
    if live.is_empty() && obliged > 0 {
        let unknown = Violation {
            reason: format!(
                "termination not judged: no live node at the end of the run, {} proposed",
                counted(obliged, "instance")
            ),
            evidence: json!({"property": "termination", "live_nodes": []}),
        };
        return Termination {
            judged: false,
            violations: Vec::new(),
            unknown: Some(unknown),
        };
    }
    let mut violations = Vec::new();
    let mut missing: Vec<(u64, &str)> = Vec::new();
    for (&key, inst) in instances.iter().filter(|(_, i)| i.obliged) {
        let mut failed: Vec<(&str, &[FinalRead])> = Vec::new();
        for &node in &live {
            match inst.final_reads.get(node) {
                None => missing.push((key, node)),
                Some(reads) if reads.iter().any(|r| r.value.is_some()) => {}
                Some(reads) => failed.push((node, reads)),
            }
        }
        if !failed.is_empty() {
            violations.push(evidence::termination(input, key, inst, &failed, quiet_from));
        }
    }
    let unknown = (!missing.is_empty()).then(|| evidence::missing_final_reads(&missing));
    Termination {
        judged: missing.is_empty(),
        violations,
        unknown,
    }
}
