//! The virtual-time event queue of a lockstep run, and its seeded choice.
//!
//! Every pending event has a virtual time in microseconds. The events *ready* are those
//! at the earliest pending time; [`EventQueue::pop`] moves the clock there (skipping any
//! quiet stretch at once) and picks one of them uniformly with a ChaCha8 RNG seeded from
//! the run's seed. So the seed chooses among interleavings, not only among delays, and
//! nothing but the seed and the sequence of pushes and pops decides the order.
//!
//! An event may belong to a *lane*: events of one lane are ready only in the order they
//! were pushed (a FIFO link). Only a lane's head is ever a candidate; when it is popped
//! the next event of the lane becomes a candidate at its own time, or at once if that
//! time has passed, so a later message with a shorter delay waits behind an earlier one.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A FIFO lane; the caller numbers them (e.g. one per directed link).
pub type Lane = u64;

struct Entry<E> {
    at_us: u64,
    lane: Option<Lane>,
    ev: E,
}

/// Pending events in virtual time.
pub struct EventQueue<E> {
    now_us: u64,
    seq: u64,
    /// Candidates later than now, by (time, push order).
    future: BTreeMap<(u64, u64), Entry<E>>,
    /// Candidates at now (or earlier: pushed late, or lane heads promoted late).
    due: Vec<Entry<E>>,
    /// Per busy lane (one whose head is a candidate), the events behind its head.
    behind: BTreeMap<Lane, VecDeque<Entry<E>>>,
    rng: ChaCha8Rng,
    len: usize,
    choices: u64,
}

impl<E> EventQueue<E> {
    /// An empty queue at virtual time 0 whose choices are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        EventQueue {
            now_us: 0,
            seq: 0,
            future: BTreeMap::new(),
            due: Vec::new(),
            behind: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            len: 0,
            choices: 0,
        }
    }

    /// The virtual clock, in microseconds.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Events pending, lane followers included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pops that had more than one ready event to choose from: where the seed picked
    /// the interleaving.
    pub fn choices(&self) -> u64 {
        self.choices
    }

    /// Moves the clock forward to `t_us` (never back).
    pub fn advance_to(&mut self, t_us: u64) {
        self.now_us = self.now_us.max(t_us);
    }

    /// Adds an event for virtual time `at_us` (a time already past means "now"), in
    /// `lane` if given.
    pub fn push(&mut self, at_us: u64, lane: Option<Lane>, ev: E) {
        self.len += 1;
        let entry = Entry { at_us, lane, ev };
        if let Some(l) = lane {
            if let Some(queue) = self.behind.get_mut(&l) {
                queue.push_back(entry);
                return;
            }
            self.behind.insert(l, VecDeque::new());
        }
        self.place(entry);
    }

    /// The time of the next [`EventQueue::pop`], if anything is pending.
    pub fn next_time(&self) -> Option<u64> {
        if !self.due.is_empty() {
            return Some(self.now_us);
        }
        self.future
            .keys()
            .next()
            .map(|&(at, _)| at.max(self.now_us))
    }

    /// Moves the clock to the earliest pending time and removes one of the events ready
    /// then, chosen by the seeded RNG. Returns its scheduled time (at most the clock)
    /// and the event.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        if self.due.is_empty() {
            let (&(at, _), _) = self.future.iter().next()?;
            self.now_us = self.now_us.max(at);
        }
        while let Some(entry) = self.future.first_entry() {
            if entry.key().0 > self.now_us {
                break;
            }
            self.due.push(entry.remove());
        }
        let i = if self.due.len() > 1 {
            self.choices += 1;
            self.rng.gen_range(0..self.due.len())
        } else {
            0
        };
        let entry = self.due.swap_remove(i);
        self.len -= 1;
        if let Some(l) = entry.lane {
            let next = self.behind.get_mut(&l).and_then(VecDeque::pop_front);
            match next {
                Some(next) => self.place(next),
                None => {
                    self.behind.remove(&l);
                }
            }
        }
        Some((entry.at_us, entry.ev))
    }

    fn place(&mut self, entry: Entry<E>) {
        if entry.at_us <= self.now_us {
            self.due.push(entry);
        } else {
            self.seq += 1;
            self.future.insert((entry.at_us, self.seq), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut EventQueue<u32>) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        while let Some((_, ev)) = q.pop() {
            out.push((q.now_us(), ev));
        }
        out
    }

    #[test]
    fn time_order_across_instants_and_quiet_time_is_skipped() {
        let mut q = EventQueue::new(1);
        q.push(5_000_000, None, 3);
        q.push(10, None, 1);
        q.push(20, None, 2);
        assert_eq!(q.next_time(), Some(10));
        assert_eq!(drain(&mut q), vec![(10, 1), (20, 2), (5_000_000, 3)]);
        assert!(q.is_empty());
    }

    #[test]
    fn ties_are_broken_by_the_seed() {
        let order = |seed| {
            let mut q = EventQueue::new(seed);
            for ev in 0..8 {
                q.push(100, None, ev);
            }
            drain(&mut q)
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(7), order(7), "same seed, same order");
        let mut q = EventQueue::new(1);
        q.push(1, None, 0);
        q.push(1, None, 1);
        drain(&mut q);
        assert_eq!(q.choices(), 1, "one real choice, then one event left");
        let orders: std::collections::BTreeSet<Vec<u32>> = (0..20).map(order).collect();
        assert!(orders.len() > 10, "seeds explore interleavings");
        for o in orders {
            let mut sorted = o.clone();
            sorted.sort();
            assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lanes_are_fifo_even_when_a_later_event_is_earlier() {
        for seed in 0..50 {
            let mut q = EventQueue::new(seed);
            q.push(300, Some(1), 10);
            q.push(100, Some(1), 11);
            q.push(200, Some(1), 12);
            q.push(100, Some(2), 20);
            q.push(100, None, 30);
            let got = drain(&mut q);
            let lane1: Vec<u32> = got
                .iter()
                .map(|&(_, e)| e)
                .filter(|e| (10..20).contains(e))
                .collect();
            assert_eq!(lane1, vec![10, 11, 12], "seed {seed}");
            // 11 and 12 were due long before 10: they follow it at once.
            assert!(got
                .iter()
                .filter(|(_, e)| *e >= 10 && *e < 20)
                .all(|(t, _)| *t == 300));
        }
    }

    #[test]
    fn pushes_during_an_instant_join_it() {
        let mut q = EventQueue::new(3);
        q.push(50, None, 1);
        q.pop().unwrap();
        q.push(0, None, 2);
        q.push(50, None, 3);
        q.push(60, None, 4);
        assert_eq!(q.next_time(), Some(50));
        let got = drain(&mut q);
        assert_eq!(got.len(), 3);
        assert!(got[..2].iter().all(|&(t, _)| t == 50));
        assert_eq!(got[2], (60, 4));
    }
}
