//! The link table against seeded decisions: cuts, holds, drops, delays and their rates.

use super::super::{DelayDist, DelaySpec};
use super::*;

fn table(seed: u64, n: usize) -> LinkTable {
    let nodes: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    LinkTable::new(seed, &nodes)
}

fn link(a: &str, b: &str) -> Link {
    (a.to_string(), b.to_string())
}

const DELAY: DelaySpec = DelaySpec {
    dist: DelayDist::Uniform,
    base_ms: 1,
    jitter_ms: 10,
};

fn faults(drop: f64, duplicate: f64, reorder: f64) -> LinkFaults {
    LinkFaults {
        drop,
        delay: Some(DELAY),
        duplicate,
        reorder,
        msg_types: None,
    }
}

fn set_all(t: &mut LinkTable, faults: LinkFaults) {
    assert!(t
        .apply(&NetAction::LinkFaults {
            links: LinkSet::All,
            faults
        })
        .is_empty());
}

/// `count` decisions on `src -> dest`.
fn run(t: &mut LinkTable, src: &str, dest: &str, count: usize) -> Vec<Decision> {
    (0..count)
        .map(|i| t.decide(src, dest, "m", i as u64))
        .collect()
}

fn copies(d: &Decision) -> &[Delivery] {
    match d {
        Decision::Deliver { copies } => copies,
        _ => &[],
    }
}

#[test]
fn unfaulted_links_deliver_now_in_order() {
    let mut t = table(1, 3);
    for d in run(&mut t, "n1", "n2", 10) {
        assert_eq!(d, Decision::deliver_now());
    }
    assert_eq!(t.counters().total.delivered, 10);
}

#[test]
fn decisions_per_link_depend_on_seed_and_index_only() {
    let f = faults(0.2, 0.2, 0.2);
    let mut a = table(9, 3);
    set_all(&mut a, f.clone());
    let alone = run(&mut a, "n1", "n2", 200);
    let mut b = table(9, 3);
    set_all(&mut b, f.clone());
    let mut interleaved = Vec::new();
    for i in 0..200 {
        b.decide("n2", "n3", "m", 0);
        b.decide("c1", "n1", "m", 0);
        interleaved.push(b.decide("n1", "n2", "m", i));
        if i == 100 {
            let other = LinkFaults {
                drop: 1.0,
                ..f.clone()
            };
            let links = LinkSet::Only(vec![link("n1", "n3")]);
            b.apply(&NetAction::LinkFaults {
                links,
                faults: other,
            });
        }
    }
    assert_eq!(
        alone, interleaved,
        "other links' traffic and faults do not shift a link"
    );
    let mut c = table(10, 3);
    set_all(&mut c, f.clone());
    assert_ne!(alone, run(&mut c, "n1", "n2", 200), "another seed");
    assert_ne!(alone, run(&mut a, "n2", "n1", 200), "another link");
}

#[test]
fn fifo_unless_reorder() {
    let mut t = table(2, 2);
    set_all(&mut t, faults(0.1, 0.5, 0.0));
    let decisions = run(&mut t, "n1", "n2", 1_000);
    let all: Vec<Delivery> = decisions.iter().flat_map(copies).copied().collect();
    assert!(all.len() > 1_000, "some duplicates");
    assert!(all
        .iter()
        .all(|c| c.fifo && (1_000..11_000).contains(&c.delay_us)));
    set_all(&mut t, faults(0.0, 0.0, 1.0));
    let window = faults(0.0, 0.0, 1.0).reorder_window_us();
    for d in run(&mut t, "n1", "n2", 1_000) {
        let [c] = copies(&d) else {
            panic!("one copy: {d:?}")
        };
        assert!(
            !c.fifo && c.delay_us > 1_000 && c.delay_us <= 11_000 + window,
            "{c:?}"
        );
    }
    assert_eq!(t.counters().total.reordered, 1_000);
}

#[test]
fn drop_and_duplicate_probabilities_are_respected() {
    let mut t = table(3, 2);
    set_all(&mut t, faults(0.3, 0.25, 0.0));
    let n = 20_000;
    run(&mut t, "n1", "n2", n);
    let c = t.counters().total;
    // Binomial standard deviations: 65 drops, 53 duplicates; allow four.
    assert!((5_740..=6_260).contains(&c.dropped), "{c:?}");
    assert_eq!(c.dropped + c.delivered, n as u64);
    let want_dups = c.delivered / 4;
    assert!(c.duplicated.abs_diff(want_dups) <= 212, "{c:?}");
    assert_eq!(c.delayed, c.delivered + c.duplicated, "every copy delayed");
}

