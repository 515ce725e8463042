//! The end of a run, the same in both modes: check the history ([`run_checkers`]),
//! settle the verdict against what else went wrong ([`overall_verdict`]) and write
//! `verdict.json` ([`Evidence::judge`]); then `metrics.json`, `report.html` and `latest`
//! ([`write_outputs`]), and the lines printed for the run ([`summary_text`]).
//!
//! What differs between a free-running and a lockstep run stays with each: the evidence
//! it gathered, the wording of a startup failure, the fields only its `verdict.json` and
//! `metrics.json` have, and the detail lines of its summary.
//!
//! Warnings are collapsed here ([`collapse`]: one per distinct cause, with a count) for
//! `verdict.json` and printed under the verdict line ([`verdict_line`]), so a run whose
//! requested fault never took effect does not print a bare `VALID`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use workloads::history::Op;
use workloads::verdict::{FaultSpan, TimedReport};
use workloads::{CheckInput, Checker, History, Verdict, VerdictKind};

use crate::config::RunConfig;
use crate::nemesis::{collapse, Warning};
use crate::results;

/// Warnings printed under the verdict line; `verdict.json` has them all.
pub const WARNINGS_PRINTED_MAX: usize = 5;

/// What a run hands over once its nodes are gone.
pub struct Evidence<'a> {
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
    /// Warnings for `verdict.json` (collapsed before they are written).
    pub warnings: Vec<Warning>,
    /// Fields only this mode's `verdict.json` has.
    pub verdict_extra: Value,
}

/// The settled verdict, and the ops of the history for metrics.
pub struct Judgement {
    /// The overall verdict.
    pub verdict: VerdictKind,
    /// Why.
    pub reason: String,
    /// The history's operations.
    pub ops: Vec<Op>,
    /// The warnings, one per distinct cause, as `verdict.json` has them.
    pub warnings: Vec<Warning>,
}

impl Evidence<'_> {
    /// Reads the history back, runs every checker, settles the verdict and writes
    /// `verdict.json`.
    pub fn judge(self) -> anyhow::Result<Judgement> {
        let history = History::load(&self.dir.join("history.jsonl"))
            .map_err(|e| anyhow::anyhow!("read back history: {e}"))?;
        // What `squall check` needs, besides the run directory's other files, to judge
        // the history again exactly as the run did (see `rejudge`).
        let check_input = json!({
            "quiet_from": self.quiet_from,
            "live_nodes": &self.live_nodes,
        });
        let startup_failure = self.issues.startup_failure.clone();
        let input = CheckInput {
            history,
            reports: self.reports,
            faults: self.faults,
            quiet_from: self.quiet_from,
            live_nodes: self.live_nodes,
        };
        let (verdicts, overall, reason) = run_checkers(self.checkers, &input);
        // The ops for metrics, made once the checkers are done and the history goes: a
        // long run's history is held once at a time, not twice.
        let ops = input.history.ops();
        drop(input);
        let faulty = self.issues.faulty;
        let interrupted = self.issues.interrupted;
        let (verdict, reason) = overall_verdict(overall, reason, self.issues);
        let warnings = collapse(self.warnings);
        let mut verdict_json = json!({
            "verdict": verdict,
            "reason": reason,
            "run_id": self.run_id,
            "seed": self.cfg.seed,
            "interrupted": interrupted,
            "checkers": verdicts,
            "faulty_nodes": faulty,
            "warnings": warnings,
            "check_input": check_input,
        });
        if let Some(why) = startup_failure {
            verdict_json["startup_failure"] = json!(why);
        }
        if let (Some(all), Some(extra)) =
            (verdict_json.as_object_mut(), self.verdict_extra.as_object())
        {
            all.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        results::write_json(&self.dir.join("verdict.json"), &verdict_json)?;
        Ok(Judgement {
            verdict,
            reason,
            ops,
            warnings,
        })
    }
}

/// Faults of one kind by one node: how many, the first one's words and time, and a few
/// more samples. One entry per `(node, kind)`, so `faulty_nodes` stays small however
/// often a node misbehaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Faulty {
    /// The node (connections that never became a node are counted by the router's gate,
    /// not listed here).
    pub node: String,
    /// What kind of fault (`unknown_address`, `garbage`, `exited`, ...); empty in
    /// verdicts written before faults had kinds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// What happened, the first time.
    pub what: String,
    /// Microseconds since the start (virtual in lockstep), the first time.
    pub at_us: u64,
    /// How many times.
    #[serde(default = "one")]
    pub count: u64,
    /// What happened the next few times (at most [`FAULT_SAMPLES_MAX`] samples in all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<String>,
}

