//! End to end: `examples/python/paxos_node.py`, a Paxos node written from PROTOCOL.md in
//! stdlib Python, run by `squall run --node-cmd` as real processes.
//!
//! - the correct node is valid under every fault kind free-running, and in lockstep;
//! - in lockstep two runs of one seed have one trace, and `squall replay` repeats it;
//! - its forgetful acceptor (`--bug memory-acceptor`, promises and acceptances kept in
//!   memory only) is caught when a kill lands between an acceptor's promise and the next
//!   ballot's accept (the `bridge-promise-crash` plan), and the correct node is valid
//!   under the same plan;
//! - its wall-clock mutant (`--bug wall-clock`, backoff read from `time.time()`) does not
//!   repeat in lockstep: two runs of one seed give two traces, and `replay --diff` says
//!   so at the first record that differs (same step and node, another line).
//!
//! Late proposals (`--late-proposals`) do not catch the forgetful acceptor of this node:
//! every node learns each decision durably and acceptors that know it answer `prepare`
//! with it, so a late proposal to a restarted node finds the decision; see
//! docs/writing-a-node.md and `scripts/python-forgetful-sweep.sh`.

mod common;

use std::path::{Path, PathBuf};

use common::{plan_file, python_results_dir, run_in, squall, text, verdict_of};
use serde_json::Value;

const NODE: &str = "python3 examples/python/paxos_node.py";

/// One finished run: its exit code, verdict and directory.
struct Run {
    code: i32,
    verdict: Value,
    dir: PathBuf,
    output: String,
}

impl Run {
    fn kind(&self) -> &str {
        self.verdict["verdict"].as_str().unwrap_or("?")
    }

    fn trace_hash(&self) -> String {
        self.verdict["trace_hash"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace_hash: {}", self.verdict))
            .to_string()
    }
}

/// `squall run` with `args` into `results`, and what it left in its run directory.
fn run(args: &[&str], results: &Path) -> Run {
    let (out, latest) = run_in(results, &[&["run"][..], args].concat());
    let dir = std::fs::canonicalize(latest).expect("a run directory");
    Run {
        code: out.status.code().unwrap_or(-1),
        verdict: verdict_of(&dir),
        output: text(&out),
        dir,
    }
}

fn node_cmd(bug: Option<&str>) -> String {
    match bug {
        Some(b) => format!("{NODE} --bug {b}"),
        None => NODE.to_string(),
    }
}

/// A short write-once run of the Python node on `seed` with `extra` flags.
fn paxos_args<'a>(cmd: &'a str, seed: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--node-cmd",
        cmd,
        "--nodes",
        "3",
        "--time-limit",
        "2s",
        "--recovery-time",
        "3s",
        "--rate",
        "50",
        "--seed",
        seed,
    ];
    args.extend(extra);
    args
}

#[test]
fn python_paxos_is_valid_under_every_fault_kind() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let cmd = node_cmd(None);
    for seed in ["1", "2"] {
        let r = run(
            &paxos_args(&cmd, seed, &["--nemesis", "all"]),
            results.path(),
        );
        assert_eq!(r.kind(), "valid", "seed {seed}: {}", r.output);
        assert_eq!(r.code, 0, "{}", r.output);
        let proposes = common::history_lines(&r.dir)
            .iter()
            .filter(|e| e["f"] == "propose" && e["type"] == "ok")
            .count();
        assert!(
            proposes > 5,
            "seed {seed}: only {proposes} proposals decided"
        );
    }
}

#[test]
fn python_paxos_lockstep_runs_repeat_exactly_and_replay() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let cmd = node_cmd(None);
    for seed in ["1", "2", "3"] {
        let args = paxos_args(&cmd, seed, &["--mode", "lockstep", "--nemesis", "all"]);
        let a = run(&args, results.path());
        let b = run(&args, results.path());
        assert_eq!(a.kind(), "valid", "seed {seed}: {}", a.output);
        assert_eq!(a.trace_hash(), b.trace_hash(), "seed {seed}");
        assert_eq!(
            std::fs::read(a.dir.join("history.jsonl")).expect("history"),
            std::fs::read(b.dir.join("history.jsonl")).expect("history"),
            "seed {seed}: same trace, same history"
        );
        if seed == "1" {
            let dir = a.dir.to_str().expect("utf8 path");
            let out = squall(&["replay", dir, "--times", "1"])
                .output()
                .expect("run squall replay");
            let said = text(&out);
            assert!(out.status.success(), "{said}");
            assert!(said.contains("reproduced 1 of 1"), "{said}");
        }
    }
}

