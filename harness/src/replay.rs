//! `squall replay RUN_DIR`: run a saved run again from its `run.json` and
//! `schedule.json`, and say whether it reproduced.
//!
//! A lockstep run must come back bit for bit: the same verdict and the same
//! `trace_hash`. A free-running run depends on real timing, so it is replayed `--times`
//! times and the reproduction rate of its verdict is reported. Replays go to
//! `RUN_DIR/replays/` unless `--results-dir` says otherwise. With `--diff`, a lockstep
//! replay whose trace differs is compared with the original record by record and the
//! first record that differs is printed ([`crate::trace::first_difference`]).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;
use tokio::sync::watch;

use crate::config::{RunConfig, RunMode};
use crate::nemesis::Schedule;
use crate::run;
use crate::UsageError;

/// `squall replay` options.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The run directory to replay (it holds run.json and schedule.json).
    pub run_dir: PathBuf,
    /// How many times to replay it.
    #[arg(long, default_value_t = 1)]
    pub times: u32,
    /// Where the replays' run directories go [default: RUN_DIR/replays].
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Lockstep: for each replay whose trace differs, print the first record that
    /// differs from the original's trace (step, node, event kind, expected and got line).
    #[arg(long)]
    pub diff: bool,
}

/// A saved run, ready to run again.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// Its configuration, with its schedule attached.
    pub cfg: RunConfig,
    /// Its `verdict.json`, if it got that far.
    pub verdict: Option<Value>,
}

/// Reads `run.json`, `schedule.json` and `verdict.json` from a run directory. Problems
/// with the directory are usage errors (exit 254).
pub fn load(dir: &Path) -> anyhow::Result<SavedRun> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| UsageError(format!("{}: {e}", dir.join(name).display())))
    };
    let mut cfg: RunConfig = serde_json::from_str(&read("run.json")?)
        .map_err(|e| UsageError(format!("{}: {e}", dir.join("run.json").display())))?;
    let schedule = Schedule::from_json(&read("schedule.json")?)
        .map_err(|e| UsageError(format!("{}: {e}", dir.join("schedule.json").display())))?;
    cfg.schedule = Some(schedule);
    let verdict = crate::results::read_json(&dir.join("verdict.json")).ok();
    Ok(SavedRun { cfg, verdict })
}

/// What one replay showed.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Its run directory.
    pub dir: PathBuf,
    /// Its verdict kind (`valid`, `invalid`, `unknown`).
    pub verdict: String,
    /// Its trace hash (lockstep only).
    pub trace_hash: Option<String>,
    /// Its whole `verdict.json`.
    pub verdict_json: Value,
}

/// Runs `cfg` once more, in its mode, and reads back what it concluded.
pub async fn run_again(cfg: RunConfig) -> anyhow::Result<Replayed> {
    let (_tx, rx) = watch::channel(false);
    let outcome = run::run_any(cfg, rx).await?;
    let v: Value = crate::results::read_json(&outcome.dir.join("verdict.json"))?;
    Ok(Replayed {
        dir: outcome.dir,
        verdict: v["verdict"].as_str().unwrap_or("?").to_string(),
        trace_hash: v["trace_hash"].as_str().map(str::to_string),
        verdict_json: v,
    })
}

/// The first difference between the traces of `original` and `replayed`, as text.
pub fn trace_diff(original: &Path, replayed: &Path) -> String {
    let read = |dir: &Path| crate::trace::read_trace(&dir.join("trace.bin"));
    match (read(original), read(replayed)) {
        (Ok(a), Ok(b)) => match crate::trace::first_difference(&a, &b) {
            Some(d) => d.to_string(),
            None => "the traces are equal record for record\n".into(),
        },
        (Err(e), _) | (_, Err(e)) => format!("cannot compare the traces: {e:#}\n"),
    }
}

/// `squall replay`: exit 0 when every replay reproduced the run, 1 otherwise.
pub async fn replay(args: &ReplayArgs) -> anyhow::Result<u8> {
    if args.times == 0 {
        return Err(UsageError("--times must be at least 1".into()).into());
    }
    let saved = load(&args.run_dir)?;
    let mut cfg = saved.cfg;
    cfg.results_dir = args
        .results_dir
        .clone()
        .unwrap_or_else(|| args.run_dir.join("replays"));
    let want_verdict = saved.verdict.as_ref().and_then(|v| v["verdict"].as_str());
    let want_hash = saved
        .verdict
        .as_ref()
        .and_then(|v| v["trace_hash"].as_str());
    let lockstep = cfg.mode == RunMode::Lockstep;
    println!(
        "replaying {} ({} mode, seed {}): verdict {}{}",
        args.run_dir.display(),
        if lockstep { "lockstep" } else { "free-running" },
        cfg.seed,
        want_verdict.unwrap_or("none"),
        want_hash
            .map(|h| format!(", trace {h}"))
            .unwrap_or_default()
    );
    let mut reproduced = 0;
    for i in 1..=args.times {
        let r = run_again(cfg.clone()).await?;
        let same_verdict = Some(r.verdict.as_str()) == want_verdict;
        let same_trace = !lockstep || r.trace_hash.as_deref() == want_hash;
        if same_verdict && same_trace {
            reproduced += 1;
        }
        println!(
            "replay {i}/{}: {}{}{}{}",
            args.times,
            r.verdict,
            r.trace_hash
                .as_deref()
                .map(|h| format!(", trace {h}"))
                .unwrap_or_default(),
            crate::verdict::warnings_note(&r.verdict_json),
            if same_verdict && same_trace {
                " (reproduced)"
            } else {
                " (DIFFERENT)"
            }
        );
        if args.diff && lockstep && !same_trace {
            print!("{}", trace_diff(&args.run_dir, &r.dir));
        }
    }
    let what = if lockstep {
        "with an identical trace"
    } else {
        "with the same verdict"
    };
    println!(
        "reproduced {reproduced} of {} {what} ({:.0}%)",
        args.times,
        100.0 * f64::from(reproduced) / f64::from(args.times)
    );
    Ok(if reproduced == args.times { 0 } else { 1 })
}
