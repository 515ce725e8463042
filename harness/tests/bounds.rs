//! End-to-end: nothing a run starts survives it (normal end, SIGINT, SIGTERM, SIGKILL of
//! the harness), a full disk stops a run, a torn last line is checked without it, and
//! inputs that are not what they should be are named.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn bad_node(mode: &str, real_others: bool) -> String {
    let script = "harness/tests/nodes/bad.py";
    if real_others {
        let node = squall_bin().with_file_name("squall-node");
        python_cmd(
            script,
            &format!("{mode} {} --algorithm paxos", node.display()),
        )
    } else {
        python_cmd(script, mode)
    }
}

/// Starts `squall run` in the background with results under `results`.
fn spawn_run(results: &Path, cmd: &str, time_limit: &str) -> Child {
    let args = [
        "run",
        "--node-cmd",
        cmd,
        "--nemesis",
        "none",
        "--nodes",
        "3",
        "--time-limit",
        time_limit,
        "--recovery-time",
        "2s",
        "--seed",
        "3",
    ];
    spawn_in(&args, results, Stdio::piped)
}

/// Processes whose environment mentions `path` (every node and everything it forks
/// inherits `SQUALL_DATA_DIR`, which lies under the results directory).
fn processes_mentioning(path: &Path) -> Vec<u32> {
    let needle = path.to_str().unwrap().as_bytes().to_vec();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if alive(pid) && env.windows(needle.len()).any(|w| w == needle.as_slice()) {
            found.push(pid);
        }
    }
    found
}

/// The pids n1 forked, once it has written `want` of them.
fn forked_pids(results: &Path, want: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let file = std::fs::read_dir(results)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("data/n1/forked.pids"))
            .find(|p| p.is_file());
        if let Some(text) = file.and_then(|p| std::fs::read_to_string(p).ok()) {
            let pids: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
            if pids.len() >= want {
                return pids;
            }
        }
        assert!(Instant::now() < deadline, "n1 never wrote its forked pids");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to a few seconds for every process of the run to be gone.
fn assert_nothing_left(results: &Path, pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        left.extend(processes_mentioning(results));
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for p in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("after {what}, processes of the run survive: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[test]
fn grandchildren_do_not_survive_a_normal_end() {
    if !python_available() {
        return;
    }
    for mode in ["forks", "exits"] {
        let results = tempfile::tempdir().unwrap();
        let child = spawn_run(results.path(), &bad_node(mode, true), "3s");
        let pids = forked_pids(results.path(), 2);
        let out = child.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{mode}: {}",
            text(&out)
        );
        assert_nothing_left(results.path(), &pids, &format!("a normal end ({mode})"));
    }
}

#[test]
fn sigterm_ends_a_run_like_sigint_and_leaves_nothing() {
    if !python_available() {
        return;
    }
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let results = tempfile::tempdir().unwrap();
        let child = spawn_run(results.path(), &bad_node("forks", true), "60s");
        let pids = forked_pids(results.path(), 3);
        std::thread::sleep(Duration::from_millis(500));
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        // Not 143 (killed by SIGTERM): the run stops, writes what it recorded, judges it.
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{sig}: {}",
            text(&out)
        );
        let latest = results.path().join("latest");
        let verdict = json(&latest.join("verdict.json"));
        assert_eq!(verdict["interrupted"], true, "{sig}: {verdict:#}");
        assert_nothing_left(results.path(), &pids, &format!("{sig}"));
    }
}

#[test]
fn sigkill_of_the_harness_leaves_no_node_nor_grandchild() {
    if !python_available() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let mut child = spawn_run(results.path(), &bad_node("forks", true), "60s");
    let pids = forked_pids(results.path(), 3);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        processes_mentioning(results.path()).len() >= 3,
        "the nodes are not running"
    );
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    assert_nothing_left(results.path(), &pids, "SIGKILL of the harness");
}

