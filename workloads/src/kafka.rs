//! `kafka`: Maelstrom's kafka-style log workload, with its bodies.
//!
//! Clients `send {key, msg}` (answered `send_ok {offset}`), `poll {offsets}` (answered
//! `poll_ok {msgs: {key: [[offset, msg], ...]}}`), `commit_offsets {offsets}` and
//! `list_committed_offsets {keys}` (answered `list_committed_offsets_ok {offsets}`).
//! Keys are `k0..`; every sent `msg` is unique. Offsets need not be consecutive, as in
//! Maelstrom, but each key's log is one order: an offset holds one message for ever.
//! After the heal every node is polled from offset 0 of every key until it returns
//! every acknowledged send (or the quiet window ends).
//!
//! The checker ([`KafkaChecker`]) is one pass over the history in file order (which is
//! causal: a completion is written before any op it could influence is invoked), with
//! per-key ordered maps, so O(n log n):
//!
//! - **duplicate offset**: two messages at one offset of a key (from `send_ok`s and
//!   polls), or one message at two offsets;
//! - **not increasing**: a poll whose offsets of a key do not strictly increase;
//! - **skip**: a poll that, between where it started or two offsets it returned, leaves
//!   out an offset known to hold a message before the poll was invoked (an acknowledged
//!   send or an earlier poll);
//! - **lost**: an acknowledged send no poll ever returned, though a poll invoked after
//!   its ack started at or before its offset and either returned a later offset or was
//!   a final poll;
//! - **backwards commit**: `list_committed_offsets` answering less than an offset
//!   committed (or listed) before it was invoked.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::{Event, EventType, Fields};
use crate::maelstrom::{body_op, NO_BUNDLED_NODE};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::{Workload, WorkloadOpts};

/// Keys when `--instances` is not given.
pub const KEYS_DEFAULT: u64 = 4;
/// Percent of ops that are sends; polls, commits and lists share the rest 2:1:1.
pub const SEND_PERCENT: u32 = 50;

/// The kafka op generator.
#[derive(Debug, Clone)]
pub struct KafkaWorkload {
    keys: u64,
    next: u64,
    /// Per key, the highest offset acknowledged by a `send_ok`.
    acked: BTreeMap<String, u64>,
    /// Per key, the highest offset any poll returned (what clients would commit).
    polled: BTreeMap<String, u64>,
}

fn key_name(k: u64) -> String {
    format!("k{k}")
}

impl KafkaWorkload {
    /// A generator over `opts.instances` keys (zero is taken as one).
    pub fn new(opts: &WorkloadOpts) -> Self {
        KafkaWorkload {
            keys: opts.instances.max(1),
            next: 0,
            acked: BTreeMap::new(),
            polled: BTreeMap::new(),
        }
    }
}

