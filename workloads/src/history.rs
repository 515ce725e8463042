//! Histories: every client op as an `invoke` event followed by at most one completion.
//!
//! One event per line in `history.jsonl`:
//! `{"index":0,"process":3,"type":"invoke","f":"write","value":{"key":1,"value":5},"time":12}`.
//! `time` is monotonic nanoseconds since the run started. A process has at most one op in
//! flight; after an `info` (outcome unknown) it never invokes again (Jepsen's rule), so the
//! harness gives that client a fresh process id.
//!
//! Event values are [`Fields`], not `serde_json::Value`: a history is checked in memory,
//! and a long run's history must fit a small multiple of its size on disk.

mod fields;

pub use fields::Fields;

use std::io::BufRead;
use std::path::Path;

use proto::ops::{ClientOp, ClientReply};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a history event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The op was sent.
    Invoke,
    /// The op certainly took effect; `value` holds its result.
    Ok,
    /// The op certainly did not take effect.
    Fail,
    /// The outcome is unknown (timeout, indefinite error, crash).
    Info,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0.
    pub index: u64,
    /// The Jepsen process (logical single-threaded client).
    pub process: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub ty: EventType,
    /// The op's function: `echo`, `propose`, `read`, `write`, `cas`.
    pub f: String,
    /// Op arguments on invoke; arguments merged with the result on completion. Build it
    /// from a `Value` with `.into()`.
    pub value: Fields,
    /// Monotonic nanoseconds since the start of the run.
    pub time: u64,
    /// The node the op was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why a `fail` or `info` happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EventType {
    /// The word `history.jsonl` writes.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// Checkers hand events to lincheck as they are, not encoded again as JSON.
impl lincheck::parse::squall::EventView for &Event {
    fn process(&self) -> u64 {
        self.process
    }
    fn ty(&self) -> &str {
        self.ty.name()
    }
    fn f(&self) -> &str {
        &self.f
    }
    fn field(&self, name: &str) -> Option<&Value> {
        self.value.get(name)
    }
    fn time(&self) -> u64 {
        self.time
    }
}

/// The JSON object of an op's arguments: the op's body without its `type`.
pub fn op_value(op: &ClientOp) -> Value {
    let mut v = serde_json::to_value(op).expect("ops serialise");
    if let Value::Object(m) = &mut v {
        m.remove("type");
    }
    v
}

/// The completion value: the op's arguments overlaid with the reply's fields.
pub fn completion_value(op: &ClientOp, reply: &ClientReply) -> Value {
    let mut v = op_value(op);
    if let (Value::Object(m), Value::Object(r)) = (
        &mut v,
        serde_json::to_value(reply).expect("replies serialise"),
    ) {
        for (k, val) in r {
            if k != "type" {
                m.insert(k, val);
            }
        }
    }
    v
}

/// How an op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect.
    Ok,
    /// Did not take effect.
    Fail,
    /// Unknown.
    Info,
    /// Never completed (the history ended first): as unknown as `info`.
    Pending,
}

/// An invoke paired with its completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Op {
    /// The process.
    pub process: u64,
    /// The function.
    pub f: String,
    /// The invoke value.
    pub input: Fields,
    /// The completion value (`None` when pending).
    pub output: Option<Fields>,
    /// How it ended.
    pub outcome: Outcome,
    /// Invoke time (ns).
    pub invoke_time: u64,
    /// Completion time (ns), `None` when pending.
    pub complete_time: Option<u64>,
    /// The node it was sent to.
    pub node: Option<String>,
    /// Index of the invoke event.
    pub invoke_index: u64,
    /// Index of the completion event, `None` when pending. In a squall history file
    /// order is causal: a completion whose index is below another op's invoke index
    /// returned before that op was sent, whatever the timestamps say.
    pub complete_index: Option<u64>,
}

/// A whole history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Events in order.
    pub events: Vec<Event>,
}

/// A history file could not be read.
#[derive(Debug)]
pub struct HistoryError {
    /// Line number (1-based), 0 for IO errors.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for HistoryError {}

impl History {
    /// Reads `history.jsonl` line by line (the file is never held whole). A last line
    /// that does not parse (a crash mid-write tore it) is ignored.
    pub fn load(path: &Path) -> Result<History, HistoryError> {
        let io = |e: std::io::Error| HistoryError {
            line: 0,
            message: format!("{}: {e}", path.display()),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // Lines are rarely under this many bytes: room for every event without growing.
        const LINE_BYTES_MIN: u64 = 80;
        let guess = file.metadata().map_or(0, |m| m.len() / LINE_BYTES_MIN);
        let mut events = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
        let mut reader = std::io::BufReader::new(file);
        let mut line = String::new();
        let mut lineno = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(io)? == 0 {
                break;
            }
            lineno += 1;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Event>(&line) {
                Ok(e) => events.push(e),
                Err(_) if reader.fill_buf().map_err(io)?.is_empty() => break,
                Err(e) => {
                    return Err(HistoryError {
                        line: lineno,
                        message: e.to_string(),
                    })
                }
            }
        }
        events.shrink_to_fit();
        Ok(History { events })
    }

