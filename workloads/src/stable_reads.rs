//! `stable-reads`: a node never takes back what it said was decided.
//!
//! Reads in the write-once workload are local, so a null read on its own proves nothing:
//! the node asked may simply not have learned the decision yet, and the linearizability
//! checker leaves such reads out. But once a node has said that `v` is decided for an
//! instance — by answering a `read` or a `propose` with `v`, or by reporting `v`
//! decided — every later answer of that node about the instance must be `v` again. A
//! later null means the node forgot a decision (a learner kept in memory only, a restart
//! that did not recover what was synced); a later other value means it changed its mind.
//! Neither is excused by a kill and restart: the node's data dir survives those. Only an
//! amnesia restart of that node (its data dir wiped, a span of kind `amnesia`) between
//! the two answers excuses the second.
//!
//! "Later" is certain, never guessed from clocks: an op answered before another op was
//! sent comes first in a squall history file (file order is causal, timestamps may tie in
//! lockstep), and a report is earlier than an op invoked strictly after it arrived.
//!
//! The verdict names the first violation (by the later answer's position in the history)
//! and counts the violating (node, instance) pairs.

use std::collections::BTreeMap;

use proto::Report;
use serde_json::{json, Value};

use crate::history::{Op, Outcome};
use crate::verdict::{CheckInput, Checker, Verdict};

/// The checker's name and the property it names in verdicts.
const NAME: &str = "stable-reads";
/// Faults listed in a violation's evidence.
const FAULTS_MAX: usize = 16;

/// Judges that no node takes back a decision it announced.
#[derive(Debug, Clone, Copy, Default)]
pub struct StableReads;

/// Something a node said about an instance.
#[derive(Debug, Clone)]
struct Said<'a> {
    /// The value it said is decided; `None` for a null read.
    value: Option<u64>,
    /// The op that carried it, or `None` for a report.
    op: Option<&'a Op>,
    /// Arrival of the report, or the op's completion time.
    time: u64,
}

impl Said<'_> {
    /// Whether this was said before `later` (an op) was sent.
    fn before(&self, later: &Op) -> bool {
        match self.op {
            Some(op) => op.complete_index.is_some_and(|c| c < later.invoke_index),
            None => self.time < later.invoke_time,
        }
    }

    fn describe(&self) -> String {
        let value = match self.value {
            Some(v) => v.to_string(),
            None => "null".into(),
        };
        match self.op {
            Some(op) => format!(
                "{value} ({} ok, process {}, op {}, t={})",
                op.f,
                op.process,
                op.invoke_index,
                ms(self.time)
            ),
            None => format!("{value} (decided report, t={})", ms(self.time)),
        }
    }

    fn to_json(&self) -> Value {
        match self.op {
            Some(op) => json!({
                "source": op.f, "value": self.value, "process": op.process,
                "index": op.invoke_index, "invoke_time": op.invoke_time,
                "complete_time": self.time,
            }),
            None => json!({"source": "report", "value": self.value, "time": self.time}),
        }
    }
}

