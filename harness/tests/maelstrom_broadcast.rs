//! End to end: Maelstrom's `broadcast` and `kafka` workloads and squall's kv services,
//! run on the stdio test nodes of `examples/maelstrom/` (Maelstrom nodes, unchanged,
//! through `squall test`).
//!
//! - the gossip broadcast node gets its `topology` before any client op and is valid;
//!   its send-once mistake loses messages under a partition;
//! - the single-owner kafka node is valid; its offset-forgetting mistake gives an
//!   acknowledged offset out again after a kill;
//! - a lin-kv node that forwards to the `lin-kv` service is linearizable and the same
//!   node on `seq-kv` is not (stale reads); service traffic is in `messages.jsonl`.
//!
//! The broken nodes' seeds are ones that caught them (docs/maelstrom-workloads.md has
//! how often, over 20 seeds).

mod common;

use std::path::{Path, PathBuf};

use common::{history_lines, jsonl, python_results_dir, repo_root, squall, verdict_of};
use serde_json::Value;

/// Runs `workload` on `examples/maelstrom/<node>` for 3 s under `nemesis` with `seed`,
/// asserting its verdict is `want`: the run directory.
fn expect(
    results: &Path,
    workload: &str,
    node: &str,
    nemesis: &str,
    seed: &str,
    want: &str,
) -> PathBuf {
    let (script, node_args) = node.split_once(' ').unwrap_or((node, ""));
    let bin = repo_root().join("examples/maelstrom").join(script);
    let bin = bin.display().to_string();
    let results_arg = results.display().to_string();
    let mut args = vec!["test", "-w", workload, "--bin", &bin, "--nemesis", nemesis];
    args.extend([
        "--time-limit",
        "3",
        "--seed",
        seed,
        "--results-dir",
        &results_arg,
    ]);
    if !node_args.is_empty() {
        args.push("--");
        args.extend(node_args.split(' '));
    }
    let out = squall(&args).output().expect("run squall");
    let dir = results.join("latest");
    let verdict = verdict_of(&dir);
    assert_eq!(
        verdict["verdict"],
        want,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    dir
}

#[test]
fn gossip_broadcast_gets_its_topology_first_and_is_valid() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let dir = expect(
        results.path(),
        "broadcast",
        "broadcast.py",
        "none",
        "1",
        "valid",
    );
    let invokes: Vec<Value> = history_lines(&dir)
        .into_iter()
        .filter(|e| e["type"] == "invoke")
        .collect();
    let setup: Vec<&Value> = invokes
        .iter()
        .take_while(|e| e["f"] == "topology")
        .collect();
    assert_eq!(setup.len(), 5, "a topology to each of the 5 nodes first");
    assert_eq!(setup[0]["node"], "n0");
    assert!(setup[0]["value"]["topology"]["n0"].is_array());
}

#[test]
fn broadcast_that_sends_once_loses_messages_under_partition() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let dir = expect(
        results.path(),
        "broadcast",
        "broadcast.py --once",
        "partition",
        "1",
        "invalid",
    );
    let v = verdict_of(&dir);
    let checker = &v["checkers"][0];
    assert_eq!(checker["evidence"]["property"], "lost", "{v}");
}

#[test]
fn kafka_owner_is_valid_and_forgetting_offsets_is_caught_under_kill() {
    let Some(results) = python_results_dir() else {
        return;
    };
    expect(results.path(), "kafka", "kafka.py", "none", "1", "valid");
    expect(
        results.path(),
        "kafka",
        "kafka.py --forget-offsets",
        "kill",
        "1",
        "invalid",
    );
}

#[test]
fn lin_kv_service_is_linearizable_and_seq_kv_is_not() {
    let Some(results) = python_results_dir() else {
        return;
    };
    let dir = expect(
        results.path(),
        "lin-kv",
        "kv_proxy.py",
        "none",
        "3",
        "valid",
    );
    let to_service = jsonl(&dir.join("messages.jsonl"))
        .iter()
        .filter(|m| m["dest"] == "lin-kv")
        .count();
    assert!(to_service > 0, "service traffic is logged");
    expect(
        results.path(),
        "lin-kv",
        "kv_proxy.py --service seq-kv",
        "none",
        "3",
        "invalid",
    );
}
