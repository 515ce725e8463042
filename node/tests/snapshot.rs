//! Chandy-Lamport on the in-process simulated network: the seed's algorithm replayed step
//! by step (three processes, one snapshot, every message held and delivered by hand),
//! then the same steps against the mutants, and a reordered link against the correct
//! algorithm.
//!
//! Every scenario ends in [`check`], which renders the snapshot as the reports give it:
//! each node's recorded balance, each non-empty channel, and the total, which must be 300
//! (three accounts of 100) for a snapshot that is right.

use std::collections::BTreeMap;

use node::algo::chandy_lamport::{ChandyLamport, Msg};
use node::sim::{Options, Sim, Verdict};
use proto::ops::{ClientOp, ClientReply};
use proto::{Errorness, Report};

type Bank = Sim<ChandyLamport>;

fn bank(bug: Option<&str>) -> Bank {
    let options = bug.map_or_else(Options::default, |b| Options::default().bug(b));
    let mut sim = Sim::with_options(3, 7, options).expect("known bug");
    // Nothing moves unless the test delivers it.
    sim.set_router(|_, _| Verdict::Hold);
    sim
}

fn transfer(sim: &mut Bank, from: &str, to: &str, amount: u64) {
    let id = sim.client(
        from,
        ClientOp::Transfer {
            to: to.into(),
            amount,
        },
    );
    assert!(matches!(
        sim.reply(id),
        Some(ClientReply::TransferOk { .. })
    ));
}

fn snapshot(sim: &mut Bank, at: &str) -> String {
    let id = sim.client(at, ClientOp::Snapshot);
    match sim.reply(id) {
        Some(ClientReply::SnapshotOk { id }) => id.clone(),
        other => panic!("snapshot refused: {other:?}"),
    }
}

/// Delivers the first held message on `from -> to` that is a marker (`true`) or a
/// transfer (`false`).
fn deliver(sim: &mut Bank, from: &str, to: &str, marker: bool) {
    let ids = sim
        .select(|e| e.from == from && e.to == to && matches!(e.msg, Msg::Marker { .. }) == marker);
    let id = *ids
        .first()
        .unwrap_or_else(|| panic!("nothing held on {from}->{to}"));
    assert!(sim.deliver(id));
}

/// Delivers every held message, oldest first, until none is left.
fn drain(sim: &mut Bank) {
    while let Some(id) = sim.select(|_| true).first().copied() {
        sim.deliver(id);
    }
}

/// The snapshot as reported: `n1=90 n2=90 n3=100 | n2->n1=20 | total 300`.
fn render(sim: &Bank) -> String {
    let mut balances = BTreeMap::new();
    let mut channels = BTreeMap::new();
    for r in sim.reports() {
        match &r.report {
            Report::SnapshotLocal { balance, .. } => {
                balances.insert(r.node.clone(), *balance);
            }
            Report::SnapshotChannel { from, amount, .. } => {
                channels.insert(format!("{from}->{}", r.node), *amount);
            }
            _ => {}
        }
    }
    let total: u64 = balances.values().sum::<u64>() + channels.values().sum::<u64>();
    let b: Vec<String> = balances.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let c: Vec<String> = channels
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let chans = if c.is_empty() {
        "-".into()
    } else {
        c.join(" ")
    };
    format!("{} | {chans} | total {total}", b.join(" "))
}

fn check(sim: &Bank, expected: &str) {
    assert_eq!(render(sim), expected);
    let channels = sim
        .reports()
        .iter()
        .filter(|r| matches!(r.report, Report::SnapshotChannel { .. }))
        .count();
    assert_eq!(channels, 6, "every channel of three nodes is recorded once");
}

/// The seed's steps: P1 initiates; a message sent before a process records and received
/// after its receiver recorded is the channel's state.
fn seed_steps(sim: &mut Bank) {
    transfer(sim, "n1", "n2", 10); // before the cut: travels ahead of n1's marker
    let id = snapshot(sim, "n1"); // P1 records its own state, markers on C12 and C13
    assert_eq!(id, "n1#1");
    transfer(sim, "n2", "n1", 20); // n2 has not seen a marker: inside the cut, in transit
    deliver(sim, "n1", "n2", false); // 10 reaches n2 ahead of the marker (FIFO)
    deliver(sim, "n1", "n2", true); // first marker at n2: records, C12 empty, markers out
    deliver(sim, "n2", "n1", false); // 20 reaches n1, which records it on C21
    deliver(sim, "n2", "n1", true); // closes C21 = {20}
    drain(sim); // n3 records on n1's marker; the other channels close empty
}

