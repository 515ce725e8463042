//! Named fault plans: schedules aimed at one mutant's weakness by a trigger or a message
//! type, which a seed's random draw would rarely produce. `squall plan NAME` writes one
//! as a `schedule.json` for `squall run --schedule`; the teeth matrix, the mutant sweep
//! and the CI tests all take them from here.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::Schedule;
use crate::cli::parse_duration_ms;
use crate::UsageError;

/// The plans, with what each is for.
pub const PLANS: &[(&str, &str)] = &[
    (
        "decided-late",
        "5 nodes; every `decided` message arrives 300 ms late, so a second proposer for a \
         decided instance runs a ballot and must adopt the value it finds accepted",
    ),
    (
        "bridge-promise-crash",
        "3 nodes; n1 and n3 cut apart, so n2 is in every quorum, and n2 is SIGKILLed and \
         restarted the moment it sends every other promise to n3: an acceptor that did not \
         sync that promise forgets it (seed 003's split decision)",
    ),
];

/// How long a plan's run lasts, and how often its triggered faults repeat.
#[derive(Debug, Clone, Copy)]
pub struct PlanOpts {
    /// The run's time limit (ms).
    pub time_limit_ms: u64,
    /// The quiet window after it (ms).
    pub recovery_ms: u64,
    /// How many times a triggered fault is armed (kill/restart pairs).
    pub repeats: u32,
}

impl Default for PlanOpts {
    fn default() -> Self {
        PlanOpts {
            time_limit_ms: 5_000,
            recovery_ms: 5_000,
            repeats: 200,
        }
    }
}

/// The plan `name` as `schedule.json` text, as the schedule parser reads and writes it.
pub fn plan(name: &str, opts: PlanOpts) -> Result<String, UsageError> {
    let (nodes, events): (usize, Vec<Value>) = match name {
        "decided-late" => (
            5,
            vec![
                json!({"id": 1, "at_ms": 0, "action": "link_faults", "links": "all",
                "delay": {"dist": "constant", "base_ms": 300, "jitter_ms": 0},
                "msg_types": ["decided"]}),
            ],
        ),
        "bridge-promise-crash" => {
            let mut events = vec![json!({"id": 1, "at_ms": 0, "action": "partition",
                "shape": "bridge n2", "cut": [["n1", "n3"], ["n3", "n1"]]})];
            for k in 0..opts.repeats {
                let on = json!({"msg_type": "promise", "src": "n2", "dest": "n3",
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

/// `squall plan` options.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// The plan (`squall plan --list` names them).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the plans and what each is for.
    #[arg(long)]
    pub list: bool,
    /// The run's time limit.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub time_limit: u64,
    /// The quiet window after the time limit.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub recovery_time: u64,
    /// How many times a triggered fault is armed.
    #[arg(long, default_value_t = 200)]
    pub repeats: u32,
    /// Write the plan here and print the path (default: print the plan).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Prints the plan list, the plan, or writes it to `--out` and prints the path.
pub fn plan_cmd(args: &PlanArgs) -> anyhow::Result<u8> {
    let Some(name) = args.name.as_deref().filter(|_| !args.list) else {
        for (name, what) in PLANS {
            println!("{name:<22} {what}");
        }
        return Ok(0);
    };
    let opts = PlanOpts {
        time_limit_ms: args.time_limit,
        recovery_ms: args.recovery_time,
        repeats: args.repeats,
    };
    let text = plan(name, opts)?;
    match &args.out {
        Some(path) => {
            crate::results::write_text(path, &text)?;
            println!("{}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_parses_with_its_nodes() {
        for (name, _) in PLANS {
            let s = Schedule::from_json(&plan(name, PlanOpts::default()).unwrap()).unwrap();
            let expected = if *name == "bridge-promise-crash" {
                3
            } else {
                5
            };
            assert_eq!(s.nodes.len(), expected, "{name}");
            assert_eq!(s.time_limit_ms, 5_000);
        }
        let short = PlanOpts {
            repeats: 10,
            ..PlanOpts::default()
        };
        let s = Schedule::from_json(&plan("bridge-promise-crash", short).unwrap()).unwrap();
        assert_eq!(s.events.len(), 1 + 2 * 10);
    }

    #[test]
    fn an_unknown_plan_names_the_valid_ones() {
        let e = plan("nope", PlanOpts::default()).unwrap_err();
        assert!(
            e.0.contains("decided-late, bridge-promise-crash"),
            "{}",
            e.0
        );
    }
}
