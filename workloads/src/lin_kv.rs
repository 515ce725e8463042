//! `lin-kv`: a small linearizable key-value store, Maelstrom's `lin-kv` workload.
//!
//! Clients `read {key}` (→ `read_ok {value}`), `write {key, value}` (→ `write_ok`) and
//! `cas {key, from, to}` (→ `cas_ok`) over a few keys (`--instances`, default
//! [`KEYS_DEFAULT`]). A node answers a read or CAS of a key never written with error 20
//! (key-does-not-exist) and a CAS whose `from` does not match with error 22
//! (precondition-failed): both are definite, the op did not change the store.
//!
//! Every written value is fresh (a counter from 1, shared by writes and CAS targets), so
//! a read names the one write it saw. A CAS expects the value the generator last
//! wrote to that key, so many of them succeed and the ones that do not are observations.
//!
//! **Checkers.** [`KvLinearizability`] runs lincheck's `kv` model (a CAS register per
//! key, initially nil) on the history: `info` ops may have taken effect or not, a read
//! answered with error 20 read nil, and a CAS answered with 20 or 22 saw a value other
//! than its `from` (lincheck's `CompareFailed`). An invalid verdict names the key and
//! the minimal failing window. [`FinalReads`] asks that every node alive at the end
//! answered a read of every key in the quiet window (the final reads, which the
//! linearizability checker judges with everything else): a replicated state machine
//! that stopped applying commands fails it.

use std::collections::{BTreeMap, BTreeSet};

use lincheck::{ModelKind, OpOutcome};
use proto::ops::ClientOp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::history::{Event, EventType, Outcome};
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::{Workload, WorkloadOpts};

/// Keys when `--instances` is not given.
pub const KEYS_DEFAULT: u64 = 8;
/// Percent of ops that are reads; the rest split between writes and CAS.
pub const READ_PERCENT: u32 = 40;
/// Percent of ops that are writes (CAS takes what reads and writes leave).
pub const WRITE_PERCENT: u32 = 35;
/// States the linearizability search may explore before it says `unknown`.
pub const STATES_MAX: u64 = 50_000_000;

const _: () = assert!(READ_PERCENT + WRITE_PERCENT < 100, "some ops must be CAS");

/// The lin-kv op generator.
#[derive(Debug, Clone)]
pub struct LinKvWorkload {
    keys: u64,
    /// The last value the generator wrote (or CAS'd to) per key.
    last: BTreeMap<u64, u64>,
    value_last: u64,
}

impl LinKvWorkload {
    /// A generator over `opts.instances` keys (zero is taken as one).
    pub fn new(opts: &WorkloadOpts) -> Self {
        LinKvWorkload {
            keys: opts.instances.max(1),
            last: BTreeMap::new(),
            value_last: 0,
        }
    }

    fn fresh(&mut self) -> u64 {
        self.value_last += 1;
        self.value_last
    }
}

impl Workload for LinKvWorkload {
    fn name(&self) -> &'static str {
        "lin-kv"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        let key = rng.gen_range(0..self.keys);
        let roll = rng.gen_range(0..100);
        if roll < READ_PERCENT {
            return ClientOp::Read { key };
        }
        let to = self.fresh();
        let from = self.last.insert(key, to);
        match from {
            Some(from) if roll >= READ_PERCENT + WRITE_PERCENT => ClientOp::Cas { key, from, to },
            _ => ClientOp::Write { key, value: to },
        }
    }

    /// A read of every key at every live node.
    fn final_ops(&self) -> Vec<ClientOp> {
        (0..self.keys).map(|key| ClientOp::Read { key }).collect()
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(KvLinearizability), Box::new(FinalReads)]
    }

    fn default_algorithm(&self) -> &'static str {
        "raft"
    }

    fn instances_default(&self) -> Option<u64> {
        Some(KEYS_DEFAULT)
    }
}

/// The code of a definite error as the history records it (`error 20: ...`).
fn error_code(error: Option<&str>) -> Option<u32> {
    let rest = error?.strip_prefix("error ")?;
    rest.split(':').next()?.trim().parse().ok()
}

/// Whether an error code says the key was missing or the compare failed: the op ran
/// and observed the store without changing it.
fn observed_miss(code: Option<u32>) -> bool {
    matches!(code, Some(20) | Some(22))
}

