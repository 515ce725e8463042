//! The teeth matrix, CI-sized: each broken algorithm and Paxos mutant, on real processes
//! under the faults it needs, must fail the way its seed predicts within a few short
//! seeds, and correct Paxos must stay valid. `scripts/teeth.sh` is the full matrix.

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

/// Runs seeds 1..=`seeds` until one ends in `expected`; returns the outcomes seen.
fn hunt(flags: &[&str], expected: &str, seeds: u64) -> Result<u64, Vec<String>> {
    let mut seen = Vec::new();
    for seed in 1..=seeds {
        let seed_text = seed.to_string();
        let mut args = vec!["run", "--workload", "write-once"];
        if !flags.contains(&"--nodes") {
            args.extend(["--nodes", "5"]);
        }
        args.extend_from_slice(flags);
        args.extend(["--recovery-time", "2s", "--seed", &seed_text]);
        if !flags.contains(&"--schedule") && !flags.contains(&"--time-limit") {
            args.extend(["--time-limit", "3s"]);
        }
        let (_, dir) = run_ok(&args);
        let got = outcome(&json(&dir.join("verdict.json")));
        if got == expected {
            return Ok(seed);
        }
        seen.push(format!("seed {seed}: {got}"));
    }
    Err(seen)
}

fn assert_caught(name: &str, flags: &[&str], expected: &str, seeds: u64) {
    match hunt(flags, expected, seeds) {
        Ok(seed) => eprintln!("{name}: {expected} at seed {seed}"),
        Err(seen) => panic!("{name}: no {expected} within {seeds} seeds: {seen:?}"),
    }
}

#[test]
fn paxos_small_quorum_disagrees_under_partitions() {
    assert_caught("small-quorum", SMALL_QUORUM, "agreement", 5);
}

#[test]
fn paxos_forget_accepted_disagrees_when_decisions_arrive_late() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = plan_file(tmp.path(), "decided-late");
    let flags = [
        "--algorithm",
        "paxos",
        "--bug",
        "forget-accepted",
        "--contention",
        "3",
        "--schedule",
        &plan,
    ];
    assert_caught("forget-accepted", &flags, "agreement", 5);
}

#[test]
fn tiebreak_timeout_disagrees_when_votes_are_late() {
    let flags = [
        "--algorithm",
        "tiebreak-timeout",
        "--nemesis",
        "delay",
        "--delay",
        "200ms",
        "--delay-jitter",
        "400ms",
        "--contention",
        "3",
    ];
    assert_caught("tiebreak-timeout", &flags, "agreement", 5);
}

#[test]
fn floodset_disagrees_when_delays_exceed_the_round() {
    let flags = [
        "--algorithm",
        "floodset",
        "--nemesis",
        "delay",
        "--delay",
        "150ms",
        "--delay-jitter",
        "300ms",
        "--contention",
        "3",
    ];
    assert_caught("floodset", &flags, "agreement", 5);
}

#[test]
fn majority_vote_split_votes_never_terminate() {
    let flags = [
        "--algorithm",
        "majority-vote",
        "--nemesis",
        "delay",
        "--clients",
        "3",
        "--contention",
        "3",
    ];
    assert_caught("majority-vote", &flags, "termination", 5);
}

#[test]
fn coordinator_stalls_once_the_coordinator_crashes() {
    let flags = [
        "--algorithm",
        "coordinator",
        "--nemesis",
        "crash",
        "--nemesis-interval",
        "500ms",
    ];
    assert_caught("coordinator", &flags, "termination", 10);
}

#[test]
fn tiebreak_wait_all_stalls_once_a_voter_crashes() {
    let flags = [
        "--algorithm",
        "tiebreak-wait-all",
        "--nemesis",
        "crash,delay",
        "--nemesis-interval",
        "500ms",
        "--contention",
        "3",
    ];
    assert_caught("tiebreak-wait-all", &flags, "termination", 10);
}

/// `squall plan NAME` sized for a 3 s CI run (2 s recovery, 100 armed kill/restart
/// pairs), written into `dir`; returns its path.
fn plan_file(dir: &std::path::Path, name: &str) -> String {
    let opts = PlanOpts {
        time_limit_ms: 3_000,
        recovery_ms: 2_000,
        repeats: 100,
        ..PlanOpts::default()
    };
    let plan = plans::plan(name, &opts).expect("a known plan");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, plan).expect("write plan");
    path.to_str().expect("utf8").to_string()
}

/// Three-node lockstep Paxos under the bridge-promise-crash `plan`, plus `extra`.
fn bridge_lockstep<'a>(plan: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--algorithm",
        "paxos",
        "--nodes",
        "3",
        "--mode",
        "lockstep",
        "--schedule",
        plan,
    ];
    flags.extend_from_slice(extra);
    flags
}

/// Seed 003's split decision, made by a forgotten promise (the `skip-fsync` mutant): an
/// acceptor that promised ballot (1, n3) without syncing is killed, comes back without
/// the promise and accepts n1's lower ballot, so {n1, n2} and {n2, n3} decide different
/// values. Lockstep makes the catch exact: the same seeds fail every time.
#[test]
fn seed_003_skip_fsync_forgotten_promise_splits_the_decision() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = plan_file(tmp.path(), "bridge-promise-crash");
    let flags = bridge_lockstep(&plan, &["--bug", "skip-fsync"]);
    assert_caught("skip-fsync", &flags, "agreement", 5);
}

