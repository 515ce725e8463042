//! Helpers shared by the end-to-end tests: the binaries, runs, result files, processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn squall_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_squall"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `squall-node` is another package's binary: make sure it is built next to `squall`.
pub fn ensure_node_bin() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let node = squall_bin().with_file_name("squall-node");
        if node.is_file() {
            return;
        }
        cargo_build_bin("node", "squall-node");
    });
}

/// `cargo build -p package --bin bin`: another package's binary, built next to `squall`.
pub fn cargo_build_bin(package: &str, bin: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", package, "--bin", bin])
        .current_dir(repo_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
}

pub fn squall(args: &[&str]) -> Command {
    ensure_node_bin();
    let mut cmd = Command::new(squall_bin());
    cmd.args(args).current_dir(repo_root());
    cmd
}

/// The words of a command line, for arguments that read best as one line.
pub fn argv(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `squall args --results-dir <a fresh directory>`: its output and its run directory.
pub fn run_ok(args: &[&str]) -> (Output, PathBuf) {
    let results = tempfile::tempdir().expect("tempdir").keep();
    run_in(&results, args)
}

/// `squall args --results-dir results`: its output and its run directory (`latest`).
pub fn run_in(results: &Path, args: &[&str]) -> (Output, PathBuf) {
    let out = squall(args)
        .arg("--results-dir")
        .arg(results)
        .output()
        .expect("run squall");
    (out, results.join("latest"))
}

/// [`run_ok`], asserting that squall exits with `code`; the run directory.
pub fn run_expect(args: &[&str], code: i32) -> PathBuf {
    let (out, dir) = run_ok(args);
    assert_exit(&out, code);
    dir
}

/// `squall plan name extra.. --out dir/name.json`, asserting it succeeds: the plan
/// file's path.
pub fn plan_file(dir: &Path, name: &str, extra: &[&str]) -> String {
    let path = dir.join(format!("{name}.json"));
    let path = path.to_str().expect("utf8 path").to_string();
    let args = [&["plan", name][..], extra, &["--out", &path]].concat();
    let out = squall(&args).output().expect("run squall plan");
    assert!(out.status.success(), "{}", text(&out));
    path
}

/// A fault plan (seed 3, a 2 s quiet window) for `nodes` that kills n1 and restarts it,
/// twice: kill, restart, kill, restart at the four `at_ms`.
pub fn kill_twice_plan(nodes: &[&str], time_limit_ms: u64, at_ms: [u64; 4]) -> String {
    let events: Vec<Value> = (1..)
        .zip(at_ms)
        .zip(["kill", "restart", "kill", "restart"])
        .map(|((id, at), action)| {
            serde_json::json!({"id": id, "at_ms": at, "action": action, "node": "n1"})
        })
        .collect();
    serde_json::json!({
        "seed": 3,
        "nodes": nodes,
        "time_limit_ms": time_limit_ms,
        "recovery_ms": 2000,
        "events": events,
    })
    .to_string()
}

/// The arguments of a three-node paxos run under the fault plan in `plan`, then `extra`.
pub fn paxos_plan_args<'a>(plan: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let run = [
        "run",
        "--algorithm",
        "paxos",
        "--nodes",
        "3",
        "--schedule",
        plan,
    ];
    [&run[..], extra].concat()
}

/// Runs `squall args` to the end, asserting that it exits with `code` and prints `said`.
pub fn assert_says(args: &[&str], code: i32, said: &str) {
    let out = squall(args).output().expect("run squall");
    assert_exit(&out, code);
    let printed = text(&out);
    assert!(printed.contains(said), "{printed}");
}

/// Asserts a finished command's exit code, showing what it printed if it differs.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}

/// `squall args --results-dir results` started in the background, output to `output()`.
pub fn spawn_in(args: &[&str], results: &Path, output: fn() -> Stdio) -> Child {
    squall(args)
        .arg("--results-dir")
        .arg(results)
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("spawn squall")
}

/// Sends SIGINT to a child (as Ctrl-C would).
pub fn interrupt(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
}

