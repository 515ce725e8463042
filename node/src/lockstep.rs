//! Virtual timers for lockstep mode: an algorithm's named timers mapped to the numeric
//! `timer_id`s the harness fires (PROTOCOL.md §10).
//!
//! An algorithm's timer is any `Ord` value (`Timer::Proposer { key: 3 }`), never sent on
//! the wire. The first `set` of a timer gives it the next id; setting it again while it
//! is pending reuses that id, so the harness replaces the old deadline, exactly as
//! `SetTimer` replaces one in the free-running runtime. A timer that fires or is
//! cancelled forgets its id; a later `set` takes a fresh one, so a `timer_fired` for an
//! id that is no longer pending (none should arrive) is recognisably stale.

use std::collections::BTreeMap;

use proto::lockstep::Lockstep;

/// The pending timers of one node in lockstep mode.
#[derive(Debug)]
pub struct VirtualTimers<T: Ord + Clone> {
    by_timer: BTreeMap<T, u64>,
    by_id: BTreeMap<u64, T>,
    next_id: u64,
}

impl<T: Ord + Clone> Default for VirtualTimers<T> {
    fn default() -> Self {
        VirtualTimers {
            by_timer: BTreeMap::new(),
            by_id: BTreeMap::new(),
            next_id: 1,
        }
    }
}

impl<T: Ord + Clone> VirtualTimers<T> {
    /// No timers pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `timer` to fire after `after_us` microseconds; returns the `timer_set` to send.
    pub fn set(&mut self, timer: T, after_us: u64) -> Lockstep {
        let timer_id = match self.by_timer.get(&timer) {
            Some(&id) => id,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.by_timer.insert(timer.clone(), id);
                self.by_id.insert(id, timer);
                id
            }
        };
        Lockstep::timer_set_us(timer_id, after_us)
    }

    /// Disarms `timer`; returns the `timer_cancel` to send, if it was pending.
    pub fn cancel(&mut self, timer: &T) -> Option<Lockstep> {
        let timer_id = self.by_timer.remove(timer)?;
        self.by_id.remove(&timer_id);
        Some(Lockstep::TimerCancel { timer_id })
    }

    /// The timer that `timer_fired {timer_id}` names, now no longer pending; `None` for
    /// an id that is not pending.
    pub fn fire(&mut self, timer_id: u64) -> Option<T> {
        let timer = self.by_id.remove(&timer_id)?;
        self.by_timer.remove(&timer);
        Some(timer)
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resetting_reuses_the_id_and_firing_forgets_it() {
        let mut t = VirtualTimers::new();
        assert_eq!(t.set("a", 10), Lockstep::timer_set_us(1, 10));
        assert_eq!(t.set("b", 5), Lockstep::timer_set_us(2, 5));
        assert_eq!(
            t.set("a", 20),
            Lockstep::timer_set_us(1, 20),
            "a pending timer keeps its id"
        );
        assert_eq!(t.fire(1), Some("a"));
        assert_eq!(t.fire(1), None, "stale");
        assert_eq!(
            t.set("a", 1),
            Lockstep::timer_set_us(3, 1),
            "fresh id after firing"
        );
        assert_eq!(t.cancel(&"b"), Some(Lockstep::TimerCancel { timer_id: 2 }));
        assert_eq!(t.cancel(&"b"), None);
        assert_eq!(t.fire(2), None);
        assert_eq!(t.len(), 1);
    }
}
