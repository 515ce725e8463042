//! A free-running run: real time, real concurrency, the nodes' own timers. The router
//! carries every message, the nemesis's executor ([`executor`]) applies the schedule,
//! client workers ([`crate::clients`]) issue ops for the time limit, then the final heal,
//! the final ops ([`final_ops`]) and teardown; [`crate::verdict`] judges. The sequence
//! is [`crate::lifecycle`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::body::Control;
use proto::Stamped;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use workloads::verdict::TimedReport;

use crate::clients::{self, Client, ClientOpts, ClientShared, Recorder};
use crate::config::RunConfig;
use crate::lifecycle::{open_run_dir, RunOutcome, STARTUP_TIMEOUT_MS, TEARDOWN_GRACE_MS};
use crate::router::{Gate, Router, RouterEvent};
use crate::supervisor::{SpawnError, Supervisor};
use crate::text::truncate;
use crate::verdict::{
    latency_lines, summary_text, verdict_line, write_outputs, Evidence, FaultBook, Judgement,
    RunIssues,
};
use crate::{metrics, results, services, UsageError};

pub mod executor;
pub mod final_ops;

use executor::NemesisExecutor;

use final_ops::FinalOps;

/// A free-running run in progress: the router, the supervisor, the nemesis executor and
/// what the run has gathered so far.
struct FreeRun {
    router: Router,
    sup: Supervisor,
    events: tokio::sync::mpsc::UnboundedReceiver<RouterEvent>,
    inbox: tokio::sync::mpsc::Receiver<crate::router::Delivered>,
    reports: Vec<TimedReport>,
    faulty: FaultBook,
    ready: BTreeSet<String>,
    init_msg_id: u64,
    node_ids: Vec<String>,
    nemesis: NemesisExecutor,
    /// `init_ok`s seen per node: every one after the first is a restart.
    inits: BTreeMap<String, u64>,
    /// The restarts clients aim late proposals at.
    restarts: Arc<Mutex<Vec<clients::Restarts>>>,
}

