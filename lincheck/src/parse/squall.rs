//! squall's `history.jsonl`: one JSON event per line,
//!
//! ```text
//! {"index":0,"process":3,"type":"invoke","f":"write","value":{"key":1,"value":5},"time":123456789}
//! {"index":7,"process":3,"type":"ok","f":"write","value":{"key":1,"value":5},"time":123999999}
//! ```
//!
//! `type` is `invoke`, then `ok` (took effect), `fail` (did not) or `info` (unknown; the
//! process is never used again). `time` is monotonic nanoseconds; a completion timed
//! before its invoke is an error. Values by `f`:
//! `read` `{key}` then `{key, value: v|null}`; `write` `{key, value}`; `cas`
//! `{key, from, to}`; `propose` `{key, value}` then `{key, value: decided}`. Unknown
//! fields are ignored; other functions are an error naming them.
//!
//! File order is causal: squall writes an event after the events that caused it, and
//! lockstep runs stamp events in virtual microseconds, where a completion and the next
//! invoke (even of the same process) can share an instant. Events are therefore ordered
//! by (time, position in the file), and an op's times are the ranks of its events in
//! that order: an op whose completion line comes before another's invoke line at the
//! same time precedes it. When no two events share a time the times are kept as they
//! are (the order is the same).
//!
//! Write-once reads ([`write_once`]): in squall's write-once workload a `read` is
//! *local*: null means "this node has not learned the decision", not "undecided", so
//! local reads that returned null are left out. A read invoked with
//! `"quorum": true` is a linearizable read, and a null answer from it is judged.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::history::{Input, Op, Outcome, Pairing, Value};
use crate::parse::ParseError;
use crate::History;

/// The functions this parser understands.
const CHECKABLE: &str = "read, write, cas, propose";

#[derive(Deserialize)]
struct Line {
    process: u64,
    #[serde(rename = "type")]
    ty: String,
    f: String,
    #[serde(default)]
    value: Json,
    time: u64,
}

/// One `history.jsonl` event as its holder has it: a parsed line, or a checker's own
/// event type, read in place rather than encoded again as JSON.
pub trait EventView {
    /// The Jepsen process.
    fn process(&self) -> u64;
    /// `invoke`, `ok`, `fail` or `info`.
    fn ty(&self) -> &str;
    /// The op's function.
    fn f(&self) -> &str;
    /// A field of the event's `value` object.
    fn field(&self, name: &str) -> Option<&Json>;
    /// Monotonic nanoseconds.
    fn time(&self) -> u64;
}

impl EventView for Line {
    fn process(&self) -> u64 {
        self.process
    }
    fn ty(&self) -> &str {
        &self.ty
    }
    fn f(&self) -> &str {
        &self.f
    }
    fn field(&self, name: &str) -> Option<&Json> {
        self.value.get(name)
    }
    fn time(&self) -> u64 {
        self.time
    }
}

/// Parses a whole file.
pub fn parse(text: &str) -> Result<History, ParseError> {
    Ok(read_text(text)?.finish().0)
}

/// Reads events already in memory, each a `history.jsonl` line as a JSON value (what a
/// checker inside the harness has); error positions count events from 1.
pub fn from_values(events: impl IntoIterator<Item = Json>) -> Result<History, ParseError> {
    Ok(read_values(events)?.finish().0)
}

/// [`from_values`] for events a checker holds in its own type; error positions count
/// events from 1.
pub fn from_events<E: EventView>(
    events: impl IntoIterator<Item = E>,
) -> Result<History, ParseError> {
    Ok(read_events(events)?.finish().0)
}

/// A squall write-once history prepared for the `write-once` model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOnceHistory {
    /// The ops to judge.
    pub history: History,
    /// Local reads that returned null, left out.
    pub local_null_reads: usize,
}

/// Parses a file of squall's write-once workload by its rule for reads (see the
/// module docs): local reads that returned null are left out, quorum reads are judged.
/// `squall check` and the run's own linearizability checker both use this.
pub fn write_once(text: &str) -> Result<WriteOnceHistory, ParseError> {
    Ok(read_text(text)?.write_once())
}

