//! `squall shrink RUN_DIR`: cut a failing run down to a smaller one that still fails
//! the same way.
//!
//! "Fails" means the candidate's verdict is `invalid` and one of its invalid checkers
//! names the property the original run violated (`agreement`, `termination`, ...). In
//! lockstep a candidate is run once and the answer is exact; free-running, a candidate
//! counts as failing if at least one of `--times` tries fails.
//!
//! The passes, in order, each keeping only the cuts after which the run still fails:
//!
//! 1. Drop fault events. Events are grouped into units that stand or fall together (a
//!    partition and the heal that lifts it, a kill and the restart of that node, a pause
//!    and its resume, a clog and its unclog, `link_faults` and the next
//!    `clear_link_faults`, triggered events that share a trigger). The final `heal_all`
//!    is kept. Units are removed ddmin-style: everything, then halves and smaller
//!    chunks, down to single units. A candidate that does not pass
//!    [`Schedule::validate`] is skipped without running it.
//! 2. Shorten: the time limit (to just after the last remaining event, bisected back
//!    towards the current one), each fault's duration, link fault probabilities and
//!    delays.
//! 3. Fewer client ops: the client rate is halved while the run still fails.
//!
//! Every candidate run goes to `RESULTS/runs/`; at the end `shrunk-schedule.json`,
//! `shrunk-run.json` (the run configuration) and `shrink.json` (the steps) are written to
//! `RESULTS` (default `RUN_DIR/shrink`), with a `shrunk` link to the final failing run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};

use crate::config::{RunConfig, RunMode};
use crate::nemesis::{Action, Schedule, ScheduleEvent};
use crate::replay::{self, Replayed};
use crate::UsageError;

/// `squall shrink` options.
#[derive(Args, Debug, Clone)]
pub struct ShrinkArgs {
    /// The failing run directory to shrink (it holds run.json, schedule.json, verdict.json).
    pub run_dir: PathBuf,
    /// Free-running: tries per candidate; it fails if any try fails (lockstep: always 1).
    #[arg(long, default_value_t = 3)]
    pub times: u32,
    /// Most candidate runs to spend.
    #[arg(long, default_value_t = 200)]
    pub max_runs: u32,
    /// Where candidate runs and the result go [default: RUN_DIR/shrink].
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
}

/// Events that start a fault (not heals, restarts or resumes).
pub fn fault_events(schedule: &Schedule) -> usize {
    schedule
        .events
        .iter()
        .filter(|e| is_fault(&e.action))
        .count()
}

fn is_fault(action: &Action) -> bool {
    matches!(
        action,
        Action::Partition { .. }
            | Action::Kill { .. }
            | Action::Crash { .. }
            | Action::Pause { .. }
            | Action::Clog { .. }
            | Action::LinkFaults { .. }
    )
}

