//! Helpers shared by the end-to-end tests: the binaries, runs, result files, processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "node", "--bin", "squall-node"])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building squall-node failed");
    });
}

pub fn squall(args: &[&str]) -> Command {
    ensure_node_bin();
    let mut cmd = Command::new(squall_bin());
    cmd.args(args).current_dir(repo_root());
    cmd
}

pub fn run_ok(args: &[&str]) -> (Output, PathBuf) {
    let results = tempfile::tempdir().expect("tempdir").keep();
    let mut all: Vec<&str> = args.to_vec();
    let r = results.to_str().expect("utf8 path").to_string();
    all.extend(["--results-dir", &r]);
    let out = squall(&all).output().expect("run squall");
    (out, results.join("latest"))
}

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
    format!(
        "python3 {} {mode}",
        repo_root()
            .join("harness/tests/nodes/misbehave.py")
            .display()
    )
}

/// Whether python3 runs; says so when a test skips for its lack.
pub fn python_available() -> bool {
    let ok = has_python();
    if !ok {
        eprintln!("skipping: python3 is not installed");
    }
    ok
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
) -> (tempfile::TempDir, std::process::Child, Vec<u32>) {
    let results = tempfile::tempdir().expect("tempdir");
    let args = [
        "run",
        "--workload",
        "echo",
        "--nemesis",
        "none",
        "--nodes",
        "3",
        "--time-limit",
        time_limit,
    ];
    let child = squall(&args)
        .arg("--results-dir")
        .arg(results.path())
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("spawn squall");
    let nodes = wait_for_children(child.id(), 3);
    (results, child, nodes)
}
