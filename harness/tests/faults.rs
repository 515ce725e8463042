//! End-to-end tests of the faults: schedules drawn from seeds or written by hand, carried
//! out on real node processes, confirmed in `metrics.json`, and leaving nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// `squall run` of the echo workload on `nodes` nodes under the plan `plan`.
fn echo_plan<'a>(nodes: &'a str, plan: &'a str) -> [&'a str; 7] {
    [
        "run",
        "--workload",
        "echo",
        "--nodes",
        nodes,
        "--schedule",
        plan,
    ]
}

/// Starts a 3-node echo run of the plan `plan` into `results`, output discarded.
fn spawn_echo_plan(plan: &str, results: &Path) -> std::process::Child {
    spawn_in(&echo_plan("3", plan), results, Stdio::null)
}

/// A hand-written plan for `n1`..`n3` saved under `dir`: how long clients run, the quiet
/// window (the plan's default when `None`) and the events, each a JSON object.
fn three_node_plan(
    dir: &Path,
    time_limit_ms: u64,
    recovery_ms: Option<u64>,
    events: &[String],
) -> String {
    let recovery = recovery_ms
        .map(|ms| format!(r#""recovery_ms": {ms}, "#))
        .unwrap_or_default();
    let events = events.join(", ");
    schedule_file(
        dir,
        &format!(
            r#"{{"nodes": ["n1", "n2", "n3"], "time_limit_ms": {time_limit_ms}, {recovery}"events": [{events}]}}"#
        ),
    )
}

/// A plan event `id` that does `action` to `node` at `at_ms`.
fn timed(id: u32, at_ms: u64, action: &str, node: &str) -> String {
    format!(r#"{{ "id": {id}, "at_ms": {at_ms}, "action": "{action}", "node": "{node}" }}"#)
}

fn total(metrics: &Value, field: &str) -> u64 {
    metrics["faults"]["total"][field].as_u64().unwrap_or(0)
}

#[test]
fn same_seed_gives_a_byte_identical_schedule() {
    let plan = |seed: &str| {
        let args = [
            "run",
            "--workload",
            "echo",
            "--nodes",
            "3",
            "--nemesis",
            "all",
            "--time-limit",
            "3s",
            "--nemesis-interval",
            "300ms",
            "--seed",
            seed,
        ];
        let dir = run_expect(&args, 0);
        std::fs::read(dir.join("schedule.json")).expect("schedule.json")
    };
    let (a, b, c) = (plan("42"), plan("42"), plan("43"));
    assert_eq!(a, b, "seed 42 twice gave different schedules");
    assert_ne!(a, c, "seeds 42 and 43 gave the same schedule");
    let parsed: Value = serde_json::from_slice(&a).expect("schedule is json");
    assert!(parsed["events"].as_array().is_some_and(|e| e.len() > 1));
}

#[test]
fn nemesis_all_makes_every_fault_kind_bite() {
    let flags = [
        "--nodes",
        "5",
        "--nemesis",
        "all",
        "--time-limit",
        "10s",
        "--seed",
        "1",
    ];
    let args = [&["run"][..], WRITE_ONCE_PAXOS, &flags].concat();
    // Paxos must stay valid.
    let dir = run_expect(&args, 0);
    let metrics = metrics_of(&dir);
    for field in [
        "dropped",
        "cut",
        "delayed",
        "duplicated",
        "reordered",
        "held",
    ] {
        assert!(
            total(&metrics, field) > 0,
            "no message was {field}: {}",
            metrics["faults"]["total"]
        );
    }
    let process = &metrics["faults"]["process_total"];
    for field in ["kills", "restarts", "pauses", "resumes"] {
        assert!(
            process[field].as_u64().unwrap_or(0) > 0,
            "no {field}: {process}"
        );
    }
    let verdict = verdict_of(&dir);
    assert_eq!(verdict["warnings"], Value::Array(Vec::new()));
    let events = metrics["faults"]["events"]["events"]
        .as_array()
        .expect("events");
    assert!(
        events.iter().all(|e| e["applied"] == true),
        "an event was not applied"
    );
    assert!(!verdict["checkers"][0]["evidence"].is_null());
}

#[test]
fn hand_written_isolation_is_followed_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = schedule_file(
        tmp.path(),
        r#"{
  "seed": 5,
  "nodes": ["n1", "n2", "n3"],
  "time_limit_ms": 4000,
  "recovery_ms": 2000,
  "events": [
    { "id": 1, "at_ms": 1000, "action": "partition", "shape": "isolate n1",
      "cut": [["n1", "n2"], ["n1", "n3"], ["n2", "n1"], ["n3", "n1"]] },
    { "id": 2, "at_ms": 3000, "action": "heal_partition" }
  ]
}"#,
    );
    let flags = [
        "--nodes",
        "3",
        "--contention",
        "2",
        "--schedule",
        &plan,
        "--seed",
        "5",
    ];
    let args = [&["run"][..], WRITE_ONCE_PAXOS, &flags].concat();
    let metrics = metrics_of(&run_expect(&args, 0));
    let faults = &metrics["faults"];
    // Cuts happened, and only on n1's links.
    let mut cut_links = BTreeSet::new();
    for (link, c) in faults["links"].as_object().expect("links") {
        if c["cut"].as_u64().unwrap_or(0) > 0 {
            cut_links.insert(link.clone());
        }
    }
    assert!(!cut_links.is_empty(), "nothing was cut");
    assert!(
        cut_links.iter().all(|l| l.contains("n1")),
        "links without n1 were cut: {cut_links:?}"
    );
    // Every cut happened while the partition was on.
    let events = faults["events"]["events"].as_array().expect("events");
    let partition = &events[0];
    let heal = &events[1];
    let at = |e: &Value| e["applied_at_ms"].as_u64().expect("applied");
    // Neither fires early; how late is the machine's business, not the plan's, and the
    // cuts below are counted only while the partition was on.
    assert!(at(partition) >= 1000, "partition at {}", at(partition));
    assert!(at(heal) >= 3000, "heal at {}", at(heal));
    let during = partition["evidence"]
        .as_array()
        .and_then(|e| e.iter().find_map(|x| x.get("while_active")))
        .expect("while_active evidence");
    assert_eq!(
        during["cut"], faults["total"]["cut"],
        "cuts outside the partition"
    );
    assert_eq!(partition["evidence"][0]["links_cut"], 4);
    // The checker is told about the fault.
    let span = &faults["spans"][0];
    assert_eq!(span["kind"], "partition");
    assert_eq!(span["what"], "partition: isolate n1");
}

/// n1 killed and restarted twice in a 4 s run of three nodes.
fn kill_twice() -> String {
    kill_twice_plan(&["n1", "n2", "n3"], 4000, [1000, 1500, 2500, 3000])
}

#[test]
fn killed_node_finds_what_it_synced_and_not_what_it_did_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = schedule_file(tmp.path(), &kill_twice());
    let base = [
        "run",
        "--workload",
        "durability",
        "--nodes",
        "3",
        "--schedule",
        &plan,
    ];
    let dir = run_expect(&base, 0);
    verdict_saying(&dir, "up to 2 restarts");
    let metrics = metrics_of(&dir);
    assert_eq!(metrics["faults"]["processes"]["n1"]["kills"], 2);
    assert_eq!(metrics["faults"]["processes"]["n1"]["restarts"], 2);
    // The observed exit statuses are recorded: SIGKILL is signal 9.
    let exits = metrics["processes"]["n1"]["exits"]
        .as_array()
        .expect("exits");
    assert!(
        exits.iter().filter(|e| e["signal"] == 9).count() >= 2,
        "{exits:?}"
    );

    // A node that never syncs loses its records: the checker must catch it.
    let mut mutant: Vec<&str> = base.to_vec();
    mutant.extend(["--bug", "skip-sync"]);
    let verdict = verdict_of(&run_expect(&mutant, 1));
    assert!(reason(&verdict).contains("n1 found 0 synced records"));
}