/// Groups the events of `schedule` into units that are removed together, as lists of
/// indexes into `schedule.events`, in the order of their first event. The last event,
/// if it is a `heal_all`, belongs to no unit: it is always kept.
pub fn units(schedule: &Schedule) -> Vec<Vec<usize>> {
    let events = &schedule.events;
    let keep_last = matches!(events.last().map(|e| &e.action), Some(Action::HealAll {}));
    let end = if keep_last {
        events.len() - 1
    } else {
        events.len()
    };
    let mut units: Vec<Vec<usize>> = Vec::new();
    // Triggered events: one unit per distinct (trigger, at_ms).
    let mut by_trigger: BTreeMap<String, usize> = BTreeMap::new();
    // Timed events in firing order (at_ms, then file order).
    let mut timed: Vec<usize> = Vec::new();
    for (i, e) in events[..end].iter().enumerate() {
        if let Some(on) = &e.on {
            let key = format!(
                "{}|{:?}",
                serde_json::to_string(on).unwrap_or_default(),
                e.at_ms
            );
            match by_trigger.get(&key) {
                Some(&u) => units[u].push(i),
                None => {
                    by_trigger.insert(key, units.len());
                    units.push(vec![i]);
                }
            }
        } else {
            timed.push(i);
        }
    }
    timed.sort_by_key(|&i| (events[i].at_ms, i));
    // Open units waiting for their heal.
    let mut partition: Option<usize> = None;
    let mut link: Option<usize> = None;
    let mut down: BTreeMap<String, usize> = BTreeMap::new();
    let mut paused: BTreeMap<String, usize> = BTreeMap::new();
    let mut clogged: BTreeMap<String, usize> = BTreeMap::new();
    for i in timed {
        let new = |units: &mut Vec<Vec<usize>>| {
            units.push(vec![i]);
            units.len() - 1
        };
        match &events[i].action {
            Action::Partition { .. } => partition = Some(new(&mut units)),
            Action::HealPartition {} => match partition.take() {
                Some(u) => units[u].push(i),
                None => {
                    new(&mut units);
                }
            },
            Action::LinkFaults { .. } => link = Some(new(&mut units)),
            Action::ClearLinkFaults {} => match link.take() {
                Some(u) => units[u].push(i),
                None => {
                    new(&mut units);
                }
            },
            Action::Kill { node } => {
                let u = new(&mut units);
                down.insert(node.clone(), u);
            }
            Action::Restart { node, .. } => match down.remove(node) {
                Some(u) => units[u].push(i),
                None => {
                    new(&mut units);
                }
            },
            Action::Pause { node } => {
                let u = new(&mut units);
                paused.insert(node.clone(), u);
            }
            Action::Resume { node } => match paused.remove(node) {
                Some(u) => units[u].push(i),
                None => {
                    new(&mut units);
                }
            },
            Action::Clog { node } => {
                let u = new(&mut units);
                clogged.insert(node.clone(), u);
            }
            Action::Unclog { node } => match clogged.remove(node) {
                Some(u) => units[u].push(i),
                None => {
                    new(&mut units);
                }
            },
            Action::Crash { .. } => {
                new(&mut units);
            }
            Action::HealAll {} => {
                new(&mut units);
                partition = None;
                link = None;
                down.clear();
                paused.clear();
                clogged.clear();
            }
        }
    }
    units.sort_by_key(|u| u.iter().min().copied());
    units
}

/// `schedule` with only the units `keep` (indexes into `all`) and the events in no unit.
fn with_units(schedule: &Schedule, all: &[Vec<usize>], keep: &[usize]) -> Schedule {
    let mut dropped: Vec<bool> = vec![false; schedule.events.len()];
    for u in all {
        for &i in u {
            dropped[i] = true;
        }
    }
    for &k in keep {
        for &i in &all[k] {
            dropped[i] = false;
        }
    }
    let mut s = schedule.clone();
    s.events = schedule
        .events
        .iter()
        .zip(&dropped)
        .filter(|(_, d)| !**d)
        .map(|(e, _)| e.clone())
        .collect();
    s
}

/// The property the run violated: the first invalid checker's `evidence.property`
/// (or its name, when it gives no property).
pub fn violated_properties(verdict: &Value) -> Vec<String> {
    if verdict["verdict"].as_str() != Some("invalid") {
        return Vec::new();
    }
    verdict["checkers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["verdict"].as_str() == Some("invalid"))
        .map(workloads::verdict::property_of)
        .collect()
}

/// One candidate tried.
#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    run: u32,
    pass: &'static str,
    what: String,
    fault_events: usize,
    time_limit_ms: u64,
    rate: f64,
    outcome: String,
    accepted: bool,
    dir: Option<PathBuf>,
}

struct Shrinker {
    cfg: RunConfig,
    property: String,
    tries: u32,
    max_runs: u32,
    runs: u32,
    steps: Vec<Step>,
    /// The latest run of the current configuration that failed.
    last_failing: Option<PathBuf>,
}

impl Shrinker {
    fn budget_left(&self) -> bool {
        self.runs < self.max_runs
    }

    /// Runs `cfg` up to `tries` times; `Some(dir)` of the first failing run, if any.
    async fn fails(&mut self, cfg: &RunConfig) -> anyhow::Result<(Option<PathBuf>, String)> {
        let mut outcomes = Vec::new();
        for _ in 0..self.tries {
            if !self.budget_left() {
                break;
            }
            self.runs += 1;
            let r: Replayed = replay::run_again(cfg.clone()).await?;
            let props = violated_properties(&r.verdict_json);
            let desc = if props.is_empty() {
                r.verdict.clone()
            } else {
                format!("{} ({})", r.verdict, props.join(","))
            };
            outcomes.push(desc);
            if props.contains(&self.property) {
                return Ok((Some(r.dir), outcomes.join(" ")));
            }
        }
        Ok((None, outcomes.join(" ")))
    }

