//! The search loop: configurations, candidate order, the explicit stack.

use crate::model::Model;
use crate::search::budget::{Budget, UnknownReason, CHARGE_STATES};
use crate::search::memo::{hash_state, splitmix64, EntryId, Memo, Visit};
use crate::search::prepare::{Prepared, NEVER, NONE};
use crate::search::{End, Pruning, SearchResult};

/// One linearized op and how to resume its parent configuration.
#[derive(Debug, Clone, Copy)]
struct Frame<S> {
    op: u32,
    /// The parent's state.
    state: S,
    /// Chosen by greedy commitment: the parent has no other alternative.
    forced: bool,
    /// The parent's required candidates, by return time, in `order[at..at + len]`.
    at: u32,
    len: u32,
    /// Position of `op` in that list (`len` for an optional op).
    pos: u32,
    /// The memo entry of the configuration this frame leads to.
    entry: EntryId,
    /// The parent's latest invoke among linearized ops.
    max_call: u64,
}

enum Next {
    Arrive,
    /// Try required candidates `order[at + pos..at + len]`, then optional ones from
    /// `cursor` in the invoke-order list.
    Scan {
        at: u32,
        len: u32,
        pos: u32,
        cursor: u32,
    },
    Backtrack,
}

/// Circular doubly linked lists over ops `0..n` with sentinel `n`.
struct Lists {
    /// All unlinearized ops by invoke time.
    cnext: Vec<u32>,
    cprev: Vec<u32>,
    /// Required unlinearized ops by return time.
    rnext: Vec<u32>,
    rprev: Vec<u32>,
    /// Non-monotone unlinearized ops by invoke time.
    mnext: Vec<u32>,
    mprev: Vec<u32>,
    monotone: Vec<bool>,
}

impl Lists {
    fn new(ret: &[u64], monotone: &[bool]) -> Self {
        let n = ret.len() as u32;
        let (mnext, mprev) = chain(n, (0..n).filter(|&i| !monotone[i as usize]));
        let mut by_ret: Vec<(u64, u32)> = (0..n)
            .filter(|&i| ret[i as usize] != NEVER)
            .map(|i| (ret[i as usize], i))
            .collect();
        by_ret.sort_unstable();
        let (rnext, rprev) = chain(n, by_ret.into_iter().map(|(_, i)| i));
        let (cnext, cprev) = chain(n, 0..n);
        Lists {
            cnext,
            cprev,
            rnext,
            rprev,
            mnext,
            mprev,
            monotone: monotone.to_vec(),
        }
    }

    #[inline]
    fn lift(&mut self, x: usize, required: bool) {
        unlink(&mut self.cnext, &mut self.cprev, x);
        if required {
            unlink(&mut self.rnext, &mut self.rprev, x);
        }
        if !self.monotone[x] {
            unlink(&mut self.mnext, &mut self.mprev, x);
        }
    }

    /// Undoes the latest `lift`: lifts are undone in reverse order (dancing links).
    #[inline]
    fn unlift(&mut self, x: usize, required: bool) {
        if !self.monotone[x] {
            relink(&mut self.mnext, &mut self.mprev, x);
        }
        relink(&mut self.cnext, &mut self.cprev, x);
        if required {
            relink(&mut self.rnext, &mut self.rprev, x);
        }
    }
}

/// A circular list with sentinel `n` through `items`, in order: `(next, prev)`.
fn chain(n: u32, items: impl Iterator<Item = u32>) -> (Vec<u32>, Vec<u32>) {
    let mut next = vec![n; n as usize + 1];
    let mut prev = vec![n; n as usize + 1];
    let mut last = n;
    for i in items {
        next[last as usize] = i;
        prev[i as usize] = last;
        last = i;
    }
    next[last as usize] = n;
    prev[n as usize] = last;
    (next, prev)
}

#[inline]
fn unlink(next: &mut [u32], prev: &mut [u32], x: usize) {
    let (p, n) = (prev[x], next[x]);
    next[p as usize] = n;
    prev[n as usize] = p;
}

#[inline]
fn relink(next: &mut [u32], prev: &mut [u32], x: usize) {
    let (p, n) = (prev[x], next[x]);
    next[p as usize] = x as u32;
    prev[n as usize] = x as u32;
}

/// Whether some unlinearized non-monotone op invoked before read `x` returns (at
/// `x_ret`) may make `x` legal again (`Model::may_rescue`).
fn rescuable<M: Model>(p: &mut Prepared<M>, lists: &Lists, head: u32, x: u32, x_ret: u64) -> bool {
    let mut m = lists.mnext[head as usize];
    while m != head && p.call[m as usize] <= x_ret {
        if p.model.may_rescue(&p.ops[m as usize], &p.ops[x as usize]) {
            return true;
        }
        m = lists.mnext[m as usize];
    }
    false
}

