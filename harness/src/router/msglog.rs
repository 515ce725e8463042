//! The message log: one compact record per copy of a node-to-node message, for the run
//! report's sequence diagram. Written at the end of a free-running run as
//! `messages.jsonl`.
//!
//! The router fills it under the state lock it already holds, so a record costs a
//! 64-byte push and, for a copy that waits (delay, hold), one later update by index.
//! Besides the `type`, the router reads a body's [`Salient`] fields in the same pass
//! ([`read_body`]): its `key` and a [`Label`] of at most [`LABEL_BYTES_MAX`] bytes kept
//! inline in the record (`(1,n3) 133` for an accept: ballot and value; see [`label`]).
//! The log is bounded: the first [`HEAD_MAX`] records are kept, then a ring of the
//! latest [`TAIL_MAX`]; what falls between is counted, not kept (`omitted` in the
//! summary). So it holds at most `(HEAD_MAX + TAIL_MAX) × 64` bytes, 12.8 MB. Client
//! and harness traffic is not logged. The file has a hard cap too: writing stops before
//! the line that would take it past `bytes_max` ([`BYTES_MAX_DEFAULT`], 32 MiB, or
//! `SQUALL_MESSAGE_LOG_BYTES_MAX`), and the records not written are counted
//! (`unwritten` in the summary, which `metrics.json` and the report show).
//!
//! One line per copy, in the order messages were sent:
//!
//! ```json
//! {"sent_us":708100,"src":"n1","dest":"n2","type":"accept","key":29,"label":"(1,n3) 133","fate":"delivered","at_us":708140}
//! ```
//!
//! `fate` is `delivered` (handed to the destination's connection at `at_us`), `cut` or
//! `drop` (the nemesis), `dest_down` or `overflow` (the router; `at_us` is when), `held`
//! (still held at the end) or `in_flight` (still delayed at the end). `key` is there
//! when the body has an unsigned-integer `key`, `label` when the body has fields to
//! show; `"dup": true` marks a duplicate copy.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod label;

pub use label::{read_body, Label, Salient, LABEL_BYTES_MAX};

/// Records kept from the start of the run.
pub const HEAD_MAX: usize = 100_000;
/// Records kept from the end of the run (a ring).
pub const TAIL_MAX: usize = 100_000;
/// Bytes `messages.jsonl` may take unless `SQUALL_MESSAGE_LOG_BYTES_MAX` says otherwise.
pub const BYTES_MAX_DEFAULT: u64 = 32 << 20;
/// The environment variable that overrides [`BYTES_MAX_DEFAULT`] (a number of bytes).
pub const BYTES_MAX_ENV: &str = "SQUALL_MESSAGE_LOG_BYTES_MAX";

/// The cap on `messages.jsonl`: [`BYTES_MAX_ENV`] when it is set to a number, else
/// [`BYTES_MAX_DEFAULT`].
pub fn bytes_max() -> anyhow::Result<u64> {
    match std::env::var(BYTES_MAX_ENV) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{BYTES_MAX_ENV}={v:?}: expected a number of bytes")),
        Err(_) => Ok(BYTES_MAX_DEFAULT),
    }
}

/// No key, no time, or no log record (a copy the log does not hold: its sequence
/// number is this, and [`MessageLog::settle`] ignores it).
pub const NONE: u64 = u64::MAX;

/// What became of one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fate {
    /// Delayed or reordered; not delivered when the log was taken.
    InFlight,
    /// Held by a partition or clog; not released when the log was taken.
    Held,
    /// Handed to the destination.
    Delivered,
    /// Dropped by a partition in `cut` mode.
    Cut,
    /// Dropped by a drop fault.
    Drop,
    /// The destination was not connected.
    DestDown,
    /// A bounded queue was full.
    Overflow,
}

