//! Deadlock detection on the in-process simulated network, step by step: three nodes,
//! every message held and delivered by hand.
//!
//! The seed's point about stable properties: a consistent cut sees a deadlock that
//! stands, and sees no deadlock that does not. The phantom case is the classic one: n2
//! grants n1 and then waits for n1 while its grant is still on the wire. A cut in which
//! n1 recorded before the grant arrived and n2 recorded after it started waiting holds
//! both waits; only the channel's record (the grant on `n2 -> n1`) says that n1's wait
//! was already answered. Every scenario ends in [`check`], which renders the initiator's
//! `deadlock` report: `cycle n1 n2 | waits n1->n2 n2->n1`.

use node::algo::wait_for::{Msg, WaitFor};
use node::sim::{Options, Sim, Verdict};
use proto::ops::{ClientOp, ClientReply};
use proto::{Errorness, Report};

type Net = Sim<WaitFor>;

fn net(bug: Option<&str>) -> Net {
    let options = bug.map_or_else(Options::default, |b| Options::default().bug(b));
    let mut sim = Sim::with_options(3, 7, options).expect("known bug");
    sim.set_router(|_, _| Verdict::Hold);
    sim
}

fn wait(sim: &mut Net, node: &str, on: &str) {
    let id = sim.client(node, ClientOp::Wait { on: on.into() });
    assert_eq!(sim.reply(id), Some(&ClientReply::WaitOk));
}

fn snapshot(sim: &mut Net, at: &str) -> String {
    let id = sim.client(at, ClientOp::Snapshot);
    match sim.reply(id) {
        Some(ClientReply::SnapshotOk { id }) => id.clone(),
        other => panic!("snapshot refused: {other:?}"),
    }
}

/// Delivers the first held message on `from -> to` that `which` picks.
fn deliver(sim: &mut Net, from: &str, to: &str, which: fn(&Msg) -> bool) {
    let ids = sim.select(|e| e.from == from && e.to == to && which(&e.msg));
    let id = *ids
        .first()
        .unwrap_or_else(|| panic!("nothing such held on {from}->{to}"));
    assert!(sim.deliver(id));
}

fn request(m: &Msg) -> bool {
    matches!(m, Msg::Request)
}

fn grant(m: &Msg) -> bool {
    matches!(m, Msg::Grant)
}

fn marker(m: &Msg) -> bool {
    matches!(m, Msg::Marker { .. })
}

fn drain(sim: &mut Net) {
    while let Some(id) = sim.select(|_| true).first().copied() {
        sim.deliver(id);
    }
}

/// The one `deadlock` report, rendered.
fn render(sim: &Net) -> String {
    let found: Vec<String> = sim
        .reports()
        .iter()
        .filter_map(|r| match &r.report {
            Report::Deadlock { cycle, waits, .. } => {
                let w: Vec<String> = waits.iter().map(|(a, b)| format!("{a}->{b}")).collect();
                Some(format!("cycle {} | waits {}", cycle.join(" "), w.join(" ")))
            }
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one detection: {found:?}");
    found[0].clone()
}

fn check(sim: &Net, expected: &str) {
    assert_eq!(render(sim), expected);
}

/// Every wait has been granted.
fn nobody_waits(sim: &Net) {
    for n in ["n1", "n2", "n3"] {
        assert_eq!(sim.algo(n).and_then(WaitFor::waits_for), None, "{n} waits");
    }
}

/// n1 waits for n2 and n2 for n1; both requests arrive while their receiver waits.
fn crossing_requests(sim: &mut Net) {
    wait(sim, "n1", "n2");
    wait(sim, "n2", "n1");
    deliver(sim, "n1", "n2", request); // n2 waits itself: queued
    deliver(sim, "n2", "n1", request); // n1 too: the cycle stands
}

#[test]
fn crossing_waits_are_a_deadlock_and_the_snapshot_reports_it() {
    let mut sim = net(None);
    crossing_requests(&mut sim);
    let id = snapshot(&mut sim, "n3");
    assert_eq!(id, "n3#1");
    drain(&mut sim);
    check(&sim, "cycle n1 n2 | waits n1->n2 n2->n1");
    assert_eq!(sim.algo("n1").and_then(WaitFor::waits_for), Some("n2"));
    // A deadlock is stable: nothing that is left moves it.
    let id = sim.client("n1", ClientOp::Wait { on: "n3".into() });
    match sim.reply(id) {
        Some(ClientReply::Error { code, .. }) => assert_eq!(code.errorness(), Errorness::Definite),
        other => panic!("a blocked node took another wait: {other:?}"),
    }
}

/// The phantom: n2 grants n1, then waits for n1 while the grant is on the wire; the cut
/// falls between.
fn granted_on_the_wire(sim: &mut Net) {
    wait(sim, "n1", "n2");
    deliver(sim, "n1", "n2", request); // n2 is free: grant n2->n1, held
    let id = snapshot(sim, "n1"); // n1 records: waits for n2
    assert_eq!(id, "n1#1");
    wait(sim, "n2", "n1"); // behind the grant on n2->n1
    deliver(sim, "n1", "n2", marker); // n2 records: waits for n1; sends markers
    deliver(sim, "n2", "n1", grant); // recorded on n2->n1: n1's wait is answered
    deliver(sim, "n2", "n1", request); // n1 is free now: grants n2
    deliver(sim, "n2", "n1", marker); // closes n2->n1 = {grant}
    drain(sim);
}

#[test]
fn a_grant_on_the_wire_at_the_cut_answers_the_wait() {
    let mut sim = net(None);
    granted_on_the_wire(&mut sim);
    check(&sim, "cycle  | waits n2->n1");
    nobody_waits(&sim);
}

#[test]
fn local_view_reports_a_phantom_deadlock() {
    let mut sim = net(Some("local-view"));
    granted_on_the_wire(&mut sim);
    check(&sim, "cycle n1 n2 | waits n1->n2 n2->n1");
    nobody_waits(&sim); // the cycle never stood
}

#[test]
fn a_chain_ending_at_a_free_node_is_no_deadlock() {
    let mut sim = net(None);
    wait(&mut sim, "n1", "n2");
    wait(&mut sim, "n2", "n3");
    deliver(&mut sim, "n1", "n2", request); // n2 waits: queued
    let _ = snapshot(&mut sim, "n3");
    drain(&mut sim);
    check(&sim, "cycle  | waits n1->n2 n2->n3");
    nobody_waits(&sim);
}