/// Lockstep runs of three nodes under the `bridge-promise-crash` plan, in one results
/// directory.
struct Bridge {
    results: tempfile::TempDir,
    /// The plan's schedule file.
    plan: String,
    /// The node command the runs use unless told otherwise.
    cmd: String,
}

impl Bridge {
    /// The plan written into a fresh results directory, the node run with `bug`; `None`
    /// without python.
    fn new(bug: &str) -> Option<Bridge> {
        let results = python_results_dir()?;
        let plan = plan_file(results.path(), "bridge-promise-crash", &[]);
        let cmd = node_cmd(Some(bug));
        Some(Bridge { results, plan, cmd })
    }

    /// A run of the node with the bug on `seed`.
    fn run(&self, seed: &str) -> Run {
        self.run_cmd(&self.cmd, seed)
    }

    /// A run of the node command `cmd` on `seed`.
    fn run_cmd(&self, cmd: &str, seed: &str) -> Run {
        let args = [
            "--mode",
            "lockstep",
            "--schedule",
            self.plan.as_str(),
            "--nodes",
            "3",
            "--node-cmd",
            cmd,
            "--seed",
            seed,
        ];
        run(&args, self.results.path())
    }
}

#[test]
fn forgetful_acceptor_is_caught_when_killed_between_promise_and_accept() {
    let Some(bridge) = Bridge::new("memory-acceptor") else {
        return;
    };
    let mut caught = None;
    for seed in ["1", "2", "3"] {
        let r = bridge.run(seed);
        if r.kind() == "invalid" {
            caught = Some(r);
            break;
        }
    }
    let r = caught.expect("the forgetful acceptor survived seeds 1-3 of the plan");
    assert_eq!(r.code, 1, "{}", r.output);
    let reason = r.verdict["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("agreement violated") || reason.contains("stable-reads"),
        "{reason}"
    );

    // The same plan and seed on the correct node: the durable acceptor holds.
    let seed = r.verdict["seed"].to_string();
    let ok = bridge.run_cmd(&node_cmd(None), &seed);
    assert_eq!(ok.kind(), "valid", "{}", ok.output);
}

#[test]
fn wall_clock_backoff_breaks_lockstep_replay() {
    // The bridge plan makes n1 and n3 duel through n2 and kills n2 mid-ballot, so
    // ballots time out and back off, for as long as the clock says.
    let Some(bridge) = Bridge::new("wall-clock") else {
        return;
    };
    let a = bridge.run("1");
    let b = bridge.run("1");
    assert_ne!(
        a.trace_hash(),
        b.trace_hash(),
        "a node that reads the clock cannot repeat its trace"
    );
    let dir = a.dir.to_str().expect("utf8 path");
    let out = squall(&["replay", dir, "--times", "2", "--diff"])
        .output()
        .expect("run squall replay");
    let said = text(&out);
    assert!(!out.status.success(), "replay should not reproduce: {said}");
    assert!(!said.contains("reproduced 2 of 2"), "{said}");
    // `--diff` names the first record that differs: the same step of the same node, two
    // different lines (the clock-drawn backoff shows first in what the node writes).
    assert!(said.contains("first difference at record"), "{said}");
    let line = |prefix: &str| {
        said.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {said}"))
            .trim()
            .to_string()
    };
    let (expected, got) = (line("expected "), line("got "));
    assert_ne!(expected, got, "{said}");
    let head = |l: &str| l.split(':').next().unwrap_or_default().to_string();
    assert_eq!(
        head(&expected),
        head(&got),
        "same step, node and kind: {said}"
    );
    assert!(expected.starts_with("step "), "{said}");
}
