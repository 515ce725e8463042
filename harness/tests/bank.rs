//! The snapshot workloads end to end: real `squall-node` processes on 127.0.0.1:0, short
//! runs. `bank`: the correct Chandy-Lamport is valid with its links FIFO (held, delayed
//! or paused, never reordered); the seed's FIFO assumption, and each mutant, is caught on
//! a lockstep seed, where the run is a function of the seed, and the report draws the
//! wrong snapshot. `deadlock`: the snapshot-based detector's answers hold against the
//! history, and the `local-view` mutant's phantom deadlock is caught.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// Runs `workload` for `flags` on three nodes; returns `verdict.json` and the run
/// directory.
fn run_workload(workload: &str, flags: &[&str]) -> (Value, PathBuf) {
    let mut args = vec![
        "run",
        "--workload",
        workload,
        "--nodes",
        "3",
        "--time-limit",
        "2s",
        "--recovery-time",
        "2s",
    ];
    args.extend_from_slice(flags);
    let (_, dir) = run_ok(&args);
    (json(&dir.join("verdict.json")), dir)
}

/// Runs the bank for `flags` on three nodes; returns `verdict.json`.
fn bank(flags: &[&str]) -> Value {
    run_workload("bank", flags).0
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
    let flags = ["--mode", "lockstep", "--nemesis", "reorder", "--seed", "6"];
    let (verdict, dir) = run_workload("bank", &flags);
    assert_loses_money(&verdict);
    // The report draws the wrong snapshot: its recorded state, its total against the
    // bank's, the transfers that crossed its cut, and its markers on the lifelines.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let start = html
        .find("<section id=\"snapshot-section\"")
        .expect("a snapshot section");
    let section = &html[start..start + html[start..].find("</section>").expect("ends")];
    let id = checker(&verdict, "snapshots")["evidence"]["cut"]
        .as_str()
        .expect("the wrong snapshot's id")
        .to_string();
    assert!(section.contains(&format!("Snapshot {id}")), "{section}");
    assert!(section.contains("the bank holds 300"), "{section}");
    for table in ["snapshot-nodes", "snapshot-channels", "snapshot-crossed"] {
        assert!(section.contains(table), "no {table} in {section}");
    }
    assert!(
        section.contains("Faults active while it was taken"),
        "{section}"
    );
    let sequence = &html[html
        .find("<section id=\"sequence-section\"")
        .expect("sequence")..];
    assert!(
        sequence.contains(&format!("snapshot {id}: its markers")),
        "the diagram is not about the snapshot"
    );
    assert!(sequence.contains("records "), "no recording point marked");
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

/// Runs the deadlock workload for `flags` on three nodes; returns the checker's verdict.
fn deadlock(flags: &[&str]) -> Value {
    let (verdict, _) = run_workload("deadlock", flags);
    checker(&verdict, "deadlock-detection").clone()
}

#[test]
fn wait_for_detects_deadlocks_that_stand_and_no_others() {
    let v = deadlock(&["--nemesis", "clog,delay,pause", "--seed", "1"]);
    assert_eq!(v["verdict"], "valid", "{v}");
    assert!(v["evidence"]["detections"].as_u64() > Some(0), "{v}");
}

#[test]
fn local_view_reports_a_phantom_deadlock_lockstep_seed_9() {
    let flags = ["--bug", "local-view", "--nemesis", "delay"];
    let v = deadlock(&[&flags[..], &["--mode", "lockstep", "--seed", "9"]].concat());
    assert_eq!(v["verdict"], "invalid", "{v}");
    assert_eq!(v["evidence"]["property"], "phantom-deadlock", "{v}");
}
