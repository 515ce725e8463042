//! Verdicts and the checker interface.
//!
//! A checker is a pure function of what was recorded: it never reads a clock or the
//! network. A violated property is `Verdict::invalid(..)`, not an error; `unknown` says
//! honestly that the checker could not decide (budget, missing evidence).

use proto::Report;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::History;

/// The three outcomes of a check; the order is "how bad", worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// Every property held.
    Valid,
    /// The checker could not decide.
    Unknown,
    /// A property was violated.
    Invalid,
}

impl VerdictKind {
    /// The word summaries print: `VALID`, `UNKNOWN`, `INVALID`.
    pub fn word(self) -> &'static str {
        match self {
            VerdictKind::Valid => "VALID",
            VerdictKind::Unknown => "UNKNOWN",
            VerdictKind::Invalid => "INVALID",
        }
    }

    /// The process exit code for this verdict (Jepsen's convention).
    pub fn exit_code(self) -> u8 {
        match self {
            VerdictKind::Valid => 0,
            VerdictKind::Invalid => 1,
            VerdictKind::Unknown => 2,
        }
    }
}

/// One checker's judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Which checker.
    pub checker: String,
    /// The outcome.
    pub verdict: VerdictKind,
    /// One sentence: why.
    pub reason: String,
    /// Structured evidence (ops, values, nodes, times). An `invalid` verdict's evidence
    /// names the violated property in `"property"` (`agreement`, `durability`, ...), which
    /// `squall soak` groups failures by.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub evidence: Value,
}

impl Verdict {
    /// A valid verdict.
    pub fn valid(checker: &str, reason: impl Into<String>) -> Self {
        Verdict {
            checker: checker.into(),
            verdict: VerdictKind::Valid,
            reason: reason.into(),
            evidence: Value::Null,
        }
    }

    /// An invalid verdict with evidence.
    pub fn invalid(checker: &str, reason: impl Into<String>, evidence: Value) -> Self {
        Verdict {
            checker: checker.into(),
            verdict: VerdictKind::Invalid,
            reason: reason.into(),
            evidence,
        }
    }

    /// An unknown verdict.
    pub fn unknown(checker: &str, reason: impl Into<String>, evidence: Value) -> Self {
        Verdict {
            checker: checker.into(),
            verdict: VerdictKind::Unknown,
            reason: reason.into(),
            evidence,
        }
    }
}

/// The property a checker's entry in `verdict.json` names: its `evidence.property`
/// (`agreement`, `termination`, ...), else the checker's own name.
pub fn property_of(checker: &Value) -> String {
    checker["evidence"]["property"]
        .as_str()
        .or(checker["checker"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// A report a node sent to the harness, with when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedReport {
    /// Nanoseconds since the run started, when the report arrived.
    pub time: u64,
    /// Nanoseconds since the run started, when the node made the report, from its
    /// `mono_ns` stamp ([`proto::Stamped`]); absent in lockstep and for unstamped reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made: Option<u64>,
    /// The reporting node.
    pub node: String,
    /// What it said.
    pub report: Report,
}

impl TimedReport {
    /// When it happened as best known: the node's stamp, else the arrival.
    pub fn at(&self) -> u64 {
        self.made.unwrap_or(self.time)
    }
}

/// A fault interval, for explanations: what was active when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpan {
    /// Start (ns since run start).
    pub start: u64,
    /// End (ns), `None` if it lasted to the heal.
    pub end: Option<u64>,
    /// Human description (`isolate n1`, `kill n3`).
    pub what: String,
    /// The kind of fault (`partition`, `kill`, `pause`, `clog`, `link_faults`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The nodes a process fault or clog acts on (empty for network-wide faults).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

impl FaultSpan {
    /// Whether the span was on at any moment of `[from, to]`.
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.start <= to && self.end.is_none_or(|e| e >= from)
    }

    /// Whether it is a `kind` fault of `node` that was on at any moment of `[from, to]`.
    pub fn holds(&self, kind: &str, node: &str, from: u64, to: u64) -> bool {
        self.kind == kind && self.nodes.iter().any(|n| n == node) && self.overlaps(from, to)
    }

    /// Whether `node` was down (killed) at any moment of `[from, to]`.
    pub fn downs(&self, node: &str, from: u64, to: u64) -> bool {
        self.holds("kill", node, from, to)
    }
}

/// Everything a checker may look at.
#[derive(Debug, Clone, Default)]
pub struct CheckInput {
    /// The client history.
    pub history: History,
    /// Reports from nodes.
    pub reports: Vec<TimedReport>,
    /// Faults and when they were active.
    pub faults: Vec<FaultSpan>,
    /// Nanoseconds since start at which the quiet window began (all faults healed).
    pub quiet_from: Option<u64>,
    /// Nodes alive at the end of the run.
    pub live_nodes: Vec<String>,
}

impl CheckInput {
    /// Faults active at any point in `[from, to]`.
    pub fn faults_during(&self, from: u64, to: u64) -> Vec<&FaultSpan> {
        self.faults
            .iter()
            .filter(|f| f.overlaps(from, to))
            .collect()
    }
}

/// A property checker.
pub trait Checker: Send {
    /// Its name in verdicts.
    fn name(&self) -> &'static str;
    /// Judges the recorded run.
    fn check(&self, input: &CheckInput) -> Verdict;
}
