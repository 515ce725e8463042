//! The command line: the top-level parser and its subcommands. Each subcommand's flags
//! live with the subcommand (`run::RunArgs`, `soak::SoakArgs`, ...); this module only
//! gathers them, and only `main.rs` uses it. Everything clap cannot check (names of
//! workloads and algorithms, ranges) is checked when the flags become a run
//! ([`crate::config::RunBuilder::build`]), so a bad flag always exits 254 with a message
//! naming the problem before anything starts.

use clap::{Parser, Subcommand};

use crate::run::{RunArgs, EXAMPLES};

/// squall: chaos-testing for distributed algorithms that run as real processes over TCP.
#[derive(Parser, Debug)]
#[command(name = "squall", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a cluster, drive clients at it, inject faults, check the history.
    Run(Box<RunArgs>),
    /// Run a Maelstrom node unchanged, with Maelstrom's flags (-w, --bin, --node-count,
    /// --time-limit, --rate, --nemesis, ...) and every `squall run` flag.
    Test(Box<crate::maelstrom::TestArgs>),
    /// List workloads and algorithms.
    List,
    /// Check stored histories for linearizability; one line per file: path, verdict, ms.
    Check(crate::check::CheckArgs),
    /// Run a saved run again from its run.json and schedule.json; report whether it
    /// reproduced (lockstep: the same trace hash; free-running: the verdict, --times K).
    Replay(crate::replay::ReplayArgs),
    /// Cut a failing run down while it still fails the same way: drop fault events,
    /// shorten the run and its faults, lower rates; writes the smallest failing run.
    Shrink(crate::shrink::ShrinkArgs),
    /// Write a run directory's report.html again (timeline, faults, message sequence,
    /// metrics) and print its path.
    Report(crate::report::ReportArgs),
    /// Run seed after seed (--count N or --duration 8h, --jobs J), keep only what failed,
    /// grouped by signature; writes soak.jsonl, summary.md and summary.json.
    Soak(Box<crate::soak::SoakArgs>),
    /// Merge soak summaries (one per --shard) into one; --out DIR writes it there.
    Summary(crate::soak::merge::SummaryArgs),
    /// Write a named fault plan (a schedule.json aimed at one mutant's weakness) for
    /// `squall run --schedule`; --list names them.
    Plan(crate::plan::PlanArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// The stdio bridge the supervisor starts as a `--stdio` node (see `stdio.rs`).
    #[command(name = "stdio-bridge", hide = true)]
    StdioBridge {
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
}

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Router throughput and added latency against a direct loopback TCP baseline.
    Router(crate::bench::BenchRouterArgs),
    /// The linearizability checker on Porcupine's corpus and a generated 100k-op history.
    Checker(crate::check::BenchCheckerArgs),
    /// Paxos rounds to decision over a grid of cluster sizes, contending proposers,
    /// backoff strategies and drop rates, on real node processes.
    Rounds(Box<crate::rounds::BenchRoundsArgs>),
}