/// A run directory's `verdict.json`.
pub fn verdict_of(dir: &Path) -> Value {
    json(&dir.join("verdict.json"))
}

/// A run directory's `metrics.json`.
pub fn metrics_of(dir: &Path) -> Value {
    json(&dir.join("metrics.json"))
}

/// A verdict's reason, or "" if it has none.
pub fn reason(verdict: &Value) -> &str {
    verdict["reason"].as_str().unwrap_or("")
}

/// The verdict of the run in `dir`, asserting that its reason says `said`.
pub fn verdict_saying(dir: &Path, said: &str) -> Value {
    let verdict = verdict_of(dir);
    assert!(reason(&verdict).contains(said), "{}", verdict["reason"]);
    verdict
}

/// Writes a schedule file into `dir` and returns its path as a string.
pub fn schedule_file(dir: &Path, text: &str) -> String {
    let path = dir.join("plan.json");
    std::fs::write(&path, text).expect("write plan");
    path.to_str().expect("utf8").to_string()
}

/// A node command running the Python script at `script` (relative to the repository root)
/// with `args`.
pub fn python_cmd(script: &str, args: &str) -> String {
    let path = repo_root().join(script);
    if args.is_empty() {
        format!("python3 {}", path.display())
    } else {
        format!("python3 {} {args}", path.display())
    }
}

/// The bundled Python echo node (`examples/python/echo_node.py`) as a node command.
pub fn python_echo_node() -> String {
    python_cmd("examples/python/echo_node.py", "")
}

/// `squall run` of the echo workload with no faults; callers add the rest.
pub const QUIET_ECHO: &[&str] = &["run", "--workload", "echo", "--nemesis", "none"];

/// Flags for the write-once workload on the bundled Paxos; callers add the rest.
pub const WRITE_ONCE_PAXOS: &[&str] = &["--workload", "write-once", "--algorithm", "paxos"];

/// `squall run` flags for small-quorum Paxos under partitions; callers add the rest.
pub const SMALL_QUORUM: &[&str] = &[
    "--algorithm",
    "paxos",
    "--bug",
    "small-quorum",
    "--nemesis",
    "partition",
];

/// A finished command's stdout then stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid json")
}

pub fn history_lines(dir: &Path) -> Vec<Value> {
    jsonl(&dir.join("history.jsonl"))
}

/// Every line of a JSON-lines file.
pub fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Waits up to 20 s for `parent` to have at least `n` child processes; returns them.
pub fn wait_for_children(parent: u32, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let kids = loop {
        let kids = children_of(parent);
        if kids.len() >= n || Instant::now() > deadline {
            break kids;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(kids.len() >= n, "{} of {n} processes started", kids.len());
    kids
}

pub fn misbehave(mode: &str) -> String {
    python_cmd("harness/tests/nodes/misbehave.py", mode)
}

/// Whether python3 runs; says so when a test skips for its lack.
pub fn python_available() -> bool {
    let ok = has_python();
    if !ok {
        eprintln!("skipping: python3 is not installed");
    }
    ok
}

/// A fresh results directory for a test that runs Python nodes; `None` (and a line
/// saying why) where python3 does not run, and the test should return.
pub fn python_results_dir() -> Option<tempfile::TempDir> {
    python_available().then(|| tempfile::tempdir().expect("tempdir"))
}

pub fn has_python() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pids whose parent is `pid`.
/// The children of `pid`, but for the supervisor's watchdog (`squall-watchdog`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if stat.contains("(squall-watchdog)") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|pp| pp.parse::<u32>().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Starts a 3-node echo run in the background and waits until its nodes exist.
pub fn start_echo_run(
    time_limit: &str,
    output: fn() -> Stdio,
) -> (tempfile::TempDir, Child, Vec<u32>) {
    let results = tempfile::tempdir().expect("tempdir");
    let args = [QUIET_ECHO, &["--nodes", "3", "--time-limit", time_limit]].concat();
    let child = spawn_in(&args, results.path(), output);
    let nodes = wait_for_children(child.id(), 3);
    (results, child, nodes)
}
