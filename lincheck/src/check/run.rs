//! Running the partition searches of one check: threads, rounds, early exit.
//!
//! Partitions are searched in rounds with a growing per-partition state cap, so one
//! hard partition cannot hold up the verdict when another is quickly refuted: a history
//! is invalid as soon as one partition is, and the remaining searches are cancelled
//! (unless every partition is wanted). A capped search restarts from scratch in the
//! next round; the caps grow 32-fold, so restarts cost at most a few percent. The last
//! round's cap is the per-key budget (`CheckOptions::key_states_max`): a partition
//! that reaches it is `Unknown` on its own while the others are decided.
//! Within a round, worker threads take partitions largest first from a shared counter.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::model::Model;
use crate::search::budget::{Budget, UnknownReason};
use crate::search::memo::Memo;
use crate::search::prepare::Prepared;
use crate::search::{search, End, Pruning, SearchResult};

/// Per-partition state caps of the first rounds; the last round's is the per-key
/// budget.
const ROUND_CAPS: [u64; 2] = [1 << 14, 1 << 19];

/// A finished (or abandoned) partition search.
pub(crate) struct Done<S> {
    pub(crate) result: SearchResult<S>,
    /// The model state at the deepest configuration, rendered.
    pub(crate) describe: String,
}

/// What the runner needs from the options.
pub(crate) struct RunConfig {
    pub(crate) threads: usize,
    pub(crate) memo_bytes_max: usize,
    pub(crate) pruning: Pruning,
    /// Stop at the first invalid partition.
    pub(crate) early_exit: bool,
    /// States one partition may explore; past it that partition is unknown.
    pub(crate) key_states_max: u64,
}

/// Memo counters summed over threads.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MemoCounts {
    pub(crate) evictions: u64,
    pub(crate) bytes_peak: usize,
}

/// Searches every partition; `None` for partitions never searched (cancelled first).
pub(crate) fn run<M: Model>(
    prepared: &[Mutex<Prepared<M>>],
    budget: &Budget,
    cfg: &RunConfig,
) -> (Vec<Option<Done<M::State>>>, MemoCounts) {
    let mut results: Vec<Mutex<Option<Done<M::State>>>> =
        (0..prepared.len()).map(|_| Mutex::new(None)).collect();
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(prepared[i].lock().expect("unpoisoned").len()));
    let mut counts = MemoCounts::default();
    let last = cfg.key_states_max;
    let caps = ROUND_CAPS.into_iter().filter(|&c| c < last).chain([last]);
    for cap in caps {
        let pending: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| {
                results[i]
                    .get_mut()
                    .expect("unpoisoned")
                    .as_ref()
                    .is_none_or(|d| d.result.end == End::Capped)
            })
            .collect();
        if pending.is_empty() || budget.cancelled() || budget.stopped().is_err() {
            break;
        }
        let threads = cfg.threads.clamp(1, pending.len());
        // Concurrent searches need no cap to keep one from holding up the others.
        let cap = if pending.len() <= threads { last } else { cap };
        let memo_share = cfg.memo_bytes_max / threads;
        let next = AtomicUsize::new(0);
        let worker = || {
            let mut memo = Memo::new(memo_share);
            while let Some(&i) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                if budget.cancelled() || budget.charge(0).is_err() {
                    break;
                }
                let mut p = prepared[i].lock().expect("unpoisoned");
                let result = search(&mut p, &mut memo, budget, cfg.pruning, cap);
                if result.end == End::Invalid && cfg.early_exit {
                    budget.cancel();
                }
                let describe = p.model.describe(result.deepest_state);
                // A later round restarts from scratch; a finished key needs no states.
                p.model.forget_states();
                *results[i].lock().expect("unpoisoned") = Some(Done { result, describe });
            }
            MemoCounts {
                evictions: memo.evictions,
                bytes_peak: memo.bytes_peak,
            }
        };
        let round: Vec<MemoCounts> = if threads == 1 {
            vec![worker()]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("search threads do not panic"))
                    .collect()
            })
        };
        counts.evictions += round.iter().map(|c| c.evictions).sum::<u64>();
        counts.bytes_peak = counts
            .bytes_peak
            .max(round.iter().map(|c| c.bytes_peak).sum());
    }
    let results = results
        .into_iter()
        .map(|m| {
            let mut done = m.into_inner().expect("unpoisoned");
            // Capped at the per-key budget: that key is unknown.
            if let Some(d) = done.as_mut().filter(|d| d.result.end == End::Capped) {
                d.result.end = End::Unknown(UnknownReason::KeyStatesExhausted {
                    key_states_max: last,
                });
            }
            done
        })
        .collect();
    (results, counts)
}