impl Fate {
    /// The drop cause the router counts under `cause`.
    pub fn from_cause(cause: &str) -> Fate {
        match cause {
            "cut" => Fate::Cut,
            "drop" => Fate::Drop,
            "dest_down" => Fate::DestDown,
            _ => Fate::Overflow,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Fate::InFlight => "in_flight",
            Fate::Held => "held",
            Fate::Delivered => "delivered",
            Fate::Cut => "cut",
            Fate::Drop => "drop",
            Fate::DestDown => "dest_down",
            Fate::Overflow => "overflow",
        }
    }
}

/// One copy of one message: 64 bytes.
#[derive(Debug, Clone, Copy)]
struct Rec {
    sent_us: u64,
    /// Delivery or drop time; `NONE` while waiting.
    done_us: u64,
    key: u64,
    src: u16,
    dest: u16,
    ty: u16,
    fate: Fate,
    dup: bool,
    label: Label,
}

const _: () = assert!(std::mem::size_of::<Rec>() == 32 + LABEL_BYTES_MAX);
const _: () = assert!(std::mem::size_of::<Rec>() <= 64);

/// The log itself; lives in the router's state.
pub struct MessageLog {
    is_node: Vec<bool>,
    recs: Vec<Rec>,
    /// Records ever pushed; a record's sequence number is its index in that count.
    pushed: u64,
    head_max: usize,
    tail_max: usize,
    /// Send time of the first record the ring overwrote, and of the last.
    omitted_us: Option<(u64, u64)>,
    /// The cap on the file's bytes.
    bytes_max: u64,
}

impl MessageLog {
    /// A log of messages between the addresses flagged in `is_node` (by router index),
    /// written to at most `bytes_max` bytes.
    pub fn new(is_node: Vec<bool>, bytes_max: u64) -> MessageLog {
        MessageLog {
            bytes_max,
            ..MessageLog::with_bounds(is_node, HEAD_MAX, TAIL_MAX)
        }
    }

    fn with_bounds(is_node: Vec<bool>, head_max: usize, tail_max: usize) -> MessageLog {
        assert!(tail_max > 0, "the ring needs a slot");
        MessageLog {
            is_node,
            recs: Vec::new(),
            pushed: 0,
            head_max,
            tail_max,
            omitted_us: None,
            bytes_max: BYTES_MAX_DEFAULT,
        }
    }

    /// Whether messages on link `src -> dest` are logged.
    #[inline]
    pub fn wants(&self, src: usize, dest: usize) -> bool {
        self.is_node[src] && self.is_node[dest]
    }