fn one() -> u64 {
    1
}

/// Samples of each `(node, kind)` kept in [`Faulty`].
pub const FAULT_SAMPLES_MAX: usize = crate::router::FAULT_SAMPLES_MAX as usize;

/// The faults of a run, counted per node and kind ([`Faulty`]).
#[derive(Debug, Clone, Default)]
pub struct FaultBook {
    entries: Vec<Faulty>,
}

impl FaultBook {
    /// Counts one fault, keeping its words if it is among the first of its kind.
    pub fn add(&mut self, node: &str, kind: &str, what: String, at_us: u64) {
        match self
            .entries
            .iter_mut()
            .find(|f| f.node == node && f.kind == kind)
        {
            Some(f) => {
                f.count += 1;
                if f.more.len() + 1 < FAULT_SAMPLES_MAX {
                    f.more.push(what);
                }
            }
            None => self.entries.push(Faulty {
                node: node.to_string(),
                kind: kind.to_string(),
                what,
                at_us,
                count: 1,
                more: Vec::new(),
            }),
        }
    }

    /// Raises a count to `total` (the router counts faults it reported only samples of).
    pub fn at_least(&mut self, node: &str, kind: &str, total: u64) {
        if let Some(f) = self
            .entries
            .iter_mut()
            .find(|f| f.node == node && f.kind == kind)
        {
            f.count = f.count.max(total);
        }
    }

    /// Every entry, in the order their first fault came.
    pub fn entries(&self) -> &[Faulty] {
        &self.entries
    }
}

