//! Named fault plans: schedules aimed at one mutant's weakness by a trigger or a message
//! type, which a seed's random draw would rarely produce. `squall plan NAME` writes one
//! as a `schedule.json` for `squall run --schedule` (the command is [`crate::plan`]; this
//! module only makes the text); the teeth matrix, the mutant sweep and the CI tests all
//! take them from here.
//!
//! A plan names the bundled `paxos`'s messages (`decided`, `promise`); against a node
//! with other names it would silently match nothing, so `--msg-type decided=decide`
//! (repeatable) renames the message types a plan aims at.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::Schedule;
use crate::UsageError;

/// The plans, with what each is for.
pub const PLANS: &[(&str, &str)] = &[
    (
        "decided-late",
        "5 nodes; every `decided` message arrives 300 ms late, so a second proposer for a \
         decided instance runs a ballot and must adopt the value it finds accepted",
    ),
    (
        "accepts-lossy",
        "5 nodes; `accept` and `decided` messages are dropped with probability 0.3 and the \
         rest arrive 50-350 ms late, so ballots end half-accepted, overlap, and leave \
         acceptors holding different values from different ballots",
    ),
    (
        "bridge-accept-lost",
        "3 nodes; n1 and n3 cut apart, every `accept` from n1 to n2 lost and every \
         `decided` 300 ms late: n1's ballots leave its value on n1 alone while n3 gets \
         another chosen through n2, so n2's next ballot hears two accepted values",
    ),
    (
        "bridge-promise-crash",
        "3 nodes; n1 and n3 cut apart, so n2 is in every quorum, and n2 is SIGKILLed and \
         restarted the moment it sends every other promise to n3: an acceptor that did not \
         sync that promise forgets it (seed 003's split decision)",
    ),
];

/// How long a plan's run lasts, how often its triggered faults repeat, and what the
/// target node calls the messages the plan aims at.
#[derive(Debug, Clone)]
pub struct PlanOpts {
    /// The run's time limit (ms).
    pub time_limit_ms: u64,
    /// The quiet window after it (ms).
    pub recovery_ms: u64,
    /// How many times a triggered fault is armed (kill/restart pairs).
    pub repeats: u32,
    /// Bundled message type -> the target's name for it (`decided` -> `decide`); types
    /// not listed keep their bundled names.
    pub msg_types: BTreeMap<String, String>,
}

impl Default for PlanOpts {
    fn default() -> Self {
        PlanOpts {
            time_limit_ms: 5_000,
            recovery_ms: 5_000,
            repeats: 200,
            msg_types: BTreeMap::new(),
        }
    }
}

impl PlanOpts {
    /// The target's name for the bundled message type `bundled`.
    fn ty<'a>(&'a self, bundled: &'a str) -> &'a str {
        self.msg_types.get(bundled).map_or(bundled, String::as_str)
    }
}

/// Parses `--msg-type BUNDLED=THEIRS`.
pub fn parse_msg_type(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((ours, theirs)) if !ours.is_empty() && !theirs.is_empty() => {
            Ok((ours.to_string(), theirs.to_string()))
        }
        _ => Err(format!(
            "expected BUNDLED=THEIRS (e.g. decided=decide), got {text:?}"
        )),
    }
}

