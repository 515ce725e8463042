//! The lifecycle of a run, the same in both modes: what every run does, in order, and
//! the pieces both modes share. The free-running mode ([`crate::free`]) and the lockstep
//! mode ([`crate::lockstep`]) each drive this sequence their own way; [`crate::run`]
//! picks the mode.
//!
//! 1. The configuration is validated ([`crate::config`]); the run directory gets
//!    `run.json` and `schedule.json` ([`open_run_dir`]).
//! 2. Nodes are spawned and each is sent `init` once it says hello; a node that has not
//!    answered within [`STARTUP_TIMEOUT_MS`] makes the run end `unknown` ("did not start").
//! 3. The workload's setup ops (`Workload::setup_ops`, broadcast's `topology`) go to
//!    their nodes one by one through one client and are recorded like any op
//!    ([`crate::clients::run_setup`]; free-running only: a workload with setup ops is
//!    refused in lockstep). Then clients issue ops open loop for the time limit
//!    ([`OpClock`]: one op per worker every `clients / rate` seconds from a seeded
//!    offset, late ops issued at once and counted) while the nemesis applies the schedule; then they stop issuing, and ops in flight
//!    finish or time out.
//! 4. End of the faulty part: the schedule's remaining events up to the time limit, then
//!    the final heal (every fault lifted, killed nodes restarted, paused ones resumed).
//!    The quiet window (`recovery_ms`) starts here.
//! 5. The workload's final ops go to every node that is up ([`final_work`]), split in
//!    order over the client workers ([`chunk_len`]); an op whose answer does not settle
//!    it ([`final_settled`]) is tried again by the mode's [`FinalRetry`] rule.
//! 6. Teardown (every process reaped within [`TEARDOWN_GRACE_MS`]), then the history is
//!    read back and judged and the files written ([`crate::verdict`]); the summary lines
//!    are [`crate::verdict::summary_text`].
//!
//! Ctrl-C jumps to teardown; what was recorded is still checked.

use std::path::PathBuf;

use proto::ops::{ClientOp, ClientReply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use workloads::{VerdictKind, Workload};

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

/// One client worker's open-loop schedule, in the mode's own clock unit (free-running:
/// ns since the worker started; lockstep: virtual µs). The first op is due at a random
/// offset within one interval (one draw from the worker's RNG), then one every interval;
/// a worker behind its schedule issues at once and the op counts as late, so stalls show
/// in the latencies rather than silently lowering the offered load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpClock {
    interval: u64,
    next_start: u64,
}

impl OpClock {
    /// A worker's schedule at one op every `interval`, staggered by a draw from `rng`.
    pub fn new(interval: u64, rng: &mut ChaCha8Rng) -> OpClock {
        let offset = (interval as f64 * rng.gen::<f64>()) as u64;
        OpClock {
            interval,
            next_start: offset,
        }
    }

    /// When the next op is due.
    pub fn next_start(&self) -> u64 {
        self.next_start
    }

    /// Takes the op slot due at `now` (at or after [`Self::next_start`]); returns whether
    /// the op is late (more than one interval behind its schedule).
    pub fn take(&mut self, now: u64) -> bool {
        let late = now.saturating_sub(self.next_start) > self.interval;
        self.next_start += self.interval;
        if self.next_start < now {
            self.next_start = now;
        }
        late
    }
}

/// How final ops that did not settle are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalRetry {
    /// Pause before an unsettled op is tried again, in ms (virtual time in lockstep).
    pub pause_ms: u64,
    /// How many more tries each op gets; `None`: as many as fit before the quiet window
    /// ends.
    pub tries: Option<u32>,
}

/// Free-running: every unsettled op again, pass after pass, until the window ends.
pub const FINAL_RETRY_FREE: FinalRetry = FinalRetry {
    pause_ms: 200,
    tries: None,
};

/// Lockstep: each unsettled op up to three more times. Counted rather than bounded by the
/// window, and with its own pause, because these numbers are in every recorded trace: a
/// change here changes every lockstep `trace_hash`.
pub const FINAL_RETRY_LOCKSTEP: FinalRetry = FinalRetry {
    pause_ms: 250,
    tries: Some(3),
};

/// The final ops of a run: each of the workload's `ops` on each of `nodes` (the nodes up
/// after the final heal), node by node.
pub fn final_work(nodes: &[String], ops: &[ClientOp]) -> Vec<(String, ClientOp)> {
    nodes
        .iter()
        .flat_map(|node| ops.iter().map(move |op| (node.clone(), op.clone())))
        .collect()
}

/// How many of `work` items each of `workers` takes, in order: worker `i` takes the
/// `i`-th chunk of this length.
pub fn chunk_len(work: usize, workers: usize) -> usize {
    work.div_ceil(workers.max(1)).max(1)
}

/// Whether the answer to final op `op` settles it: `reply` is the node's reply, `None`
/// for a timeout or a body that is no reply. An error, a timeout or a body that is no
/// reply never does; a reply does if the workload takes it as settled (a read of a key
/// some client wrote must not come back empty: the node may not have caught up yet).
pub fn final_settled(workload: &dyn Workload, op: &ClientOp, reply: Option<&ClientReply>) -> bool {
    match reply {
        None | Some(ClientReply::Error { .. }) => false,
        Some(reply) => workload.final_settled(op, reply),
    }
}
