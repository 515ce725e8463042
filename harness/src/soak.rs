//! `squall soak`: run seed after seed for hours, keep only what failed, and leave a
//! summary to read in the morning.
//!
//! Every run is an ordinary run ([`run::run_any`]) with the soak's flags, its own seed
//! and its directory under `RESULTS/runs/`. Seeds are `S + i`, `S + i + n`, `S + i + 2n`,
//! ... for `--seed-start S --shard i/n`; `--jobs J` runs go at once. When a run ends:
//!
//! - one line goes to `RESULTS/soak.jsonl` (seed, verdict, wall time, ops, fault counts,
//!   run id, signature);
//! - a valid run's directory is deleted; an invalid, unknown or errored run's is kept,
//!   grouped by signature (algorithm with mutants / checker / property), and the oldest
//!   duplicates are pruned when kept directories exceed `--max-disk` ([`kept`]);
//! - `summary.json` and `summary.md` are rewritten ([`summary`]), so a soak killed
//!   outright still leaves a summary of every run it finished.
//!
//! The soak stops launching at `--count` runs, at `--duration`, or on Ctrl-C / SIGTERM;
//! runs in flight get the interrupt (they stop, check what they recorded and tear their
//! nodes down), then the summary is written with `complete: true`. A second interrupt
//! leaves at once (exit 130); the nodes die with the harness (`PR_SET_PDEATHSIG`).
//!
//! Files: `args` (the flags and the checked plan), `judge` (a finished run's class,
//! signature and numbers), [`kept`] (the disk bound), [`summary`] (the summary files),
//! [`merge`] (`squall summary`); this file is the loop, the progress line and the
//! bookkeeping between runs.

mod args;
mod judge;
pub mod kept;
pub mod merge;
pub mod summary;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::RunConfig;
use crate::lifecycle::RunOutcome;
use crate::run;
use crate::text;
use crate::{results, UsageError};
pub use args::{algorithm_label, parse_shard, seed_of, Shard, SoakArgs, DEFAULT_COUNT, JOBS_MAX};
use args::{unix_now, Plan};
pub use judge::{checker_and_property, Class};
use judge::{find_run_dir, judge, Judged, Record, REASON_MAX};
use kept::{dir_bytes, human_bytes, Kept, KeptRun};
use summary::{shell_word, Counts, Group, GroupKey, PrunedRun, Summary};

/// When stderr is not a terminal, a progress line is printed every this many runs...
pub const PLAIN_EVERY_RUNS: u64 = 10;
/// ...or after this long, whichever comes first.
pub const PLAIN_EVERY: Duration = Duration::from_secs(60);
/// Distinct error messages grouped apart; the rest share one group.
pub const ERROR_GROUPS_MAX: usize = 50;
/// A run that ended, one way or the other.
struct Finished {
    seed: u64,
    duration: Duration,
    result: anyhow::Result<RunOutcome>,
}

/// Prints above the progress line (or plainly when there is none).
#[derive(Clone)]
struct Out {
    bar: indicatif::ProgressBar,
    plain: bool,
}

