//! The link table: fault state of every directed node-to-node link, and the router's
//! pure per-message decision.
//!
//! Determinism: each link owns a ChaCha8 RNG seeded from `(seed, src, dest)`. The
//! message with index `k` on a link (counting every message [`LinkTable::decide`] saw
//! on it, whatever its fate) draws from stream `k` of that RNG, always the same eight
//! numbers in the same roles. So decision `k` on a link is a function of the seed, the
//! link, `k` and the faults active at that moment only: traffic on other links, and
//! which faults were active for earlier messages, cannot shift it.
//!
//! Precedence on one link: a cut partition drops; otherwise a hold partition or a clog
//! of either endpoint holds; otherwise the link's message faults (if any, and if they
//! cover the message type) decide drop, then duplicate, then delay and reorder per copy.

use std::collections::BTreeMap;
use std::ops::Deref;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    derive_seed, link_name, FaultCounters, Link, LinkCounters, LinkFaults, LinkSet, NetAction,
    PartitionMode, NODES_MAX,
};

/// Most copies one decision can deliver (the original and one duplicate).
pub const COPIES_MAX: usize = 2;
/// Uniform draws per message: drop, duplicate, then (delay, reorder, reorder extra) for
/// each of the two possible copies.
const DRAWS: usize = 2 + 3 * COPIES_MAX;

/// A list of at most [`COPIES_MAX`] items stored inline; derefs to a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmallList<T: Copy + Default> {
    len: usize,
    items: [T; COPIES_MAX],
}

impl<T: Copy + Default> SmallList<T> {
    /// A list of one item.
    pub fn one(item: T) -> Self {
        let mut items = [T::default(); COPIES_MAX];
        items[0] = item;
        SmallList { len: 1, items }
    }

    /// Appends an item; the list must not be full.
    pub fn push(&mut self, item: T) {
        assert!(
            self.len < COPIES_MAX,
            "SmallList holds at most {COPIES_MAX}"
        );
        self.items[self.len] = item;
        self.len += 1;
    }
}

impl<T: Copy + Default> Deref for SmallList<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

/// One copy of a message to deliver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Delay from now before delivery, in microseconds.
    pub delay_us: u64,
    /// `true`: the router must not deliver this copy before earlier `fifo` copies on
    /// the same link. `false` (the reorder fault): it may overtake them.
    pub fifo: bool,
}

impl Delivery {
    /// Now, in order.
    pub const NOW: Delivery = Delivery {
        delay_us: 0,
        fifo: true,
    };
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// A drop fault's random draw.
    Random,
    /// A partition in `cut` mode.
    Cut,
}

impl DropCause {
    /// The cause's name in counters: `drop` or `cut`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::Random => "drop",
            DropCause::Cut => "cut",
        }
    }
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Deliver each copy (two copies: duplicated).
    Deliver {
        /// One or two copies.
        copies: SmallList<Delivery>,
    },
    /// Drop it.
    Drop {
        /// Why.
        cause: DropCause,
    },
    /// Queue it on its link until [`LinkTable::apply`] or [`LinkTable::heal_all`]
    /// names the link as released.
    Hold,
}

impl Decision {
    /// Deliver once, now, in order: the fate of every unfaulted message.
    pub fn deliver_now() -> Self {
        Decision::Deliver {
            copies: SmallList::one(Delivery::NOW),
        }
    }
}

/// Whether a link carries messages right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    /// Messages pass (possibly under message faults).
    Open,
    /// Messages are dropped by a partition.
    Cut,
    /// Messages are queued by a hold partition or a clog.
    Held,
}

#[derive(Debug, Clone)]
struct LinkState {
    rng: ChaCha8Rng,
    /// Messages decided so far: the index of the next one.
    seen: u64,
    faults: Option<LinkFaults>,
    partition: Option<PartitionMode>,
    /// Whether a message was held since the link was last released.
    holding: bool,
    counters: LinkCounters,
}

/// Fault state of every directed link between cluster nodes.
#[derive(Debug, Clone)]
pub struct LinkTable {
    nodes: Vec<String>,
    index: BTreeMap<String, usize>,
    /// Row-major: link `src → dest` is `links[src * n + dest]`.
    links: Vec<LinkState>,
    clogged: Vec<bool>,
}