/// A small tmpfs, unmounted when dropped; `None` (and a message) if mounting fails.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn full_disk_stops_the_run_at_once_and_says_so() {
    if !python_available() {
        return;
    }
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let results = disk.path().join("results");
    let out = squall(&[
        "run",
        "--workload",
        "echo",
        "--node-cmd",
        &bad_node("echo", false),
        "--nemesis",
        "none",
        "--nodes",
        "2",
        "--clients",
        "8",
        "--rate",
        "4000",
        "--time-limit",
        "60s",
        "--results-dir",
        results.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(255), "{said}");
    assert!(said.contains("history.jsonl"), "{said}");
    assert!(said.contains("stopped"), "{said}");
    // Stopped at once, not at the 60 s time limit: the harness says when it stopped.
    let stopped_ms: u64 = said
        .split("stopped ")
        .nth(1)
        .and_then(|rest| rest.split(" ms into").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stop time in: {said}"));
    assert!(
        stopped_ms < 30_000,
        "stopped only at {stopped_ms} ms: {said}"
    );
    let latest = results.join("latest");
    assert!(
        !latest.join("verdict.json").exists(),
        "judged a history with a hole"
    );
    assert_nothing_left(&results, &[], "a full disk");
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

/// `squall check path`.
fn check(path: &Path) -> Output {
    squall(&["check", path.to_str().unwrap()]).output().unwrap()
}

const HISTORY: &str = concat!(
    r#"{"index":0,"process":0,"type":"invoke","f":"write","value":{"key":1,"value":5},"time":10}"#,
    "\n",
    r#"{"index":1,"process":0,"type":"ok","f":"write","value":{"key":1,"value":5},"time":20}"#,
    "\n",
    r#"{"index":2,"process":1,"type":"invoke","f":"read","value":{"key":1},"time":30}"#,
    "\n",
    r#"{"index":3,"process":1,"type":"ok","f":"read","value":{"key":1,"value":5},"time":40}"#,
    "\n",
);

#[test]
fn torn_last_line_is_checked_without_it_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let whole = write_file(dir.path(), "whole.jsonl", HISTORY);
    let torn = write_file(
        dir.path(),
        "torn.jsonl",
        &format!("{HISTORY}{{\"index\":4,\"process\":2,\"ty"),
    );
    assert_exit(&check(&whole), 0);
    let out = check(&torn);
    assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("incomplete"), "{stderr}");
    // A bad line that is not the last one is still an error.
    let broken = write_file(
        dir.path(),
        "broken.jsonl",
        &format!("{{\"index\":0,\"pro\n{HISTORY}"),
    );
    assert_exit(&check(&broken), 254);
}

#[test]
fn check_names_directories_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    for (path, says) in [
        (dir.path().to_str().unwrap(), "is a directory"),
        ("/dev/null", "character device"),
    ] {
        let out = check(Path::new(path));
        assert_exit(&out, 254);
        assert!(text(&out).contains(says), "{path}: {}", text(&out));
    }
}

#[test]
fn unusable_results_dir_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "plain", "x");
    for path in [file.to_str().unwrap(), "/dev/null"] {
        let args = [
            "run",
            "--workload",
            "echo",
            "--time-limit",
            "1s",
            "--results-dir",
            path,
        ];
        assert_says(&args, 254, path);
    }
}

#[test]
fn absurd_time_limit_is_refused_not_capped() {
    let out = squall(&["run", "--time-limit", "99999999999999h"])
        .output()
        .unwrap();
    assert_exit(&out, 254);
    let out = squall(&["run", "--time-limit", "8d"]).output().unwrap();
    assert_exit(&out, 254);
    assert_says(&["run", "--time-limit", "200h"], 254, "7 days");
}

#[test]
fn oversized_schedule_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = String::new();
    for i in 0..20_000 {
        if i > 0 {
            events.push_str(",\n");
        }
        events.push_str(&format!(
            r#"{{"id":{i},"at_ms":{},"action":"pause","node":"n1"}}"#,
            i
        ));
    }
    let schedule = write_file(
        dir.path(),
        "schedule.json",
        &format!(
            r#"{{"seed":1,"nodes":["n1","n2","n3"],"time_limit_ms":100000,"recovery_ms":0,"events":[{events}]}}"#
        ),
    );
    assert_says(
        &["run", "--schedule", schedule.to_str().unwrap()],
        254,
        "20000 events",
    );
}

