//! Why a history is not linearizable (or how far an unfinished check got), as
//! serialisable structs with a human rendering.
//!
//! For each failing partition: the longest linearizable prefix the search reached (its
//! deepest linearized set, in linearization order), the model state after it, and the op
//! that cannot be linearized there (the pending required op that returns first). For
//! one failing partition, a minimal failing window ([`Window`], made by `explain/shrink.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{History, Value};

pub(crate) mod shrink;

/// An op of the history, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRef {
    /// Index in [`History::ops`].
    pub index: usize,
    /// The op, rendered (`p3 write[1] 5 ok`).
    pub op: String,
    /// Invoke time.
    pub call: u64,
    /// Completion time; `None` if it never returned.
    pub ret: Option<u64>,
}

impl OpRef {
    pub(crate) fn new(history: &History, index: usize) -> Self {
        let op = &history.ops[index];
        OpRef {
            index,
            op: op.to_string(),
            call: op.call,
            ret: op.ret,
        }
    }
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ret {
            Some(ret) => write!(f, "{}  [{}, {}]", self.op, self.call, ret),
            None => write!(f, "{}  [{}, never]", self.op, self.call),
        }
    }
}

/// One partition (key) that has no linearization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionFailure {
    /// The key (`nil` for single-object models).
    pub key: Value,
    /// Ops of the partition the search considered (after dropping `fail` ops).
    pub ops: usize,
    /// The longest linearizable prefix reached, in linearization order.
    pub linearized: Vec<OpRef>,
    /// The model state after it.
    pub state: String,
    /// The op that cannot be linearized after it.
    pub stuck: Option<OpRef>,
}

/// A small sub-history that is still not linearizable.
///
/// The `ops` keep their outcomes and times. Every other op of the partition is
/// *relaxed*: one that returned by `truncated_at` may have taken effect within its
/// interval or never ([`crate::Op::relaxed_within`]), and is dropped if it cannot change
/// the state; one still pending then may take effect at any later time or never; ops
/// invoked later are dropped. Relaxing only adds linearizations, so the window is a certificate:
/// it is not linearizable, hence neither is the history. `minimal` means removing any
/// one op of the window makes it linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The partition.
    pub key: Value,
    /// The ops kept as recorded, by invoke time.
    pub ops: Vec<OpRef>,
    /// How many other ops were relaxed.
    pub relaxed: usize,
    /// Ops invoked after this time were dropped.
    pub truncated_at: u64,
    /// Whether the window is 1-minimal (false: the shrink budget ran out first).
    pub minimal: bool,
    /// Sub-histories checked while shrinking.
    pub tests: u64,
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// Every partition without a linearization, by key.
    pub partitions: Vec<PartitionFailure>,
    /// A minimal failing window of the first of them, when asked for.
    pub window: Option<Window>,
    /// Partitions left without a verdict: cancelled once one partition was found
    /// invalid, or out of budget. The verdict stands regardless.
    pub unknown_partitions: usize,
}

/// How far an unfinished check got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// Partitions found linearizable.
    pub partitions_valid: usize,
    /// Partitions left without a verdict.
    pub unknown: Vec<PartitionProgress>,
}

/// One partition left without a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProgress {
    /// The key.
    pub key: Value,
    /// Ops of the partition.
    pub ops: usize,
    /// Size of the longest linearizable prefix reached.
    pub longest_prefix: usize,
    /// States explored in this partition.
    pub states: u64,
}

/// How many ops of a long prefix the text shows.
const PREFIX_SHOWN_MAX: usize = 8;

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.partitions {
            let key = match &p.key {
                Value::Nil => String::new(),
                k => format!("key {k}: "),
            };
            match &p.stuck {
                Some(op) => writeln!(f, "{key}cannot linearize {op}")?,
                None => writeln!(f, "{key}no linearization")?,
            }
            writeln!(
                f,
                "  longest linearizable prefix: {} of {} ops, state {} after it",
                p.linearized.len(),
                p.ops,
                p.state
            )?;
            let skip = p.linearized.len().saturating_sub(PREFIX_SHOWN_MAX);
            if skip > 0 {
                writeln!(f, "    ... {skip} earlier ops")?;
            }
            for op in &p.linearized[skip..] {
                writeln!(f, "    {op}")?;
            }
        }
        if let Some(w) = &self.window {
            let key = match &w.key {
                Value::Nil => String::new(),
                k => format!("key {k}; "),
            };
            writeln!(
                f,
                "{} failing window: {} ops ({key}{} other ops relaxed, ops invoked after {} dropped; {} sub-histories checked)",
                if w.minimal { "minimal" } else { "smallest found" },
                w.ops.len(),
                w.relaxed,
                w.truncated_at,
                w.tests
            )?;
            for op in &w.ops {
                writeln!(f, "    {op}")?;
            }
        }
        if self.unknown_partitions > 0 {
            writeln!(
                f,
                "{} other partitions left without a verdict (one invalid partition settles it)",
                self.unknown_partitions
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} partitions linearizable, {} without a verdict",
            self.partitions_valid,
            self.unknown.len()
        )?;
        for p in &self.unknown {
            writeln!(
                f,
                "  key {}: {} of {} ops linearized at most, {} states",
                p.key, p.longest_prefix, p.ops, p.states
            )?;
        }
        Ok(())
    }
}
