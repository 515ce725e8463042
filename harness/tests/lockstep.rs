//! Lockstep mode end to end: real `squall-node` processes driven one event at a time.
//!
//! The property that matters: the same seed, node binary and configuration give the
//! same trace (hash and bytes) and the same history, byte for byte, for every bundled
//! algorithm, under partitions, kills, drops and delays; another seed gives another
//! trace. A node that does not advertise lockstep is refused with a usage error.

mod common;

use std::path::{Path, PathBuf};

use common::{
    ensure_node_bin, history_lines, json, metrics_of, python_cmd, python_echo_node,
    python_results_dir, squall, text, verdict_of, WRITE_ONCE_PAXOS,
};

use clap::Parser;
use harness::cli::{Cli, Command as SquallCommand};
use harness::config::RunConfig;
use harness::lifecycle::RunOutcome;
use harness::lockstep::{hash_file, read_trace, run_lockstep, TraceKind};
use harness::nemesis::{expand, FaultKind, NemesisOpts, Schedule};
use harness::UsageError;
use serde_json::Value;

/// A run configuration from `squall run` flags, validated as the CLI does.
fn config(args: &[&str], results: &Path) -> RunConfig {
    ensure_node_bin();
    let mut argv = vec!["squall", "run"];
    argv.extend_from_slice(args);
    let r = results.to_str().expect("utf8 path");
    argv.extend(["--results-dir", r]);
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let SquallCommand::Run(run) = cli.command else {
        panic!("not a run command")
    };
    run.validate()
        .unwrap_or_else(|e| panic!("{argv:?}: {}", e.0))
}

fn schedule(cfg: &RunConfig, kinds: &[FaultKind], recovery_ms: u64) -> Schedule {
    let opts = NemesisOpts {
        kinds: kinds.iter().copied().collect(),
        interval_ms: 400,
        recovery_ms,
        kill_restart_after_ms: 300,
        ..NemesisOpts::default()
    };
    opts.validate().expect("valid nemesis options");
    let schedule = expand(cfg.seed, &opts, &cfg.node_ids(), cfg.time_limit_ms);
    schedule.validate().expect("valid schedule");
    schedule
}

fn run(cfg: RunConfig, schedule: Schedule) -> anyhow::Result<RunOutcome> {
    run_interrupted(cfg, schedule, false)
}

/// A lockstep run on a runtime of its own; `interrupted`: as if Ctrl-C came before it
/// started.
fn run_interrupted(
    cfg: RunConfig,
    schedule: Schedule,
    interrupted: bool,
) -> anyhow::Result<RunOutcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (tx, rx) = tokio::sync::watch::channel(false);
    if interrupted {
        tx.send(true).expect("receiver alive");
    }
    rt.block_on(run_lockstep(cfg, schedule, rx))
}

/// What two runs must agree on.
struct Outcome {
    dir: PathBuf,
    hash: String,
    trace: Vec<u8>,
    history: Vec<u8>,
    verdict: Value,
}

fn run_once(args: &[&str], kinds: &[FaultKind], results: &Path) -> Outcome {
    let cfg = config(args, results);
    let sched = schedule(&cfg, kinds, 500);
    let outcome = run(cfg, sched).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
    let dir = outcome.dir;
    let verdict = verdict_of(&dir);
    let hash = verdict["trace_hash"]
        .as_str()
        .expect("trace_hash")
        .to_string();
    assert_eq!(verdict["mode"], "lockstep");
    assert_eq!(
        hash_file(&dir.join("trace.bin")).expect("hash trace"),
        hash,
        "trace_hash is the hash of trace.bin"
    );
    Outcome {
        trace: std::fs::read(dir.join("trace.bin")).expect("trace.bin"),
        history: std::fs::read(dir.join("history.jsonl")).expect("history.jsonl"),
        dir,
        hash,
        verdict,
    }
}

/// The short run the determinism tests repeat: 2 s at 40 ops/s over 10 instances.
const SHORT_RUN: [&str; 6] = ["--time-limit", "2s", "--rate", "40", "--instances", "10"];

const FAULTS: [FaultKind; 5] = [
    FaultKind::Partition,
    FaultKind::Kill,
    FaultKind::Drop,
    FaultKind::Delay,
    FaultKind::Pause,
];

