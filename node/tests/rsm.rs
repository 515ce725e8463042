//! The replicated state machines (`raft`, `multi-paxos`) in the in-process simulator:
//! the happy path, recovery, and each mutant's failure shown deterministically where a
//! scenario can force it.
//!
//! Scenarios end in [`check`], which renders every client answer in request order
//! (`w` write_ok, `c` cas_ok, `rV` read_ok V, `eC` error code C, `-` no answer) so the
//! expected line is exact: the simulator is deterministic.

use node::algo::multi_paxos::{self, MultiPaxos};
use node::algo::raft::{self, Raft};
use node::algo::Algorithm;
use node::sim::{Chaos, Options, Sim, Verdict};
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

/// Once a leader is elected: a read of a missing key (20), a write through a follower,
/// a CAS with the wrong `from` (22) and the right one at the leader, and a read through
/// the follower that sees the CAS.
fn serves_through_any_node<A: Algorithm>(
    mut sim: Sim<A>,
    leader_of: fn(&Sim<A>) -> Option<String>,
) {
    sim.run_for(2_000);
    let leader = leader_of(&sim).expect("a leader after 2 s");
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
fn raft_serves_reads_writes_and_cas_through_any_node() {
    serves_through_any_node(raft_sim(3, 1, &[]), raft_leader);
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

/// A 3-node raft cluster with a leader that has written 1 to key 1, then the leader cut
/// off (messages dropped) while the other two elect a new leader and write 2. Returns
/// the old leader's name.
fn raft_deposed_leader(sim: &mut Sim<Raft>) -> (String, Vec<u64>) {
    sim.run_for(2_000);
    let old = raft_leader(sim).expect("a leader");
    let mut reqs = vec![sim.client(&old, write(1, 1))];
    sim.run_for(200);
    sim.partition(&[old.as_str()], false);
    sim.run_for(2_000);
    let new = sim
        .ids()
        .iter()
        .find(|id| **id != old && sim.algo(id).is_some_and(Raft::is_leader))
        .cloned()
        .expect("a new leader on the majority side");
    reqs.push(sim.client(&new, write(1, 2)));
    sim.run_for(200);
    (old, reqs)
}

#[test]
fn raft_deposed_leader_does_not_answer_reads_from_its_own_state() {
    let mut sim = raft_sim(3, 3, &[]);
    let (old, mut reqs) = raft_deposed_leader(&mut sim);
    reqs.push(sim.client(&old, read(1)));
    sim.run_for(200);
    check(&sim, &reqs, "w w -");
}

#[test]
fn raft_bug_stale_read_answers_an_overwritten_value() {
    let mut sim = raft_sim(3, 3, &["stale-read"]);
    let (old, mut reqs) = raft_deposed_leader(&mut sim);
    reqs.push(sim.client(&old, read(1)));
    sim.run_for(200);
    check(&sim, &reqs, "w w r1");
}

/// A write committed by the leader and one follower while the third node is cut off
/// and runs up its term; after the heal the stale node's higher term forces an election.
fn raft_stale_candidate(bugs: &[&str]) -> (Sim<Raft>, Vec<u64>) {
    let mut sim = raft_sim(3, 4, bugs);
    sim.run_for(2_000);
    let leader = raft_leader(&sim).expect("a leader");
    let stale = sim.ids().iter().find(|id| **id != leader).cloned().unwrap();
    sim.partition(&[stale.as_str()], false);
    let mut reqs = vec![sim.client(&leader, write(7, 70))];
    sim.run_for(3_000);
    sim.heal();
    // The stale node stands first: its term is the highest after the partition.
    sim.run_for(3_000);
    let leader = raft_leader(&sim).expect("a leader after the heal");
    reqs.push(sim.client(&leader, read(7)));
    sim.run_for(300);
    (sim, reqs)
}

#[test]
fn raft_up_to_date_check_keeps_a_committed_write() {
    let (sim, reqs) = raft_stale_candidate(&[]);
    check(&sim, &reqs, "w r70");
    assert!(raft_committed_agree(&sim));
}

#[test]
fn raft_bug_vote_any_log_elects_a_stale_node_that_drops_a_committed_write() {
    let (sim, reqs) = raft_stale_candidate(&["vote-any-log"]);
    check(&sim, &reqs, "w e20");
}

fn paxos_sim(n: usize, seed: u64, bugs: &[&str]) -> Sim<MultiPaxos> {
    paxos_sim_with(n, seed, bugs, Options::default())
}

fn paxos_sim_with(n: usize, seed: u64, bugs: &[&str], mut options: Options) -> Sim<MultiPaxos> {
    for b in bugs {
        options = options.bug(b);
    }
    Sim::with_options(n, seed, options).expect("multi-paxos accepts its bugs")
}

fn paxos_leader(sim: &Sim<MultiPaxos>) -> Option<String> {
    sim.ids()
        .iter()
        .filter(|id| sim.algo(id).is_some_and(MultiPaxos::is_leader))
        .max_by_key(|id| sim.algo(id).and_then(|a| a.ballot().cloned()))
        .cloned()
}

#[test]
fn multi_paxos_serves_reads_writes_and_cas_through_any_node() {
    serves_through_any_node(paxos_sim(3, 1, &[]), paxos_leader);
}

#[test]
fn multi_paxos_chosen_slots_agree_under_chaos() {
    for seed in 0..5 {
        let mut sim = paxos_sim(5, seed, &[]);
        let chaos = Chaos::default();
        for i in 0..60 {
            let node = format!("n{}", 1 + i % 5);
            sim.client(&node, write(i % 3, 100 + i));
            sim.run_random(&chaos, 50);
        }
        sim.heal();
        sim.run_for(2_000);
        let views: Vec<&std::collections::BTreeMap<u64, node::algo::raft::kv::Command>> = sim
            .ids()
            .iter()
            .filter_map(|id| sim.algo(id))
            .map(MultiPaxos::chosen)
            .collect();
        for a in &views {
            for b in &views {
                for (slot, c) in a.iter() {
                    if let Some(d) = b.get(slot) {
                        assert_eq!(c, d, "seed {seed}: slot {slot} chose two commands");
                    }
                }
            }
        }
    }
}

/// The leader's accepts for slot 0 reach only itself, its accept for slot 1 a majority;
/// then it crashes: the next leader finds slot 1 accepted and slot 0 empty. Batching is
/// off, so each slot has its own `accept`.
fn paxos_hole(bugs: &[&str]) -> (Sim<MultiPaxos>, Vec<u64>) {
    let unbatched = Options::default().param("batch_ms", "0");
    let mut sim = paxos_sim_with(3, 5, bugs, unbatched);
    sim.run_for(2_000);
    let leader = paxos_leader(&sim).expect("a leader");
    let l = leader.clone();
    sim.set_router(move |e, _| match &e.msg {
        multi_paxos::Msg::Accept { slots, .. }
            if slots.iter().any(|(s, _)| *s == 0) && e.to != l =>
        {
            Verdict::Drop
        }
        _ => Verdict::Deliver { after_ms: 1 },
    });
    let mut reqs = vec![sim.client(&leader, write(1, 1))];
    reqs.push(sim.client(&leader, write(2, 2)));
    sim.run_for(100);
    sim.crash(&leader);
    sim.reset_router();
    sim.run_for(3_000);
    let next = paxos_leader(&sim).expect("a new leader");
    reqs.push(sim.client(&next, read(2)));
    sim.run_for(500);
    (sim, reqs)
}

#[test]
fn multi_paxos_new_leader_fills_a_hole_with_a_noop() {
    let (sim, reqs) = paxos_hole(&[]);
    check(&sim, &reqs, "- - r2");
}

#[test]
fn multi_paxos_bug_no_hole_fill_stops_applying() {
    let (sim, reqs) = paxos_hole(&["no-hole-fill"]);
    check(&sim, &reqs, "- - -");
}

/// A follower cut off while the leader writes 30 to key 3; after the heal it is asked
/// to read key 3 and, its ballot the highest, leads.
fn paxos_isolated_follower(bugs: &[&str]) -> (Sim<MultiPaxos>, Vec<u64>) {
    let mut sim = paxos_sim(3, 6, bugs);
    sim.run_for(2_000);
    let leader = paxos_leader(&sim).expect("a leader");
    let stale = sim.ids().iter().find(|id| **id != leader).cloned().unwrap();
    sim.partition(&[stale.as_str()], false);
    let mut reqs = vec![sim.client(&leader, write(3, 30))];
    sim.run_for(3_000);
    sim.heal();
    sim.run_for(1_000);
    reqs.push(sim.client(&stale, read(3)));
    sim.run_for(1_000);
    (sim, reqs)
}

#[test]
fn multi_paxos_phase1_finds_what_was_chosen_behind_a_nodes_back() {
    let (sim, reqs) = paxos_isolated_follower(&[]);
    check(&sim, &reqs, "w r30");
}

#[test]
fn multi_paxos_bug_skip_phase1_chooses_a_slot_twice() {
    let (sim, reqs) = paxos_isolated_follower(&["skip-phase1"]);
    check(&sim, &reqs, "w e20");
}

#[test]
fn multi_paxos_bug_leader_local_read_answers_an_overwritten_value() {
    let mut sim = paxos_sim(3, 7, &["leader-local-read"]);
    sim.run_for(2_000);
    let old = paxos_leader(&sim).expect("a leader");
    let mut reqs = vec![sim.client(&old, write(1, 1))];
    sim.run_for(200);
    sim.partition(&[old.as_str()], false);
    sim.run_for(2_000);
    let new = sim
        .ids()
        .iter()
        .find(|id| **id != old && sim.algo(id).is_some_and(MultiPaxos::is_leader))
        .cloned()
        .expect("a new leader on the majority side");
    reqs.push(sim.client(&new, write(1, 2)));
    sim.run_for(200);
    reqs.push(sim.client(&old, read(1)));
    sim.run_for(200);
    check(&sim, &reqs, "w w r1");
}

/// Which messages a Figure 8 phase lets through: `(from, to, msg) -> deliver?`.
type Rule = Box<dyn Fn(&str, &str, &raft::Msg) -> bool>;

/// Runs until a leader exists among `among`; returns it.
fn raft_elect(sim: &mut Sim<Raft>, among: &[&str]) -> String {
    for _ in 0..1_000 {
        sim.run_for(10);
        if let Some(l) = among
            .iter()
            .find(|id| sim.algo(id).is_some_and(Raft::is_leader))
        {
            return l.to_string();
        }
    }
    panic!("no leader among {among:?}");
}

/// Figure 8 of the Raft paper: an entry of an old term reaches a majority under a later
/// leader whose own entries (its no-op, for the correct algorithm) do not; a leader that counts replicas of that
/// old entry commits it, and a later leader whose log ends in a higher term overwrites
/// it. Returns the contested index (X's), what the leader of the third phase committed
/// (its commit index, the term of its entry there), and the term of the entry there in
/// the final leader's committed log.
fn raft_figure8(bugs: &[&str]) -> (u64, (u64, u64), Option<u64>) {
    let mut sim = raft_sim(5, 8, bugs);
    let rule: std::rc::Rc<std::cell::RefCell<Rule>> =
        std::rc::Rc::new(std::cell::RefCell::new(Box::new(|_, _, _| true)));
    let r = rule.clone();
    sim.set_router(move |e, _| {
        if (r.borrow())(&e.from, &e.to, &e.msg) {
            Verdict::Deliver { after_ms: 1 }
        } else {
            Verdict::Drop
        }
    });
    let set = |rule: &std::rc::Rc<std::cell::RefCell<Rule>>, f: Rule| *rule.borrow_mut() = f;
    let is_append = |m: &raft::Msg| matches!(m, raft::Msg::AppendEntries { .. });
    // (a) A leads; its entry X (index 2) reaches B only.
    let a = raft_elect(&mut sim, &["n1", "n2", "n3", "n4", "n5"]);
    sim.run_for(200);
    let ids: Vec<String> = sim.ids().to_vec();
    let b = ids.iter().find(|id| **id != a).cloned().unwrap();
    let rest: Vec<String> = ids
        .iter()
        .filter(|id| **id != a && **id != b)
        .cloned()
        .collect();
    let (a2, b2) = (a.clone(), b.clone());
    set(
        &rule,
        Box::new(move |f, t, _| {
            [&a2, &b2].contains(&&f.to_string()) && [&a2, &b2].contains(&&t.to_string())
        }),
    );
    sim.client(&a, write(1, 1));
    sim.run_for(100);
    let x_term = sim.algo(&a).expect("up").term();
    let xi = sim.algo(&a).expect("up").last_index() as usize;
    // (b) A crashes; one of the rest is elected without B and appends its no-op
    // (index 2, a later term) alone: every append_entries is lost.
    sim.crash(&a);
    let rest2 = rest.clone();
    set(
        &rule,
        Box::new(move |f, t, m| {
            !is_append(m) && rest2.iter().any(|r| r == f) && rest2.iter().any(|r| r == t)
        }),
    );
    let refs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let e = raft_elect(&mut sim, &refs);
    sim.client(&e, write(1, 2));
    sim.run_for(50);
    sim.crash(&e);
    // (c) A restarts; A or B leads with C's vote, and reaches only C with its entries:
    // X on A, B and C, the new leader's no-op (index 3) on it and C only.
    sim.restart(&a);
    let c = rest.iter().find(|id| **id != e).cloned().unwrap();
    let group = vec![a.clone(), b.clone(), c.clone()];
    let (g, a3, b3) = (group.clone(), a.clone(), b.clone());
    set(
        &rule,
        Box::new(move |f, t, m| {
            let newer = match m {
                raft::Msg::AppendEntries { entries, .. } => entries.iter().any(|e| e.term > x_term),
                _ => false,
            };
            g.iter().any(|x| x == f) && g.iter().any(|x| x == t) && !(newer && (t == a3 || t == b3))
        }),
    );
    let w = raft_elect(&mut sim, &[a.as_str(), b.as_str()]);
    sim.run_for(50);
    let wn = sim.algo(&w).expect("up");
    let third = (
        wn.commit_index(),
        wn.committed().get(xi - 1).map_or(0, |e| e.term),
    );
    // (d) W crashes; E restarts and is elected by the other of A/B and D, whose logs end
    // in an older term; it overwrites index 2.
    sim.crash(&w);
    sim.restart(&e);
    let other = if w == a { b.clone() } else { a.clone() };
    let d = rest
        .iter()
        .find(|id| **id != e && **id != c)
        .cloned()
        .unwrap();
    let group = [e.clone(), other.clone(), d.clone()];
    set(
        &rule,
        Box::new(move |f, t, _| group.iter().any(|x| x == f) && group.iter().any(|x| x == t)),
    );
    let last = raft_elect(&mut sim, &[e.as_str(), other.as_str(), d.as_str()]);
    sim.run_for(500);
    let final_term = sim
        .algo(&last)
        .and_then(|n| n.committed().get(xi - 1).map(|e| e.term));
    (xi as u64, third, final_term)
}

#[test]
fn raft_figure8_an_old_term_entry_is_not_committed_by_counting() {
    let (xi, (commit, _), _) = raft_figure8(&[]);
    assert!(
        commit < xi,
        "the third leader must not commit index {xi} by counting"
    );
}

#[test]
fn raft_bug_commit_old_term_commits_an_entry_a_later_leader_overwrites() {
    let (xi, (commit, term_then), term_later) = raft_figure8(&["commit-old-term"]);
    assert!(
        commit >= xi,
        "the third leader committed index {xi} (commit {commit})"
    );
    assert_ne!(
        Some(term_then),
        term_later,
        "index {xi} committed twice, with different entries"
    );
}