/// [`write_once`] for events already in memory (see [`from_values`]).
pub fn write_once_from_values(
    events: impl IntoIterator<Item = Json>,
) -> Result<WriteOnceHistory, ParseError> {
    Ok(read_values(events)?.write_once())
}

/// [`write_once`] for events a checker holds in its own type (see [`from_events`]).
pub fn write_once_from_events<E: EventView>(
    events: impl IntoIterator<Item = E>,
) -> Result<WriteOnceHistory, ParseError> {
    Ok(read_events(events)?.write_once())
}

fn read_text(text: &str) -> Result<Reader, ParseError> {
    let mut reader = Reader::default();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(raw).map_err(|e| ParseError::new(n + 1, e.to_string()))?;
        reader.feed(n + 1, &line)?;
    }
    Ok(reader)
}

fn read_events<E: EventView>(events: impl IntoIterator<Item = E>) -> Result<Reader, ParseError> {
    let mut reader = Reader::default();
    for (n, event) in events.into_iter().enumerate() {
        reader.feed(n + 1, &event)?;
    }
    Ok(reader)
}

fn read_values(events: impl IntoIterator<Item = Json>) -> Result<Reader, ParseError> {
    let mut reader = Reader::default();
    for (n, event) in events.into_iter().enumerate() {
        let line: Line =
            serde_json::from_value(event).map_err(|e| ParseError::new(n + 1, e.to_string()))?;
        reader.feed(n + 1, &line)?;
    }
    Ok(reader)
}

/// Pairs events in file order, which is causal, and remembers each event's time and
/// position so that times can be ranked by (time, position).
#[derive(Default)]
struct Reader {
    pairing: Pairing,
    /// (time, position, op, is completion).
    events: Vec<(u64, usize, usize, bool)>,
    /// Per op: a read invoked with `"quorum": true`.
    quorum: Vec<bool>,
}

impl Reader {
    /// Pairs one event (line `lineno`) with the op it opens or completes.
    fn feed(&mut self, lineno: usize, line: &impl EventView) -> Result<(), ParseError> {
        let err = |m: String| ParseError::new(lineno, m);
        let f = line.f();
        if !matches!(f, "read" | "write" | "cas" | "propose") {
            return Err(err(format!(
                "op f `{f}` is not checkable by these models (checkable: {CHECKABLE})"
            )));
        }
        let field = |name: &str| -> Result<Value, ParseError> {
            match line.field(name) {
                Some(Json::Null) | None => Ok(Value::Nil),
                Some(v) => v.as_u64().map(Value::Int).ok_or_else(|| {
                    err(format!(
                        "`{name}` of {f} must be an unsigned integer or null"
                    ))
                }),
            }
        };
        let required = |name: &str| -> Result<Value, ParseError> {
            match field(name)? {
                Value::Nil => Err(err(format!("{} needs `{name}`", f))),
                v => Ok(v),
            }
        };
        match line.ty() {
            "invoke" => {
                let key = required("key")?;
                let input = match f {
                    "read" => Input::Read,
                    "write" => Input::Write {
                        value: required("value")?,
                    },
                    "cas" => Input::Cas {
                        from: required("from")?,
                        to: required("to")?,
                    },
                    _ => Input::Propose {
                        value: required("value")?,
                    },
                };
                let quorum = input == Input::Read
                    && line.field("quorum").and_then(Json::as_bool) == Some(true);
                let op = self.pairing.len();
                self.pairing
                    .invoke(line.process(), key, input, line.time())
                    .map_err(err)?;
                self.quorum.push(quorum);
                self.events.push((line.time(), lineno, op, false));
            }
            "ok" | "fail" | "info" => {
                let Some(open) = self.pairing.open_op(line.process()) else {
                    return Err(err(format!(
                        "process {} completed an op it never invoked",
                        line.process()
                    )));
                };
                if open.input.name() != f {
                    return Err(err(format!(
                        "completion f `{f}` does not match the invoke's `{}`",
                        open.input.name()
                    )));
                }
                let outcome = match (line.ty(), f) {
                    ("ok", "read") => Outcome::Ok(field("value")?),
                    ("ok", "propose") => Outcome::Ok(required("value")?),
                    ("ok", _) => Outcome::Ok(Value::Nil),
                    ("fail", _) => Outcome::Fail,
                    _ => Outcome::Info,
                };
                let op = self
                    .pairing
                    .complete(line.process(), outcome, line.time())
                    .map_err(err)?;
                self.events.push((line.time(), lineno, op, true));
            }
            other => return Err(err(format!("unknown type `{other}`"))),
        }
        Ok(())
    }

