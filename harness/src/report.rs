//! `report.html`: one self-contained page per run directory, written at the end of every
//! run and by `squall report RUN_DIR`.
//!
//! The page reads only the files of the run directory: `run.json`, `verdict.json`,
//! `metrics.json`, `history.jsonl`, `reports.jsonl`, and the messages — `messages.jsonl`
//! (the router's log, free-running) or `trace.bin` (lockstep). It holds, in order:
//!
//! 1. the header: run id, workload, algorithm and bugs, nodes, seed, mode, the verdict
//!    in colour, the warnings with their counts, and each checker's explanation
//!    ([`summary`]; a linearizability failure's window is drawn by [`linchart`]);
//! 2. a timeline of client ops, one lane per process, with the fault spans as a labelled
//!    strip and as shading, and the conflicting decisions marked ([`timeline`]);
//! 3. for a wrong global snapshot (workload `bank`), each node's recorded state, the
//!    recorded channels, the total against the bank's and the transfers that crossed
//!    the cut ([`snapshot`]);
//! 4. a message sequence diagram of the violation's instance and window (a wrong
//!    snapshot's markers and crossing transfers), or for a valid run of its busiest
//!    instance ([`sequence`]);
//! 5. latency against invoke time with the same shading, and a percentile table;
//! 6. messages per op by type, rounds to decision, fault counters and events
//!    ([`tables`]).
//!
//! Everything is inline — SVG drawn by hand, CSS, tooltips as SVG `<title>` — and
//! every string from the run is escaped; nothing is fetched. For big runs the page is
//! bounded: at most [`timeline::LANES_MAX`] process lanes and [`timeline::BARS_MAX`] op
//! bars (every failed or indefinite op is kept, `ok` ops are thinned evenly), at most
//! [`timeline::POINTS_MAX`] latency points (the same way), at most
//! [`sequence::ARROWS_MAX`] arrows, and at most [`tables::EVENTS_MAX`] fault events.
//! The page says what it left out.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;
use workloads::history::Op;
use workloads::History;

use crate::results::{read_json, read_jsonl};
use crate::UsageError;

mod html;
mod linchart;
mod sequence;
mod snapshot;
mod summary;
mod svg;
mod tables;
mod timeline;

/// The file name of the report in a run directory.
pub const FILE: &str = "report.html";

/// `squall report` options.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The run directory (`results/<run-id>` or `results/latest`).
    pub dir: PathBuf,
}

/// `squall report RUN_DIR`: writes the report again and prints its path.
pub fn report_cmd(args: &ReportArgs) -> anyhow::Result<u8> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(UsageError(format!("{} is not a directory", dir.display())).into());
    }
    for needed in ["run.json", "verdict.json"] {
        if !dir.join(needed).is_file() {
            return Err(UsageError(format!(
                "{} is not a run directory: it has no {needed}",
                dir.display()
            ))
            .into());
        }
    }
    let path = write_report(dir)?;
    println!("{}", path.display());
    Ok(crate::exit::VALID)
}

/// Writes `report.html` at the end of a run; a failure is a warning and changes nothing
/// else about the run.
pub fn write_or_warn(dir: &Path) {
    if let Err(e) = write_report(dir) {
        tracing::warn!(error = %format!("{e:#}"), "could not write report.html");
        eprintln!("squall: warning: could not write report.html: {e:#}");
    }
}

/// Reads the run directory `dir` and writes `dir/report.html`; returns its path.
pub fn write_report(dir: &Path) -> anyhow::Result<PathBuf> {
    let run = RunData::load(dir)?;
    let page = render(&run);
    let path = dir.join(FILE);
    crate::results::write_text(&path, &page)?;
    Ok(path)
}