    /// Pairs invokes with completions, in invoke order.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = Vec::new();
        let mut open: std::collections::BTreeMap<u64, usize> = Default::default();
        for e in &self.events {
            match e.ty {
                EventType::Invoke => {
                    open.insert(e.process, ops.len());
                    ops.push(Op {
                        process: e.process,
                        f: e.f.clone(),
                        input: e.value.clone(),
                        output: None,
                        outcome: Outcome::Pending,
                        invoke_time: e.time,
                        complete_time: None,
                        node: e.node.clone(),
                        invoke_index: e.index,
                        complete_index: None,
                    });
                }
                ty => {
                    if let Some(i) = open.remove(&e.process) {
                        let op = &mut ops[i];
                        op.output = Some(e.value.clone());
                        op.complete_time = Some(e.time);
                        op.complete_index = Some(e.index);
                        op.outcome = match ty {
                            EventType::Ok => Outcome::Ok,
                            EventType::Fail => Outcome::Fail,
                            _ => Outcome::Info,
                        };
                    }
                }
            }
        }
        ops
    }

    /// Counts of ops by outcome: (ok, fail, info, pending), paired as [`History::ops`]
    /// pairs them, without building the ops.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut open = std::collections::BTreeSet::new();
        let (mut invokes, mut ok, mut fail, mut info) = (0, 0, 0, 0);
        for e in &self.events {
            match e.ty {
                EventType::Invoke => {
                    invokes += 1;
                    open.insert(e.process);
                }
                ty if open.remove(&e.process) => match ty {
                    EventType::Ok => ok += 1,
                    EventType::Fail => fail += 1,
                    _ => info += 1,
                },
                _ => {}
            }
        }
        (ok, fail, info, invokes - ok - fail - info)
    }
}

/// Events written by hand in unit tests.
#[cfg(test)]
impl Event {
    /// Event number `index` of `process`, at `time`, sent to no node, with no error.
    pub(crate) fn row(
        index: usize,
        process: u64,
        ty: EventType,
        f: &str,
        value: &Value,
        time: u64,
    ) -> Event {
        Event {
            index: index as u64,
            process,
            ty,
            f: f.to_string(),
            value: value.clone().into(),
            time,
            node: None,
            error: None,
        }
    }

    /// This event, sent to `node`.
    pub(crate) fn on(mut self, node: &str) -> Event {
        self.node = Some(node.to_string());
        self
    }
}

/// Histories written by hand in unit tests.
#[cfg(test)]
impl History {
    /// One event per row `(process, type, f, value, node)`, numbered in order, the
    /// time of each its index times 1 ms.
    pub(crate) fn script(rows: &[(u64, EventType, &str, Value, &str)]) -> History {
        let events = rows
            .iter()
            .enumerate()
            .map(|(i, (p, ty, f, v, node))| {
                Event::row(i, *p, *ty, f, v, i as u64 * 1_000_000).on(node)
            })
            .collect();
        History { events }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, process: u64, ty: EventType, value: Value) -> Event {
        Event {
            index,
            process,
            ty,
            f: "echo".into(),
            value: value.into(),
            time: index,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_by_process_and_keeps_pending() {
        let h = History {
            events: vec![
                ev(0, 0, EventType::Invoke, serde_json::json!({"echo":"a"})),
                ev(1, 1, EventType::Invoke, serde_json::json!({"echo":"b"})),
                ev(2, 0, EventType::Ok, serde_json::json!({"echo":"a"})),
                ev(3, 2, EventType::Invoke, serde_json::json!({"echo":"c"})),
                ev(4, 2, EventType::Info, serde_json::json!({"echo":"c"})),
            ],
        };
        let ops = h.ops();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].outcome, Outcome::Ok);
        assert_eq!(ops[1].outcome, Outcome::Pending);
        assert_eq!(ops[2].outcome, Outcome::Info);
        assert_eq!(h.counts(), (1, 0, 1, 1));
    }

    #[test]
    fn completion_merges_reply_into_args() {
        let op = ClientOp::Propose { key: 3, value: 9 };
        let reply = ClientReply::ProposeOk {
            value: 7,
            rounds: Some(2),
            ballot: None,
        };
        assert_eq!(op_value(&op), serde_json::json!({"key":3,"value":9}));
        assert_eq!(
            completion_value(&op, &reply),
            serde_json::json!({"key":3,"value":7,"rounds":2})
        );
    }
}
