//! The replicated state machines (`raft`, `multi-paxos`) in the in-process simulator:
//! the happy path, recovery, and each mutant's failure shown deterministically where a
//! scenario can force it.
//!
//! Scenarios end in [`check`], which renders every client answer in request order
//! (`w` write_ok, `c` cas_ok, `rV` read_ok V, `eC` error code C, `-` no answer) so the
//! expected line is exact: the simulator is deterministic.

use node::algo::raft::{self, Raft};
use node::algo::Algorithm;
use node::sim::{Chaos, Options, Sim};
use proto::ops::{ClientOp, ClientReply};

/// The answers to `requests`, one token each.
fn answers<A: Algorithm>(sim: &Sim<A>, requests: &[u64]) -> String {
    let tokens: Vec<String> = requests
        .iter()
        .map(|id| match sim.reply(*id) {
            None => "-".into(),
            Some(ClientReply::WriteOk) => "w".into(),
            Some(ClientReply::CasOk) => "c".into(),
            Some(ClientReply::ReadOk { value: Some(v) }) => format!("r{v}"),
            Some(ClientReply::ReadOk { value: None }) => "rnull".into(),
            Some(ClientReply::Error { code, .. }) => format!("e{}", code.code()),
            Some(other) => format!("{other:?}"),
        })
        .collect();
    tokens.join(" ")
}

#[track_caller]
fn check<A: Algorithm>(sim: &Sim<A>, requests: &[u64], expected: &str) {
    let got = answers(sim, requests);
    assert_eq!(got, expected, "\n got: {got}\nwant: {expected}");
}

fn write(key: u64, value: u64) -> ClientOp {
    ClientOp::Write { key, value }
}

fn read(key: u64) -> ClientOp {
    ClientOp::Read { key }
}

fn cas(key: u64, from: u64, to: u64) -> ClientOp {
    ClientOp::Cas { key, from, to }
}

fn raft_sim(n: usize, seed: u64, bugs: &[&str]) -> Sim<Raft> {
    let mut options = Options::default();
    for b in bugs {
        options = options.bug(b);
    }
    Sim::with_options(n, seed, options).expect("raft accepts its bugs")
}

fn raft_leader(sim: &Sim<Raft>) -> Option<String> {
    let leaders: Vec<&String> = sim
        .ids()
        .iter()
        .filter(|id| sim.algo(id).is_some_and(Raft::is_leader))
        .collect();
    leaders
        .into_iter()
        .max_by_key(|id| sim.algo(id).map(Raft::term))
        .cloned()
}

/// Every pair of live replicas agrees on their common committed prefix.
fn raft_committed_agree(sim: &Sim<Raft>) -> bool {
    let logs: Vec<&[raft::Entry]> = sim
        .ids()
        .iter()
        .filter_map(|id| sim.algo(id))
        .map(Raft::committed)
        .collect();
    logs.iter().all(|a| {
        logs.iter().all(|b| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        })
    })
}

#[test]
fn raft_serves_reads_writes_and_cas_through_any_node() {
    let mut sim = raft_sim(3, 1, &[]);
    sim.run_for(2_000);
    let leader = raft_leader(&sim).expect("a leader after 2 s");
    let follower = sim.ids().iter().find(|id| **id != leader).cloned().unwrap();
    let mut reqs = vec![sim.client(&follower, read(1))];
    sim.run_for(100);
    reqs.push(sim.client(&follower, write(1, 10)));
    sim.run_for(100);
    reqs.push(sim.client(&leader, cas(1, 9, 11)));
    sim.run_for(100);
    reqs.push(sim.client(&leader, cas(1, 10, 11)));
    sim.run_for(100);
    reqs.push(sim.client(&follower, read(1)));
    sim.run_for(100);
    check(&sim, &reqs, "e20 w e22 c r11");
}

#[test]
fn raft_recovers_its_log_after_every_node_restarts() {
    let mut sim = raft_sim(3, 2, &[]);
    sim.run_for(2_000);
    let leader = raft_leader(&sim).expect("a leader");
    let w = sim.client(&leader, write(4, 40));
    sim.run_for(200);
    for id in sim.ids().to_vec() {
        sim.crash(&id);
    }
    for id in sim.ids().to_vec() {
        sim.restart(&id);
    }
    sim.run_for(3_000);
    let leader = raft_leader(&sim).expect("a leader again");
    let r = sim.client(&leader, read(4));
    sim.run_for(200);
    check(&sim, &[w, r], "w r40");
}

#[test]
fn raft_committed_logs_agree_under_chaos() {
    for seed in 0..5 {
        let mut sim = raft_sim(5, seed, &[]);
        let chaos = Chaos::default();
        let mut reqs = Vec::new();
        for i in 0..60 {
            let node = format!("n{}", 1 + i % 5);
            reqs.push(sim.client(&node, write(i % 3, 100 + i)));
            sim.run_random(&chaos, 50);
            assert!(raft_committed_agree(&sim), "seed {seed}, step {i}");
        }
        sim.heal();
        sim.run_for(2_000);
        assert!(raft_committed_agree(&sim), "seed {seed}");
        let answered = reqs.iter().filter(|r| sim.reply(**r).is_some()).count();
        assert!(
            answered > 10,
            "seed {seed}: only {answered} of 60 writes answered"
        );
    }
}