#[test]
fn mutated_frames_neither_panic_nor_grow_the_router() {
    if !python_available() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = squall(&[
        "run",
        "--workload",
        "echo",
        "--node-cmd",
        &bad_node("fuzz", false),
        "--nemesis",
        "none",
        "--nodes",
        "3",
        "--time-limit",
        "3s",
        "--recovery-time",
        "1s",
        "--seed",
        "7",
        "--results-dir",
        results.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let said = text(&out);
    assert!(!said.contains("panicked"), "{said}");
    // n1 is faulty (garbage), so the run is unknown, never VALID and never an internal
    // error. A mutated frame can also be a well-formed reply carrying a wrong echo; that is
    // evidence, and the run is INVALID instead.
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "{said}");
    let latest = results.path().join("latest");
    let sent: u64 = std::fs::read_to_string(latest.join("data/n1/fuzz.count"))
        .map(|t| t.trim().parse().unwrap())
        .unwrap_or(0);
    assert!(sent > 1000, "only {sent} frames were sent");
    let verdict = json(&latest.join("verdict.json"));
    let faulty = verdict["faulty_nodes"].as_array().unwrap();
    // One entry per (node, kind), with counts, however many frames were bad.
    assert!(faulty.len() <= 16, "{faulty:#?}");
    // n1 sent the garbage. Its peers may be listed too, for a line that only echoes what
    // n1 sent them (a Python peer answering `in_reply_to: inf` writes `Infinity`).
    let total: u64 = faulty
        .iter()
        .filter(|f| f["node"] == "n1")
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert!(total > 100, "{faulty:#?}");
}

/// `scripts/gen-history.py` into `dir`: a run directory whose history of about `mb`
/// megabytes is correct, or (`corrupt`) has one read of a value never written.
fn generated_history(dir: &Path, workload: &str, mb: &str, corrupt: bool) -> PathBuf {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(repo_root().join("scripts/gen-history.py"))
        .args(["--workload", workload, "--mb", mb, "--out"])
        .arg(dir);
    if corrupt {
        cmd.arg("--corrupt");
    }
    let out = cmd.output().expect("run gen-history.py");
    assert!(out.status.success(), "{}", text(&out));
    dir.join("history.jsonl")
}

/// A history of a few MB (tens of thousands of ops, the shape of a long run's) is
/// judged by the run's own checkers as it is: valid when it is, invalid naming the bad
/// read when one read saw a value nobody wrote. Memory is measured by
/// scripts/check-rss.sh, not asserted here.
#[test]
fn a_few_megabytes_of_history_are_judged_right() {
    let tmp = tempfile::tempdir().unwrap();
    for (workload, checker) in [("lin-kv", "linearizability"), ("write-once", "consensus")] {
        let good = generated_history(&tmp.path().join(workload), workload, "3", false);
        assert!(std::fs::metadata(&good).unwrap().len() > 2_500_000);
        let out = check(&good);
        assert_exit(&out, 0);
        assert!(text(&out).contains("\tvalid\t"), "{}", text(&out));
        let bad_dir = tmp.path().join(format!("{workload}-bad"));
        let bad = generated_history(&bad_dir, workload, "3", true);
        let out = squall(&["check", "-v", bad.to_str().unwrap()])
            .output()
            .unwrap();
        assert_exit(&out, 1);
        let said = text(&out);
        assert!(said.contains("\tinvalid\t"), "{said}");
        assert!(said.contains(&format!("{checker}: ")), "{said}");
        assert!(said.contains("1000000000"), "names the bad value: {said}");
    }
}

/// `messages.jsonl` stops at its byte cap: the file holds whole lines within it, and
/// `metrics.json` says how many copies were not written.
#[test]
fn message_log_stops_at_its_byte_cap_and_says_so() {
    let results = tempfile::tempdir().unwrap();
    let cap = 4096u64;
    let out = squall(&[
        "run",
        "--time-limit",
        "1s",
        "--nemesis",
        "none",
        "--seed",
        "3",
        "--results-dir",
        results.path().to_str().unwrap(),
    ])
    .env("SQUALL_MESSAGE_LOG_BYTES_MAX", cap.to_string())
    .output()
    .unwrap();
    assert_exit(&out, 0);
    let dir = results.path().join("latest");
    let written = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    assert!(written.len() as u64 <= cap, "{} bytes", written.len());
    assert!(
        written.is_empty() || written.ends_with('\n'),
        "whole lines only"
    );
    let log = &metrics_of(&dir)["message_log"];
    assert_eq!(log["bytes_max"], cap, "{log}");
    assert_eq!(log["bytes"], written.len() as u64, "{log}");
    let unwritten = log["unwritten"].as_u64().unwrap();
    let recorded = log["recorded"].as_u64().unwrap();
    assert!(unwritten > 0, "{log}");
    assert_eq!(
        written.lines().count() as u64 + unwritten,
        recorded,
        "{log}"
    );
    let bad = squall(&["run", "--time-limit", "1s", "--results-dir"])
        .arg(results.path())
        .env("SQUALL_MESSAGE_LOG_BYTES_MAX", "lots")
        .output()
        .unwrap();
    assert_exit(&bad, 254);
}