#[test]
fn same_seed_same_trace_and_history_for_every_algorithm() {
    ensure_node_bin();
    let results = tempfile::tempdir().expect("tempdir");
    let bin = harness::registry::find_node_bin().expect("squall-node");
    let registry = harness::registry::node_registry(&bin).expect("--list-json");
    let mut pairs = 0;
    for algo in &registry {
        for workload in &algo.workloads {
            let which = [
                "--workload",
                workload,
                "--algorithm",
                &algo.name,
                "--nodes",
                "3",
                "--seed",
                "11",
            ];
            let args = [&which[..], &SHORT_RUN].concat();
            let a = run_once(&args, &FAULTS, results.path());
            let b = run_once(&args, &FAULTS, results.path());
            let what = format!("{} / {workload}", algo.name);
            assert_ne!(a.dir, b.dir);
            assert_eq!(a.hash, b.hash, "{what}: trace hashes differ");
            assert!(a.trace == b.trace, "{what}: trace bytes differ");
            assert!(
                a.history == b.history,
                "{what}: histories differ ({} and {})",
                a.dir.display(),
                b.dir.display()
            );
            assert_eq!(a.verdict["verdict"], b.verdict["verdict"], "{what}");
            assert!(!a.history.is_empty(), "{what}: empty history");
            let metrics = metrics_of(&a.dir);
            assert!(metrics["steps"]["total"].as_u64().unwrap() > 0, "{what}");
            let p = &metrics["processes"];
            assert!(
                p["kills"].as_u64().unwrap() + p["pauses"].as_u64().unwrap() > 0,
                "{what}: no process fault bit: {p}"
            );
            pairs += 1;
        }
    }
    assert!(pairs >= 8, "only {pairs} algorithm/workload pairs ran");
}

#[test]
fn different_seeds_explore_different_runs() {
    let results = tempfile::tempdir().expect("tempdir");
    let args = |seed: &'static str| {
        let which = ["--workload", "write-once", "--nodes", "5", "--seed", seed];
        [&which[..], &SHORT_RUN].concat()
    };
    let a = run_once(&args("1"), &FAULTS, results.path());
    let b = run_once(&args("2"), &FAULTS, results.path());
    assert_ne!(a.hash, b.hash);
    assert_ne!(a.history, b.history);
}

#[test]
fn paxos_run_is_valid_and_the_trace_reads_back() {
    let results = tempfile::tempdir().expect("tempdir");
    let flags = [
        "--nodes",
        "5",
        "--time-limit",
        "3s",
        "--rate",
        "50",
        "--instances",
        "20",
        "--seed",
        "7",
    ];
    let args = [WRITE_ONCE_PAXOS, &flags].concat();
    // Every kind `all` stands for but kill-on-send.
    let all: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| *k != FaultKind::KillOnSend)
        .collect();
    let out = run_once(&args, &all, results.path());
    assert_eq!(
        out.verdict["verdict"],
        "valid",
        "{}",
        serde_json::to_string_pretty(&out.verdict).unwrap()
    );
    assert!(out.verdict["faulty_nodes"].as_array().unwrap().is_empty());
    let records = read_trace(&out.dir.join("trace.bin")).expect("trace reads back");
    let inits = records.iter().filter(|r| r.kind == TraceKind::Init).count();
    let metrics = metrics_of(&out.dir);
    let kills = metrics["processes"]["kills"].as_u64().unwrap();
    assert!(kills > 0, "the schedule kills: {metrics}");
    assert_eq!(
        inits as u64,
        5 + metrics["processes"]["restarts"].as_u64().unwrap()
    );
    assert!(records.iter().any(|r| r.kind == TraceKind::Timer));
    assert!(records.iter().any(|r| r.kind == TraceKind::Fault));
    let steps: Vec<u64> = records
        .iter()
        .filter(|r| {
            !matches!(
                r.kind,
                TraceKind::Fault
                    | TraceKind::Reply
                    | TraceKind::Timeout
                    | TraceKind::Output
                    | TraceKind::Decision
            )
        })
        .map(|r| r.step)
        .collect();
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>());
    let mut last = 0;
    for r in &records {
        assert!(r.at_us >= last, "virtual time never goes back");
        last = r.at_us;
    }
    assert_eq!(metrics["steps"]["total"].as_u64(), Some(steps.len() as u64));
    assert!(metrics["faults"]["total"]["dropped"].as_u64().unwrap() > 0);
    assert!(
        records
            .iter()
            .any(|r| r.kind == TraceKind::Decision && r.line.contains(r#""send":"drop""#)),
        "dropped sends are in the trace"
    );
    let history = history_lines(&out.dir);
    let indices: Vec<u64> = history
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, (0..history.len() as u64).collect::<Vec<_>>());
    let finals = history
        .iter()
        .filter(|e| e["f"] == "read" && e["time"].as_u64().unwrap() >= 3_500_000_000)
        .count();
    assert!(
        finals >= 5 * 20,
        "final reads of every instance on every node"
    );
}