/// Runs every checker. The overall verdict is the worst one, and its reason that of the
/// first checker that gave it.
pub fn run_checkers(
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
pub fn overall_verdict(
    overall: VerdictKind,
    reason: String,
    issues: RunIssues<'_>,
) -> (VerdictKind, String) {
    if let Some(why) = issues.startup_failure {
        (overall.max(VerdictKind::Unknown), why)
    } else if let (Some(first), VerdictKind::Valid) = (issues.faulty.first(), overall) {
        let n: u64 = issues.faulty.iter().map(|f| f.count).sum();
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

/// Writes `metrics.json` and `report.html`, and points `latest` at the run unless it
/// is one of a batch.
pub fn write_outputs(
    cfg: &RunConfig,
    run_id: &str,
    dir: &Path,
    metrics: &Value,
) -> anyhow::Result<()> {
    results::write_json(&dir.join("metrics.json"), metrics)?;
    crate::report::write_or_warn(dir);
    if !cfg.silent {
        results::update_latest(&cfg.results_dir, run_id)?;
    }
    Ok(())
}

/// The lines printed at the end of a run, in both modes: `run`, `ops`, the mode's own
/// `detail` lines, the verdict and its warnings ([`verdict_line`]), `results`.
pub fn summary_text(
    run_id: &str,
    mode_note: &str,
    dir: &Path,
    counts: &Value,
    detail: &str,
    verdict_lines: &str,
) -> String {
    format!(
        "run       {run_id}{mode_note}\n{}{detail}{verdict_lines}results   {}\n",
        ops_line(counts),
        dir.display()
    )
}

/// The `latency` lines of a free-running run's summary, from `metrics::latency_by_kind`.
pub fn latency_lines(latency: &Value) -> String {
    let mut s = String::new();
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
    s
}

/// The `ops` line of a run's summary, from `metrics::op_counts`.
pub fn ops_line(counts: &Value) -> String {
    format!(
        "ops       {} total: {} ok, {} fail, {} info, {} pending\n",
        counts["total"], counts["ok"], counts["fail"], counts["info"], counts["pending"]
    )
}

/// The `verdict` line of a run's summary, and under it the warnings: their count, then
/// one line per cause (those about a requested fault that never took effect first,
/// marked `!`), at most [`WARNINGS_PRINTED_MAX`].
pub fn verdict_line(verdict: VerdictKind, reason: &str, warnings: &[Warning]) -> String {
    let mut s = format!("verdict   {}: {reason}\n", verdict.word());
    if warnings.is_empty() {
        return s;
    }
    let faults = warnings.iter().filter(|w| w.is_fault()).count();
    let total: u64 = warnings.iter().map(|w| w.count).sum();
    s.push_str(&format!("warnings  {}", warnings.len()));
    if total > warnings.len() as u64 {
        s.push_str(&format!(" ({total} in all)"));
    }
    match faults {
        0 => s.push('\n'),
        1 => s.push_str(": a requested fault never took effect\n"),
        n => s.push_str(&format!(
            ": requested faults never took effect ({n} causes)\n"
        )),
    }
    let mut ordered: Vec<&Warning> = warnings.iter().filter(|w| w.is_fault()).collect();
    ordered.extend(warnings.iter().filter(|w| !w.is_fault()));
    for w in ordered.iter().take(WARNINGS_PRINTED_MAX) {
        let (mark, what) = match w.is_fault() {
            true if !w.message.contains("never took effect") => {
                ("!", "requested fault never took effect: ")
            }
            true => ("!", ""),
            false => ("-", ""),
        };
        let times = if w.count > 1 {
            format!("{}x ", w.count)
        } else {
            String::new()
        };
        s.push_str(&format!("  {mark} {times}{what}{}", w.message));
        if let Some(first) = w.examples.first() {
            let eg = if w.count > 1 { "e.g. " } else { "" };
            s.push_str(&format!("; {eg}{first}"));
        }
        s.push('\n');
    }
    if warnings.len() > WARNINGS_PRINTED_MAX {
        s.push_str(&format!(
            "  ... and {} more in verdict.json\n",
            warnings.len() - WARNINGS_PRINTED_MAX
        ));
    }
    s
}

/// A short note on the warnings of a `verdict.json` for one-line summaries (`squall
/// replay`): empty without warnings, else `; 3 warnings (a requested fault never took
/// effect)`.
pub fn warnings_note(verdict_json: &Value) -> String {
    let Some(w) = verdict_json["warnings"]
        .as_array()
        .filter(|w| !w.is_empty())
    else {
        return String::new();
    };
    let faults = w
        .iter()
        .any(|w| w["kind"] == serde_json::json!(crate::nemesis::WarningKind::FaultNeverTookEffect));
    format!(
        "; {} warning{}{}",
        w.len(),
        if w.len() == 1 { "" } else { "s" },
        if faults {
            " (a requested fault never took effect)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_run_whose_trigger_never_fired_says_so_under_the_verdict() {
        let starved = (0..290).map(|i| {
            Warning::fault(
                "schedule event not applied: its trigger never matched: no 'promis' message \
                 was seen in the run at all (a message type the nodes never send?)",
                Some(format!(
                    "event {} (kill n2 on the {}th promis)",
                    i + 2,
                    i + 1
                )),
            )
        });
        let mut all: Vec<Warning> = vec![Warning::other("the recovery window is short")];
        all.extend(starved);
        let warnings = collapse(all);
        let text = verdict_line(VerdictKind::Valid, "all checkers passed", &warnings);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "verdict   VALID: all checkers passed");
        assert_eq!(
            lines[1],
            "warnings  2 (291 in all): a requested fault never took effect"
        );
        assert!(
            lines[2].starts_with(
                "  ! 290x requested fault never took effect: schedule event not applied: \
                 its trigger never matched: no 'promis' message was seen"
            ),
            "{text}"
        );
        assert!(
            lines[2].ends_with("; e.g. event 2 (kill n2 on the 1th promis)"),
            "{text}"
        );
        assert_eq!(lines[3], "  - the recovery window is short");
        assert_eq!(lines.len(), 4, "{text}");
    }

    #[test]
    fn one_line_summaries_note_warnings() {
        let w = collapse(vec![Warning::fault("x", None), Warning::other("y")]);
        assert_eq!(
            warnings_note(&json!({ "warnings": w })),
            "; 2 warnings (a requested fault never took effect)"
        );
        assert_eq!(warnings_note(&json!({"warnings": []})), "");
    }

    #[test]
    fn no_warnings_no_lines_and_many_are_cut() {
        assert_eq!(
            verdict_line(VerdictKind::Invalid, "x", &[]),
            "verdict   INVALID: x\n"
        );
        let many: Vec<Warning> = (0..9).map(|i| Warning::other(format!("w{i}"))).collect();
        let text = verdict_line(VerdictKind::Valid, "ok", &many);
        assert!(text.contains("warnings  9\n"), "{text}");
        assert!(
            text.ends_with("  ... and 4 more in verdict.json\n"),
            "{text}"
        );
    }
}
