//! The memo of visited configurations `(linearized set, model state)`, bounded in bytes.
//!
//! The key is the *required* part of the linearized set and the state: its hash is the
//! Zobrist hash of the linearized required ops (kept incrementally by the search) mixed
//! with the state's hash, and it is compared exactly: the required part is stored
//! canonically as its size plus its required *holes*, the unlinearized required ops
//! whose invoke is no later than the earliest pending return (see `search.rs`). A hash
//! collision therefore never prunes a configuration that was not visited.
//!
//! Optional (`info`) ops are compared by dominance. Configurations with the same
//! required part have the same candidate prefix, so their linearized optional ops are
//! that prefix's optional ops minus their optional holes. Using fewer optional ops can
//! only help (any unused one may simply never happen), so if a configuration failed,
//! every configuration with the same key and a superset of its linearized optional ops
//! (a subset of its optional holes) fails too. Dominance is applied only to entries
//! whose search has *finished* (`finish`), never to ones still on the search path.
//!
//! When the next entry would exceed the byte budget, the memo is emptied: later
//! configurations get less pruning, verdicts stay the same. Entry handles carry the
//! memo's generation so that a handle from before an emptying is ignored.

use std::hash::{Hash, Hasher};

const EMPTY: u32 = u32::MAX;
const SLOTS_MIN: usize = 1024;
/// Entries with the same key examined per lookup; past it, no pruning and no insert.
const SAME_KEY_MAX: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Entry<S> {
    hash: u64,
    state: S,
    n_req: u32,
    holes_at: u32,
    req_len: u32,
    opt_len: u32,
    done: bool,
}

/// A handle on an entry, to mark its search finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryId {
    generation: u32,
    index: u32,
}

impl EntryId {
    /// A handle that refers to nothing.
    pub(crate) const NONE: EntryId = EntryId {
        generation: u32::MAX,
        index: u32::MAX,
    };
}

/// What a lookup found.
pub(crate) enum Visit {
    /// A finished entry with this key dominates the configuration: it fails.
    Dominated,
    /// Recorded (or not, for lack of room: `EntryId::NONE`).
    New(EntryId),
}

/// An open-addressing table of visited configurations.
#[derive(Debug)]
pub(crate) struct Memo<S> {
    slots: Vec<u32>,
    entries: Vec<Entry<S>>,
    holes: Vec<u32>,
    bytes_max: usize,
    generation: u32,
    /// Times the memo was emptied for lack of room.
    pub(crate) evictions: u64,
    /// The most bytes held at once.
    pub(crate) bytes_peak: usize,
}

/// Whether sorted `big` contains every element of sorted `small`.
fn contains_all(big: &[u32], small: &[u32]) -> bool {
    let mut b = big.iter();
    small.iter().all(|x| b.by_ref().any(|y| y == x))
}

impl<S: Copy + Eq + Hash> Memo<S> {
    /// An empty memo that never holds more than `bytes_max` bytes.
    pub(crate) fn new(bytes_max: usize) -> Self {
        Memo {
            slots: Vec::new(),
            entries: Vec::new(),
            holes: Vec::new(),
            bytes_max,
            generation: 0,
            evictions: 0,
            bytes_peak: 0,
        }
    }