impl Checker for StableReads {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let ops = input.history.ops();
        // (node, key) -> what the node said, ops in invoke order, then reports.
        let mut said: BTreeMap<(&str, u64), Vec<Said>> = BTreeMap::new();
        let mut answers = 0usize;
        for op in &ops {
            if op.outcome != Outcome::Ok || !(op.f == "read" || op.f == "propose") {
                continue;
            }
            let (Some(node), Some(key)) = (
                op.node.as_deref(),
                op.input.get("key").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let value = op
                .output
                .as_ref()
                .and_then(|o| o.get("value"))
                .and_then(Value::as_u64);
            answers += 1;
            said.entry((node, key)).or_default().push(Said {
                value,
                op: Some(op),
                time: op.complete_time.unwrap_or(op.invoke_time),
            });
        }
        for r in &input.reports {
            if let Report::Decided { key, value, .. } = r.report {
                said.entry((r.node.as_str(), key)).or_default().push(Said {
                    value: Some(value),
                    op: None,
                    time: r.time,
                });
            }
        }
        let mut amnesia: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for f in input.faults.iter().filter(|f| f.kind == "amnesia") {
            for n in &f.nodes {
                amnesia.entry(n.as_str()).or_default().push(f.start);
            }
        }
        let wiped_between = |node: &str, from: u64, to: u64| {
            amnesia
                .get(node)
                .is_some_and(|ts| ts.iter().any(|&t| from <= t && t <= to))
        };

        let mut violations: Vec<(u64, Value, String)> = Vec::new();
        for ((node, key), said) in &said {
            // Each answer against the announcements made before it was asked.
            let found =
                said.iter()
                    .filter_map(|s| s.op.map(|op| (s, op)))
                    .find_map(|(later, op)| {
                        let done = op.complete_time.unwrap_or(op.invoke_time);
                        said.iter()
                            .filter(|earlier| {
                                earlier.value.is_some() && earlier.value != later.value
                            })
                            .filter(|earlier| earlier.before(op))
                            .find(|earlier| !wiped_between(node, earlier.time, done))
                            .map(|earlier| (earlier, later, op))
                    });
            let Some((earlier, later, op)) = found else {
                continue;
            };
            let after = match later.value {
                None => "later answered null: it forgot the decision".to_string(),
                Some(_) => "later answered another value".to_string(),
            };
            let done = op.complete_time.unwrap_or(op.invoke_time);
            let between = input.faults_during(earlier.time, done);
            let names: Vec<&str> = between.iter().take(4).map(|f| f.what.as_str()).collect();
            let reason = format!(
                "stable reads violated: {node} said instance {key} decided {}, and {after} \
                 with {}; faults between: {}",
                earlier.describe(),
                later.describe(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
            let evidence = json!({
                "property": NAME,
                "node": node,
                "key": key,
                "earlier": earlier.to_json(),
                "later": later.to_json(),
                "faults": between.iter().take(FAULTS_MAX).collect::<Vec<_>>(),
                "faults_total": between.len(),
            });
            violations.push((op.invoke_index, evidence, reason));
        }
        if violations.is_empty() {
            return Verdict::valid(
                NAME,
                format!(
                    "no node took back a decision ({answers} answers over {} node-instance pairs)",
                    said.len()
                ),
            );
        }
        violations.sort_by_key(|(index, _, _)| *index);
        let total = violations.len();
        let (_, mut evidence, mut reason) = violations.swap_remove(0);
        evidence["violations"] = json!(total);
        if total > 1 {
            reason.push_str(&format!("; {total} node-instance pairs in all"));
        }
        Verdict::invalid(NAME, reason, evidence)
    }
}

/// Nanoseconds as milliseconds, for reasons.
fn ms(ns: u64) -> String {
    format!("{}.{:03}ms", ns / 1_000_000, ns / 1_000 % 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History};
    use crate::verdict::{FaultSpan, TimedReport, VerdictKind};

    /// `(process, type, f, value, node, time)` rows to a history.
    fn history(rows: &[(u64, EventType, &str, Value, &str, u64)]) -> History {
        let events = rows
            .iter()
            .enumerate()
            .map(|(i, (process, ty, f, value, node, time))| {
                Event::row(i, *process, *ty, f, value, *time).on(node)
            })
            .collect();
        History { events }
    }

    use EventType::{Invoke, Ok as Done};

    fn forgetful() -> History {
        history(&[
            (
                1,
                Invoke,
                "propose",
                json!({"key": 4, "value": 9}),
                "n2",
                10,
            ),
            (1, Done, "propose", json!({"key": 4, "value": 9}), "n2", 20),
            (2, Invoke, "read", json!({"key": 4}), "n2", 30),
            (2, Done, "read", json!({"key": 4, "value": null}), "n2", 40),
        ])
    }

    #[test]
    fn a_null_read_after_the_node_answered_the_decision_is_a_violation() {
        let input = CheckInput {
            history: forgetful(),
            ..CheckInput::default()
        };
        let v = StableReads.check(&input);
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
        assert_eq!(v.evidence["property"], "stable-reads");
        assert_eq!(v.evidence["node"], "n2");
        assert_eq!(v.evidence["key"], 4);
        assert!(v.reason.contains("forgot"), "{}", v.reason);
    }

    #[test]
    fn an_amnesia_restart_in_between_excuses_it_and_a_plain_kill_does_not() {
        let span = |kind: &str| FaultSpan {
            start: 25,
            end: Some(25),
            what: format!("{kind} n2"),
            kind: kind.into(),
            nodes: vec!["n2".into()],
        };
        let mut input = CheckInput {
            history: forgetful(),
            faults: vec![span("amnesia")],
            ..CheckInput::default()
        };
        assert_eq!(StableReads.check(&input).verdict, VerdictKind::Valid);
        input.faults = vec![span("kill")];
        assert_eq!(StableReads.check(&input).verdict, VerdictKind::Invalid);
    }

    #[test]
    fn null_reads_before_learning_and_at_other_nodes_are_fine() {
        let input = CheckInput {
            history: history(&[
                (1, Invoke, "read", json!({"key": 4}), "n2", 1),
                (1, Done, "read", json!({"key": 4, "value": null}), "n2", 2),
                (
                    2,
                    Invoke,
                    "propose",
                    json!({"key": 4, "value": 9}),
                    "n2",
                    10,
                ),
                (2, Done, "propose", json!({"key": 4, "value": 9}), "n2", 20),
                (3, Invoke, "read", json!({"key": 4}), "n3", 30),
                (3, Done, "read", json!({"key": 4, "value": null}), "n3", 40),
                (4, Invoke, "read", json!({"key": 4}), "n2", 50),
                (4, Done, "read", json!({"key": 4, "value": 9}), "n2", 60),
            ]),
            ..CheckInput::default()
        };
        let v = StableReads.check(&input);
        assert_eq!(v.verdict, VerdictKind::Valid, "{}", v.reason);
    }

    #[test]
    fn a_read_concurrent_with_the_announcement_is_not_held_to_it() {
        // The read was sent before the propose returned: it may have been answered first.
        let input = CheckInput {
            history: history(&[
                (
                    1,
                    Invoke,
                    "propose",
                    json!({"key": 4, "value": 9}),
                    "n2",
                    10,
                ),
                (2, Invoke, "read", json!({"key": 4}), "n2", 12),
                (1, Done, "propose", json!({"key": 4, "value": 9}), "n2", 20),
                (2, Done, "read", json!({"key": 4, "value": null}), "n2", 21),
            ]),
            ..CheckInput::default()
        };
        assert_eq!(StableReads.check(&input).verdict, VerdictKind::Valid);
    }

    #[test]
    fn a_decided_report_binds_the_reporting_node() {
        let input = CheckInput {
            history: history(&[
                (1, Invoke, "read", json!({"key": 1}), "n3", 100),
                (1, Done, "read", json!({"key": 1, "value": 7}), "n3", 110),
            ]),
            reports: vec![TimedReport {
                time: 50,
                made: None,
                node: "n3".into(),
                report: Report::Decided {
                    key: 1,
                    value: 6,
                    rounds: None,
                },
            }],
            ..CheckInput::default()
        };
        let v = StableReads.check(&input);
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.reason);
        assert!(v.reason.contains("another value"), "{}", v.reason);
    }
}