#[test]
fn node_without_lockstep_support_is_a_usage_error() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let cmd = python_echo_node();
    let cfg = config(
        &[
            "--workload",
            "echo",
            "--node-cmd",
            &cmd,
            "--time-limit",
            "1s",
            "--seed",
            "3",
        ],
        results.path(),
    );
    let sched = schedule(&cfg, &[], 0);
    let err = run(cfg, sched).expect_err("python echo node does not speak lockstep");
    let usage = err
        .downcast_ref::<UsageError>()
        .unwrap_or_else(|| panic!("not a usage error: {err:#}"));
    assert!(
        usage.0.contains("node n1") && usage.0.contains("lockstep"),
        "{}",
        usage.0
    );
}

/// Flags of an echo run of the node command `cmd`: so many nodes, so long, at so many
/// ops/s, on a seed.
fn echo_args<'a>(cmd: &'a str, [nodes, limit, rate, seed]: [&'a str; 4]) -> Vec<&'a str> {
    vec![
        "--workload",
        "echo",
        "--node-cmd",
        cmd,
        "--nodes",
        nodes,
        "--time-limit",
        limit,
        "--rate",
        rate,
        "--seed",
        seed,
    ]
}

fn python_lockstep_node(mode: &str) -> String {
    python_cmd("harness/tests/nodes/lockstep_echo.py", mode)
}

#[test]
fn a_python_node_written_from_the_protocol_replays_exactly() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let cmd = python_lockstep_node("ok");
    let args = echo_args(&cmd, ["3", "1s", "60", "4"]);
    let kinds = [FaultKind::Kill, FaultKind::Pause];
    let a = run_once(&args, &kinds, results.path());
    let b = run_once(&args, &kinds, results.path());
    assert_eq!(a.hash, b.hash);
    assert!(a.history == b.history);
    assert_eq!(a.verdict["verdict"], "valid", "{}", a.verdict);
    let records = read_trace(&a.dir.join("trace.bin")).expect("trace");
    let timers = records
        .iter()
        .filter(|r| r.kind == TraceKind::Timer)
        .count();
    let oks = String::from_utf8(a.history)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""type":"ok""#))
        .count();
    assert!(oks > 20, "{oks} ok ops");
    assert!(
        timers >= oks,
        "every echo waits for its timer ({timers} timers)"
    );
}

#[test]
fn a_chattering_lockstep_node_is_faulty_and_the_run_goes_on() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let cmd = python_lockstep_node("chatter");
    let mut args = echo_args(&cmd, ["2", "2s", "40", "9"]);
    args.extend(["--op-timeout", "100ms"]);
    let out = run_once(&args, &[], results.path());
    let faulty = out.verdict["faulty_nodes"].as_array().expect("list");
    assert!(
        faulty.iter().any(|f| f["node"] == "n1"
            && f["what"]
                .as_str()
                .unwrap()
                .contains("outside a lockstep step")),
        "{faulty:?}"
    );
    assert_eq!(out.verdict["verdict"], "unknown", "{}", out.verdict);
    let ok_from_n2 = String::from_utf8(out.history)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""type":"ok""#) && l.contains(r#""node":"n2""#))
        .count();
    assert!(ok_from_n2 > 10, "the run went on with n2 ({ok_from_n2} ok)");
}

