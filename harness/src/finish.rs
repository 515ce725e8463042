//! The end of a run, the same in both modes: check the history, settle the verdict and
//! write `verdict.json`; then `metrics.json`, `report.html`, `latest`, and the lines
//! printed for the run.
//!
//! What differs between a free-running and a lockstep run stays with each: the evidence
//! it gathered, the wording of a startup failure, the fields only its `verdict.json` and
//! `metrics.json` have, and its own summary line.
//!
//! Warnings are collapsed here ([`collapse`]: one per distinct cause, with a count) for
//! `verdict.json` and printed under the verdict line ([`verdict_line`]), so a run whose
//! requested fault never took effect does not print a bare `VALID`.

use std::path::Path;

use serde_json::{json, Value};
use workloads::history::Op;
use workloads::verdict::{FaultSpan, TimedReport};
use workloads::{CheckInput, Checker, History, VerdictKind};

use crate::nemesis::{collapse, Warning};
use crate::results;
use crate::run::{judge, settle, RunConfig, RunIssues};

/// Warnings printed under the verdict line; `verdict.json` has them all.
pub const WARNINGS_PRINTED_MAX: usize = 5;

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
    /// Warnings for `verdict.json` (collapsed before they are written).
    pub warnings: Vec<Warning>,
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
    /// The warnings, one per distinct cause, as `verdict.json` has them.
    pub warnings: Vec<Warning>,
}

impl Ending<'_> {
    /// Reads the history back, runs every checker, settles the verdict and writes
    /// `verdict.json`.
    pub fn judge(self) -> anyhow::Result<Judged> {
        let history = History::load(&self.dir.join("history.jsonl"))
            .map_err(|e| anyhow::anyhow!("read back history: {e}"))?;
        let ops = history.ops();
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
        let (verdicts, overall, reason) = judge(self.checkers, &input);
        let faulty = self.issues.faulty;
        let interrupted = self.issues.interrupted;
        let (verdict, reason) = settle(overall, reason, self.issues);
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
        Ok(Judged {
            verdict,
            reason,
            ops,
            warnings,
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
