//! One run, start to verdict: directories, router, nodes, clients, the clock, teardown,
//! checking and the files in the run directory.
//!
//! The sequence is fixed: validate -> create the run dir and `run.json` -> start the router
//! -> spawn nodes -> `init` each node as it says hello -> clients run for the time limit ->
//! clients stop issuing (ops in flight finish or time out) -> final ops -> teardown (every
//! process reaped) -> history read back from disk -> checkers -> `verdict.json`,
//! `metrics.json`, `latest`. Ctrl-C jumps to the stop step; what was recorded is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use proto::body::Control;
use proto::Stamped;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use workloads::verdict::TimedReport;
use workloads::workload::WorkloadOpts;
use workloads::{CheckInput, Checker, Verdict, VerdictKind};

use crate::chaos::Chaos;
use crate::clients::{self, Client, ClientOpts, ClientShared, Recorder};
use crate::finish::{ops_line, publish, verdict_line, Ending, Judged};
use crate::nemesis::{self, NemesisOpts, Schedule};
use crate::router::{Gate, Router, RouterEvent};
use crate::supervisor::{NodeSpec, SpawnError, Supervisor};
use crate::{metrics, results, UsageError};

/// How long nodes have to connect and answer `init`.
pub const STARTUP_TIMEOUT_MS: u64 = 10_000;
/// How long nodes have to exit after SIGTERM before SIGKILL.
pub const TEARDOWN_GRACE_MS: u64 = 1_000;

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

/// Node data outside the run directory, removed on drop ([`RunConfig::outside_data`]),
/// on every way out of a run.
pub struct OutsideData(Option<PathBuf>);

impl Drop for OutsideData {
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
    /// squall's version.
    pub version: String,
    /// One run of a batch (`squall soak`): print nothing when it starts (the soak draws
    /// its progress line there) and leave `latest` alone (the soak deletes passing runs).
    #[serde(skip)]
    pub silent: bool,
}

/// `late_percent` of a `run.json` written before late proposals existed.
fn late_percent_default() -> u32 {
    workloads::workload::LATE_PERCENT_DEFAULT
}

