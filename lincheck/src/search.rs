//! The search for a linearization of one partition (Wing & Gong; Lowe, "Testing for
//! linearizability", 2017, with the just-in-time refinement Porcupine uses).
//!
//! A *configuration* is the set `S` of ops linearized so far and the model state after
//! them. Let `min_ret` be the earliest return among required ops outside `S`. An op
//! `x ∉ S` may be linearized next iff `call(x) <= min_ret`: no pending op returned
//! before `x` was invoked. These *candidates* are a prefix of the unlinearized ops in
//! invoke order, kept in a doubly linked list (unlinearized ops by invoke time) and a
//! second list (required unlinearized ops by return time, whose head is `min_ret`);
//! linearizing an op unlinks it from both in O(1) and backtracking relinks it.
//!
//! Every linearized op was a candidate when chosen, and `min_ret` only grows, so every
//! op of `S` has `call <= min_ret`: `S` is exactly the ops with `call <= min_ret` minus
//! the current candidates (the *holes*). `(|S|, holes, state)` is thus a canonical key
//! for the memo, compared exactly; its hash is the Zobrist xor of `S`'s per-op keys,
//! updated in O(1) per step.
//!
//! Candidates are tried in order of return time, optional ones last by invoke time: the
//! op that must return first is linearized first (Lowe's just-in-time idea), which
//! keeps the search from committing early to orders a later read refutes.
//!
//! Pruning on top of the memo, each sound on its own:
//! - *Greedy reads*: if a candidate `r` that never changes state is legal now, commit
//!   it without branching. Any linearization from `(S, s)` can move `r` to the front:
//!   `r`'s invoke precedes every pending return, and moving a state-preserving op
//!   changes no other op's state. So `(S, s)` succeeds iff `(S+r, s)` does, and a
//!   forced frame is popped straight through when backtracking. (Optional ops with a
//!   deadline, which only the shrinker makes, can forbid the move: then `r` is an
//!   ordinary branch.)
//! - *Interchangeable info ops*: pending optional ops with identical input never return;
//!   once the earliest is a candidate all are, so the search tries only the earliest.
//! - *Dead reads*: for models with a notion of growth (strings under append), a pending
//!   read the state has grown past can only be rescued by a non-monotone op (a put)
//!   invoked before the read returns, and only by one the model says may rescue it (a
//!   put of a prefix of the value read); if there is none, the configuration fails. A
//!   crashed put that never returns therefore no longer turns this pruning off for the
//!   rest of the key's history.
//! - Optional ops are never needed: success is every *required* op linearized.
//! - *Useless info ops*: an optional op whose step leaves the state unchanged is never
//!   tried (dropping it from a linearization changes no state, and an optional op may
//!   always not happen), nor is a *blind* op (legal everywhere, result independent of
//!   the state: a write, a put) right after an optional op: dropping that optional op
//!   leaves the state after the blind op, and so every later one, unchanged. The
//!   blind op is tried from the parent configuration instead. The second rule depends
//!   on the path (the op before), so a configuration where it pruned anything is
//!   never marked finished in the memo and never dominates another.
//! - *Value abstraction* (in the models, [`crate::model::Observed`]): values no op
//!   observes are one value, so crashed writes of distinct values nobody reads are
//!   identical ops and the rule above leaves one of them.
//!
//! The search is iterative, with an explicit stack of frames (one per linearized op),
//! so its memory is O(ops) plus the bounded memo.

pub(crate) mod budget;
mod engine;
pub(crate) mod memo;
pub(crate) mod prepare;

use serde::{Deserialize, Serialize};

use budget::UnknownReason;
pub(crate) use engine::search;

/// Which prunings the search applies (all on by default; switching one off is for
/// measurement and for testing that each is sound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruning {
    /// Memoise visited configurations.
    pub memo: bool,
    /// Commit legal state-preserving candidates without branching.
    pub greedy: bool,
    /// Try only the earliest of identical pending info ops.
    pub info_dedup: bool,
    /// Abandon a configuration where a pending read can no longer become legal
    /// (see `Model::may_become_legal`).
    pub dead_reads: bool,
    /// Never linearize an optional op that leaves the state as it is, nor a blind op
    /// (`Model::blind`) right after an optional one.
    #[serde(default = "yes")]
    pub useless_info: bool,
}

fn yes() -> bool {
    true
}

impl Default for Pruning {
    fn default() -> Self {
        Pruning {
            memo: true,
            greedy: true,
            info_dedup: true,
            dead_reads: true,
            useless_info: true,
        }
    }
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Valid,
    Invalid,
    Unknown(UnknownReason),
    /// The search's own state cap was reached (it may be retried with a larger one).
    Capped,
    /// Another partition settled the verdict.
    Cancelled,
}

/// The result of searching one partition.
#[derive(Debug)]
pub(crate) struct SearchResult<S> {
    pub(crate) end: End,
    /// Configurations visited.
    pub(crate) states: u64,
    /// The largest linearized set reached, in linearization order (prepared indices).
    pub(crate) deepest: Vec<u32>,
    /// At the deepest configuration, the required op with the earliest return.
    pub(crate) stuck: Option<u32>,
    /// The model state at the deepest configuration.
    pub(crate) deepest_state: S,
}
