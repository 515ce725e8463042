//! `squall run`: one run, start to verdict, in the mode its configuration names
//! ([`crate::free`] or [`crate::lockstep`], both following [`crate::lifecycle`]). Its flags
//! ([`RunArgs`]) become a [`RunBuilder`], which checks them into a [`RunConfig`].

use std::path::PathBuf;

use clap::Args;
use tokio::sync::watch;

use crate::config::{read_plan_file, RunBuilder, RunConfig, RunMode};
use crate::lifecycle::RunOutcome;
use crate::nemesis::{DelayDist, FaultKind, NemesisOpts};
use crate::text::parse_duration_ms;
use crate::UsageError;

/// Examples under `squall run --help` and `squall --help`.
pub const EXAMPLES: &str = "\
Examples:
  squall run --workload echo --nodes 3 --time-limit 5s --seed 7
  squall run --workload echo --node-cmd \"python3 examples/python/echo_node.py\"
  squall list
  squall check results/latest/history.jsonl
  squall bench router";

/// Runs one configuration in its mode to a verdict. `interrupt` turning true (Ctrl-C)
/// ends the run early; what was recorded is still checked and written.
pub async fn run_any(
    cfg: RunConfig,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    match cfg.mode {
        RunMode::Free => crate::free::run_free(cfg, interrupt).await,
        RunMode::Lockstep => {
            let schedule = cfg.fault_schedule();
            crate::lockstep::run_lockstep(cfg, schedule, interrupt).await
        }
    }
}

/// `squall run` options.
#[derive(Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct RunArgs {
    /// Workload: what clients do and how it is checked (see `squall list`).
    #[arg(short = 'w', long, default_value = "write-once")]
    pub workload: String,
    /// Bundled algorithm the nodes run (default: the workload's own).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Run this program as each node instead of squall-node (split into argv, no shell).
    #[arg(long)]
    pub node_cmd: Option<String>,
    /// The --node-cmd program speaks Maelstrom's protocol over stdin/stdout (it needs no
    /// change to run under squall); nodes are named n0..n(N-1), as Maelstrom names them.
    #[arg(long, requires = "node_cmd")]
    pub stdio: bool,
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
    /// lossy-data (names durable at once, only data lost); auto (lossy for a free-running
    /// run with --nemesis all where FUSE is usable, else native). Lossy needs root and
    /// /dev/fuse.
    #[arg(long, default_value = "auto", value_name = "FS")]
    pub fs: String,
    /// Crash fault of the lossy file system, drawn from the seed (repeatable): torn-write,
    /// reorder-unsynced.
    #[arg(long = "fs-fault", value_name = "FAULT")]
    pub fs_faults: Vec<String>,
    /// Lockstep: each node-to-node message's virtual latency drawn from the seed, e.g.
    /// uniform:50us-500us [default: a constant 100us].
    #[arg(long, value_name = "DIST", value_parser = crate::trace::HopLatency::parse)]
    pub lockstep_latency: Option<crate::trace::HopLatency>,
    /// Lockstep: who orders node messages: random (after their hop, ties by the seed) or
    /// adversary[:TYPE,...] (every message delivered, in the order that keeps instances
    /// undecided longest; needs --nemesis none; see docs/lockstep.md).
    #[arg(long, value_name = "SCHEDULER", default_value = "random", value_parser = crate::config::Scheduler::parse)]
    pub scheduler: crate::config::Scheduler,
    /// Extra environment variable for every node, KEY=VALUE (repeatable; in lockstep the
    /// nodes get no other variables but PATH, HOME, LANG, PYTHONHASHSEED, TZ and SQUALL_*).
    #[arg(long = "node-env", value_name = "KEY=VALUE", value_parser = parse_node_env)]
    pub node_env: Vec<(String, String)>,
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
    #[arg(long, value_enum, default_value_t = RunMode::Free)]
    pub mode: RunMode,
    /// Fault kinds to schedule from the seed: partition, kill, pause, drop, delay,
    /// duplicate, reorder, clog (comma-separated), `all` or `none` [default: all; `squall
    /// test`: none, as in Maelstrom].
    #[arg(long)]
    pub nemesis: Option<String>,
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
    /// Multicast: the order to judge (none, fifo, causal, total, fifo-total,
    /// causal-total) [default: the one the algorithm claims].
    #[arg(long, value_parser = parse_order)]
    pub order: Option<workloads::multicast::Order>,
    /// Multicast: also judge reliability (every correct node delivers the same set)
    /// [default: if the algorithm claims it].
    #[arg(long)]
    pub reliable: bool,
    /// Let partitions, message faults and clogs reach the links between nodes and the
    /// Maelstrom services (seq-kv, lin-kv, lww-kv, lin-tso); off by default, as in
    /// Maelstrom. Free-running runs only.
    #[arg(long)]
    pub fault_services: bool,
}