impl Workload for KafkaWorkload {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        let key = key_name(rng.gen_range(0..self.keys));
        let roll = rng.gen_range(0..100);
        let rest = (100 - SEND_PERCENT) / 4;
        if roll < SEND_PERCENT {
            self.next += 1;
            return send_op(&key, self.next);
        }
        if roll < SEND_PERCENT + 2 * rest {
            // From the start, or a little before the newest acknowledged offset.
            let top = self.acked.get(&key).copied().unwrap_or(0);
            let from = if rng.gen_bool(0.3) {
                0
            } else {
                top.saturating_sub(rng.gen_range(0..4))
            };
            return poll_op(&BTreeMap::from([(key, from)]));
        }
        if roll < SEND_PERCENT + 3 * rest {
            let at = self.polled.get(&key).copied().unwrap_or(0);
            return body_op("commit_offsets", json!({"offsets": {key: at}}), &[]);
        }
        body_op(
            "list_committed_offsets",
            json!({ "keys": [key] }),
            &["offsets"],
        )
    }

    fn observe(&mut self, op: &ClientOp, reply: &ClientReply) {
        let (ClientOp::Body(b), ClientReply::Body(r)) = (op, reply) else {
            return;
        };
        let reply = Value::Object(r.clone());
        let raise = |top: &mut BTreeMap<String, u64>, key: &str, offset: u64| {
            let t = top.entry(key.to_string()).or_insert(offset);
            *t = (*t).max(offset);
        };
        match b.f {
            "send" => {
                let key = b.fields.get("key").and_then(Value::as_str);
                if let (Some(key), Some(o)) = (key, reply.get("offset").and_then(Value::as_u64)) {
                    raise(&mut self.acked, key, o);
                }
            }
            "poll" => {
                for (key, pairs) in msgs_of(reply.get("msgs")) {
                    if let Some(&(o, _)) = pairs.iter().max() {
                        raise(&mut self.polled, &key, o);
                    }
                }
            }
            _ => {}
        }
    }

    /// A poll of every key from offset 0.
    fn final_ops(&self) -> Vec<ClientOp> {
        let all: BTreeMap<String, u64> = (0..self.keys).map(|k| (key_name(k), 0)).collect();
        vec![poll_op(&all)]
    }

    /// A final poll settles once it reaches every key's highest acknowledged offset.
    fn final_settled(&self, op: &ClientOp, reply: &ClientReply) -> bool {
        match (op, reply) {
            (ClientOp::Body(b), ClientReply::Body(r)) if b.f == "poll" => {
                let msgs = msgs_of(r.get("msgs"));
                self.acked.iter().all(|(key, top)| {
                    msgs.get(key)
                        .is_some_and(|pairs| pairs.iter().any(|(o, _)| o >= top))
                })
            }
            _ => true,
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(KafkaChecker)]
    }

    fn default_algorithm(&self) -> &'static str {
        NO_BUNDLED_NODE
    }

    fn instances_default(&self) -> Option<u64> {
        Some(KEYS_DEFAULT)
    }
}

/// `send {key, msg}`, answered by `send_ok {offset}`.
pub fn send_op(key: &str, msg: u64) -> ClientOp {
    body_op("send", json!({"key": key, "msg": msg}), &["offset"])
}

/// `poll {offsets}`, answered by `poll_ok {msgs}`.
pub fn poll_op(offsets: &BTreeMap<String, u64>) -> ClientOp {
    body_op("poll", json!({ "offsets": offsets }), &["msgs"])
}

/// Violations named in a verdict, per property.
pub const NAMED_MAX: usize = 10;

