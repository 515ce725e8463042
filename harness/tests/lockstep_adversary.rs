//! `--scheduler adversary` end to end: with no fault at all, only by choosing when each
//! message arrives (every one of them within the bound), it keeps a Paxos instance
//! undecided through many more ballots than the random scheduler needs on the same seed,
//! and it splits a majority vote so that the instance never decides. It refuses faults.

mod common;

use common::{assert_exit, metrics_of, run_ok, verdict_of, WRITE_ONCE_PAXOS};
use serde_json::Value;

/// A lockstep write-once run with `--nemesis none` and `scheduler`: verdict and metrics.
fn run(scheduler: &str, extra: &[&str]) -> (Value, Value, String) {
    let mut args = vec![
        "run",
        "--mode",
        "lockstep",
        "--nemesis",
        "none",
        "--scheduler",
        scheduler,
        "--seed",
        "1",
    ];
    args.extend_from_slice(extra);
    let (out, dir) = run_ok(&args);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    (verdict_of(&dir), metrics_of(&dir), said)
}

fn mean_ballots(metrics: &Value) -> f64 {
    metrics["instances"]["ballots_to_decide"]["mean"]
        .as_f64()
        .expect("ballots_to_decide.mean")
}

#[test]
fn adversary_duels_paxos_for_ten_times_the_ballots_with_no_message_lost() {
    let mut flags = WRITE_ONCE_PAXOS.to_vec();
    flags.extend(["--time-limit", "5s"]);
    let (rv, rm, _) = run("random", &flags);
    let (av, am, said) = run("adversary", &flags);
    assert_eq!(rv["verdict"], "valid", "{rv}");
    assert_eq!(av["verdict"], "valid", "safe under any order: {av}");
    let (random, adversary) = (mean_ballots(&rm), mean_ballots(&am));
    assert!(
        random >= 1.0,
        "random needs a ballot per instance: {random}"
    );
    assert!(
        adversary >= 10.0 * random,
        "adversary {adversary} ballots per instance vs random {random}"
    );
    let longest = &am["instances"]["longest_undecided"];
    assert!(longest["ballots"].as_u64().unwrap() >= 10, "{longest}");
    assert!(said.contains("adversary kept instance"), "{said}");
    // Nothing dropped, duplicated or held by a fault; every message the adversary took
    // was delivered but those still in flight when the nodes stopped.
    let links = am["faults"]["links"]
        .as_object()
        .expect("per-link counters");
    assert!(!links.is_empty());
    for (link, c) in links {
        for counter in ["cut", "dropped", "duplicated", "held"] {
            assert_eq!(c[counter].as_u64(), Some(0), "{link} {counter}: {c}");
        }
    }
    let c = &am["adversary"]["counts"];
    let (messages, delivered) = (
        c["messages"].as_u64().unwrap(),
        c["delivered"].as_u64().unwrap(),
    );
    assert_eq!(
        messages - delivered,
        am["adversary"]["pending_at_end"].as_u64().unwrap()
    );
    assert!(c["held"].as_u64().unwrap() > 0);
    assert!(
        c["max_wait_us"].as_u64().unwrap() <= 2_000_000,
        "the bound holds: {c}"
    );
    assert_eq!(am["scheduler"], "adversary");
    assert!(rm["adversary"].is_null());
}

#[test]
fn adversary_splits_a_majority_vote_without_a_fault() {
    let flags = [
        "--algorithm",
        "majority-vote",
        "--nodes",
        "4",
        "--contention",
        "2",
        "--time-limit",
        "2s",
    ];
    let (rv, _, _) = run("random", &flags);
    assert_eq!(rv["verdict"], "valid", "{rv}");
    let (av, am, _) = run("adversary", &flags);
    assert_eq!(av["verdict"], "invalid", "{av}");
    let reason = av["reason"].as_str().unwrap();
    assert!(reason.contains("no termination"), "{reason}");
    assert!(
        reason.contains("faults active while it was proposed: none"),
        "{reason}"
    );
    assert_eq!(am["instances"]["longest_undecided"]["decided"], false);
    assert!(am["adversary"]["counts"]["balanced"].as_u64().unwrap() > 0);
}

#[test]
fn adversary_refuses_faults_and_free_running() {
    let (out, _) = run_ok(&[
        "run",
        "--mode",
        "lockstep",
        "--scheduler",
        "adversary",
        "--nemesis",
        "partition",
    ]);
    assert_exit(&out, 254);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--nemesis none") && err.contains("partition"),
        "{err}"
    );
    let (out, _) = run_ok(&["run", "--scheduler", "adversary", "--nemesis", "none"]);
    assert_exit(&out, 254);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mode lockstep"));
}