    /// The byte budget.
    pub(crate) fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// Forgets every configuration, keeping the allocations for the next search.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.entries.clear();
        self.holes.clear();
        self.generation = self.generation.wrapping_add(1);
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.entries.capacity() * std::mem::size_of::<Entry<S>>()
            + self.holes.capacity() * 4
    }

    /// Marks the search from an entry's configuration finished (failed).
    pub(crate) fn finish(&mut self, id: EntryId) {
        if id.generation == self.generation {
            if let Some(e) = self.entries.get_mut(id.index as usize) {
                e.done = true;
            }
        }
    }

    /// Looks a configuration up and records it. `req` and `opt` are its sorted
    /// required and optional holes; `n_req` its number of linearized required ops.
    pub(crate) fn visit(
        &mut self,
        hash: u64,
        state: S,
        n_req: u32,
        req: &[u32],
        opt: &[u32],
    ) -> Visit {
        if !self.make_room(req.len() + opt.len()) {
            return Visit::New(EntryId::NONE);
        }
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        let mut same_key = 0;
        loop {
            let e = self.slots[i];
            if e == EMPTY {
                break;
            }
            let entry = &self.entries[e as usize];
            if entry.hash == hash && entry.n_req == n_req && entry.state == state {
                let at = entry.holes_at as usize;
                let (r, o) = self.holes[at..].split_at(entry.req_len as usize);
                if r == req {
                    if entry.done && contains_all(&o[..entry.opt_len as usize], opt) {
                        return Visit::Dominated;
                    }
                    same_key += 1;
                    if same_key >= SAME_KEY_MAX {
                        return Visit::New(EntryId::NONE);
                    }
                }
            }
            i = (i + 1) & mask;
        }
        let index = u32::try_from(self.entries.len()).expect("memo entries fit u32");
        self.slots[i] = index;
        self.entries.push(Entry {
            hash,
            state,
            n_req,
            holes_at: u32::try_from(self.holes.len()).expect("memo holes fit u32"),
            req_len: req.len() as u32,
            opt_len: opt.len() as u32,
            done: false,
        });
        self.holes.extend_from_slice(req);
        self.holes.extend_from_slice(opt);
        Visit::New(EntryId {
            generation: self.generation,
            index,
        })
    }

    /// Ensures one more entry with `holes` holes fits, emptying the memo if it must;
    /// `false` if it cannot fit even in an empty memo.
    fn make_room(&mut self, holes: usize) -> bool {
        let entry = std::mem::size_of::<Entry<S>>();
        for attempt in 0..2 {
            let mut extra = 0;
            let slots_needed = (self.entries.len() + 1) * 2 > self.slots.len();
            if slots_needed {
                extra += ((self.slots.len() * 2).max(SLOTS_MIN) - self.slots.len()) * 4;
            }
            let entries_grow = self.entries.len() == self.entries.capacity();
            if entries_grow {
                extra += self.entries.capacity().max(64) * entry;
            }
            let holes_grow = self.holes.len() + holes > self.holes.capacity();
            if holes_grow {
                extra += self.holes.capacity().max(holes).max(256) * 4;
            }
            if self.bytes() + extra <= self.bytes_max {
                if slots_needed {
                    self.grow_slots();
                }
                if entries_grow {
                    self.entries.reserve_exact(self.entries.capacity().max(64));
                }
                if holes_grow {
                    self.holes
                        .reserve_exact(self.holes.capacity().max(holes).max(256));
                }
                self.bytes_peak = self.bytes_peak.max(self.bytes());
                return true;
            }
            if attempt == 0 && !self.entries.is_empty() {
                self.clear();
                self.evictions += 1;
            } else {
                break;
            }
        }
        false
    }

    fn grow_slots(&mut self) {
        let len = (self.slots.len() * 2).max(SLOTS_MIN);
        self.slots.clear();
        self.slots.shrink_to_fit();
        self.slots.resize(len, EMPTY);
        let mask = len - 1;
        for (n, e) in self.entries.iter().enumerate() {
            let mut i = (e.hash as usize) & mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = n as u32;
        }
    }
}

/// A fast, non-cryptographic hash of a state (FxHash's mixing step).
pub(crate) fn hash_state<S: Hash>(state: &S) -> u64 {
    let mut h = FxHasher::default();
    state.hash(&mut h);
    h.finish()
}

/// FxHash (rustc's hasher): one multiply per word; for small trusted keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(FX_K);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// SplitMix64: the per-op Zobrist keys.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_byte_budget_by_emptying() {
        let bytes_max = 64 << 10;
        let mut memo: Memo<u64> = Memo::new(bytes_max);
        for i in 0..100_000u64 {
            let holes = [i as u32, i as u32 + 1];
            assert!(matches!(
                memo.visit(splitmix64(i), i, 1, &holes, &[]),
                Visit::New(_)
            ));
        }
        assert!(memo.evictions > 0);
        assert!(memo.bytes_peak <= bytes_max, "{}", memo.bytes_peak);
    }

    #[test]
    fn dominance_needs_a_finished_entry_with_fewer_optional_ops() {
        let mut memo: Memo<u8> = Memo::new(1 << 20);
        let Visit::New(id) = memo.visit(7, 0, 2, &[4], &[5, 6]) else {
            panic!("new entry");
        };
        // Still on the search path: no pruning.
        assert!(matches!(memo.visit(7, 0, 2, &[4], &[5]), Visit::New(_)));
        memo.finish(id);
        // Optional holes {5} ⊆ {5, 6}: more optional ops linearized, dominated.
        assert!(matches!(memo.visit(7, 0, 2, &[4], &[5]), Visit::Dominated));
        assert!(matches!(
            memo.visit(7, 0, 2, &[4], &[5, 6]),
            Visit::Dominated
        ));
        // A different state or required part is not.
        assert!(matches!(memo.visit(7, 1, 2, &[4], &[5]), Visit::New(_)));
        assert!(matches!(memo.visit(7, 0, 2, &[3], &[5]), Visit::New(_)));
        // An optional hole the entry did not have: fewer optional ops, not dominated.
        assert!(matches!(
            memo.visit(7, 0, 2, &[4], &[5, 6, 8]),
            Visit::New(_)
        ));
    }

    #[test]
    fn handles_from_before_an_emptying_are_ignored() {
        let mut memo: Memo<u8> = Memo::new(1 << 20);
        let Visit::New(id) = memo.visit(1, 0, 0, &[], &[]) else {
            panic!("new entry");
        };
        memo.clear();
        assert!(matches!(memo.visit(2, 0, 0, &[], &[1]), Visit::New(_)));
        memo.finish(id);
        assert!(matches!(memo.visit(2, 0, 0, &[], &[1]), Visit::New(_)));
    }
}