/// `(key -> offset)` of an op's `offsets` object.
fn offsets_of(offsets: Option<&Value>) -> BTreeMap<String, u64> {
    offsets
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, o)| Some((k.clone(), o.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `(key -> [(offset, msg)])` of a `poll_ok`.
fn msgs_of(msgs: Option<&Value>) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut out = BTreeMap::new();
    let Some(m) = msgs.and_then(Value::as_object) else {
        return out;
    };
    for (k, pairs) in m {
        let pairs = pairs
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(k.clone(), pairs);
    }
    out
}

/// What one pass over a kafka history found.
#[derive(Default)]
struct Log {
    /// (key, offset) -> (msg, index of the event that first showed it).
    at: HashMap<(String, u64), (u64, u64)>,
    /// Per key, offsets known to hold a message -> the event index that first showed it.
    known: BTreeMap<String, BTreeMap<u64, u64>>,
    /// (key, offset, msg) some poll returned.
    polled: std::collections::HashSet<(String, u64, u64)>,
    /// msg -> (key, offset) where first seen.
    home: HashMap<u64, (String, u64)>,
    /// Acknowledged sends: (key, offset, msg, index of the send_ok).
    acked: Vec<(String, u64, u64, u64)>,
    /// Per key, the highest committed or listed offset so far.
    floor: BTreeMap<String, u64>,
    /// Per process: the floors when its list was invoked.
    list_floor: HashMap<u64, BTreeMap<String, u64>>,
    /// Per process: the invoke of its op in flight (`f`, value, index, time).
    invoked: HashMap<u64, (String, Fields, u64, u64)>,
    /// Per key, what each ok poll read over.
    covers: BTreeMap<String, Vec<Cover>>,
    violations: BTreeMap<&'static str, Vec<Value>>,
    /// Violations found per property (all, not only those named).
    counts: BTreeMap<&'static str, u64>,
}

/// What one ok poll of one key read over.
struct Cover {
    /// The offset it started at.
    from: u64,
    /// The highest offset it returned.
    top: Option<u64>,
    /// The index of its invoke.
    invoked: u64,
    /// A final poll (invoked in the quiet window).
    last: bool,
}

impl Cover {
    /// Whether this poll should have returned `offset`, acknowledged at event `done`:
    /// it began after the ack, started at or before the offset, and returned a later
    /// one or was a final poll.
    fn over(&self, offset: u64, done: u64) -> bool {
        self.invoked > done
            && self.from <= offset
            && (self.last || self.top.is_some_and(|t| t > offset))
    }
}

/// The properties in the order a verdict's reason names them: the worst first.
const PROPERTIES: &[&str] = &[
    "duplicate-offset",
    "lost",
    "skip",
    "not-increasing",
    "backwards-commit",
];

impl Log {
    fn violation(&mut self, property: &'static str, what: Value) {
        *self.counts.entry(property).or_insert(0) += 1;
        let list = self.violations.entry(property).or_default();
        if list.len() < NAMED_MAX {
            list.push(what);
        }
    }

    /// `msg` at `(key, offset)`, shown by event `index`.
    fn place(&mut self, key: &str, offset: u64, msg: u64, index: u64) {
        match self.at.get(&(key.to_string(), offset)) {
            Some(&(other, _)) if other != msg => self.violation(
                "duplicate-offset",
                json!({"key": key, "offset": offset, "msgs": [other, msg], "event": index}),
            ),
            Some(_) => {}
            None => {
                self.at.insert((key.to_string(), offset), (msg, index));
                self.known
                    .entry(key.to_string())
                    .or_default()
                    .insert(offset, index);
            }
        }
        match self.home.get(&msg) {
            Some((k, o)) if (k.as_str(), *o) != (key, offset) => {
                let first = json!({"key": k, "offset": o});
                self.violation(
                    "duplicate-offset",
                    json!({"msg": msg, "at": [first, {"key": key, "offset": offset}], "event": index}),
                );
            }
            Some(_) => {}
            None => {
                self.home.insert(msg, (key.to_string(), offset));
            }
        }
    }

    /// A poll of `key` from `from` that returned `pairs` (invoked at `invoked`).
    fn poll(&mut self, key: &str, from: u64, pairs: &[(u64, u64)], invoked: u64, index: u64) {
        let mut prev: Option<u64> = None;
        for &(offset, _) in pairs {
            if prev.is_some_and(|p| p >= offset) {
                self.violation(
                    "not-increasing",
                    json!({"key": key, "offsets": pairs.iter().map(|p| p.0).take(50).collect::<Vec<_>>(), "event": index}),
                );
                break;
            }
            // Offsets in (prev, offset), or [from, offset) for the first, known before
            // the poll began: skipped.
            let lo = prev.map_or(from, |p| p + 1);
            let skipped = self.known.get(key).and_then(|k| {
                k.range(lo..offset)
                    .find(|(_, &seen)| seen < invoked)
                    .map(|(o, _)| *o)
            });
            if let Some(o) = skipped {
                let msg_there = self.at.get(&(key.to_string(), o)).map(|x| x.0);
                self.violation(
                    "skip",
                    json!({"key": key, "from": from, "skipped_offset": o, "skipped_msg": msg_there, "next_returned": offset, "event": index}),
                );
            }
            prev = Some(offset);
        }
        for &(offset, msg) in pairs {
            self.place(key, offset, msg, index);
            self.polled.insert((key.to_string(), offset, msg));
        }
    }
}

/// No lost acknowledged send, no shared offset, no skip, no backwards commit.
pub struct KafkaChecker;

impl Checker for KafkaChecker {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let mut log = Log::default();
        let quiet = input.quiet_from;
        let mut ok_ops = 0u64;
        for e in &input.history.events {
            walk(&mut log, e, quiet, &mut ok_ops);
        }
        // Lost: an acknowledged send no poll returned, though one read over it.
        let mut unconfirmed = 0usize;
        let covers = std::mem::take(&mut log.covers);
        let acked = std::mem::take(&mut log.acked);
        for (key, offset, msg, done) in &acked {
            if log.polled.contains(&(key.clone(), *offset, *msg)) {
                continue;
            }
            let covered = covers
                .get(key)
                .is_some_and(|cs| cs.iter().any(|c| c.over(*offset, *done)));
            if covered {
                log.violation(
                    "lost",
                    json!({"key": key, "offset": offset, "msg": msg, "send_ok_event": done}),
                );
            } else {
                unconfirmed += 1;
            }
        }
        let first = PROPERTIES
            .iter()
            .find_map(|p| Some((*p, log.violations.get(p)?.first()?.clone())));
        if let Some((property, example)) = first {
            return Verdict::invalid(
                self.name(),
                format!(
                    "{property}: {example}; violations by kind: {}",
                    serde_json::to_string(&log.counts).unwrap_or_default()
                ),
                json!({"property": property, "violations": log.violations, "counts": log.counts, "acknowledged_sends": acked.len()}),
            );
        }
        if ok_ops == 0 {
            return Verdict::unknown(self.name(), "no op completed, nothing to judge", json!({}));
        }
        if unconfirmed > 0 {
            return Verdict::unknown(
                self.name(),
                format!("{unconfirmed} of {} acknowledged sends were never polled past (no final poll reached them)", acked.len()),
                json!({"unconfirmed": unconfirmed, "acknowledged_sends": acked.len()}),
            );
        }
        Verdict::valid(
            self.name(),
            format!(
                "{} acknowledged sends all polled at one offset each, no skip, commits never backwards",
                acked.len()
            ),
        )
    }
}