    /// Logs a copy sent at `now_us`; returns its sequence number for [`Self::settle`].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        now_us: u64,
        src: usize,
        dest: usize,
        ty: u16,
        salient: Salient,
        fate: Fate,
        dup: bool,
    ) -> u64 {
        let done_us = match fate {
            Fate::InFlight | Fate::Held => NONE,
            _ => now_us,
        };
        let rec = Rec {
            sent_us: now_us,
            done_us,
            key: salient.key.unwrap_or(NONE),
            src: src as u16,
            dest: dest as u16,
            ty,
            fate,
            dup,
            label: salient.label,
        };
        let seq = self.pushed;
        self.pushed += 1;
        if self.recs.len() < self.head_max + self.tail_max {
            self.recs.push(rec);
        } else {
            let slot = self.slot(seq);
            let old = self.recs[slot].sent_us;
            self.omitted_us = Some(match self.omitted_us {
                None => (old, old),
                Some((first, _)) => (first, old),
            });
            self.recs[slot] = rec;
        }
        seq
    }

    /// Records what became of a waiting copy (delivered, or dropped) at `now_us`. A
    /// record the ring has overwritten is ignored.
    #[inline]
    pub fn settle(&mut self, seq: u64, fate: Fate, now_us: u64) {
        if seq >= self.pushed {
            return;
        }
        let kept_from = self.pushed.saturating_sub(self.tail_max as u64);
        if seq >= self.head_max as u64 && seq < kept_from {
            return;
        }
        let slot = self.slot(seq);
        let rec = &mut self.recs[slot];
        rec.fate = fate;
        rec.done_us = now_us;
    }

    fn slot(&self, seq: u64) -> usize {
        let head = self.head_max as u64;
        if seq < head {
            seq as usize
        } else {
            self.head_max + ((seq - head) % self.tail_max as u64) as usize
        }
    }

    /// Records in send order.
    fn in_order(&self) -> impl Iterator<Item = &Rec> {
        let head = self.head_max.min(self.recs.len());
        let tail = &self.recs[head..];
        // The oldest ring record sits right after the newest one.
        let split = if self.pushed as usize > self.recs.len() {
            ((self.pushed - self.head_max as u64) % self.tail_max as u64) as usize
        } else {
            0
        };
        self.recs[..head]
            .iter()
            .chain(tail[split..].iter())
            .chain(tail[..split].iter())
    }

    /// Writes `messages.jsonl`, whole lines up to the log's byte cap; `addrs` and
    /// `types` name the router's indices.
    pub fn write_jsonl(
        &self,
        path: &Path,
        addrs: &[String],
        types: &[String],
    ) -> anyhow::Result<LogSummary> {
        let bytes_max = self.bytes_max;
        let file = std::fs::File::create(path)?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        let mut bytes = 0u64;
        let mut unwritten = 0u64;
        let mut buf = Vec::with_capacity(512);
        for r in self.in_order() {
            if unwritten > 0 {
                unwritten += 1;
                continue;
            }
            let line = MessageLine {
                sent_us: r.sent_us,
                src: addrs[r.src as usize].clone(),
                dest: addrs[r.dest as usize].clone(),
                ty: types.get(r.ty as usize).cloned().unwrap_or_default(),
                key: (r.key != NONE).then_some(r.key),
                label: r.label.as_str().to_string(),
                fate: r.fate.as_str().to_string(),
                at_us: (r.done_us != NONE).then_some(r.done_us),
                dup: r.dup,
            };
            buf.clear();
            serde_json::to_writer(&mut buf, &line)?;
            buf.push(b'\n');
            if bytes + buf.len() as u64 > bytes_max {
                unwritten = 1;
                continue;
            }
            bytes += buf.len() as u64;
            out.write_all(&buf)?;
        }
        out.flush()?;
        out.get_ref().sync_data()?;
        Ok(LogSummary {
            bytes,
            bytes_max,
            unwritten,
            ..self.summary()
        })
    }

    /// What the log holds and what it left out.
    pub fn summary(&self) -> LogSummary {
        let recorded = self.recs.len() as u64;
        LogSummary {
            file: "messages.jsonl".into(),
            copies: self.pushed,
            recorded,
            omitted: self.pushed - recorded,
            omitted_sent_us: self.omitted_us,
            head_max: self.head_max as u64,
            tail_max: self.tail_max as u64,
            bytes: 0,
            bytes_max: self.bytes_max,
            unwritten: 0,
        }
    }
}

/// The log's entry in `metrics.json` (`message_log`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogSummary {
    /// The file, relative to the run directory.
    pub file: String,
    /// Node-to-node copies the router handled.
    pub copies: u64,
    /// Copies in the file.
    pub recorded: u64,
    /// Copies left out between the head and the ring.
    pub omitted: u64,
    /// Send times (µs) of the first and last copy left out.
    pub omitted_sent_us: Option<(u64, u64)>,
    /// Bound on the head.
    pub head_max: u64,
    /// Bound on the ring.
    pub tail_max: u64,
    /// Bytes written to the file.
    #[serde(default)]
    pub bytes: u64,
    /// The file's cap ([`BYTES_MAX_DEFAULT`] unless configured).
    #[serde(default)]
    pub bytes_max: u64,
    /// Records kept in memory but not written: the file reached `bytes_max`.
    #[serde(default)]
    pub unwritten: u64,
}