impl Out {
    fn new() -> Out {
        let plain = !std::io::stderr().is_terminal();
        let bar = if plain {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        Out { bar, plain }
    }

    fn say(&self, line: &str) {
        self.bar.suspend(|| eprintln!("squall soak: {line}"));
    }
}

/// The soak's state between runs.
struct Soak {
    plan: Plan,
    algorithm: String,
    mode: String,
    command: String,
    started: Instant,
    started_unix_s: u64,
    counts: Counts,
    seed_min: Option<u64>,
    seed_max: Option<u64>,
    /// By [`GroupKey::id`].
    groups: BTreeMap<String, Group>,
    kept: Kept,
    pruned: summary::Pruned,
    jsonl: std::io::BufWriter<std::fs::File>,
    pruned_log: std::io::BufWriter<std::fs::File>,
    usage_error: Option<String>,
    over_disk_said: bool,
    out: Out,
    plain_at: Instant,
    plain_runs: u64,
}

impl Soak {
    fn new(plan: Plan, out: Out) -> anyhow::Result<Soak> {
        std::fs::create_dir_all(&plan.runs_dir)
            .with_context(|| format!("create {}", plan.runs_dir.display()))?;
        let open = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
            let path = plan.dir.join(name);
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("create {}", path.display()))?;
            Ok(std::io::BufWriter::new(f))
        };
        let jsonl = open("soak.jsonl")?;
        let pruned_log = open("pruned.jsonl")?;
        let command = std::iter::once("squall".to_string())
            .chain(std::env::args().skip(1).map(|a| shell_word(&a)))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Soak {
            algorithm: algorithm_label(&plan.base),
            mode: plan.base.mode.name().into(),
            plan,
            command,
            started: Instant::now(),
            started_unix_s: unix_now(),
            counts: Counts::default(),
            seed_min: None,
            seed_max: None,
            groups: BTreeMap::new(),
            kept: Kept::default(),
            pruned: summary::Pruned::default(),
            jsonl,
            pruned_log,
            usage_error: None,
            over_disk_said: false,
            out,
            plain_at: Instant::now(),
            plain_runs: 0,
        })
    }

    /// The configuration of the run of `seed`.
    fn config(&self, seed: u64) -> RunConfig {
        let mut cfg = self.plan.base.clone();
        cfg.seed = seed;
        cfg.results_dir = self.plan.runs_dir.clone();
        cfg.silent = true;
        cfg
    }

    /// Files a finished run: its line, its directory (deleted or kept), its group, the
    /// disk bound, the summary.
    fn finish(&mut self, f: Finished) -> anyhow::Result<()> {
        let duration_s = round(f.duration.as_secs_f64(), 3);
        let (judged, dir) = match &f.result {
            Ok(outcome) => (judge(outcome, &self.algorithm), Some(outcome.dir.clone())),
            Err(e) => {
                let message = format!("{e:#}");
                if e.downcast_ref::<UsageError>().is_some() {
                    self.usage_error.get_or_insert(message.clone());
                }
                let dir = find_run_dir(&self.plan.runs_dir, &self.plan.base.workload, f.seed);
                (self.error_judged(&message), dir)
            }
        };
        self.counts.record(judged.class);
        self.seed_min = Some(self.seed_min.map_or(f.seed, |s| s.min(f.seed)));
        self.seed_max = Some(self.seed_max.map_or(f.seed, |s| s.max(f.seed)));
        let run_id = dir
            .as_ref()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .map(str::to_string);
        let keep = judged.key.is_some() && dir.is_some();
        if !keep {
            if let Some(d) = &dir {
                std::fs::remove_dir_all(d)
                    .with_context(|| format!("delete the passing run {}", d.display()))?;
            }
        }
        let record = Record {
            seed: f.seed,
            verdict: judged.class,
            duration_s,
            ops: judged.ops,
            faults: judged.faults.clone(),
            run_id: run_id.as_deref(),
            kept: keep,
            signature: judged.key.as_ref().map(GroupKey::signature),
            reason: judged.key.is_some().then_some(judged.reason.as_str()),
            trace_hash: judged.trace_hash.as_deref(),
        };
        serde_json::to_writer(&mut self.jsonl, &record)?;
        self.jsonl.write_all(b"\n")?;
        self.jsonl.flush()?;

        if let Some(key) = &judged.key {
            self.group(
                key,
                f.seed,
                duration_s,
                &judged.reason,
                run_id,
                dir.as_deref(),
            );
            if let (true, Some(d)) = (keep, dir) {
                let bytes = dir_bytes(&d);
                self.kept.add(KeptRun {
                    group: key.id(),
                    seed: f.seed,
                    dir: d,
                    bytes,
                });
                self.enforce_disk()?;
            }
        }
        self.write_summary(false, "running")?;
        Ok(())
    }

    fn error_judged(&mut self, message: &str) -> Judged {
        let first_line = message.lines().next().unwrap_or("").to_string();
        let mut property = text::truncate(&first_line, REASON_MAX);
        let errors = self
            .groups
            .values()
            .filter(|g| g.verdict == "error")
            .count();
        let key_of = |property: String| GroupKey {
            verdict: "error".into(),
            algorithm: self.algorithm.clone(),
            checker: "squall".into(),
            property,
        };
        if errors >= ERROR_GROUPS_MAX && !self.groups.contains_key(&key_of(property.clone()).id()) {
            property = "other errors".into();
        }
        Judged {
            class: Class::Error,
            key: Some(key_of(property)),
            reason: text::truncate(message, REASON_MAX),
            ops: 0,
            faults: BTreeMap::new(),
            trace_hash: None,
        }
    }

    /// Adds a run to its group; announces a new signature.
    fn group(
        &mut self,
        key: &GroupKey,
        seed: u64,
        duration_s: f64,
        reason: &str,
        run_id: Option<String>,
        dir: Option<&Path>,
    ) {
        let shard = self.plan.shard.to_string();
        let mode = self.mode.clone();
        match self.groups.get_mut(&key.id()) {
            Some(g) => {
                if g.add(seed, duration_s, reason) {
                    g.show_run(run_id, dir, &mode);
                }
            }
            None => {
                let mut g = Group::first(key, seed, duration_s, reason, &shard);
                g.show_run(run_id, dir, &mode);
                let how = g
                    .replay
                    .clone()
                    .unwrap_or_else(|| "no run directory".into());
                self.out.say(&format!(
                    "new {} signature: {} (seed {seed}): {how}",
                    key.verdict,
                    key.signature()
                ));
                self.groups.insert(key.id(), g);
            }
        }
    }

    /// Prunes duplicates while the kept runs exceed `--max-disk`.
    fn enforce_disk(&mut self) -> anyhow::Result<()> {
        for run in self.kept.prune(self.plan.max_disk) {
            let signature = self
                .groups
                .get_mut(&run.group)
                .map(|g| {
                    g.pruned += 1;
                    g.signature.clone()
                })
                .unwrap_or_default();
            self.pruned.runs += 1;
            self.pruned.bytes += run.bytes;
            if self.pruned.listed.len() < summary::PRUNED_LISTED {
                self.pruned.listed.push(PrunedRun {
                    signature: signature.clone(),
                    seed: run.seed,
                });
            }
            let line = serde_json::json!({
                "seed": run.seed,
                "signature": signature,
                "dir": run.dir.display().to_string(),
                "bytes": run.bytes,
            });
            serde_json::to_writer(&mut self.pruned_log, &line)?;
            self.pruned_log.write_all(b"\n")?;
        }
        self.pruned_log.flush()?;
        if self.kept.bytes() > self.plan.max_disk && !self.over_disk_said {
            self.over_disk_said = true;
            self.out.say(&format!(
                "the first run of each signature alone takes {}, over --max-disk {}; they are kept anyway",
                human_bytes(self.kept.bytes()),
                human_bytes(self.plan.max_disk)
            ));
        }
        Ok(())
    }

    fn summary(&self, complete: bool, stopped_by: &str) -> Summary {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut s = Summary {
            format: summary::FORMAT,
            complete,
            stopped_by: stopped_by.to_string(),
            command: self.command.clone(),
            results_dir: self.plan.dir.display().to_string(),
            mode: self.mode.clone(),
            workload: self.plan.base.workload.clone(),
            algorithm: self.algorithm.clone(),
            shards: vec![self.plan.shard.to_string()],
            seed_start: self.plan.seed_start,
            seed_min: self.seed_min,
            seed_max: self.seed_max,
            started_at: results::utc_stamp(self.started_unix_s),
            started_unix_s: self.started_unix_s,
            finished_unix_s: unix_now(),
            duration_s: round(elapsed, 1),
            runs_per_minute: round(per_minute(self.counts.runs, elapsed), 2),
            counts: self.counts,
            disk: summary::Disk {
                kept_runs: self.kept.len() as u64,
                kept_bytes: self.kept.bytes(),
                max_bytes: self.plan.max_disk,
            },
            pruned: self.pruned.clone(),
            ..Summary::default()
        };
        for g in self.groups.values() {
            let list = match g.verdict.as_str() {
                "invalid" => &mut s.failures,
                "unknown" => &mut s.unknowns,
                _ => &mut s.error_groups,
            };
            list.push(g.clone());
        }
        if self.over_disk_said {
            s.notes.push(format!(
                "the first run of each signature alone exceeds --max-disk {}",
                human_bytes(self.plan.max_disk)
            ));
        }
        if let Some(e) = &self.usage_error {
            s.notes.push(format!("stopped on a usage error: {e}"));
        }
        s.finish_groups();
        s
    }

    fn write_summary(&self, complete: bool, stopped_by: &str) -> anyhow::Result<Summary> {
        let s = self.summary(complete, stopped_by);
        s.write(&self.plan.dir)?;
        Ok(s)
    }

    /// The progress line (its columns are documented in the README).
    fn line(&self, running: usize, phase: Phase) -> String {
        let elapsed = self.started.elapsed();
        let c = &self.counts;
        let mut line = format!(
            "[{}] runs {} ({:.1}/min) | invalid {} | unknown {} | errors {} | kept {}, {}",
            hms(elapsed.as_secs()),
            c.runs,
            per_minute(c.runs, elapsed.as_secs_f64()),
            c.invalid,
            c.unknown,
            c.errors,
            self.kept.len(),
            human_bytes(self.kept.bytes()),
        );
        let mut left = Vec::new();
        if let Some(n) = self.plan.count {
            left.push(format!("{} runs", n.saturating_sub(c.runs)));
        }
        if let Some(d) = self.plan.duration {
            left.push(hms(d.saturating_sub(elapsed).as_secs()));
        }
        match phase {
            Phase::Running if !left.is_empty() => {
                line.push_str(&format!(" | left {}", left.join(", ")));
            }
            Phase::Running => {}
            Phase::Stopping => line.push_str(&format!(" | stopping, {running} running")),
            Phase::Done => line.push_str(" | done"),
        }
        line
    }

    /// Updates the progress line; without a terminal, prints it every
    /// [`PLAIN_EVERY_RUNS`] runs or [`PLAIN_EVERY`].
    fn show(&mut self, running: usize, phase: Phase) {
        let line = self.line(running, phase);
        self.out.bar.set_message(line.clone());
        if self.out.plain
            && (self.counts.runs >= self.plain_runs + PLAIN_EVERY_RUNS
                || self.plain_at.elapsed() >= PLAIN_EVERY)
        {
            self.out.say(&line);
            self.plain_at = Instant::now();
            self.plain_runs = self.counts.runs;
        }
    }
}

