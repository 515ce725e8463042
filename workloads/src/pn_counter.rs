//! `pn-counter` (Maelstrom's counter that also decrements): `add {delta}` with deltas of
//! -5 to 5 and `read`, judged by [`crate::counter::Counter`] (for negative deltas the
//! possible final values are the subset sums of the unknown adds, not a single range).

use crate::counter::CounterWorkload;

/// The pn-counter workload.
pub fn workload() -> CounterWorkload {
    CounterWorkload::new("pn-counter", true)
}
