//! Limits on a search: states explored (shared by every partition of a check) and a
//! deadline. Exhausting either ends the check in `Unknown`, never in a hang. A third
//! limit, states per partition, is applied by the runner (`check/run.rs`): it makes
//! that one key `Unknown` and lets the others finish.
//!
//! The deadline is the only clock the checker reads; verdicts never depend on it except
//! by becoming `Unknown`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Why a check ended without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnknownReason {
    /// The search explored `states_max` states.
    StatesExhausted {
        /// The budget.
        states_max: u64,
    },
    /// The search ran for `time_ms_max` milliseconds.
    TimeExhausted {
        /// The budget.
        time_ms_max: u64,
    },
    /// One partition's model grew past `bytes_max` bytes of its own states (kv-strings'
    /// trie of strings); the others went on.
    MemoryExhausted {
        /// The budget: a thread's share of `CheckOptions::memo_bytes_max`.
        bytes_max: u64,
    },
    /// One partition (key) explored `key_states_max` states; the others went on.
    KeyStatesExhausted {
        /// The per-key budget.
        key_states_max: u64,
    },
}

impl std::fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnknownReason::StatesExhausted { states_max } => {
                write!(f, "state budget exhausted ({states_max} states)")
            }
            UnknownReason::TimeExhausted { time_ms_max } => {
                write!(f, "time budget exhausted ({time_ms_max} ms)")
            }
            UnknownReason::MemoryExhausted { bytes_max } => {
                write!(f, "memory budget of one key exhausted ({bytes_max} bytes)")
            }
            UnknownReason::KeyStatesExhausted { key_states_max } => {
                write!(
                    f,
                    "per-key state budget exhausted ({key_states_max} states)"
                )
            }
        }
    }
}

/// How many states a search explores between two looks at the shared budget.
pub(crate) const CHARGE_STATES: u64 = 1024;

const STOP_NONE: u8 = 0;
const STOP_STATES: u8 = 1;
const STOP_TIME: u8 = 2;

/// A budget shared by the searches of one check (or of one shrink step).
#[derive(Debug)]
pub(crate) struct Budget {
    states_max: u64,
    states: AtomicU64,
    deadline: Option<(Instant, u64)>,
    stop: AtomicU8,
    cancelled: AtomicBool,
}

impl Budget {
    /// A budget of `states_max` states and, when given, `time_ms_max` from now.
    pub(crate) fn new(states_max: u64, time_ms_max: Option<u64>) -> Self {
        Budget {
            states_max,
            states: AtomicU64::new(0),
            deadline: time_ms_max.map(|ms| (Instant::now() + Duration::from_millis(ms), ms)),
            stop: AtomicU8::new(STOP_NONE),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Records `n` more states; an error once the budget is spent (for every searcher).
    pub(crate) fn charge(&self, n: u64) -> Result<(), UnknownReason> {
        let total = self.states.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.states_max {
            self.stop.store(STOP_STATES, Ordering::Relaxed);
        } else if let Some((deadline, _)) = self.deadline {
            if Instant::now() >= deadline {
                self.stop.store(STOP_TIME, Ordering::Relaxed);
            }
        }
        self.stopped()
    }

    /// Records `n` states at the end of a search, without checking.
    pub(crate) fn settle(&self, n: u64) {
        self.states.fetch_add(n, Ordering::Relaxed);
    }

    /// An error if any searcher has found the budget spent.
    pub(crate) fn stopped(&self) -> Result<(), UnknownReason> {
        match self.stop.load(Ordering::Relaxed) {
            STOP_NONE => Ok(()),
            STOP_STATES => Err(UnknownReason::StatesExhausted {
                states_max: self.states_max,
            }),
            _ => Err(UnknownReason::TimeExhausted {
                time_ms_max: self.deadline.map_or(0, |(_, ms)| ms),
            }),
        }
    }

    /// Asks every search sharing this budget to stop: the verdict is already known.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Budget::cancel`] was called.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// States charged so far.
    pub(crate) fn states(&self) -> u64 {
        self.states.load(Ordering::Relaxed)
    }
}
