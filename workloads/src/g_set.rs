//! `g-set` (Maelstrom's grow-only set): clients send `add {element}` and `read`, a node
//! answers `add_ok` and `read_ok {value: [..]}`. Checked: every read holds only elements
//! some `add` invoked before the read completed could have put there (nothing is made
//! up), and the last final read of every live node holds every acknowledged element
//! (nothing acknowledged is lost, across kills and restarts). Reads during the run may be
//! stale: the set is only eventually consistent.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::history::{Op, Outcome};
use crate::maelstrom::{body_op, canonical, final_reads, invoked_before_completion, read_op};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::Workload;

/// Percent of ops that are reads.
const READ_PERCENT: u32 = 30;
/// Elements named in evidence, at most.
const EVIDENCE_MAX: usize = 20;

/// The g-set op generator: fresh integer elements, reads between.
#[derive(Debug, Default)]
pub struct GSetWorkload {
    next: u64,
}

impl Workload for GSetWorkload {
    fn name(&self) -> &'static str {
        "g-set"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        if rng.gen_range(0..100) < READ_PERCENT {
            return read_op();
        }
        self.next += 1;
        body_op("add", json!({"element": self.next}), &[])
    }

    fn final_ops(&self) -> Vec<ClientOp> {
        vec![read_op()]
    }

    fn final_settled(&self, _op: &ClientOp, _reply: &ClientReply) -> bool {
        false
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(GSet)]
    }

    fn default_algorithm(&self) -> &'static str {
        crate::maelstrom::NO_BUNDLED_NODE
    }
}

/// Nothing made up, nothing acknowledged lost.
pub struct GSet;

/// The elements of a read, canonical; `None` if its value is not a list.
fn read_elements(op: &Op) -> Option<BTreeSet<String>> {
    let list = op.output.as_ref()?.get("value")?.as_array()?;
    Some(list.iter().map(canonical).collect())
}

impl Checker for GSet {
    fn name(&self) -> &'static str {
        "g-set"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name();
        let ops = input.history.ops();
        let adds: Vec<&Op> = ops.iter().filter(|o| o.f == "add").collect();
        for read in ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        {
            let Some(got) = read_elements(read) else {
                return Verdict::invalid(
                    name,
                    format!("read at index {} returned no list", read.invoke_index),
                    json!({"property": "shape", "op": read}),
                );
            };
            let possible: BTreeSet<String> = adds
                .iter()
                .filter(|a| a.outcome != Outcome::Fail && invoked_before_completion(a, read))
                .map(|a| canonical(&a.input["element"]))
                .collect();
            let made_up: Vec<&String> = got.difference(&possible).take(EVIDENCE_MAX).collect();
            if let Some(first) = made_up.first() {
                return Verdict::invalid(
                    name,
                    format!(
                        "read at index {} on {} holds {first}, which no add invoked before it put there",
                        read.invoke_index,
                        read.node.as_deref().unwrap_or("?")
                    ),
                    json!({"property": "never-added", "op": read, "elements": made_up}),
                );
            }
        }
        let finals = match final_reads(input, name) {
            Ok(f) => f,
            Err(v) => return v,
        };
        let acked: BTreeSet<String> = adds
            .iter()
            .filter(|a| a.outcome == Outcome::Ok)
            .map(|a| canonical(&a.input["element"]))
            .collect();
        let mut lost: BTreeMap<&String, Vec<String>> = BTreeMap::new();
        for (node, read) in &finals {
            let got = read_elements(read).unwrap_or_default();
            let missing: Vec<String> = acked.difference(&got).cloned().collect();
            if !missing.is_empty() {
                lost.insert(node, missing);
            }
        }
        if let Some((node, missing)) = lost.iter().next() {
            return Verdict::invalid(
                name,
                format!(
                    "{} acknowledged elements are missing from {}'s final read (first: {})",
                    missing.len(),
                    node,
                    missing[0]
                ),
                json!({"property": "lost", "lost": lost.iter().map(|(n, m)| (n.to_string(), m.iter().take(EVIDENCE_MAX).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>()}),
            );
        }
        Verdict::valid(
            name,
            format!(
                "every final read ({} nodes) holds all {} acknowledged elements and nothing never added",
                finals.len(),
                acked.len()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::*;
    use crate::maelstrom::testing::{input, Row};
    use crate::verdict::VerdictKind;
    use serde_json::Value;

    fn add(p: u64, e: u64, ok: bool) -> [Row<'static>; 2] {
        let end = if ok { Ok } else { Info };
        [
            (p, Invoke, "add", json!({"element": e}), "n0"),
            (p, end, "add", json!({"element": e}), "n0"),
        ]
    }

    fn read(p: u64, node: &'static str, got: Value) -> [Row<'static>; 2] {
        [
            (p, Invoke, "read", json!({}), node),
            (p, Ok, "read", json!({ "value": got }), node),
        ]
    }

    fn check(rows: Vec<Row>, quiet_from: u64) -> VerdictKind {
        GSet.check(&input(&rows, quiet_from, &["n0", "n1"])).verdict
    }

    #[test]
    fn an_acknowledged_element_missing_from_a_final_read_is_lost() {
        let mut rows: Vec<Row> = [add(0, 1, true), add(1, 2, true)].concat();
        let q = rows.len() as u64;
        rows.extend(read(2, "n0", json!([1, 2])));
        rows.extend(read(3, "n1", json!([2, 1])));
        assert_eq!(check(rows.clone(), q), VerdictKind::Valid);
        rows.extend(read(3, "n1", json!([1])));
        assert_eq!(
            check(rows, q),
            VerdictKind::Invalid,
            "the last final read counts"
        );
    }

    #[test]
    fn an_element_never_added_is_made_up_and_an_unacknowledged_one_is_not_owed() {
        let mut rows: Vec<Row> = [add(0, 1, true), add(1, 2, false)].concat();
        let q = rows.len() as u64;
        rows.extend(read(2, "n0", json!([1])));
        rows.extend(read(3, "n1", json!([1, 2])));
        assert_eq!(check(rows.clone(), q), VerdictKind::Valid);
        rows.extend(read(4, "n1", json!([1, 9])));
        assert_eq!(check(rows, q), VerdictKind::Invalid);
    }

    #[test]
    fn a_live_node_without_a_final_read_is_no_progress() {
        let mut rows: Vec<Row> = add(0, 1, true).to_vec();
        let q = rows.len() as u64;
        rows.extend(read(2, "n0", json!([1])));
        assert_eq!(check(rows, q), VerdictKind::Invalid);
    }
}