impl RunArgs {
    /// `--fs` and `--fs-fault` as a file-system configuration (checked against the mode
    /// and the machine by [`RunBuilder::build`]).
    fn fs_kind(&self) -> Result<lossyfs::fleet::FsConfig, UsageError> {
        let kind = lossyfs::fleet::FsKind::parse(&self.fs).map_err(UsageError)?;
        let mut fs = lossyfs::fleet::FsConfig {
            kind,
            ..Default::default()
        };
        for f in &self.fs_faults {
            fs.faults.add(f).map_err(UsageError)?;
        }
        let named_lossy = !fs.is_native() && kind != lossyfs::fleet::FsKind::Auto;
        if !named_lossy && !self.fs_faults.is_empty() {
            return Err(UsageError(
                "--fs-fault needs --fs lossy or lossy-data".into(),
            ));
        }
        Ok(fs)
    }

    /// Checks everything clap cannot and builds the run configuration.
    pub fn validate(&self) -> Result<RunConfig, UsageError> {
        self.builder()?.build()
    }

    /// The typed run these flags ask for: the flags clap leaves as text (`--nemesis`,
    /// `--delay-dist`, `--node-cmd`, `--schedule`) are read here, the rest is checked by
    /// [`RunBuilder::build`].
    pub fn builder(&self) -> Result<RunBuilder, UsageError> {
        let fail = |m: String| Err(UsageError(m));
        let kinds = FaultKind::parse_list(self.nemesis.as_deref().unwrap_or("all"))
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
        let plan = match &self.schedule {
            Some(path) => Some(read_plan_file(path.clone())?),
            None => None,
        };
        Ok(RunBuilder {
            workload: self.workload.clone(),
            algorithm: self.algorithm.clone(),
            node_cmd,
            nodes: self.nodes,
            clients: self.clients,
            rate: self.rate,
            time_limit_ms: self.time_limit,
            seed: self.seed,
            op_timeout_ms: self.op_timeout,
            results_dir: self.results_dir.clone(),
            data_dir: self.data_dir.clone(),
            fs: self.fs_kind()?,
            node_env: self.node_env.clone(),
            lockstep_latency: self.lockstep_latency,
            scheduler: self.scheduler.clone(),
            bugs: self.bugs.clone(),
            params: self.params.clone(),
            instances: self.instances,
            contention: self.contention,
            late_percent: self.late_percent,
            mode: self.mode,
            nemesis: NemesisOpts {
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
                recovery_ms: NemesisOpts::default().recovery_ms,
            },
            recovery_ms: self.recovery_time,
            plan,
            stdio: self.stdio,
            topology: None,
            order: self.order,
            reliable: self.reliable,
            consistency_models: None,
            fault_services: self.fault_services,
        })
    }
}

/// `--order`: one of [`workloads::multicast::Order::ALL`] by name.
fn parse_order(raw: &str) -> Result<workloads::multicast::Order, String> {
    raw.parse()
}

/// `--node-env KEY=VALUE`: a non-empty key without `=` or NUL, and a value without NUL.
fn parse_node_env(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("{raw:?} is not KEY=VALUE")),
    }
}
