//! The `bank` workload end to end: real `squall-node` processes running Chandy-Lamport on
//! 127.0.0.1:0, short runs. The correct algorithm is valid with its links FIFO (held,
//! delayed or paused, never reordered); the seed's FIFO assumption, and each mutant, is
//! caught on a lockstep seed, where the run is a function of the seed.

mod common;

use common::*;
use serde_json::Value;

/// Runs the bank for `flags` on three nodes; returns `verdict.json`.
fn bank(flags: &[&str]) -> Value {
    let mut args = vec![
        "run",
        "--workload",
        "bank",
        "--nodes",
        "3",
        "--time-limit",
        "2s",
        "--recovery-time",
        "2s",
    ];
    args.extend_from_slice(flags);
    let (_, dir) = run_ok(&args);
    json(&dir.join("verdict.json"))
}

fn checker<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["checkers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["checker"] == name))
        .unwrap_or_else(|| panic!("no {name} checker in {verdict}"))
}

/// The run's snapshots lost or made money: the `snapshot-total` property failed.
fn assert_loses_money(verdict: &Value) {
    let snapshots = checker(verdict, "snapshots");
    assert_eq!(snapshots["verdict"], "invalid", "{verdict}");
    let properties = snapshots["evidence"]["properties"].to_string();
    assert!(properties.contains("snapshot-total"), "{properties}");
    assert!(properties.contains("consistent-cut"), "{properties}");
}

#[test]
fn bank_with_fifo_links_takes_consistent_snapshots_that_hold_the_total() {
    let verdict = bank(&["--nemesis", "clog,delay,pause", "--seed", "1"]);
    assert_eq!(verdict["verdict"], "valid", "{verdict}");
    let snapshots = checker(&verdict, "snapshots");
    assert!(
        snapshots["evidence"]["complete"].as_u64() > Some(0),
        "{snapshots}"
    );
    assert_eq!(checker(&verdict, "final-total")["verdict"], "valid");
    assert_eq!(
        checker(&verdict, "termination-detection")["verdict"],
        "valid"
    );
}

#[test]
fn chandy_lamport_loses_money_when_links_reorder_lockstep_seed_6() {
    let verdict = bank(&["--mode", "lockstep", "--nemesis", "reorder", "--seed", "6"]);
    assert_loses_money(&verdict);
}

#[test]
fn no_channel_state_loses_the_money_in_transit_lockstep_seed_1() {
    let flags = ["--bug", "no-channel-state", "--nemesis", "delay"];
    let verdict = bank(&[&flags[..], &["--mode", "lockstep", "--seed", "1"]].concat());
    assert_loses_money(&verdict);
}

#[test]
fn late_record_counts_a_transfer_twice_lockstep_seed_1() {
    let flags = ["--bug", "late-record", "--nemesis", "none"];
    let verdict = bank(&[&flags[..], &["--mode", "lockstep", "--seed", "1"]].concat());
    assert_loses_money(&verdict);
}

#[test]
fn snapshots_lost_with_a_killed_node_are_counted_never_valid() {
    // Every node killed and restarted loses its account and its snapshots' state:
    // snapshots it held open never complete, and the verdict must not be a bare valid.
    let verdict = bank(&["--nemesis", "kill", "--seed", "2"]);
    assert_ne!(verdict["verdict"], "valid", "{verdict}");
    let snapshots = checker(&verdict, "snapshots");
    let incomplete = snapshots["evidence"]["incomplete"].as_u64().unwrap_or(0);
    assert!(
        incomplete > 0 || snapshots["verdict"] == "invalid",
        "{snapshots}"
    );
}
