//! Random key-value histories that are linearizable by construction.
//!
//! `concurrency` clients issue ops back to back on random keys. Each op gets a random
//! real-time interval and a linearization point inside it; the points, replayed in
//! order against a real register per key, decide what reads return and whether a CAS
//! took effect (`ok`) or not (`fail`). With probability `info_fraction` an op ends in
//! `info`: its effect happens at a point up to three durations after its invoke (so
//! possibly after the client gave up on it), or not at all, and the client continues
//! under a fresh process id, as Jepsen clients do. [`generate_kv`] makes integer
//! read/write/cas histories, [`generate_kv_strings`] string get/put/append ones.
//!
//! [`crashed_writes`] and [`crashed_proposes`] are the small families that make a
//! checker pay for crashed ops: many concurrent `info` ops of distinct values that
//! never return, and a late read that needs exactly one of them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::history::{History, Input, Op, Outcome, Value};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Ops in the history.
    pub n_ops: usize,
    /// Keys, `0..n_keys`.
    pub n_keys: u64,
    /// Fraction of ops that end in `info`.
    pub info_fraction: f64,
    /// RNG seed; the same config always gives the same history.
    pub seed: u64,
    /// Clients with an op outstanding at any time.
    pub concurrency: usize,
    /// Written values are drawn from `0..values` (small = many equal writes).
    pub values: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            n_ops: 1000,
            n_keys: 10,
            info_fraction: 0.05,
            seed: 0,
            concurrency: 8,
            values: 16,
        }
    }
}

/// Longest op, in time units (nanoseconds).
const DURATION_MAX: u64 = 1000;
/// Longest pause between a client's ops.
const GAP_MAX: u64 = 200;

/// Generates a linearizable read/write/cas history (model `kv`).
pub fn generate_kv(cfg: &GenConfig) -> History {
    assert!(cfg.values > 0, "at least one value");
    generate(
        cfg,
        |rng| match rng.gen_range(0..10) {
            0..=4 => Input::Read,
            5..=7 => Input::Write {
                value: Value::Int(rng.gen_range(0..cfg.values)),
            },
            _ => Input::Cas {
                from: Value::Int(rng.gen_range(0..cfg.values)),
                to: Value::Int(rng.gen_range(0..cfg.values)),
            },
        },
        Value::Nil,
    )
}

/// Generates a linearizable get/put/append history of strings (model `kv-strings`):
/// 40% gets, 20% puts of a short value, 40% appends of a short token, as in
/// Porcupine's kv corpus (`"x 3 17 y"`-style tokens keep every append distinct).
pub fn generate_kv_strings(cfg: &GenConfig) -> History {
    assert!(cfg.values > 0, "at least one value");
    let mut n = 0u64;
    generate(
        cfg,
        |rng| {
            n += 1;
            match rng.gen_range(0..10) {
                0..=3 => Input::Read,
                4..=5 => Input::Write {
                    value: Value::Str(format!("p{}", rng.gen_range(0..cfg.values))),
                },
                _ => Input::Append {
                    value: Value::Str(format!("x {} {n} y", rng.gen_range(0..cfg.values))),
                },
            }
        },
        Value::Str(String::new()),
    )
}

