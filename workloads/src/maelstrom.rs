//! What the Maelstrom workloads (`unique-ids`, `g-set`, `g-counter`, `pn-counter`) share:
//! their requests are [`BodyOp`]s (any fields, any JSON values), their final reads are
//! retried for the whole quiet window (an eventually consistent node may still be
//! converging when the faults heal, so a read never settles early), and their checkers
//! judge each live node by its last `ok` final read.

use std::collections::BTreeMap;

use proto::ops::{BodyOp, ClientOp};
use serde_json::{json, Value};

use crate::history::{Op, Outcome};
use crate::verdict::{CheckInput, Verdict};

/// The `default_algorithm` of a workload no bundled node serves: runs need `--node-cmd`.
pub const NO_BUNDLED_NODE: &str = "";

/// A request of type `f` with `fields`, whose ok reply must carry `reply_fields`.
pub fn body_op(f: &'static str, fields: Value, reply_fields: &'static [&'static str]) -> ClientOp {
    ClientOp::Body(BodyOp::new(f, fields, reply_fields))
}

/// The `read` of g-set and the counters: `read_ok` must carry `value`.
pub fn read_op() -> ClientOp {
    body_op("read", json!({}), &["value"])
}

/// A value as one comparable string (object keys are sorted by `serde_json`).
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).expect("values serialise")
}

/// Each live node's last `ok` read in the quiet window, or the verdict that ends the
/// check: `unknown` without a quiet window, `invalid` if a live node never answered one.
pub fn final_reads(input: &CheckInput, checker: &str) -> Result<BTreeMap<String, Op>, Verdict> {
    let Some(quiet_from) = input.quiet_from else {
        return Err(Verdict::unknown(
            checker,
            "no quiet window: final reads were not judged",
            json!({"property": "termination"}),
        ));
    };
    let mut last: BTreeMap<String, Op> = BTreeMap::new();
    for op in input.history.ops() {
        if op.f != "read" || op.outcome != Outcome::Ok || op.invoke_time < quiet_from {
            continue;
        }
        let Some(node) = op.node.clone() else {
            continue;
        };
        let newer = last
            .get(&node)
            .is_none_or(|o| o.complete_index < op.complete_index);
        if newer {
            last.insert(node, op);
        }
    }
    let silent: Vec<&String> = input
        .live_nodes
        .iter()
        .filter(|n| !last.contains_key(*n))
        .collect();
    if let Some(first) = silent.first() {
        return Err(Verdict::invalid(
            checker,
            format!(
                "no progress: {} live nodes never answered a final read (first: {first})",
                silent.len()
            ),
            json!({"property": "termination", "silent": silent}),
        ));
    }
    Ok(last)
}

/// Whether an op may have taken effect: `ok`, `info` or still pending (not `fail`).
pub fn may_have_happened(op: &Op) -> bool {
    op.outcome != Outcome::Fail
}

/// Whether `earlier` was invoked before `read` completed (causal order of the history).
pub fn invoked_before_completion(earlier: &Op, read: &Op) -> bool {
    read.complete_index.is_none_or(|c| earlier.invoke_index < c)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Histories for the Maelstrom checkers' tests.
    use super::*;
    use crate::history::{Event, EventType, History};

    /// `(process, type, f, value, node)`; times in row order; the quiet window starts
    /// at row `quiet_from`.
    pub type Row<'a> = (u64, EventType, &'a str, Value, &'a str);

    /// A check input of `rows`, live nodes `live`.
    pub fn input(rows: &[Row], quiet_from: u64, live: &[&str]) -> CheckInput {
        let events = rows
            .iter()
            .enumerate()
            .map(|(i, (p, ty, f, v, node))| Event::row(i, *p, *ty, f, v, i as u64).on(node))
            .collect();
        CheckInput {
            history: History { events },
            quiet_from: Some(quiet_from),
            live_nodes: live.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }
}