/// A node slower than the wall-clock guard is no fault of the algorithm: the run stops
/// at that step as `unknown`, naming the node and the step, and nobody is crashed.
#[test]
fn a_node_slower_than_the_guard_stops_the_run_unknown_and_is_never_crashed() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let cmd = python_lockstep_node("hang");
    let mut args = vec!["run", "--mode", "lockstep", "--nemesis", "none"];
    args.extend(echo_args(&cmd, ["2", "2s", "40", "9"]));
    args.extend(["--results-dir", results.path().to_str().expect("utf8")]);
    let out = squall(&args)
        .env("SQUALL_LOCKSTEP_TIMEOUT", "8s")
        .output()
        .expect("run squall");
    let verdict = verdict_of(&results.path().join("latest"));
    assert_eq!(verdict["verdict"], "unknown", "{}", text(&out));
    let why = verdict["reason"].as_str().expect("reason");
    assert!(
        why.contains("node n1 did not finish step ")
            && why.contains("within 8 s")
            && why.contains("SQUALL_LOCKSTEP_TIMEOUT"),
        "{why}"
    );
    assert_eq!(verdict["faulty_nodes"], serde_json::json!([]), "{verdict}");
    let metrics = metrics_of(&results.path().join("latest"));
    assert_eq!(metrics["processes"]["crashes"], 0, "{metrics}");
    assert_eq!(metrics["processes"]["kills"], 0, "{metrics}");

    let bad = squall(&args)
        .env("SQUALL_LOCKSTEP_TIMEOUT", "soon")
        .output()
        .expect("run squall");
    assert_eq!(bad.status.code(), Some(254), "{}", text(&bad));
    assert!(
        text(&bad).contains("SQUALL_LOCKSTEP_TIMEOUT"),
        "{}",
        text(&bad)
    );
}

#[test]
fn an_interrupted_run_still_writes_a_verdict() {
    let results = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        &["--workload", "echo", "--time-limit", "2s", "--seed", "8"],
        results.path(),
    );
    let sched = schedule(&cfg, &[], 0);
    let out = run_interrupted(cfg, sched, true).expect("interrupted runs end normally");
    let verdict = verdict_of(&out.dir);
    assert_eq!(verdict["interrupted"], true);
    assert!(out.dir.join("history.jsonl").exists());
    assert!(out.dir.join("metrics.json").exists());
}

/// A lockstep echo node that answers each echo at once and, on each, reports
/// `decided` with the value given as its first argument (`clock`: the wall clock's
/// nanoseconds, which no replay repeats): two runs that differ only in that argument
/// deliver the same events and get the same replies, and differ only in what the nodes
/// report.
const REPORTING_NODE: &str = r#"
import json, os, socket, sys, time
def line(src, dest, body):
    return json.dumps({"src": src, "dest": dest, "body": body}, separators=(",", ":")) + "\n"
value = None if sys.argv[1] == "clock" else int(sys.argv[1])
sys.stderr.write(json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}) + "\n")
sys.stderr.flush()
me = os.environ["SQUALL_NODE_ID"]
host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
sock = socket.create_connection((host, int(port)))
hello = {"type": "hello", "node_id": me, "token": os.environ["SQUALL_TOKEN"]}
sock.sendall(line(me, "router", hello).encode())
for raw in sock.makefile("rb"):
    if not raw.strip():
        continue
    msg = json.loads(raw)
    body = msg["body"]
    out = []
    if body.get("type") == "init":
        out.append(line(me, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"], "lockstep": True}))
    elif body.get("type") == "echo":
        out.append(line(me, "harness", {"type": "decided", "key": 0, "value": time.time_ns() if value is None else value}))
        out.append(line(me, msg["src"], {"type": "echo_ok", "in_reply_to": body["msg_id"], "echo": body["echo"]}))
    out.append(line(me, "harness", {"type": "step_done"}))
    sock.sendall("".join(out).encode())
"#;

/// Writes an inline Python node into `dir` and returns the `--node-cmd` running it with
/// the interpreter itself (not a wrapper such as a pyenv shim, which sets variables of
/// its own).
fn inline_node(dir: &Path, name: &str, source: &str, args: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write node script");
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let python = String::from_utf8(out.stdout).expect("utf8");
    format!("{} {} {args}", python.trim(), path.display())
}

/// Flags of a two-node echo run of `cmd` (an inline node), `limit` long, at `seed`.
fn inline_echo_args<'a>(cmd: &'a str, limit: &'a str, seed: &'a str) -> Vec<&'a str> {
    echo_args(cmd, ["2", limit, "20", seed])
}