impl FreeRun {
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
            RouterEvent::Faulty { node, kind, what } => {
                tracing::warn!(node = %node, what = %what, "node broke the protocol");
                let at_us = self.router.now_us();
                self.faulty.add(&node, kind, what, at_us);
            }
        }
    }

    fn on_harness_msg(&mut self, d: crate::router::Delivered) {
        if let Ok(Control::InitOk { .. }) = serde_json::from_str::<Control>(&d.body) {
            self.nemesis.node_ready(&d.src, &self.router);
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
                self.faulty.add(&d.src, "unknown_report", what, at_us);
            }
        }
    }

    fn on_exit(&mut self, node: &str, status: &str, expected: bool) {
        if !expected {
            let at_us = self.router.now_us();
            let what = format!("exited unexpectedly ({status})");
            self.faulty.add(node, "exited", what, at_us);
            self.nemesis.node_exited(node, status);
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
        done: impl Fn(&FreeRun) -> bool,
    ) {
        while !done(self) {
            let next_fault = self.nemesis.next_at();
            tokio::select! {
                Some(ev) = self.events.recv() => self.on_router_event(ev),
                Some(d) = self.inbox.recv() => self.on_harness_msg(d),
                Some((ev, expected)) = self.sup.next_exit() => {
                    let status = ev.status.to_string();
                    self.on_exit(&ev.node, &status, expected);
                }
                Some(fired) = self.nemesis.fired_rx.recv() => {
                    let exits = self.nemesis.run_fired(fired, &self.router, &mut self.sup).await;
                    self.on_exits(exits);
                }
                _ = tokio::time::sleep_until(next_fault.unwrap_or(deadline)), if next_fault.is_some() => {
                    let exits = self.nemesis.run_due(&self.router, &mut self.sup, false).await;
                    self.on_exits(exits);
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = stop_requested(stop) => return,
            }
        }
    }
}

/// Sets `halt` once `watched` satisfies `cond`.
async fn halt_on<T>(
    mut watched: watch::Receiver<T>,
    halt: Arc<watch::Sender<bool>>,
    cond: impl Fn(&T) -> bool,
) {
    if watched.wait_for(cond).await.is_ok() {
        let _ = halt.send(true);
    }
}

/// Completes once `stop` turns true; never, if its sender is gone without doing so.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs one configuration free-running to a verdict. `interrupt` turning true (Ctrl-C)
/// ends the run early; what was recorded is still checked and written.
pub async fn run_free(
    cfg: RunConfig,
    user_interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    // The run stops early on Ctrl-C / SIGTERM, or when the history cannot be written.
    let (halt, mut interrupt) = watch::channel(false);
    let halt = Arc::new(halt);
    let mut forwarders = JoinSet::new();
    forwarders.spawn(halt_on(user_interrupt, halt.clone(), |stop| *stop));
    let workload = cfg.workload()?;
    let final_ops = workload.final_ops();
    let checkers = workload.checkers();

    let schedule = cfg.fault_schedule();
    if let Some(why) = cfg.fs.fell_back().filter(|_| !cfg.silent) {
        eprintln!("squall: node data on the native file system ({why})");
    }
    // Mounts a killed harness left behind in this results directory go first.
    lossyfs::mount::cleanup_stale(&cfg.results_dir);
    if let Some(d) = &cfg.data_dir {
        lossyfs::mount::cleanup_stale(d);
    }
    let (run_id, dir) = open_run_dir(&cfg, &schedule)?;
    let node_data = cfg.scratch_data(&dir);
    let recovery_ms = schedule.recovery_ms;

    let start = Instant::now();
    let node_ids = cfg.node_ids();
    let client_ids: Vec<String> = (1..=cfg.clients).map(|i| format!("c{i}")).collect();
    let mut addrs = vec![proto::HARNESS.to_string()];
    addrs.extend(node_ids.iter().cloned());
    addrs.extend(client_ids.iter().cloned());
    addrs.extend(services::SERVICES.iter().map(|s| s.to_string()));
    let mut tasks = JoinSet::new();
    let gate = Gate::new(&node_ids);
    let (router, events) = Router::start(&addrs, gate.clone(), start, &mut tasks).await?;
    // Service traffic is node traffic for the log: nodes talk to services as to peers.
    let mut logged = node_ids.clone();
    logged.extend(services::SERVICES.iter().map(|s| s.to_string()));
    let log_bytes_max =
        crate::router::msglog::bytes_max().map_err(|e| crate::UsageError(e.to_string()))?;
    router.log_messages(&logged, log_bytes_max);
    let mut service_tasks = JoinSet::new();
    services::serve(&router, cfg.seed, &mut service_tasks);
    let inbox = router.register_local(proto::HARNESS, 64 * 1024);
    let mut live = FreeRun {
        router: router.clone(),
        sup: Supervisor::new(start.into_std()),
        events,
        inbox,
        reports: Vec::new(),
        faulty: FaultBook::default(),
        ready: BTreeSet::new(),
        init_msg_id: 0,
        node_ids: node_ids.clone(),
        nemesis: NemesisExecutor::new(schedule, cfg.nemesis.kinds.iter().copied().collect(), start),
        inits: BTreeMap::new(),
        restarts: Arc::new(Mutex::new(vec![
            clients::Restarts::default();
            node_ids.len()
        ])),
    };

    if cfg.fault_services {
        live.nemesis.fault_services();
    }
    if !cfg.fs.is_native() {
        let bin = lossyfs::helper::find_bin().map_err(UsageError)?;
        let backing = cfg.node_data_root(&dir).join(".backing");
        let fleet = lossyfs::fleet::Fleet::new(cfg.fs.clone(), bin, cfg.seed, &backing);
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
    let history_failed = rec.failed();
    forwarders.spawn(halt_on(
        history_failed.clone(),
        halt.clone(),
        Option::is_some,
    ));
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
    let mut final_report = None;
    // When the clients were told to stop, in ms since the run started.
    let mut stopped_at_ms = 0;
    if !startup_failed && !interrupted {
        // Setup ops (broadcast's topology) reach every node before any client op.
        let mut setup_client = Client::new(&client_ids[0], &router);
        let timeout = Duration::from_millis(cfg.op_timeout_ms);
        live.pump_during(clients::run_setup(
            &mut setup_client,
            &shared,
            &rec,
            timeout,
        ))
        .await;
        drop(setup_client);
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
        live.nemesis.begin(&router);
        let end = Instant::now() + Duration::from_millis(cfg.time_limit_ms);
        live.pump_until(end, &mut interrupt, |_| false).await;
        interrupted = *interrupt.borrow();
        stopped_at_ms = rec.now_ns() / 1_000_000;
        let _ = stop_tx.send(true);
        if !interrupted {
            // Events timed at the very end, then the final heal: every fault lifted,
            // killed nodes restarted, paused ones resumed.
            let exits = live.nemesis.run_due(&router, &mut live.sup, true).await;
            live.on_exits(exits);
            let (healed_at, exits) = live.nemesis.heal_all(&router, &mut live.sup).await;
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
                        r = finals.run(clients, &shared, &rec) => Some(r),
                        _ = stop_requested(&mut interrupt) => None,
                    }
                })
                .await;
            interrupted |= finished.is_none();
            final_report = finished;
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
    // The router reported only the first few faults of each kind; it counted them all.
    for (node, kind, total) in router.fault_counts() {
        live.faulty.at_least(&node, kind, total);
    }
    while let Ok(d) = live.inbox.try_recv() {
        live.on_harness_msg(d);
    }
    drop(rec);
    drop(clients_back);
    let _ = rec_handle.await;
    tasks.abort_all();
    service_tasks.abort_all();
    forwarders.abort_all();
    if let Some(e) = history_failed.borrow().clone() {
        // A history with a hole cannot be judged: no verdict, an internal error.
        anyhow::bail!(
            "{e}; the run was stopped {stopped_at_ms} ms into its {} ms time limit (clients \
             stopped, nodes torn down) and not judged; what was recorded is in {}",
            cfg.time_limit_ms,
            dir.display()
        );
    }

    let (fault_report, mut warnings) = live.nemesis.report(&router, &live.sup);
    warnings.extend(cfg.warnings());
    let fs_report = live.sup.fs_report();
    if let Some((_, Some(w))) = &fs_report {
        warnings.push(crate::nemesis::Warning::other(w.clone()));
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
    let Judgement {
        verdict,
        reason,
        ops,
        warnings,
    } = Evidence {
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
            faulty: live.faulty.entries(),
            interrupted,
        },
        warnings,
        verdict_extra: match &final_report {
            Some(r) => json!({ "final_ops": r, "fs": cfg.fs.report(None) }),
            None => json!({ "fs": cfg.fs.report(None) }),
        },
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
        "fs": cfg.fs.report(fs_report.map(|(m, _)| m)),
    });
    write_outputs(&cfg, &run_id, &dir, &metrics_json)?;

    let summary = summary_text(
        &run_id,
        "",
        &dir,
        &metrics_json["ops"],
        &format!(
            "{}{}",
            latency_lines(&metrics_json["latency_ms"]),
            cfg.fs.summary_line()
        ),
        &verdict_line(verdict, &reason, &warnings),
    );
    Ok(RunOutcome {
        dir,
        verdict,
        summary,
    })
}