/// Runs `squall run FLAGS --seed S` for each seed; each must exit 0 (valid).
fn assert_valid_on(flags: &[&str], seeds: &[&str]) {
    for seed in seeds {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend(["--seed", seed]);
        let (out, dir) = run_ok(&args);
        let verdict = json(&dir.join("verdict.json"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "seed {seed}: {}",
            verdict["reason"]
        );
    }
}

/// The control for the test above: the same plan, which kills n2 right after promises,
/// leaves correct Paxos (promises synced before they leave) valid.
#[test]
fn paxos_with_synced_promises_survives_the_bridge_promise_crash_plan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = plan_file(tmp.path(), "bridge-promise-crash");
    let flags = bridge_lockstep(
        &plan,
        &["--workload", "write-once", "--recovery-time", "2s"],
    );
    assert_valid_on(&flags, &["1", "2", "3"]);
}

/// The `ack-before-sync` mutant: n2 sends its promise to n3 and is killed before it syncs
/// it (lockstep kills a node right after the output line that triggers the kill, and
/// the runtime sends what was recorded before a sync before syncing). It comes back
/// without the promise, so {n1, n2} and {n2, n3} decide different values.
#[test]
fn paxos_ack_before_sync_loses_a_sent_promise_to_a_mid_step_kill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = plan_file(tmp.path(), "bridge-promise-crash");
    let flags = bridge_lockstep(&plan, &["--bug", "ack-before-sync"]);
    assert_caught("ack-before-sync", &flags, "agreement", 5);
}

#[test]
fn paxos_no_promise_check_disagrees_under_delays() {
    let flags = [
        "--algorithm",
        "paxos",
        "--bug",
        "no-promise-check",
        "--nemesis",
        "delay",
        "--contention",
        "3",
    ];
    assert_caught("no-promise-check", &flags, "agreement", 5);
}

#[test]
fn paxos_ballot_no_node_id_disagrees_under_delays() {
    let flags = [
        "--algorithm",
        "paxos",
        "--bug",
        "ballot-no-node-id",
        "--nemesis",
        "delay",
        "--contention",
        "3",
    ];
    assert_caught("ballot-no-node-id", &flags, "agreement", 5);
}

/// Two accepted values from different ballots in one promise quorum (the
/// bridge-accept-lost plan arranges it): the mutant adopts the first to arrive.
/// `scripts/teeth.sh` (release build, 5 s runs, 5 s recovery) catches it; these shorter
/// debug-build runs did not within 10 seeds.
#[test]
#[ignore = "caught by scripts/teeth.sh; too slow to catch at CI size"]
fn paxos_first_accepted_value_disagrees_when_a_promise_quorum_holds_two_values() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = PlanOpts {
        time_limit_ms: 5_000,
        recovery_ms: 2_000,
        ..PlanOpts::default()
    };
    let text = plans::plan("bridge-accept-lost", &opts).expect("a known plan");
    let path = tmp.path().join("bridge-accept-lost.json");
    std::fs::write(&path, text).expect("write plan");
    let plan = path.to_str().expect("utf8").to_string();
    let flags = [
        "--algorithm",
        "paxos",
        "--bug",
        "first-accepted-value",
        "--nodes",
        "3",
        "--contention",
        "3",
        "--schedule",
        &plan,
    ];
    assert_caught("first-accepted-value", &flags, "agreement", 10);
}

/// Seed 002's failover story: re-electing on a timeout gives two coordinators under a
/// partition or a pause, and each decides.
#[test]
fn coordinator_failover_splits_the_brain() {
    let flags = [
        "--algorithm",
        "coordinator",
        "--bug",
        "failover",
        "--nemesis",
        "partition,pause",
        "--contention",
        "3",
        "--time-limit",
        "5s",
    ];
    assert_caught("coordinator failover", &flags, "agreement", 5);
}

/// The stable-reads checker's teeth: a node that answered a value and, after a kill and
/// restart (no amnesia), answers null.
#[test]
fn paxos_forget_learned_reads_null_after_a_restart() {
    let flags = [
        "--algorithm",
        "paxos",
        "--bug",
        "forget-learned",
        "--nemesis",
        "kill",
    ];
    assert_caught("forget-learned", &flags, "stable-reads", 5);
}

/// Crash-stop (SIGKILL for good, a minority): a decision whose proposer died before its
/// `decided` left is still learned, through a recovery ballot, so every instance
/// terminates on the live nodes.
#[test]
fn paxos_terminates_under_crash_stop() {
    assert_valid_on(
        &[
            "--algorithm",
            "paxos",
            "--nemesis",
            "crash",
            "--contention",
            "3",
            "--time-limit",
            "4s",
        ],
        &["1", "2"],
    );
}

#[test]
fn paxos_stays_valid_under_every_fault() {
    assert_valid_on(&["--algorithm", "paxos", "--time-limit", "4s"], &["1", "2"]);
}
