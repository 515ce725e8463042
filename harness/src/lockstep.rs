//! Lockstep mode: a deterministic run over real node processes.
//!
//! Nodes that advertise it in `init_ok` are driven one event at a time — a node message,
//! a client request or a timer firing — and answer with their effects and `step_done`
//! (PROTOCOL.md §10). Nothing runs concurrently and no wall clock orders anything, so
//! with the same seed, node binary and configuration a run is identical step for step:
//! `trace.bin` and its hash, `history.jsonl`, the verdict.
//!
//! # How a run goes
//!
//! 1. The run directory, `run.json` (with `"mode": "lockstep"`) and `schedule.json`.
//! 2. Nodes are spawned by the [`Supervisor`] with the usual environment, connect to a
//!    loopback listener of this module (no router), say `hello`, and get an `init` that
//!    asks for lockstep, in node order. A node whose `init_ok` lacks `"lockstep": true`
//!    ends the run with a [`UsageError`] naming it.
//! 3. A single-threaded loop in virtual time (`stepper`): the pending events sit in a
//!    priority queue (`queue`); the ones at the earliest virtual time are ready, and a
//!    ChaCha8 RNG seeded from the run's seed picks which goes next. Quiet stretches are
//!    skipped at once. One event goes to exactly one node, and the harness reads that
//!    node's output up to `step_done` before anything else happens.
//!    - A node message takes [`HOP_US`] of virtual time plus any delay the nemesis's
//!      [`LinkTable::decide`](crate::nemesis::LinkTable::decide) gives it; it may also
//!      be dropped, duplicated, held or allowed to overtake (per-link FIFO otherwise).
//!      Client traffic is never faulted and takes [`HOP_US`] each way.
//!    - Timers fire at `after_us` (or `after_ms`) of virtual time after their `timer_set`.
//!    - Clients are the free-running clients replayed in virtual time (open loop at
//!      `rate`, op timeout in virtual time, Jepsen processes), recorded in
//!      `history.jsonl` with virtual times.
//!    - Schedule events apply at their `at_ms`, between steps; triggers fire on the
//!      messages nodes send (network actions at once, process actions after the step).
//!    - A kill is a real SIGKILL at a step boundary; the node's pending deliveries and
//!      timers are dropped (so are messages in flight to it that arrive after it
//!      restarted). A restart is a real restart plus `hello` and the init step.
//!    - A pause is modelled: the node is not signalled, it simply takes no events
//!      until resumed; events for it wait, in order, and are ready again at the resume.
//! 4. At `time_limit_ms` of virtual time: the schedule's remaining events up to it, then
//!    everything healed (held messages released, killed nodes restarted, paused ones
//!    resumed); a quiet window of `schedule.recovery_ms`; then the workload's final ops
//!    to every live node. A final op that does not settle (the rule of both modes,
//!    [`crate::lifecycle::final_settled`]: e.g. a read that returns null for a key some
//!    client wrote to) is retried by
//!    [`FINAL_RETRY_LOCKSTEP`](crate::lifecycle::FINAL_RETRY_LOCKSTEP): up to 3 times, 250 ms of
//!    virtual time apart.
//! 5. Teardown, checkers on what was recorded, `verdict.json` (with `"mode"` and
//!    `"trace_hash"`), `metrics.json`, `latest`.
//!
//! With `--scheduler adversary` node messages wait in the [`adversary`] module's pool
//! instead of the queue, and it chooses when each is delivered (every one within its
//! bound), to keep instances undecided; the rest of the run is as above.
//!
//! A node that closes its connection, writes garbage or an oversized line, spoofs `src`
//! or sends anything outside a step is listed under `faulty_nodes`; a node whose step
//! failed is treated as crashed (SIGKILL), so a run never hangs on a node.
//!
//! Real time is only a guard ([`conn::guard_from_env`], 60 s unless
//! `SQUALL_LOCKSTEP_TIMEOUT` says otherwise): nodes that have not all finished their init
//! step within it, a node that does not finish a step within it, or a restarted node that
//! does not say hello within it, stop the run there as `unknown`, naming the node (and the
//! step). A slow machine thus never becomes a fault the algorithm sees; the run's trace
//! up to that point is what any other run of the seed would have recorded.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::config::{RunConfig, RunMode};
use crate::lifecycle::{open_run_dir, RunOutcome, TEARDOWN_GRACE_MS};
use crate::nemesis::{self, ProcessCounters, Schedule};
use crate::router::Gate;
use crate::supervisor::{SpawnError, Supervisor};
use crate::verdict::{summary_text, verdict_line, write_outputs, Evidence, Judgement, RunIssues};
use crate::{metrics, results, UsageError};