/// A run of [`REPORTING_NODE`] given `node_arg`, two nodes `limit` long at `seed` with
/// `extra` flags, in `results`.
fn reporting_run(
    results: &Path,
    node_arg: &str,
    limit: &str,
    seed: &str,
    extra: &[&str],
) -> Outcome {
    let cmd = inline_node(results, "reporting.py", REPORTING_NODE, node_arg);
    let args = [&inline_echo_args(&cmd, limit, seed)[..], extra].concat();
    run_once(&args, &[], results)
}

#[test]
fn a_report_that_differs_changes_the_trace_hash() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let run_with = |value: &str| reporting_run(results.path(), value, "500ms", "5", &[]);
    let a = run_with("1");
    let again = run_with("1");
    let b = run_with("2");
    assert_eq!(a.hash, again.hash, "the same run, the same hash");
    assert!(a.history == b.history, "the same ops and replies");
    let reports = |o: &Outcome| std::fs::read(o.dir.join("reports.jsonl")).expect("reports");
    assert!(reports(&a) != reports(&b), "the reports differ");
    assert_ne!(a.hash, b.hash, "a different report, a different trace");
    let records = read_trace(&a.dir.join("trace.bin")).expect("trace");
    assert!(records
        .iter()
        .any(|r| r.kind == TraceKind::Output && r.line.contains(r#""type":"decided""#)));
}

#[test]
fn lockstep_nodes_start_with_only_the_documented_environment() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let env = ["--node-env", "GREETING=hello=world"];
    let out = reporting_run(results.path(), "1", "300ms", "6", &env);
    let log = std::fs::read_to_string(out.dir.join("nodes/n2.log")).expect("n2.log");
    let seen: Value = serde_json::from_str(log.lines().next().expect("a line")).expect("json");
    let env = seen["env"].as_object().expect("env");
    let allowed = ["PATH", "HOME", "LANG", "PYTHONHASHSEED", "TZ", "GREETING"];
    for key in env.keys() {
        assert!(
            allowed.contains(&key.as_str()) || key.starts_with("SQUALL_"),
            "{key} leaked into a lockstep node's environment: {env:?}"
        );
    }
    assert_eq!(env["LANG"], "C.UTF-8");
    assert_eq!(env["PYTHONHASHSEED"], "0");
    assert_eq!(env["TZ"], "UTC");
    assert_eq!(env["GREETING"], "hello=world");
    assert_eq!(
        env["SQUALL_DATA_DIR"], "data/n2",
        "the same in every replay"
    );
    let cwd = PathBuf::from(seen["cwd"].as_str().expect("cwd"));
    assert_eq!(
        cwd.canonicalize().unwrap(),
        out.dir.canonicalize().unwrap(),
        "nodes run in the run directory"
    );
    assert!(out.dir.join("data/n2").is_dir());
    let run_json = json(&out.dir.join("run.json"));
    assert_eq!(run_json["node_env"][0][0], "GREETING", "{run_json}");
}

#[test]
fn replay_diff_names_the_first_step_a_clock_reading_node_changes() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let a = reporting_run(results.path(), "clock", "300ms", "7", &[]);
    let records = read_trace(&a.dir.join("trace.bin")).expect("trace");
    let first = records
        .iter()
        .position(|r| r.kind == TraceKind::Output && r.line.contains("decided"))
        .expect("a report");
    let out = squall(&["replay", a.dir.to_str().unwrap(), "--diff"])
        .output()
        .expect("squall replay");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    let want = format!(
        "first difference at record {} (step {},",
        first + 1,
        records[first].step
    );
    assert!(said.contains(&want), "{want:?} in {said}");
    let expected = format!(
        "expected step {} node {} output: {}",
        records[first].step, records[first].node, records[first].line
    );
    assert!(said.contains(&expected), "{expected:?} in {said}");
    assert!(said.contains("  got      step"), "{said}");
}