/// The plan `name` as `schedule.json` text, as the schedule parser reads and writes it.
pub fn plan(name: &str, opts: &PlanOpts) -> Result<String, UsageError> {
    let aims: &[&str] = match name {
        "decided-late" => &["decided"],
        "accepts-lossy" | "bridge-accept-lost" => &["accept", "decided"],
        "bridge-promise-crash" => &["promise"],
        _ => &[],
    };
    if let Some(other) = opts.msg_types.keys().find(|t| !aims.contains(&t.as_str())) {
        if !aims.is_empty() {
            return Err(UsageError(format!(
                "--msg-type {other}=...: plan '{name}' aims at no '{other}' messages (it aims at: {})",
                aims.join(", ")
            )));
        }
    }
    let (nodes, events): (usize, Vec<Value>) = match name {
        "decided-late" => (
            5,
            vec![
                json!({"id": 1, "at_ms": 0, "action": "link_faults", "links": "all",
                "delay": {"dist": "constant", "base_ms": 300, "jitter_ms": 0},
                "msg_types": [opts.ty("decided")]}),
            ],
        ),
        "accepts-lossy" => (
            5,
            vec![
                json!({"id": 1, "at_ms": 0, "action": "link_faults", "links": "all",
                "drop": 0.3,
                "delay": {"dist": "uniform", "base_ms": 50, "jitter_ms": 300},
                "msg_types": [opts.ty("accept"), opts.ty("decided")]}),
            ],
        ),
        "bridge-accept-lost" => {
            let late: Vec<[&str; 2]> = vec![["n2", "n1"], ["n2", "n3"], ["n3", "n2"]];
            (
                3,
                vec![
                    json!({"id": 1, "at_ms": 0, "action": "partition",
                    "shape": "bridge n2", "cut": [["n1", "n3"], ["n3", "n1"]]}),
                    json!({"id": 2, "at_ms": 0, "action": "link_faults",
                    "links": [["n1", "n2"]], "drop": 1.0,
                    "msg_types": [opts.ty("accept")]}),
                    json!({"id": 3, "at_ms": 0, "action": "link_faults", "links": late,
                    "delay": {"dist": "constant", "base_ms": 300, "jitter_ms": 0},
                    "msg_types": [opts.ty("decided")]}),
                ],
            )
        }
        "bridge-promise-crash" => {
            let mut events = vec![json!({"id": 1, "at_ms": 0, "action": "partition",
                "shape": "bridge n2", "cut": [["n1", "n3"], ["n3", "n1"]]})];
            for k in 0..opts.repeats {
                let on = json!({"msg_type": opts.ty("promise"), "src": "n2", "dest": "n3",
                    "nth": 1 + 2 * k});
                events.push(json!({"id": 2 * k + 2, "on": on, "action": "kill",
                    "node": "n2"}));
                events.push(json!({"id": 2 * k + 3, "on": on, "action": "restart",
                    "node": "n2"}));
            }
            (3, events)
        }
        other => {
            let names: Vec<&str> = PLANS.iter().map(|(n, _)| *n).collect();
            return Err(UsageError(format!(
                "unknown plan '{other}' (valid: {})",
                names.join(", ")
            )));
        }
    };
    let ids: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    let text = json!({
        "nodes": ids,
        "time_limit_ms": opts.time_limit_ms,
        "recovery_ms": opts.recovery_ms,
        "events": events,
    })
    .to_string();
    let schedule = Schedule::from_json(&text)
        .map_err(|e| UsageError(format!("plan '{name}' does not parse: {e}")))?;
    Ok(schedule.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_parses_with_its_nodes() {
        for (name, _) in PLANS {
            let s = Schedule::from_json(&plan(name, &PlanOpts::default()).unwrap()).unwrap();
            let expected = if name.starts_with("bridge-") { 3 } else { 5 };
            assert_eq!(s.nodes.len(), expected, "{name}");
            assert_eq!(s.time_limit_ms, 5_000);
        }
        let short = PlanOpts {
            repeats: 10,
            ..PlanOpts::default()
        };
        let s = Schedule::from_json(&plan("bridge-promise-crash", &short).unwrap()).unwrap();
        assert_eq!(s.events.len(), 1 + 2 * 10);
    }

    #[test]
    fn msg_types_rename_what_a_plan_aims_at() {
        let mut opts = PlanOpts {
            repeats: 1,
            ..PlanOpts::default()
        };
        opts.msg_types
            .insert("decided".to_string(), "decide".to_string());
        let late = plan("decided-late", &opts).unwrap();
        assert!(late.contains("\"decide\""), "{late}");
        assert!(!late.contains("\"decided\""), "{late}");
        let e = plan("bridge-promise-crash", &opts).unwrap_err();
        assert!(e.0.contains("aims at: promise"), "{}", e.0);
        opts.msg_types.clear();
        opts.msg_types
            .insert("promise".to_string(), "p1b".to_string());
        let bridge = plan("bridge-promise-crash", &opts).unwrap();
        assert!(bridge.contains("\"p1b\"") && !bridge.contains("\"promise\""));
        assert_eq!(
            parse_msg_type("decided=decide"),
            Ok(("decided".to_string(), "decide".to_string()))
        );
        assert!(parse_msg_type("decided").is_err());
        assert!(parse_msg_type("=x").is_err());
    }

    #[test]
    fn an_unknown_plan_names_the_valid_ones() {
        let e = plan("nope", &PlanOpts::default()).unwrap_err();
        assert!(
            e.0.contains("decided-late, accepts-lossy, bridge-accept-lost, bridge-promise-crash"),
            "{}",
            e.0
        );
    }
}