impl RunConfig {
    /// The argv every node is started with: `--node-cmd`, or the bundled node with the
    /// algorithm, bugs and params.
    pub fn node_argv(&self) -> Vec<String> {
        match &self.node_cmd {
            Some(argv) => argv.clone(),
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
    pub fn node_spec(&self, dir: &Path, id: &str, router: &str) -> NodeSpec {
        let data_dir = self.node_data_root(dir).join(id);
        NodeSpec {
            id: id.to_string(),
            argv: self.node_argv(),
            env: vec![
                ("SQUALL_NODE_ID".into(), id.to_string()),
                ("SQUALL_ROUTER".into(), router.to_string()),
                ("SQUALL_DATA_DIR".into(), data_dir.display().to_string()),
                ("SQUALL_SEED".into(), self.seed.to_string()),
            ],
            data_dir,
            log_path: dir.join("nodes").join(format!("{id}.log")),
            admission: None,
        }
    }

    /// A guard that removes the node data of the run in `dir` when it is dropped, if
    /// `--data-dir` put it elsewhere (scratch space, often a tmpfs); data inside the run
    /// directory stays with the run. Hold it until the nodes are gone.
    pub fn outside_data(&self, dir: &Path) -> OutsideData {
        OutsideData(self.data_dir.is_some().then(|| self.node_data_root(dir)))
    }

    /// Node ids `n1..nN`.
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }

    /// A fresh op generator of the run's workload.
    pub fn workload(&self) -> Result<Box<dyn workloads::Workload>, UsageError> {
        let opts = WorkloadOpts {
            instances: self.instances,
            contention: self.contention,
            nodes: self.nodes,
            late_percent: self.late_percent,
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

/// A node that broke the protocol, stopped answering or died on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Faulty {
    /// The node (connections that never became a node are counted by the router's gate,
    /// not listed here).
    pub node: String,
    /// What happened.
    pub what: String,
    /// Microseconds since the start (virtual in lockstep).
    pub at_us: u64,
}

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

struct Live {
    router: Router,
    sup: Supervisor,
    events: tokio::sync::mpsc::UnboundedReceiver<RouterEvent>,
    inbox: tokio::sync::mpsc::Receiver<crate::router::Delivered>,
    reports: Vec<TimedReport>,
    faulty: Vec<Faulty>,
    ready: BTreeSet<String>,
    init_msg_id: u64,
    node_ids: Vec<String>,
    chaos: Chaos,
    /// `init_ok`s seen per node: every one after the first is a restart.
    inits: BTreeMap<String, u64>,
    /// The restarts clients aim late proposals at.
    restarts: Arc<Mutex<Vec<clients::Restarts>>>,
}

impl Live {
    fn send_init(&mut self, node: &str) {
        self.init_msg_id += 1;
        let init = Control::Init {
            msg_id: self.init_msg_id,
            node_id: node.to_string(),
            node_ids: self.node_ids.clone(),
        };
        let body = serde_json::to_string(&init).expect("init serialises");
        self.router.send_local(proto::HARNESS, node, &body);
    }

    fn on_router_event(&mut self, ev: RouterEvent) {
        match ev {
            RouterEvent::Connected { node } => self.send_init(&node),
            RouterEvent::Disconnected { node } => {
                self.ready.remove(&node);
            }
            RouterEvent::Faulty { node, what } => {
                tracing::warn!(node = %node, what = %what, "node broke the protocol");
                let at_us = self.router.now_us();
                self.faulty.push(Faulty { node, what, at_us });
            }
        }
    }

    fn on_harness_msg(&mut self, d: crate::router::Delivered) {
        if let Ok(Control::InitOk { .. }) = serde_json::from_str::<Control>(&d.body) {
            self.chaos.node_ready(&d.src, &self.router);
            let inits = self.inits.entry(d.src.clone()).or_default();
            *inits += 1;
            if let (true, Some(i)) = (*inits > 1, self.node_ids.iter().position(|n| *n == d.src)) {
                self.restarts.lock().expect("restarts lock")[i] = clients::Restarts {
                    count: *inits - 1,
                    last_ns: d.at_us * 1_000,
                };
            }
            self.ready.insert(d.src);
            return;
        }
        match serde_json::from_str::<proto::Stamped>(&d.body) {
            Ok(Stamped { report, mono_ns }) => self.reports.push(TimedReport {
                time: d.at_us * 1000,
                made: mono_ns.and_then(|ns| self.router.made_ns(ns, d.at_us)),
                node: d.src,
                report,
            }),
            Err(_) => {
                let at_us = self.router.now_us();
                let what = format!(
                    "sent the harness an unknown message: {}",
                    truncate(&d.body, 120)
                );
                self.faulty.push(Faulty {
                    node: d.src,
                    what,
                    at_us,
                });
            }
        }
    }

    fn on_exit(&mut self, node: &str, status: &str, expected: bool) {
        if !expected {
            let at_us = self.router.now_us();
            self.faulty.push(Faulty {
                node: node.to_string(),
                what: format!("exited unexpectedly ({status})"),
                at_us,
            });
            self.chaos.node_exited(node, status);
        }
        // A node restarted before its old process was reaped has a new connection by
        // now; the old one closed by itself.
        if !self.sup.is_running(node) {
            self.router.disconnect(node);
            self.ready.remove(node);
        }
    }

    fn on_exits(&mut self, exits: Vec<(crate::supervisor::ExitEvent, bool)>) {
        for (ev, expected) in exits {
            self.on_exit(&ev.node, &ev.status.to_string(), expected);
        }
    }

    /// Handles router events, harness messages and process exits while `work` runs;
    /// returns its output.
    async fn pump_during<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                Some(ev) = self.events.recv() => self.on_router_event(ev),
                Some(d) = self.inbox.recv() => self.on_harness_msg(d),
                Some((ev, expected)) = self.sup.next_exit() => {
                    self.on_exit(&ev.node, &ev.status.to_string(), expected);
                }
            }
        }
    }

