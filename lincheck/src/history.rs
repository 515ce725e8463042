//! Histories in a model-independent form: every op with its invoke time, its completion
//! time (or none: the op may take effect at any point after its invoke, or never) and
//! how it ended.
//!
//! Parsers build a [`History`]; models turn its [`Op`]s into their own compact form
//! (see [`crate::model`]). Times only order events: a line number is as good as a
//! nanosecond clock. Op `a` precedes op `b` in real time iff `a.ret < b.call`; equal
//! times count as concurrent.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A key or a value carried by an op.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// No value: `nil` / `null`, an unset register, a single-object history's key.
    Nil,
    /// An integer.
    Int(u64),
    /// A string (the kv corpus).
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// What an op asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Input {
    /// Read the object (`read`, `get`).
    Read,
    /// Overwrite the object (`write`, `put`).
    Write {
        /// The new value.
        value: Value,
    },
    /// Compare-and-set.
    Cas {
        /// The expected current value.
        from: Value,
        /// The new value.
        to: Value,
    },
    /// Append to a string object.
    Append {
        /// The suffix.
        value: Value,
    },
    /// Propose a value to a write-once register.
    Propose {
        /// The proposed value.
        value: Value,
    },
}

impl Input {
    /// The function name as histories spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Input::Read => "read",
            Input::Write { .. } => "write",
            Input::Cas { .. } => "cas",
            Input::Append { .. } => "append",
            Input::Propose { .. } => "propose",
        }
    }
}

/// How an op ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect; the value read or decided (`Nil` for ops that return nothing).
    Ok(Value),
    /// A compare-and-set that ran and found a value other than `from`: it changed
    /// nothing, and it is an observation (Jepsen etcd's `:fail :cas`).
    CompareFailed,
    /// It certainly did not take effect: dropped before the search.
    Fail,
    /// Unknown: it may take effect at any point after its invoke, or never.
    Info,
}

/// One op: an invoke paired with its completion.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// The client process.
    pub process: u64,
    /// The object the op is on; `Nil` in single-object histories.
    pub key: Value,
    /// What was asked.
    pub input: Input,
    /// How it ended.
    pub outcome: Outcome,
    /// Invoke time.
    pub call: u64,
    /// Completion time; `None` when the op never returned (`info`, or open at the end).
    /// An `info` op with a completion time may or may not have taken effect, but not
    /// after that time (see [`Op::relaxed_within`]).
    pub ret: Option<u64>,
}

impl Op {
    /// Whether the op must appear in a linearization (it returned, and not `fail`).
    pub fn is_required(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_) | Outcome::CompareFailed)
    }

    /// The same op made optional but kept within its interval: it took effect between
    /// its invoke and its completion, or never. A weakening too, and a cheaper one to
    /// search than [`Op::relaxed`].
    pub fn relaxed_within(&self) -> Op {
        Op {
            outcome: Outcome::Info,
            ..self.clone()
        }
    }

    /// The same op with its outcome forgotten: it may take effect at any point after
    /// its invoke, or never. Checking with relaxed ops is a weakening: every
    /// linearization of the original is one of the relaxed history.
    pub fn relaxed(&self) -> Op {
        Op {
            outcome: Outcome::Info,
            ret: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} {}", self.process, self.input.name())?;
        if self.key != Value::Nil {
            write!(f, "[{}]", self.key)?;
        }
        match &self.input {
            Input::Read => {}
            Input::Write { value } | Input::Append { value } | Input::Propose { value } => {
                write!(f, " {value}")?
            }
            Input::Cas { from, to } => write!(f, " {from}->{to}")?,
        }
        match &self.outcome {
            Outcome::Ok(v) => match self.input {
                Input::Read | Input::Propose { .. } => write!(f, " => {v}"),
                _ => write!(f, " ok"),
            },
            Outcome::CompareFailed => write!(f, " compare-failed"),
            Outcome::Fail => write!(f, " fail"),
            Outcome::Info => write!(f, " info"),
        }
    }
}

/// A whole history: ops in no particular order (the checker sorts by time).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The ops.
    pub ops: Vec<Op>,
}

impl History {
    /// Whether any op is a `propose` (a write-once history).
    pub fn has_propose(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op.input, Input::Propose { .. }))
    }
}

/// Pairs invokes with completions per process, for parsers of event logs.
///
/// A process has at most one op outstanding. Ops still open at the end never returned
/// and become `info`.
#[derive(Debug, Default)]
pub(crate) struct Pairing {
    open: std::collections::BTreeMap<u64, usize>,
    ops: Vec<Op>,
}

impl Pairing {
    /// Records an invoke at `time`; an error if `process` already has an op open.
    pub(crate) fn invoke(
        &mut self,
        process: u64,
        key: Value,
        input: Input,
        time: u64,
    ) -> Result<(), String> {
        if self.open.contains_key(&process) {
            return Err(format!("process {process} invoked while an op was open"));
        }
        self.open.insert(process, self.ops.len());
        self.ops.push(Op {
            process,
            key,
            input,
            outcome: Outcome::Info,
            call: time,
            ret: None,
        });
        Ok(())
    }

    /// The open op of `process`, if any.
    pub(crate) fn open_op(&self, process: u64) -> Option<&Op> {
        self.open.get(&process).map(|&i| &self.ops[i])
    }

    /// Completes the open op of `process` and returns its index. `Info` leaves it open
    /// forever. A completion timed before its invoke is an error.
    pub(crate) fn complete(
        &mut self,
        process: u64,
        outcome: Outcome,
        time: u64,
    ) -> Result<usize, String> {
        let Some(&i) = self.open.get(&process) else {
            return Err(format!(
                "process {process} completed an op it never invoked"
            ));
        };
        let op = &mut self.ops[i];
        if time < op.call {
            return Err(format!(
                "process {process} completed its {} at time {time}, before its invoke at {}",
                op.input.name(),
                op.call
            ));
        }
        self.open.remove(&process);
        op.ret = match outcome {
            Outcome::Info => None,
            _ => Some(time),
        };
        op.outcome = outcome;
        Ok(i)
    }

    /// Number of ops invoked so far (the next invoke's index).
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// The history; ops still open are `info`.
    pub(crate) fn finish(self) -> History {
        History { ops: self.ops }
    }
}
