//! One partition made ready for the search: ops converted by the model, sorted by invoke
//! time, with everything the hot loop needs in flat arrays.
//!
//! Two reductions happen here, both sound by themselves:
//! - `fail` ops are dropped (they did not take effect);
//! - optional (`info`) ops that cannot change the state are dropped: an op that may
//!   never happen and never changes anything constrains nothing.
//!
//! Times are replaced by their ranks among the partition's distinct times (same order,
//! same ties) when some time reaches the internal markers (`NEVER - 1` and up), so no
//! input time can collide with them: a completion at `u64::MAX` is an ordinary time.
//! Partitions whose times are all below keep them as they are (same order, same ties). The model first sees every op at
//! once ([`Model::prepare`]) to learn which values are observed.
//!
//! Optional ops with identical converted form (same input, unknown output) are chained
//! through `dup_prev`, so the search tries only the earliest pending one of each class.

use std::collections::HashMap;

use crate::history::{Op, Outcome};
use crate::model::{Model, ModelError};

/// No op.
pub(crate) const NONE: u32 = u32::MAX;
/// The return time of an op that never returned.
pub(crate) const NEVER: u64 = u64::MAX;

/// A partition ready for the search; op `i` is the `i`-th by invoke time.
#[derive(Debug)]
pub(crate) struct Prepared<M: Model> {
    /// The model instance (it may intern values).
    pub(crate) model: M,
    /// Converted ops.
    pub(crate) ops: Vec<M::Op>,
    /// Invoke times, non-decreasing.
    pub(crate) call: Vec<u64>,
    /// Return times (ranks); `NEVER` for optional ops.
    pub(crate) ret: Vec<u64>,
    /// Whether the op must be linearized (exactly the ops whose `ret` is not `NEVER`).
    pub(crate) required: Vec<bool>,
    /// Whether the op is legal everywhere with a result independent of the state.
    pub(crate) blind: Vec<bool>,
    /// For optional ops, the latest time they may take effect (`NEVER` for `info`
    /// ops that never returned); `NEVER` for required ops.
    pub(crate) deadline: Vec<u64>,
    /// Whether the op can never change the state.
    pub(crate) read_only: Vec<bool>,
    /// Whether the op never moves the state backwards (see `Model::monotone`).
    pub(crate) monotone: Vec<bool>,
    /// The previous optional op identical to this one, or `NONE`.
    pub(crate) dup_prev: Vec<u32>,
    /// Index of the op in the history.
    pub(crate) origin: Vec<usize>,
    /// Number of ops that must be linearized.
    pub(crate) n_required: usize,
}

impl<M: Model> Prepared<M> {
    /// Converts and sorts `ops` (history index, op).
    pub(crate) fn new<'a>(
        mut model: M,
        ops: impl IntoIterator<Item = (usize, &'a Op)>,
    ) -> Result<Self, ModelError> {
        struct Row<O> {
            call: u64,
            ret: u64,
            deadline: u64,
            origin: usize,
            op: O,
            read_only: bool,
            monotone: bool,
            blind: bool,
        }
        let ops: Vec<(usize, &Op)> = ops
            .into_iter()
            .filter(|(_, op)| op.outcome != Outcome::Fail)
            .collect();
        model.prepare(&ops.iter().map(|&(_, op)| op).collect::<Vec<_>>());
        // Ranks of the distinct times: at most 2 * ops < NEVER. Only needed when some
        // time could reach the internal markers (`NEVER - 1` and up); otherwise the
        // times themselves have the same order and ties.
        let near_never = ops
            .iter()
            .any(|(_, op)| op.call >= NEVER - 1 || op.ret.is_some_and(|t| t >= NEVER - 1));
        let times: Vec<u64> = if near_never {
            let mut times: Vec<u64> = ops
                .iter()
                .flat_map(|(_, op)| [Some(op.call), op.ret])
                .flatten()
                .collect();
            times.sort_unstable();
            times.dedup();
            times
        } else {
            Vec::new()
        };
        let rank = |t: u64| {
            if near_never {
                times.binary_search(&t).expect("every time was collected") as u64
            } else {
                t
            }
        };
        let mut rows = Vec::with_capacity(ops.len());
        for (origin, op) in ops {
            let converted = model.convert(op)?;
            let read_only = model.read_only(&converted);
            let monotone = model.monotone(&converted);
            let blind = model.blind(&converted);
            let required = op.is_required();
            if !required && read_only {
                continue;
            }
            let call = rank(op.call);
            let ret = match (required, op.ret) {
                (true, Some(t)) => rank(t).max(call),
                (true, None) => NEVER - 1,
                _ => NEVER,
            };
            let deadline = match (required, op.ret) {
                (false, Some(t)) => rank(t).max(call),
                _ => NEVER,
            };
            rows.push(Row {
                call,
                ret,
                deadline,
                origin,
                op: converted,
                read_only,
                monotone,
                blind,
            });
        }
        rows.sort_by_key(|r| (r.call, r.origin));
        assert!(
            rows.len() < NONE as usize,
            "partition has fewer than 2^32 ops"
        );

        let mut last: HashMap<M::Op, u32> = HashMap::new();
        let mut dup_prev = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            // Only ops that may take effect at any later time are interchangeable.
            if r.ret == NEVER && r.deadline == NEVER {
                dup_prev.push(last.insert(r.op.clone(), i as u32).unwrap_or(NONE));
            } else {
                dup_prev.push(NONE);
            }
        }
        let n_required = rows.iter().filter(|r| r.ret != NEVER).count();
        let mut p = Prepared {
            model,
            ops: Vec::with_capacity(rows.len()),
            call: Vec::with_capacity(rows.len()),
            ret: Vec::with_capacity(rows.len()),
            required: Vec::with_capacity(rows.len()),
            blind: Vec::with_capacity(rows.len()),
            deadline: Vec::with_capacity(rows.len()),
            read_only: Vec::with_capacity(rows.len()),
            monotone: Vec::with_capacity(rows.len()),
            dup_prev,
            origin: Vec::with_capacity(rows.len()),
            n_required,
        };
        for r in rows {
            p.ops.push(r.op);
            p.call.push(r.call);
            p.ret.push(r.ret);
            p.required.push(r.ret != NEVER);
            p.blind.push(r.blind);
            p.deadline.push(r.deadline);
            p.read_only.push(r.read_only);
            p.monotone.push(r.monotone);
            p.origin.push(r.origin);
        }
        Ok(p)
    }

    /// Number of ops.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }
}