#[test]
fn seeded_latency_repeats_per_seed_and_varies_the_hops() {
    let results = tempfile::tempdir().expect("tempdir");
    let args = |latency: Option<&'static str>| {
        let mut a = vec![
            "--workload",
            "write-once",
            "--algorithm",
            "paxos",
            "--nodes",
            "3",
            "--time-limit",
            "300ms",
            "--seed",
            "11",
        ];
        if let Some(l) = latency {
            a.extend(["--lockstep-latency", l]);
        }
        a
    };
    let constant = run_once(&args(None), &[], results.path());
    let drawn = run_once(&args(Some("uniform:50us-500us")), &[], results.path());
    let again = run_once(&args(Some("uniform:50us-500us")), &[], results.path());
    assert_eq!(drawn.hash, again.hash, "the seed decides every latency");
    assert!(drawn.history == again.history);
    assert_ne!(constant.hash, drawn.hash);
    assert_eq!(drawn.verdict["verdict"], "valid", "{}", drawn.verdict);
    let run_json = json(&drawn.dir.join("run.json"));
    assert_eq!(run_json["lockstep_latency"]["max_us"], 500, "{run_json}");
    // A message's delivery time, less the time its sender's step ran, is its hop: with
    // no faults, always 100 µs without the flag and spread over the range with it.
    let hops = |o: &Outcome| {
        let records = read_trace(&o.dir.join("trace.bin")).expect("trace");
        let mut sent_at = std::collections::BTreeMap::new();
        let mut hops = std::collections::BTreeSet::new();
        for r in &records {
            if r.kind == TraceKind::Output {
                sent_at.insert(r.line.clone(), r.at_us);
            } else if r.kind == TraceKind::Message {
                if let Some(t) = sent_at.get(&r.line) {
                    hops.insert(r.at_us - t);
                }
            }
        }
        hops
    };
    let constant_hops = hops(&constant);
    assert_eq!(
        constant_hops.iter().copied().collect::<Vec<_>>(),
        vec![100],
        "the default hop is constant"
    );
    let drawn_hops = hops(&drawn);
    // (Per-link FIFO may hold a message behind an earlier, slower one: past 500 µs.)
    assert!(drawn_hops.len() > 20, "{drawn_hops:?}");
    assert!(
        drawn_hops.first().is_some_and(|&h| h >= 50),
        "{drawn_hops:?}"
    );
}

/// The trace hash of a seed does not depend on what else the machine does: four seeds run
/// one by one and the same four under `squall soak --jobs 2` (two at once, each its own
/// listener and nodes) give the same hashes, recorded per seed in `soak.jsonl`.
#[test]
fn a_seed_has_the_same_trace_hash_alone_and_under_a_parallel_soak() {
    ensure_node_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let alone_dir = tmp.path().join("alone");
    let mut alone = Vec::new();
    for seed in ["1", "2", "3", "4"] {
        let (out, dir) = common::run_in(
            &alone_dir,
            &[
                "run",
                "--mode",
                "lockstep",
                "--time-limit",
                "2s",
                "--seed",
                seed,
            ],
        );
        assert!(out.status.code().is_some(), "{}", text(&out));
        alone.push(verdict_of(&dir)["trace_hash"].as_str().unwrap().to_string());
    }
    let soak_dir = tmp.path().join("soak");
    let out = squall(&[
        "soak",
        "--mode",
        "lockstep",
        "--time-limit",
        "2s",
        "--count",
        "4",
        "--jobs",
        "2",
        "--seed-start",
        "1",
        "--results-dir",
        soak_dir.to_str().unwrap(),
    ])
    .output()
    .expect("run squall soak");
    assert!(out.status.code().is_some(), "{}", text(&out));
    let mut soaked: Vec<(u64, String)> = common::jsonl(&soak_dir.join("soak.jsonl"))
        .iter()
        .map(|l| {
            let hash = l["trace_hash"]
                .as_str()
                .expect("a lockstep soak line has its hash");
            (l["seed"].as_u64().unwrap(), hash.to_string())
        })
        .collect();
    soaked.sort();
    let soaked: Vec<String> = soaked.into_iter().map(|(_, h)| h).collect();
    assert_eq!(soaked, alone);
}