    /// Tries `cand`; keeps it (returns true) if it is valid and still fails.
    async fn attempt(
        &mut self,
        pass: &'static str,
        what: String,
        cand: RunConfig,
    ) -> anyhow::Result<bool> {
        let schedule = cand.schedule.as_ref().expect("a schedule");
        if let Err(e) = schedule.validate() {
            println!("  skip  {what}: invalid schedule ({e})");
            return Ok(false);
        }
        if !self.budget_left() {
            return Ok(false);
        }
        let (failing, outcome) = self.fails(&cand).await?;
        let accepted = failing.is_some();
        let step = Step {
            run: self.runs,
            pass,
            what: what.clone(),
            fault_events: fault_events(schedule),
            time_limit_ms: cand.time_limit_ms,
            rate: cand.rate,
            outcome: outcome.clone(),
            accepted,
            dir: failing.clone(),
        };
        println!(
            "  run {:>3} [{pass}] {what}: {outcome} -> {}",
            self.runs,
            if accepted {
                "still fails, kept"
            } else {
                "passes, undone"
            }
        );
        self.steps.push(step);
        if accepted {
            self.cfg = cand;
            self.last_failing = failing;
        }
        Ok(accepted)
    }

    fn schedule(&self) -> &Schedule {
        self.cfg.schedule.as_ref().expect("a schedule")
    }

    fn with_schedule(&self, s: Schedule) -> RunConfig {
        let mut c = self.cfg.clone();
        c.time_limit_ms = s.time_limit_ms;
        c.schedule = Some(s);
        c
    }

    /// Pass 1: drop units of fault events, ddmin-style.
    async fn drop_events(&mut self) -> anyhow::Result<()> {
        let schedule = self.schedule().clone();
        let all = units(&schedule);
        let mut keep: Vec<usize> = (0..all.len()).collect();
        let describe = |ks: &[usize]| -> String {
            let ids: Vec<String> = ks
                .iter()
                .map(|&k| {
                    let ids: Vec<String> = all[k]
                        .iter()
                        .map(|&i| schedule.events[i].id.to_string())
                        .collect();
                    ids.join("+")
                })
                .collect();
            ids.join(",")
        };
        if keep.is_empty() {
            return Ok(());
        }
        // Everything at once first: a run that fails without any fault needs no more.
        let cand = self.with_schedule(with_units(&schedule, &all, &[]));
        if self
            .attempt("drop", format!("drop all {} units", keep.len()), cand)
            .await?
        {
            return Ok(());
        }
        let mut n = 2usize;
        while keep.len() > 1 && self.budget_left() {
            let chunk = keep.len().div_ceil(n);
            let chunks: Vec<Vec<usize>> = keep.chunks(chunk).map(<[usize]>::to_vec).collect();
            let mut cut = false;
            for c in &chunks {
                let rest: Vec<usize> = keep.iter().copied().filter(|k| !c.contains(k)).collect();
                let cand = self.with_schedule(with_units(&schedule, &all, &rest));
                let what = format!("drop units [{}] (keep {})", describe(c), rest.len());
                if self.attempt("drop", what, cand).await? {
                    keep = rest;
                    n = n.saturating_sub(1).max(2);
                    cut = true;
                    break;
                }
                if !self.budget_left() {
                    break;
                }
            }
            if !cut {
                if chunk == 1 {
                    break;
                }
                n = (n * 2).min(keep.len());
            }
        }
        Ok(())
    }

    /// Pass 2a: lower the time limit towards the last remaining event.
    async fn shorten_time(&mut self) -> anyhow::Result<()> {
        const MARGIN_MS: u64 = 200;
        const MIN_MS: u64 = 500;
        let s = self.schedule();
        let last = s
            .events
            .iter()
            .filter(|e| !matches!(e.action, Action::HealAll {}))
            .filter_map(|e| e.at_ms)
            .max()
            .unwrap_or(0);
        let mut lo = (last + MARGIN_MS).max(MIN_MS);
        let mut hi = s.time_limit_ms;
        let mut first = true;
        for _ in 0..4 {
            if lo >= hi || !self.budget_left() {
                break;
            }
            let target = if first { lo } else { lo + (hi - lo) / 2 };
            first = false;
            let cand = self.with_schedule(clamp_time(self.schedule(), target));
            let what = format!("time limit {} -> {target} ms", self.cfg.time_limit_ms);
            if self.attempt("shorten", what, cand).await? {
                hi = target;
                if target == lo {
                    break;
                }
            } else {
                lo = target + 1;
            }
        }
        Ok(())
    }

