//! Regression tests for verdicts that used to be wrong: each runs real node processes
//! through `squall run` and asserts what the run must conclude.

mod common;

use common::*;
use serde_json::Value;

fn ops_of(dir: &std::path::Path, f: &str, ty: &str) -> Vec<Value> {
    history_lines(dir)
        .into_iter()
        .filter(|e| e["f"] == f && e["type"] == ty)
        .collect()
}

/// A node that answers `propose` with `echo_ok` decided nothing: the ops are `info` and
/// the node is faulty — never "agreement violated" on values that only the clients made
/// up. (Nothing was ever decided, so the run fails termination, honestly.)
#[test]
fn a_reply_of_the_wrong_type_is_a_protocol_fault_not_a_decision() {
    if !python_available() {
        return;
    }
    let cmd = python_cmd("harness/tests/nodes/wrong_reply.py", "");
    let (out, dir) = run_ok(&[
        "run",
        "--workload",
        "write-once",
        "--node-cmd",
        &cmd,
        "--nodes",
        "3",
        "--nemesis",
        "none",
        "--time-limit",
        "1s",
        "--recovery-time",
        "1s",
        "--op-timeout",
        "300ms",
        "--seed",
        "3",
    ]);
    let verdict = verdict_of(&dir);
    for c in verdict["checkers"].as_array().expect("checkers") {
        let property = &c["evidence"]["property"];
        assert!(
            property != "agreement" && property != "validity",
            "{}\n{verdict}",
            text(&out)
        );
    }
    let faulty = verdict["faulty_nodes"].to_string();
    assert!(
        faulty.contains("answered a propose request with echo_ok"),
        "{faulty}"
    );
    assert!(ops_of(&dir, "propose", "ok").is_empty());
    let info = ops_of(&dir, "propose", "info");
    assert!(!info.is_empty());
    assert!(info[0]["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("protocol fault")));
}

/// `squall check` on a run's own `history.jsonl` gives the run's verdict: the same
/// checkers, the same rule for local null reads, the same settling. Valid stays valid
/// (a valid run's history used to be invalid under `squall check`), and invalid stays
/// invalid.
#[test]
fn squall_check_on_a_runs_history_gives_the_runs_verdict() {
    for (bug, want) in [(None, "valid"), (Some("small-quorum"), "invalid")] {
        let mut args = argv("run --nemesis partition --time-limit 3s --recovery-time 2s --seed 1");
        if let Some(b) = bug {
            args.extend(["--bug", b]);
        }
        let (out, dir) = run_ok(&args);
        let verdict = verdict_of(&dir);
        if verdict["verdict"] != want {
            // small-quorum is not caught on every seed; the run's verdict is what
            // `squall check` must repeat either way.
            eprintln!("run gave {} ({})", verdict["verdict"], text(&out));
        }
        let history = dir.join("history.jsonl");
        let checked = squall(&["check", "--verbose", history.to_str().expect("utf8")])
            .output()
            .expect("squall check");
        let printed = text(&checked);
        let word = verdict["verdict"].as_str().expect("a verdict");
        assert!(
            printed.contains(&format!("\t{word}\t")),
            "run said {word}, check said:\n{printed}"
        );
        assert_eq!(
            checked.status.code(),
            out.status.code(),
            "run and check exit alike: {printed}"
        );
        assert!(!printed.contains("note\tverdict.json says"), "{printed}");
        // lincheck alone on the same file applies the run's rule for null reads.
        let alone = squall(&[
            "check",
            "--model",
            "write-once",
            history.to_str().expect("utf8"),
        ])
        .output()
        .expect("squall check --model");
        if word == "valid" {
            assert_exit(&alone, 0);
        }
    }
}
