//! A run judged again from its directory alone. `squall check` does this with a
//! `history.jsonl` that sits in a run directory, so that it gives the run's own verdict
//! by the run's own rules: the workload's checkers (for write-once: consensus,
//! linearizability with local null reads left out, stable reads) on the history, the
//! nodes' reports, the fault spans and the quiet window, then the same settling
//! (faulty nodes, startup, interruption). A history on its own, or another tool's, goes
//! to lincheck instead.

use std::path::{Path, PathBuf};

use serde_json::Value;
use workloads::verdict::{FaultSpan, TimedReport};
use workloads::{CheckInput, History, VerdictKind};

use crate::config::RunConfig;
use crate::results;
use crate::verdict::{overall_verdict, run_checkers, Faulty, RunIssues};

/// The verdict a run directory's files give.
#[derive(Debug, Clone)]
pub struct Rejudged {
    /// The overall verdict.
    pub verdict: VerdictKind,
    /// Why, as the run would say it.
    pub reason: String,
    /// What `verdict.json` says, for comparison.
    pub recorded: Option<VerdictKind>,
}

/// The run directory `path` is the history of, if it is a `history.jsonl` next to a
/// `run.json` and a `verdict.json`.
pub fn run_dir_of(path: &Path) -> Option<PathBuf> {
    if path.file_name()? != "history.jsonl" {
        return None;
    }
    let dir = path.parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    (dir.join("run.json").is_file() && dir.join("verdict.json").is_file())
        .then(|| dir.to_path_buf())
}

/// Judges the run in `dir` again from its files.
pub fn rejudge(dir: &Path) -> anyhow::Result<Rejudged> {
    let cfg: RunConfig = results::read_json(&dir.join("run.json"))?;
    let workload = cfg.workload()?;
    let history = History::load(&dir.join("history.jsonl"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("history.jsonl").display()))?;
    let reports: Vec<TimedReport> = match dir.join("reports.jsonl") {
        p if p.is_file() => results::read_jsonl(&p)?,
        _ => Vec::new(),
    };
    let metrics: Value = match dir.join("metrics.json") {
        p if p.is_file() => results::read_json(&p)?,
        _ => Value::Null,
    };
    let faults: Vec<FaultSpan> =
        serde_json::from_value(metrics["faults"]["spans"].clone()).unwrap_or_default();
    let recorded: Value = results::read_json(&dir.join("verdict.json"))?;
    let check_input = &recorded["check_input"];
    let live_nodes: Vec<String> =
        serde_json::from_value(check_input["live_nodes"].clone()).unwrap_or_default();
    let faulty: Vec<Faulty> =
        serde_json::from_value(recorded["faulty_nodes"].clone()).unwrap_or_default();
    let input = CheckInput {
        history,
        reports,
        faults,
        quiet_from: check_input["quiet_from"].as_u64(),
        live_nodes,
    };
    let (_, overall, reason) = run_checkers(&workload.checkers(), &input);
    let issues = RunIssues {
        startup_failure: recorded["startup_failure"].as_str().map(str::to_string),
        faulty: &faulty,
        interrupted: recorded["interrupted"].as_bool().unwrap_or(false),
    };
    let (verdict, reason) = overall_verdict(overall, reason, issues);
    Ok(Rejudged {
        verdict,
        reason,
        recorded: serde_json::from_value(recorded["verdict"].clone()).ok(),
    })
}