/// The history's kv ops for lincheck: reads answered 20 read nil, CAS answered 20 or
/// 22 failed their compare. Other events pass through as recorded.
pub fn kv_history(input: &CheckInput) -> Result<lincheck::History, String> {
    let mut compare_failed = BTreeSet::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut invokes = 0usize;
    let events = input
        .history
        .events
        .iter()
        .filter(|e| matches!(e.f.as_str(), "read" | "write" | "cas"))
        .map(|e| {
            let mut read_nil = false;
            match e.ty {
                EventType::Invoke => {
                    open.insert(e.process, invokes);
                    invokes += 1;
                }
                EventType::Fail => {
                    let code = error_code(e.error.as_deref());
                    match e.f.as_str() {
                        "read" => read_nil = code == Some(20),
                        "cas" if observed_miss(code) => {
                            if let Some(op) = open.get(&e.process) {
                                compare_failed.insert(*op);
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            KvEvent { event: e, read_nil }
        });
    let mut history = lincheck::parse::squall::from_events(events).map_err(|e| e.to_string())?;
    for i in compare_failed {
        if let Some(op) = history.ops.get_mut(i) {
            op.outcome = OpOutcome::CompareFailed;
        }
    }
    Ok(history)
}

/// An event as the kv model reads it: a read answered 20 (key-does-not-exist) is an
/// `ok` read of nil.
struct KvEvent<'a> {
    event: &'a Event,
    read_nil: bool,
}

impl lincheck::parse::squall::EventView for KvEvent<'_> {
    fn process(&self) -> u64 {
        self.event.process
    }
    fn ty(&self) -> &str {
        if self.read_nil {
            "ok"
        } else {
            self.event.ty.name()
        }
    }
    fn f(&self) -> &str {
        &self.event.f
    }
    fn field(&self, name: &str) -> Option<&Value> {
        match name {
            "value" if self.read_nil => Some(&Value::Null),
            _ => self.event.value.get(name),
        }
    }
    fn time(&self) -> u64 {
        self.event.time
    }
}

/// Linearizability of the whole store, one CAS register per key.
pub struct KvLinearizability;

impl Checker for KvLinearizability {
    fn name(&self) -> &'static str {
        "linearizability"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name();
        let history = match kv_history(input) {
            Ok(h) => h,
            Err(e) => {
                return Verdict::unknown(
                    name,
                    format!("the history cannot be read as kv ops: {e}"),
                    json!({"property": "linearizability"}),
                )
            }
        };
        crate::linearizable::judge(
            name,
            &history,
            crate::linearizable::Model {
                kind: ModelKind::Kv,
                label: "kv",
                unit: "key",
                states_max: STATES_MAX,
            },
            |ops, keys| {
                format!("every key's reads, writes and cas linearize ({ops} ops, {keys} keys)")
            },
        )
    }
}

/// Every live node answers a read of every key in the quiet window.
pub struct FinalReads;

impl Checker for FinalReads {
    fn name(&self) -> &'static str {
        "final-reads"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name();
        let Some(quiet_from) = input.quiet_from else {
            return Verdict::unknown(
                name,
                "no quiet window: whether the store still serves was not judged",
                json!({"property": "termination"}),
            );
        };
        // node -> keys it answered in the quiet window; keys asked there.
        let mut answered: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        let mut asked: BTreeSet<u64> = BTreeSet::new();
        for op in input.history.ops() {
            if op.f != "read" || op.invoke_time < quiet_from {
                continue;
            }
            let (Some(node), Some(key)) = (op.node.as_deref(), op.input["key"].as_u64()) else {
                continue;
            };
            asked.insert(key);
            if op.outcome == Outcome::Ok {
                answered.entry(node.to_string()).or_default().insert(key);
            }
        }
        // Reads answered 20 are `fail` in the history: count them from the events.
        for e in &input.history.events {
            if e.f == "read"
                && e.ty == EventType::Fail
                && e.time >= quiet_from
                && error_code(e.error.as_deref()) == Some(20)
            {
                if let (Some(node), Some(key)) = (e.node.as_deref(), e.value["key"].as_u64()) {
                    answered.entry(node.to_string()).or_default().insert(key);
                }
            }
        }
        if asked.is_empty() {
            return Verdict::unknown(
                name,
                "no final reads in the quiet window",
                json!({"property": "termination"}),
            );
        }
        let mut missing: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for node in &input.live_nodes {
            let got = answered.get(node);
            let keys: Vec<u64> = asked
                .iter()
                .filter(|k| got.is_none_or(|g| !g.contains(k)))
                .copied()
                .collect();
            if !keys.is_empty() {
                missing.insert(node.clone(), keys);
            }
        }
        if missing.is_empty() {
            Verdict::valid(
                name,
                format!(
                    "every live node ({}) answered a read of every key ({}) in the quiet window",
                    input.live_nodes.len(),
                    asked.len()
                ),
            )
        } else {
            let (node, keys) = missing.iter().next().expect("not empty");
            Verdict::invalid(
                name,
                format!(
                    "no progress: {} live nodes never answered a final read (first: {node}, keys {keys:?})",
                    missing.len()
                ),
                json!({"property": "termination", "missing": missing}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, History};
    use crate::verdict::VerdictKind;

    /// `(process, type, f, value, node, error)` rows to a history, times in row order.
    type Row<'a> = (u64, EventType, &'a str, Value, &'a str, Option<&'a str>);

    fn input(rows: &[Row]) -> CheckInput {
        let events = rows
            .iter()
            .enumerate()
            .map(|(i, (process, ty, f, value, node, error))| Event {
                error: error.map(str::to_string),
                ..Event::row(i, *process, *ty, f, value, 10 * (i as u64 + 1)).on(node)
            })
            .collect();
        CheckInput {
            history: History { events },
            quiet_from: Some(1_000),
            live_nodes: vec!["n1".into()],
            ..CheckInput::default()
        }
    }

    use EventType::{Fail, Invoke, Ok as Done};

    #[test]
    fn a_read_of_an_overwritten_value_names_its_key() {
        let v = KvLinearizability.check(&input(&[
            (
                1,
                Invoke,
                "write",
                json!({"key": 3, "value": 1}),
                "n1",
                None,
            ),
            (1, Done, "write", json!({"key": 3, "value": 1}), "n1", None),
            (
                1,
                Invoke,
                "write",
                json!({"key": 3, "value": 2}),
                "n1",
                None,
            ),
            (1, Done, "write", json!({"key": 3, "value": 2}), "n1", None),
            (2, Invoke, "read", json!({"key": 3}), "n2", None),
            (2, Done, "read", json!({"key": 3, "value": 1}), "n2", None),
        ]));
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
        assert!(v.reason.contains("key 3"), "{}", v.reason);
    }

    #[test]
    fn codes_20_and_22_are_observations_of_the_store() {
        // A read answered 20 after a write completed has no linearization; so has a CAS
        // refused with 22 although the key holds its `from`.
        for (f, value, error) in [
            ("read", json!({"key": 0}), "error 20: key 0 does not exist"),
            ("cas", json!({"key": 0, "from": 5, "to": 6}), "error 22: no"),
        ] {
            let v = KvLinearizability.check(&input(&[
                (
                    1,
                    Invoke,
                    "write",
                    json!({"key": 0, "value": 5}),
                    "n1",
                    None,
                ),
                (1, Done, "write", json!({"key": 0, "value": 5}), "n1", None),
                (2, Invoke, f, value.clone(), "n1", None),
                (2, Fail, f, value, "n1", Some(error)),
            ]));
            assert_eq!(v.verdict, VerdictKind::Invalid, "{f}: {}", v.reason);
        }
    }

    #[test]
    fn a_live_node_without_a_final_read_fails_final_reads() {
        let mut i = input(&[
            (1, Invoke, "read", json!({"key": 0}), "n1", None),
            (1, Done, "read", json!({"key": 0, "value": 5}), "n1", None),
        ]);
        i.quiet_from = Some(0);
        assert_eq!(FinalReads.check(&i).verdict, VerdictKind::Valid);
        i.live_nodes.push("n2".into());
        let v = FinalReads.check(&i);
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
        assert_eq!(v.evidence["property"], "termination");
    }
}
