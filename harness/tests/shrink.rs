//! `squall shrink` end to end, in lockstep (exact and fast): a failing Paxos mutant run is
//! cut to at most 3 fault events, the shrunk run still violates the same property, and
//! `squall replay` reproduces it; a run that does not fail, or a directory that is not a
//! run, is refused.

mod common;

use std::path::Path;

use common::*;

const SMALL_QUORUM: &[&str] = &[
    "run",
    "--mode",
    "lockstep",
    "--workload",
    "write-once",
    "--algorithm",
    "paxos",
    "--bug",
    "small-quorum",
    "--nemesis",
    "partition,kill,drop,delay",
    "--time-limit",
    "5s",
    "--seed",
    "1",
];

fn fault_events(schedule: &serde_json::Value) -> usize {
    schedule["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            matches!(
                e["action"].as_str(),
                Some("partition" | "kill" | "crash" | "pause" | "clog" | "link_faults")
            )
        })
        .count()
}

#[test]
fn a_failing_lockstep_run_shrinks_to_a_few_faults_and_still_replays() {
    let (out, run) = run_ok(SMALL_QUORUM);
    assert_eq!(out.status.code(), Some(1), "seed 1 fails:\n{}", text(&out));
    let before = fault_events(&json(&run.join("schedule.json")));
    assert!(before > 3, "the drawn schedule has {before} fault events");

    let results = tempfile::tempdir().expect("tempdir");
    let r = results.path().to_str().expect("utf8");
    let run_s = run.to_str().expect("utf8");
    let out = squall(&["shrink", run_s, "--results-dir", r])
        .output()
        .expect("run squall shrink");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("violates agreement"), "{said}");
    assert!(
        said.contains("still fails, kept"),
        "each step is reported:\n{said}"
    );

    let shrunk = json(&results.path().join("shrunk-schedule.json"));
    let after = fault_events(&shrunk);
    assert!(after <= 3, "{before} -> {after} fault events:\n{said}");
    let summary = json(&results.path().join("shrink.json"));
    assert_eq!(summary["after"]["fault_events"], after);
    assert_eq!(summary["before"]["fault_events"], before);
    let cfg = json(&results.path().join("shrunk-run.json"));
    assert_eq!(cfg["time_limit_ms"], shrunk["time_limit_ms"]);

    // The final failing run: its schedule is the shrunk one, it is invalid, and it replays
    // to the same trace.
    let final_run = results.path().join("shrunk");
    let verdict = json(&final_run.join("verdict.json"));
    assert_eq!(verdict["verdict"], "invalid");
    assert_eq!(
        std::fs::read_to_string(final_run.join("schedule.json")).expect("schedule"),
        std::fs::read_to_string(results.path().join("shrunk-schedule.json")).expect("shrunk")
    );
    let line = said
        .lines()
        .find(|l| l.starts_with("replay: squall replay "))
        .unwrap_or_else(|| panic!("a replay command is printed:\n{said}"));
    let dir = line.trim_start_matches("replay: squall replay ");
    let replays = tempfile::tempdir().expect("tempdir");
    let out = squall(&[
        "replay",
        dir,
        "--times",
        "2",
        "--results-dir",
        replays.path().to_str().expect("utf8"),
    ])
    .output()
    .expect("run squall replay");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("reproduced 2 of 2"), "{said}");
}

#[test]
fn a_run_that_does_not_fail_is_not_shrunk_and_a_non_run_is_a_usage_error() {
    let (out, run) = run_ok(&[
        "run",
        "--mode",
        "lockstep",
        "--algorithm",
        "paxos",
        "--nemesis",
        "partition",
        "--time-limit",
        "1s",
        "--seed",
        "2",
    ]);
    assert_exit(&out, 0);
    let out = squall(&["shrink", run.to_str().expect("utf8")])
        .output()
        .expect("run squall shrink");
    assert_exit(&out, 1);
    assert!(text(&out).contains("nothing to shrink"), "{}", text(&out));
    assert!(!Path::new(&run.join("shrink")).exists());

    let empty = tempfile::tempdir().expect("tempdir");
    let out = squall(&["shrink", empty.path().to_str().expect("utf8")])
        .output()
        .expect("run squall shrink");
    assert_exit(&out, 254);
}