    /// Handles whatever arrives until `deadline` (or until `done()` holds).
    async fn pump_until(
        &mut self,
        deadline: Instant,
        stop: &mut watch::Receiver<bool>,
        done: impl Fn(&Live) -> bool,
    ) {
        while !done(self) {
            let next_fault = self.chaos.next_at();
            tokio::select! {
                Some(ev) = self.events.recv() => self.on_router_event(ev),
                Some(d) = self.inbox.recv() => self.on_harness_msg(d),
                Some((ev, expected)) = self.sup.next_exit() => {
                    let status = ev.status.to_string();
                    self.on_exit(&ev.node, &status, expected);
                }
                Some(fired) = self.chaos.fired_rx.recv() => {
                    let exits = self.chaos.run_fired(fired, &self.router, &mut self.sup).await;
                    self.on_exits(exits);
                }
                _ = tokio::time::sleep_until(next_fault.unwrap_or(deadline)), if next_fault.is_some() => {
                    let exits = self.chaos.run_due(&self.router, &mut self.sup, false).await;
                    self.on_exits(exits);
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = stop_requested(stop) => return,
            }
        }
    }
}

/// Completes once `stop` turns true; never, if its sender is gone without doing so.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `s` cut to at most `n` bytes (at a character boundary) with `...` when it was longer:
/// for node output and reasons quoted in messages.
pub fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

/// Runs one configuration in its mode to a verdict. `interrupt` turning true (Ctrl-C)
/// ends the run early; what was recorded is still checked and written.
pub async fn run_any(
    cfg: RunConfig,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    match cfg.mode {
        RunMode::Free => run(cfg, interrupt).await,
        RunMode::Lockstep => {
            let schedule = cfg.fault_schedule();
            crate::lockstep::run_lockstep(cfg, schedule, interrupt).await
        }
    }
}

/// Runs one configuration free-running to a verdict. `interrupt` turning true (Ctrl-C)
/// ends the run early; what was recorded is still checked and written.
pub async fn run(
    cfg: RunConfig,
    mut interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    let workload = cfg.workload()?;
    let final_ops = workload.final_ops();
    let checkers = workload.checkers();

    let schedule = cfg.fault_schedule();
    // Mounts a killed harness left behind in this results directory go first.
    lossyfs::mount::cleanup_stale(&cfg.results_dir);
    if let Some(d) = &cfg.data_dir {
        lossyfs::mount::cleanup_stale(d);
    }
    let (run_id, dir) = open_run_dir(&cfg, &schedule)?;
    let node_data = cfg.outside_data(&dir);
    let recovery_ms = schedule.recovery_ms;

    let start = Instant::now();
    let node_ids = cfg.node_ids();
    let client_ids: Vec<String> = (1..=cfg.clients).map(|i| format!("c{i}")).collect();
    let mut addrs = vec![proto::HARNESS.to_string()];
    addrs.extend(node_ids.iter().cloned());
    addrs.extend(client_ids.iter().cloned());
    let mut tasks = JoinSet::new();
    let gate = Gate::new(&node_ids);
    let (router, events) = Router::start(&addrs, gate.clone(), start, &mut tasks).await?;
    router.log_messages(&node_ids);
    let inbox = router.register_local(proto::HARNESS, 64 * 1024);
    let mut live = Live {
        router: router.clone(),
        sup: Supervisor::new(start.into_std()),
        events,
        inbox,
        reports: Vec::new(),
        faulty: Vec::new(),
        ready: BTreeSet::new(),
        init_msg_id: 0,
        node_ids: node_ids.clone(),
        chaos: Chaos::new(schedule, cfg.nemesis.kinds.iter().copied().collect(), start),
        inits: BTreeMap::new(),
        restarts: Arc::new(Mutex::new(vec![
            clients::Restarts::default();
            node_ids.len()
        ])),
    };

    if !cfg.fs.is_native() {
        let bin = lossyfs::helper::find_bin().map_err(UsageError)?;
        let backing = cfg.node_data_root(&dir).join(".backing");
        let fleet = lossyfs::fleet::Fleet::new(cfg.fs, bin, cfg.seed, &backing);
        live.sup.set_fs(fleet);
    }
    let router_addr = router.local_addr().to_string();
    for id in &node_ids {
        let spec = cfg.node_spec(&dir, id, &router_addr).admitted_by(&gate);
        if let Err(e) = live.sup.spawn(spec).await {
            live.sup
                .teardown(Duration::from_millis(TEARDOWN_GRACE_MS))
                .await;
            tasks.abort_all();
            return Err(match e {
                SpawnError::Program { .. } => UsageError(e.to_string()).into(),
                other => other.into(),
            });
        }
    }

    // Startup: every node connects and answers init.
    let n = node_ids.len();
    let startup_deadline = Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS);
    live.pump_until(startup_deadline, &mut interrupt, |l| {
        l.ready.len() == n || l.sup.running().len() < n
    })
    .await;
    let startup_failed = live.ready.len() < n;