/// One line of `messages.jsonl`, as written and as the report reads it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageLine {
    /// Send time, µs since the run's start.
    pub sent_us: u64,
    /// Sender.
    pub src: String,
    /// Receiver.
    pub dest: String,
    /// Body type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The instance, when the body has an unsigned-integer `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
    /// The body's other salient fields, short ([`label`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// What became of it.
    pub fate: String,
    /// When it was delivered or dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<u64>,
    /// A duplicate copy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dup: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(head: usize, tail: usize) -> MessageLog {
        MessageLog::with_bounds(vec![true, true, false], head, tail)
    }

    fn lines(log: &MessageLog) -> Vec<MessageLine> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let addrs = ["n1".to_string(), "n2".into(), "c1".into()];
        log.write_jsonl(&path, &addrs, &["prepare".into(), "accept".into()])
            .unwrap();
        crate::results::read_jsonl::<MessageLine>(&path).unwrap()
    }

    #[test]
    fn the_file_stops_at_its_byte_cap_and_counts_what_it_left_out() {
        let mut l = log(100, 100);
        for t in 0..10 {
            l.push(t, 0, 1, 0, Salient::default(), Fate::Cut, false);
        }
        let one_line = lines(&l)
            .first()
            .map(|m| serde_json::to_string(m).unwrap().len() + 1)
            .unwrap() as u64;
        l.bytes_max = 3 * one_line + 1;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let addrs = ["n1".to_string(), "n2".into(), "c1".into()];
        let summary = l.write_jsonl(&path, &addrs, &["prepare".into()]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * one_line);
        assert_eq!((summary.bytes, summary.unwritten), (3 * one_line, 7));
        assert_eq!(
            (summary.recorded, summary.bytes_max),
            (10, 3 * one_line + 1)
        );
    }

    #[test]
    fn settles_waiting_copies_and_round_trips() {
        let mut l = log(10, 10);
        assert!(l.wants(0, 1) && !l.wants(0, 2));
        let (_, accept) =
            read_body(r#"{"type":"accept","key":29,"ballot":{"round":1,"node":"n3"},"value":7}"#)
                .expect("a body");
        let a = l.push(5, 0, 1, 0, accept, Fate::InFlight, false);
        l.push(6, 1, 0, 1, Salient::default(), Fate::Cut, false);
        let c = l.push(7, 0, 1, 1, accept, Fate::Held, true);
        l.settle(a, Fate::Delivered, 40);
        let got = lines(&l);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            MessageLine {
                sent_us: 5,
                src: "n1".into(),
                dest: "n2".into(),
                ty: "prepare".into(),
                key: Some(29),
                label: "(1,n3) 7".into(),
                fate: "delivered".into(),
                at_us: Some(40),
                dup: false,
            }
        );
        assert_eq!((got[1].fate.as_str(), got[1].at_us), ("cut", Some(6)));
        assert_eq!(
            (got[2].fate.as_str(), got[2].at_us, got[2].dup),
            ("held", None, true)
        );
        l.settle(c, Fate::Delivered, 90);
        assert_eq!(lines(&l)[2].at_us, Some(90));
    }

    #[test]
    fn keeps_the_head_and_a_ring_of_the_latest_in_send_order() {
        let mut l = log(3, 4);
        let seqs: Vec<u64> = (0..20)
            .map(|t| l.push(t, 0, 1, 0, Salient::default(), Fate::InFlight, false))
            .collect();
        // Settling an overwritten record does nothing; a kept one is updated.
        l.settle(seqs[5], Fate::Delivered, 1000);
        l.settle(seqs[18], Fate::Delivered, 1000);
        let sent: Vec<u64> = lines(&l).iter().map(|m| m.sent_us).collect();
        assert_eq!(sent, vec![0, 1, 2, 16, 17, 18, 19]);
        let s = l.summary();
        assert_eq!((s.copies, s.recorded, s.omitted), (20, 7, 13));
        assert_eq!(s.omitted_sent_us, Some((3, 15)));
        assert_eq!(lines(&l)[5].at_us, Some(1000));
    }
}
