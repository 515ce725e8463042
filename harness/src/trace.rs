//! `trace.bin`: every event of a lockstep run, in the order it happened, and its hash.
//!
//! The file is a plain concatenation of bincode-encoded [`TraceRecord`]s (bincode 1,
//! default options: little-endian, fixed-width integers, strings as a u64 length and
//! UTF-8 bytes). [`read_trace`] reads it back. The run's `trace_hash` (in
//! `verdict.json`) is FNV-1a 64 over the file's bytes, as 16 lowercase hex digits:
//! two runs with the same seed, binary and configuration have the same hash.
//!
//! The trace holds everything the checkers read and everything the harness decided: each
//! delivered event, every line each node wrote ([`TraceKind::Output`]: reports and
//! `timer_set` included), each fate of a send (delivered with its delays, duplicated,
//! dropped, held: [`TraceKind::Decision`]), and each fault, kill and restart. Equal
//! hashes therefore mean equal checker input.
//!
//! Written by the lockstep mode ([`crate::lockstep`]), read by `squall report` for the
//! message sequence of a lockstep run.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Virtual time a message or a client request or reply spends on the wire in a lockstep
/// run, in µs: the times in a trace are multiples of it plus any delay a fault adds.
pub const HOP_US: u64 = 100;

/// `--lockstep-latency`: the virtual time each node-to-node message spends on the wire
/// in a lockstep run, drawn per message from the run's seed, instead of the constant
/// [`HOP_US`]. Written `uniform:MIN-MAX` with `us` or `ms` units (`uniform:50us-500us`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopLatency {
    /// Shortest hop, µs (at least 1).
    pub min_us: u64,
    /// Longest hop, µs (inclusive, at most [`HopLatency::MAX_US`]).
    pub max_us: u64,
}

impl HopLatency {
    /// The longest hop a distribution may give: 10 s.
    pub const MAX_US: u64 = 10_000_000;

    /// Parses `uniform:MIN-MAX` (`50us`, `2ms`; a bare number is µs).
    pub fn parse(raw: &str) -> Result<HopLatency, String> {
        let bad = || format!("'{raw}' is not a latency distribution (e.g. uniform:50us-500us)");
        let range = raw.trim().strip_prefix("uniform:").ok_or_else(bad)?;
        let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
        let micros = |s: &str| -> Result<u64, String> {
            let s = s.trim();
            let (num, mult) = if let Some(n) = s.strip_suffix("us") {
                (n, 1)
            } else if let Some(n) = s.strip_suffix("ms") {
                (n, 1_000)
            } else {
                (s, 1)
            };
            num.trim()
                .parse::<u64>()
                .ok()
                .and_then(|v| v.checked_mul(mult))
                .ok_or_else(bad)
        };
        let (min_us, max_us) = (micros(lo)?, micros(hi)?);
        if min_us == 0 || min_us > max_us || max_us > Self::MAX_US {
            return Err(format!(
                "'{raw}': the range must be 1us <= MIN <= MAX <= {} ms",
                Self::MAX_US / 1_000
            ));
        }
        Ok(HopLatency { min_us, max_us })
    }
}

impl std::fmt::Display for HopLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uniform:{}us-{}us", self.min_us, self.max_us)
    }
}

/// What a trace record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceKind {
    /// `init` to a node (a start or a restart); `line` is the init envelope.
    Init,
    /// A node-to-node message delivered; `line` is the envelope as the sender wrote it.
    Message,
    /// A client request delivered to a node.
    Request,
    /// `timer_fired` delivered to a node.
    Timer,
    /// A fault or heal carried out by the harness; `line` is the action as JSON.
    Fault,
    /// A client received its reply; `node` is the client, `line` the reply body.
    Reply,
    /// A client's op timed out; `node` is the client, `line` the request's `msg_id`.
    Timeout,
    /// A line a node wrote during its step, as written (messages, replies, reports,
    /// `timer_set`, `step_done`, lines a mid-step kill cut off); `node` is the writer.
    Output,
    /// A decision of the harness about a node's send or a node: `line` is JSON,
    /// `{"send":"deliver","src":..,"dest":..,"delays_us":[..]}` (two delays:
    /// duplicated), `{"send":"drop",..,"cause":"drop"|"cut"}`, `{"send":"hold",..}`, or
    /// `{"crash":NODE,"why":..}` for a node treated as crashed after a fault.
    Decision,
}