impl LinkTable {
    /// A table with no faults for `nodes` (in cluster order; at most [`NODES_MAX`]).
    pub fn new(seed: u64, nodes: &[String]) -> Self {
        assert!(nodes.len() <= NODES_MAX, "at most {NODES_MAX} nodes");
        let index: BTreeMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        assert_eq!(index.len(), nodes.len(), "node names must be unique");
        let mut links = Vec::with_capacity(nodes.len() * nodes.len());
        for src in nodes {
            for dest in nodes {
                links.push(LinkState {
                    rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, &["link", src, dest])),
                    seen: 0,
                    faults: None,
                    partition: None,
                    holding: false,
                    counters: LinkCounters::default(),
                });
            }
        }
        let clogged = vec![false; nodes.len()];
        LinkTable {
            nodes: nodes.to_vec(),
            index,
            links,
            clogged,
        }
    }

    /// The cluster nodes, in order.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Decides the fate of one message from `src` to `dest` with body type `msg_type`.
    ///
    /// Messages from or to anything but two distinct cluster nodes are delivered now,
    /// in order, and not counted. `now_us` is not used by today's faults; it is part of
    /// the signature so that time-dependent faults need no router change.
    pub fn decide(&mut self, src: &str, dest: &str, msg_type: &str, now_us: u64) -> Decision {
        let _ = now_us;
        let Some(l) = self.link_index(src, dest) else {
            return Decision::deliver_now();
        };
        let status = self.status_of(l);
        let LinkState {
            rng,
            seen,
            faults,
            holding,
            counters,
            ..
        } = &mut self.links[l];
        let k = *seen;
        *seen += 1;
        match status {
            LinkStatus::Cut => {
                counters.cut += 1;
                return Decision::Drop {
                    cause: DropCause::Cut,
                };
            }
            LinkStatus::Held => {
                counters.held += 1;
                *holding = true;
                return Decision::Hold;
            }
            LinkStatus::Open => {}
        }
        let Some(faults) = faults.as_ref().filter(|f| f.applies_to(msg_type)) else {
            counters.delivered += 1;
            return Decision::deliver_now();
        };
        rng.set_stream(k);
        rng.set_word_pos(0);
        let u: [f64; DRAWS] = std::array::from_fn(|_| rng.gen::<f64>());
        if u[0] < faults.drop {
            counters.dropped += 1;
            return Decision::Drop {
                cause: DropCause::Random,
            };
        }
        let window_us = faults.reorder_window_us();
        let mut copy = |c: usize| {
            let [u_delay, u_reorder, u_extra] = [u[2 + 3 * c], u[3 + 3 * c], u[4 + 3 * c]];
            let mut copy = Delivery::NOW;
            if let Some(delay) = faults.delay {
                copy.delay_us = delay.sample_us(u_delay);
                counters.delayed += u64::from(copy.delay_us > 0);
            }
            if u_reorder < faults.reorder {
                let extra_us = 1 + (u_extra * window_us as f64) as u64;
                copy.delay_us = copy.delay_us.saturating_add(extra_us);
                copy.fifo = false;
                counters.reordered += 1;
            }
            copy
        };
        let mut copies = SmallList::one(copy(0));
        let duplicated = u[1] < faults.duplicate;
        if duplicated {
            copies.push(copy(1));
        }
        counters.delivered += 1;
        counters.duplicated += u64::from(duplicated);
        Decision::Deliver { copies }
    }

    /// Applies or lifts a network fault. Returns the links whose held messages must now
    /// be released, in link order (a link stays held while any reason to hold it stays).
    pub fn apply(&mut self, action: &NetAction) -> Vec<Link> {
        match action {
            NetAction::Partition { cut, mode } => {
                self.links.iter_mut().for_each(|l| l.partition = None);
                for (src, dest) in cut {
                    if let Some(l) = self.link_index(src, dest) {
                        self.links[l].partition = Some(*mode);
                    }
                }
            }
            NetAction::HealPartition => self.links.iter_mut().for_each(|l| l.partition = None),
            NetAction::LinkFaults {
                links: LinkSet::All,
                faults,
            } => {
                for l in self.node_links() {
                    self.links[l].faults = Some(faults.clone());
                }
            }
            NetAction::LinkFaults {
                links: LinkSet::Only(links),
                faults,
            } => {
                for (src, dest) in links {
                    if let Some(l) = self.link_index(src, dest) {
                        self.links[l].faults = Some(faults.clone());
                    }
                }
            }
            NetAction::ClearLinkFaults => self.links.iter_mut().for_each(|l| l.faults = None),
            NetAction::Clog { node } | NetAction::Unclog { node } => {
                if let Some(&i) = self.index.get(node.as_str()) {
                    self.clogged[i] = matches!(action, NetAction::Clog { .. });
                }
            }
            NetAction::HealAll => {
                for l in &mut self.links {
                    l.partition = None;
                    l.faults = None;
                }
                self.clogged.iter_mut().for_each(|c| *c = false);
            }
        }
        let mut released = Vec::new();
        for l in self.node_links() {
            if self.links[l].holding && self.status_of(l) == LinkStatus::Open {
                self.links[l].holding = false;
                let n = self.nodes.len();
                released.push((self.nodes[l / n].clone(), self.nodes[l % n].clone()));
            }
        }
        released
    }

    /// Lifts every network fault; returns the links whose held messages to release.
    pub fn heal_all(&mut self) -> Vec<Link> {
        self.apply(&NetAction::HealAll)
    }

    /// The status of a link right now (links involving non-nodes are always open).
    pub fn status(&self, src: &str, dest: &str) -> LinkStatus {
        self.link_index(src, dest)
            .map_or(LinkStatus::Open, |l| self.status_of(l))
    }

    /// Counters of every link that saw a message, keyed `n1->n2`, with their total.
    pub fn counters(&self) -> FaultCounters {
        let mut out = FaultCounters::default();
        for l in self.node_links() {
            let state = &self.links[l];
            if state.seen > 0 {
                let n = self.nodes.len();
                let name = link_name(&self.nodes[l / n], &self.nodes[l % n]);
                out.links.insert(name, state.counters);
                out.total.add(&state.counters);
            }
        }
        out
    }

    fn link_index(&self, src: &str, dest: &str) -> Option<usize> {
        let (&s, &d) = (self.index.get(src)?, self.index.get(dest)?);
        (s != d).then_some(s * self.nodes.len() + d)
    }

    /// Indices of all links between two distinct nodes, in order.
    fn node_links(&self) -> impl Iterator<Item = usize> {
        let n = self.nodes.len();
        (0..n * n).filter(move |l| l / n != l % n)
    }

    fn status_of(&self, l: usize) -> LinkStatus {
        let n = self.nodes.len();
        match self.links[l].partition {
            Some(PartitionMode::Cut) => LinkStatus::Cut,
            Some(PartitionMode::Hold) => LinkStatus::Held,
            None if self.clogged[l / n] || self.clogged[l % n] => LinkStatus::Held,
            None => LinkStatus::Open,
        }
    }
}

#[cfg(test)]
mod tests {
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
}