/// Pids of squall's children seen while it runs (restarts make new ones).
fn watch_children(child: &std::process::Child, for_ms: u64) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_millis(for_ms);
    while Instant::now() < deadline {
        seen.extend(children_of(child.id()));
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

#[test]
fn no_process_survives_kills_pauses_and_a_teardown_while_paused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (kill, restart) = (timed(1, 200, "kill", "n1"), timed(2, 400, "restart", "n1"));
    let events = [kill, restart, timed(3, 600, "pause", "n2")];
    let plan = three_node_plan(tmp.path(), 1500, Some(500), &events);
    // A run that ends normally: n2 is resumed by the final heal, then torn down.
    let results = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_echo_plan(&plan, results.path());
    let seen = watch_children(&child, 1_000);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(
        seen.len() >= 4,
        "expected 3 nodes and a restart, saw {seen:?}"
    );
    let survivors: Vec<u32> = seen.iter().copied().filter(|p| alive(*p)).collect();
    assert!(survivors.is_empty(), "{survivors:?} outlived the run");

    // A run interrupted while n2 is stopped: teardown must SIGCONT and still reap it.
    let long = three_node_plan(tmp.path(), 60_000, Some(500), &events);
    let results = tempfile::tempdir().expect("tempdir");
    let child = spawn_echo_plan(&long, results.path());
    let seen = watch_children(&child, 1_200);
    interrupt(&child);
    let out = child.wait_with_output().expect("wait");
    // Interrupted before its quiet window: unknown (termination never judged).
    assert_eq!(out.status.code(), Some(2));
    let survivors: Vec<u32> = seen.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "{survivors:?} outlived the interrupted run"
    );
    let metrics = json(&results.path().join("latest/metrics.json"));
    assert_eq!(metrics["faults"]["processes"]["n2"]["pauses"], 1);
}

