//! End to end: Maelstrom's `txn-rw-register` workload through `squall test`, on the
//! stdio node `examples/maelstrom/txn.py` (a Maelstrom node, unchanged).
//!
//! - the node is valid under read-committed alone (`--node-count 1`) and replicated on
//!   three nodes under partitions and kills (it answers every txn itself: totally
//!   available);
//! - its `aborted-writes` mistake is G1a under read-committed, and valid under
//!   `--consistency-models read-uncommitted`, which allows it;
//! - its `intermediate-writes` mistake is G1b under read-committed;
//! - an unknown model is a usage error;
//! - with `--fault-services` a partition cuts links between nodes and the kv services
//!   (a `lin-kv` proxy node, `kv_proxy.py`) and the run still ends with a verdict.
//!
//! The broken nodes' seeds are ones that caught them; docs/maelstrom-workloads.md has
//! how often they are caught over 20 seeds (`scripts/maelstrom-teeth.sh txn`).

mod common;

use std::path::PathBuf;

use common::{python_results_dir, repo_root, squall, text, verdict_of};
use serde_json::Value;

/// `squall test -w workload --bin examples/maelstrom/<node>` for 3 s with `flags` (then
/// `-- node_args`): exit code, output, and the run directory's verdict and metrics
/// (`Null` when no run was made); `None` without Python.
fn squall_test(
    workload: &str,
    node: &str,
    flags: &[&str],
    node_args: &[&str],
) -> Option<(i32, String, Value, Value)> {
    let results = python_results_dir()?;
    let bin: PathBuf = repo_root().join("examples/maelstrom").join(node);
    let (bin, res) = (bin.display(), results.path().display());
    let (bin, res) = (bin.to_string(), res.to_string());
    let mut args = vec!["test", "-w", workload, "--bin", &bin, "--time-limit", "3"];
    args.extend(["--results-dir", &res]);
    args.extend(flags);
    if !node_args.is_empty() {
        args.push("--");
        args.extend(node_args);
    }
    let out = squall(&args).output().expect("run squall");
    let latest = results.path().join("latest");
    let (verdict, metrics) = if latest.exists() {
        (verdict_of(&latest), common::metrics_of(&latest))
    } else {
        (Value::Null, Value::Null)
    };
    Some((
        out.status.code().unwrap_or(-1),
        text(&out),
        verdict,
        metrics,
    ))
}

/// [`squall_test`] of `txn-rw-register` on `txn.py` at 60 txns/s: code, output, verdict.
fn txn_run(flags: &[&str], node_args: &[&str]) -> Option<(i32, String, Value)> {
    let flags = [&["--rate", "60"], flags].concat();
    let (code, out, verdict, _) = squall_test("txn-rw-register", "txn.py", &flags, node_args)?;
    Some((code, out, verdict))
}

/// The `txn-rw-register` checker's entry of a run's verdict.
fn txn_checker(verdict: &Value) -> &Value {
    verdict["checkers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["checker"] == "txn-rw-register"))
        .expect("the txn checker judged the run")
}

#[test]
fn txn_node_alone_is_read_committed() {
    let Some((code, out, verdict)) = txn_run(&["--node-count", "1", "--seed", "1"], &[]) else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    let reason = txn_checker(&verdict)["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("read-committed: no anomaly"), "{reason}");
}

#[test]
fn replicated_txn_node_is_read_committed_under_partitions_and_kills() {
    let flags = [
        "--node-count",
        "3",
        "--nemesis",
        "partition,kill",
        "--recovery-time",
        "2s",
        "--seed",
        "2",
    ];
    let Some((code, out, _)) = txn_run(&flags, &[]) else {
        return;
    };
    assert_eq!(code, 0, "{out}");
}

/// `txn.py --bug bug` on two nodes, seed 1: asserts it is invalid by `anomaly` under
/// read-committed; the checker's entry (`None` without Python).
fn caught(bug: &str, anomaly: &str) -> Option<Value> {
    let flags = ["--node-count", "2", "--seed", "1"];
    let (code, out, verdict) = txn_run(&flags, &["--bug", bug])?;
    assert_eq!(code, 1, "{out}");
    let c = txn_checker(&verdict).clone();
    assert_eq!(c["evidence"]["property"], anomaly, "{c}");
    assert_eq!(c["evidence"]["model"], "read-committed", "{c}");
    assert!(c["reason"].as_str().unwrap_or("").contains(anomaly), "{c}");
    Some(c)
}

#[test]
fn reads_of_aborted_writes_are_g1a_unless_read_uncommitted_is_asked() {
    let Some(c) = caught("aborted-writes", "G1a") else {
        return;
    };
    let first = &c["evidence"]["anomalies"]["G1a"][0];
    assert_eq!(first["txns"][1]["outcome"], "fail", "{first}");
    let weaker = ["--node-count", "2", "--seed", "1"];
    let weaker = [&weaker[..], &["--consistency-models", "read-uncommitted"]].concat();
    let (code, out, _) = txn_run(&weaker, &["--bug", "aborted-writes"]).expect("python");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn intermediate_writes_exposed_between_micro_ops_are_g1b() {
    caught("intermediate-writes", "G1b");
}

#[test]
fn an_unknown_consistency_model_is_a_usage_error() {
    let Some((code, out, _)) = txn_run(&["--consistency-models", "strict-serializable"], &[])
    else {
        return;
    };
    assert_eq!(code, 254, "{out}");
    assert!(out.contains("unknown consistency model"), "{out}");
}

#[test]
fn a_partition_with_fault_services_cuts_service_links_and_the_run_ends_with_a_verdict() {
    let flags = "--node-count 3 --rate 40 --nemesis partition --nemesis-interval 0.5 \
                 --fault-services --recovery-time 2s --seed 1";
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let Some((code, out, verdict, metrics)) = squall_test("lin-kv", "kv_proxy.py", &flags, &[])
    else {
        return;
    };
    assert!((0..=2).contains(&code), "{out}");
    assert!(verdict["verdict"].is_string(), "{verdict}");
    let links = metrics["faults"]["links"]
        .as_object()
        .expect("link counters");
    let service_cuts: u64 = links
        .iter()
        .filter(|(name, _)| name.contains("lin-kv"))
        .map(|(_, c)| c["cut"].as_u64().unwrap_or(0))
        .sum();
    assert!(service_cuts > 0, "no service link was cut: {links:?}");
}

#[test]
fn fault_services_in_lockstep_is_a_usage_error() {
    let args = "test -w echo --bin /bin/cat --mode lockstep --fault-services";
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = squall(&args).output().expect("run squall");
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("--fault-services"), "{}", text(&out));
}
