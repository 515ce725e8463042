//! The consensus checker's evidence: who saw what, and each violation rendered so that
//! the verdict reads without opening the history.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use super::{Instance, Violation};
use crate::history::{Op, Outcome};
use crate::verdict::CheckInput;

/// Witnesses listed per decided value.
const WITNESSES_MAX: usize = 8;
/// Faults listed per violation.
const FAULTS_MAX: usize = 16;
/// Faults named in a reason.
const FAULTS_IN_REASON_MAX: usize = 4;
/// Proposed values listed for a validity violation.
const PROPOSED_MAX: usize = 16;
/// Missing (instance, node) final reads listed.
const MISSING_MAX: usize = 16;

const _: () = assert!(FAULTS_IN_REASON_MAX <= FAULTS_MAX);

/// Someone who saw a value decided.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub(super) enum Witness {
    /// An `ok` propose reply.
    Propose(OpSeen),
    /// An `ok` read that returned a value.
    Read(OpSeen),
    /// A node's `decided` report.
    Report {
        /// The reporting node.
        node: String,
        /// When the report arrived (ns).
        time: u64,
    },
}

/// The op behind a [`Witness`].
#[derive(Debug, Clone, Serialize)]
pub(super) struct OpSeen {
    process: u64,
    index: u64,
    #[serde(skip)]
    complete_index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    invoke_time: u64,
    complete_time: u64,
}

impl OpSeen {
    fn new(op: &Op) -> Self {
        OpSeen {
            process: op.process,
            index: op.invoke_index,
            complete_index: op.complete_index.expect("an ok op has completed"),
            node: op.node.clone(),
            invoke_time: op.invoke_time,
            complete_time: op.complete_time.expect("an ok op has completed"),
        }
    }

    fn describe(&self, f: &str) -> String {
        let at = self
            .node
            .as_ref()
            .map(|n| format!(" at {n}"))
            .unwrap_or_default();
        format!(
            "{f} ok{at}, process {}, op {}, t={}",
            self.process,
            self.index,
            ms(self.complete_time)
        )
    }
}

impl Witness {
    pub(super) fn propose(op: &Op) -> Self {
        Witness::Propose(OpSeen::new(op))
    }

    pub(super) fn read(op: &Op) -> Self {
        Witness::Read(OpSeen::new(op))
    }

    /// When the witness learned the value: an op's completion, a report's arrival.
    pub(super) fn seen_time(&self) -> u64 {
        match self {
            Witness::Propose(o) | Witness::Read(o) => o.complete_time,
            Witness::Report { time, .. } => *time,
        }
    }

    /// The completing event's index, for a witness that is an op.
    pub(super) fn complete_index(&self) -> Option<u64> {
        match self {
            Witness::Propose(o) | Witness::Read(o) => Some(o.complete_index),
            Witness::Report { .. } => None,
        }
    }

    /// The earliest the value can have been decided for this witness to see it.
    fn start_time(&self) -> u64 {
        match self {
            Witness::Propose(o) | Witness::Read(o) => o.invoke_time,
            Witness::Report { time, .. } => *time,
        }
    }

    fn describe(&self) -> String {
        match self {
            Witness::Propose(o) => o.describe("propose"),
            Witness::Read(o) => o.describe("read"),
            Witness::Report { node, time } => {
                format!("decided report from {node}, t={}", ms(*time))
            }
        }
    }
}

/// A read invoked in the quiet window.
#[derive(Debug, Clone, Serialize)]
pub(super) struct FinalRead {
    /// Invoke index.
    pub(super) index: u64,
    /// How it ended.
    pub(super) outcome: Outcome,
    /// The value it returned (`ok` reads only).
    pub(super) value: Option<u64>,
}

impl FinalRead {
    fn describe(&self) -> String {
        match (self.outcome, self.value) {
            (Outcome::Ok, Some(v)) => format!("read {v} (op {})", self.index),
            (Outcome::Ok, None) => format!("read null (op {})", self.index),
            (Outcome::Fail, _) => format!("refused the read (fail, op {})", self.index),
            (Outcome::Info, _) => format!("gave no answer (info, op {})", self.index),
            (Outcome::Pending, _) => format!("gave no answer (pending, op {})", self.index),
        }
    }
}

/// "1 propose", "2 proposes".
pub(super) fn counted(n: usize, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{s}")
}

/// Nanoseconds as milliseconds, for reasons.
fn ms(ns: u64) -> String {
    format!("{}.{:03}ms", ns / 1_000_000, ns / 1_000 % 1_000)
}

