//! squall, the harness: starts node processes, routes their messages, injects faults,
//! drives clients, records the history and judges it.
//!
//! - [`cli`]: the command line (clap) and its validation into a [`config::RunConfig`].
//! - [`config`]: a run's configuration (`run.json`) and what it implies.
//! - [`run`]: one run from start to verdict, in the mode its configuration names.
//! - [`lifecycle`]: what every run does, in order, in both modes; the run directory.
//! - [`free`]: the free-running mode (real time, the router, client workers, final ops);
//!   [`free::executor`] is the nemesis's executor there (policy, timed and triggered
//!   events, spans, the final heal).
//! - [`verdict`]: the end of a run in both modes: checkers, the overall verdict,
//!   `verdict.json`, `metrics.json`, the summary lines.
//! - [`registry`]: where `squall-node` is and what it serves (`--list-json`).
//! - [`trace`]: `trace.bin`, the record of a lockstep run: format, writer, reader, hash.
//! - [`text`]: small text helpers shared by every part.
//! - [`nemesis`]: faults as data: the seeded schedule, partition shapes, the per-link
//!   fault table (the router's policy in real runs), triggers, confirmation.
//! - [`plan`]: `squall plan`, the named fault plans printed or written to a file.
//! - [`lockstep`]: the deterministic mode: one event at a time in virtual time, the trace.
//! - [`maelstrom`]: `squall test`, Maelstrom's command line over squall (stdio nodes).
//! - [`replay`]: `squall replay`, a saved run run again.
//! - [`router`]: every envelope passes through it; per-link decisions via [`router::LinkPolicy`];
//!   [`router::gate`] admits one connection per node incarnation by the run's secret.
//! - [`services`]: Maelstrom's `seq-kv`, `lin-kv`, `lww-kv` and `lin-tso`, served
//!   inside the harness at those addresses (free-running runs).
//! - [`stdio`]: the stdio bridge that runs a Maelstrom node unchanged (`--stdio`).
//! - [`supervisor`]: the only code that starts or signals processes.
//! - [`clients`]: client workers (Jepsen processes) and the history recorder.
//! - [`metrics`]: latency percentiles and message counts for `metrics.json`.
//! - [`results`]: run directories, JSON files, the `latest` link.
//! - [`report`]: `report.html`, one self-contained page per run, and `squall report`.
//! - [`bench`]: `squall bench router`.
//! - [`check`]: `squall check` and `squall bench checker`, through `lincheck`.
//! - [`rejudge`]: a run directory judged again from its files, by the run's own rules
//!   (what `squall check` does with a run's `history.jsonl`).
//! - [`rounds`]: `squall bench rounds`, Paxos rounds to decision over a grid.
//! - [`shrink`]: `squall shrink`, a failing run cut down to what still fails.
//! - [`soak`]: `squall soak`, seed after seed for hours keeping only failures, grouped by
//!   signature, and `squall summary`, which merges the summaries of shards.
#![deny(missing_docs)]

pub mod bench;
pub mod check;
pub mod cli;
pub mod clients;
pub mod config;
pub mod free;
pub mod lifecycle;
pub mod lockstep;
pub mod maelstrom;
pub mod metrics;
pub mod nemesis;
pub mod plan;
pub mod registry;
pub mod rejudge;
pub mod replay;
pub mod report;
pub mod results;
pub mod rounds;
pub mod router;
pub mod run;
pub mod services;
pub mod shrink;
pub mod soak;
pub mod stdio;
pub mod supervisor;
pub mod text;
pub mod trace;
pub mod verdict;

/// A problem with what the user asked for: exit code 254.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Exit codes (Jepsen's convention).
pub mod exit {
    /// The history is valid.
    pub const VALID: u8 = 0;
    /// A property was violated.
    pub const INVALID: u8 = 1;
    /// The checkers could not decide.
    pub const UNKNOWN: u8 = 2;
    /// Bad flags, config or input.
    pub const USAGE: u8 = 254;
    /// squall itself failed.
    pub const INTERNAL: u8 = 255;
}