/// The shared generator: `input` draws each op's input, `init` is every key's value.
fn generate(
    cfg: &GenConfig,
    mut input: impl FnMut(&mut ChaCha8Rng) -> Input,
    init: Value,
) -> History {
    assert!(cfg.n_keys > 0, "at least one key");
    assert!(cfg.concurrency > 0, "at least one client");
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut clients: BinaryHeap<Reverse<(u64, u64)>> = (0..cfg.concurrency as u64)
        .map(|p| Reverse((0, p)))
        .collect();
    let mut next_process = cfg.concurrency as u64;
    let mut ops = Vec::with_capacity(cfg.n_ops);
    // (linearization point, op index) of every op that takes effect.
    let mut points: Vec<(u64, usize)> = Vec::with_capacity(cfg.n_ops);
    while ops.len() < cfg.n_ops {
        let Reverse((free, process)) = clients.pop().expect("clients never run out");
        let call = free + rng.gen_range(0..=GAP_MAX);
        let duration = rng.gen_range(1..=DURATION_MAX);
        let key = rng.gen_range(0..cfg.n_keys);
        let input = input(&mut rng);
        let info = rng.gen_bool(cfg.info_fraction);
        let point = if !info {
            Some(call + rng.gen_range(0..=duration))
        } else if rng.gen_bool(0.5) {
            Some(call + rng.gen_range(0..=3 * duration))
        } else {
            None
        };
        if let Some(point) = point {
            points.push((point, ops.len()));
        }
        ops.push(Op {
            process,
            key: Value::Int(key),
            input,
            outcome: if info {
                Outcome::Info
            } else {
                Outcome::Ok(Value::Nil)
            },
            call,
            ret: (!info).then_some(call + duration),
        });
        let next = if info {
            next_process += 1;
            next_process - 1
        } else {
            process
        };
        clients.push(Reverse((call + duration, next)));
    }
    points.sort_unstable();
    let mut registers: HashMap<Value, Value> = HashMap::new();
    for (_, i) in points {
        let op = &mut ops[i];
        let current = registers
            .entry(op.key.clone())
            .or_insert_with(|| init.clone());
        let ok = match &op.input {
            Input::Read => Value::clone(current),
            Input::Write { value } => {
                *current = value.clone();
                Value::Nil
            }
            Input::Cas { from, to } => {
                if current == from {
                    *current = to.clone();
                } else if op.outcome != Outcome::Info {
                    op.outcome = Outcome::Fail;
                }
                Value::Nil
            }
            Input::Append { value } => {
                if let (Value::Str(cur), Value::Str(v)) = (&mut *current, value) {
                    cur.push_str(v);
                }
                Value::Nil
            }
            Input::Propose { .. } => unreachable!("not generated"),
        };
        if let Outcome::Ok(v) = &mut op.outcome {
            *v = ok;
        }
    }
    History { ops }
}

/// `n` crashed writes of distinct values `1..=n`, all concurrent and never returning,
/// then an ok `write 0`, a crashed `cas 0->999` and an ok `read 999` (model
/// `cas-register`, `n + 3` ops). Linearizable: the writes never happen, the cas does.
pub fn crashed_writes(n: u64) -> History {
    let mut ops: Vec<Op> = (1..=n)
        .map(|v| Op {
            process: v,
            key: Value::Nil,
            input: Input::Write {
                value: Value::Int(v),
            },
            outcome: Outcome::Info,
            call: v,
            ret: None,
        })
        .collect();
    let t = n + 1;
    let p = n + 1;
    ops.push(Op {
        process: p,
        key: Value::Nil,
        input: Input::Write {
            value: Value::Int(0),
        },
        outcome: Outcome::Ok(Value::Nil),
        call: t,
        ret: Some(t + 1),
    });
    ops.push(Op {
        process: p,
        key: Value::Nil,
        input: Input::Cas {
            from: Value::Int(0),
            to: Value::Int(999),
        },
        outcome: Outcome::Info,
        call: t + 2,
        ret: None,
    });
    ops.push(Op {
        process: p + 1,
        key: Value::Nil,
        input: Input::Read,
        outcome: Outcome::Ok(Value::Int(999)),
        call: t + 3,
        ret: Some(t + 4),
    });
    History { ops }
}

/// `n` crashed proposes of distinct values `1..=n` to one write-once register, then an
/// ok read of the last value (model `write-once`, `n + 1` ops). Linearizable.
pub fn crashed_proposes(n: u64) -> History {
    let mut ops: Vec<Op> = (1..=n)
        .map(|v| Op {
            process: v,
            key: Value::Int(0),
            input: Input::Propose {
                value: Value::Int(v),
            },
            outcome: Outcome::Info,
            call: v,
            ret: None,
        })
        .collect();
    ops.push(Op {
        process: n + 1,
        key: Value::Int(0),
        input: Input::Read,
        outcome: Outcome::Ok(Value::Int(n)),
        call: n + 1,
        ret: Some(n + 2),
    });
    History { ops }
}
