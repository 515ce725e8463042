//! What one cell's run directory says: ground-truth rounds from the acceptors' reports,
//! decision latency from the history and the nodes' stamps, messages per decision from
//! `metrics.json`.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::Value;
use workloads::consensus::ground_truth_rounds;
use workloads::verdict::TimedReport;

use crate::results;

/// What one cell's run directory says, before it is put in a [`Cell`](super::Cell).
#[derive(Debug, Default)]
pub struct RunStats {
    /// Ground-truth rounds of each decided instance.
    pub rounds: Vec<u64>,
    /// The winner's own count, where it reported one.
    pub winner_rounds: Vec<u64>,
    /// Decisions where the two differ.
    pub differ: u64,
    /// Instances proposed to without a chosen value.
    pub undecided: u64,
    /// Ballots started, summed over decided instances.
    pub ballots: u64,
    /// First invoke → chosen (ns).
    pub chosen_ns: Vec<u64>,
    /// First invoke → first proposer learned (ns).
    pub learned_ns: Vec<u64>,
    /// First invoke → first ballot started (ns).
    pub ballot_ns: Vec<u64>,
    /// Node-to-node messages by type, in total.
    pub msgs: BTreeMap<String, u64>,
    /// Client ops.
    pub ops: u64,
    /// Ops issued late.
    pub late_ops: u64,
}

/// Reads `reports.jsonl`, `history.jsonl` and `metrics.json` of a write-once paxos run.
pub fn analyze_run(dir: &Path, n_nodes: usize) -> anyhow::Result<RunStats> {
    let reports: Vec<TimedReport> = results::read_jsonl(&dir.join("reports.jsonl"))?;
    let history: Vec<Value> = results::read_jsonl(&dir.join("history.jsonl"))?;
    let truth = ground_truth_rounds(&reports, n_nodes);

    let key_of = |v: &Value| {
        v.get("value")
            .and_then(|x| x.get("key"))
            .and_then(Value::as_u64)
    };
    let mut first_invoke: BTreeMap<u64, u64> = BTreeMap::new();
    let mut first_learned: BTreeMap<u64, u64> = BTreeMap::new();
    let mut ops = 0u64;
    for ev in &history {
        let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
        if ty == "invoke" {
            ops += 1;
        }
        if ev.get("f").and_then(Value::as_str) != Some("propose") {
            continue;
        }
        let (Some(key), Some(time)) = (key_of(ev), ev.get("time").and_then(Value::as_u64)) else {
            continue;
        };
        let slot = match ty {
            "invoke" => &mut first_invoke,
            "ok" => &mut first_learned,
            _ => continue,
        };
        let t = slot.entry(key).or_insert(time);
        *t = (*t).min(time);
    }
    let mut first_ballot: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &reports {
        let (slot, key) = match &r.report {
            proto::Report::Decided { key, .. } => (&mut first_learned, key),
            proto::Report::BallotStarted { key, .. } => (&mut first_ballot, key),
            _ => continue,
        };
        let t = slot.entry(*key).or_insert(r.at());
        *t = (*t).min(r.at());
    }

    let mut s = RunStats {
        ops,
        ..RunStats::default()
    };
    for (key, &start) in &first_invoke {
        let Some(t) = truth.get(key) else {
            s.undecided += 1;
            continue;
        };
        let (Some(round), Some(chosen)) = (t.chosen_round, t.chosen_time) else {
            s.undecided += 1;
            continue;
        };
        s.rounds.push(round);
        s.ballots += t.ballots_started;
        if let Some(w) = t.winner_rounds {
            s.winner_rounds.push(w as u64);
            if w as u64 != round {
                s.differ += 1;
            }
        }
        s.chosen_ns.push(chosen.saturating_sub(start));
        if let Some(&l) = first_learned.get(key) {
            s.learned_ns.push(l.saturating_sub(start));
        }
        if let Some(&b) = first_ballot.get(key) {
            s.ballot_ns.push(b.saturating_sub(start));
        }
    }

    let metrics: Value = results::read_json(&dir.join("metrics.json"))?;
    let nodes: Vec<String> = (1..=n_nodes).map(|i| format!("n{i}")).collect();
    if let Some(links) = metrics.get("links").and_then(Value::as_object) {
        for (link, stats) in links {
            let Some((a, b)) = link.split_once("->") else {
                continue;
            };
            if !nodes.iter().any(|n| n == a) || !nodes.iter().any(|n| n == b) {
                continue;
            }
            if let Some(by) = stats.get("by_type").and_then(Value::as_object) {
                for (ty, n) in by {
                    *s.msgs.entry(ty.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
    }
    s.late_ops = metrics.get("late_ops").and_then(Value::as_u64).unwrap_or(0);
    Ok(s)
}

pub(super) fn hist_us(ns: &[u64]) -> (f64, f64) {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds are valid");
    for &x in ns {
        h.saturating_record((x / 1_000).max(1));
    }
    if h.is_empty() {
        return (0.0, 0.0);
    }
    (
        h.value_at_quantile(0.5) as f64,
        h.value_at_quantile(0.99) as f64,
    )
}
