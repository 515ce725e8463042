//! `durability`: does a node find after a SIGKILL exactly what it synced before it?
//!
//! The node (`restart-counter` is the bundled one) keeps two durable counts: records it
//! synced, one per incarnation, and records it wrote but never synced. `read {key: 0}`
//! answers how many synced records the current incarnation found at start, `read {key:
//! 1}` how many unsynced ones. Clients alternate between the two reads on random nodes.
//!
//! The [`DurabilityChecker`] knows from the fault spans when each node was killed and
//! restarted. A read completed `ok` on node `n` must say:
//! - key 0: the number of kills of `n` that ended (a restart) before the read was
//!   invoked, or, if the read raced a kill or restart, any count between the kills ended
//!   before the invoke and those ended before the completion: what was synced survived;
//! - key 1: zero: what was never synced died with the process.
//!
//! A run without kills checks nothing about crashes but still checks key 0 is 0.

use proto::ops::ClientOp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::Outcome;
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::Workload;

/// Key of the synced-record count.
pub const KEY_SYNCED: u64 = 0;
/// Key of the unsynced-record count.
pub const KEY_UNSYNCED: u64 = 1;

/// The op generator: reads of the two counts.
#[derive(Debug, Default)]
pub struct DurabilityWorkload;

impl Workload for DurabilityWorkload {
    fn name(&self) -> &'static str {
        "durability"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        let key = if rng.gen_bool(0.5) {
            KEY_SYNCED
        } else {
            KEY_UNSYNCED
        };
        ClientOp::Read { key }
    }

    /// Both counts on every node, once every killed node is back.
    fn final_ops(&self) -> Vec<ClientOp> {
        vec![
            ClientOp::Read { key: KEY_SYNCED },
            ClientOp::Read { key: KEY_UNSYNCED },
        ]
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(DurabilityChecker)]
    }

    fn default_algorithm(&self) -> &'static str {
        "restart-counter"
    }
}

/// Judges every `ok` read against the node's kills and restarts.
pub struct DurabilityChecker;

impl Checker for DurabilityChecker {
    fn name(&self) -> &'static str {
        "durability"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let ops = input.history.ops();
        let mut judged = 0usize;
        let mut restarts_seen = 0u64;
        for op in ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok && o.f == "read")
        {
            let (Some(node), Some(key)) = (op.node.as_deref(), op.input["key"].as_u64()) else {
                continue;
            };
            let Some(got) = op.output.as_ref().and_then(|o| o["value"].as_u64()) else {
                continue;
            };
            let done = op.complete_time.unwrap_or(u64::MAX);
            let restarts_by = |t: u64| {
                input
                    .faults
                    .iter()
                    .filter(|f| f.kind == "kill" && f.nodes.iter().any(|n| n == node))
                    .filter(|f| f.end.is_some_and(|e| e <= t))
                    .count() as u64
            };
            let (low, high) = (restarts_by(op.invoke_time), restarts_by(done));
            judged += 1;
            let bad = match key {
                KEY_SYNCED => {
                    restarts_seen = restarts_seen.max(got);
                    !(low..=high).contains(&got)
                }
                KEY_UNSYNCED => got != 0,
                _ => false,
            };
            if bad {
                let expected: Value = if key == KEY_SYNCED {
                    json!({"min": low, "max": high})
                } else {
                    json!(0)
                };
                // Machine-readable, for grouping failures (`squall soak`): synced records
                // lost or invented, or unsynced ones that survived a crash.
                let property = if key == KEY_SYNCED {
                    "durability"
                } else {
                    "unsynced-lost"
                };
                let what = if key == KEY_SYNCED {
                    format!(
                        "{node} found {got} synced records from earlier incarnations, but it had been restarted {low} time(s) when the read was sent"
                    )
                } else {
                    format!(
                        "{node} found {got} records that were never synced: an unsynced write survived a crash"
                    )
                };
                return Verdict::invalid(
                    self.name(),
                    format!("{what} (op {})", op.invoke_index),
                    json!({"property": property, "op": op, "key": key, "got": got, "expected": expected}),
                );
            }
        }
        if judged == 0 {
            return Verdict::unknown(
                self.name(),
                "no read completed, nothing to judge",
                json!({"ops": ops.len()}),
            );
        }
        Verdict::valid(
            self.name(),
            format!(
                "{judged} reads: every node found what it synced and nothing it did not (up to {restarts_seen} restarts seen)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History};
    use crate::verdict::{FaultSpan, VerdictKind};

    fn read(i: u64, key: u64, value: u64, t: u64) -> [Event; 2] {
        let ev = |index, ty, v: Value, time| Event {
            index,
            process: i,
            ty,
            f: "read".into(),
            value: v.into(),
            time,
            node: Some("n1".into()),
            error: None,
        };
        [
            ev(2 * i, EventType::Invoke, json!({"key": key}), t),
            ev(
                2 * i + 1,
                EventType::Ok,
                json!({"key": key, "value": value}),
                t + 10,
            ),
        ]
    }

    fn check(reads: &[(u64, u64, u64)]) -> VerdictKind {
        let events = reads
            .iter()
            .enumerate()
            .flat_map(|(i, &(k, v, t))| read(i as u64, k, v, t))
            .collect();
        let kill = FaultSpan {
            start: 100,
            end: Some(200),
            what: "kill n1".into(),
            kind: "kill".into(),
            nodes: vec!["n1".into()],
        };
        DurabilityChecker
            .check(&CheckInput {
                history: History { events },
                faults: vec![kill],
                ..Default::default()
            })
            .verdict
    }

    #[test]
    fn synced_survives_and_unsynced_does_not() {
        assert_eq!(
            check(&[(0, 0, 10), (1, 0, 20), (0, 1, 300)]),
            VerdictKind::Valid
        );
        // The synced record of the first incarnation was lost.
        assert_eq!(check(&[(0, 0, 300)]), VerdictKind::Invalid);
        // An unsynced record survived.
        assert_eq!(check(&[(1, 1, 300)]), VerdictKind::Invalid);
        // A count from the future.
        assert_eq!(check(&[(0, 1, 10)]), VerdictKind::Invalid);
    }
}
