//! Every small history against a brute-force checker.
//!
//! Two clients issue up to 3 (or 4, over a smaller alphabet) ops; every interleaving of
//! their invoke and completion events and every op from a per-model alphabet of small
//! values is checked. An `info` op's client carries on under a new process, so a
//! crashed op may stay pending while later ops run. The reference tries every order of
//! the required ops plus any subset of the `info` ops that respects real time, with a
//! sequential specification written independently of the library's models. Each
//! history is checked with every pruning on and with every pruning off; for a sample of
//! invalid ones the minimal failing window is checked to fail under the reference too.
//! A property test adds random histories of every model with mostly crashed ops.

use std::collections::BTreeMap;

use lincheck::{
    check, CheckOptions, History, Input, ModelKind, Op, OpOutcome, Pruning, Value, Verdict,
};

/// An op before it is placed in time: key, input, outcome (ret is filled in later).
type Proto = (Value, Input, OpOutcome);

fn int(v: u64) -> Value {
    Value::Int(v)
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

/// The reference semantics: one step of a whole-history state (all keys).
fn spec_step(
    model: ModelKind,
    state: &BTreeMap<Value, Value>,
    op: &Op,
) -> Option<BTreeMap<Value, Value>> {
    let key = if model.per_key() {
        op.key.clone()
    } else {
        Value::Nil
    };
    let init = match model {
        ModelKind::KvStrings => s(""),
        _ => Value::Nil,
    };
    let cur = state.get(&key).cloned().unwrap_or(init);
    let known = match &op.outcome {
        OpOutcome::Ok(v) => Some(v.clone()),
        _ => None,
    };
    let next = match (&op.input, &op.outcome) {
        (Input::Read, _) => match known {
            Some(v) if v != cur => return None,
            _ => cur.clone(),
        },
        (Input::Write { value }, _) => value.clone(),
        (Input::Cas { from, .. }, OpOutcome::CompareFailed) => {
            if *from == cur {
                return None;
            }
            cur.clone()
        }
        (Input::Cas { from, to }, _) => {
            if *from != cur {
                return None;
            }
            to.clone()
        }
        (Input::Append { value }, _) => match (&cur, value) {
            (Value::Str(a), Value::Str(b)) => Value::Str(format!("{a}{b}")),
            _ => unreachable!("string model"),
        },
        (Input::Propose { value }, _) => {
            let decided = if cur == Value::Nil {
                value.clone()
            } else {
                cur.clone()
            };
            if known.is_some_and(|d| d != decided) {
                return None;
            }
            decided
        }
    };
    let mut out = state.clone();
    out.insert(key, next);
    Some(out)
}

/// Ops that cannot change the state under the reference semantics.
fn spec_read_only(op: &Op) -> bool {
    match (&op.input, &op.outcome) {
        (Input::Read, _) | (Input::Cas { .. }, OpOutcome::CompareFailed) => true,
        (Input::Cas { from, to }, _) => from == to,
        (Input::Propose { value }, OpOutcome::Ok(d)) => d != value,
        _ => false,
    }
}

/// Whether some order of the required ops and a subset of the info ops is legal (an
/// info op with a completion time must take effect before it, if at all).
fn brute_force(model: ModelKind, h: &History) -> bool {
    let ops: Vec<&Op> = h
        .ops
        .iter()
        .filter(|o| o.outcome != OpOutcome::Fail)
        .collect();
    fn go(
        model: ModelKind,
        ops: &[&Op],
        used: &mut Vec<bool>,
        state: BTreeMap<Value, Value>,
    ) -> bool {
        if ops
            .iter()
            .zip(used.iter())
            .all(|(o, &u)| u || !o.is_required())
        {
            return true;
        }
        for x in 0..ops.len() {
            if used[x] {
                continue;
            }
            let blocked = ops.iter().enumerate().any(|(y, o)| {
                !used[y] && y != x && o.is_required() && o.ret.is_some_and(|r| r < ops[x].call)
            });
            // An optional op with a completion time cannot follow an op invoked later.
            let expired = !ops[x].is_required()
                && ops[x]
                    .ret
                    .is_some_and(|r| ops.iter().zip(used.iter()).any(|(y, &u)| u && y.call > r));
            if blocked || expired {
                continue;
            }
            if let Some(next) = spec_step(model, &state, ops[x]) {
                used[x] = true;
                if go(model, ops, used, next) {
                    return true;
                }
                used[x] = false;
            }
        }
        false
    }
    go(model, &ops, &mut vec![false; ops.len()], BTreeMap::new())
}

/// The alphabet of ops for a model; `small` for the 4-op runs.
fn alphabet(model: ModelKind, small: bool) -> Vec<Proto> {
    use Input::*;
    use OpOutcome::*;
    let nil = Value::Nil;
    let mut a: Vec<Proto> = Vec::new();
    match model {
        ModelKind::Register | ModelKind::CasRegister => {
            let vals: &[u64] = if small { &[1] } else { &[1, 2] };
            a.push((nil.clone(), Read, Ok(nil.clone())));
            for &v in vals {
                a.push((nil.clone(), Read, Ok(int(v))));
                a.push((nil.clone(), Write { value: int(v) }, Ok(nil.clone())));
                a.push((nil.clone(), Write { value: int(v) }, Info));
            }
            if model == ModelKind::CasRegister {
                let pairs: &[(u64, u64)] = if small {
                    &[(1, 2)]
                } else {
                    &[(1, 2), (2, 1), (1, 1)]
                };
                for &(f, t) in pairs {
                    let cas = Cas {
                        from: int(f),
                        to: int(t),
                    };
                    a.push((nil.clone(), cas.clone(), Ok(nil.clone())));
                    a.push((nil.clone(), cas.clone(), CompareFailed));
                    a.push((nil.clone(), cas.clone(), Info));
                    if !small {
                        a.push((nil.clone(), cas, Fail));
                    }
                }
            }
        }
        ModelKind::Kv => {
            for k in [1, 2] {
                a.push((int(k), Read, Ok(nil.clone())));
                a.push((int(k), Read, Ok(int(1))));
                a.push((int(k), Write { value: int(1) }, Ok(nil.clone())));
                a.push((int(k), Write { value: int(1) }, Info));
                a.push((
                    int(k),
                    Cas {
                        from: int(1),
                        to: int(2),
                    },
                    Ok(nil.clone()),
                ));
                if !small {
                    a.push((int(k), Read, Ok(int(2))));
                    a.push((
                        int(k),
                        Cas {
                            from: int(1),
                            to: int(2),
                        },
                        Info,
                    ));
                }
            }
        }
        ModelKind::KvStrings => {
            let gets: &[&str] = if small {
                &["", "a", "ab"]
            } else {
                &["", "a", "b", "ab", "ba"]
            };
            for g in gets {
                a.push((nil.clone(), Read, Ok(s(g))));
            }
            a.push((nil.clone(), Append { value: s("a") }, Ok(nil.clone())));
            a.push((nil.clone(), Append { value: s("b") }, Ok(nil.clone())));
            a.push((nil.clone(), Append { value: s("b") }, Info));
            if !small {
                a.push((nil.clone(), Write { value: s("a") }, Ok(nil.clone())));
                a.push((nil.clone(), Append { value: s("a") }, Info));
            }
        }
        ModelKind::WriteOnce if small => {
            let propose = |v| Propose { value: int(v) };
            a.push((int(0), Read, Ok(nil.clone())));
            a.push((int(0), Read, Ok(int(1))));
            a.push((int(0), propose(1), Ok(int(1))));
            a.push((int(0), propose(2), Ok(int(2))));
            a.push((int(0), propose(2), Ok(int(1))));
            a.push((int(0), propose(2), Info));
        }
        ModelKind::WriteOnce => {
            let vals = [1, 2, 3];
            a.push((int(0), Read, Ok(nil.clone())));
            for v in vals {
                a.push((int(0), Read, Ok(int(v))));
                a.push((int(0), Propose { value: int(v) }, Info));
                for d in vals {
                    a.push((int(0), Propose { value: int(v) }, Ok(int(d))));
                }
            }
        }
    }
    a
}

/// Every sequence of client ids with `2 * counts[c]` entries for client `c`.
fn interleavings(counts: [usize; 2]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let total = 2 * (counts[0] + counts[1]);
    let mut stack = vec![(Vec::new(), [2 * counts[0], 2 * counts[1]])];
    while let Some((seq, left)) = stack.pop() {
        if seq.len() == total {
            out.push(seq);
            continue;
        }
        for c in 0..2 {
            if left[c] > 0 {
                let mut s2 = seq.clone();
                s2.push(c);
                let mut l2 = left;
                l2[c] -= 1;
                stack.push((s2, l2));
            }
        }
    }
    out
}

/// Places `protos` (client 0's ops first) on the event sequence `events`.
fn build(counts: [usize; 2], events: &[usize], protos: &[&Proto]) -> History {
    let mut ops: Vec<Op> = Vec::new();
    let mut next_op = [0, counts[0]];
    let mut open: [Option<usize>; 2] = [None, None];
    let mut process = [0u64, 1u64];
    let mut next_process = 2;
    for (t, &c) in events.iter().enumerate() {
        let t = t as u64;
        match open[c].take() {
            None => {
                let (key, input, outcome) = protos[next_op[c]].clone();
                next_op[c] += 1;
                open[c] = Some(ops.len());
                ops.push(Op {
                    process: process[c],
                    key,
                    input,
                    outcome,
                    call: t,
                    ret: None,
                });
            }
            Some(i) => {
                if ops[i].outcome == OpOutcome::Info {
                    process[c] = next_process;
                    next_process += 1;
                } else {
                    ops[i].ret = Some(t);
                }
            }
        }
    }
    History { ops }
}

fn no_pruning() -> Pruning {
    Pruning {
        memo: false,
        greedy: false,
        info_dedup: false,
        dead_reads: false,
        useless_info: false,
    }
}

/// Checks every history of `n_ops` ops over the alphabet; returns (histories, invalid).
fn exhaust(model: ModelKind, n_ops: usize, small: bool) -> (usize, usize) {
    let alphabet = alphabet(model, small);
    let fast = CheckOptions {
        threads: 1,
        minimize: false,
        ..CheckOptions::default()
    };
    let slow = CheckOptions {
        pruning: no_pruning(),
        ..fast.clone()
    };
    let shrink = CheckOptions {
        minimize: true,
        ..fast.clone()
    };
    let (mut total, mut invalid) = (0, 0);
    for a in 0..=n_ops {
        let counts = [a, n_ops - a];
        let shapes = interleavings(counts);
        let mut choice = vec![0usize; n_ops];
        loop {
            let protos: Vec<&Proto> = choice.iter().map(|&i| &alphabet[i]).collect();
            for events in &shapes {
                let h = build(counts, events, &protos);
                let expected = brute_force(model, &h);
                for opts in [&fast, &slow] {
                    let got = check(&h, model, opts).expect("alphabet fits the model");
                    assert_eq!(
                        got.verdict == Verdict::Valid,
                        expected,
                        "model {model}, pruning {:?}, history {:#?}",
                        opts.pruning,
                        h.ops
                    );
                }
                total += 1;
                if !expected {
                    invalid += 1;
                    if invalid % 37 == 1 {
                        check_window(model, &h, &shrink);
                    }
                }
            }
            // Next choice vector (odometer).
            let mut i = 0;
            while i < n_ops && choice[i] + 1 == alphabet.len() {
                choice[i] = 0;
                i += 1;
            }
            if i == n_ops {
                break;
            }
            choice[i] += 1;
        }
    }
    (total, invalid)
}

/// The window of an invalid history fails under the reference too, with every other
/// op relaxed and later ops dropped.
fn check_window(model: ModelKind, h: &History, opts: &CheckOptions) {
    let got = check(h, model, opts).expect("fits");
    let Verdict::Invalid { explanation } = got.verdict else {
        panic!("invalid history reported {:?}", got.verdict);
    };
    let w = explanation.window.expect("a window for a tiny history");
    assert!(w.minimal, "tiny histories shrink fully");
    let kept: Vec<usize> = w.ops.iter().map(|o| o.index).collect();
    let relaxed = History {
        ops: h
            .ops
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                o.outcome != OpOutcome::Fail
                    && o.call <= w.truncated_at
                    && (!model.per_key() || o.key == w.key)
            })
            .filter_map(|(i, o)| {
                let returned = o.ret.is_some_and(|r| r <= w.truncated_at);
                if kept.contains(&i) {
                    Some(o.clone())
                } else if !returned {
                    Some(o.relaxed())
                } else if spec_read_only(o) {
                    None
                } else {
                    Some(o.relaxed_within())
                }
            })
            .collect(),
    };
    assert!(
        !brute_force(model, &relaxed),
        "window {w:#?} of {h:#?} is linearizable"
    );
}

