//! `squall test`: Maelstrom's command line over squall. A Maelstrom user changes one
//! word (`maelstrom test` → `squall test`) and the same node runs unchanged, through the
//! stdio bridge ([`crate::stdio`]), as real processes with squall's faults. Its flags
//! ([`TestArgs`]) are Maelstrom's (`-w`, `--bin` plus arguments, `--node-count`,
//! `--time-limit` in seconds, `--rate`, `--concurrency`, `--latency`, `--nemesis`,
//! `--nemesis-interval`, `--log-stderr`, `--topology`) together with every `squall run`
//! flag, and become the same [`RunBuilder`] `squall run` makes. As in Maelstrom, no fault
//! is scheduled unless `--nemesis` asks for one.

use std::path::Path;

use clap::Args;

use crate::config::{RunBuilder, RunConfig, RunMode};
use crate::run::RunArgs;
use crate::UsageError;

/// Examples under `squall test --help`.
pub const EXAMPLES: &str = "\
Examples:
  squall test -w echo --bin examples/maelstrom/echo.py --node-count 3 --time-limit 10
  squall test -w g-counter --bin ./counter --node-count 3 --rate 100 --nemesis partition,kill
  squall test -w unique-ids --bin ./ids --time-limit 20 --nemesis all --seed 7";

/// `squall test` options: Maelstrom's, plus every `squall run` flag.
#[derive(Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct TestArgs {
    /// The node program, speaking Maelstrom's protocol on stdin/stdout.
    #[arg(long)]
    pub bin: String,
    /// Arguments for the program (after the flags; put `--` before ones that start with -).
    pub bin_args: Vec<String>,
    /// Number of nodes, named n0..n(N-1) [default: --nodes, 5].
    #[arg(long)]
    pub node_count: Option<usize>,
    /// Client workers: a number, or `Kn` for K per node (Maelstrom's `2n`) [default:
    /// --clients, 4].
    #[arg(long)]
    pub concurrency: Option<String>,
    /// Message latency in ms: the constant hop latency of a lockstep run; free-running
    /// runs use the real loopback latency and ignore it.
    #[arg(long, value_name = "MS")]
    pub latency: Option<u64>,
    /// After the run, print the end of every node's stderr log.
    #[arg(long)]
    pub log_stderr: bool,
    /// Topology the workload hands to nodes (workloads that use one).
    #[arg(long)]
    pub topology: Option<String>,
    /// Maelstrom's availability requirement; accepted so Maelstrom's commands run, but
    /// squall's checkers judge availability their own way (final reads at every live node).
    #[arg(long)]
    pub availability: Option<String>,
    /// The consistency model txn-rw-register is judged by: read-uncommitted or
    /// read-committed (a comma-separated list judges the strongest) [default:
    /// read-committed].
    #[arg(long)]
    pub consistency_models: Option<String>,
    /// Every `squall run` flag.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Refuses a `--bin` that cannot be started: a path that is missing, not a file or not
/// executable, or a bare name not found on `PATH`, so the mistake is a usage error naming
/// the program instead of a run whose nodes never start.
fn check_bin(bin: &str) -> Result<(), UsageError> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if bin.contains('/') {
        let path = std::path::Path::new(bin);
        return match std::fs::metadata(path) {
            Err(e) => Err(UsageError(format!("--bin {bin}: {e}"))),
            Ok(m) if !m.is_file() => Err(UsageError(format!("--bin {bin}: not a file"))),
            Ok(_) if !runnable(path) => Err(UsageError(format!(
                "--bin {bin}: not executable (chmod +x it, or give the interpreter: \
                 --bin python3 {bin})"
            ))),
            Ok(_) => Ok(()),
        };
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| runnable(&d.join(bin))));
    if on_path {
        Ok(())
    } else {
        Err(UsageError(format!("--bin {bin}: no such program on PATH")))
    }
}

/// Lines of each node log `--log-stderr` prints, at most.
const LOG_LINES_MAX: usize = 200;

impl TestArgs {
    /// The run these flags ask for, as `squall run` would build it.
    pub fn builder(&self) -> Result<RunBuilder, UsageError> {
        if self.run.node_cmd.is_some() {
            return Err(UsageError(
                "--node-cmd and --bin both name the node program; give only --bin".into(),
            ));
        }
        let mut run = self.run.clone();
        if run.nemesis.is_none() && run.schedule.is_none() {
            run.nemesis = Some("none".into());
        }
        let mut b = run.builder()?;
        let mut argv = vec![self.bin.clone()];
        argv.extend(self.bin_args.iter().cloned());
        b.node_cmd = Some(argv);
        b.stdio = true;
        if let Some(n) = self.node_count {
            b.nodes = n;
        }
        if let Some(c) = &self.concurrency {
            b.clients = concurrency(c, b.nodes)?;
            b.contention = b.contention.min(b.clients as u64).max(1);
        }
        if let (Some(ms), RunMode::Lockstep) = (self.latency, b.mode) {
            let spec = format!("uniform:{ms}ms-{ms}ms");
            b.lockstep_latency = Some(
                crate::trace::HopLatency::parse(&spec)
                    .map_err(|e| UsageError(format!("--latency {ms}: {e}")))?,
            );
        }
        b.topology = self.topology.clone();
        b.consistency_models = self.consistency_models.clone();
        check_bin(&self.bin)?;
        Ok(b)
    }

    /// Checks everything and builds the run configuration.
    pub fn validate(&self) -> Result<RunConfig, UsageError> {
        self.builder()?.build()
    }
}

/// `--concurrency`: `K` workers, or `Kn` for K per node.
fn concurrency(raw: &str, nodes: usize) -> Result<usize, UsageError> {
    let bad = || {
        UsageError(format!(
            "--concurrency '{raw}' is not a number or Kn (e.g. 2n)"
        ))
    };
    match raw.strip_suffix('n') {
        Some(k) => Ok(k.parse::<usize>().map_err(|_| bad())? * nodes),
        None => raw.parse().map_err(|_| bad()),
    }
}

/// The end of every node log of the run in `dir`, for `--log-stderr`.
pub fn node_logs(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir.join("nodes")) else {
        return out;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_LINES_MAX);
        out.push_str(&format!("==> {} <==\n", p.display()));
        for l in &lines[from..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_takes_a_count_or_a_multiple_of_the_nodes() {
        assert_eq!(concurrency("3", 5).unwrap(), 3);
        assert_eq!(concurrency("2n", 5).unwrap(), 10);
        assert!(concurrency("n", 5).is_err());
        assert!(concurrency("two", 5).is_err());
    }
}
