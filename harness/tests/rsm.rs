//! The replicated state machines end to end, CI-sized: `raft` and `multi-paxos` serve
//! the `lin-kv` workload on real processes under faults and stay linearizable, and a
//! mutant of each is caught within a few short seeds.
//! `scripts/teeth.sh` has the full rows (every mutant, 20 seeds).

mod common;

use common::*;
use harness::shrink::violated_properties;
use serde_json::Value;

/// How the run ended: `valid`, `unknown`, or the first violated property.
fn outcome(verdict: &Value) -> String {
    violated_properties(verdict)
        .into_iter()
        .next()
        .unwrap_or_else(|| verdict["verdict"].as_str().unwrap_or("?").to_string())
}

/// One short lin-kv run of `limit` (`3s`); returns its outcome and verdict.
fn lin_kv(flags: &[&str], limit: &str, seed: u64) -> (String, Value) {
    let seed_text = seed.to_string();
    let mut args = vec!["run", "--workload", "lin-kv", "--nodes", "5"];
    args.extend_from_slice(flags);
    args.extend([
        "--time-limit",
        limit,
        "--recovery-time",
        "2s",
        "--seed",
        &seed_text,
    ]);
    let (_, dir) = run_ok(&args);
    let verdict = json(&dir.join("verdict.json"));
    (outcome(&verdict), verdict)
}

fn assert_valid(flags: &[&str], seed: u64) {
    let (got, verdict) = lin_kv(flags, "3s", seed);
    assert_eq!(got, "valid", "{flags:?} seed {seed}: {verdict:#}");
    let checkers: Vec<&str> = verdict["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .filter_map(|c| c["checker"].as_str())
        .collect();
    assert!(checkers.contains(&"linearizability"), "{checkers:?}");
    assert!(checkers.contains(&"final-reads"), "{checkers:?}");
}

fn assert_caught(flags: &[&str], expected: &str, seeds: u64) {
    let mut seen = Vec::new();
    for seed in 1..=seeds {
        // Mutant hunts run the teeth rows' 5 s: partitions need time to depose a leader.
        let (got, _) = lin_kv(flags, "5s", seed);
        if got == expected {
            eprintln!("{flags:?}: {expected} at seed {seed}");
            return;
        }
        seen.push(format!("seed {seed}: {got}"));
    }
    panic!("{flags:?}: no {expected} within {seeds} seeds: {seen:?}");
}

#[test]
fn raft_lin_kv_is_valid_under_partitions_and_kills() {
    assert_valid(&["--algorithm", "raft", "--nemesis", "partition,kill"], 1);
}

#[test]
fn multi_paxos_lin_kv_is_valid_under_partitions_and_kills() {
    assert_valid(
        &["--algorithm", "multi-paxos", "--nemesis", "partition,kill"],
        1,
    );
}

#[test]
fn raft_stale_read_is_not_linearizable_under_partitions() {
    let flags = [
        "--algorithm",
        "raft",
        "--bug",
        "stale-read",
        "--nemesis",
        "partition",
    ];
    assert_caught(&flags, "linearizability", 5);
}

#[test]
fn multi_paxos_skip_phase1_is_not_linearizable_under_partitions() {
    let flags = [
        "--algorithm",
        "multi-paxos",
        "--bug",
        "skip-phase1",
        "--nemesis",
        "partition",
    ];
    assert_caught(&flags, "linearizability", 5);
}
