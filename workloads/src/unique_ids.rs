//! `unique-ids` (Maelstrom's): clients send `generate`, a node answers `generate_ok`
//! with an `id` of any JSON type. Checked: no two `ok` ids are equal, across the whole
//! run, kills and restarts included (a node that counts from zero again after a restart
//! hands out an id twice).

use std::collections::BTreeMap;

use proto::ops::ClientOp;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::history::Outcome;
use crate::maelstrom::{body_op, canonical};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::Workload;

/// The unique-ids op generator: every op is a `generate`.
#[derive(Debug, Default)]
pub struct UniqueIdsWorkload;

impl Workload for UniqueIdsWorkload {
    fn name(&self) -> &'static str {
        "unique-ids"
    }

    fn next_op(&mut self, _rng: &mut ChaCha8Rng) -> ClientOp {
        body_op("generate", json!({}), &["id"])
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(UniqueIds)]
    }

    fn default_algorithm(&self) -> &'static str {
        crate::maelstrom::NO_BUNDLED_NODE
    }
}

/// Every `ok` id is distinct.
pub struct UniqueIds;

impl Checker for UniqueIds {
    fn name(&self) -> &'static str {
        "unique-ids"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name();
        // id -> the first op that got it.
        let mut seen: BTreeMap<String, crate::history::Op> = BTreeMap::new();
        let mut duplicates = Vec::new();
        for op in input.history.ops() {
            if op.f != "generate" || op.outcome != Outcome::Ok {
                continue;
            }
            let id = op
                .output
                .as_ref()
                .map(|o| o["id"].clone())
                .unwrap_or_default();
            let key = canonical(&id);
            match seen.get(&key) {
                Some(first) => duplicates.push(json!({
                    "id": id,
                    "first": {"index": first.invoke_index, "node": first.node},
                    "again": {"index": op.invoke_index, "node": op.node},
                })),
                None => {
                    seen.insert(key, op);
                }
            }
        }
        if let Some(first) = duplicates.first() {
            return Verdict::invalid(
                name,
                format!(
                    "{} ids were handed out twice (first: {} to ops {} and {})",
                    duplicates.len(),
                    first["id"],
                    first["first"]["index"],
                    first["again"]["index"]
                ),
                json!({"property": "uniqueness", "duplicates": duplicates.iter().take(20).collect::<Vec<_>>()}),
            );
        }
        if seen.is_empty() {
            return Verdict::unknown(name, "no generate completed, nothing to judge", json!({}));
        }
        Verdict::valid(name, format!("all {} ok ids are distinct", seen.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::*;
    use crate::maelstrom::testing::input;
    use crate::verdict::VerdictKind;

    fn check(ids: &[serde_json::Value]) -> VerdictKind {
        let mut rows = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            rows.push((i as u64, Invoke, "generate", json!({}), "n0"));
            rows.push((i as u64, Ok, "generate", json!({ "id": id }), "n0"));
        }
        UniqueIds.check(&input(&rows, 0, &[])).verdict
    }

    #[test]
    fn an_id_handed_out_twice_is_caught_whatever_its_json_type() {
        assert_eq!(check(&[json!("n0-1"), json!("n0-2")]), VerdictKind::Valid);
        assert_eq!(check(&[json!("n0-1"), json!("n0-1")]), VerdictKind::Invalid);
        assert_eq!(
            check(&[json!(7), json!([0, 7]), json!(7)]),
            VerdictKind::Invalid
        );
        assert_eq!(
            check(&[json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})]),
            VerdictKind::Invalid
        );
        assert_eq!(check(&[json!(1), json!("1")]), VerdictKind::Valid);
        assert_eq!(check(&[]), VerdictKind::Unknown);
    }

    #[test]
    fn ids_of_ops_that_did_not_complete_ok_are_not_compared() {
        let rows = vec![
            (0, Invoke, "generate", json!({}), "n0"),
            (0, Ok, "generate", json!({"id": 1}), "n0"),
            (1, Invoke, "generate", json!({}), "n1"),
            (1, Info, "generate", json!({}), "n1"),
        ];
        assert_eq!(
            UniqueIds.check(&input(&rows, 0, &[])).verdict,
            VerdictKind::Valid
        );
    }
}