pub mod adversary;
pub mod bench;
mod clients;
pub mod conn;
pub mod queue;
mod stepper;

pub use crate::trace::{hash_file, read_trace, TraceKind, TraceRecord, HOP_US};

use crate::trace::TraceWriter;
use clients::HistoryWriter;
use conn::Listener;
use stepper::{Stepper, StepperOpts, StepperParts};

/// How long nodes have to exit after SIGTERM before SIGKILL, at teardown: the
/// lifecycle's [`TEARDOWN_GRACE_MS`].
pub const TEARDOWN_GRACE: Duration = Duration::from_millis(TEARDOWN_GRACE_MS);
/// Runs one configuration in lockstep mode to a verdict, applying `schedule`.
///
/// The same `cfg` (seed included), `schedule` and node binary give the same
/// `trace.bin`, `trace_hash` and `history.jsonl`. `interrupt` turning true (Ctrl-C)
/// ends the run early; what was recorded is still checked and written.
pub async fn run_lockstep(
    cfg: RunConfig,
    schedule: Schedule,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    let workload = cfg.workload()?;
    let checkers = workload.checkers();
    let node_ids = cfg.node_ids();
    if schedule.nodes != node_ids {
        return Err(UsageError(format!(
            "the schedule is for nodes {:?}, the run has {:?}",
            schedule.nodes, node_ids
        ))
        .into());
    }

    // The lockstep bench hands over plain run configurations.
    let cfg = RunConfig {
        mode: RunMode::Lockstep,
        ..cfg
    };
    let guard = conn::guard_from_env().map_err(UsageError)?;
    let (run_id, dir) = open_run_dir(&cfg, &schedule)?;
    let node_data = cfg.scratch_data(&dir);

    let wall_start = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut sup = Supervisor::new(wall_start);
    let router_addr = addr.to_string();
    // The token is in no line of the trace: it changes every run, the trace does not.
    let gate = Gate::new(&node_ids);
    for id in &node_ids {
        let spec = cfg.node_spec(&dir, id, &router_addr).admitted_by(&gate);
        if let Err(e) = sup.spawn(spec).await {
            sup.teardown(TEARDOWN_GRACE).await;
            return Err(match e {
                SpawnError::Program { .. } => UsageError(e.to_string()).into(),
                other => other.into(),
            });
        }
    }

    let opts = StepperOpts {
        seed: cfg.seed,
        node_ids: node_ids.clone(),
        clients: cfg.clients,
        rate: cfg.rate,
        time_limit_ms: cfg.time_limit_ms,
        recovery_ms: schedule.recovery_ms,
        op_timeout_ms: cfg.op_timeout_ms,
        latency: cfg.lockstep_latency,
        scheduler: cfg.scheduler.clone(),
        algorithm: cfg.algorithm.clone(),
        guard,
    };
    let kinds = schedule.kinds();
    let parts = StepperParts {
        handle: tokio::runtime::Handle::current(),
        listener: Listener::new(listener, gate.clone()),
        sup,
        interrupt,
        schedule,
        workload,
        trace: TraceWriter::create(&dir.join("trace.bin"))?,
        history: HistoryWriter::create(&dir.join("history.jsonl"))?,
    };
    let handle = parts.handle.clone();
    let driven = tokio::task::spawn_blocking(move || drive(Stepper::new(opts, parts), handle))
        .await
        .map_err(|e| anyhow::anyhow!("the lockstep loop panicked: {e}"));
    drop(node_data);
    let Driven {
        mut stepper,
        refused,
        startup_failed,
    } = driven??;
    let wall = wall_start.elapsed();
    let virtual_us = stepper.now_us();
    let live_nodes = stepper.live_nodes();
    let not_ready = stepper.not_ready();
    let fault_counters = stepper.fault_counters();
    let steps = stepper.steps;
    let choices = stepper.choices();
    let steps_by_kind = stepper.steps_by_kind.clone();
    let stale = stepper.stale;
    let (kills_mid_step, cut_mid_step) = (stepper.kills_mid_step, stepper.cut_mid_step);
    let late_ops = stepper.late_ops;
    let by_type = stepper.by_type.clone();
    let reports = std::mem::take(&mut stepper.reports);
    results::write_jsonl(&dir.join("reports.jsonl"), &reports)?;
    let report_count = reports.len();
    let faulty = stepper.faulty.clone();
    let confirms = stepper.confirms.clone();
    let process = stepper.process;
    let stalled = stepper.stalled.take();
    // A stalled run never reached its end: termination is not judged.
    let quiet_from = stepper.quiet_from.filter(|_| stalled.is_none());
    let fault_spans = stepper.fault_spans();
    let interrupted = stepper.interrupted;
    let adversary = stepper.adversary_summary();
    let instances = stepper.progress.summary(steps, virtual_us);
    let longest = stepper.progress.longest(steps, virtual_us);
    let (trace, history, sup) = stepper.into_writers();
    let (trace_records, trace_bytes) = (trace.records(), trace.bytes());
    let trace_hash = trace.finish()?;
    history.finish()?;
    if let Some(node) = refused {
        return Err(UsageError(format!(
            "node {node} does not support lockstep mode: its init_ok did not say \
             \"lockstep\": true (see PROTOCOL.md §10); run it without lockstep"
        ))
        .into());
    }

    let startup_failure = stalled.or_else(|| {
        startup_failed.then(|| {
            format!(
                "nodes {not_ready:?} did not start (no lockstep init within {}){}; see {}/nodes/ \
                 (a wall-clock guard: {} sets it)",
                guard_text(guard),
                gate.rejections().startup_hint(),
                dir.display(),
                conn::GUARD_ENV,
            )
        })
    });
    let process_counters = ProcessCounters {
        kills: process.kills,
        restarts: process.restarts,
        pauses: process.pauses,
        resumes: process.resumes,
    };
    let mut warnings = confirms.warnings();
    warnings.extend(cfg.warnings());
    if !interrupted && !startup_failed {
        warnings.extend(nemesis::warnings(
            &kinds,
            &fault_counters,
            &process_counters,
        ));
    }
    let faults = nemesis::FaultReport {
        requested: kinds.iter().copied().collect(),
        links: fault_counters,
        processes: Default::default(),
        process_total: process_counters,
        events: confirms,
        spans: fault_spans.clone(),
    };
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
        reports,
        faults: fault_spans,
        quiet_from,
        live_nodes,
        issues: RunIssues {
            startup_failure,
            faulty: faulty.entries(),
            interrupted,
        },
        warnings,
        verdict_extra: json!({"mode": cfg.mode, "trace_hash": trace_hash}),
    }
    .judge()?;

    let wall_ms = wall.as_secs_f64() * 1e3;
    let metrics_json = json!({
        "mode": cfg.mode,
        "ops": metrics::op_counts(&ops),
        "late_ops": late_ops,
        "latency_ms": metrics::latency_by_kind(&ops),
        "latency_clock": "virtual",
        "messages": {
            "total": by_type.values().sum::<u64>(),
            "by_type": by_type,
            "per_op": metrics::messages_per_op(&by_type, &ops),
        },
        "steps": {
            "total": steps,
            "by_kind": steps_by_kind,
            "stale_events_dropped": stale,
            "kills_mid_step": kills_mid_step,
            "lines_cut_by_mid_step_kills": cut_mid_step,
            "seeded_choices": choices,
            "per_wall_s": if wall_ms > 0.0 { steps as f64 / wall_ms * 1e3 } else { 0.0 },
        },
        "virtual_ms": virtual_us as f64 / 1e3,
        "scheduler": cfg.scheduler.to_string(),
        "adversary": adversary,
        "instances": instances,
        "wall_ms": wall_ms,
        "faults": faults,
        "processes": process,
        "process_events": sup.records(),
        "reports": report_count,
        "trace": {"records": trace_records, "bytes": trace_bytes, "hash": trace_hash},
        "router": {"rejected_connections": gate.rejections()},
    });
    write_outputs(&cfg, &run_id, &dir, &metrics_json)?;

    let summary = summary_text(
        &run_id,
        " (lockstep)",
        &dir,
        &metrics_json["ops"],
        &format!(
            "steps     {steps}, trace {trace_hash}\n{}",
            adversary_line(adversary.as_ref(), longest)
        ),
        &verdict_line(verdict, &reason, &warnings),
    );
    Ok(RunOutcome {
        dir,
        verdict,
        summary,
    })
}