/// One event of the pass.
fn walk(log: &mut Log, e: &Event, quiet: Option<u64>, ok_ops: &mut u64) {
    if e.ty == EventType::Invoke {
        if e.f == "list_committed_offsets" {
            log.list_floor.insert(e.process, log.floor.clone());
        }
        log.invoked
            .insert(e.process, (e.f.clone(), e.value.clone(), e.index, e.time));
        return;
    }
    let Some((f, input, invoked, invoke_time)) = log.invoked.remove(&e.process) else {
        return;
    };
    let floor_then = log.list_floor.remove(&e.process);
    if e.ty != EventType::Ok {
        return;
    }
    *ok_ops += 1;
    match f.as_str() {
        "send" => {
            let key = input.get("key").and_then(Value::as_str).unwrap_or("");
            let msg = input.get("msg").and_then(Value::as_u64);
            let offset = e.value.get("offset").and_then(Value::as_u64);
            if let (Some(msg), Some(offset)) = (msg, offset) {
                log.place(key, offset, msg, e.index);
                log.acked.push((key.to_string(), offset, msg, e.index));
            }
        }
        "poll" => {
            // A final poll: invoked in the quiet window.
            let fin = quiet.is_some_and(|q| invoke_time >= q);
            let from = offsets_of(input.get("offsets"));
            let got = msgs_of(e.value.get("msgs"));
            for (key, start) in &from {
                let pairs = got.get(key).map(Vec::as_slice).unwrap_or(&[]);
                log.poll(key, *start, pairs, invoked, e.index);
                let top = pairs.iter().map(|p| p.0).max();
                log.covers.entry(key.clone()).or_default().push(Cover {
                    from: *start,
                    top,
                    invoked,
                    last: fin,
                });
            }
        }
        "commit_offsets" => {
            for (key, o) in offsets_of(input.get("offsets")) {
                let fl = log.floor.entry(key).or_insert(o);
                *fl = (*fl).max(o);
            }
        }
        "list_committed_offsets" => {
            let listed = offsets_of(e.value.get("offsets"));
            let keys: BTreeSet<String> = input
                .get("keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for (key, before) in floor_then.unwrap_or_default() {
                if !keys.contains(&key) {
                    continue;
                }
                let now = listed.get(&key).copied();
                if now.is_none_or(|n| n < before) {
                    log.violation(
                        "backwards-commit",
                        json!({"key": key, "committed_before": before, "listed": now, "event": e.index}),
                    );
                }
            }
            for (key, o) in listed {
                let fl = log.floor.entry(key).or_insert(o);
                *fl = (*fl).max(o);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
