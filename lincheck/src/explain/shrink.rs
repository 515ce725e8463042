//! Shrinking a failing partition to a minimal failing window.
//!
//! Removing an op from a history can make it *less* linearizable (drop the write a
//! read saw, and the read becomes impossible), so a subset found by plain deletion
//! explains nothing. Instead every op left out is *relaxed*: it may take effect within
//! its interval, or never; ops that cannot change the state are dropped.
//! Both only add linearizations, so a relaxed history that fails is a certificate that
//! the original fails.
//!
//! 1. Truncate: ops invoked after time `T` are dropped and ops pending at `T` relaxed
//!    (a prefix of a linearization is a linearization); of the ops returned by `T`,
//!    ones left out of the window that cannot change the state are dropped instead. Failing is monotone in `T`, so
//!    a binary search finds the earliest failing prefix.
//! 2. Delta debugging (Zeller & Hildebrandt, "Simplifying and Isolating
//!    Failure-Inducing Input", 2002, `ddmin`) over the required ops of that prefix,
//!    iteratively: try each chunk alone, then each complement, refine the split.
//!
//! Every test is a bounded search; one that runs out of its states counts as passing,
//! so the result always fails, and it is reported as minimal only if ddmin finished
//! with every test conclusive.

use std::time::Instant;

use crate::explain::{OpRef, Window};
use crate::history::{History, Op, Outcome, Value};
use crate::model::Model;
use crate::search::budget::Budget;
use crate::search::memo::Memo;
use crate::search::prepare::Prepared;
use crate::search::{search, End, Pruning};

/// Limits for one shrink.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShrinkLimits {
    /// States over all tests.
    pub(crate) states_max: u64,
    /// States for one test.
    pub(crate) test_states_max: u64,
    /// Wall time over all tests.
    pub(crate) time_ms_max: Option<u64>,
    /// Memo bytes.
    pub(crate) memo_bytes_max: usize,
    /// Pruning for the tests.
    pub(crate) pruning: Pruning,
}

struct Tester<'a, M: Model, F: Fn() -> M> {
    make: F,
    history: &'a History,
    /// The partition's ops (history indices) by invoke time, `fail` ops excluded.
    ops: Vec<usize>,
    /// Whether each of `ops` can never change the state.
    read_only: Vec<bool>,
    memo: Memo<M::State>,
    limits: ShrinkLimits,
    started: Instant,
    states: u64,
    tests: u64,
    /// The overall limits ran out.
    exhausted: bool,
    /// Some test ran out of its own states: it counted as passing, unproven.
    inconclusive: bool,
}

impl<M: Model, F: Fn() -> M> Tester<'_, M, F> {
    /// Whether the prefix up to `t`, with only `definite` ops (positions in `ops`, sorted)
    /// kept as recorded, is certainly not linearizable.
    fn fails(&mut self, t: u64, definite: &[usize]) -> bool {
        let spent_ms = self.started.elapsed().as_millis() as u64;
        let time_left = self
            .limits
            .time_ms_max
            .map(|ms| ms.saturating_sub(spent_ms));
        if self.states >= self.limits.states_max || time_left == Some(0) {
            self.exhausted = true;
            return false;
        }
        self.tests += 1;
        let mut kept: Vec<(usize, Op)> = Vec::new();
        let mut d = definite.iter().peekable();
        for (pos, &index) in self.ops.iter().enumerate() {
            let op = &self.history.ops[index];
            let is_definite = d.next_if_eq(&&pos).is_some();
            if op.call > t {
                continue;
            }
            let returned = op.ret.is_some_and(|r| r <= t);
            if is_definite && returned {
                kept.push((index, op.clone()));
            } else if returned && !self.read_only[pos] {
                kept.push((index, op.relaxed_within()));
            } else if !returned {
                // Still pending at `t`: it may take effect at any later time, even if
                // its (future) outcome would have made it read-only.
                kept.push((index, op.relaxed()));
            }
            // A returned read-only op is dropped: removing it from a linearization
            // keeps it legal.
        }
        let Ok(mut p) = Prepared::new((self.make)(), kept.iter().map(|(i, op)| (*i, op))) else {
            return false;
        };
        let test_max = self
            .limits
            .test_states_max
            .min(self.limits.states_max - self.states);
        let budget = Budget::new(test_max, time_left);
        let result = search(
            &mut p,
            &mut self.memo,
            &budget,
            self.limits.pruning,
            u64::MAX,
        );
        self.states += result.states;
        if matches!(result.end, End::Unknown(_)) {
            self.inconclusive = true;
        }
        result.end == End::Invalid
    }
}