/// The guard as the messages that name it write it: `60 s`, `250 ms`.
pub(crate) fn guard_text(guard: Duration) -> String {
    match guard.as_millis() {
        ms if ms % 1_000 == 0 => format!("{} s", ms / 1_000),
        ms => format!("{ms} ms"),
    }
}

/// The summary's line on what the adversary achieved (empty under `random`).
fn adversary_line(
    adversary: Option<&serde_json::Value>,
    longest: Option<adversary::Undecided>,
) -> String {
    let Some(a) = adversary else {
        return String::new();
    };
    let c = &a["counts"];
    let in_flight = c["messages"].as_u64().unwrap_or(0) - c["delivered"].as_u64().unwrap_or(0);
    let held = format!(
        "held {} of {} messages (up to {} ms), none dropped, {} in flight at the end",
        c["held"],
        c["messages"],
        c["max_wait_us"].as_u64().unwrap_or(0) / 1_000,
        in_flight
    );
    match longest {
        Some(l) => format!(
            "adversary kept instance {} undecided for {} steps, {} ballots, {:.0} virtual ms{}; {held}\n",
            l.key,
            l.steps,
            l.ballots,
            l.virtual_ms,
            if l.decided { "" } else { " (never decided)" }
        ),
        None => format!("adversary: no instance; {held}\n"),
    }
}

struct Driven {
    stepper: Stepper,
    refused: Option<String>,
    startup_failed: bool,
}

/// The blocking part: start, run, tear down. Runs on a blocking thread; the
/// supervisor's async calls go through `handle`.
fn drive(mut stepper: Stepper, handle: tokio::runtime::Handle) -> anyhow::Result<Driven> {
    let started = stepper.start();
    let refused = match started {
        Ok(refused) => refused,
        Err(e) => {
            handle.block_on(stepper.supervisor().teardown(TEARDOWN_GRACE));
            return Err(e);
        }
    };
    let startup_failed = refused.is_none() && !stepper.not_ready().is_empty();
    let ran = if refused.is_none() && !startup_failed {
        stepper.run()
    } else {
        Ok(())
    };
    handle.block_on(stepper.supervisor().teardown(TEARDOWN_GRACE));
    stepper.disconnect_all();
    stepper.note_unexpected_exits();
    ran?;
    Ok(Driven {
        stepper,
        refused,
        startup_failed,
    })
}