/// Where the soak is, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Launching runs.
    Running,
    /// No more launches; runs in flight finish.
    Stopping,
    /// Every run finished.
    Done,
}

/// `x` to `digits` decimals, for JSON people read.
/// `x` rounded to `digits` decimals (for JSON meant to be read).
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

pub(crate) fn per_minute(runs: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        runs as f64 * 60.0 / secs
    } else {
        0.0
    }
}

/// `01:02:03`.
fn hms(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Turns the first Ctrl-C or SIGTERM into `stop`; a second one leaves at once.
async fn watch_signals(stop: watch::Sender<bool>, out: Out) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut first = true;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => None } } => {}
        }
        if first {
            first = false;
            out.say(
                "interrupted: no new runs; the runs in flight stop and are checked, then the summary is written (interrupt again to leave now)",
            );
            let _ = stop.send(true);
        } else {
            out.say("second interrupt: leaving now; summary.md covers the runs finished so far");
            std::process::exit(130);
        }
    }
}

/// `squall soak`: exits 1 if any run was invalid, 2 if any was unknown or errored (and
/// none invalid), 0 otherwise; 254 for bad flags (or a run refusing its configuration).
pub async fn soak(args: &SoakArgs) -> anyhow::Result<u8> {
    let plan = args.plan()?;
    let out = Out::new();
    let jobs = plan.jobs;
    let mut soak = Soak::new(plan, out.clone())?;
    soak.out.say(&format!(
        "{} on {}, {} mode, seeds from {} (shard {}), {} job{}; writing to {}",
        soak.algorithm,
        soak.plan.base.workload,
        soak.mode,
        seed_of(soak.plan.seed_start, soak.plan.shard, 0).unwrap_or(u64::MAX),
        soak.plan.shard,
        jobs,
        if jobs == 1 { "" } else { "s" },
        soak.plan.dir.display()
    ));
    soak.write_summary(false, "running")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signals = JoinSet::new();
    signals.spawn(watch_signals(stop_tx, out.clone()));
    let mut runs: JoinSet<Finished> = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut stop_seen = stop_rx.clone();
    let mut k: u64 = 0;
    let mut stopped_by: Option<&str> = None;
    loop {
        while stopped_by.is_none() && runs.len() < jobs {
            let elapsed = soak.started.elapsed();
            stopped_by = if *stop_rx.borrow() {
                Some("interrupt")
            } else if soak.usage_error.is_some() {
                Some("usage error")
            } else if soak.plan.count.is_some_and(|c| k >= c) {
                Some("count")
            } else if soak.plan.duration.is_some_and(|d| elapsed >= d) {
                Some("duration")
            } else {
                None
            };
            if stopped_by.is_some() {
                break;
            }
            let Some(seed) = seed_of(soak.plan.seed_start, soak.plan.shard, k) else {
                stopped_by = Some("last seed");
                break;
            };
            k += 1;
            let cfg = soak.config(seed);
            let interrupt = stop_rx.clone();
            runs.spawn(async move {
                let t = Instant::now();
                // A run of its own, so a panic in it is this seed's error, not the soak's.
                let mut one = JoinSet::new();
                one.spawn(run::run_any(cfg, interrupt));
                let result = match one.join_next().await {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => Err(anyhow::anyhow!("the run panicked: {e}")),
                    None => Err(anyhow::anyhow!("the run vanished")),
                };
                Finished {
                    seed,
                    duration: t.elapsed(),
                    result,
                }
            });
        }
        if runs.is_empty() {
            break;
        }
        let phase = if stopped_by.is_some() {
            Phase::Stopping
        } else {
            Phase::Running
        };
        tokio::select! {
            Some(joined) = runs.join_next() => {
                let finished = joined.map_err(|e| anyhow::anyhow!("a soak worker failed: {e}"))?;
                soak.finish(finished)?;
                soak.show(runs.len(), phase);
            }
            _ = tick.tick() => soak.show(runs.len(), phase),
            _ = stop_seen.wait_for(|s| *s), if stopped_by.is_none() => {}
        }
    }
    signals.abort_all();
    let stopped_by = stopped_by.unwrap_or("count");
    let s = soak.write_summary(true, stopped_by)?;
    out.bar.finish_and_clear();
    out.say(&soak.line(0, Phase::Done));
    print!("{}", s.markdown());
    println!("\nsummary: {}", soak.plan.dir.join("summary.md").display());
    if let Some(e) = soak.usage_error.take() {
        return Err(UsageError(e).into());
    }
    Ok(s.exit_code())
}
