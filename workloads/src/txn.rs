//! `txn-rw-register`: Maelstrom's transactions over registers (the "totally-available
//! transactions" challenge), with its bodies.
//!
//! A client sends `txn {txn: [[f, k, v], ...]}`, a list of micro-ops run in order: a read
//! `["r", k, null]` and a write `["w", k, v]`. The node answers `txn_ok {txn}` with the same
//! micro-ops, every read's `null` replaced by the value it saw (`null` for a key never
//! written), or an error (30 txn-conflict and the other definite codes: the txn did not
//! happen; anything else: it may have). Keys are the integers `0..keys`; every value
//! written to a key is unique (a per-key counter), so a read names the one write it saw.
//!
//! The checker ([`check::TxnChecker`]) judges the consistency model chosen with
//! `--consistency-models` ([`Consistency`]), Adya's phenomena as Elle names them:
//!
//! - **internal**: a txn that wrote `k` reads back something other than its own last
//!   write of `k` (every model);
//! - **garbage read**: a read of a value no txn wrote (every model);
//! - **G0** (write cycle): a cycle of write-write dependencies (every model);
//! - **G1a** (aborted read): an `ok` txn read a value whose txn failed definitely;
//! - **G1b** (intermediate read): an `ok` txn read a value another txn overwrote itself;
//! - **G1c** (circular information flow): a cycle of write-write and write-read
//!   dependencies with at least one write-read edge.
//!
//! `read-uncommitted` forbids internal, garbage reads and G0; `read-committed` (squall's
//! default, the stronger model the challenge asks for) forbids all six.
//!
//! What the checker can and cannot infer. A write-read edge `T1 -> T2` is certain: `T2`
//! read a value only `T1` wrote. A register's version order is not in the history: a
//! read shows one version, never the ones before it. The checker orders versions of a
//! key only where one txn both read and then wrote it (writes follow reads: the version
//! read precedes the version written, as Maelstrom infers), or wrote it twice (an order
//! inside one txn, no edge). Two blind writes of a key are never ordered, nor are writes
//! by real time or by process order, so a G0 or G1c made only of blind writes is
//! invisible, and anti-dependency cycles (G2, lost updates) are not checked at all: the
//! models asked for do not forbid them. A valid verdict means no anomaly was *found*
//! with these edges. The generator makes about a third of its writes read the key
//! first, so the edges exist.

pub mod check;

use std::collections::BTreeMap;

use proto::ops::ClientOp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::maelstrom::{body_op, NO_BUNDLED_NODE};
use crate::verdict::Checker;
use crate::workload::{Workload, WorkloadOpts};

/// Keys when `--instances` is not given.
pub const KEYS_DEFAULT: u64 = 5;
/// Micro-ops in one txn, at most (Maelstrom's `--max-txn-length` default).
pub const TXN_LEN_MAX: usize = 4;
/// Percent of micro-op slots that are reads.
pub const READ_PERCENT: u32 = 50;
/// Percent of writes preceded by a read of the same key (so version orders can be
/// inferred: see the module docs).
pub const READ_THEN_WRITE_PERCENT: u32 = 35;

/// The consistency model the checker judges (`--consistency-models`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// Adya's PL-1: no G0 (plus internal consistency and no garbage reads).
    ReadUncommitted,
    /// Adya's PL-2: no G0, G1a, G1b or G1c (plus internal consistency, no garbage).
    #[default]
    ReadCommitted,
}

impl Consistency {
    /// Every model by its flag name, weakest first.
    pub const ALL: [(Consistency, &'static str); 2] = [
        (Consistency::ReadUncommitted, "read-uncommitted"),
        (Consistency::ReadCommitted, "read-committed"),
    ];

    /// The flag name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .expect("every model is listed")
    }

    /// Whether the model forbids the G1 phenomena (G1a, G1b, G1c).
    pub fn forbids_g1(self) -> bool {
        self >= Consistency::ReadCommitted
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;

    /// One model, or a comma-separated list as Maelstrom takes it: the strongest is judged.
    fn from_str(raw: &str) -> Result<Self, String> {
        let valid = || {
            let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
            names.join(", ")
        };
        let mut strongest = None;
        for word in raw.split(',').map(str::trim) {
            let Some((c, _)) = Self::ALL.iter().find(|(_, n)| *n == word) else {
                return Err(format!(
                    "unknown consistency model '{word}' (valid: {})",
                    valid()
                ));
            };
            strongest = strongest.max(Some(*c));
        }
        strongest.ok_or_else(|| format!("no consistency model given (valid: {})", valid()))
    }
}

/// The txn-rw-register op generator.
#[derive(Debug, Clone)]
pub struct TxnWorkload {
    keys: u64,
    consistency: Consistency,
    /// The last value written to each key by any generated txn.
    written: BTreeMap<u64, u64>,
}

impl TxnWorkload {
    /// A generator over `opts.instances` keys (zero is taken as one), judged by
    /// `opts.consistency`.
    pub fn new(opts: &WorkloadOpts) -> Self {
        TxnWorkload {
            keys: opts.instances.max(1),
            consistency: opts.consistency,
            written: BTreeMap::new(),
        }
    }

    /// A fresh value for `key`.
    fn next_value(&mut self, key: u64) -> u64 {
        let v = self.written.entry(key).or_insert(0);
        *v += 1;
        *v
    }
}

/// `["r", k, null]`.
pub fn read_mop(key: u64) -> Value {
    json!(["r", key, null])
}

/// `["w", k, v]`.
pub fn write_mop(key: u64, value: u64) -> Value {
    json!(["w", key, value])
}

/// `txn {txn}`, answered by `txn_ok {txn}`.
pub fn txn_op(mops: Vec<Value>) -> ClientOp {
    body_op("txn", json!({ "txn": mops }), &["txn"])
}

impl Workload for TxnWorkload {
    fn name(&self) -> &'static str {
        "txn-rw-register"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        let len = rng.gen_range(1..=TXN_LEN_MAX);
        let mut mops = Vec::with_capacity(len + 1);
        while mops.len() < len {
            let key = rng.gen_range(0..self.keys);
            if rng.gen_range(0..100) < READ_PERCENT {
                mops.push(read_mop(key));
                continue;
            }
            if rng.gen_range(0..100) < READ_THEN_WRITE_PERCENT {
                mops.push(read_mop(key));
            }
            let v = self.next_value(key);
            mops.push(write_mop(key, v));
        }
        txn_op(mops)
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(check::TxnChecker::new(self.consistency))]
    }

    fn default_algorithm(&self) -> &'static str {
        NO_BUNDLED_NODE
    }

    fn instances_default(&self) -> Option<u64> {
        Some(KEYS_DEFAULT)
    }
}

#[cfg(test)]
mod tests;
