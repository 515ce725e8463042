//! The command line. Parsing is clap's; everything clap cannot check (names of workloads
//! and algorithms, ranges) is checked in [`RunArgs::validate`], so a bad flag always exits
//! 254 with a message naming the problem before anything starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::nemesis::{DelayDist, FaultKind, NemesisError, NemesisOpts, Schedule};
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
    Run(Box<RunArgs>),
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
    Plan(crate::nemesis::plans::PlanArgs),
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
    /// Paxos rounds to decision over a grid of cluster sizes, contending proposers,
    /// backoff strategies and drop rates, on real node processes.
    Rounds(Box<crate::rounds::BenchRoundsArgs>),
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
    #[arg(long, default_value = "write-once")]
    pub workload: String,
    /// Bundled algorithm the nodes run (default: the workload's own).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Run this program as each node instead of squall-node (split into argv, no shell).
    #[arg(long)]
    pub node_cmd: Option<String>,
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Number of client workers.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Target client ops per second, over all clients (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long clients issue ops and faults happen: 500ms, 5s, 2m, 1h [default: 30s,
    /// or the schedule's `time_limit_ms` with --schedule].
    #[arg(long, value_parser = parse_duration_ms)]
    pub time_limit: Option<u64>,
    /// Seed for everything random in the run (random if absent; always printed and saved).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A client op with no reply after this long is recorded as `info`.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub op_timeout: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Put node data directories under DIR/<run name>/ instead of the run directory, and
    /// remove them when the run ends: scratch space such as a tmpfs (/dev/shm), to take
    /// the disk's fsync out of a latency measurement.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// File system under node data directories: native; lossy (a FUSE mount that drops
    /// what a node never synced when squall kills it; names need a directory fsync);
    /// lossy-data (names durable at once, only data lost). Needs root and /dev/fuse.
    #[arg(long, default_value = "native", value_name = "FS")]
    pub fs: String,
    /// Crash fault of the lossy file system, drawn from the seed (repeatable): torn-write,
    /// reorder-unsynced.
    #[arg(long = "fs-fault", value_name = "FAULT")]
    pub fs_faults: Vec<String>,
    /// Mutant to switch on in the bundled algorithm (repeatable).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Algorithm parameter key=value (repeatable).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Instances (write-once) or keys the workload spreads ops over [default: enough
    /// that fresh instances are proposed to for the first half of the run; see
    /// `auto_instances`].
    #[arg(long)]
    pub instances: Option<u64>,
    /// Clients proposing to the same instance at once (write-once).
    #[arg(long, default_value_t = 2)]
    pub contention: u64,
    /// Percent of op slots that are late proposals (write-once): fresh values for
    /// instances proposed to before, aimed preferably at restarted nodes (0-50).
    #[arg(long = "late-proposals", value_name = "PERCENT", default_value_t = workloads::workload::LATE_PERCENT_DEFAULT)]
    pub late_percent: u32,
    /// Execution mode: `free` (real time) or `lockstep` (one event at a time in virtual
    /// time, replayable bit for bit; nodes must support it, see PROTOCOL.md §10).
    #[arg(long, value_enum, default_value_t = run::RunMode::Free)]
    pub mode: run::RunMode,
    /// Fault kinds to schedule from the seed: partition, kill, pause, drop, delay,
    /// duplicate, reorder, clog (comma-separated), `all` or `none`.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Run this fault plan (a `schedule.json`, written or edited) instead of one drawn
    /// from the seed; it sets the time limit and the recovery window.
    #[arg(long, conflicts_with = "nemesis")]
    pub schedule: Option<PathBuf>,
    /// Rough time between a fault and its heal, and between faults.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub nemesis_interval: u64,
    /// Drop probability of a link under a drop fault.
    #[arg(long, default_value_t = 0.1)]
    pub drop_rate: f64,
    /// Duplication probability of a link under a duplicate fault.
    #[arg(long, default_value_t = 0.05)]
    pub dup_rate: f64,
    /// Reorder probability of a link under a reorder fault.
    #[arg(long, default_value_t = 0.1)]
    pub reorder_rate: f64,
    /// Base latency added by a delay fault.
    #[arg(long, default_value = "5ms", value_parser = parse_duration_ms)]
    pub delay: u64,
    /// Jitter on top of --delay.
    #[arg(long, default_value = "20ms", value_parser = parse_duration_ms)]
    pub delay_jitter: u64,
    /// Distribution of the jitter: constant, uniform or exponential.
    #[arg(long, default_value = "uniform")]
    pub delay_dist: String,
    /// How long a killed node stays down before its restart.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub kill_restart_after: u64,
    /// Let restarts wipe the node's data dir (each with probability 1/2).
    #[arg(long)]
    pub amnesia: bool,
    /// Quiet window after the final heal in which operations must complete [default: 5s,
    /// or the schedule's `recovery_ms` with --schedule].
    #[arg(long, value_parser = parse_duration_ms)]
    pub recovery_time: Option<u64>,
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
    /// `--fs` and `--fs-fault`; a lossy file system must mount here, or the run is refused.
    fn fs_config(&self, mode: run::RunMode) -> Result<lossyfs::fleet::FsConfig, UsageError> {
        let kind = lossyfs::fleet::FsKind::parse(&self.fs).map_err(UsageError)?;
        let mut fs = lossyfs::fleet::FsConfig {
            kind,
            ..Default::default()
        };
        for f in &self.fs_faults {
            fs.faults.add(f).map_err(UsageError)?;
        }
        if fs.is_native() {
            if !self.fs_faults.is_empty() {
                return Err(UsageError(
                    "--fs-fault needs --fs lossy or lossy-data".into(),
                ));
            }
            return Ok(fs);
        }
        let refuse = |why: String| UsageError(format!("--fs {}: {why}", kind.name()));
        if mode != run::RunMode::Free {
            return Err(refuse("only free-running runs (--mode free) use it".into()));
        }
        lossyfs::helper::find_bin().map_err(refuse)?;
        std::fs::create_dir_all(&self.results_dir)
            .map_err(|e| refuse(format!("{}: {e}", self.results_dir.display())))?;
        lossyfs::mount::probe(&self.results_dir).map_err(|e| refuse(e.to_string()))?;
        Ok(fs)
    }

    /// Checks everything clap cannot and builds the run configuration.
    pub fn validate(&self) -> Result<RunConfig, UsageError> {
        let names: Vec<&str> = workloads::WORKLOADS.iter().map(|(n, _)| *n).collect();
        let wopts = workloads::workload::WorkloadOpts {
            instances: self.instances.unwrap_or(1),
            contention: self.contention,
            nodes: self.nodes,
            late_percent: self.late_percent,
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
        let mode = self.mode;
        let plan = self.fault_plan()?;
        let time_limit_ms = plan.time_limit_ms;
        if time_limit_ms == 0 {
            return fail("--time-limit must be positive".into());
        }
        if self.op_timeout == 0 {
            return fail("--op-timeout must be positive".into());
        }
        if self.instances == Some(0) {
            return fail("--instances must be at least 1".into());
        }
        if self.late_percent > workloads::write_once::LATE_PERCENT_MAX {
            return fail(format!(
                "--late-proposals must be between 0 and {}, got {}",
                workloads::write_once::LATE_PERCENT_MAX,
                self.late_percent
            ));
        }
        let instances = self.instances.unwrap_or_else(|| {
            auto_instances(
                self.rate,
                time_limit_ms,
                self.contention,
                self.nodes,
                self.late_percent,
            )
        });
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
        if let Some(d) = &self.data_dir {
            std::fs::create_dir_all(d).map_err(|e| {
                UsageError(format!("--data-dir {}: cannot create it: {e}", d.display()))
            })?;
        }
        let fs = self.fs_config(mode)?;
        let seed = self.seed.unwrap_or_else(random_seed);
        Ok(RunConfig {
            workload: self.workload.clone(),
            algorithm,
            node_cmd,
            node_bin,
            nodes: self.nodes,
            clients: self.clients,
            rate: self.rate,
            time_limit_ms,
            seed,
            op_timeout_ms: self.op_timeout,
            results_dir: self.results_dir.clone(),
            data_dir: self.data_dir.clone(),
            bugs: self.bugs.clone(),
            params: self.params.clone(),
            instances,
            contention: self.contention,
            late_percent: self.late_percent,
            mode,
            nemesis: plan.opts,
            schedule: plan.schedule,
            schedule_from: self.schedule.clone(),
            fs,
            version: env!("CARGO_PKG_VERSION").to_string(),
            silent: false,
        })
    }

    /// The fault options, or the schedule file, checked.
    fn fault_plan(&self) -> Result<FaultPlan, UsageError> {
        let fail = |m: String| Err(UsageError(m));
        let kinds = FaultKind::parse_list(&self.nemesis)
            .map_err(|e| UsageError(format!("--nemesis: {e}")))?;
        let delay_dist = match self.delay_dist.as_str() {
            "constant" => DelayDist::Constant,
            "uniform" => DelayDist::Uniform,
            "exponential" => DelayDist::Exponential,
            other => {
                return fail(format!(
                    "--delay-dist '{other}' is not one of constant, uniform, exponential"
                ))
            }
        };
        let mut opts = NemesisOpts {
            kinds,
            interval_ms: self.nemesis_interval,
            drop_p: self.drop_rate,
            dup_p: self.dup_rate,
            reorder_p: self.reorder_rate,
            delay_base_ms: self.delay,
            delay_jitter_ms: self.delay_jitter,
            delay_dist,
            kill_restart_after_ms: self.kill_restart_after,
            amnesia: self.amnesia,
            recovery_ms: self.recovery_time.unwrap_or(DEFAULT_RECOVERY_MS),
        };
        opts.validate().map_err(|e| {
            let flag = match &e {
                NemesisError::BadOption { option, .. } => flag_of(option),
                NemesisError::UnknownKind { .. } => "--nemesis",
            };
            UsageError(format!("{flag}: {e}"))
        })?;
        let Some(path) = &self.schedule else {
            return Ok(FaultPlan {
                time_limit_ms: self.time_limit.unwrap_or(DEFAULT_TIME_LIMIT_MS),
                opts,
                schedule: None,
            });
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("--schedule {}: {e}", path.display())))?;
        let schedule = Schedule::from_json(&text)
            .map_err(|e| UsageError(format!("--schedule {}: {e}", path.display())))?;
        let nodes: Vec<String> = (1..=self.nodes).map(|i| format!("n{i}")).collect();
        if schedule.nodes != nodes {
            return fail(format!(
                "--schedule {}: its nodes {:?} are not this run's {:?} (--nodes {})",
                path.display(),
                schedule.nodes,
                nodes,
                self.nodes
            ));
        }
        if let Some(t) = self.time_limit.filter(|&t| t != schedule.time_limit_ms) {
            return fail(format!(
                "--time-limit {t} ms disagrees with the schedule's time_limit_ms {}; leave one out",
                schedule.time_limit_ms
            ));
        }
        if let Some(r) = self.recovery_time.filter(|&r| r != schedule.recovery_ms) {
            return fail(format!(
                "--recovery-time {r} ms disagrees with the schedule's recovery_ms {}; leave one out",
                schedule.recovery_ms
            ));
        }
        opts.kinds = schedule.kinds();
        opts.recovery_ms = schedule.recovery_ms;
        Ok(FaultPlan {
            time_limit_ms: schedule.time_limit_ms,
            opts,
            schedule: Some(schedule),
        })
    }
}

/// The default number of instances: fresh instances for about the first half of the
/// run, so faults always meet new decisions; in the second half proposals go to decided
/// instances again, where a node that missed a decision must still answer with it.
/// `rate * seconds` ops, one group per `workloads::write_once::ops_per_group` of them.
pub fn auto_instances(
    rate: f64,
    time_limit_ms: u64,
    contention: u64,
    nodes: usize,
    late_percent: u32,
) -> u64 {
    let ops = rate * time_limit_ms as f64 / 1_000.0;
    let groups = ops / workloads::write_once::ops_per_group(contention, nodes, late_percent);
    ((groups / 2.0) as u64).clamp(10, 100_000)
}

/// Default `--time-limit`.
pub const DEFAULT_TIME_LIMIT_MS: u64 = 30_000;
/// Default `--recovery-time`.
pub const DEFAULT_RECOVERY_MS: u64 = 5_000;

/// The faults of a run: options for the expander, or a schedule read from a file.
struct FaultPlan {
    time_limit_ms: u64,
    opts: NemesisOpts,
    schedule: Option<Schedule>,
}

/// The command-line flag behind a [`NemesisOpts`] field.
fn flag_of(option: &str) -> &'static str {
    match option {
        "drop_p" => "--drop-rate",
        "dup_p" => "--dup-rate",
        "reorder_p" => "--reorder-rate",
        "interval_ms" => "--nemesis-interval",
        "delay_base_ms" => "--delay",
        "delay_jitter_ms" => "--delay-jitter",
        "kill_restart_after_ms" => "--kill-restart-after",
        "recovery_ms" => "--recovery-time",
        _ => "--nemesis",
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
