//! `g-counter` (Maelstrom's grow-only counter): `add {delta}` with deltas of 1 to 5 and
//! `read`, judged by [`crate::counter::Counter`].

use crate::counter::CounterWorkload;

/// The g-counter workload.
pub fn workload() -> CounterWorkload {
    CounterWorkload::new("g-counter", false)
}