    /// The history, times replaced by ranks in (time, position) order, and the
    /// per-op quorum flags.
    fn finish(mut self) -> (History, Vec<bool>) {
        let mut history = self.pairing.finish();
        self.events.sort_unstable();
        if self.events.windows(2).all(|w| w[0].0 < w[1].0) {
            // Distinct times order the events alone: keep them.
            return (history, self.quorum);
        }
        for (rank, &(_, _, op, completion)) in self.events.iter().enumerate() {
            let op = &mut history.ops[op];
            if !completion {
                op.call = rank as u64;
            } else if op.ret.is_some() {
                op.ret = Some(rank as u64);
            }
        }
        (history, self.quorum)
    }

    fn write_once(self) -> WriteOnceHistory {
        let (history, quorum) = self.finish();
        let before = history.ops.len();
        let ops: Vec<Op> = history
            .ops
            .into_iter()
            .zip(quorum)
            .filter(|(op, quorum)| {
                *quorum || !(op.input == Input::Read && op.outcome == Outcome::Ok(Value::Nil))
            })
            .map(|(op, _)| op)
            .collect();
        WriteOnceHistory {
            local_null_reads: before - ops.len(),
            history: History { ops },
        }
    }
}

/// Renders `history` as `history.jsonl`, events ordered by time. `info` ops without a
/// time are reported at their invoke; `CompareFailed` is written as `fail`.
pub fn write(history: &History) -> String {
    // Sort key (time, rank): at equal times completions come before invokes, so a
    // process may invoke at the instant its previous op returned; a completion at its
    // own op's invoke time (an `info` without a time, a zero-length op) comes after.
    const COMPLETE: u8 = 0;
    const INVOKE: u8 = 1;
    const COMPLETE_LATE: u8 = 2;
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * history.ops.len());
    for (i, op) in history.ops.iter().enumerate() {
        events.push((op.call, INVOKE, i));
        let end = match op.ret {
            Some(t) => t.max(op.call),
            None if op.outcome == Outcome::Info => op.call,
            None => continue,
        };
        let rank = if end == op.call {
            COMPLETE_LATE
        } else {
            COMPLETE
        };
        events.push((end, rank, i));
    }
    events.sort_unstable();
    let mut out = String::new();
    for (index, &(time, phase, i)) in events.iter().enumerate() {
        let op = &history.ops[i];
        let mut value = serde_json::Map::new();
        value.insert("key".into(), json(&op.key));
        if phase == INVOKE {
            match &op.input {
                Input::Read => {}
                Input::Write { value: v }
                | Input::Append { value: v }
                | Input::Propose { value: v } => {
                    value.insert("value".into(), json(v));
                }
                Input::Cas { from, to } => {
                    value.insert("from".into(), json(from));
                    value.insert("to".into(), json(to));
                }
            }
        } else if let Outcome::Ok(v) = &op.outcome {
            if matches!(op.input, Input::Read | Input::Propose { .. }) {
                value.insert("value".into(), json(v));
            }
        }
        let ty = match (phase, &op.outcome) {
            (INVOKE, _) => "invoke",
            (_, Outcome::Ok(_)) => "ok",
            (_, Outcome::Fail | Outcome::CompareFailed) => "fail",
            (_, Outcome::Info) => "info",
        };
        let line = serde_json::json!({
            "index": index,
            "process": op.process,
            "type": ty,
            "f": op.input.name(),
            "value": value,
            "time": time,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

fn json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Int(i) => Json::from(*i),
        Value::Str(s) => Json::from(s.as_str()),
    }
}
