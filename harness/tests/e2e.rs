//! End-to-end tests: the real `squall` binary starting real node processes on loopback.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[test]
fn echo_run_is_valid_and_writes_every_file() {
    let flags = [
        "--nodes",
        "3",
        "--time-limit",
        "2s",
        "--seed",
        "7",
        "--rate",
        "200",
    ];
    let (out, dir) = run_ok(&[QUIET_ECHO, &flags].concat());
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("VALID") && stdout.contains("results"),
        "summary: {stdout}"
    );
    for f in [
        "run.json",
        "history.jsonl",
        "verdict.json",
        "metrics.json",
        "nodes/n1.log",
        "nodes/n3.log",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert_eq!(verdict_of(&dir)["verdict"], "valid");
    assert_eq!(json(&dir.join("run.json"))["seed"], 7);
    let history = history_lines(&dir);
    let indices: Vec<u64> = history
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indices,
        (0..history.len() as u64).collect::<Vec<_>>(),
        "indices dense, in file order"
    );
    let oks = history.iter().filter(|e| e["type"] == "ok").count();
    assert!(oks >= 200, "only {oks} ok ops");
    let metrics = metrics_of(&dir);
    assert!(metrics["latency_ms"]["echo"]["p50"].as_f64().unwrap() > 0.0);
    assert!(metrics["messages"]["by_type"]["echo"].as_u64().unwrap() >= oks as u64);
}

#[test]
fn python_node_speaks_the_protocol() {
    if !python_available() {
        return;
    }
    let cmd = python_echo_node();
    let dir = run_expect(
        &[
            QUIET_ECHO,
            &["--node-cmd", &cmd, "--time-limit", "2s", "--seed", "3"],
        ]
        .concat(),
        0,
    );
    assert_eq!(verdict_of(&dir)["verdict"], "valid");
}

#[test]
fn bad_input_exits_254_naming_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--workload", "nope"], "valid: echo"),
        (&["run", "--algorithm", "nope"], "valid: echo"),
        (&["run", "--nodes", "0"], "--nodes"),
        (
            &["run", "--node-cmd", "/no/such/program --flag"],
            "/no/such/program",
        ),
        (&["run", "--time-limit", "soon"], "duration"),
        (&["run", "--bug", "nope"], "unknown bug"),
        (&["run", "--data-dir", "/proc/no-such-dir"], "--data-dir"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, needle) in cases {
        let out = squall(args).output().expect("run squall");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: stderr does not name '{needle}': {stderr}"
        );
    }
}

fn run_misbehaving(mode: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let cmd = misbehave(mode);
    let mut args = QUIET_ECHO.to_vec();
    args.extend([
        "--node-cmd",
        &cmd,
        "--nodes",
        "3",
        "--time-limit",
        "1500ms",
        "--op-timeout",
        "300ms",
        "--seed",
        "1",
    ]);
    args.extend_from_slice(extra);
    let (out, dir) = run_ok(&args);
    (out.status.code(), verdict_of(&dir))
}

fn faulty_text(verdict: &Value) -> String {
    verdict["faulty_nodes"].to_string()
}

/// Runs the misbehaving node in `mode`: the run must end in unknown (exit 2) with the
/// node faulty for `why`.
fn assert_faulty_and_unknown(mode: &str, why: &str) -> Value {
    let (code, verdict) = run_misbehaving(mode, &[]);
    assert_eq!(code, Some(2), "{verdict}");
    let faulty = faulty_text(&verdict);
    assert!(faulty.contains("n1") && faulty.contains(why), "{faulty}");
    verdict
}

#[test]
fn garbage_line_is_recorded_as_faulty_and_the_run_ends() {
    if !python_available() {
        return;
    }
    let verdict = assert_faulty_and_unknown("garbage", "not an envelope");
    assert_eq!(verdict["verdict"], "unknown");
}

#[test]
fn oversized_line_is_recorded_as_faulty_and_the_run_ends() {
    if !python_available() {
        return;
    }
    assert_faulty_and_unknown("oversized", "oversized");
}

#[test]
fn node_that_never_says_hello_ends_in_unknown() {
    if !python_available() {
        return;
    }
    let (code, verdict) = run_misbehaving("silent", &[]);
    assert_eq!(code, Some(2), "{verdict}");
    assert!(reason(&verdict).contains("did not start"), "{verdict}");
}

#[test]
fn crashing_and_hanging_nodes_are_recorded() {
    if !python_available() {
        return;
    }
    assert_faulty_and_unknown("crash", "exited unexpectedly (exit code 3)");
    let (code, verdict) = run_misbehaving("hang", &[]);
    assert_eq!(
        code,
        Some(2),
        "hanging nodes: no op completes, so nothing can be judged: {verdict}"
    );
}

#[test]
fn sigkill_of_the_harness_leaves_no_node_behind() {
    let (_results, mut child, nodes) = start_echo_run("30s", Stdio::null);
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("SIGKILL squall");
    child.wait().expect("reap squall");
    let deadline = Instant::now() + Duration::from_secs(2);
    while nodes.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<u32> = nodes.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "nodes {survivors:?} outlived a SIGKILLed harness by 2 s"
    );
}

#[test]
fn sigint_writes_partial_history_and_a_verdict() {
    let (results, child, nodes) = start_echo_run("60s", Stdio::piped);
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    let out = child.wait_with_output().expect("wait squall");
    // Cut short before the quiet window, the run is unknown, never valid.
    assert_exit(&out, 2);
    let dir = results.path().join("latest");
    let verdict = verdict_of(&dir);
    assert_eq!(verdict["interrupted"], true);
    assert_eq!(verdict["verdict"], "unknown", "{verdict}");
    assert!(
        verdict["reason"]
            .as_str()
            .is_some_and(|r| r.contains("termination not judged")),
        "{verdict}"
    );
    assert!(history_lines(&dir).iter().any(|e| e["type"] == "ok"));
    assert!(
        nodes.iter().all(|p| !alive(*p)),
        "nodes survived the interrupted run"
    );
}
