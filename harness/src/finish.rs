//! The end of a run, the same in both modes: check the history, settle the verdict and
//! write `verdict.json`; then `metrics.json`, `report.html`, `latest`, and the lines
//! printed for the run.
//!
//! What differs between a free-running and a lockstep run stays with each: the evidence
//! it gathered, the wording of a startup failure, the fields only its `verdict.json` and
//! `metrics.json` have, and its own summary line.

use std::path::Path;

use serde_json::{json, Value};
use workloads::history::Op;
use workloads::verdict::{FaultSpan, TimedReport};
use workloads::{CheckInput, Checker, History, VerdictKind};

use crate::results;
use crate::run::{judge, settle, RunConfig, RunIssues};

/// What a run hands over once its nodes are gone.
pub struct Ending<'a> {
    /// The run's configuration.
    pub cfg: &'a RunConfig,
    /// Its id (the directory's name).
    pub run_id: &'a str,
    /// Its directory, holding `history.jsonl`.
    pub dir: &'a Path,
    /// The workload's checkers.
    pub checkers: &'a [Box<dyn Checker>],
    /// Every report the nodes sent.
    pub reports: Vec<TimedReport>,
    /// Faults and when they were active.
    pub faults: Vec<FaultSpan>,
    /// When the quiet window began (ns since the start), if it did.
    pub quiet_from: Option<u64>,
    /// Nodes up when the run ended.
    pub live_nodes: Vec<String>,
    /// What besides the checkers decides the verdict.
    pub issues: RunIssues<'a>,
    /// Warnings for `verdict.json`.
    pub warnings: Vec<String>,
    /// Fields only this mode's `verdict.json` has.
    pub verdict_extra: Value,
}

/// The settled verdict, and the ops of the history for metrics.
pub struct Judged {
    /// The overall verdict.
    pub verdict: VerdictKind,
    /// Why.
    pub reason: String,
    /// The history's operations.
    pub ops: Vec<Op>,
}

impl Ending<'_> {
    /// Reads the history back, runs every checker, settles the verdict and writes
    /// `verdict.json`.
    pub fn judge(self) -> anyhow::Result<Judged> {
        let history = History::load(&self.dir.join("history.jsonl"))
            .map_err(|e| anyhow::anyhow!("read back history: {e}"))?;
        let ops = history.ops();
        let input = CheckInput {
            history,
            reports: self.reports,
            faults: self.faults,
            quiet_from: self.quiet_from,
            live_nodes: self.live_nodes,
        };
        let (verdicts, overall, reason) = judge(self.checkers, &input);
        let faulty = self.issues.faulty;
        let interrupted = self.issues.interrupted;
        let (verdict, reason) = settle(overall, reason, self.issues);
        let mut verdict_json = json!({
            "verdict": verdict,
            "reason": reason,
            "run_id": self.run_id,
            "seed": self.cfg.seed,
            "interrupted": interrupted,
            "checkers": verdicts,
            "faulty_nodes": faulty,
            "warnings": self.warnings,
        });
        if let (Some(all), Some(extra)) =
            (verdict_json.as_object_mut(), self.verdict_extra.as_object())
        {
            all.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        results::write_json(&self.dir.join("verdict.json"), &verdict_json)?;
        Ok(Judged {
            verdict,
            reason,
            ops,
        })
    }
}

/// Writes `metrics.json` and `report.html`, and points `latest` at the run unless it
/// is one of a batch.
pub fn publish(cfg: &RunConfig, run_id: &str, dir: &Path, metrics: &Value) -> anyhow::Result<()> {
    results::write_json(&dir.join("metrics.json"), metrics)?;
    crate::report::write_or_warn(dir);
    if !cfg.silent {
        results::update_latest(&cfg.results_dir, run_id)?;
    }
    Ok(())
}

/// The `ops` line of a run's summary, from `metrics::op_counts`.
pub fn ops_line(counts: &Value) -> String {
    format!(
        "ops       {} total: {} ok, {} fail, {} info, {} pending\n",
        counts["total"], counts["ok"], counts["fail"], counts["info"], counts["pending"]
    )
}

/// The `verdict` line of a run's summary.
pub fn verdict_line(verdict: VerdictKind, reason: &str) -> String {
    format!("verdict   {}: {reason}\n", verdict.word())
}