#[test]
fn invalid_schedule_exits_254_naming_the_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let events = [timed(1, 100, "kill", "n1"), timed(7, 200, "pause", "n9")];
    let plan = three_node_plan(tmp.path(), 2000, None, &events);
    let out = squall(&echo_plan("3", &plan)).output().expect("run");
    assert_eq!(out.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("n9") && stderr.contains("id 7"), "{stderr}");

    // A valid plan for another cluster size is refused too.
    let plan = schedule_file(tmp.path(), &kill_twice());
    let out = squall(&echo_plan("5", &plan)).output().expect("run");
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nodes 5"));

    let out = squall(&["run", "--nemesis", "partition,kil"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'kil'"));
}

#[test]
fn a_trigger_kills_the_sender_of_the_third_accept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let event = r#"{ "id": 1, "on": { "msg_type": "accept", "nth": 3 }, "action": "kill", "node": "$src" }"#;
    let plan = three_node_plan(tmp.path(), 2000, Some(2000), &[event.to_string()]);
    let flags = ["--nodes", "3", "--schedule", &plan, "--seed", "4"];
    let args = [&["run"][..], WRITE_ONCE_PAXOS, &flags].concat();
    let metrics = metrics_of(&run_expect(&args, 0));
    let event = &metrics["faults"]["events"]["events"][0];
    assert_eq!(event["applied"], true, "{event}");
    assert!(event["evidence"][0]["fired_at_ms"].is_u64(), "{event}");
    assert_eq!(event["evidence"][1]["signal"], "SIGKILL");
    assert_eq!(metrics["faults"]["process_total"]["kills"], 1);
    // The final heal restarted it.
    assert_eq!(metrics["faults"]["process_total"]["restarts"], 1);
}

#[test]
fn a_recovery_window_no_longer_than_the_op_timeout_is_a_warning() {
    let flags = [
        "--nodes",
        "3",
        "--time-limit",
        "1s",
        "--recovery-time",
        "1s",
        "--op-timeout",
        "1s",
        "--seed",
        "1",
    ];
    let args = [QUIET_ECHO, &flags].concat();
    let verdict = verdict_of(&run_expect(&args, 0));
    let warnings = verdict["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w["message"]
            .as_str()
            .unwrap_or("")
            .contains("recovery window (1000 ms)")),
        "{warnings:?}"
    );
}
