//! Algorithm names and what they are. The harness learns this table by running
//! `squall-node --list-json`, so it never links against this crate.

use serde::Serialize;

use crate::algo::{self, Algorithm};
use crate::runtime::{self, Launch};

/// One bundled algorithm.
#[derive(Debug, Clone, Serialize)]
pub struct AlgoInfo {
    /// The name given to `--algorithm`.
    pub name: &'static str,
    /// One line: what it is and how it is expected to behave under faults.
    pub summary: &'static str,
    /// The workloads it serves.
    pub workloads: &'static [&'static str],
    /// Mutants available behind `--bug`.
    pub bugs: &'static [&'static str],
}

/// Every bundled algorithm, in the order `squall list` shows them.
pub fn algorithms() -> Vec<AlgoInfo> {
    vec![
        AlgoInfo {
            name: "echo",
            summary: "answers every echo request; the smallest end-to-end proof",
            workloads: &["echo"],
            bugs: algo::echo::Echo::BUGS,
        },
        AlgoInfo {
            name: "restart-counter",
            summary: "counts its own incarnations durably; proves sync and crash loss",
            workloads: &["echo"],
            bugs: algo::restart_counter::RestartCounter::BUGS,
        },
    ]
}

/// Runs the named algorithm under the free-running runtime until the connection closes.
pub fn run(name: &str, launch: Launch) -> anyhow::Result<()> {
    match name {
        "echo" => runtime::run::<algo::echo::Echo>(launch),
        "restart-counter" => runtime::run::<algo::restart_counter::RestartCounter>(launch),
        other => {
            let names: Vec<&str> = algorithms().iter().map(|a| a.name).collect();
            anyhow::bail!("unknown algorithm '{other}' (valid: {})", names.join(", "))
        }
    }
}