#[test]
fn one_way_cut_drops_one_direction_only() {
    let mut t = table(4, 3);
    let cut = vec![link("n1", "n2")];
    assert!(t
        .apply(&NetAction::Partition {
            cut,
            mode: PartitionMode::Cut
        })
        .is_empty());
    assert_eq!(
        t.decide("n1", "n2", "m", 0),
        Decision::Drop {
            cause: DropCause::Cut
        }
    );
    assert_eq!(t.decide("n2", "n1", "m", 0), Decision::deliver_now());
    assert_eq!(t.status("n1", "n2"), LinkStatus::Cut);
    assert_eq!(t.status("n1", "n3"), LinkStatus::Open);
    t.apply(&NetAction::Partition {
        cut: vec![link("n3", "n1")],
        mode: PartitionMode::Cut,
    });
    assert_eq!(
        t.status("n1", "n2"),
        LinkStatus::Open,
        "a partition replaces the last"
    );
}

#[test]
fn heal_all_returns_the_held_links() {
    let mut t = table(5, 3);
    assert!(t.apply(&NetAction::Clog { node: "n1".into() }).is_empty());
    assert_eq!(t.decide("n1", "n2", "m", 0), Decision::Hold);
    assert_eq!(t.decide("n3", "n1", "m", 0), Decision::Hold);
    assert_eq!(t.decide("n2", "n3", "m", 0), Decision::deliver_now());
    assert_eq!(
        t.status("n2", "n1"),
        LinkStatus::Held,
        "held even before a message"
    );
    assert_eq!(t.heal_all(), vec![link("n1", "n2"), link("n3", "n1")]);
    assert!(t.heal_all().is_empty(), "released once");
    assert_eq!(t.counters().total.held, 2);
}

#[test]
fn a_link_is_released_when_its_last_hold_lifts() {
    let mut t = table(6, 3);
    let cut = vec![link("n1", "n2")];
    t.apply(&NetAction::Partition {
        cut,
        mode: PartitionMode::Hold,
    });
    t.apply(&NetAction::Clog { node: "n2".into() });
    assert_eq!(t.decide("n1", "n2", "m", 0), Decision::Hold);
    assert_eq!(t.decide("n3", "n2", "m", 0), Decision::Hold);
    assert!(
        t.apply(&NetAction::HealPartition).is_empty(),
        "n2 is still clogged"
    );
    let released = t.apply(&NetAction::Unclog { node: "n2".into() });
    assert_eq!(released, vec![link("n1", "n2"), link("n3", "n2")]);
}

#[test]
fn a_cut_beats_a_clog() {
    let mut t = table(7, 2);
    t.apply(&NetAction::Clog { node: "n1".into() });
    t.apply(&NetAction::Partition {
        cut: vec![link("n1", "n2")],
        mode: PartitionMode::Cut,
    });
    assert_eq!(
        t.decide("n1", "n2", "m", 0),
        Decision::Drop {
            cause: DropCause::Cut
        }
    );
    assert_eq!(t.decide("n2", "n1", "m", 0), Decision::Hold);
}

#[test]
fn clients_the_harness_and_self_sends_are_never_faulted() {
    let mut t = table(8, 2);
    set_all(&mut t, faults(1.0, 0.0, 0.0));
    t.apply(&NetAction::Clog { node: "n1".into() });
    for (src, dest) in [("c1", "n1"), ("n1", "c1"), ("n1", "harness"), ("n1", "n1")] {
        assert_eq!(
            t.decide(src, dest, "m", 0),
            Decision::deliver_now(),
            "{src}->{dest}"
        );
    }
    assert!(t.counters().links.is_empty());
}

#[test]
fn message_type_filter_limits_link_faults() {
    let mut t = table(9, 2);
    let only = Some(["accept".to_string()].into());
    set_all(
        &mut t,
        LinkFaults {
            drop: 1.0,
            msg_types: only,
            ..LinkFaults::default()
        },
    );
    assert_eq!(t.decide("n1", "n2", "prepare", 0), Decision::deliver_now());
    assert_eq!(
        t.decide("n1", "n2", "accept", 0),
        Decision::Drop {
            cause: DropCause::Random
        }
    );
    assert!(t.apply(&NetAction::ClearLinkFaults).is_empty());
    assert_eq!(t.decide("n1", "n2", "accept", 0), Decision::deliver_now());
}

#[test]
fn counters_serialise_by_link_name() {
    let mut t = table(1, 2);
    t.decide("n1", "n2", "m", 0);
    t.apply(&NetAction::Partition {
        cut: vec![link("n2", "n1")],
        mode: PartitionMode::Cut,
    });
    t.decide("n2", "n1", "m", 0);
    let json = serde_json::to_string(&t.counters()).expect("serialises");
    let zero = r#""dropped":0"#;
    assert_eq!(
        json,
        format!(
            r#"{{"links":{{"n1->n2":{{"delivered":1,{zero},"cut":0,"delayed":0,"duplicated":0,"reordered":0,"held":0}},"n2->n1":{{"delivered":0,{zero},"cut":1,"delayed":0,"duplicated":0,"reordered":0,"held":0}}}},"total":{{"delivered":1,{zero},"cut":1,"delayed":0,"duplicated":0,"reordered":0,"held":0}}}}"#
        )
    );
}
