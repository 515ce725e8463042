//! The replicated state machines end to end, CI-sized: `raft` and `multi-paxos` serve
//! the `lin-kv` workload on real processes under faults and stay linearizable, and a
//! mutant of each is caught: raft's `ack-before-sync` in lockstep on the seed the teeth
//! row found (deterministic), multi-paxos's `skip-phase1` within a few short seeds.
//! `scripts/teeth.sh` has the full rows (every mutant, 20 seeds).

mod common;

use common::*;
use harness::nemesis::plans::{self, PlanOpts};
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
    args.extend(["--time-limit", limit, "--seed", &seed_text]);
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
        // Mutant hunts run the teeth rows as they are (5 s): partitions need time to
        // depose a leader.
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

/// Three-node lockstep raft under bridge-promise-crash aimed at `append_ok`: n1 and n3
/// cut apart, n2 killed and restarted as it acknowledges every other append to n3.
/// Lockstep is deterministic, so the seed the teeth row found is the seed here.
fn raft_ack_crash(bugs: &[&str], seed: u64) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = PlanOpts {
        time_limit_ms: 5_000,
        msg_types: [("promise".to_string(), "append_ok".to_string())].into(),
        ..PlanOpts::default()
    };
    let plan = plans::plan("bridge-promise-crash", &opts).expect("a known plan");
    let path = tmp.path().join("plan.json");
    std::fs::write(&path, plan).expect("write plan");
    let seed_text = seed.to_string();
    let mut args = vec![
        "run",
        "--workload",
        "lin-kv",
        "--algorithm",
        "raft",
        "--nodes",
        "3",
    ];
    for b in bugs {
        args.extend(["--bug", b]);
    }
    let path = path.to_str().expect("utf8").to_string();
    args.extend([
        "--mode",
        "lockstep",
        "--schedule",
        &path,
        "--seed",
        &seed_text,
    ]);
    let (_, dir) = run_ok(&args);
    outcome(&json(&dir.join("verdict.json")))
}

#[test]
fn raft_ack_before_sync_loses_a_committed_write_to_a_mid_step_kill() {
    assert_eq!(raft_ack_crash(&["ack-before-sync"], 5), "linearizability");
}

#[test]
fn raft_acks_after_sync_survive_the_same_kills() {
    assert_eq!(raft_ack_crash(&[], 5), "valid");
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