/// One event of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Steps delivered to nodes before this record (a node step has the number of
    /// the step it is, from 1; harness-only records carry the last step's number).
    pub step: u64,
    /// Virtual time in microseconds.
    pub at_us: u64,
    /// The node given the event (or the client, or `harness`).
    pub node: String,
    /// What it is.
    pub kind: TraceKind,
    /// The raw line or description.
    pub line: String,
}

/// FNV-1a 64, byte by byte, from `state` (start from [`FNV_OFFSET`]).
pub fn fnv1a64(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// FNV-1a 64's initial state.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Appends records to `trace.bin` and hashes what it writes.
pub struct TraceWriter {
    out: BufWriter<File>,
    hash: u64,
    records: u64,
    bytes: u64,
    scratch: Vec<u8>,
}

impl TraceWriter {
    /// Creates (truncating) the trace file.
    pub fn create(path: &Path) -> anyhow::Result<TraceWriter> {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(TraceWriter {
            out: BufWriter::with_capacity(256 * 1024, file),
            hash: FNV_OFFSET,
            records: 0,
            bytes: 0,
            scratch: Vec::with_capacity(1024),
        })
    }

    /// Appends one record.
    pub fn append(&mut self, record: &TraceRecord) -> anyhow::Result<()> {
        self.scratch.clear();
        bincode::serialize_into(&mut self.scratch, record)?;
        self.write_scratch()
    }

    /// Appends the record these fields make, byte for byte what [`TraceWriter::append`]
    /// writes for it, without the caller building (and allocating) a [`TraceRecord`].
    pub fn append_parts(
        &mut self,
        step: u64,
        at_us: u64,
        node: &str,
        kind: TraceKind,
        line: &str,
    ) -> anyhow::Result<()> {
        // bincode 1's default encoding: u64 and the variant index (u32) little-endian,
        // each string as its u64 length and its bytes.
        let s = &mut self.scratch;
        s.clear();
        s.extend_from_slice(&step.to_le_bytes());
        s.extend_from_slice(&at_us.to_le_bytes());
        s.extend_from_slice(&(node.len() as u64).to_le_bytes());
        s.extend_from_slice(node.as_bytes());
        s.extend_from_slice(&(kind as u32).to_le_bytes());
        s.extend_from_slice(&(line.len() as u64).to_le_bytes());
        s.extend_from_slice(line.as_bytes());
        self.write_scratch()
    }

    fn write_scratch(&mut self) -> anyhow::Result<()> {
        self.hash = fnv1a64(self.hash, &self.scratch);
        self.out.write_all(&self.scratch)?;
        self.records += 1;
        self.bytes += self.scratch.len() as u64;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hash of everything written so far, as 16 hex digits.
    pub fn hash_hex(&self) -> String {
        format!("{:016x}", self.hash)
    }

    /// Flushes and syncs the file; returns the final hash.
    pub fn finish(mut self) -> anyhow::Result<String> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(self.hash_hex())
    }
}

/// Reads every record of a trace file.
pub fn read_trace(path: &Path) -> anyhow::Result<Vec<TraceRecord>> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut read = 0u64;
    while read < len {
        let record: TraceRecord = bincode::deserialize_from(&mut reader)
            .with_context(|| format!("record {} of {}", out.len(), path.display()))?;
        read += bincode::serialized_size(&record)?;
        out.push(record);
    }
    Ok(out)
}

/// The `trace_hash` of a trace file: FNV-1a 64 of its bytes, 16 hex digits.
pub fn hash_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    Ok(format!("{:016x}", fnv1a64(FNV_OFFSET, &bytes)))
}

/// Where two traces first part: record `index` (from 0) of each, `None` where one
/// trace had already ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDiff {
    /// Records before the difference, equal in both.
    pub index: usize,
    /// The original's record there.
    pub expected: Option<TraceRecord>,
    /// The replay's record there.
    pub got: Option<TraceRecord>,
}

/// The first record where `got` differs from `expected`, or `None` if they are equal.
pub fn first_difference(expected: &[TraceRecord], got: &[TraceRecord]) -> Option<TraceDiff> {
    let index = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    if index == expected.len() && index == got.len() {
        return None;
    }
    Some(TraceDiff {
        index,
        expected: expected.get(index).cloned(),
        got: got.get(index).cloned(),
    })
}

impl TraceKind {
    /// The kind's name, as `squall replay --diff` and `metrics.json` print it.
    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Init => "init",
            TraceKind::Message => "message",
            TraceKind::Request => "request",
            TraceKind::Timer => "timer",
            TraceKind::Fault => "fault",
            TraceKind::Reply => "reply",
            TraceKind::Timeout => "timeout",
            TraceKind::Output => "output",
            TraceKind::Decision => "decision",
        }
    }
}