/// Shrinks the failing partition `indices` (history indices) of `history` under the
/// model made by `make`. `None` if even the whole partition could not be shown to fail
/// within the limits.
pub(crate) fn window<M: Model, F: Fn() -> M>(
    make: F,
    history: &History,
    key: &Value,
    indices: &[usize],
    limits: ShrinkLimits,
) -> Option<Window> {
    let mut ops: Vec<usize> = indices
        .iter()
        .copied()
        .filter(|&i| history.ops[i].outcome != Outcome::Fail)
        .collect();
    ops.sort_by_key(|&i| (history.ops[i].call, i));
    let mut scratch = make();
    let read_only = ops
        .iter()
        .map(|&i| {
            scratch
                .convert(&history.ops[i])
                .map(|op| scratch.read_only(&op))
                .unwrap_or(false)
        })
        .collect();
    let mut tester = Tester {
        make,
        history,
        ops,
        read_only,
        memo: Memo::new(limits.memo_bytes_max),
        limits,
        started: Instant::now(),
        states: 0,
        tests: 0,
        exhausted: false,
        inconclusive: false,
    };
    let required = |tester: &Tester<M, F>, t: u64| -> Vec<usize> {
        (0..tester.ops.len())
            .filter(|&pos| {
                let op = &history.ops[tester.ops[pos]];
                op.is_required() && op.ret.is_some_and(|r| r <= t)
            })
            .collect()
    };

    // 1. The earliest failing prefix, ending at a return.
    let mut ends: Vec<u64> = tester
        .ops
        .iter()
        .filter_map(|&i| Some(history.ops[i].ret?).filter(|_| history.ops[i].is_required()))
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let last = *ends.last()?;
    let all = required(&tester, last);
    if !tester.fails(last, &all) {
        return None;
    }
    let (mut lo, mut hi) = (0, ends.len() - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let defs = required(&tester, ends[mid]);
        if tester.fails(ends[mid], &defs) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let t = ends[hi];

    // 2. ddmin over the required ops of the prefix.
    let mut d = required(&tester, t);
    let mut n = 2usize;
    tester.inconclusive = false;
    while d.len() >= 2 && !tester.exhausted {
        let chunks = split(&d, n);
        let mut reduced = false;
        for chunk in &chunks {
            if tester.fails(t, chunk) {
                d = chunk.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && n > 2 {
            for chunk in &chunks {
                let rest: Vec<usize> = d
                    .iter()
                    .copied()
                    .filter(|x| chunk.binary_search(x).is_err())
                    .collect();
                if tester.fails(t, &rest) {
                    d = rest;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= d.len() {
                break;
            }
            n = (2 * n).min(d.len());
        }
    }
    let in_prefix = tester
        .ops
        .iter()
        .filter(|&&i| history.ops[i].call <= t)
        .count();
    Some(Window {
        key: key.clone(),
        ops: d
            .iter()
            .map(|&pos| OpRef::new(history, tester.ops[pos]))
            .collect(),
        relaxed: in_prefix - d.len(),
        truncated_at: t,
        minimal: !tester.exhausted && !tester.inconclusive,
        tests: tester.tests,
    })
}

/// Splits `d` into `n` contiguous chunks of near-equal size.
fn split(d: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.min(d.len()).max(1);
    (0..n)
        .map(|i| d[i * d.len() / n..(i + 1) * d.len() / n].to_vec())
        .collect()
}
