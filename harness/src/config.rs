//! A run's configuration ([`RunConfig`], saved as `run.json`): what every command that
//! starts runs (`run`, `soak`, `bench rounds`, `shrink`, `replay`) hands to
//! [`crate::run::run_any`], and what a configuration implies: the nodes' argv and
//! environment, node ids, the workload, the fault schedule. A new one is made by a
//! [`RunBuilder`], which checks it; `shrink` and `replay` start from a saved `run.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workloads::workload::WorkloadOpts;

use crate::nemesis::{self, NemesisOpts, Schedule};
use crate::supervisor::NodeSpec;
use crate::UsageError;

mod builder;
mod plan_file;
mod scheduler;

pub use builder::{
    auto_instances, random_seed, RunBuilder, DEFAULT_RECOVERY_MS, DEFAULT_TIME_LIMIT_MS,
};
pub use plan_file::{read_plan_file, PlanFile};
pub use scheduler::Scheduler;

/// How a run executes (DESIGN.md § Two execution modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Real time, real concurrency, the nodes' own timers.
    #[default]
    Free,
    /// One event at a time in virtual time, chosen by the seed: replays bit for bit.
    Lockstep,
}

impl RunMode {
    /// The name `--mode` takes and `run.json` holds.
    pub fn name(self) -> &'static str {
        match self {
            RunMode::Free => "free",
            RunMode::Lockstep => "lockstep",
        }
    }
}

/// Node data outside the run directory, removed on drop ([`RunConfig::scratch_data`]),
/// on every way out of a run.
pub struct ScratchData(Option<PathBuf>);

impl Drop for ScratchData {
    fn drop(&mut self) {
        let Some(root) = &self.0 else { return };
        if let Err(e) = std::fs::remove_dir_all(root) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %root.display(), error = %e, "cannot remove node data");
            }
        }
    }
}

/// A validated run configuration; saved as `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Workload name.
    pub workload: String,
    /// Algorithm name (bundled nodes).
    pub algorithm: String,
    /// Node program and arguments, when not the bundled `squall-node`.
    pub node_cmd: Option<Vec<String>>,
    /// Path of the bundled node binary.
    pub node_bin: PathBuf,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of client workers.
    pub clients: usize,
    /// Target ops per second over all clients.
    pub rate: f64,
    /// How long clients issue ops, in ms.
    pub time_limit_ms: u64,
    /// The run seed.
    pub seed: u64,
    /// Client op timeout, in ms.
    pub op_timeout_ms: u64,
    /// Where run directories go.
    pub results_dir: PathBuf,
    /// Where node data directories go instead of `RUN_DIR/data` (`--data-dir`): under
    /// `DATA_DIR/<run name>/`, removed when the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--lockstep-latency`: per-message hop latency drawn from the seed (lockstep; the
    /// constant [`crate::trace::HOP_US`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockstep_latency: Option<crate::trace::HopLatency>,
    /// `--scheduler`: who orders a lockstep run's node messages (left out when `random`).
    #[serde(default, skip_serializing_if = "crate::config::Scheduler::is_random")]
    pub scheduler: crate::config::Scheduler,
    /// `--node-env K=V`: extra environment for every node, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_env: Vec<(String, String)>,
    /// `--bug` mutants passed to bundled nodes.
    pub bugs: Vec<String>,
    /// `--param` settings passed to bundled nodes.
    pub params: Vec<String>,
    /// Instances/keys the workload spreads ops over.
    pub instances: u64,
    /// Concurrent proposals per instance.
    pub contention: u64,
    /// Percent of op slots that are late proposals (write-once).
    #[serde(default = "late_percent_default")]
    pub late_percent: u32,
    /// Free-running or lockstep.
    #[serde(default)]
    pub mode: RunMode,
    /// What the seed's fault schedule is drawn from (also holds the recovery window).
    pub nemesis: NemesisOpts,
    /// A fault plan given with `--schedule` (the run writes it to `schedule.json`).
    #[serde(skip)]
    pub schedule: Option<Schedule>,
    /// The file the plan was read from.
    pub schedule_from: Option<PathBuf>,
    /// The file system under node data directories (`--fs`, `--fs-fault`).
    #[serde(default, skip_serializing_if = "lossyfs::fleet::FsConfig::is_native")]
    pub fs: lossyfs::fleet::FsConfig,
    /// `--stdio`: the node program speaks Maelstrom over stdin/stdout; this is the
    /// `squall` binary whose `stdio-bridge` mode connects it to the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio_bridge: Option<PathBuf>,
    /// The number of the first node id: 1 (`n1..nN`), or 0 (`n0..n(N-1)`, as Maelstrom
    /// names nodes) in stdio runs.
    #[serde(default = "node_id_base_default")]
    pub node_id_base: usize,
    /// Workload setting passed through (`--topology`, for workloads that use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// What the multicast checkers judge (workload `multicast` only): `--order` and
    /// `--reliable`, else the guarantee the algorithm claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<workloads::multicast::Guarantee>,
    /// What the txn checkers judge (`--consistency-models`; default read-committed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<workloads::txn::Consistency>,
    /// `--fault-services`: faults reach the links between nodes and the services.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fault_services: bool,
    /// squall's version.
    pub version: String,
    /// One run of a batch (`squall soak`): print nothing when it starts (the soak draws
    /// its progress line there) and leave `latest` alone (the soak deletes passing runs).
    #[serde(skip)]
    pub silent: bool,
}

