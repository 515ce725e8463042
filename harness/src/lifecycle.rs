//! The lifecycle of a run, the same in both modes: what every run does, in order, and
//! the pieces both modes share. The free-running mode ([`crate::free`]) and the lockstep
//! mode ([`crate::lockstep`]) each drive this sequence their own way; [`crate::run`]
//! picks the mode.
//!
//! 1. The configuration is validated ([`crate::config`]); the run directory gets
//!    `run.json` and `schedule.json` ([`open_run_dir`]).
//! 2. Nodes are spawned and each is sent `init` once it says hello; a node that has not
//!    answered within [`STARTUP_TIMEOUT_MS`] makes the run end `unknown` ("did not start").
//! 3. Clients issue ops open loop for the time limit while the nemesis applies the
//!    schedule; then they stop issuing, and ops in flight finish or time out.
//! 4. End of the faulty part: the schedule's remaining events up to the time limit, then
//!    the final heal (every fault lifted, killed nodes restarted, paused ones resumed).
//!    The quiet window (`recovery_ms`) starts here.
//! 5. The workload's final ops go to every node that is up, and are retried while they
//!    do not settle.
//! 6. Teardown (every process reaped within [`TEARDOWN_GRACE_MS`]), then the history is
//!    read back and judged and the files written ([`crate::verdict`]); the summary lines
//!    are [`crate::verdict::summary_text`].
//!
//! Ctrl-C jumps to teardown; what was recorded is still checked.

use std::path::PathBuf;

use workloads::VerdictKind;

use crate::config::{RunConfig, RunMode};
use crate::nemesis::Schedule;
use crate::results;

/// How long nodes have to connect and answer `init`.
pub const STARTUP_TIMEOUT_MS: u64 = 10_000;
/// How long nodes have to exit after SIGTERM before SIGKILL.
pub const TEARDOWN_GRACE_MS: u64 = 1_000;

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The overall verdict.
    pub verdict: VerdictKind,
    /// A few lines for humans.
    pub summary: String,
}

/// Creates the run's directory with `run.json` and `schedule.json`, and says where it is
/// (unless the run is one of a batch). Returns the run id and the directory.
pub fn open_run_dir(cfg: &RunConfig, schedule: &Schedule) -> anyhow::Result<(String, PathBuf)> {
    let (run_id, dir) = results::create_run_dir(&cfg.results_dir, &cfg.workload, cfg.seed)?;
    results::write_json(&dir.join("run.json"), cfg)?;
    results::write_text(&dir.join("schedule.json"), &schedule.to_json())?;
    if !cfg.silent {
        let mode = match cfg.mode {
            RunMode::Free => "",
            RunMode::Lockstep => ", lockstep",
        };
        eprintln!(
            "squall: run {run_id} (seed {}{mode}) in {}",
            cfg.seed,
            dir.display()
        );
    }
    Ok((run_id, dir))
}