#[test]
fn the_seeds_snapshot_records_the_money_in_transit() {
    let mut sim = bank(None);
    seed_steps(&mut sim);
    check(&sim, "n1=90 n2=90 n3=100 | n2->n1=20 | total 300");
    assert_eq!(sim.algo("n1").map(ChandyLamport::in_progress), Some(0));
}

#[test]
fn no_channel_state_loses_the_money_in_transit() {
    let mut sim = bank(Some("no-channel-state"));
    seed_steps(&mut sim);
    check(&sim, "n1=90 n2=90 n3=100 | - | total 280");
}

#[test]
fn late_record_counts_the_transfer_behind_the_marker_twice() {
    let mut sim = bank(Some("late-record"));
    let _ = snapshot(&mut sim, "n1"); // n1 records 100
    transfer(&mut sim, "n1", "n2", 10); // after the cut: behind the marker on C12
    deliver(&mut sim, "n1", "n2", true); // the mutant waits ...
    deliver(&mut sim, "n1", "n2", false); // ... applies the 10, then records 110
    drain(&mut sim);
    check(&sim, "n1=100 n2=110 n3=100 | - | total 310");
}

#[test]
fn a_transfer_that_overtakes_the_marker_breaks_the_cut() {
    // The same steps as the late-record case with a correct node, but the link reorders:
    // the 10 sent after n1 recorded reaches n2 before n1's marker.
    let mut sim = bank(None);
    let _ = snapshot(&mut sim, "n1");
    transfer(&mut sim, "n1", "n2", 10);
    deliver(&mut sim, "n1", "n2", false);
    deliver(&mut sim, "n1", "n2", true);
    drain(&mut sim);
    check(&sim, "n1=100 n2=110 n3=100 | - | total 310");
    let n2 = sim.reports().iter().find_map(|r| match &r.report {
        Report::SnapshotLocal { received_max, .. } if r.node == "n2" => Some(received_max),
        _ => None,
    });
    assert_eq!(
        n2.and_then(|m| m.get("n1")),
        Some(&1),
        "n2 applied #1 inside the cut"
    );
}

#[test]
fn refuses_an_overdraft_and_a_transfer_to_itself_definitely() {
    let mut sim = bank(None);
    for op in [
        ClientOp::Transfer {
            to: "n2".into(),
            amount: 101,
        },
        ClientOp::Transfer {
            to: "n1".into(),
            amount: 1,
        },
    ] {
        let id = sim.client("n1", op);
        match sim.reply(id) {
            Some(ClientReply::Error { code, .. }) => {
                assert_eq!(code.errorness(), Errorness::Definite)
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    assert_eq!(sim.algo("n1").map(ChandyLamport::balance), Some(100));
}

#[test]
fn concurrent_snapshots_from_every_node_all_conserve_money() {
    let mut sim = bank(None);
    sim.reset_router();
    for round in 0..20u64 {
        let from = format!("n{}", round % 3 + 1);
        let to = format!("n{}", (round + 1) % 3 + 1);
        transfer(&mut sim, &from, &to, round % 7 + 1);
        if round % 4 == 0 {
            let _ = snapshot(&mut sim, &to);
        }
        sim.run_for(1);
    }
    sim.run_until_quiet();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for r in sim.reports() {
        let (id, amount) = match &r.report {
            Report::SnapshotLocal { id, balance, .. } => (id, *balance),
            Report::SnapshotChannel { id, amount, .. } => (id, *amount),
            _ => continue,
        };
        *totals.entry(id.clone()).or_default() += amount;
    }
    assert_eq!(totals.len(), 5);
    assert!(totals.values().all(|t| *t == 300), "{totals:?}");
}