    /// Pass 2b: halve how long each timed fault lasts (its heal moves earlier).
    async fn shorten_durations(&mut self) -> anyhow::Result<()> {
        let s = self.schedule().clone();
        for unit in units(&s) {
            let ids: Vec<u32> = unit.iter().map(|&i| s.events[i].id).collect();
            for _ in 0..3 {
                let cur = self.schedule();
                let pos: Vec<usize> = ids
                    .iter()
                    .filter_map(|id| cur.events.iter().position(|e| e.id == *id))
                    .collect();
                if pos.len() != 2 {
                    break;
                }
                let (a, b) = (&cur.events[pos[0]], &cur.events[pos[1]]);
                let (Some(start), Some(end)) = (a.at_ms, b.at_ms) else {
                    break;
                };
                if a.on.is_some() || b.on.is_some() || end <= start + 20 {
                    break;
                }
                let new_end = start + (end - start) / 2;
                let mut next = cur.clone();
                next.events[pos[1]].at_ms = Some(new_end);
                sort_timed(&mut next);
                let what = format!(
                    "event {}: {} lasts {} -> {} ms",
                    a.id,
                    a.action.name(),
                    end - start,
                    new_end - start
                );
                let cand = self.with_schedule(next);
                if !self.budget_left() || !self.attempt("shorten", what, cand).await? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Pass 2c: lower link fault probabilities and delays, one field at a time.
    async fn lower_link_faults(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u32> = self
            .schedule()
            .events
            .iter()
            .filter(|e| matches!(e.action, Action::LinkFaults { .. }))
            .map(|e| e.id)
            .collect();
        for id in ids {
            for field in ["drop", "duplicate", "reorder", "delay"] {
                for factor in [0.0, 0.5] {
                    let cur = self.schedule();
                    let Some(pos) = cur.events.iter().position(|e| e.id == id) else {
                        break;
                    };
                    let mut next = cur.clone();
                    let Some(what) = scale_field(&mut next.events[pos], field, factor) else {
                        break;
                    };
                    let cand = self.with_schedule(next);
                    if !self.budget_left() {
                        return Ok(());
                    }
                    if self
                        .attempt("lower", format!("event {id}: {what}"), cand)
                        .await?
                    {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Pass 3: fewer client ops: halve the rate while it still fails.
    async fn fewer_ops(&mut self) -> anyhow::Result<()> {
        while self.cfg.rate > 2.0 && self.budget_left() {
            let mut cand = self.cfg.clone();
            cand.rate = (self.cfg.rate / 2.0).floor().max(1.0);
            let what = format!("rate {} -> {} ops/s", self.cfg.rate, cand.rate);
            if !self.attempt("ops", what, cand).await? {
                break;
            }
        }
        Ok(())
    }
}

/// Re-sorts the timed events by time (stable, so ties keep their file order); triggered
/// events stay where they are relative to each other, after the timed ones they followed.
fn sort_timed(s: &mut Schedule) {
    s.events.sort_by_key(|e| e.at_ms.unwrap_or(0));
}

/// `s` with `time_limit_ms = limit`: timed events past it are dropped, except a
/// `heal_all`, which moves to the new limit.
pub fn clamp_time(s: &Schedule, limit: u64) -> Schedule {
    let mut out = s.clone();
    out.time_limit_ms = limit;
    out.events = s
        .events
        .iter()
        .filter_map(|e| match e.at_ms {
            Some(at) if at > limit => {
                if matches!(e.action, Action::HealAll {}) {
                    let mut e = e.clone();
                    e.at_ms = Some(limit);
                    Some(e)
                } else {
                    None
                }
            }
            _ => Some(e.clone()),
        })
        .collect();
    out
}

/// Scales one link fault field of `e` by `factor` (0 removes it); a description, or
/// `None` if there is nothing to lower.
fn scale_field(e: &mut ScheduleEvent, field: &str, factor: f64) -> Option<String> {
    let Action::LinkFaults {
        drop,
        delay,
        duplicate,
        reorder,
        ..
    } = &mut e.action
    else {
        return None;
    };
    let p = match field {
        "drop" => drop,
        "duplicate" => duplicate,
        "reorder" => reorder,
        _ => {
            let d = delay.as_mut()?;
            if factor == 0.0 {
                *delay = None;
                return Some("no delay".into());
            }
            if d.base_ms + d.jitter_ms < 2 {
                return None;
            }
            let before = (d.base_ms, d.jitter_ms);
            d.base_ms = (d.base_ms as f64 * factor) as u64;
            d.jitter_ms = (d.jitter_ms as f64 * factor) as u64;
            return Some(format!(
                "delay {}+{} -> {}+{} ms",
                before.0, before.1, d.base_ms, d.jitter_ms
            ));
        }
    };
    if *p <= 0.0 {
        return None;
    }
    let before = *p;
    *p = (before * factor * 1000.0).round() / 1000.0;
    Some(format!("{field} {before} -> {}", *p))
}

/// `squall shrink`: exit 0 with a still-failing (smaller or as small as it gets) run,
/// 1 if the original does not fail.
pub async fn shrink(args: &ShrinkArgs) -> anyhow::Result<u8> {
    if args.times == 0 {
        return Err(UsageError("--times must be at least 1".into()).into());
    }
    if args.max_runs == 0 {
        return Err(UsageError("--max-runs must be at least 1".into()).into());
    }
    let saved = replay::load(&args.run_dir)?;
    let results = args
        .results_dir
        .clone()
        .unwrap_or_else(|| args.run_dir.join("shrink"));
    let mut cfg = saved.cfg;
    cfg.results_dir = results.join("runs");
    cfg.schedule_from = None;
    let lockstep = cfg.mode == RunMode::Lockstep;
    let props = saved
        .verdict
        .as_ref()
        .map(violated_properties)
        .unwrap_or_default();
    let Some(property) = props.first().cloned() else {
        println!(
            "{} did not fail (verdict {}): nothing to shrink",
            args.run_dir.display(),
            saved
                .verdict
                .as_ref()
                .and_then(|v| v["verdict"].as_str())
                .unwrap_or("none")
        );
        return Ok(1);
    };
    let original = cfg.schedule.clone().expect("load attaches the schedule");
    std::fs::create_dir_all(&results)
        .map_err(|e| UsageError(format!("{}: {e}", results.display())))?;
    println!(
        "shrinking {} ({} mode, seed {}): violates {property}; {} events, {} fault events, \
         {} units, time limit {} ms, rate {} ops/s",
        args.run_dir.display(),
        if lockstep { "lockstep" } else { "free-running" },
        cfg.seed,
        original.events.len(),
        fault_events(&original),
        units(&original).len(),
        cfg.time_limit_ms,
        cfg.rate
    );
    let mut sh = Shrinker {
        cfg: cfg.clone(),
        property: property.clone(),
        tries: if lockstep { 1 } else { args.times },
        max_runs: args.max_runs,
        runs: 0,
        steps: Vec::new(),
        last_failing: None,
    };
    println!("checking that the original still fails:");
    let (failing, outcome) = sh.fails(&cfg).await?;
    println!("  run {:>3} [original]: {outcome}", sh.runs);
    let Some(failing) = failing else {
        println!(
            "the original run no longer fails with {property} ({} tries): nothing to shrink",
            sh.runs
        );
        return Ok(1);
    };
    sh.last_failing = Some(failing);
    println!("pass 1: drop fault events");
    sh.drop_events().await?;
    println!("pass 2: shorten the run and the faults, lower link fault rates");
    sh.shorten_time().await?;
    sh.shorten_durations().await?;
    sh.lower_link_faults().await?;
    println!("pass 3: fewer client ops");
    sh.fewer_ops().await?;

    let final_schedule = sh.schedule().clone();
    let final_dir = sh.last_failing.clone().expect("a failing run");
    std::fs::write(
        results.join("shrunk-schedule.json"),
        final_schedule.to_json(),
    )?;
    crate::results::write_json(&results.join("shrunk-run.json"), &sh.cfg)?;
    let link = results.join("shrunk");
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(absolute(&final_dir), &link);
    let summary = json!({
        "run_dir": args.run_dir,
        "property": property,
        "mode": cfg.mode.name(),
        "runs": sh.runs,
        "before": {
            "events": original.events.len(),
            "fault_events": fault_events(&original),
            "time_limit_ms": cfg.time_limit_ms,
            "rate": cfg.rate,
        },
        "after": {
            "events": final_schedule.events.len(),
            "fault_events": fault_events(&final_schedule),
            "time_limit_ms": sh.cfg.time_limit_ms,
            "rate": sh.cfg.rate,
        },
        "shrunk_run": final_dir,
        "steps": sh.steps,
    });
    crate::results::write_json(&results.join("shrink.json"), &summary)?;
    println!(
        "shrunk in {} runs: {} -> {} events, {} -> {} fault events, time limit {} -> {} ms, \
         rate {} -> {} ops/s; still violates {property}",
        sh.runs,
        original.events.len(),
        final_schedule.events.len(),
        fault_events(&original),
        fault_events(&final_schedule),
        cfg.time_limit_ms,
        sh.cfg.time_limit_ms,
        cfg.rate,
        sh.cfg.rate
    );
    for e in &final_schedule.events {
        println!("  {:>4}  {}", e.id, e.describe());
    }
    println!(
        "wrote {}/shrunk-schedule.json, shrunk-run.json, shrink.json",
        results.display()
    );
    println!("replay: squall replay {}", final_dir.display());
    Ok(0)
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"{
  "nodes": ["n1", "n2", "n3"], "time_limit_ms": 5000, "recovery_ms": 1000,
  "events": [
    {"id": 1, "at_ms": 100, "action": "partition", "cut": [["n1", "n2"]]},
    {"id": 2, "at_ms": 200, "action": "kill", "node": "n3"},
    {"id": 3, "at_ms": 300, "action": "heal_partition"},
    {"id": 4, "at_ms": 400, "action": "link_faults", "links": "all", "drop": 0.2},
    {"id": 5, "at_ms": 500, "action": "restart", "node": "n3"},
    {"id": 6, "at_ms": 600, "action": "clear_link_faults"},
    {"id": 7, "on": {"msg_type": "promise", "nth": 2}, "action": "kill", "node": "$src"},
    {"id": 8, "on": {"msg_type": "promise", "nth": 2}, "action": "restart", "node": "$src"},
    {"id": 9, "at_ms": 5000, "action": "heal_all"}
  ]
}"#;

    #[test]
    fn faults_group_with_their_heals_and_the_final_heal_all_stays() {
        let s = Schedule::from_json(PLAN).expect("valid");
        let ids = |u: &Vec<usize>| u.iter().map(|&i| s.events[i].id).collect::<Vec<_>>();
        let got: Vec<Vec<u32>> = units(&s).iter().map(ids).collect();
        assert_eq!(got, [vec![1, 3], vec![2, 5], vec![4, 6], vec![7, 8]]);
        assert_eq!(fault_events(&s), 4);
        let all = units(&s);
        let only_kill = with_units(&s, &all, &[1]);
        let kept: Vec<u32> = only_kill.events.iter().map(|e| e.id).collect();
        assert_eq!(kept, [2, 5, 9]);
        only_kill
            .validate()
            .expect("a unit keeps the schedule valid");
    }

    #[test]
    fn clamping_drops_late_events_and_moves_the_final_heal() {
        let s = Schedule::from_json(PLAN).expect("valid");
        let c = clamp_time(&s, 450);
        let kept: Vec<u32> = c.events.iter().map(|e| e.id).collect();
        assert_eq!(kept, [1, 2, 3, 4, 7, 8, 9]);
        assert_eq!(c.events.last().and_then(|e| e.at_ms), Some(450));
        assert_eq!(c.time_limit_ms, 450);
    }

    #[test]
    fn violated_properties_come_from_invalid_checkers() {
        let v = json!({"verdict": "invalid", "checkers": [
            {"checker": "echo", "verdict": "valid"},
            {"checker": "consensus", "verdict": "invalid", "evidence": {"property": "agreement"}},
            {"checker": "durability", "verdict": "invalid", "evidence": {}}
        ]});
        assert_eq!(violated_properties(&v), ["agreement", "durability"]);
        assert!(violated_properties(&json!({"verdict": "valid"})).is_empty());
    }
}
