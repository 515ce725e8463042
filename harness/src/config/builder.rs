//! [`RunBuilder`]: a run asked for in typed values, checked into a [`RunConfig`]. Every
//! command that starts runs makes one: `squall run` and `squall soak` from their flags
//! (`crate::run::RunArgs`), `squall bench rounds` for each cell of its grid. Its defaults
//! are `squall run`'s, and its errors name the `squall run` flag at fault, so a bad value
//! is reported the same way whoever asked.

use std::path::PathBuf;

use crate::config::{PlanFile, RunConfig, RunMode};
use crate::nemesis::{FaultKind, NemesisError, NemesisOpts, Schedule};
use crate::registry;
use crate::UsageError;

/// Default time limit (`--time-limit`).
pub const DEFAULT_TIME_LIMIT_MS: u64 = 30_000;
/// Default quiet window after the final heal (`--recovery-time`).
pub const DEFAULT_RECOVERY_MS: u64 = 5_000;

/// A run as asked for, before it is checked. [`RunBuilder::default`] is `squall run`
/// without flags; [`RunBuilder::build`] checks everything and makes the [`RunConfig`].
#[derive(Debug, Clone)]
pub struct RunBuilder {
    /// Workload name.
    pub workload: String,
    /// Bundled algorithm (default: the workload's own).
    pub algorithm: Option<String>,
    /// Node program and arguments instead of the bundled node.
    pub node_cmd: Option<Vec<String>>,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of client workers.
    pub clients: usize,
    /// Target ops per second over all clients.
    pub rate: f64,
    /// How long clients issue ops (default: [`DEFAULT_TIME_LIMIT_MS`], or the plan's).
    pub time_limit_ms: Option<u64>,
    /// The run seed (default: a random one).
    pub seed: Option<u64>,
    /// Client op timeout.
    pub op_timeout_ms: u64,
    /// Where run directories go.
    pub results_dir: PathBuf,
    /// Where node data goes instead of the run directory.
    pub data_dir: Option<PathBuf>,
    /// The file system under node data directories (`--fs`, `--fs-fault`; default `auto`).
    pub fs: lossyfs::fleet::FsConfig,
    /// Per-message hop latency of a lockstep run (`--lockstep-latency`).
    pub lockstep_latency: Option<crate::trace::HopLatency>,
    /// Who orders a lockstep run's deliveries (`--scheduler`).
    pub scheduler: crate::config::Scheduler,
    /// Extra environment for every node (`--node-env K=V`).
    pub node_env: Vec<(String, String)>,
    /// Mutants of the bundled algorithm.
    pub bugs: Vec<String>,
    /// Algorithm parameters, `key=value`.
    pub params: Vec<String>,
    /// Instances/keys (default: [`auto_instances`]).
    pub instances: Option<u64>,
    /// Concurrent proposals per instance.
    pub contention: u64,
    /// Percent of op slots that are late proposals.
    pub late_percent: u32,
    /// Free-running or lockstep.
    pub mode: RunMode,
    /// What the seed's fault schedule is drawn from. Its `recovery_ms` is not read: the
    /// window is [`Self::recovery_ms`].
    pub nemesis: NemesisOpts,
    /// The quiet window (default: [`DEFAULT_RECOVERY_MS`], or the plan's).
    pub recovery_ms: Option<u64>,
    /// A fault plan to run instead of one drawn from the seed.
    pub plan: Option<PlanFile>,
    /// `--stdio`: the `--node-cmd` program speaks Maelstrom over stdin/stdout; nodes are
    /// named `n0..n(N-1)`.
    pub stdio: bool,
    /// `--topology`, passed to the workload.
    pub topology: Option<String>,
    /// Multicast: the order to judge (default: the algorithm's claim).
    pub order: Option<workloads::multicast::Order>,
    /// Multicast: judge reliability too.
    pub reliable: bool,
    /// `--consistency-models`, for txn workloads (default: read-committed).
    pub consistency_models: Option<String>,
    /// `--fault-services`: faults reach node-service links too.
    pub fault_services: bool,
}

