//! A hostile neighbour on the same host: while a real run is live, another process
//! connects to the run's router (its address and secret read from a node's
//! `/proc/<pid>/environ`, as any process of the same user could) and claims a client,
//! the harness, a live node, or says nothing useful at all. The router must close each
//! such connection, count it in `metrics.json`, blame no node, and leave the verdict what
//! it would have been. And a node that exits on its own is down like a killed one.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// What a neighbour learns from a node's environment.
struct Target {
    router: String,
    token: String,
}

/// A paxos run on `nodes` nodes, no faults, in the background.
struct LiveRun {
    results: tempfile::TempDir,
    child: Child,
    target: Target,
}

fn environ(pid: u32) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The run directory under `results` once clients have started (every node said hello
/// and answered init): its history has a line.
fn wait_until_live(results: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = std::fs::read_dir(results).ok().and_then(|dirs| {
            dirs.flatten()
                .map(|d| d.path())
                .find(|d| std::fs::metadata(d.join("history.jsonl")).is_ok_and(|m| m.len() > 0))
        });
        if let Some(dir) = live {
            return dir;
        }
        assert!(
            Instant::now() < deadline,
            "the run never started its clients"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_run(nodes: usize, time_limit: &str, extra: &[&str]) -> LiveRun {
    let results = tempfile::tempdir().expect("tempdir");
    let line = format!(
        "run --nemesis none --nodes {nodes} --time-limit {time_limit} --recovery-time 2s --seed 11"
    );
    let mut args = argv(&line);
    args.extend_from_slice(extra);
    let child = squall(&args)
        .arg("--results-dir")
        .arg(results.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn squall");
    let pids = wait_for_children(child.id(), nodes);
    let env = environ(pids[0]);
    let target = Target {
        router: env.get("SQUALL_ROUTER").expect("SQUALL_ROUTER").clone(),
        token: env.get("SQUALL_TOKEN").cloned().unwrap_or_default(),
    };
    wait_until_live(results.path());
    LiveRun {
        results,
        child,
        target,
    }
}

impl LiveRun {
    /// Waits for the run to end; its exit code, verdict and metrics.
    fn finish(self) -> (Option<i32>, Value, Value) {
        let out = self.child.wait_with_output().expect("wait squall");
        let dir = self.results.path().join("latest");
        assert!(dir.join("verdict.json").exists(), "{}", text(&out));
        let verdict = json(&dir.join("verdict.json"));
        let metrics = json(&dir.join("metrics.json"));
        (out.status.code(), verdict, metrics)
    }

    /// [`Self::finish`], asserting the run was judged as if nobody had connected and
    /// that the router refused connections for each reason as often as `counts` says:
    /// the metrics.
    fn finish_untouched(self, counts: &[(&str, u64)]) -> Value {
        let (code, verdict, metrics) = self.finish();
        assert_untouched(code, &verdict);
        let rc = &metrics["router"]["rejected_connections"];
        for &(reason, count) in counts {
            assert_eq!(rejected(&metrics, reason), count, "{reason}: {rc:#}");
        }
        metrics
    }
}

fn line(src: &str, dest: &str, body: Value) -> String {
    format!("{}\n", json!({"src": src, "dest": dest, "body": body}))
}

fn hello(node: &str, token: Option<&str>, incarnation: Option<u64>) -> String {
    let mut body = json!({"type": "hello", "node_id": node});
    if let Some(t) = token {
        body["token"] = json!(t);
    }
    if let Some(i) = incarnation {
        body["incarnation"] = json!(i);
    }
    line(node, "router", body)
}

/// Connects, writes `bytes`, and says whether the router closed the connection within
/// 3 s (reading and discarding whatever it sent meanwhile).
fn refused(router: &str, bytes: &str) -> bool {
    let mut s = TcpStream::connect(router).expect("connect to the router");
    if s.write_all(bytes.as_bytes()).is_err() {
        return true;
    }
    closed_by_router(s)
}

/// Connects, writes `bytes` (no newline) and closes its side, as a scanner would.
fn hang_up_after(router: &str, bytes: &str) -> bool {
    let mut s = TcpStream::connect(router).expect("connect to the router");
    let _ = s.write_all(bytes.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    closed_by_router(s)
}

fn closed_by_router(s: TcpStream) -> bool {
    closed_within(s, Duration::from_secs(3))
}

fn closed_within(mut s: TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn rejected(metrics: &Value, reason: &str) -> u64 {
    metrics["router"]["rejected_connections"]["by_reason"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// The run was judged as if nobody had connected.
fn assert_untouched(code: Option<i32>, verdict: &Value) {
    assert_eq!(verdict["verdict"], "valid", "{verdict:#}");
    assert_eq!(code, Some(0), "{verdict:#}");
    assert_eq!(verdict["faulty_nodes"], json!([]), "{verdict:#}");
}

/// Proposes of a value no client proposed, for the first 1,000 instances: decided on
/// any instance, it breaks validity.
fn forged_propose(client: &str) -> String {
    (0..1_000u64)
        .map(|key| {
            let body =
                json!({"type": "propose", "msg_id": key + 1, "key": key, "value": 987_654_321u64});
            line(client, &format!("n{}", key % 3 + 1), body)
        })
        .collect()
}

/// A decision report no node made: believed, it breaks agreement.
fn forged_decision(node: &str) -> String {
    line(
        node,
        "harness",
        json!({"type": "decided", "key": 0, "value": 987_654_321u64}),
    )
}

#[test]
fn fake_client_cannot_claim_a_client_address() {
    let run = start_run(3, "3s", &[]);
    let t = &run.target;
    let token_given = !t.token.is_empty();
    let as_c1 = hello("c1", Some(&t.token), None) + &forged_propose("c1");
    let c1_refused = refused(&t.router, &as_c1);
    let as_c2 = hello("c2", None, None) + &forged_propose("c2");
    let c2_refused = refused(&t.router, &as_c2);
    run.finish_untouched(&[("not_a_node", 1), ("bad_token", 1)]);
    assert!(token_given, "nodes get SQUALL_TOKEN");
    assert!(c1_refused, "a hello as c1 was accepted");
    assert!(c2_refused, "a tokenless hello as c2 was accepted");
}

#[test]
fn fake_harness_cannot_swallow_node_reports() {
    let run = start_run(3, "3s", &[]);
    let t = &run.target;
    assert!(refused(&t.router, &hello("harness", Some(&t.token), None)));
    assert!(refused(&t.router, &hello("router", Some(&t.token), None)));
    let metrics = run.finish_untouched(&[("not_a_node", 2)]);
    assert!(metrics["reports"].as_u64().unwrap() > 0, "{metrics:#}");
}

#[test]
fn second_hello_for_a_live_node_is_refused_not_a_replacement() {
    let run = start_run(3, "3s", &[]);
    let t = &run.target;
    let tok = Some(t.token.as_str());
    for (claim, why) in [
        (hello("n2", tok, Some(0)), "same incarnation"),
        (hello("n2", tok, None), "no incarnation"),
        (
            hello("n2", tok, Some(1)),
            "an incarnation squall never started",
        ),
        (hello("n2", None, Some(0)), "no token"),
        (
            hello("n2", Some("0123456789abcdef0123456789abcdef"), Some(0)),
            "wrong token",
        ),
    ] {
        let bytes = claim + &forged_decision("n2");
        assert!(refused(&t.router, &bytes), "{why}: accepted");
    }
    run.finish_untouched(&[("duplicate", 2), ("wrong_incarnation", 1), ("bad_token", 2)]);
}

#[test]
fn port_scanner_is_counted_and_blamed_on_no_node() {
    let run = start_run(3, "3s", &[]);
    let t = &run.target;
    drop(TcpStream::connect(&t.router).expect("connect"));
    assert!(refused(&t.router, "GET / HTTP/1.1\r\nHost: squall\r\n\r\n"));
    assert!(hang_up_after(&t.router, "\u{1}\u{2}\u{3} no newline"));
    let not_hello = line("n1", "n2", json!({"type": "prepare", "key": 0}));
    assert!(refused(&t.router, &not_hello));
    // closed_before_hello: the plain connect-and-close and the one that hung up mid-line.
    let metrics = run.finish_untouched(&[("not_a_hello", 2), ("closed_before_hello", 2)]);
    let rc = &metrics["router"]["rejected_connections"];
    assert_eq!(rc["total"], 4, "{rc:#}");
    let samples = rc["samples"].as_array().unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s["detail"].as_str().unwrap().contains("GET / HTTP")),
        "{rc:#}"
    );
}

/// Everything above at once, from another process, while a five-node run is live.
#[test]
fn hostile_neighbour_cannot_change_the_verdict() {
    // Long enough for the silent connection's hello timeout (5 s) to end it.
    let run = start_run(5, "6s", &[]);
    let token = run.target.token.clone();
    let t = Target {
        router: run.target.router.clone(),
        token: token.clone(),
    };
    let neighbour = std::thread::spawn(move || {
        // Connected and silent from the start: closed after the hello timeout.
        let silent = TcpStream::connect(&t.router).expect("connect");
        drop(TcpStream::connect(&t.router).expect("connect"));
        let tok = Some(t.token.as_str());
        let attempts = [
            "garbage\n".to_string(),
            hello("c3", tok, None) + &forged_propose("c3"),
            hello("c4", None, None) + &forged_propose("c4"),
            hello("harness", tok, None),
            hello("n2", tok, Some(0)) + &forged_decision("n2"),
            hello("n3", tok, None) + &forged_decision("n3"),
            hello("n4", tok, Some(7)) + &forged_decision("n4"),
            hello("n5", None, None) + &forged_decision("n5"),
        ];
        let mut accepted = Vec::new();
        for a in &attempts {
            if !refused(&t.router, a) {
                accepted.push(a.clone());
            }
        }
        let silent_closed = closed_within(silent, Duration::from_secs(8));
        (accepted, silent_closed)
    });
    let (accepted, silent_closed) = neighbour.join().expect("neighbour thread");
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    assert!(
        silent_closed,
        "a connection that never said hello stayed open"
    );
    let metrics = run.finish_untouched(&[
        ("closed_before_hello", 1),
        ("not_a_hello", 1),
        ("not_a_node", 2),
        ("bad_token", 2),
        ("duplicate", 2),
        ("wrong_incarnation", 1),
        ("no_hello_in_time", 1),
    ]);
    let rc = &metrics["router"]["rejected_connections"];
    assert_eq!(rc["total"], 10, "{rc:#}");
    let text = rc.to_string();
    assert!(
        !text.contains(&token),
        "the token leaked into metrics: {text}"
    );
}

#[test]
fn node_that_exits_on_its_own_is_unknown_not_a_termination_violation() {
    if !python_available() {
        return;
    }
    ensure_node_bin();
    let node_bin = squall_bin().with_file_name("squall-node");
    let cmd = format!(
        "python3 {} n1 1.5 {} --algorithm paxos",
        repo_root()
            .join("harness/tests/nodes/exit_after.py")
            .display(),
        node_bin.display()
    );
    let (out, dir) = run_ok(&[
        "run",
        "--node-cmd",
        &cmd,
        "--nemesis",
        "none",
        "--nodes",
        "3",
        "--time-limit",
        "4s",
        "--recovery-time",
        "2s",
        "--seed",
        "5",
    ]);
    let verdict = json(&dir.join("verdict.json"));
    assert_eq!(out.status.code(), Some(2), "{}\n{verdict:#}", text(&out));
    assert_eq!(verdict["verdict"], "unknown", "{verdict:#}");
    let faulty = verdict["faulty_nodes"].to_string();
    assert!(
        faulty.contains("n1") && faulty.contains("exited unexpectedly"),
        "{faulty}"
    );
    let reason = verdict["reason"].as_str().unwrap();
    assert!(!reason.contains("termination violated"), "{reason}");
    let spans = json(&dir.join("metrics.json"))["faults"]["spans"].clone();
    assert!(
        spans.as_array().unwrap().iter().any(|s| s["kind"] == "kill"
            && s["nodes"] == json!(["n1"])
            && s["what"].as_str().unwrap().contains("exited on its own")),
        "{spans:#}"
    );
}

#[test]
fn node_without_the_token_does_not_start_and_the_reason_says_why() {
    if !python_available() {
        return;
    }
    let script = tempfile::NamedTempFile::new().expect("temp file");
    // The echo node as written before the token: its hello carries none.
    let old = std::fs::read_to_string(repo_root().join("examples/python/echo_node.py"))
        .expect("echo node")
        .replace("\"token\": os.environ[\"SQUALL_TOKEN\"],", "");
    assert!(!old.contains("SQUALL_TOKEN\"],"), "the token line moved");
    std::fs::write(script.path(), old).expect("write");
    let cmd = format!("python3 {}", script.path().display());
    let (out, dir) = run_ok(&[
        "run",
        "--workload",
        "echo",
        "--node-cmd",
        &cmd,
        "--nemesis",
        "none",
        "--nodes",
        "2",
        "--time-limit",
        "1s",
    ]);
    assert_exit(&out, 2);
    let verdict = json(&dir.join("verdict.json"));
    let reason = verdict["reason"].as_str().unwrap();
    assert!(
        reason.contains("did not start") && reason.contains("(bad_token "),
        "{reason}"
    );
    assert!(reason.contains("SQUALL_TOKEN"), "{reason}");
}
