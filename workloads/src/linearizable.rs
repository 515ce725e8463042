//! Linearizability of the write-once register, by the `lincheck` engine.
//!
//! The consensus checker judges instances by the properties of consensus, from client
//! replies and node reports together. This one asks a different question of the client
//! history alone: is there one order of every `propose` and `read`, each taking effect
//! between its invoke and its completion, that a single write-once register would
//! answer the same way? It catches what agreement alone does not, e.g. a read that
//! returns null after a propose to the same instance had already returned its decided
//! value. Ops with no reply (`info`) may have taken effect or not.
//!
//! Reads are local in this workload: `read` returns what the asked node knows, and null
//! means "this node has not learned a decision", not "nothing is decided" (a node cut off
//! by a partition cannot know). So a null read says nothing about the register and is left
//! out; every read that returns a value, and every propose, is judged. A read invoked
//! with `"quorum": true` is a linearizable read: a null answer from it is judged too.
//! The rule lives in `lincheck::parse::squall::write_once_from_events`, which
//! `squall check` uses as well, so a run and a later `squall check` of its
//! `history.jsonl` agree. A value read before
//! anyone proposed it, or a read of one value and a propose answered with another, has no
//! linearization.
//!
//! The check is bounded by explored states, not by time, so the verdict is a function
//! of the history only; past the bound it says `unknown`.

use lincheck::{CheckOptions, ModelKind, Verdict as LinVerdict};
use serde_json::json;

use crate::verdict::{CheckInput, Checker, Verdict};

/// States the search may explore before it gives up with `unknown`.
pub const STATES_MAX: u64 = 20_000_000;

/// Linearizability of the write-once register, per instance.
pub struct WriteOnceLinearizability;

impl Checker for WriteOnceLinearizability {
    fn name(&self) -> &'static str {
        "linearizability"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name();
        let events = input
            .history
            .events
            .iter()
            .filter(|e| e.f == "propose" || e.f == "read");
        let (history, null_reads) = match lincheck::parse::squall::write_once_from_events(events) {
            Ok(h) => (h.history, h.local_null_reads),
            Err(e) => {
                return Verdict::unknown(
                    name,
                    format!("the history cannot be read as write-once ops: {e}"),
                    json!({"property": "linearizability"}),
                )
            }
        };
        judge(
            name,
            &history,
            Model {
                kind: ModelKind::WriteOnce,
                label: "write-once",
                unit: "instance",
                states_max: STATES_MAX,
            },
            |ops, instances| {
                format!(
                    "every instance's proposes and reads linearize ({ops} ops, {instances} \
                     instances; {null_reads} null reads not judged)"
                )
            },
        )
    }
}

/// The lincheck model a checker runs and how its verdicts name things.
pub(crate) struct Model {
    pub(crate) kind: ModelKind,
    /// The model in messages: `write-once`, `kv`.
    pub(crate) label: &'static str,
    /// What one partition is: `instance`, `key`.
    pub(crate) unit: &'static str,
    /// States the search may explore before it gives up with `unknown`.
    pub(crate) states_max: u64,
}

