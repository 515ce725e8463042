//! The command line. Parsing is clap's; everything clap cannot check (names of workloads
//! and algorithms, ranges) is checked in [`RunArgs::validate`], so a bad flag always exits
//! 254 with a message naming the problem before anything starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::run::{self, RunConfig};
use crate::UsageError;

const EXAMPLES: &str = "\
Examples:
  squall run --workload echo --nodes 3 --time-limit 5s --seed 7
  squall run --workload echo --node-cmd \"python3 examples/python/echo_node.py\"
  squall list
  squall check results/latest/history.jsonl
  squall bench router";

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
    Run(RunArgs),
    /// List workloads and algorithms.
    List,
    /// Check stored histories for linearizability; one line per file: path, verdict, ms.
    Check(crate::check::CheckArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
}

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Router throughput and added latency against a direct loopback TCP baseline.
    Router(BenchRouterArgs),
    /// The linearizability checker on Porcupine's corpus and a generated 100k-op history.
    Checker(crate::check::BenchCheckerArgs),
}

/// `squall bench router` options.
#[derive(Args, Debug, Clone)]
pub struct BenchRouterArgs {
    /// Seconds of throughput measurement.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub duration: u64,
    /// Messages each sender keeps in flight during the throughput phase.
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Ping-pong round trips per latency sample set.
    #[arg(long, default_value_t = 20_000)]
    pub pings: u64,
}

/// `squall run` options.
#[derive(Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct RunArgs {
    /// Workload: what clients do and how it is checked (see `squall list`).
    #[arg(long, default_value = "echo")]
    pub workload: String,
    /// Bundled algorithm the nodes run (default: the workload's own).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Run this program as each node instead of squall-node (split into argv, no shell).
    #[arg(long)]
    pub node_cmd: Option<String>,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Number of client workers.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Target client ops per second, over all clients (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long clients issue ops: 500ms, 5s, 2m, 1h.
    #[arg(long, default_value = "10s", value_parser = parse_duration_ms)]
    pub time_limit: u64,
    /// Seed for everything random in the run (random if absent; always printed and saved).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A client op with no reply after this long is recorded as `info`.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub op_timeout: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Mutant to switch on in the bundled algorithm (repeatable).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Algorithm parameter key=value (repeatable).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Instances (write-once) or keys the workload spreads ops over.
    #[arg(long, default_value_t = 100)]
    pub instances: u64,
    /// Clients proposing to the same instance at once (write-once).
    #[arg(long, default_value_t = 1)]
    pub contention: u64,
}

/// Parses `250ms`, `5s`, `2m`, `8h` or a bare number of seconds into milliseconds.
pub fn parse_duration_ms(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (num, mult) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = raw.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (raw, 1_000.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}' is not a duration (e.g. 500ms, 5s, 2m, 8h)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "'{raw}' is not a duration (e.g. 500ms, 5s, 2m, 8h)"
        ));
    }
    Ok((v * mult).round() as u64)
}

impl RunArgs {
    /// Checks everything clap cannot and builds the run configuration.
    pub fn validate(&self) -> Result<RunConfig, UsageError> {
        let names: Vec<&str> = workloads::WORKLOADS.iter().map(|(n, _)| *n).collect();
        let wopts = workloads::workload::WorkloadOpts {
            instances: self.instances,
            contention: self.contention,
        };
        let Some(workload) = workloads::workload_by_name(&self.workload, &wopts) else {
            return Err(UsageError(format!(
                "unknown workload '{}' (valid: {})",
                self.workload,
                names.join(", ")
            )));
        };
        let fail = |m: String| Err(UsageError(m));
        if self.nodes == 0 || self.nodes > 64 {
            return fail(format!(
                "--nodes must be between 1 and 64, got {}",
                self.nodes
            ));
        }
        if self.clients == 0 || self.clients > 1024 {
            return fail(format!(
                "--clients must be between 1 and 1024, got {}",
                self.clients
            ));
        }
        if !(self.rate > 0.0 && self.rate.is_finite() && self.rate <= 1_000_000.0) {
            return fail(format!(
                "--rate must be a positive number of ops/s up to 1000000, got {}",
                self.rate
            ));
        }
        if self.time_limit == 0 {
            return fail("--time-limit must be positive".into());
        }
        if self.op_timeout == 0 {
            return fail("--op-timeout must be positive".into());
        }
        if self.instances == 0 {
            return fail("--instances must be at least 1".into());
        }
        if self.contention == 0 || self.contention > self.clients as u64 {
            return fail(format!(
                "--contention must be between 1 and --clients ({}), got {}",
                self.clients, self.contention
            ));
        }
        for p in &self.params {
            if !p.contains('=') {
                return fail(format!("--param takes key=value, got '{p}'"));
            }
        }
        let node_cmd = match &self.node_cmd {
            None => None,
            Some(raw) => match shlex::split(raw) {
                Some(argv) if !argv.is_empty() => Some(argv),
                _ => {
                    return fail(format!(
                        "--node-cmd '{raw}' cannot be split into a program and arguments"
                    ))
                }
            },
        };
        let algorithm = self
            .algorithm
            .clone()
            .unwrap_or_else(|| workload.default_algorithm().to_string());
        let node_bin = if node_cmd.is_none() {
            let bin = run::find_node_bin().map_err(|e| UsageError(e.to_string()))?;
            let registry = run::node_registry(&bin).map_err(|e| UsageError(e.to_string()))?;
            let Some(info) = registry.iter().find(|a| a.name == algorithm) else {
                let valid: Vec<&str> = registry.iter().map(|a| a.name.as_str()).collect();
                return fail(format!(
                    "unknown algorithm '{algorithm}' (valid: {})",
                    valid.join(", ")
                ));
            };
            if !info.workloads.iter().any(|w| w == &self.workload) {
                return fail(format!(
                    "algorithm '{algorithm}' does not serve workload '{}' (it serves: {})",
                    self.workload,
                    info.workloads.join(", ")
                ));
            }
            for b in &self.bugs {
                if !info.bugs.contains(b) {
                    let valid = if info.bugs.is_empty() {
                        "none".to_string()
                    } else {
                        info.bugs.join(", ")
                    };
                    return fail(format!(
                        "unknown bug '{b}' for algorithm '{algorithm}' (valid: {valid})"
                    ));
                }
            }
            bin
        } else {
            if !self.bugs.is_empty() {
                return fail("--bug applies to bundled algorithms, not to --node-cmd".into());
            }
            PathBuf::new()
        };
        let seed = self.seed.unwrap_or_else(random_seed);
        Ok(RunConfig {
            workload: self.workload.clone(),
            algorithm,
            node_cmd,
            node_bin,
            nodes: self.nodes,
            clients: self.clients,
            rate: self.rate,
            time_limit_ms: self.time_limit,
            seed,
            op_timeout_ms: self.op_timeout,
            results_dir: self.results_dir.clone(),
            bugs: self.bugs.clone(),
            params: self.params.clone(),
            instances: self.instances,
            contention: self.contention,
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }
}

/// Resolves a program name as `execvp` would: a path if it contains `/`, else via `$PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// A seed from the OS's entropy, for runs that did not name one.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("8h"), Ok(28_800_000));
        assert_eq!(parse_duration_ms("3"), Ok(3_000));
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("-1s").is_err());
    }
}