/// `node_id_base` of a `run.json` written before node ids could start at 0.
fn node_id_base_default() -> usize {
    1
}

/// `late_percent` of a `run.json` written before late proposals existed.
fn late_percent_default() -> u32 {
    workloads::workload::LATE_PERCENT_DEFAULT
}

/// The fixed variables of a lockstep node's environment, besides `PATH`, `HOME`,
/// `SQUALL_*` and `--node-env`: a locale, hash seed and time zone that do not depend on
/// the host or the shell the harness was started from.
pub const LOCKSTEP_ENV: [(&str, &str); 3] =
    [("LANG", "C.UTF-8"), ("PYTHONHASHSEED", "0"), ("TZ", "UTC")];

/// Word `i` of a node's command as an absolute path if it names an existing file
/// relative to the harness's working directory (a program only if it has a `/`).
fn anchored(i: usize, word: String) -> String {
    let path = Path::new(&word);
    if path.is_absolute() || (i == 0 && !word.contains('/')) || !path.exists() {
        return word;
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path).display().to_string(),
        Err(_) => word,
    }
}

/// `nodes` node ids numbered from `base`.
pub fn node_ids(base: usize, nodes: usize) -> Vec<String> {
    (base..base + nodes).map(|i| format!("n{i}")).collect()
}

impl RunConfig {
    /// The argv every node is started with: `--node-cmd`, or the bundled node with the
    /// algorithm, bugs and params.
    pub fn node_argv(&self) -> Vec<String> {
        match &self.node_cmd {
            Some(argv) => match &self.stdio_bridge {
                Some(bridge) => {
                    let mut all = vec![
                        bridge.display().to_string(),
                        crate::stdio::SUBCOMMAND.into(),
                        "--".into(),
                    ];
                    all.extend(argv.iter().cloned());
                    all
                }
                None => argv.clone(),
            },
            None => {
                let mut argv = vec![
                    self.node_bin.display().to_string(),
                    "--algorithm".into(),
                    self.algorithm.clone(),
                ];
                for b in &self.bugs {
                    argv.extend(["--bug".to_string(), b.clone()]);
                }
                for p in &self.params {
                    argv.extend(["--param".to_string(), p.clone()]);
                }
                argv
            }
        }
    }

    /// Where the nodes of the run in `dir` keep their data directories.
    pub fn node_data_root(&self, dir: &Path) -> PathBuf {
        match (&self.data_dir, dir.file_name()) {
            (Some(root), Some(name)) => root.join(name),
            _ => dir.join("data"),
        }
    }