/// Runs lincheck on `history` and turns its outcome into checker `name`'s verdict:
/// `valid(ops, partitions)` says why a valid history is valid; an invalid one names the
/// first failing partition, the op no order explains and the minimal failing window.
pub(crate) fn judge(
    name: &'static str,
    history: &lincheck::History,
    model: Model,
    valid: impl FnOnce(usize, usize) -> String,
) -> Verdict {
    let opts = CheckOptions {
        threads: 1,
        states_max: model.states_max,
        time_ms_max: None,
        ..CheckOptions::default()
    };
    let outcome = match lincheck::check(history, model.kind, &opts) {
        Ok(o) => o,
        Err(e) => {
            return Verdict::unknown(
                name,
                format!("an op the {} model cannot interpret: {e}", model.label),
                json!({"property": "linearizability"}),
            )
        }
    };
    match outcome.verdict {
        LinVerdict::Valid => {
            Verdict::valid(name, valid(outcome.stats.ops, outcome.stats.partitions))
        }
        LinVerdict::Invalid { explanation } => {
            let first = explanation.partitions.first();
            let key = first.map(|p| p.key.to_string()).unwrap_or_default();
            let stuck = first
                .and_then(|p| p.stuck.as_ref())
                .map(|s| format!("; no order explains {}", s.op))
                .unwrap_or_default();
            let window = explanation
                .window
                .as_ref()
                .map(|w| {
                    let ops: Vec<&str> = w.ops.iter().map(|o| o.op.as_str()).collect();
                    format!("; minimal failing window: {}", ops.join(", "))
                })
                .unwrap_or_default();
            let unit = model.unit;
            Verdict::invalid(
                name,
                format!(
                    "linearizability violated: {unit} {key}{stuck}{window} ({} {unit}s fail)",
                    explanation.partitions.len()
                ),
                json!({"property": "linearizability", unit: key, "explanation": explanation}),
            )
        }
        LinVerdict::Unknown { reason, partial } => Verdict::unknown(
            name,
            format!("linearizability undecided: {reason}"),
            json!({"property": "linearizability", "partial": partial}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History};
    use crate::verdict::VerdictKind;

    /// `(process, type, f, value, time)` rows to a history.
    fn history(rows: &[(u64, EventType, &str, serde_json::Value, u64)]) -> CheckInput {
        let events = rows
            .iter()
            .enumerate()
            .map(|(i, (process, ty, f, value, time))| Event::row(i, *process, *ty, f, value, *time))
            .collect();
        CheckInput {
            history: History { events },
            ..CheckInput::default()
        }
    }

    use EventType::{Invoke, Ok as Done};

    #[test]
    fn racing_proposes_answered_alike_linearize_and_null_reads_are_not_judged() {
        let input = history(&[
            (1, Invoke, "propose", json!({"key": 0, "value": 1}), 10),
            (2, Invoke, "propose", json!({"key": 0, "value": 2}), 11),
            (1, Done, "propose", json!({"key": 0, "value": 2}), 20),
            (2, Done, "propose", json!({"key": 0, "value": 2}), 21),
            // A node that has not learned the decision yet.
            (3, Invoke, "read", json!({"key": 0}), 30),
            (3, Done, "read", json!({"key": 0, "value": null}), 31),
            (3, Invoke, "read", json!({"key": 0}), 40),
            (3, Done, "read", json!({"key": 0, "value": 2}), 41),
        ]);
        let v = WriteOnceLinearizability.check(&input);
        assert_eq!(v.verdict, VerdictKind::Valid, "{}", v.reason);
        assert!(v.reason.contains("1 null reads not judged"), "{}", v.reason);
    }

    #[test]
    fn two_decided_values_have_no_linearization() {
        let input = history(&[
            (1, Invoke, "propose", json!({"key": 7, "value": 1}), 10),
            (1, Done, "propose", json!({"key": 7, "value": 1}), 20),
            (2, Invoke, "propose", json!({"key": 7, "value": 2}), 30),
            (2, Done, "propose", json!({"key": 7, "value": 2}), 40),
        ]);
        let v = WriteOnceLinearizability.check(&input);
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
        assert!(v.reason.contains("instance 7"), "{}", v.reason);
        assert_eq!(v.evidence["property"], "linearizability");
    }

    #[test]
    fn a_value_read_before_anyone_proposed_it_has_no_linearization() {
        let input = history(&[
            (1, Invoke, "read", json!({"key": 3}), 10),
            (1, Done, "read", json!({"key": 3, "value": 5}), 20),
            (2, Invoke, "propose", json!({"key": 3, "value": 5}), 30),
            (2, Done, "propose", json!({"key": 3, "value": 5}), 40),
        ]);
        let v = WriteOnceLinearizability.check(&input);
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
    }

    #[test]
    fn a_null_local_read_after_a_decision_is_left_out_but_a_null_quorum_read_is_judged() {
        for (quorum, expected) in [(false, VerdictKind::Valid), (true, VerdictKind::Invalid)] {
            let read = if quorum {
                json!({"key": 3, "quorum": true})
            } else {
                json!({"key": 3})
            };
            let input = history(&[
                (1, Invoke, "propose", json!({"key": 3, "value": 7}), 10),
                (1, Done, "propose", json!({"key": 3, "value": 7}), 20),
                (2, Invoke, "read", read, 30),
                (2, Done, "read", json!({"key": 3, "value": null}), 40),
            ]);
            let v = WriteOnceLinearizability.check(&input);
            assert_eq!(v.verdict, expected, "quorum {quorum}: {}", v.reason);
        }
    }
}