    let (rec, rec_handle) = Recorder::start(&dir.join("history.jsonl"), start)?;
    let shared = Arc::new(ClientShared {
        workload: Mutex::new(workload),
        next_process: AtomicU64::new(0),
        late_ops: AtomicU64::new(0),
        nodes: node_ids.clone(),
        restarts: live.restarts.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut client_tasks = JoinSet::new();
    let mut clients_back: Vec<Client> = Vec::new();
    let mut quiet_from = None;
    let mut interrupted = *interrupt.borrow();
    if !startup_failed && !interrupted {
        let interval = Duration::from_secs_f64(cfg.clients as f64 / cfg.rate);
        for (i, addr) in client_ids.iter().enumerate() {
            let client = Client::new(addr, &router);
            let opts = ClientOpts {
                interval,
                op_timeout: Duration::from_millis(cfg.op_timeout_ms),
                seed: clients::client_seed(cfg.seed, i),
            };
            client_tasks.spawn(clients::run_client(
                client,
                shared.clone(),
                rec.clone(),
                opts,
                stop_rx.clone(),
            ));
        }
        live.chaos.begin(&router);
        let end = Instant::now() + Duration::from_millis(cfg.time_limit_ms);
        live.pump_until(end, &mut interrupt, |_| false).await;
        interrupted = *interrupt.borrow();
        let _ = stop_tx.send(true);
        if !interrupted {
            // Events timed at the very end, then the final heal: every fault lifted,
            // killed nodes restarted, paused ones resumed.
            let exits = live.chaos.run_due(&router, &mut live.sup, true).await;
            live.on_exits(exits);
            let (healed_at, exits) = live.chaos.heal_all(&router, &mut live.sup).await;
            live.on_exits(exits);
            quiet_from = Some(healed_at);
        }
        // Ops in flight finish or time out; Ctrl-C waits at most a second.
        let wait = if interrupted {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(cfg.op_timeout_ms + 1000)
        };
        let drain_deadline = Instant::now() + wait;
        live.pump_during(async {
            loop {
                tokio::select! {
                    joined = client_tasks.join_next() => match joined {
                        Some(Ok(c)) => clients_back.push(c),
                        Some(Err(_)) => {}
                        None => break,
                    },
                    _ = tokio::time::sleep_until(drain_deadline) => {
                        client_tasks.abort_all();
                        break;
                    }
                }
            }
        })
        .await;
        if let (Some(_), false, false) = (quiet_from, final_ops.is_empty(), clients_back.is_empty())
        {
            // Final ops run in the quiet window; unanswered reads are retried for the
            // recovery time from when they begin (ops in flight may have used part of the
            // window since the heal), so a node that restarted or has yet to learn a
            // decision has the whole window to catch up.
            let window_end = Instant::now() + Duration::from_millis(recovery_ms);
            let clients = std::mem::take(&mut clients_back);
            let finals = FinalOps {
                nodes: live.sup.running(),
                ops: final_ops.clone(),
                op_timeout: Duration::from_millis(cfg.op_timeout_ms),
                window_end,
            };
            let finished = live
                .pump_during(async {
                    tokio::select! {
                        _ = finals.run(clients, &shared, &rec) => true,
                        _ = stop_requested(&mut interrupt) => false,
                    }
                })
                .await;
            interrupted |= !finished;
        }
    }
    drop(stop_tx);

    // The nodes the checkers may expect answers from: those up when the run ended.
    let live_nodes = live.sup.running();
    live.sup
        .teardown(Duration::from_millis(TEARDOWN_GRACE_MS))
        .await;
    drop(node_data);
    while let Some((ev, expected)) = live.sup.try_next_exit() {
        live.on_exit(&ev.node, &ev.status.to_string(), expected);
    }
    while let Ok(ev) = live.events.try_recv() {
        live.on_router_event(ev);
    }
    while let Ok(d) = live.inbox.try_recv() {
        live.on_harness_msg(d);
    }
    drop(rec);
    drop(clients_back);
    let _ = rec_handle.await;
    tasks.abort_all();

    let (fault_report, mut warnings) = live.chaos.report(&router, &live.sup);
    warnings.extend(cfg.warnings());
    let fs_report = live.sup.fs_report();
    if let Some((_, Some(w))) = &fs_report {
        warnings.push(nemesis::Warning::other(w.clone()));
    }
    results::write_jsonl(&dir.join("reports.jsonl"), &live.reports)?;
    let report_count = live.reports.len();
    let startup_failure = startup_failed.then(|| {
        let missing: Vec<&String> = node_ids
            .iter()
            .filter(|n| !live.ready.contains(*n))
            .collect();
        format!(
            "nodes {missing:?} did not start (no init_ok within {STARTUP_TIMEOUT_MS} ms){}; see {}/nodes/",
            gate.rejections().startup_hint(),
            dir.display()
        )
    });
    let Judged {
        verdict,
        reason,
        ops,
        warnings,
    } = Ending {
        cfg: &cfg,
        run_id: &run_id,
        dir: &dir,
        checkers: &checkers,
        reports: std::mem::take(&mut live.reports),
        faults: fault_report.spans.clone(),
        quiet_from,
        live_nodes,
        issues: RunIssues {
            startup_failure,
            faulty: &live.faulty,
            interrupted,
        },
        warnings,
        verdict_extra: json!({}),
    }
    .judge()?;

    let message_log = match router.write_message_log(&dir.join("messages.jsonl")) {
        Ok(summary) => summary,
        Err(e) => {
            tracing::warn!(error = %e, "could not write messages.jsonl");
            None
        }
    };
    let rstats = router.stats();
    let metrics_json = json!({
        "ops": metrics::op_counts(&ops),
        "late_ops": shared.late_ops.load(Ordering::Relaxed),
        "latency_ms": metrics::latency_by_kind(&ops),
        "messages": {
            "total": rstats.by_type.values().sum::<u64>(),
            "by_type": rstats.by_type,
            "per_op": metrics::messages_per_op(&rstats.by_type, &ops),
        },
        "links": rstats.links,
        "processes": live.sup.counters(),
        "faults": fault_report,
        "process_events": live.sup.records(),
        "reports": report_count,
        "message_log": message_log,
        "router": {"rejected_connections": gate.rejections()},
        "fs": fs_report.map(|(m, _)| m),
    });
    publish(&cfg, &run_id, &dir, &metrics_json)?;

    let summary = summary_text(
        &run_id,
        &dir,
        verdict,
        &reason,
        &warnings,
        &metrics_json["ops"],
        &metrics_json["latency_ms"],
    );
    Ok(RunOutcome {
        dir,
        verdict,
        summary,
    })
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

/// Runs every checker. The overall verdict is the worst one, and its reason that of the
/// first checker that gave it.
pub fn judge(
    checkers: &[Box<dyn Checker>],
    input: &CheckInput,
) -> (Vec<Verdict>, VerdictKind, String) {
    let verdicts: Vec<Verdict> = checkers.iter().map(|c| c.check(input)).collect();
    let overall = verdicts
        .iter()
        .map(|v| v.verdict)
        .max()
        .unwrap_or(VerdictKind::Unknown);
    let reason = verdicts
        .iter()
        .find(|v| v.verdict == overall)
        .map(|v| format!("{}: {}", v.checker, v.reason))
        .unwrap_or_else(|| "no checker ran".into());
    (verdicts, overall, reason)
}

/// What besides the checkers decides a run's verdict, in both modes.
pub struct RunIssues<'a> {
    /// Why some nodes never started, if they did not.
    pub startup_failure: Option<String>,
    /// Nodes that broke the protocol or died on their own.
    pub faulty: &'a [Faulty],
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
}

/// The overall verdict and reason once the checkers have spoken: a run some nodes never
/// joined is at least `unknown`; a run the checkers found nothing wrong with but a node
/// misbehaved in is `unknown` (squall cannot vouch for it); so is an interrupted run that
/// broke no safety property (its history is partial and termination was never judged).
pub fn settle(
    overall: VerdictKind,
    reason: String,
    issues: RunIssues<'_>,
) -> (VerdictKind, String) {
    if let Some(why) = issues.startup_failure {
        (overall.max(VerdictKind::Unknown), why)
    } else if let (Some(first), VerdictKind::Valid) = (issues.faulty.first(), overall) {
        let n = issues.faulty.len();
        (
            VerdictKind::Unknown,
            format!("{n} node fault(s): {} {}", first.node, first.what),
        )
    } else if issues.interrupted && overall == VerdictKind::Valid {
        // Safety held as far as it went, but the run never reached its quiet window, so
        // termination was never judged: squall cannot call it valid.
        (
            VerdictKind::Unknown,
            format!("interrupted before the quiet window, termination not judged; {reason}"),
        )
    } else {
        (overall, reason)
    }
}

/// The final ops of the quiet window: every op on every node that was up at the heal.
struct FinalOps {
    nodes: Vec<String>,
    ops: Vec<proto::ClientOp>,
    op_timeout: Duration,
    /// Unsettled ops are retried until this instant.
    window_end: Instant,
}

/// Pause between retry passes of the final ops.
const FINAL_RETRY_MS: u64 = 200;

impl FinalOps {
    /// Runs each op on each node; ops that did not settle (no `ok`, or a read of
    /// nothing) are tried again, pass after pass, until they settle or the window ends.
    async fn run(self, clients: Vec<Client>, shared: &Arc<ClientShared>, rec: &Recorder) {
        let mut work: Vec<(String, proto::ClientOp)> = Vec::new();
        for node in &self.nodes {
            for op in &self.ops {
                work.push((node.clone(), op.clone()));
            }
        }
        let mut clients = clients;
        loop {
            let chunk = work.len().div_ceil(clients.len()).max(1);
            let mut set = JoinSet::new();
            let parts: Vec<Vec<(String, proto::ClientOp)>> =
                work.chunks(chunk).map(<[_]>::to_vec).collect();
            let idle: Vec<Client> = clients.split_off(parts.len().min(clients.len()));
            for (client, part) in clients.into_iter().zip(parts) {
                let (shared, rec) = (shared.clone(), rec.clone());
                set.spawn(final_pass(client, part, shared, rec, self.op_timeout));
            }
            clients = idle;
            work.clear();
            while let Some(joined) = set.join_next().await {
                if let Ok((client, unsettled)) = joined {
                    clients.push(client);
                    work.extend(unsettled);
                }
            }
            let retry_at = Instant::now() + Duration::from_millis(FINAL_RETRY_MS);
            if work.is_empty() || clients.is_empty() || retry_at >= self.window_end {
                return;
            }
            tokio::time::sleep_until(retry_at).await;
        }
    }
}

/// One client's share of a final pass; returns the client and the ops to retry.
async fn final_pass(
    mut client: Client,
    part: Vec<(String, proto::ClientOp)>,
    shared: Arc<ClientShared>,
    rec: Recorder,
    op_timeout: Duration,
) -> (Client, Vec<(String, proto::ClientOp)>) {
    let mut unsettled = Vec::new();
    let mut process = shared.next_process.fetch_add(1, Ordering::SeqCst);
    for (node, op) in part {
        let value = workloads::history::op_value(&op);
        rec.record(
            process,
            workloads::EventType::Invoke,
            op.f(),
            value,
            Some(&node),
            None,
        );
        let answer = client.call(&node, &op, op_timeout).await;
        if clients::record_call(&rec, client.router(), process, &node, &op, &answer) {
            process = shared.next_process.fetch_add(1, Ordering::SeqCst);
        }
        let settled = match &answer {
            clients::Answer::Reply(proto::ClientReply::Error { .. })
            | clients::Answer::Timeout
            | clients::Answer::Malformed(_) => false,
            clients::Answer::Reply(reply) => shared
                .workload
                .lock()
                .expect("workload lock")
                .final_settled(&op, reply),
        };
        if !settled {
            unsettled.push((node, op));
        }
    }
    (client, unsettled)
}

fn summary_text(
    run_id: &str,
    dir: &Path,
    verdict: VerdictKind,
    reason: &str,
    warnings: &[nemesis::Warning],
    counts: &Value,
    latency: &Value,
) -> String {
    let mut s = String::new();
    s.push_str(&format!("run       {run_id}\n"));
    s.push_str(&ops_line(counts));
    if let Some(map) = latency.as_object() {
        for (f, l) in map {
            s.push_str(&format!(
                "latency   {f}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} ok)\n",
                l["p50"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0),
                l["count"]
            ));
        }
    }
    s.push_str(&verdict_line(verdict, reason, warnings));
    s.push_str(&format!("results   {}\n", dir.display()));
    s
}

/// Reads the node registry from `squall-node --list-json`.
pub fn node_registry(node_bin: &Path) -> anyhow::Result<Vec<AlgoInfo>> {
    let out = std::process::Command::new(node_bin)
        .arg("--list-json")
        .output()
        .with_context(|| format!("run {} --list-json", node_bin.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} --list-json failed: {}",
        node_bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One algorithm as `squall-node --list-json` describes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AlgoInfo {
    /// Name.
    pub name: String,
    /// One line.
    pub summary: String,
    /// Workloads served.
    pub workloads: Vec<String>,
    /// Mutants.
    pub bugs: Vec<String>,
}

/// Finds `squall-node`: `$SQUALL_NODE_BIN`, else next to this executable.
pub fn find_node_bin() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("SQUALL_NODE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut candidates = vec![exe.with_file_name("squall-node")];
    // Test binaries live one level down, in target/<profile>/deps.
    if let Some(parent) = exe.parent().and_then(|p| p.parent()) {
        candidates.push(parent.join("squall-node"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("cannot find squall-node next to {}; build it with `cargo build --release` or set SQUALL_NODE_BIN", exe.display()))
}