/// The elements of `v` when it is a JSON array; none otherwise.
pub(crate) fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// A linearizability failure's window in a checker's evidence: the `window` of its
/// `explanation` (lincheck's) or its own `window` when that lists ops, else the evidence
/// itself when it lists ops for no single instance. The summary and the sequence
/// diagram both ask this one question.
pub(crate) fn lin_window_of(ev: &Value) -> Option<&Value> {
    if ev["explanation"]["window"]["ops"].is_array() {
        Some(&ev["explanation"]["window"])
    } else if ev["window"]["ops"].is_array() {
        Some(&ev["window"])
    } else if ev["ops"].is_array() && ev["key"].is_null() {
        Some(ev)
    } else {
        None
    }
}

/// A fault span as the report draws it (ns since the run's start; `end: None` when
/// it was still on at the end, drawn to the end).
pub(crate) type Span = workloads::verdict::FaultSpan;

/// What the report reads from a run directory.
pub(crate) struct RunData {
    pub dir: PathBuf,
    pub run: Value,
    pub verdict: Value,
    pub metrics: Value,
    pub ops: Vec<Op>,
    /// `reports.jsonl` lines: `{"time", "node", "report": {"type", ...}}`.
    pub reports: Vec<Value>,
    pub spans: Vec<Span>,
    pub nodes: Vec<String>,
    /// The last time anything happened (ns since the start).
    pub end_ns: u64,
    pub lockstep: bool,
}

impl RunData {
    fn load(dir: &Path) -> anyhow::Result<RunData> {
        let run: Value = read_json(&dir.join("run.json"))?;
        let verdict: Value = read_json(&dir.join("verdict.json"))?;
        let metrics: Value = read_json(&dir.join("metrics.json")).unwrap_or(Value::Null);
        let ops = match History::load(&dir.join("history.jsonl")) {
            Ok(h) => h.ops(),
            Err(_) => Vec::new(),
        };
        let reports: Vec<Value> = read_jsonl(&dir.join("reports.jsonl")).unwrap_or_default();
        let spans: Vec<Span> =
            serde_json::from_value(metrics["faults"]["spans"].clone()).unwrap_or_default();
        let n = run["nodes"].as_u64().unwrap_or(0);
        let base = run["node_id_base"].as_u64().unwrap_or(1);
        let nodes = crate::config::node_ids(base as usize, n as usize);
        let mut end_ns = 0u64;
        for op in &ops {
            end_ns = end_ns.max(op.complete_time.unwrap_or(op.invoke_time));
        }
        for sp in &spans {
            end_ns = end_ns.max(sp.end.unwrap_or(sp.start));
        }
        for r in &reports {
            end_ns = end_ns.max(r["time"].as_u64().unwrap_or(0));
        }
        let lockstep = run["mode"] == "lockstep" || verdict["mode"] == "lockstep";
        Ok(RunData {
            dir: dir.to_path_buf(),
            run,
            verdict,
            metrics,
            ops,
            reports,
            spans,
            nodes,
            end_ns: end_ns.max(1_000_000),
            lockstep,
        })
    }

    /// The run id (from the verdict, else the directory's name).
    pub fn run_id(&self) -> String {
        self.verdict["run_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                self.dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            })
    }
}

/// The whole page.
fn render(run: &RunData) -> String {
    let mut s = String::with_capacity(256 * 1024);
    let title = format!("squall {}", run.run_id());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{}</style></head><body>\n",
        html::esc(&title),
        html::CSS
    );
    let window = sequence::choose_window(run);
    summary::header(&mut s, run);
    timeline::ops_timeline(&mut s, run, &window);
    snapshot::section(&mut s, run);
    sequence::section(&mut s, run, &window);
    timeline::latency(&mut s, run);
    tables::section(&mut s, run);
    let _ = write!(
        s,
        "<p class=\"note\">Written by squall {} from the files in this directory; \
         regenerate with <code>squall report {}</code>.</p>\n</body></html>\n",
        html::esc(run.run["version"].as_str().unwrap_or("")),
        html::esc(
            &std::fs::canonicalize(&run.dir)
                .unwrap_or_else(|_| run.dir.clone())
                .display()
                .to_string()
        )
    );
    s
}