#[test]
fn register_up_to_3_ops() {
    let (n, bad) = exhaust(ModelKind::Register, 3, false);
    assert!(n > 10_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn cas_register_up_to_3_ops() {
    let (n, bad) = exhaust(ModelKind::CasRegister, 3, false);
    assert!(n > 100_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn cas_register_4_ops_small_values() {
    let (n, bad) = exhaust(ModelKind::CasRegister, 4, true);
    assert!(n > 100_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn kv_up_to_3_ops_two_keys() {
    let (n, bad) = exhaust(ModelKind::Kv, 3, false);
    assert!(n > 10_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn kv_strings_up_to_3_ops() {
    let (n, bad) = exhaust(ModelKind::KvStrings, 3, false);
    assert!(n > 10_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn kv_strings_4_ops_small() {
    let (n, bad) = exhaust(ModelKind::KvStrings, 4, true);
    assert!(n > 10_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn write_once_up_to_3_ops() {
    let (n, bad) = exhaust(ModelKind::WriteOnce, 3, false);
    assert!(n > 10_000 && bad > 0, "{n} histories, {bad} invalid");
}

#[test]
fn write_once_4_ops_small() {
    let (n, bad) = exhaust(ModelKind::WriteOnce, 4, true);
    assert!(n > 10_000 && bad > 0, "{n} histories, {bad} invalid");
}

/// One random op: (alphabet index, invoke time, duration, crash roll).
type RandomOp = (usize, u64, u64, u8);

/// A random history over `model`'s alphabet with many crashed ops: a crash roll below
/// 4 (of 10) makes a non-read op `info` that never returns, 4 makes it `info` with a
/// completion time (it took effect before then, or never).
fn random_history(model: ModelKind, spec: &[RandomOp]) -> History {
    let alphabet = alphabet(model, false);
    let ops = spec
        .iter()
        .enumerate()
        .map(|(p, &(i, call, duration, crash))| {
            let (key, input, mut outcome) = alphabet[i % alphabet.len()].clone();
            let mut ret = Some(call + duration);
            if input != Input::Read && crash <= 4 {
                outcome = OpOutcome::Info;
                if crash < 4 {
                    ret = None;
                }
            } else if outcome == OpOutcome::Info {
                ret = None;
            }
            Op {
                process: p as u64,
                key,
                input,
                outcome,
                call,
                ret,
            }
        })
        .collect();
    History { ops }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Every model, random histories of up to 7 ops, most of them crashed: lincheck
    /// (all prunings, and none) agrees with the brute-force reference.
    #[test]
    fn random_histories_with_crashed_ops_agree_with_brute_force(
        model in proptest::sample::select(ModelKind::ALL.to_vec()),
        spec in proptest::collection::vec((0usize..64, 0u64..12, 0u64..6, 0u8..10), 1..=7),
    ) {
        let h = random_history(model, &spec);
        let expected = brute_force(model, &h);
        let fast = CheckOptions { threads: 1, minimize: false, ..CheckOptions::default() };
        let slow = CheckOptions { pruning: no_pruning(), ..fast.clone() };
        for opts in [&fast, &slow] {
            let got = check(&h, model, opts).expect("alphabet fits the model");
            proptest::prop_assert_eq!(
                got.verdict == Verdict::Valid,
                expected,
                "model {}, pruning {:?}, history {:#?}",
                model,
                opts.pruning,
                h.ops
            );
        }
    }
}