/// Searches `p` for a linearization, giving up after about `cap` states (`End::Capped`).
/// `memo` is cleared first (and may be reused).
pub(crate) fn search<M: Model>(
    p: &mut Prepared<M>,
    memo: &mut Memo<M::State>,
    budget: &Budget,
    pruning: Pruning,
    cap: u64,
) -> SearchResult<M::State> {
    memo.clear();
    let n = p.len();
    let head = n as u32;
    let mut lists = Lists::new(&p.ret, &p.monotone);
    let mut ret = p.ret.clone();
    ret.push(NEVER);
    let required = p.required.clone();
    // Zobrist keys of required ops; optional ops are matched by dominance, not hashed.
    let zobrist: Vec<u64> = (0..n)
        .map(|i| if required[i] { splitmix64(i as u64) } else { 0 })
        .collect();
    let mut lin = vec![0u64; n.div_ceil(64)];
    let is_lin = |lin: &[u64], x: u32| lin[x as usize / 64] & (1 << (x % 64)) != 0;

    let mut state = p.model.init();
    let mut set_hash = 0u64;
    // The latest invoke among linearized ops: an optional op with a deadline before it
    // can no longer take effect.
    let mut max_call = 0u64;
    let mut required_done = 0usize;
    let mut stack: Vec<Frame<M::State>> = Vec::with_capacity(n);
    let mut order: Vec<u32> = Vec::new();
    let mut req_holes: Vec<u32> = Vec::new();
    let mut opt_holes: Vec<u32> = Vec::new();
    let mut states = 0u64;
    let mut charged = 0u64;
    let mut deepest: Vec<u32> = Vec::new();
    let mut deepest_valid = 0usize;
    let mut stuck = None;
    let mut deepest_state = state;
    let mut next = Next::Arrive;

    let end = loop {
        match next {
            Next::Arrive => {
                if required_done == p.n_required {
                    break End::Valid;
                }
                states += 1;
                if states - charged >= CHARGE_STATES {
                    let spent = budget.charge(states - charged);
                    charged = states;
                    if let Err(reason) = spent {
                        break End::Unknown(reason);
                    }
                    if budget.cancelled() {
                        break End::Cancelled;
                    }
                    if states >= cap {
                        break End::Capped;
                    }
                    // The model's own states count against the same budget as the memo.
                    if p.model.heap_bytes() > memo.bytes_max() {
                        break End::Unknown(UnknownReason::MemoryExhausted {
                            bytes_max: memo.bytes_max() as u64,
                        });
                    }
                }
                if stack.len() > deepest.len() || stuck.is_none() {
                    deepest.truncate(deepest_valid);
                    deepest.extend(stack[deepest_valid..].iter().map(|f| f.op));
                    deepest_valid = stack.len();
                    stuck = Some(lists.rnext[n]);
                    deepest_state = state;
                }
                let min_ret = ret[lists.rnext[n] as usize];
                let at = order.len();
                req_holes.clear();
                opt_holes.clear();
                let mut greedy = NONE;
                let mut deadline_min = NEVER;
                let mut dead = false;
                let mut x = lists.cnext[n];
                while x != head && p.call[x as usize] <= min_ret {
                    let xi = x as usize;
                    if required[xi] {
                        req_holes.push(x);
                    } else {
                        opt_holes.push(x);
                        if p.deadline[xi] >= max_call {
                            deadline_min = deadline_min.min(p.deadline[xi]);
                        }
                    }
                    if pruning.greedy && p.read_only[xi] {
                        if p.model.step(state, &p.ops[xi]).is_some() {
                            greedy = greedy.min(x);
                            // Tried as a branch if greedy commitment is not allowed.
                            order.push(x);
                        } else if pruning.dead_reads
                            && !p.model.may_become_legal(state, &p.ops[xi])
                            && !rescuable(p, &lists, head, x, ret[xi])
                        {
                            dead = true;
                            break;
                        }
                    } else if required[xi] {
                        order.push(x);
                    }
                    x = lists.cnext[xi];
                }
                // Moving a read to the front must not push it past the deadline of
                // an optional op that could still take effect before it.
                if greedy != NONE && p.call[greedy as usize] > deadline_min {
                    greedy = NONE;
                }
                if dead {
                    order.truncate(at);
                    next = Next::Backtrack;
                    continue;
                }
                if pruning.memo {
                    let key = set_hash ^ hash_state(&state).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    match memo.visit(key, state, required_done as u32, &req_holes, &opt_holes) {
                        Visit::Dominated => {
                            order.truncate(at);
                            next = Next::Backtrack;
                            continue;
                        }
                        Visit::New(id) => {
                            if let Some(f) = stack.last_mut() {
                                f.entry = id;
                            }
                        }
                    }
                }
                if greedy != NONE {
                    order.truncate(at);
                    stack.push(Frame {
                        op: greedy,
                        state,
                        forced: true,
                        at: at as u32,
                        len: 0,
                        pos: 0,
                        entry: EntryId::NONE,
                        max_call,
                    });
                    let g = greedy as usize;
                    lists.lift(g, required[g]);
                    required_done += usize::from(required[g]);
                    max_call = max_call.max(p.call[g]);
                    lin[g / 64] |= 1 << (g % 64);
                    set_hash ^= zobrist[g];
                    next = Next::Arrive;
                } else {
                    // Lowe's just-in-time order: the op that must return first goes first.
                    order[at..].sort_unstable_by_key(|&x| (ret[x as usize], x));
                    next = Next::Scan {
                        at: at as u32,
                        len: (order.len() - at) as u32,
                        pos: 0,
                        cursor: lists.cnext[n],
                    };
                }
            }
            Next::Scan {
                at,
                len,
                mut pos,
                mut cursor,
            } => {
                next = Next::Backtrack;
                let mut chosen = NONE;
                // An optional op directly followed by a blind op was useless (see
                // `search.rs`); this pruning depends on the path, so a configuration
                // that used it is never marked finished in the memo.
                let after_optional =
                    pruning.useless_info && stack.last().is_some_and(|f| !required[f.op as usize]);
                while pos < len {
                    let x = order[(at + pos) as usize];
                    if after_optional && p.blind[x as usize] {
                        if let Some(f) = stack.last_mut() {
                            f.entry = EntryId::NONE;
                        }
                        pos += 1;
                        continue;
                    }
                    if let Some(after) = p.model.step(state, &p.ops[x as usize]) {
                        chosen = x;
                        stack.push(Frame {
                            op: x,
                            state,
                            forced: false,
                            at,
                            len,
                            pos,
                            entry: EntryId::NONE,
                            max_call,
                        });
                        state = after;
                        break;
                    }
                    pos += 1;
                }
                if chosen == NONE {
                    let min_ret = ret[lists.rnext[n] as usize];
                    while cursor != head && p.call[cursor as usize] <= min_ret {
                        let x = cursor;
                        let xi = x as usize;
                        cursor = lists.cnext[xi];
                        if required[xi] || p.deadline[xi] < max_call {
                            // Required ops are in `order`; legal read-only ones would
                            // have been committed on arrival.
                            continue;
                        }
                        let d = p.dup_prev[xi];
                        if pruning.info_dedup && d != NONE && !is_lin(&lin, d) {
                            continue;
                        }
                        if after_optional && p.blind[xi] {
                            if let Some(f) = stack.last_mut() {
                                f.entry = EntryId::NONE;
                            }
                            continue;
                        }
                        if let Some(after) = p.model.step(state, &p.ops[xi]) {
                            // An optional op that changes nothing is never needed.
                            if pruning.useless_info && after == state {
                                continue;
                            }
                            chosen = x;
                            stack.push(Frame {
                                op: x,
                                state,
                                forced: false,
                                at,
                                len,
                                pos: len,
                                entry: EntryId::NONE,
                                max_call,
                            });
                            state = after;
                            break;
                        }
                    }
                }
                if chosen != NONE {
                    let c = chosen as usize;
                    lists.lift(c, required[c]);
                    required_done += usize::from(required[c]);
                    max_call = max_call.max(p.call[c]);
                    lin[c / 64] |= 1 << (c % 64);
                    set_hash ^= zobrist[c];
                    next = Next::Arrive;
                }
            }
            Next::Backtrack => {
                let mut resumed = false;
                while let Some(frame) = stack.pop() {
                    let x = frame.op as usize;
                    memo.finish(frame.entry);
                    lists.unlift(x, required[x]);
                    required_done -= usize::from(required[x]);
                    lin[x / 64] &= !(1 << (x % 64));
                    set_hash ^= zobrist[x];
                    state = frame.state;
                    max_call = frame.max_call;
                    order.truncate((frame.at + frame.len) as usize);
                    deepest_valid = deepest_valid.min(stack.len());
                    if !frame.forced {
                        next = Next::Scan {
                            at: frame.at,
                            len: frame.len,
                            pos: (frame.pos + 1).min(frame.len),
                            cursor: if required[x] {
                                lists.cnext[n]
                            } else {
                                lists.cnext[x]
                            },
                        };
                        resumed = true;
                        break;
                    }
                }
                if !resumed {
                    break End::Invalid;
                }
            }
        }
    };
    budget.settle(states - charged);
    SearchResult {
        end,
        states,
        deepest,
        stuck: stuck.filter(|&s| s != head),
        deepest_state,
    }
}