/// The faults active in `[from, to]`: evidence fields and a clause for the reason.
fn faults(input: &CheckInput, from: u64, to: u64) -> (Value, usize, String) {
    let all = input.faults_during(from, to);
    let listed: Vec<_> = all.iter().take(FAULTS_MAX).collect();
    let names: Vec<&str> = all
        .iter()
        .take(FAULTS_IN_REASON_MAX)
        .map(|f| f.what.as_str())
        .collect();
    let more = all.len().saturating_sub(FAULTS_IN_REASON_MAX);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let clause = if names.is_empty() {
        "none".to_string()
    } else {
        format!("{}{more}", names.join(", "))
    };
    (json!(listed), all.len(), clause)
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub(super) fn agreement(input: &CheckInput, key: u64, inst: &Instance) -> Violation {
    let mut values: Vec<(&u64, &Vec<Witness>)> = inst.decided.iter().collect();
    // First seen first: the value everyone else should have agreed with leads.
    values.sort_by_key(|(v, seen)| (seen[0].seen_time(), **v));
    let from = values
        .iter()
        .map(|(_, s)| s[0].start_time())
        .min()
        .expect("two values");
    let to = values
        .iter()
        .map(|(_, s)| s[0].seen_time())
        .max()
        .expect("two values");
    let (fault_list, faults_total, fault_names) = faults(input, from, to);
    let clauses: Vec<String> = values
        .iter()
        .map(|(v, s)| format!("{v} ({})", s[0].describe()))
        .collect();
    let reason = format!(
        "agreement violated: instance {key} has {} decided values: {}; faults active then: {fault_names}",
        values.len(),
        and_list(&clauses)
    );
    let values: Vec<Value> = values
        .iter()
        .map(|(v, s)| json!({"value": v, "witnesses": s.len(), "seen": &s[..s.len().min(WITNESSES_MAX)]}))
        .collect();
    let evidence = json!({
        "property": "agreement",
        "key": key,
        "values": values,
        "faults": fault_list,
        "faults_total": faults_total,
    });
    Violation { reason, evidence }
}

pub(super) fn validity(
    input: &CheckInput,
    key: u64,
    inst: &Instance,
    value: u64,
    seen: &[Witness],
    value_keys: &BTreeMap<u64, BTreeSet<u64>>,
) -> Violation {
    let first = &seen[0];
    let (fault_list, faults_total, fault_names) =
        faults(input, first.start_time(), first.seen_time());
    let elsewhere: Vec<u64> = value_keys
        .get(&value)
        .map(|ks| ks.iter().copied().collect())
        .unwrap_or_default();
    let whose = match elsewhere.as_slice() {
        [] => "nor for any other instance".to_string(),
        ks => {
            let ks: Vec<String> = ks.iter().map(u64::to_string).collect();
            format!("it was proposed for instance {}", and_list(&ks))
        }
    };
    let why = match inst.proposed.get(&value) {
        None => format!("which was never proposed for it ({whose})"),
        Some(ps) if ps.iter().all(|p| p.failed) => {
            "whose every propose failed with a definite error".to_string()
        }
        Some(ps) => {
            let first_propose = ps.iter().map(|p| p.invoke_time).min().unwrap_or_default();
            format!(
                "seen before any propose of it that did not fail was invoked (first propose t={})",
                ms(first_propose)
            )
        }
    };
    let reason = format!(
        "validity violated: instance {key} decided {value} ({}), {why}; \
         faults active then: {fault_names}",
        first.describe()
    );
    let proposed: Vec<u64> = inst.proposed.keys().copied().take(PROPOSED_MAX).collect();
    let evidence = json!({
        "property": "validity",
        "key": key,
        "value": value,
        "witnesses": seen.len(),
        "seen": &seen[..seen.len().min(WITNESSES_MAX)],
        "proposed": proposed,
        "proposed_for": elsewhere,
        "faults": fault_list,
        "faults_total": faults_total,
    });
    Violation { reason, evidence }
}

pub(super) fn termination(
    input: &CheckInput,
    key: u64,
    inst: &Instance,
    failed: &[(&str, &[FinalRead])],
    quiet_from: u64,
) -> Violation {
    let first_propose = inst
        .first_propose_time
        .expect("an obliged instance was proposed to");
    let (fault_list, faults_total, fault_names) = faults(input, first_propose, quiet_from);
    // The value seen first, if any: whether the instance was decided at all matters.
    let decided = inst
        .decided
        .iter()
        .min_by_key(|(v, s)| (s[0].seen_time(), **v))
        .map(|(v, _)| *v);
    let fate = match decided {
        Some(v) => format!("decided {v} elsewhere"),
        None => "never decided".to_string(),
    };
    let nodes: Vec<String> = failed
        .iter()
        .map(|(node, reads)| {
            format!(
                "{node} {}",
                reads.last().expect("a node with reads").describe()
            )
        })
        .collect();
    let reason = format!(
        "no termination: instance {key} ({} from t={}, {fate}) is not readable on every live node \
         in the quiet window: {}; faults active while it was proposed: {fault_names}",
        counted(inst.proposes as usize, "propose"),
        ms(first_propose),
        and_list(&nodes)
    );
    let nodes: Vec<Value> = failed
        .iter()
        .map(|(node, reads)| json!({"node": node, "reads": reads}))
        .collect();
    let evidence = json!({
        "property": "termination",
        "key": key,
        "decided": decided,
        "proposes": inst.proposes,
        "first_propose_time": first_propose,
        "nodes": nodes,
        "faults": fault_list,
        "faults_total": faults_total,
    });
    Violation { reason, evidence }
}

pub(super) fn missing_final_reads(missing: &[(u64, &str)]) -> Violation {
    let (key, node) = missing[0];
    let more = match missing.len() - 1 {
        0 => String::new(),
        n => format!(" and {} more", counted(n, "instance-node pair")),
    };
    let reason = format!(
        "termination not judged: no final read of instance {key} on live node {node}{more}"
    );
    let listed: Vec<Value> = missing
        .iter()
        .take(MISSING_MAX)
        .map(|(key, node)| json!({"key": key, "node": node}))
        .collect();
    Violation {
        reason,
        evidence: json!({"property": "termination", "missing": listed, "missing_total": missing.len()}),
    }
}