impl Default for RunBuilder {
    fn default() -> Self {
        RunBuilder {
            workload: "write-once".into(),
            algorithm: None,
            node_cmd: None,
            nodes: 5,
            clients: 4,
            rate: 100.0,
            time_limit_ms: None,
            seed: None,
            op_timeout_ms: 1_000,
            results_dir: PathBuf::from("results"),
            data_dir: None,
            fs: lossyfs::fleet::FsConfig::auto(),
            node_env: Vec::new(),
            lockstep_latency: None,
            scheduler: Default::default(),
            bugs: Vec::new(),
            params: Vec::new(),
            instances: None,
            contention: 2,
            late_percent: workloads::workload::LATE_PERCENT_DEFAULT,
            mode: RunMode::Free,
            nemesis: NemesisOpts {
                kinds: FaultKind::ALL.into_iter().collect(),
                ..NemesisOpts::default()
            },
            recovery_ms: None,
            plan: None,
            stdio: false,
            topology: None,
            order: None,
            reliable: false,
            consistency_models: None,
            fault_services: false,
        }
    }
}

/// The faults of a run: options for the expander, or a plan read from a file.
struct FaultPlan {
    time_limit_ms: u64,
    opts: NemesisOpts,
    schedule: Option<Schedule>,
}

impl RunBuilder {
    /// Checks everything and builds the run configuration.
    pub fn build(&self) -> Result<RunConfig, UsageError> {
        let names: Vec<&str> = workloads::WORKLOADS.iter().map(|(n, _)| *n).collect();
        let wopts = workloads::workload::WorkloadOpts {
            instances: self.instances.unwrap_or(1),
            contention: self.contention,
            nodes: self.nodes,
            late_percent: self.late_percent,
            topology: topology_or_default(self.topology.as_deref()),
            guarantee: Default::default(),
            consistency: self.consistency()?.unwrap_or_default(),
        };
        let Some(workload) = workloads::workload_by_name(&self.workload, &wopts) else {
            return Err(UsageError(format!(
                "unknown workload '{}' (valid: {})",
                self.workload,
                names.join(", ")
            )));
        };
        let fail = |m: String| Err(UsageError(m));
        if let Some(t) = &self.topology {
            if !workloads::broadcast::TOPOLOGIES.contains(&t.as_str()) {
                return fail(format!(
                    "unknown --topology '{t}' (valid: {})",
                    workloads::broadcast::TOPOLOGIES.join(", ")
                ));
            }
        }
        if self.mode == RunMode::Lockstep && !workload.setup_ops(&["n".into()]).is_empty() {
            return fail(format!(
                "workload '{}' sends setup ops (topology) before clients start, which only \
                 free-running runs do; use --mode free",
                self.workload
            ));
        }
        if self.fault_services && self.mode == RunMode::Lockstep {
            return fail(
                "--fault-services faults the links to the Maelstrom services, which only \
                 free-running runs serve; use --mode free"
                    .into(),
            );
        }
        let services = if self.fault_services {
            crate::services::SERVICES.len()
        } else {
            0
        };
        if self.nodes + services > crate::nemesis::NODES_MAX {
            return fail(format!(
                "--fault-services puts {services} services in the link table next to the nodes: \
                 at most {} nodes",
                crate::nemesis::NODES_MAX - services
            ));
        }
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
        // The same ceiling --schedule enforces: a longer run is a typo, not a plan.
        let max = crate::nemesis::TIME_LIMIT_MS_MAX;
        if let Some(t) = self.time_limit_ms.filter(|&t| t > max) {
            return fail(format!(
                "--time-limit {t} ms is longer than the most a run may last, {max} ms (7 days)"
            ));
        }
        if let Some(r) = self.recovery_ms.filter(|&r| r > max) {
            return fail(format!(
                "--recovery-time {r} ms is longer than the most a run may last, {max} ms (7 days)"
            ));
        }
        let plan = self.fault_plan()?;
        let time_limit_ms = plan.time_limit_ms;
        if !self.scheduler.is_random() {
            if self.mode != RunMode::Lockstep {
                return fail(format!(
                    "--scheduler {} orders lockstep deliveries: add --mode lockstep",
                    self.scheduler
                ));
            }
            if !plan.opts.kinds.is_empty() || plan.schedule.is_some() {
                let kinds: Vec<&str> = plan.opts.kinds.iter().map(|k| k.name()).collect();
                return fail(format!(
                    "--scheduler {} delivers every message and crashes nothing, so it runs \
                     without faults: add --nemesis none (faults asked for: {})",
                    self.scheduler,
                    if kinds.is_empty() {
                        "a --schedule plan".to_string()
                    } else {
                        kinds.join(",")
                    }
                ));
            }
        }
        if time_limit_ms == 0 {
            return fail("--time-limit must be positive".into());
        }
        if self.op_timeout_ms == 0 {
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
        let instances = self
            .instances
            .or(workload.instances_default())
            .unwrap_or_else(|| {
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
        if self.node_cmd.as_ref().is_some_and(Vec::is_empty) {
            return fail("--node-cmd names no program".into());
        }
        let stdio_bridge = match (self.stdio, &self.node_cmd) {
            (false, _) => None,
            (true, None) => return fail("--stdio needs --node-cmd (the program to run)".into()),
            (true, Some(_)) => {
                Some(registry::find_squall_bin().map_err(|e| UsageError(format!("--stdio: {e}")))?)
            }
        };
        let algorithm = self
            .algorithm
            .clone()
            .unwrap_or_else(|| workload.default_algorithm().to_string());
        if self.node_cmd.is_none() && workload.default_algorithm().is_empty() {
            return fail(format!(
                "workload '{}' has no bundled node: give the node program with --node-cmd \
                 (and --stdio for a Maelstrom node), or use `squall test --bin`",
                self.workload
            ));
        }
        let (node_bin, claimed) = if self.node_cmd.is_none() {
            self.bundled_node(&algorithm)?
        } else {
            if !self.bugs.is_empty() {
                return fail("--bug applies to bundled algorithms, not to --node-cmd".into());
            }
            (PathBuf::new(), None)
        };
        let guarantee = self.guarantee(claimed.as_deref())?;
        if let Some(d) = &self.data_dir {
            std::fs::create_dir_all(d).map_err(|e| {
                UsageError(format!("--data-dir {}: cannot create it: {e}", d.display()))
            })?;
        }
        let fs = self.check_fs(&plan)?;
        let seed = self.seed.unwrap_or_else(random_seed);
        Ok(RunConfig {
            workload: self.workload.clone(),
            algorithm,
            node_cmd: self.node_cmd.clone(),
            node_bin,
            nodes: self.nodes,
            clients: self.clients,
            rate: self.rate,
            time_limit_ms,
            seed,
            op_timeout_ms: self.op_timeout_ms,
            results_dir: self.results_dir.clone(),
            data_dir: self.data_dir.clone(),
            node_env: self.node_env.clone(),
            lockstep_latency: self.lockstep_latency,
            scheduler: self.scheduler.clone(),
            bugs: self.bugs.clone(),
            params: self.params.clone(),
            instances,
            contention: self.contention,
            late_percent: self.late_percent,
            mode: self.mode,
            nemesis: plan.opts,
            schedule: plan.schedule,
            schedule_from: self.plan.as_ref().map(|p| p.path.clone()),
            fs,
            stdio_bridge,
            node_id_base: self.node_id_base(),
            topology: self.topology.clone(),
            guarantee,
            consistency: self.consistency()?,
            fault_services: self.fault_services,
            version: env!("CARGO_PKG_VERSION").to_string(),
            silent: false,
        })
    }

    /// `--consistency-models` as a model, if given.
    fn consistency(&self) -> Result<Option<workloads::txn::Consistency>, UsageError> {
        self.consistency_models
            .as_deref()
            .map(|raw| {
                raw.parse()
                    .map_err(|e| UsageError(format!("--consistency-models: {e}")))
            })
            .transpose()
    }

    /// The number of the first node id: 0 in stdio runs (Maelstrom's `n0`), else 1.
    pub fn node_id_base(&self) -> usize {
        usize::from(!self.stdio)
    }

    /// The run's file system: `auto` resolved (lossy for a free-running run under every
    /// kind of fault, drawn from the seed, when FUSE is usable here; else native), or the
    /// one asked for, which must mount here or the run is refused.
    fn check_fs(&self, plan: &FaultPlan) -> Result<lossyfs::fleet::FsConfig, UsageError> {
        let wanted = if self.mode != RunMode::Free {
            Err("lockstep runs stay native")
        } else if plan.schedule.is_some() {
            Err("a --schedule plan runs native")
        } else if !FaultKind::ALL.iter().all(|k| plan.opts.kinds.contains(k)) {
            Err("the nemesis is not all")
        } else {
            Ok(())
        };
        if self.fs.kind == lossyfs::fleet::FsKind::Auto {
            return Ok(self.fs.clone().resolve_auto(wanted, || self.fuse_usable()));
        }
        let fs = self.fs.clone();
        if fs.is_native() {
            return Ok(fs);
        }
        let refuse = |why: String| UsageError(format!("--fs {}: {why}", fs.kind.name()));
        if self.mode != RunMode::Free {
            return Err(refuse("only free-running runs (--mode free) use it".into()));
        }
        self.fuse_usable().map_err(refuse)?;
        Ok(fs)
    }

    /// Whether a lossyfs mount works here: the helper is found and a probe mounts.
    fn fuse_usable(&self) -> Result<(), String> {
        lossyfs::helper::find_bin()?;
        std::fs::create_dir_all(&self.results_dir)
            .map_err(|e| format!("{}: {e}", self.results_dir.display()))?;
        lossyfs::mount::probe(&self.results_dir).map_err(|e| e.to_string())
    }

    /// What the multicast checkers judge: `--order` (else the algorithm's `claimed`
    /// order, else none) and reliability if `--reliable` or, without `--order`, if the
    /// algorithm claims it. `None` for other workloads, which refuse the two flags.
    fn guarantee(
        &self,
        claimed: Option<&str>,
    ) -> Result<Option<workloads::multicast::Guarantee>, UsageError> {
        if self.workload != "multicast" {
            if self.order.is_some() || self.reliable {
                return Err(UsageError(
                    "--order and --reliable apply to the multicast workload".into(),
                ));
            }
            return Ok(None);
        }
        let claimed: workloads::multicast::Guarantee = match claimed {
            Some(text) => text.parse().map_err(|e| {
                UsageError(format!("the algorithm claims an unknown guarantee: {e}"))
            })?,
            None => Default::default(),
        };
        Ok(Some(match self.order {
            Some(order) => workloads::multicast::Guarantee {
                order,
                reliable: self.reliable,
            },
            None => workloads::multicast::Guarantee {
                order: claimed.order,
                reliable: self.reliable || claimed.reliable,
            },
        }))
    }

    /// The bundled node binary, once it is known to serve `algorithm` for the workload
    /// with the mutants asked for, and the guarantee the algorithm claims, if any.
    fn bundled_node(&self, algorithm: &str) -> Result<(PathBuf, Option<String>), UsageError> {
        let fail = |m: String| Err(UsageError(m));
        let bin = registry::find_node_bin().map_err(|e| UsageError(e.to_string()))?;
        let registry = registry::node_registry(&bin).map_err(|e| UsageError(e.to_string()))?;
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
        Ok((bin, info.guarantee.clone()))
    }

    /// The fault options, or the plan, checked.
    fn fault_plan(&self) -> Result<FaultPlan, UsageError> {
        let fail = |m: String| Err(UsageError(m));
        let mut opts = NemesisOpts {
            recovery_ms: self.recovery_ms.unwrap_or(DEFAULT_RECOVERY_MS),
            ..self.nemesis.clone()
        };
        opts.validate().map_err(|e| {
            let flag = match &e {
                NemesisError::BadOption { option, .. } => flag_of(option),
                NemesisError::UnknownKind { .. } => "--nemesis",
            };
            UsageError(format!("{flag}: {e}"))
        })?;
        let Some(PlanFile { path, schedule }) = &self.plan else {
            return Ok(FaultPlan {
                time_limit_ms: self.time_limit_ms.unwrap_or(DEFAULT_TIME_LIMIT_MS),
                opts,
                schedule: None,
            });
        };
        let nodes = crate::config::node_ids(self.node_id_base(), self.nodes);
        if schedule.nodes != nodes {
            return fail(format!(
                "--schedule {}: its nodes {:?} are not this run's {:?} (--nodes {})",
                path.display(),
                schedule.nodes,
                nodes,
                self.nodes
            ));
        }
        if let Some(t) = self.time_limit_ms.filter(|&t| t != schedule.time_limit_ms) {
            return fail(format!(
                "--time-limit {t} ms disagrees with the schedule's time_limit_ms {}; leave one out",
                schedule.time_limit_ms
            ));
        }
        if let Some(r) = self.recovery_ms.filter(|&r| r != schedule.recovery_ms) {
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
            schedule: Some(schedule.clone()),
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

/// The topology a workload is given: `--topology`, else Maelstrom's default (`grid`).
pub fn topology_or_default(topology: Option<&str>) -> String {
    topology
        .unwrap_or(workloads::broadcast::TOPOLOGY_DEFAULT)
        .to_string()
}
