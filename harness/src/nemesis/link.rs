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
mod tests;
