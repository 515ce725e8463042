//! Rounds to decision, for metrics: what proposers say it took, and what acceptors say
//! happened.
//!
//! A proposer's `rounds` counts the ballots it started before it learned the decision.
//! That is its own view; the ground truth comes from the acceptors' `accepted` reports: a
//! value is chosen once a majority of acceptors has accepted it in one ballot (Lamport,
//! "Paxos Made Simple" §2.2), whatever any proposer believed at the time. Reporting both
//! side by side shows a proposer that miscounts, or one that kept going after its value
//! was already chosen.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::Ballot;
use proto::Report;
use serde::Serialize;
use serde_json::{json, Value};

use crate::history::Outcome;
use crate::verdict::{CheckInput, TimedReport};

/// Rounds statistics over the `ok` propose replies that carry `rounds`:
/// `{"count", "mean", "p50", "p99", "max", "winners": {same fields}}`.
///
/// The top-level fields cover every reply; `winners` has one sample per instance, the
/// rounds reported by the proposer whose own value was decided (reply `value` equal to
/// the proposed one): rounds-to-decision under contention. Percentiles are nearest-rank;
/// with no sample, every field but `count` is null.
pub fn rounds_summary(input: &CheckInput) -> Value {
    let mut all = Vec::new();
    let mut winners: BTreeMap<u64, u64> = BTreeMap::new();
    for op in input.history.ops() {
        if op.f != "propose" || op.outcome != Outcome::Ok {
            continue;
        }
        let Some(out) = &op.output else { continue };
        let Some(rounds) = out.get("rounds").and_then(Value::as_u64) else {
            continue;
        };
        all.push(rounds);
        let proposed = op.input.get("value").and_then(Value::as_u64);
        let won = proposed.is_some() && proposed == out.get("value").and_then(Value::as_u64);
        if let (true, Some(key)) = (won, op.input.get("key").and_then(Value::as_u64)) {
            winners.entry(key).or_insert(rounds);
        }
    }
    let mut summary = summarize(all);
    summary["winners"] = summarize(winners.into_values().collect());
    summary
}

/// count, mean, nearest-rank p50 and p99, max.
fn summarize(mut xs: Vec<u64>) -> Value {
    if xs.is_empty() {
        return json!({"count": 0, "mean": null, "p50": null, "p99": null, "max": null});
    }
    xs.sort_unstable();
    let n = xs.len();
    let rank = |pct: usize| xs[(pct * n).div_ceil(100).max(1) - 1];
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    json!({"count": n, "mean": mean, "p50": rank(50), "p99": rank(99), "max": xs[n - 1]})
}

/// What the acceptors' reports say about one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroundTruth {
    /// The round of the ballot in which a value was first accepted by a majority.
    pub chosen_round: Option<u64>,
    /// The value so chosen.
    pub chosen_value: Option<u64>,
    /// The whole ballot, whose `node` is the proposer that won.
    pub chosen_ballot: Option<Ballot>,
    /// When the acceptance completing that majority happened (ns): the node's stamp of
    /// its report, else the report's arrival.
    pub chosen_time: Option<u64>,
    /// Distinct ballots started for the instance (`ballot_started` reports).
    pub ballots_started: u64,
    /// The `rounds` in the winning proposer's `decided` report, for comparison.
    pub winner_rounds: Option<u32>,
}

/// Ground truth per instance from `accepted`, `ballot_started` and `decided` reports of a
/// cluster of `n_nodes` acceptors. "First" is in the order the reports were made
/// ([`TimedReport::at`]: the nodes' stamps, else arrival); an acceptor that
/// reports the same acceptance twice counts once. Instances with reports but no majority
/// have `chosen_* = None`.
pub fn ground_truth_rounds(reports: &[TimedReport], n_nodes: usize) -> BTreeMap<u64, GroundTruth> {
    assert!(n_nodes > 0, "a cluster has at least one node");
    let majority = n_nodes / 2 + 1;
    let mut order: Vec<&TimedReport> = reports.iter().collect();
    order.sort_by_key(|r| r.at());

    let mut truth: BTreeMap<u64, GroundTruth> = BTreeMap::new();
    let mut acceptors: BTreeMap<(u64, &Ballot, u64), BTreeSet<&str>> = BTreeMap::new();
    let mut started: BTreeMap<u64, BTreeSet<&Ballot>> = BTreeMap::new();
    for r in &order {
        match &r.report {
            Report::Accepted { key, ballot, value } => {
                let t = truth.entry(*key).or_default();
                let who = acceptors.entry((*key, ballot, *value)).or_default();
                who.insert(r.node.as_str());
                if who.len() >= majority && t.chosen_ballot.is_none() {
                    t.chosen_round = Some(ballot.round);
                    t.chosen_value = Some(*value);
                    t.chosen_ballot = Some(ballot.clone());
                    t.chosen_time = Some(r.at());
                }
            }
            Report::BallotStarted { key, ballot } => {
                truth.entry(*key).or_default();
                started.entry(*key).or_default().insert(ballot);
            }
            Report::Decided { key, .. } => {
                truth.entry(*key).or_default();
            }
            _ => {}
        }
    }
    for (key, t) in truth.iter_mut() {
        t.ballots_started = started.get(key).map_or(0, |b| b.len() as u64);
        let Some(winner) = t.chosen_ballot.as_ref().map(|b| b.node.as_str()) else {
            continue;
        };
        t.winner_rounds = order.iter().find_map(|r| match r.report {
            Report::Decided { key: k, rounds, .. } if k == *key && r.node == winner => rounds,
            _ => None,
        });
    }
    truth
}