impl std::fmt::Display for TraceDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = self.expected.as_ref().or(self.got.as_ref());
        let (step, at_us) = head.map(|r| (r.step, r.at_us)).unwrap_or_default();
        writeln!(
            f,
            "first difference at record {} (step {step}, virtual {at_us} us):",
            self.index + 1
        )?;
        for (label, r) in [("expected", &self.expected), ("got", &self.got)] {
            match r {
                Some(r) => writeln!(
                    f,
                    "  {label:<8} step {} node {} {}: {}",
                    r.step,
                    r.node,
                    r.kind.name(),
                    r.line
                )?,
                None => writeln!(f, "  {label:<8} (the trace ended)")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_first_record_that_differs() {
        let rec = |step, line: &str| TraceRecord {
            step,
            at_us: step * 100,
            node: "n1".into(),
            kind: TraceKind::Output,
            line: line.into(),
        };
        let a = vec![rec(1, "x"), rec(2, "y"), rec(3, "z")];
        assert_eq!(first_difference(&a, &a), None);
        let mut b = a.clone();
        b[1].line = "Y".into();
        let d = first_difference(&a, &b).unwrap();
        assert_eq!(d.index, 1);
        assert_eq!(d.expected.as_ref().unwrap().line, "y");
        assert_eq!(d.got.as_ref().unwrap().line, "Y");
        assert!(d.to_string().contains("step 2 node n1 output: Y"), "{d}");
        let d = first_difference(&a, &a[..2]).unwrap();
        assert_eq!((d.index, d.got), (2, None));
    }

    #[test]
    fn append_parts_writes_the_bytes_and_hash_append_writes() {
        let dir = tempfile::tempdir().unwrap();
        let kinds = [
            TraceKind::Init,
            TraceKind::Message,
            TraceKind::Request,
            TraceKind::Timer,
            TraceKind::Fault,
            TraceKind::Reply,
            TraceKind::Timeout,
            TraceKind::Output,
            TraceKind::Decision,
        ];
        let (pa, pb) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
        let (mut a, mut b) = (
            TraceWriter::create(&pa).unwrap(),
            TraceWriter::create(&pb).unwrap(),
        );
        for (i, kind) in kinds.into_iter().enumerate() {
            let r = TraceRecord {
                step: i as u64 * 1_000_003,
                at_us: u64::MAX - i as u64,
                node: format!("n{i}é"),
                kind,
                line: "{\"x\":\"ü\"}".repeat(i),
            };
            a.append(&r).unwrap();
            b.append_parts(r.step, r.at_us, &r.node, r.kind, &r.line)
                .unwrap();
        }
        let (ha, hb) = (a.finish().unwrap(), b.finish().unwrap());
        assert_eq!(ha, hb);
        assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        assert_eq!(read_trace(&pb).unwrap().len(), kinds.len());
    }

    #[test]
    fn records_round_trip_and_the_hash_is_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.bin");
        let records = vec![
            TraceRecord {
                step: 1,
                at_us: 0,
                node: "n1".into(),
                kind: TraceKind::Init,
                line: r#"{"src":"harness"}"#.into(),
            },
            TraceRecord {
                step: 1,
                at_us: 1_500,
                node: "harness".into(),
                kind: TraceKind::Fault,
                line: r#"{"action":"kill","node":"n2"}"#.into(),
            },
        ];
        let mut w = TraceWriter::create(&path).unwrap();
        for r in &records {
            w.append(r).unwrap();
        }
        assert_eq!(w.records(), 2);
        let hash = w.finish().unwrap();
        assert_eq!(read_trace(&path).unwrap(), records);
        assert_eq!(hash_file(&path).unwrap(), hash);
        assert_eq!(hash.len(), 16);
    }

    #[test]
    fn latency_distributions_parse_and_bad_ones_are_refused() {
        let l = HopLatency::parse("uniform:50us-2ms").unwrap();
        assert_eq!((l.min_us, l.max_us), (50, 2_000));
        assert_eq!(HopLatency::parse(&l.to_string()).unwrap(), l);
        for bad in [
            "uniform:0us-5us",
            "uniform:9us-5us",
            "normal:1us-2us",
            "uniform:1us",
            "uniform:1us-11000ms",
        ] {
            assert!(HopLatency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fnv_matches_reference_values() {
        assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }
}