    /// How node `id` of the run in `dir` is started; it finds the router at `router`.
    ///
    /// Free-running, the node inherits the harness's environment and working directory
    /// and gets the `SQUALL_*` variables and `--node-env` on top. In lockstep it starts
    /// in the run directory with nothing else: `PATH` and `HOME` (the harness's),
    /// `LANG=C.UTF-8`, `PYTHONHASHSEED=0`, `TZ=UTC`, the `SQUALL_*` variables and
    /// `--node-env`; `SQUALL_DATA_DIR` is then `data/<id>`, relative to that directory,
    /// so it reads the same in a run and its replays (an absolute path under
    /// `--data-dir` otherwise). Since the node does not start where the harness did,
    /// words of its command that name an existing file relative to the harness's working
    /// directory (`examples/python/paxos_node.py`) are made absolute; a bare program name
    /// is still looked up in `PATH`.
    pub fn node_spec(&self, dir: &Path, id: &str, router: &str) -> NodeSpec {
        let data_dir = self.node_data_root(dir).join(id);
        let lockstep = self.mode == RunMode::Lockstep;
        let data_env = if lockstep && self.data_dir.is_none() {
            format!("data/{id}")
        } else if lockstep && data_dir.is_relative() {
            let cwd = std::env::current_dir().unwrap_or_default();
            cwd.join(&data_dir).display().to_string()
        } else {
            data_dir.display().to_string()
        };
        let mut env: Vec<(String, String)> = Vec::new();
        if lockstep {
            for key in ["PATH", "HOME"] {
                if let Some(v) = std::env::var_os(key) {
                    env.push((key.into(), v.to_string_lossy().into_owned()));
                }
            }
            env.extend(
                LOCKSTEP_ENV
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
        }
        env.extend([
            ("SQUALL_NODE_ID".into(), id.to_string()),
            ("SQUALL_ROUTER".into(), router.to_string()),
            ("SQUALL_DATA_DIR".into(), data_env),
            ("SQUALL_SEED".into(), self.seed.to_string()),
        ]);
        env.extend(self.node_env.iter().cloned());
        let mut argv = self.node_argv();
        if lockstep {
            argv = argv
                .into_iter()
                .enumerate()
                .map(|(i, word)| anchored(i, word))
                .collect();
        }
        NodeSpec {
            id: id.to_string(),
            argv,
            env,
            data_dir,
            log_path: dir.join("nodes").join(format!("{id}.log")),
            admission: None,
            clean_env_in: lockstep.then(|| dir.to_path_buf()),
        }
    }

    /// A guard that removes the node data of the run in `dir` when it is dropped, if
    /// `--data-dir` put it elsewhere (scratch space, often a tmpfs); data inside the run
    /// directory stays with the run. Hold it until the nodes are gone.
    pub fn scratch_data(&self, dir: &Path) -> ScratchData {
        ScratchData(self.data_dir.is_some().then(|| self.node_data_root(dir)))
    }

    /// Node ids `n1..nN` (`n0..n(N-1)` in stdio runs).
    pub fn node_ids(&self) -> Vec<String> {
        node_ids(self.node_id_base, self.nodes)
    }

    /// A fresh op generator of the run's workload.
    pub fn workload(&self) -> Result<Box<dyn workloads::Workload>, UsageError> {
        let opts = WorkloadOpts {
            instances: self.instances,
            contention: self.contention,
            nodes: self.nodes,
            late_percent: self.late_percent,
            topology: builder::topology_or_default(self.topology.as_deref()),
            guarantee: self.guarantee.unwrap_or_default(),
            consistency: self.consistency.unwrap_or_default(),
        };
        workloads::workload_by_name(&self.workload, &opts)
            .ok_or_else(|| UsageError(format!("unknown workload '{}'", self.workload)))
    }

    /// What about the configuration itself may weaken the verdict (for `verdict.json`).
    pub fn warnings(&self) -> Vec<nemesis::Warning> {
        let mut out = Vec::new();
        if self.nemesis.recovery_ms <= self.op_timeout_ms {
            out.push(nemesis::Warning::other(format!(
                "the recovery window ({} ms) is not longer than the op timeout ({} ms): a \
                 final op that times out has no time left for a retry, so termination may \
                 be judged on a single try",
                self.nemesis.recovery_ms, self.op_timeout_ms
            )));
        }
        out
    }

    /// The run's fault plan: the given schedule, or the one the seed expands to.
    pub fn fault_schedule(&self) -> Schedule {
        match &self.schedule {
            Some(s) => s.clone(),
            None => nemesis::expand(
                self.seed,
                &self.nemesis,
                &self.node_ids(),
                self.time_limit_ms,
            ),
        }
    }
}
